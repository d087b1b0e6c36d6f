"""Structure of a PDF's text: headings from type size, weight and the outline; the title; footnote bodies.

A heading is a short line set larger than the body text, or bold, or a numbered line ("2. Ablauf"), or the title
of a bookmark pointing to its page, that does not end like a sentence. Lines that only look like headings are
refused whatever their font: dates, case numbers ("1 BvR 1978/13"), contents lines that end in a page number,
table rows with figures, interjections in parentheses, footnotes.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kb.loaders.pdf_furniture import PAGE_NUMBER
from kb.loaders.pdf_lines import Line, OutlineEntry

#: A line this much larger than the body text is a heading candidate.
LARGER = 1.15
_NUMBERED = re.compile(r"^(?:\d{1,2}\.(?:\d{1,2}\.?)*|[IVX]{1,4}\.|[A-H]\.)\s+[A-ZÄÖÜ]")
_MONTHS = "Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember"
_NOT_A_HEADING = [
    re.compile(rf"\b\d{{1,2}}\.\s*(?:{_MONTHS}|\d{{1,2}}\.)\s*\d{{2,4}}\b"),  # a date
    re.compile(r"\b\d{1,2}\s*[A-Z][A-Za-z]{0,4}\s*\d{1,5}/\d{2,4}\b"),  # a case number: 1 BvR 1978/13
    re.compile(r"[A-Za-zäöüß?)]\s*(?:\.\s*){0,}\s\d{1,3}$"),  # a contents line: title, then its page number
    re.compile(r"\.{3,}|(?:\. ){3,}"),  # dot leaders of a contents line
    re.compile(r"%|€|\d[\d.,]*\s+\d[\d.,]*"),  # figures of a table row
    re.compile(r"^[(\[–—-]"),  # an interjection, a remark, a list item
    re.compile(r"^\d{1,2}\s+\D"),  # a footnote or a table row: "1 Die Übersicht findet sich unter"
]
_SENTENCE_END = re.compile(r"[.,;:!\-\ufffe]$")
_JUNK_TITLE = [
    re.compile(r"^[-–—\s\d./|()]*$"),  # empty, or a page number
    re.compile(r"^Microsoft (?:Word|PowerPoint|Excel)\b|^untitled$|^unbenannt$|^Dokument\d*$", re.I),
    re.compile(r"\.(?:pdf|docx?|odt|rtf|indd|pages|qxd|p65)$", re.I),  # a file name
    re.compile(r"^\S*\d\S*$"),  # one token with digits: a file name or a case code
]


@dataclass(frozen=True)
class HeadingLine:
    """Lines taken as one heading: their places ``start`` to ``end`` among the page's lines (a heading wraps
    onto a second line) and its level (1 outermost)."""

    start: int
    end: int
    level: int
    text: str


def body_size(pages: Sequence[Sequence[Line]]) -> float:
    """The type size of the running text: the size that carries the most characters."""
    counts: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            if line.size:
                counts[round(line.size, 1)] += line.visible
    return counts.most_common(1)[0][0] if counts else 0.0


def is_junk_title(text: str) -> bool:
    """Whether ``text`` is no title: a page number, a producer's file name, a lone code."""
    text = " ".join(text.split())
    return len(text) < 3 or any(rx.search(text) for rx in _JUNK_TITLE)


def find_headings(
    lines: Sequence[Line], body: float, outline: Sequence[OutlineEntry], page: int
) -> list[HeadingLine]:
    """The heading lines of one page; a heading wrapped onto a second line of the same font is one heading."""
    marked = {_norm(entry.title) for entry in outline if entry.page == page}
    sizes = sorted({round(line.size) for line in lines if line.size > body * LARGER}, reverse=True)
    found: list[HeadingLine] = []
    median = statistics.median(len(line.text) for line in lines) if lines else 0
    for i, line in enumerate(lines):
        key = _norm(line.text)
        bookmark = next((m for m in marked if key == m or (key.startswith(m) and 8 < len(m) > len(key) - 6)), None)
        before = found[-1] if found else None
        wrapped = before is not None and before.end == i - 1 and _continues(lines[i - 1], line)
        if (
            before is not None
            and bookmark is None
            and wrapped
            and (line.size > body * LARGER or _heading_level(line, body, sizes, median) is not None)
        ):
            found[-1] = HeadingLine(before.start, i, before.level, f"{before.text} {line.text}")
            continue
        level = 1 if bookmark is not None else _heading_level(line, body, sizes, median)
        following = lines[i + 1].text if i + 1 < len(lines) else ""
        if level is None or (bookmark is None and following[:1].islower() and not _continues(line, lines[i + 1])):
            continue
        text = line.text if bookmark is None or key == bookmark else _outline_title(outline, bookmark, line.text)
        found.append(HeadingLine(i, i, level, text))
    return found


