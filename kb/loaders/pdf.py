"""PDF: text per page read by PDFium, page furniture removed, hyphenation repaired, headings and a title found.

The steps of :func:`load`, each in its own module:
1. :func:`kb.loaders.pdf_lines.read_pdf`: every page as lines with their boxes, type size and weight; glyphs
   without Unicode, symbol-font bullets and footnote markers repaired;
2. :func:`kb.loaders.scans.read_scanned_pages`: the pages without a usable text layer (:func:`needs_ocr`) read
   by OCR; pages OCR cannot read stay pages, listed in ``Document.needs_ocr``; a PDF without any text is refused;
   pages left without text (blank, only furniture, no words found by OCR) are listed in ``Document.blank_pages``;
3. :func:`kb.loaders.pdf_furniture.strip_furniture`: running headers and footers, page numbers, margin letters;
4. :mod:`kb.loaders.pdf_structure`: headings (type size, weight, numbering, bookmarks), footnote bodies apart
   from the running text, the title;
5. lines joined into running text: a hyphen that PDFium marks as a line-end break is a syllable break unless it
   is real ("Sprach- und", "DaZ-Kurs"); a dash after a space stays a dash ("Erster Senat - unter").
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from kb.documents import Document, Heading, Section
from kb.errors import LoaderError
from kb.loaders.hyphens import HYPHEN_END, join_broken, join_lines
from kb.loaders.metadata import build_metadata, read_sidecar
from kb.loaders.pdf_furniture import strip_furniture
from kb.loaders.pdf_lines import LINE_END_HYPHEN, Line, Page, PdfSource, read_pdf
from kb.loaders.pdf_structure import body_size, find_headings, is_junk_title, largest_text, split_footnotes
from kb.loaders.scans import read_scanned_pages

__all__ = ["MIN_PAGE_CHARS", "join_lines", "join_pdf_lines", "load", "needs_ocr"]

#: Pages with fewer visible characters than this count as having no text layer.
MIN_PAGE_CHARS = 20
#: Letters spaced out one by one ("E I N L E I T U N G"), as headings are set.
_SPACED_LETTERS = re.compile(r"\b(?:[^\W\d_] ){3,}[^\W\d_]\b")
_CAPS_FRAGMENT = re.compile(r"([^\W\d_]{2,})-$")
_CAMEL_CASE = re.compile(r"^[A-ZÄÖÜ][a-zäöüß]+[A-ZÄÖÜ][a-zäöüß]")


@dataclass(frozen=True)
class _Block:
    page: int
    heading: str
    lines: list[str]
    footnotes: bool = False


def load(path: Path) -> Document:
    source = read_pdf(path)
    # pages without a text layer are read by OCR: their lines (without place or font) replace the empty ones
    scanned, scans = read_scanned_pages(
        path, [[line.text for line in page.lines] for page in source.pages], MIN_PAGE_CHARS
    )
    pages = [
        _read_by_ocr(page, scanned.pages[page.number - 1]) if page.number in scans else page
        for page in source.pages
    ]
    if all(needs_ocr(page) for page in pages):
        raise LoaderError(str(path), scanned.refusal(scans))
    kept = strip_furniture(pages, MIN_PAGE_CHARS)
    body = body_size(kept)
    title = _title(source, kept, body)
    blocks, headings = _blocks(pages, kept, body, source, title)
    texts = join_pages([join_pdf_lines(block.lines) for block in blocks], [block.footnotes for block in blocks])
    sections = tuple(
        Section(
            _respace(text),
            block.heading,
            block.page,
            block.page in scanned.confidence,
            scanned.confidence.get(block.page),
        )
        for block, text in zip(blocks, texts, strict=True)
        if text.strip()
    )
    metadata = build_metadata(read_sidecar(path), path, fallback_title=title or path.stem)
    with_text = {section.page for section in sections}
    return Document(
        path=path,
        file_type="pdf",
        metadata=metadata,
        sections=sections,
        pages=len(pages),
        headings=tuple(headings),
        needs_ocr=scanned.unread,
        ocr_problem=scanned.problem,
        # no page goes missing silently: a page without text either could not be read or has nothing to read
        blank_pages=tuple(n for n in range(1, len(pages) + 1) if n not in with_text and n not in scanned.unread),
    )


def _read_by_ocr(page: Page, lines: list[str]) -> Page:
    """``page`` with the lines OCR read on it (without place or font: furniture rules go by their text)."""
    return Page(page.number, page.width, page.height, tuple(Line(t, 0, 0, 0, 0, 0) for t in lines if t.strip()))


def needs_ocr(page: Page) -> bool:
    """Whether ``page`` has no usable text layer (a scanned page): fewer than :data:`MIN_PAGE_CHARS` characters."""
    return page.visible < MIN_PAGE_CHARS


def _blocks(
    pages: list[Page], kept: list[list[Line]], body: float, source: PdfSource, title: str
) -> tuple[list[_Block], list[Heading]]:
    """The pages' lines cut at headings into blocks under one heading each; a page's footnotes are a block."""
    blocks: list[_Block] = []
    headings: list[Heading] = []
    section = ""  # the heading of the text that follows: the last one read (measured: nesting them lost quality)
    for page, lines in zip(pages, kept, strict=True):
        running, notes = split_footnotes(lines, body)
        found = find_headings(running, body, source.outline, page.number)
        starts = {h.start: h for h in found}
        inside = {i for h in found for i in range(h.start, h.end + 1)}
        current: list[str] = []
        for i, line in enumerate(running):
            heading = starts.get(i)
            if heading is not None:
                if current:
                    blocks.append(_Block(page.number, section, current))
                    current = []
                section = heading.text if heading.text != title else ""  # every chunk carries the title
                headings.append(Heading(heading.text, page.number))
            if i not in inside:
                current.append(line.text)
        blocks.append(_Block(page.number, section, current))
        if notes:
            blocks.append(_Block(page.number, section, [n.text for n in notes], footnotes=True))
    return blocks, headings


def join_pdf_lines(lines: list[str]) -> str:
    """Lines of one block as running text. A line that ends in PDFium's line-end hyphen is a broken word, joined
    by :func:`~kb.loaders.hyphens.join_broken` ("GRÜ-" + "NEN" too); a dash after a space is a dash."""
    done: list[str] = []  # the text before ``out``: the rules only look at the end of the text
    out = ""
    for line in lines:
        if len(out) > 400:
            done.append(out[:-200])
            out = out[-200:]
        if not out:
            out = line
        elif out.endswith(LINE_END_HYPHEN):
            out = _join_hyphenated(out[:-1] + "-", line)
        elif out.endswith((" -", " –", " —")) or not HYPHEN_END.search(out):
            out = f"{out} {line}"
        else:
            out = join_broken(out, line)
    return ("".join(done) + out).replace(LINE_END_HYPHEN, "-")


def _join_hyphenated(left: str, right: str) -> str:
    fragment = _CAPS_FRAGMENT.search(left)
    following = re.match(r"[^\W\d_]+", right)
    if fragment and following:
        word, nxt = fragment.group(1), following.group(0)
        if word.isupper() and nxt.isupper() and len(nxt) >= 2:
            return left[:-1] + right  # "GRÜ-" + "NEN": a word in capitals broken at the line end
        if word[:1].isupper() and word[1:].islower() and _CAMEL_CASE.match(nxt):
            return left[:-1] + right  # "Frag-" + "DenStaat.de": a name in camel case broken at the line end
    return join_broken(left, right)


def join_pages(texts: list[str], footnotes: list[bool] | None = None) -> list[str]:
    """Repair a word hyphenated across a block or page break by moving its second half to the earlier block;
    footnote blocks are passed over (the word goes on after them)."""
    texts = list(texts)
    notes = footnotes or [False] * len(texts)
    running = [i for i in range(len(texts)) if not notes[i] and texts[i].strip()]
    for i, j in itertools.pairwise(running):
        tail, head = texts[i], texts[j]
        if not head:
            continue
        if tail.endswith(LINE_END_HYPHEN):
            tail = tail[:-1] + "-"
        if HYPHEN_END.search(tail) and not tail.endswith((" -", " –")):
            first, _, rest = head.partition(" ")
            joined = _join_hyphenated(tail, first)
            if not joined.endswith(" " + first):
                texts[i], texts[j] = joined, rest
    return texts


def _respace(text: str) -> str:
    """Letters spaced out one by one joined again ("E I N L E I T U N G" → "EINLEITUNG")."""
    return _SPACED_LETTERS.sub(lambda m: m.group(0).replace(" ", ""), text)


def _title(source: PdfSource, kept: list[list[Line]], body: float) -> str:
    """The document information's title, else the largest text on the first page with text, else the first
    bookmark, else the first line; none of them a page number or a producer's file name."""
    if source.info_title and not is_junk_title(source.info_title):
        return source.info_title
    first = next((lines for lines in kept if lines), [])
    largest = largest_text(first, body)
    if largest:
        return largest
    if source.outline and not is_junk_title(source.outline[0].title):
        return source.outline[0].title
    # a first line of one word is a stamp or a label ("Ausfertigung", "Entwurf") more often than a title
    lines = [line.text for page in kept for line in page if not is_junk_title(line.text)]
    return next((text for text in lines if len(text.split()) > 1), lines[0] if lines else "")
