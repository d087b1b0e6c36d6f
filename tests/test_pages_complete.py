"""No page of a PDF goes missing silently: for every PDF of the test data and the bundled corpus, the pages PDFium
counts are the pages the index holds text for, plus the pages ingestion reports as needing OCR (not read) or as
blank (nothing to read). A page reported blank is checked against PDFium: its text layer carries no text beyond
what recurs on other pages (running headers, page numbers), and without a text layer its image is blank.

The files are ingested once, with Tesseract, into a temporary index (the real model, SQLite and FAISS)."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from kb.embedder import Embedder
from kb.ingest import Ingestor, IngestReport
from kb.loaders.pdf import MIN_PAGE_CHARS
from kb.ocr import is_blank
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import REPO

FOLDERS = ("tests/data", "corpus")
SYNTHETIC = "synthetic/leere-seiten.pdf"
LETTER = re.compile(r"[^\W\d_]")


def pdfs() -> list[str]:
    return sorted(str(p.relative_to(REPO)) for folder in FOLDERS for p in (REPO / folder).rglob("*.pdf"))


def write_pdf_with_empty_pages(path: Path) -> None:
    """Four pages: text, an empty page, a page with only its number, text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=A4)
    body = "Das Elterncafé trifft sich jeden Donnerstag in der Grundschule am Park mit Sprachmittlung."
    for number in range(1, 5):
        if number in (1, 4):
            pdf.setFont("Helvetica", 11)
            pdf.drawString(72, 760, f"Seite {number}: {body}"[:95])
            pdf.drawString(72, 740, "Eltern lernen die Lehrkräfte kennen und stellen ihre Fragen ohne Termin.")
        if number == 3:
            pdf.setFont("Helvetica", 9)
            pdf.drawCentredString(A4[0] / 2, 30, f"- {number} -")
        pdf.showPage()
    pdf.save()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, IngestReport, Searcher]:
    corpus = tmp_path_factory.mktemp("pages-corpus")
    for key in pdfs():
        for source in (REPO / key, REPO / f"{key}.meta.yaml"):
            if source.exists():
                (corpus / key).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, corpus / source.relative_to(REPO))
    write_pdf_with_empty_pages(corpus / SYNTHETIC)
    settings = Settings(
        corpus_dir=corpus,
        index_dir=tmp_path_factory.mktemp("pages-index"),
        data_dir=tmp_path_factory.mktemp("pages-data"),
    )
    report = Ingestor(settings, embedder).run()
    return corpus, report, Searcher(settings, embedder)


def page_count(path: Path) -> int | None:
    """The pages PDFium counts, or None when it cannot open the file at all."""
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:
        return None
    try:
        return len(document)
    finally:
        document.close()


def layer_texts(path: Path) -> list[str]:
    document = pdfium.PdfDocument(str(path))
    try:
        texts = []
        for page in document:
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return texts
    finally:
        document.close()


def renders_blank(path: Path, number: int) -> bool:
    document = pdfium.PdfDocument(str(path))
    try:
        return is_blank(document[number - 1].render(scale=1, grayscale=True).to_pil())
    finally:
        document.close()


def own_letters(texts: list[str], number: int) -> int:
    """Letters of page ``number``'s text layer outside lines that recur on other pages (digits ignored)."""

    def lines(text: str) -> list[str]:
        return [re.sub(r"\d+", "#", " ".join(line.split())) for line in text.splitlines() if line.strip()]

    elsewhere = Counter(line for n, text in enumerate(texts, 1) if n != number for line in set(lines(text)))
    return sum(len(LETTER.findall(line)) for line in lines(texts[number - 1]) if elsewhere[line] < 2)


@pytest.mark.parametrize("key", [*pdfs(), SYNTHETIC])
def test_every_page_is_indexed_or_reported(key: str, ingested: tuple[Path, IngestReport, Searcher]) -> None:
    corpus, report, searcher = ingested
    path = corpus / key
    count = page_count(path)
    failure = next((f for f in report.failed if f.path == key), None)
    if failure is not None:  # the whole file is reported, with the reason
        assert failure.reason.strip()
        return
    assert count is not None, f"{key}: PDFium cannot open it, but it was ingested"
    reader = searcher.reader()
    document = next(d for d in reader.documents.values() if d.key == key)
    assert document.pages == count
    text = reader.document_text(document.id)
    assert text is not None
    with_text = {p.page for p in text.pages if p.text.strip()}
    note = next((n for n in report.ocr if n.path == key), None)
    unread = set(note.unread) if note else set()
    blank = set(note.blank) if note else set()
    assert not (with_text & unread) and not (with_text & blank) and not (unread & blank)
    missing = set(range(1, count + 1)) - with_text - unread - blank
    assert not missing, f"{key}: pages {sorted(missing)} are neither indexed nor reported"
    texts = layer_texts(path)
    for number in blank:
        letters = own_letters(texts, number)
        assert letters < MIN_PAGE_CHARS, f"{key}: page {number} is reported blank but has {letters} letters"
        if not texts[number - 1].strip():  # no text layer at all: then its image must be blank too
            assert renders_blank(path, number), f"{key}: page {number} is reported blank but shows something"


def test_the_empty_pages_of_a_pdf_are_reported_blank(ingested: tuple[Path, IngestReport, Searcher]) -> None:
    _, report, searcher = ingested
    (note,) = [n for n in report.ocr if n.path == SYNTHETIC]
    assert note.blank == (2, 3) and note.unread == () and note.read == 0
    reader = searcher.reader()
    document = next(d for d in reader.documents.values() if d.key == SYNTHETIC)
    text = reader.document_text(document.id)
    assert text is not None
    assert [p.page for p in text.pages if p.text.strip()] == [1, 4]


def test_the_files_of_both_folders_are_checked() -> None:
    keys = pdfs()
    assert any(k.startswith("corpus/") for k in keys) and any(k.startswith("tests/data/") for k in keys)
