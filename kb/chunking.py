"""Sentence-aware chunking for German text; pure functions, no I/O.

Sentences end at ``.``, ``!``, ``?`` or ``…`` followed by space and a word that does not start in lower case,
unless the period belongs to an abbreviation ("z. B.", "bzw.", "Nr.", "S. 12"), an ordinal or a date
("am 3. März", "die 5. Klasse"), or an initial. Chunks collect whole sentences up to about ``chunk_words``
words, overlap by about ``overlap`` words, and do not cross headings unless the text under one is tiny. Each
chunk knows the page it starts and ends on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kb.documents import Chunk, Section

#: Lower-cased words that are abbreviations when followed by a period (German, with a few English ones).
ABBREVIATIONS = frozenset(
    {
        "z",
        "b",
        "bzw",
        "ca",
        "nr",
        "s",
        "vgl",
        "u",
        "a",
        "d",
        "h",
        "o",
        "ggf",
        "evtl",
        "inkl",
        "insb",
        "zzgl",
        "dr",
        "prof",
        "hr",
        "fr",
        "abs",
        "art",
        "str",
        "tel",
        "mio",
        "mrd",
        "jh",
        "jhd",
        "bspw",
        "sog",
        "ggü",
        "gem",
        "gez",
        "lt",
        "max",
        "min",
        "mind",
        "rd",
        "sek",
        "std",
        "tsd",
        "v",
        "chr",
        "uvm",
        "zb",
        "zt",
        "bzgl",
        "dgl",
        "e",
        "kl",
        "jg",
        "jgst",
        "hrsg",
        "aufl",
        "bd",
        "no",
        "vs",
        "al",
        "approx",
    }
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'»«“”’)\]]*(?=\s+\S)")
#: Words after which a number is a reference ("Nr. 3."), so a period after it can end the sentence.
_NUMBER_LABELS = frozenset({"nr", "s", "seite", "abs", "absatz", "kapitel", "ziffer", "punkt", "anlage", "band"})
_WORD_BEFORE = re.compile(r"([\wÄÖÜäöüß]+)\W*$")
_TOKEN = re.compile(r"\S+")


@dataclass(frozen=True)
class Sentence:
    """A sentence under its heading, on the page it starts on; ``turns``: where (offset in ``text``) a page turns
    inside it, to which page (a sentence, or a list without periods, may run on over a page break)."""

    text: str
    heading: str
    page: int | None
    turns: tuple[tuple[int, int | None], ...] = ()

    def page_at(self, offset: int) -> int | None:
        """The page the character at ``offset`` stands on."""
        page = self.page
        for start, turned in self.turns:
            if start > offset:
                break
            page = turned
        return page

    @property
    def page_end(self) -> int | None:
        """The page the sentence ends on."""
        return self.page_at(len(self.text) - 1)


def split_sentences(text: str) -> list[str]:
    """Split running German text into sentences."""
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if _is_boundary(text, match.start(), end):
            sentences.append(text[start:end].strip())
            start = end
    rest = text[start:].strip()
    if rest:
        sentences.append(rest)
    return [s for s in sentences if s]


def _is_boundary(text: str, dot: int, end: int) -> bool:
    following = text[end:].lstrip()
    if not following or following[0].islower() or following[0] in ",;:":
        return False
    if text[dot] != ".":
        return True
    word = _WORD_BEFORE.search(text[:dot])
    if word is None:
        return True
    token = word.group(1)
    if token.lower() in ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
        return False
    if token.isdigit() and len(token) <= 2 and text[dot - 1 : dot].isdigit():
        before = _WORD_BEFORE.search(text[: word.start()])
        if before is None or before.group(1).lower() not in _NUMBER_LABELS:
            return False  # ordinal or day of a date: "am 3. März", "die 5. Klasse"
    return not (token.isdigit() and following[:1].isdigit())  # "01.06.2017" written with spaces


def sentences_of(sections: Sequence[Section]) -> list[Sentence]:
    """Sentences in reading order; runs of sections under one heading are joined first (across pages)."""
    out: list[Sentence] = []
    for heading, run in _heading_runs(sections):
        text = ""
        starts: list[tuple[int, int | None]] = []
        for section in run:
            if text:
                text += " "
            starts.append((len(text), section.page))
            text += " ".join(section.text.split())
        offset = 0
        for sentence in split_sentences_keep_paragraphs(run):
            position = text.find(sentence, offset)
            offset = position + len(sentence) if position >= 0 else offset
            at = max(position, 0)
            turns = tuple((start - at, page) for start, page in starts if at < start < at + len(sentence))
            out.append(Sentence(sentence, heading, _page_at(starts, at), turns if position >= 0 else ()))
    return out


def split_sentences_keep_paragraphs(run: Sequence[Section]) -> Iterable[str]:
    """Sentences of a run: paragraphs on the same page are sentence boundaries, page breaks are not."""
    buffer = ""
    previous_page: int | None = None
    for index, section in enumerate(run):
        text = " ".join(section.text.split())
        continues_page = index > 0 and section.page is not None and section.page != previous_page
        if buffer and not continues_page:
            yield from split_sentences(buffer)
            buffer = ""
        buffer = f"{buffer} {text}".strip()
        previous_page = section.page
    if buffer:
        yield from split_sentences(buffer)


def _page_at(starts: list[tuple[int, int | None]], position: int) -> int | None:
    page = starts[0][1] if starts else None
    for start, p in starts:
        if start > position:
            break
        page = p
    return page


def _heading_runs(sections: Sequence[Section]) -> Iterable[tuple[str, list[Section]]]:
    run: list[Section] = []
    for section in sections:
        if run and section.heading != run[-1].heading:
            yield run[-1].heading, run
            run = []
        run.append(section)
    if run:
        yield run[-1].heading, run


def chunk_sections(sections: Sequence[Section], chunk_words: int = 180, overlap: int = 40) -> list[Chunk]:
    """Group sentences into chunks of about ``chunk_words`` words with ``overlap`` words carried over."""
    chunks: list[Chunk] = []
    buffer: list[Sentence] = []
    fresh = 0  # sentences in the buffer that are not just overlap carried over from the previous chunk
    min_words = max(1, chunk_words // 3)

    def words(items: Sequence[Sentence]) -> int:
        return sum(len(s.text.split()) for s in items)

    def flush(carry: bool) -> None:
        nonlocal buffer, fresh
        chunks.append(_make_chunk(len(chunks), buffer))
        kept: list[Sentence] = []
        if carry:
            for sentence in reversed(buffer[1:]):
                if words(kept) + len(sentence.text.split()) > overlap:
                    break
                kept.insert(0, sentence)
        buffer, fresh = kept, 0

    for sentence in _bounded(sentences_of(sections), chunk_words):
        if not fresh and buffer and sentence.heading != buffer[-1].heading:
            buffer = []  # overlap is only carried within a section
        if fresh and sentence.heading != buffer[-1].heading and words(buffer) >= min_words:
            flush(carry=False)
        if fresh and words(buffer) + len(sentence.text.split()) > chunk_words:
            flush(carry=True)
        buffer.append(sentence)
        fresh += 1
    if fresh:
        chunks.append(_make_chunk(len(chunks), buffer))
    return chunks


def _bounded(sentences: list[Sentence], limit: int) -> Iterable[Sentence]:
    """Split "sentences" longer than a chunk (lists without periods, tables) at word boundaries; each part keeps
    the pages it stands on (a long list runs on over page breaks)."""
    for sentence in sentences:
        tokens = list(_TOKEN.finditer(sentence.text))
        if len(tokens) <= limit:
            yield sentence
            continue
        for i in range(0, len(tokens), limit):
            first, last = tokens[i].start(), tokens[min(i + limit, len(tokens)) - 1].end()
            turns = tuple((start - first, page) for start, page in sentence.turns if first < start < last)
            yield Sentence(sentence.text[first:last], sentence.heading, sentence.page_at(first), turns)


def _make_chunk(ordinal: int, sentences: Sequence[Sentence]) -> Chunk:
    pages = [s.page for s in sentences if s.page is not None]
    ends = [s.page_end for s in sentences if s.page_end is not None]
    return Chunk(
        ordinal=ordinal,
        text=" ".join(s.text for s in sentences),
        heading=sentences[0].heading,
        page=pages[0] if pages else None,
        page_end=ends[-1] if ends else None,  # where its last sentence ends, which may be a later page
    )


def passage_text(title: str, heading: str, text: str) -> str:
    """What is embedded and indexed for a chunk: the document title and section heading give the passage its
    context."""
    context = " – ".join(part for part in (title, heading) if part)
    return f"{context}\n{text}" if context else text
