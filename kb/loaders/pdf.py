"""PDF with pypdf: text per page, running headers/footers and page numbers removed, hyphenation repaired.

Municipal PDFs repeat a header and a footer on every page and hyphenate at line ends. Lines that recur at
the top or bottom of at least half of the pages are dropped; a line ending in a hyphen is joined with the
next line ("Sprach-" + "förderung" → "Sprachförderung") unless the hyphen is real: before a conjunction
("Sprach- und Kulturmittler") or a capital ("DaZ-" + "Kurs" → "DaZ-Kurs").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PdfStreamError

from kb.documents import Document, Heading, Section
from kb.errors import LoaderError
from kb.loaders.hyphens import HYPHEN_END, join_broken, join_lines
from kb.loaders.metadata import build_metadata, read_sidecar
from kb.loaders.scans import read_scanned_pages

#: Pages with fewer visible characters than this count as having no text layer.
MIN_PAGE_CHARS = 20
_EDGE_LINES = 3
_PAGE_NUMBER = re.compile(r"^(?:seite|s\.|page)?\s*[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:von|/|of)\s*\d{1,4})?$", re.I)
_NUMBERED_HEADING = re.compile(r"^\d{1,2}(?:\.\d{1,2})*\.?\s+[A-ZÄÖÜ]")


def load(path: Path) -> Document:
    reader = _open(path)
    pages = [_page_lines(reader, i, path) for i in range(len(reader.pages))]
    if not pages:
        raise LoaderError(str(path), "PDF has no pages")
    scanned, scans = read_scanned_pages(path, pages, MIN_PAGE_CHARS)  # pages without a text layer, read by OCR
    pages = scanned.pages
    if all(sum(len(line.strip()) for line in lines) < MIN_PAGE_CHARS for lines in pages):
        raise LoaderError(str(path), scanned.refusal(scans))
    blocks = heading_blocks(strip_running_lines(pages))
    texts = join_pages([join_lines(lines) for _, _, lines in blocks])
    sections = tuple(
        Section(text, heading, page, page in scanned.confidence, scanned.confidence.get(page))
        for (page, heading, _), text in zip(blocks, texts, strict=True)
        if text.strip()
    )
    info_title = _info_title(reader)
    first_line = next((ln.strip() for lines in pages for ln in lines if ln.strip()), "")
    metadata = build_metadata(read_sidecar(path), path, fallback_title=info_title or first_line or path.stem)
    return Document(
        path=path,
        file_type="pdf",
        metadata=metadata,
        sections=sections,
        pages=len(pages),
        headings=block_headings(blocks),
        needs_ocr=scanned.unread,
        ocr_problem=scanned.problem,
    )


def _open(path: Path) -> PdfReader:
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoaderError(
                str(path), "encrypted PDF (password protected): remove the password and ingest again"
            )
        _ = len(reader.pages)
    except LoaderError:
        raise
    except (FileNotDecryptedError, DependencyError) as exc:
        raise LoaderError(str(path), f"encrypted PDF that cannot be opened ({exc})") from exc
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoaderError(str(path), f"corrupt or truncated PDF ({type(exc).__name__}: {exc})") from exc
    return reader


def _page_lines(reader: PdfReader, index: int, path: Path) -> list[str]:
    try:
        raw = reader.pages[index].extract_text() or ""
    except Exception as exc:
        raise LoaderError(
            str(path), f"text of page {index + 1} cannot be extracted ({type(exc).__name__})"
        ) from exc
    text = unicodedata.normalize("NFKC", raw)
    return [" ".join(line.split()) for line in text.splitlines()]


def _info_title(reader: PdfReader) -> str:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:
        return ""
    return str(title).strip() if title else ""


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", line.lower()).strip()


def strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers and lines that recur at the top or bottom of at least half of the pages."""
    pages = [[ln for ln in lines if ln] for lines in pages]
    edge_counts: Counter[str] = Counter()
    for lines in pages:
        edge_counts.update({_line_key(ln) for ln in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]})
    threshold = max(2, (len(pages) + 1) // 2)
    running = {key for key, count in edge_counts.items() if count >= threshold}
    cleaned = []
    for lines in pages:
        n = len(lines)
        keep = []
        for i, ln in enumerate(lines):
            at_edge = i < _EDGE_LINES or i >= n - _EDGE_LINES
            if at_edge and (_line_key(ln) in running or _PAGE_NUMBER.match(ln)):
                continue
            keep.append(ln)
        cleaned.append(keep)
    return cleaned


def heading_blocks(pages: list[list[str]]) -> list[tuple[int, str, list[str]]]:
    """Split pages at numbered headings ("7. Qualitätsstandards für Schulen"): ``(page, heading, lines)``."""
    blocks: list[tuple[int, str, list[str]]] = []
    heading = ""
    for number, lines in enumerate(pages, 1):
        median = sorted(len(line) for line in lines)[len(lines) // 2] if lines else 0
        current: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if _is_heading(line, median):
                if current:
                    blocks.append((number, heading, current))
                heading, current = line, []
                following = lines[i + 1] if i + 1 < len(lines) else ""
                if following and len(following) < 0.5 * median and not following.endswith((".", ":", ";")):
                    heading, i = f"{line} {following}", i + 1  # a heading wrapped onto a second, short line
            else:
                current.append(line)
            i += 1
        blocks.append((number, heading, current))
    return blocks


def block_headings(blocks: list[tuple[int, str, list[str]]]) -> tuple[Heading, ...]:
    """Each heading of :func:`heading_blocks` with the page of its first block (its text may run on over pages)."""
    found: list[Heading] = []
    before = ""
    for page, heading, _ in blocks:
        if heading and heading != before:
            found.append(Heading(heading, page))
        before = heading
    return tuple(found)


def _is_heading(line: str, median: int) -> bool:
    """A short line that starts with a section number and does not end like a sentence or a broken word."""
    return bool(
        _NUMBERED_HEADING.match(line)
        and len(line.split()) <= 12
        and not line.endswith((".", ",", ";", ":", "-"))
        and len(line) < 0.8 * median
    )


def join_pages(texts: list[str]) -> list[str]:
    """Repair a word hyphenated across a block or page break by moving its second half to the earlier block."""
    texts = list(texts)
    for i in range(len(texts) - 1):
        tail, head = texts[i], texts[i + 1]
        if head and HYPHEN_END.search(tail):
            first, _, rest = head.partition(" ")
            joined = join_broken(tail, first)
            if not joined.endswith(" " + first):
                texts[i], texts[i + 1] = joined, rest
    return texts
