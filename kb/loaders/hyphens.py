"""Words hyphenated at a line end, joined again: one repair for every loader.

A line that ends in a word fragment and a hyphen ("Sprach-" + "förderung") is a syllable break and is joined
("Sprachförderung"), unless the hyphen is real: before a conjunction it is an ellipsis ("Sprach- und
Kulturmittler", "Schul- oder Kitaleitung"), before a capital or after an acronym it belongs to a compound
("DaZ-" + "Kurs" → "DaZ-Kurs", "KAoA-" + "kompakt"). Text that was flattened from a line break (an HTML ``<br>``,
a soft wrap) shows the same break as a hyphen and a space ("befä- higt"); it is joined by the same rule.
Hyphens inside a word ("E-Mail", "Deutsch-Türkisch", "KOMM-AN") are never touched.
"""

from __future__ import annotations

import re

#: A hyphen before one of these words is an ellipsis of a compound ("Eltern- und Familienarbeit"), never a break.
CONJUNCTIONS = frozenset(
    {
        "und", "oder", "bzw", "beziehungsweise", "sowie", "wie", "als", "bis", "noch", "u", "o", "resp",
        "respektive", "statt", "versus", "vs", "and", "or", "nor", "to",
    }
)  # fmt: skip
_SOFT_HYPHEN = "\u00ad"
#: A line ending in a hyphen (a soft hyphen too), a space before it allowed ("Be -" as justified PDFs give it).
HYPHEN_END = re.compile(r"(\w+)( ?)[-\u00ad]$")
#: A word fragment of letters, a hyphen and a space, and the word after it ("befä- higt").
_FLATTENED_BREAK = re.compile(r"\b([^\W\d_]+)-[ \t]+(?=(\S+))")
_LEADING_LETTERS = re.compile(r"[^\W\d_]+")
_WORD_BREAK_END = re.compile(r"\w[-\u00ad]$")


def join_broken(left: str, right: str) -> str:
    """``left`` and the line ``right`` after it, with a word broken at the end of ``left`` repaired."""
    match = HYPHEN_END.search(left)
    if not match:
        return f"{left} {right}"
    word, space = match.group(1), match.group(2)
    nxt = right.split(" ", 1)[0]
    bare = nxt.rstrip(".,;:!?)")
    stem = left[: match.start(2)]
    acronym = _is_acronym(word)  # "KAoA-" + "kompakt" keeps its hyphen
    if left.endswith(_SOFT_HYPHEN) or (nxt[:1].islower() and bare.lower() not in CONJUNCTIONS and not acronym):
        return stem + right  # a syllable break: "Sprach-" + "förderung"
    if space and word.isupper() and bare.isupper() and bare.isalpha():
        return stem + right  # "GRÜ -" + "NEN" as broken justification produces it
    if nxt[:1].islower() and not acronym:
        return f"{stem}- {right}"  # a real hyphen before a conjunction: "Sprach- und"
    return f"{stem}-{right}"  # a compound with a capital: "DaZ-" + "Kurs"


def join_lines(lines: list[str]) -> str:
    """Join lines into running text, repairing hyphenation at line ends."""
    out = ""
    for line in lines:
        out = join_broken(out, line) if out else line
    return out


def repair_hyphens(text: str) -> str:
    """``text`` (one paragraph) as running text: lines joined by spaces, words broken at a line end joined again.

    Soft hyphens inside words are dropped; a hyphen and a space before a lowercase word that is no conjunction
    ("befä- higt", "Kompe- tenzaufbau") is a break the line structure was lost from, and is joined too.
    """
    joined = ""
    for line in (" ".join(line.split()) for line in text.splitlines()):
        if line:
            # a dash after a space ("Punkt A -") is a dash outside PDFs, not the break of justified PDF lines
            joined = join_broken(joined, line) if _WORD_BREAK_END.search(joined) else f"{joined} {line}".lstrip()
    return _FLATTENED_BREAK.sub(_join_flattened, joined).replace(_SOFT_HYPHEN, "")


def _join_flattened(match: re.Match[str]) -> str:
    word, nxt = match.group(1), match.group(2)
    following = _LEADING_LETTERS.match(nxt)
    if (
        nxt[:1].islower()
        and following is not None
        and following.group(0).lower() not in CONJUNCTIONS
        and not _is_acronym(word)
    ):
        return word
    return match.group(0)


def _is_acronym(word: str) -> bool:
    return sum(ch.isupper() for ch in word) >= 2
