"""Query words the index does not know, corrected against its vocabulary: typos, missing umlauts, split compounds.

("Groesse" needs no correction: the analysis reads "oe" after a consonant as "ö", as Snowball does.) Only words
that carry no evidence as typed are changed, and only into words the corpus itself uses:

- "Gruppengrosse": umlauts put back when the corpus knows the word only with them;
- "Seiteneinsteier", "Orientirungskurs": one edit (words of five to seven letters) or two (longer words) to the
  most frequent corpus word with the same first letter;
- "Seiten Einstieg": two neighbouring words that the corpus writes as one (:meth:`Speller.joined`).

A word the index knows is left alone, so distinct words are never folded together ("Große" stays "Große" even
though "Größe" is one edit away, "schon" stays "schon").
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

_UMLAUTS = str.maketrans({"ä": "a", "ö": "o", "ü": "u"})
#: Words shorter than this are never corrected (too many neighbours one edit away).
MIN_LENGTH = 5
#: From this length a word may be two edits away from its correction, below it one.
TWO_EDITS_FROM = 8
#: A correction by edits must occur at least this often in the corpus (not another typo).
MIN_COUNT = 2


class Speller:
    """Corrections of case-folded query words into words of ``vocabulary`` (case-folded word → count)."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.vocabulary = vocabulary
        by_fold: dict[str, str] = {}
        for word, count in vocabulary.items():
            key = word.translate(_UMLAUTS)
            if count > vocabulary.get(by_fold.get(key, ""), 0):
                by_fold[key] = word
        self._by_fold = by_fold
        self._folded = list(by_fold)
        self._cache: dict[str, str | None] = {}

    def correct(self, word: str) -> str | None:
        """The corpus word meant by ``word``, which the index does not know; None when nothing is close."""
        if word in self._cache:
            return self._cache[word]
        fixed = self._correct(word)
        if len(self._cache) < 100_000:
            self._cache[word] = fixed
        return fixed

    def _correct(self, word: str) -> str | None:
        if len(word) < MIN_LENGTH or not word.isalpha():
            return None
        folded = word.translate(_UMLAUTS)
        known = self._by_fold.get(folded)
        if known is not None and known != word:
            return known  # missing (or wrong) umlauts
        limit = 1 if len(word) < TWO_EDITS_FROM else 2
        found = process.extract(folded, self._folded, scorer=Levenshtein.distance, score_cutoff=limit, limit=20)
        best: tuple[int, int, str] | None = None
        for candidate, distance, _ in found:
            original = self._by_fold[candidate]
            count = self.vocabulary.get(original, 0)
            if candidate[0] != folded[0] or count < MIN_COUNT or original == word:
                continue
            key = (int(distance), -count, original)
            if best is None or key < best:
                best = key
        return best[2] if best else None

    def joined(self, first: str, second: str) -> str | None:
        """The one word the corpus writes for two neighbouring query words ("seiten", "einstieg")."""
        if not (first.isalpha() and second.isalpha()) or min(len(first), len(second)) < 3:
            return None
        word = first + second
        return word if self.vocabulary.get(word, 0) >= MIN_COUNT else None


def corrected_words(
    words: list[str], known: Callable[[str], bool], speller: Speller
) -> tuple[list[str], list[str]]:
    """The query words with unknown ones corrected (``known``: the index has the word's term), and the joined
    compounds of neighbouring words."""
    out = []
    for word in words:
        out.append(word if known(word) else speller.correct(word) or word)
    joined = [j for a, b in pairwise(words) if (j := speller.joined(a, b))]
    return out, joined
