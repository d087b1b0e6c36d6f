"""The OCR step of the PDF loader: pages without a usable text layer are rendered and read by Tesseract.

A page whose text layer has fewer than ``min_chars`` visible characters is an image of text (a scan, a fax, a
photographed letter). Its lines are replaced by what OCR reads, and the loader marks its sections ``ocr`` with the
page's mean word confidence. Where Tesseract is missing, or one page cannot be read, those pages are named in
``unread`` with the reason: the document is still ingested with its other pages, and ingestion reports the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kb.loaders.metadata import read_sidecar
from kb.ocr import OcrConfig, read_pdf_pages


@dataclass(frozen=True)
class ScannedPages:
    """Each page's lines (OCR'd pages replaced), the confidence of each page read by OCR, the pages left unread."""

    pages: list[list[str]]
    confidence: dict[int, float] = field(default_factory=dict)
    unread: tuple[int, ...] = ()
    problem: str = ""

    def refusal(self, scans: list[int]) -> str:
        """Why a PDF none of whose pages has text cannot be loaded (``scans``: the pages without a text layer)."""
        if self.unread:
            unread = page_list(self.unread)
            return f"no text layer (needs OCR) on {unread}, and OCR could not read them: {self.problem}"
        return f"no text layer (needs OCR), and OCR found no text on {page_list(scans)}"


def read_scanned_pages(path: Path, pages: list[list[str]], min_chars: int) -> tuple[ScannedPages, list[int]]:
    """OCR for the pages of ``pages`` (lines per page) with fewer than ``min_chars`` characters; also returns the
    numbers (from 1) of those pages."""
    scans = [n for n, lines in enumerate(pages, 1) if sum(len(line.strip()) for line in lines) < min_chars]
    if not scans:
        return ScannedPages(pages), scans
    language = str(read_sidecar(path).get("language") or "")
    reading = read_pdf_pages(path, scans, OcrConfig.from_settings().for_language(language))
    replaced = [list(reading.read[n].lines) if n in reading.read else lines for n, lines in enumerate(pages, 1)]
    confidence = {n: result.confidence for n, result in reading.read.items() if result.words}
    return ScannedPages(replaced, confidence, reading.unread, reading.problem), scans


def page_list(numbers: list[int] | tuple[int, ...]) -> str:
    """For a report: ``page 3`` or ``pages 1–13, 15`` (runs of consecutive pages joined)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    text = ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
    return f"page{'s' if len(numbers) > 1 else ''} {text}"
