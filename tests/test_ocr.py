"""OCR with the real Tesseract: images (PNG, JPEG, TIFF), scanned and mixed PDFs, ingestion and search of a
scanned page, the sandboxed reader's limits, and a missing Tesseract or language (a wrong program name, not an
uninstall)."""

from __future__ import annotations

import io
import json
import random
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from typer.testing import CliRunner

from kb import loaders
from kb.api.app import create_app
from kb.cli import app
from kb.curation.uploads import detect_suffix
from kb.documents import Document, document_id
from kb.embedder import Embedder
from kb.errors import LoaderError, OcrUnavailableError, UnsupportedFileError
from kb.ingest import EXIT_PARTIAL, Ingestor
from kb.ocr import OcrConfig, check_available, recognise
from kb.sandbox import Limits, load_isolated
from kb.search import Searcher
from kb.settings import Settings, get_settings

runner = CliRunner()
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

#: The scanned page of the mixed PDF: the only place these words occur.
SCANNED_LINES = [
    "Anmeldung zum Sommerferienprogramm",
    "Die Anmeldung für das Sommerferienprogramm der",
    "Jugendkunstschule erfolgt bis zum Freitag im",
    "Bürgerbüro am Marktplatz in Warendorf.",
]
TEXT_PAGES = [
    ["Kommunales Integrationszentrum Warendorf", "Jahresbericht über die Beratung von Familien."]
    + ["Die Beratung findet dienstags und donnerstags im Kreishaus statt."] * 3,
    ["Die Elternbegleiter unterstützen Familien bei Behördengängen und Elterngesprächen."] * 4,
]