def _outline_title(outline: Sequence[OutlineEntry], key: str, fallback: str) -> str:
    return next((entry.title for entry in outline if _norm(entry.title) == key), fallback)


def _heading_level(line: Line, body: float, sizes: list[int], median: float) -> int | None:
    text = line.text
    words = text.split()
    if (
        not 1 <= len(words) <= 14
        or len(text) > 120
        or _SENTENCE_END.search(text)
        or not re.search(r"[^\W\d_]{3}", text)
    ):
        return None
    if PAGE_NUMBER.match(text) or any(rx.search(text) for rx in _NOT_A_HEADING):
        return None
    if body and line.size > body * LARGER:
        return 1 + sizes.index(round(line.size)) if round(line.size) in sizes else 1
    if line.bold and (not body or line.size >= 0.75 * body) and text[:1].isupper() | text[:1].isdigit():
        return len(sizes) + 1
    if _NUMBERED.match(text) and len(words) <= 12 and (not median or len(text) < 0.8 * median or line.bold):
        return len(sizes) + 1 + text.split()[0].count(".")
    return None


def _continues(first: Line, second: Line) -> bool:
    """Whether ``second`` goes on with the heading ``first``: same font, right under it, not numbered itself."""
    return (
        not _NUMBERED.match(second.text)
        and abs(first.size - second.size) < 0.5
        and first.bold == second.bold
        and -0.5 * first.size <= second.top - first.bottom < 1.2 * max(first.size, 1.0)
    )


def _norm(text: str) -> str:
    """A heading as compared with a bookmark: lower case, no numbering, no punctuation."""
    return re.sub(r"^(?:\d+ )+", "", re.sub(r"[\W_]+", " ", text.lower()).strip())


def largest_text(lines: Sequence[Line], body: float) -> str:
    """The largest line of a page (with the lines of the same size right under it), when it is set larger than
    the body text or the page is a cover of a few lines: the title on a first page."""
    sized = [line for line in lines if line.size and not is_junk_title(line.text)]
    if not sized:
        return ""
    top = max(line.size for line in sized)
    if body and top < body * LARGER and len(lines) > 6:
        return ""
    start = next(i for i, line in enumerate(lines) if line in sized and line.size == top)
    parts = [lines[start].text]
    for before, line in zip(lines[start:], lines[start + 1 :], strict=False):
        if abs(line.size - top) > 0.5 or not -0.5 * top <= line.top - before.bottom < 1.2 * top or len(parts) >= 3:
            break
        parts.append(line.text)
    return " ".join(parts)


def split_footnotes(lines: Sequence[Line], body: float) -> tuple[list[Line], list[Line]]:
    """The page's running text and its footnotes: the lines set smaller than the body text below its last line,
    from the first that starts with a number or a mark."""
    if not body:
        return list(lines), []
    bottom = max((line.bottom for line in lines if abs(line.size - body) < 0.6), default=None)
    if bottom is None:
        return list(lines), []
    below = [i for i, line in enumerate(lines) if line.top >= bottom - 0.3 * body and line.size < 0.9 * body]
    if not below or not re.match(r"^(?:\d{1,3}|\*|[¹²³])\s*\S", lines[below[0]].text):
        return list(lines), []
    chosen = set(below)
    return [ln for i, ln in enumerate(lines) if i not in chosen], [lines[i] for i in below]
