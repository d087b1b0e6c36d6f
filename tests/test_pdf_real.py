"""Regression on real German PDFs (the developers' set ``../shared/eval/real-pdfs``): the loader is run on a few
files, or a few pages of one, and checked for what once went wrong. Skipped where the set is not on the machine;
the full check with ingestion, ``kb show`` and queries is ``python ../shared/eval/real-pdfs/check.py``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from kb.documents import Document
from kb.loaders.pdf import load

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = [ROOT.parent / "shared" / "eval" / "real-pdfs", ROOT.parent.parent / "shared" / "eval" / "real-pdfs"]
FILES = next((c / "files" for c in CANDIDATES if (c / "files").is_dir()), None)

pytestmark = pytest.mark.skipif(
    FILES is None, reason="the real-PDF set ../shared/eval/real-pdfs is not on this machine"
)


def _load(name: str, pages: range | None = None, tmp_path: Path | None = None) -> Document:
    assert FILES is not None
    path = FILES / name
    if pages is not None and tmp_path is not None:  # only these pages, to keep the test fast
        writer = PdfWriter()
        for page in PdfReader(str(path)).pages[pages.start - 1 : pages.stop - 1]:
            writer.add_page(page)
        path = tmp_path / name
        with open(path, "wb") as handle:
            writer.write(handle)
    return load(path)


def _text(doc: Document) -> str:
    return " ".join(" ".join(page.text.split()) for page in doc.text_by_page().pages)


def test_bundestag_headers_margin_letters_speakers_and_capitals(tmp_path: Path) -> None:
    doc = _load("bundestag_plenarprotokoll_18-238_2017-06-02.pdf", range(28, 33), tmp_path)
    text = _text(doc)
    assert "Erst wenn ein Stellvertreterkrieg verhindert werden kann" in text  # across a page break
    assert "in dem Sicherheit an vielen Orten ein Fremdwort ist" in text  # speaker's name at the page head gone
    assert "Dr. Gerd Müller [CDU/CSU]: So ist es!" in text
    assert not re.search(r"Wahlperiode\s?[–—-]\s?238\s?\.\s?Sitzung", text)
    assert not re.search(r"\([A-D]\)", text) and "GRÜ-NEN" not in text and "BÜND-NIS" not in text


def test_saxon_minutes_spaced_right_and_contents_line_no_heading() -> None:
    doc = _load("saechsischer_landtag_plenarprotokoll_5-2_2009-09-30.pdf")
    text = _text(doc)
    assert "Präsident Dr. Matthias Rößler: Meine sehr geehrten Damen und Herren!" in text
    assert not re.search(r"Ma tthias|R ößler|\bD r\.|\bun d\b|Her ren", text)
    assert not any(h.text.startswith("0 Eröffnung") for h in doc.headings)


def test_federal_court_dashes_hyphens_case_number_and_page_numbers() -> None:
    doc = _load("urteil_bverfg_1bvr1978-13.pdf")
    text = _text(doc)
    assert "hat das Bundesverfassungsgericht - Erster Senat - unter Mitwirkung" in text
    assert "der Konrad-Adenauer-Stiftung e.V. und des Historischen Instituts" in text
    assert not re.search(r"Senatunter|ungebundenüber|(?<!\S)\d{1,2}/14(?!\S)", text)
    assert not any(re.match(r"-?\s*1 BvR 1978/13", h.text) for h in doc.headings)


def test_court_page_numbers_are_no_title_and_not_in_the_text(tmp_path: Path) -> None:
    doc = _load("urteil_ovg_bb_12b3-13.pdf", range(1, 6), tmp_path)
    assert not re.search(r"(?<!\S)- ?\d{1,2} ?-(?!\S)", _text(doc))
    assert not re.fullmatch(r"[-–—\s\d./|()]*", doc.metadata.title)


def test_indesign_report_tabs_table_rows_and_title() -> None:
    doc = _load("transparenzranking_ifg_ranking.pdf")
    text = _text(doc)
    assert "Der Verein betreibt FragDenStaat.de, das Portal für Informationsfreiheit" in text
    assert not re.search(r"BEWERTUNGSPUNKTE IM EINZELNEN|\bKRITERIEN\b|\bEINFÜHRUNG\b|\bFAZIT\b", text)
    assert not any(re.match(r"\d+ [A-ZÄÖÜ][\w-]* \d+ ?%", h.text) for h in doc.headings)
    assert ("Einführung", 3) in [(re.sub(r"^\d+\.\s*", "", h.text), h.page) for h in doc.headings]
    assert doc.metadata.title not in ("", "1")


def test_latex_guide_glyph_names_and_blank_pages() -> None:
    doc = _load("okfde_hackathon_leitfaden.pdf")
    text = _text(doc)
    assert "Das Format kommt aus der Softwareentwicklungsszene" in text
    assert "die es der Zivilgesellschaft ermöglichen würde" in text
    assert not re.search(r"/f_[a-z]|/H\d{4,}|[\x00-\x08\x0e-\x1f]", text)
    assert doc.pages == 15 and not doc.text_by_page().pages[3].text  # a blank page stays a page
    empty = {p.page for p in doc.text_by_page().pages if not p.text.strip()}
    assert 4 in doc.blank_pages and set(doc.blank_pages) == empty and not doc.needs_ocr  # and is reported blank
    assert not any(re.match(r"\d [^\d]+ \d+\b", h.text) for h in doc.headings)


def test_a_scanned_page_beside_a_text_page_is_read_or_named(tmp_path: Path) -> None:
    doc = _load("urteil_vg_berlin_2k255-12_scan_mostly.pdf", range(13, 15), tmp_path)  # one scan, one text page
    pages = doc.text_by_page().pages
    assert doc.pages == 2 and pages[1].text.strip() and not pages[1].ocr
    # the scan is read by OCR, or named as a page OCR could not read: never dropped silently
    assert (pages[0].ocr and pages[0].text.strip()) or doc.needs_ocr == (1,)
    assert not re.search(r"(?<!\S)- ?\d{1,2} ?-(?!\S)", _text(doc))