def page_image(lines: list[str], *, size: tuple[int, int] = (1500, 800), seed: int = 1) -> Image.Image:
    """A "scan": black text in DejaVu Sans (Pillow's own font without it), specks of noise, turned by a degree."""
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont = (
        ImageFont.truetype(str(FONT), 40) if FONT.exists() else ImageFont.load_default(size=40)
    )
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((60, 60 + number * 70), line, font=font, fill=0)
    rng = random.Random(seed)
    pixels = image.load()
    assert pixels is not None
    for _ in range(size[0] * size[1] // 400):
        pixels[rng.randrange(size[0]), rng.randrange(size[1])] = rng.choice((0, 96, 160))
    return image.rotate(1, resample=Image.Resampling.BICUBIC, fillcolor=255)


def write_scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF of page images only (Pillow's PDF writer, 150 dpi), as a scanner makes it."""
    images = [page_image(lines, seed=n) for n, lines in enumerate(pages)]
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return path


def write_mixed_pdf(path: Path, scanned_page: int = 2) -> Path:
    """Two pages with a text layer and a scanned page (an image, no text) at ``scanned_page`` (1, 2 or 3)."""
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    pdf.setTitle("Jahresbericht Warendorf")
    order: list[list[str] | None] = list(TEXT_PAGES)
    order.insert(scanned_page - 1, None)
    for number, lines in enumerate(order, 1):
        if lines is None:
            pdf.drawImage(ImageReader(page_image(SCANNED_LINES)), 40, 420, width=515, height=257)
        else:
            pdf.setFont("Helvetica", 11)
            for row, line in enumerate(lines):
                pdf.drawString(60, 760 - 15 * row, line)
            pdf.setFont("Helvetica", 9)
            pdf.drawString(270, 40, f"Seite {number} von 3")
        pdf.showPage()
    pdf.save()
    return path


def text_of(document: Document) -> str:
    return " ".join(s.text for s in document.sections)


@pytest.fixture
def no_tesseract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings (and the reader process, which inherits the environment) point at a program that does not exist."""
    monkeypatch.setenv("KB_TESSERACT_CMD", "/nonexistent/tesseract")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# -- images -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tiff"])
def test_an_image_is_read_by_ocr_with_its_confidence(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"elternbrief{suffix}"
    page_image(SCANNED_LINES).save(path)
    document = loaders.load(path)
    assert document.file_type == "image" and document.pages == 1
    text = text_of(document)
    for word in ("Sommerferienprogramm", "Jugendkunstschule", "Bürgerbüro", "Warendorf"):
        assert word in text
    assert all(s.ocr and s.page == 1 for s in document.sections)
    (page,) = document.text_by_page().pages
    assert page.ocr and page.confidence is not None and 50 < page.confidence <= 100
    assert document.metadata.title == "Anmeldung zum Sommerferienprogramm"


def test_a_multi_page_tiff_is_one_page_per_frame(tmp_path: Path) -> None:
    path = tmp_path / "protokoll.tif"
    first = page_image(["Protokoll der Sitzung des Integrationsrates"])
    second = page_image(["Tagesordnungspunkt Sprachkurse für Eltern"], seed=2)
    first.save(path, save_all=True, append_images=[second])
    document = loaders.load(path)
    pages = document.text_by_page().pages
    assert document.pages == 2 and [p.page for p in pages] == [1, 2] and all(p.ocr for p in pages)
    assert "Integrationsrates" in pages[0].text and "Tagesordnungspunkt" in pages[1].text
    assert "Integrationsrates" not in pages[1].text


def test_an_image_with_metadata_takes_it_from_its_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "aushang.png"
    page_image(SCANNED_LINES).save(path)
    (tmp_path / "aushang.png.meta.yaml").write_text(
        "title: Aushang Ferienprogramm\ndistrict: Warendorf\nyear: 2024\n", encoding="utf-8"
    )
    meta = loaders.load(path).metadata
    assert (meta.title, meta.district, meta.year) == ("Aushang Ferienprogramm", "Kreis Warendorf", 2024)


def test_a_document_language_is_added_to_the_ocr_languages_where_installed() -> None:
    config = OcrConfig(languages="deu+eng")
    assert check_available(config.for_language("tr")) == "deu+eng+tur"
    assert check_available(config.for_language("uk, ar")) == "deu+eng+ukr+ara"
    assert check_available(config.for_language("de")) == "deu+eng"
    assert check_available(config.for_language("xx")) == "deu+eng"
    assert check_available(replace(config, extra=("xyz",))) == "deu+eng"  # data not installed: left out


def test_a_turkish_letter_is_read_with_its_letters(tmp_path: Path) -> None:
    path = tmp_path / "veli-mektubu.png"
    page_image(["Değerli veliler, çocuğunuzun okul kaydı için", "öğretmenler görüşme günü düzenliyor."]).save(path)
    (tmp_path / "veli-mektubu.png.meta.yaml").write_text("language: tr\n", encoding="utf-8")
    text = text_of(loaders.load(path))
    assert "çocuğunuzun" in text and "öğretmenler" in text and "görüşme" in text


def test_an_image_without_text_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "leer.png"
    Image.new("L", (600, 400), 255).save(path)
    with pytest.raises(LoaderError) as info:
        loaders.load(path)
    assert "OCR found no text" in info.value.reason


def test_a_file_that_is_not_the_image_its_name_says_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foto.jpg"
    page_image(["Hallo"]).save(path, "PNG")
    with pytest.raises(LoaderError) as info:
        loaders.load(path)
    assert "named like a JPEG image" in info.value.reason and "PNG" in info.value.reason


def test_uploaded_images_are_recognised_by_their_content() -> None:
    png, jpeg = io.BytesIO(), io.BytesIO()
    page_image(["Hallo"]).save(png, "PNG")
    page_image(["Hallo"]).save(jpeg, "JPEG")
    assert detect_suffix(png.getvalue(), "scan.png") == ".png"
    assert detect_suffix(png.getvalue(), "upload") == ".png"
    assert detect_suffix(jpeg.getvalue(), "foto.jpeg") == ".jpg"
    with pytest.raises(UnsupportedFileError):
        detect_suffix(png.getvalue(), "bericht.pdf")


# -- PDFs ---------------------------------------------------------------------------------------------------------
def test_a_scanned_pdf_is_read_page_by_page(tmp_path: Path) -> None:
    path = write_scanned_pdf(
        tmp_path / "scan.pdf",
        [SCANNED_LINES, ["Zweite Seite des Schreibens", "Mit freundlichen Grüßen", "Ihr Integrationszentrum"]],
    )
    document = loaders.load(path)
    pages = document.text_by_page().pages
    assert [p.page for p in pages] == [1, 2] and all(p.ocr and p.confidence for p in pages)
    assert "Sommerferienprogramm" in pages[0].text and "freundlichen Grüßen" in pages[1].text
    assert document.ocr_pages == (1, 2) and document.needs_ocr == ()


def test_a_mixed_pdf_keeps_every_page_and_marks_the_scanned_one(tmp_path: Path) -> None:
    document = loaders.load(write_mixed_pdf(tmp_path / "bericht.pdf"))
    pages = document.text_by_page().pages
    assert [(p.page, p.ocr) for p in pages] == [(1, False), (2, True), (3, False)]
    assert "Kreishaus" in pages[0].text and "Elternbegleiter" in pages[2].text
    assert "Jugendkunstschule" in pages[1].text and "Bürgerbüro am Marktplatz" in pages[1].text
    assert pages[1].confidence is not None and pages[1].confidence > 50
    assert pages[0].confidence is None


def test_a_scanned_page_is_found_by_search_and_shown_as_ocr(tmp_path: Path, embedder: Embedder) -> None:
    """The scan is the first page: a passage is reported by the page it starts on, and a passage starting on a
    middle page would begin with the overlap from the page before it."""
    corpus = tmp_path / "corpus" / "warendorf"
    corpus.mkdir(parents=True)
    write_mixed_pdf(corpus / "bericht.pdf", scanned_page=1)
    options = ["--corpus-dir", str(tmp_path / "corpus"), "--index-dir", str(tmp_path / "index")]
    options += ["--data-dir", str(tmp_path / "data")]
    ingested = runner.invoke(app, [*options, "ingest"])
    assert ingested.exit_code == 0, ingested.stderr
    assert "warendorf/bericht.pdf: 1 of 3 pages read by OCR" in ingested.stdout

    found = runner.invoke(app, [*options, "search", "Anmeldung Sommerferienprogramm Jugendkunstschule", "--json"])
    assert found.exit_code == 0, found.stderr
    top = json.loads(found.stdout)["results"][0]
    assert top["document_id"] == document_id("warendorf/bericht.pdf") and top["page"] == 1
    assert "Jugendkunstschule" in top["text"]

    shown = runner.invoke(app, [*options, "show", "warendorf/bericht.pdf", "--json"])
    pages = json.loads(shown.stdout)["pages"]
    assert [(p["page"], p["ocr"]) for p in pages] == [(1, True), (2, False), (3, False)]
    assert pages[0]["confidence"] > 50 and "confidence" not in pages[1]
    readable = runner.invoke(app, [*options, "show", "warendorf/bericht.pdf"]).stdout
    assert "--- page 1 (OCR, confidence " in readable

    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as client:
        response = client.get(f"/documents/{document_id('warendorf/bericht.pdf')}/text")
    assert response.status_code == 200 and response.json() == json.loads(shown.stdout)


# -- Tesseract or a language missing ------------------------------------------------------------------------------
def test_a_missing_tesseract_is_named_with_the_fix(no_tesseract: None) -> None:
    with pytest.raises(OcrUnavailableError) as info:
        check_available(OcrConfig.from_settings())
    assert "/nonexistent/tesseract" in str(info.value) and "make install" in str(info.value)
    assert "apt-get install tesseract-ocr" in str(info.value)


def test_kb_doctor_warns_when_tesseract_is_missing(tmp_path: Path, no_tesseract: None) -> None:
    result = runner.invoke(app, ["--index-dir", str(tmp_path / "index"), "--corpus-dir", str(tmp_path), "doctor"])
    line = next(line for line in result.stdout.splitlines() if line.startswith(("OK   ocr", "WARN ocr")))
    assert line.startswith("WARN ocr: scanned pages and images will not be read: Tesseract is not installed")


def test_kb_doctor_names_the_ocr_languages(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--index-dir", str(tmp_path / "index"), "--corpus-dir", str(tmp_path), "doctor"])
    assert "OK   ocr: Tesseract (tesseract) reads deu+eng" in result.stdout.splitlines()


def test_a_missing_language_is_named_with_its_package() -> None:
    with pytest.raises(OcrUnavailableError) as info:
        recognise(page_image(["Hallo"]), OcrConfig(languages="deu+xyz"))
    assert "xyz" in str(info.value) and "apt-get install tesseract-ocr-xyz" in str(info.value)


def test_without_tesseract_the_text_pages_are_ingested_and_the_scanned_ones_named(
    tmp_path: Path, embedder: Embedder, no_tesseract: None
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_mixed_pdf(corpus / "bericht.pdf")
    write_scanned_pdf(corpus / "scan.pdf", [SCANNED_LINES, SCANNED_LINES])
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    report = Ingestor(settings, embedder).run()
    assert report.added == ["bericht.pdf"]
    (note,) = report.ocr
    assert (note.path, note.read, note.pages, note.unread) == ("bericht.pdf", 0, 3, (2,))
    assert "Tesseract is not installed" in note.problem
    (failure,) = report.failed
    assert failure.path == "scan.pdf" and failure.reason.startswith("no text layer (needs OCR) on pages 1–2")
    assert "make install" in failure.reason
    assert report.exit_code == EXIT_PARTIAL
    (hit,) = Searcher(settings, embedder).search("Beratung im Kreishaus", 1).hits
    assert hit.document.key == "bericht.pdf" and "Kreishaus" in hit.chunk.text


def test_without_tesseract_kb_ingest_names_the_pages_that_need_ocr(tmp_path: Path, no_tesseract: None) -> None:
    write_mixed_pdf(tmp_path / "bericht.pdf")
    data = ["--data-dir", str(tmp_path / "data"), "--index-dir", str(tmp_path / "index")]
    result = runner.invoke(app, ["--corpus-dir", str(tmp_path), *data, "ingest"])
    assert result.exit_code == EXIT_PARTIAL
    assert "bericht.pdf: 0 of 3 pages read by OCR" in result.stdout
    assert "needs OCR: bericht.pdf: page 2 not read: Tesseract is not installed" in result.stderr


# -- the sandboxed reader -----------------------------------------------------------------------------------------
def test_ocr_runs_in_the_sandboxed_reader_under_its_memory_limit(tmp_path: Path) -> None:
    path = write_scanned_pdf(tmp_path / "scan.pdf", [SCANNED_LINES])
    (loaded,) = load_isolated([(0, path)], Limits(timeout_s=60, memory_mb=256, max_file_mb=10))
    assert loaded.reason == "" and loaded.document is not None
    assert loaded.document.ocr_pages == (1,) and "Jugendkunstschule" in text_of(loaded.document)


def _huge_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` × ``height`` pixels (a few bytes of data: never decoded that far)."""
    small = io.BytesIO()
    Image.new("L", (8, 8), 255).save(small, "PNG")
    data = bytearray(small.getvalue())
    ihdr = bytearray(data[12:29])  # chunk type and data of IHDR
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("width", "height"), [(8000, 6000), (20000, 20000)])
def test_a_huge_image_is_refused_with_a_clear_reason(tmp_path: Path, width: int, height: int) -> None:
    path = _huge_png(tmp_path / "plakat.png", width, height)
    (loaded,) = load_isolated([(0, path)], Limits(timeout_s=60, memory_mb=1024, max_file_mb=10))
    assert loaded.document is None
    assert loaded.reason.startswith("image too large for OCR") and "KB_OCR_MAX_MEGAPIXELS" in loaded.reason


def test_each_page_read_by_ocr_restarts_the_time_limit() -> None:
    """The parent's side of the reader (a real socket; the worker's messages sent by a thread): a file whose OCR
    pages together take longer than the limit is waited for while each page starts in time; silence is not."""
    from multiprocessing.connection import Connection

    from kb.sandbox import LoaderWorker

    def run(messages: list[tuple[str, object]], pause_s: float) -> tuple[object, str]:
        worker = LoaderWorker(Limits(timeout_s=2.0, memory_mb=256, max_file_mb=10))
        ours, theirs = socket.socketpair()
        worker._conn, reader = Connection(ours.detach()), Connection(theirs.detach())

        def answer() -> None:
            for status, value in messages:
                time.sleep(pause_s)
                try:
                    reader.send((status, time.monotonic() if status == "page" else value))
                except OSError:  # the parent gave up on the file and closed its end
                    return

        thread = threading.Thread(target=answer)
        thread.start()
        try:
            return worker.receive(time.monotonic())
        finally:
            thread.join()
            reader.close()

    pages: list[tuple[str, object]] = [("page", None)] * 6
    assert run([*pages, ("ok", "gelesen")], pause_s=0.5) == ("gelesen", "")  # 3.5 s in all, 0.5 s per page
    document, reason = run([("ok", "zu spät")], pause_s=3.0)
    assert document is None and reason.startswith("took longer than 2 s to read (KB_FILE_TIMEOUT_S)")
