"""OpenDocument text (.odt) and PowerPoint (.pptx): read with the standard library, a slide is a page.

The files are built here as real ones are: the zip parts LibreOffice and PowerPoint write, with their namespaces
(mimetype first and stored for ODT), so the tests need neither program.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb.api.app import create_app
from kb.cli import app
from kb.curation.db import CurationDB
from kb.curation.keys import create_key
from kb.curation.uploads import detect_suffix
from kb.embedder import Embedder
from kb.errors import LoaderError, UnsupportedFileError
from kb.ingest import Ingestor
from kb.loaders import SUPPORTED_SUFFIXES, load
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import make_small_corpus

# --- building files ---------------------------------------------------------------------------------------------

ODT_MIMETYPE = "application/vnd.oasis.opendocument.text"
_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
)


def odt_bytes(
    body: str,
    title: str | None = None,
    content: str | None = None,
    meta: bool = True,
    mimetype: str = ODT_MIMETYPE,
) -> bytes:
    """An .odt file whose ``office:text`` holds ``body`` (ODF XML); ``content`` replaces the whole content.xml."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
            'manifest:version="1.3">'
            f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODT_MIMETYPE}"/>'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            '<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>",
        )
        if content is None:
            content = (
                f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS} office:version="1.3">'
                "<office:body><office:text>"
                '<text:sequence-decls><text:sequence-decl text:display="none" text:name="Table"/>'
                "</text:sequence-decls>"
                f"{body}</office:text></office:body></office:document-content>"
            )
        if content:
            archive.writestr("content.xml", content)
        if meta:
            title_xml = f"<dc:title>{title}</dc:title>" if title is not None else ""
            archive.writestr(
                "meta.xml",
                f'<?xml version="1.0" encoding="UTF-8"?><office:document-meta {_ODF_NS} office:version="1.3">'
                f"<office:meta><meta:generator>LibreOffice/7.4</meta:generator>{title_xml}</office:meta>"
                "</office:document-meta>",
            )
    return buffer.getvalue()


_P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
_A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
_R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_SLIDE_REL = f"{_R_NS}/slide"
_NOTES_REL = f"{_R_NS}/notesSlide"


def _paragraphs(texts: list[str]) -> str:
    return "".join(f'<a:p><a:r><a:rPr lang="de-DE"/><a:t>{t}</a:t></a:r></a:p>' for t in texts)


def shape(texts: list[str], placeholder: str | None = None, shape_id: int = 2) -> str:
    """A text shape (``placeholder``: "title", "ctrTitle", "body", "sldNum", … or None for a free text box)."""
    ph = "" if placeholder is None else f'<p:ph type="{placeholder}"/>'
    return (
        f'<p:sp><p:nvSpPr><p:cNvPr id="{shape_id}" name="Shape {shape_id}"/><p:cNvSpPr/><p:nvPr>{ph}</p:nvPr>'
        f"</p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/><a:lstStyle/>{_paragraphs(texts)}</p:txBody></p:sp>"
    )


def table(rows: list[list[str]]) -> str:
    columns = '<a:gridCol w="3000000"/>' * len(rows[0])
    cells = "".join(
        "<a:tr>"
        + "".join(f"<a:tc><a:txBody><a:bodyPr/>{_paragraphs([c])}</a:txBody></a:tc>" for c in row)
        + "</a:tr>"
        for row in rows
    )
    return (
        '<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="9" name="Tabelle"/><p:cNvGraphicFramePr/><p:nvPr/>'
        '</p:nvGraphicFramePr><p:xfrm/><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/'
        f'drawingml/2006/table"><a:tbl><a:tblGrid>{columns}</a:tblGrid>{cells}</a:tbl></a:graphicData></a:graphic>'
        "</p:graphicFrame>"
    )


def _slide_xml(shapes: str, root: str = "p:sld") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><{root} xmlns:a="{_A_NS}" xmlns:r="{_R_NS}" '
        f'xmlns:p="{_P_NS}"><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/>'
        f"</p:nvGrpSpPr><p:grpSpPr/>{shapes}</p:spTree></p:cSld></{root}>"
    )


def _rels(items: list[tuple[str, str, str]]) -> str:
    body = "".join(f'<Relationship Id="{i}" Type="{t}" Target="{target}"/>' for i, t, target in items)
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    return f'{head}<Relationships xmlns="{_REL_NS}">{body}</Relationships>'


def pptx_bytes(
    slides: list[str],
    title: str | None = None,
    notes: dict[int, list[str]] | None = None,
    order: list[int] | None = None,
) -> bytes:
    """A .pptx file; ``slides`` are the shapes of each slide part (slide1.xml, …), ``order`` the part numbers in
    the presentation's order (default: as given), ``notes`` the speaker notes by part number."""
    notes = notes or {}
    order = order or list(range(1, len(slides) + 1))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        overrides = "".join(
            f'<Override PartName="/ppt/slides/slide{n}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.presentationml.slide+xml"/>'
            for n in range(1, len(slides) + 1)
        )
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/ppt/presentation.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"/>'
            f"{overrides}</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            _rels(
                [
                    ("rId1", f"{_R_NS}/officeDocument", "ppt/presentation.xml"),
                    (
                        "rId2",
                        "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties",
                        "docProps/core.xml",
                    ),
                ]
            ),
        )
        ids = "".join(f'<p:sldId id="{255 + i}" r:id="rId{n + 10}"/>' for i, n in enumerate(order, start=1))
        archive.writestr(
            "ppt/presentation.xml",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:presentation xmlns:a="{_A_NS}" '
            f'xmlns:r="{_R_NS}" xmlns:p="{_P_NS}"><p:sldIdLst>{ids}</p:sldIdLst>'
            '<p:sldSz cx="12192000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>',
        )
        archive.writestr(
            "ppt/_rels/presentation.xml.rels",
            _rels([(f"rId{n + 10}", _SLIDE_REL, f"slides/slide{n}.xml") for n in range(1, len(slides) + 1)]),
        )
        for n, shapes in enumerate(slides, start=1):
            archive.writestr(f"ppt/slides/slide{n}.xml", _slide_xml(shapes))
            if n in notes:
                archive.writestr(
                    f"ppt/slides/_rels/slide{n}.xml.rels",
                    _rels([("rId2", _NOTES_REL, f"../notesSlides/notesSlide{n}.xml")]),
                )
                archive.writestr(
                    f"ppt/notesSlides/notesSlide{n}.xml",
                    _slide_xml(
                        shape([], "sldImg") + shape(notes[n], "body", 3) + shape([str(n)], "sldNum", 4), "p:notes"
                    ),
                )
        title_xml = f"<dc:title>{title}</dc:title>" if title is not None else ""
        archive.writestr(
            "docProps/core.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><cp:coreProperties xmlns:cp="http://schemas.'
            'openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"{title_xml}<dc:creator>KI Essen</dc:creator></cp:coreProperties>",
        )
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- ODT --------------------------------------------------------------------------------------------------------

ODT_BODY = (
    # a deletion kept for change tracking: the deleted words are no longer the document's
    '<text:tracked-changes><text:changed-region xml:id="ct1" text:id="ct1"><text:deletion><office:change-info>'
    "<dc:creator>KI Essen</dc:creator><dc:date>2026-11-30T10:00:00</dc:date></office:change-info>"
    "<text:p>Gestrichener Entwurfstext</text:p></text:deletion></text:changed-region></text:tracked-changes>"
    '<text:h text:style-name="Heading_20_1" text:outline-level="1">Sprachcafé im Stadtteil</text:h>'
    '<text:p>Das Sprach<text:span>café</text:span> trifft sich<text:s text:c="3"/>jeden Dienstag'
    "<text:tab/>im Familien\u00adzentrum.<text:line-break/>Alle sind willkommen.</text:p>"
    '<text:h text:outline-level="2">Ablauf</text:h>'
    "<text:list><text:list-item><text:p>Begrüßung in vielen Sprachen</text:p></text:list-item>"
    "<text:list-item><text:p>Gespräche an Thementischen</text:p>"
    "<text:list><text:list-item><text:p>Kochen und Rezepte</text:p></text:list-item></text:list>"
    "</text:list-item></text:list>"
    '<text:h text:outline-level="3">Zeiten</text:h>'
    '<table:table table:name="Zeiten"><table:table-column table:number-columns-repeated="2"/>'
    "<table:table-header-rows><table:table-row><table:table-cell><text:p>Tag</text:p></table:table-cell>"
    "<table:table-cell><text:p>Uhrzeit</text:p></table:table-cell></table:table-row></table:table-header-rows>"
    "<table:table-row><table:table-cell><text:p>Dienstag</text:p></table:table-cell>"
    "<table:table-cell><text:p>15 bis 17 Uhr</text:p></table:table-cell></table:table-row>"
    '<table:table-row><table:table-cell table:number-columns-spanned="2"><text:p>Ferien: geschlossen</text:p>'
    "</table:table-cell><table:covered-table-cell/></table:table-row></table:table>"
    '<text:h text:outline-level="2">Kontakt</text:h>'
    '<text:p>Kommunales Integrationszentrum<text:note text:note-class="footnote"><text:note-citation>1'
    "</text:note-citation><text:note-body><text:p>Im Rathaus, Raum 12.</text:p></text:note-body></text:note>"
    "</text:p>"
    '<text:p>Anmeldung nicht nötig.<text:change text:change-id="ct1"/></text:p>'
    "<text:p/>"
)


def test_odt_text_headings_lists_and_tables(tmp_path: Path) -> None:
    document = load(_write(tmp_path / "sprachcafe.odt", odt_bytes(ODT_BODY, title="Sprachcafé Essen")))

    assert document.file_type == "odt" and document.metadata.title == "Sprachcafé Essen"
    texts = [s.text for s in document.sections]
    assert texts == [
        "Das Sprachcafé trifft sich jeden Dienstag im Familienzentrum. Alle sind willkommen.",
        "Begrüßung in vielen Sprachen",
        "Gespräche an Thementischen",
        "Kochen und Rezepte",
        "Tag ; Uhrzeit",
        "Dienstag ; 15 bis 17 Uhr",
        "Ferien: geschlossen",
        "Kommunales Integrationszentrum Im Rathaus, Raum 12.",
        "Anmeldung nicht nötig.",
    ]
    contexts = [s.heading for s in document.sections]
    assert contexts[0] == "Sprachcafé im Stadtteil"
    assert contexts[1] == "Sprachcafé im Stadtteil › Ablauf"
    assert contexts[4] == "Sprachcafé im Stadtteil › Ablauf › Zeiten"
    assert contexts[-1] == "Sprachcafé im Stadtteil › Kontakt"  # a level-2 heading closes level 3
    assert [h.text for h in document.headings] == ["Sprachcafé im Stadtteil", "Ablauf", "Zeiten", "Kontakt"]
    assert all(s.page is None for s in document.sections) and document.pages is None
    shown = document.text_by_page()
    assert [p.page for p in shown.pages] == [1] and "Gestrichener" not in shown.pages[0].text
    assert [(h.text, h.page) for h in shown.headings][:2] == [("Sprachcafé im Stadtteil", 1), ("Ablauf", 1)]


def test_odt_title_falls_back_to_the_first_heading_then_the_file_name(tmp_path: Path) -> None:
    first = load(_write(tmp_path / "a.odt", odt_bytes(ODT_BODY, title="")))
    assert first.metadata.title == "Sprachcafé im Stadtteil"
    plain = load(
        _write(
            tmp_path / "elternbrief.odt", odt_bytes("<text:p>Liebe Eltern, morgen ist frei.</text:p>", meta=False)
        )
    )
    assert plain.metadata.title == "elternbrief" and plain.headings == ()
    side = _write(tmp_path / "b.odt", odt_bytes(ODT_BODY, title="Aus den Eigenschaften"))
    (tmp_path / "b.odt.meta.yaml").write_text(
        'title: "Aus der Sidecar-Datei"\ndistrict: Essen\n', encoding="utf-8"
    )
    described = load(side)
    assert described.metadata.title == "Aus der Sidecar-Datei" and described.metadata.district == "Essen"


# --- PPTX -------------------------------------------------------------------------------------------------------

SLIDES = [
    shape(["Willkommenslotsen"], "ctrTitle") + shape(["Jahresbericht 2025"], "subTitle", 3),
    shape(["Was wir tun"], "title")
    + shape(["Lotsen begleiten neu zugewanderte Familien", "zu Ämtern, Ärzten und Kitas"], None, 3)
    + shape(["2"], "sldNum", 4)
    + shape(["Vertraulich"], "ftr", 5),
    "",  # an empty slide (a picture only, say)
    shape(["Zahlen"], "title") + table([["Stadtteil", "Familien"], ["Altenessen", "42"], ["Katernberg", "17"]]),
    '<p:grpSp><p:nvGrpSpPr><p:cNvPr id="7" name="Gruppe"/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>'
    + shape(["Gruppierter Text über Patenschaften"], None, 8)
    + "</p:grpSp>",
]


def test_pptx_a_slide_is_a_page_with_its_title_as_heading(tmp_path: Path) -> None:
    notes = {2: ["Hier von der Familie Yilmaz erzählen."]}
    document = load(
        _write(tmp_path / "lotsen.pptx", pptx_bytes(SLIDES, title="Willkommenslotsen Essen", notes=notes))
    )

    assert document.file_type == "pptx" and document.pages == 5
    assert document.metadata.title == "Willkommenslotsen Essen"
    assert [(h.text, h.page) for h in document.headings] == [
        ("Willkommenslotsen", 1),
        ("Was wir tun", 2),
        ("Zahlen", 4),
    ]
    by_page = [(s.page, s.heading, s.text) for s in document.sections]
    assert by_page == [
        (1, "Willkommenslotsen", "Jahresbericht 2025"),
        (2, "Was wir tun", "Lotsen begleiten neu zugewanderte Familien"),
        (2, "Was wir tun", "zu Ämtern, Ärzten und Kitas"),
        (2, "Was wir tun", "Hier von der Familie Yilmaz erzählen."),  # speaker notes: text of their slide
        (4, "Zahlen", "Stadtteil ; Familien"),
        (4, "Zahlen", "Altenessen ; 42"),
        (4, "Zahlen", "Katernberg ; 17"),
        (5, "", "Gruppierter Text über Patenschaften"),
    ]
    pages = document.text_by_page().pages
    assert [p.page for p in pages] == [1, 2, 3, 4, 5]
    assert pages[2].text == ""  # the empty slide is kept as a page without text
    assert "Vertraulich" not in pages[1].text and "\n\n2" not in pages[1].text  # footer and slide number


def test_pptx_slides_follow_the_presentation_order_and_the_title_falls_back(tmp_path: Path) -> None:
    slides = [
        shape(["Erste Datei"], "title") + shape(["Text eins"], "body", 3),
        shape(["Zweite Datei"], "title") + shape(["Text zwei"], "body", 3),
    ]
    document = load(_write(tmp_path / "folien.pptx", pptx_bytes(slides, order=[2, 1])))
    assert [(h.text, h.page) for h in document.headings] == [("Zweite Datei", 1), ("Erste Datei", 2)]
    assert document.metadata.title == "Zweite Datei"  # no title in the properties: the first slide's
    generic = load(_write(tmp_path / "g.pptx", pptx_bytes(slides, title="PowerPoint-Präsentation")))
    assert generic.metadata.title == "Erste Datei"
    untitled = load(_write(tmp_path / "ohne-titel.pptx", pptx_bytes([shape(["Nur ein Textfeld hier"])])))
    assert untitled.metadata.title == "ohne-titel" and untitled.pages == 1


# --- files an office program wrote ---------------------------------------------------------------------------

OFFICE_DATA = Path(__file__).parent / "data" / "office"
PPTX_NOTES = {2: ["Hier von der Familie Yilmaz erzählen."]}


@pytest.mark.parametrize(
    ("name", "built"),
    [
        ("sprachcafe-libreoffice.odt", lambda: odt_bytes(ODT_BODY, title="Sprachcafé Essen")),
        ("lotsen-libreoffice.pptx", lambda: pptx_bytes(SLIDES, title="Willkommenslotsen Essen", notes=PPTX_NOTES)),
    ],
)
def test_a_file_libreoffice_wrote_reads_as_the_file_it_was_made_from(
    tmp_path: Path, name: str, built: Any
) -> None:
    """LibreOffice saved the built files again (its own styles, layouts, masters, change-tracking ids)."""
    real = load(OFFICE_DATA / name)
    ours = load(_write(tmp_path / name, built()))
    assert real.sections == ours.sections and real.sections
    assert real.headings == ours.headings and real.pages == ours.pages
    assert real.metadata == ours.metadata
    assert detect_suffix((OFFICE_DATA / name).read_bytes(), "upload") == Path(name).suffix


# --- broken files -----------------------------------------------------------------------------------------------


def _zip(parts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        (
            "kein-zip.odt",
            b"PK\x03\x04 this is not really a zip archive",
            "not a readable OpenDocument text (.odt)",
        ),
        ("ohne-inhalt.odt", odt_bytes("", content=""), "no content.xml"),
        (
            "kaputt.odt",
            odt_bytes("", content="<office:document-content><unclosed>"),
            "content.xml is not valid XML",
        ),
        (
            "entitaeten.odt",
            odt_bytes("", content='<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'),
            "declares XML entities",
        ),
        ("leer.odt", odt_bytes("<text:p>  </text:p>"), "contains no text"),
        ("kein-zip.pptx", b"Dies ist gar keine Praesentation", "not a readable PowerPoint (.pptx)"),
        ("ohne-praesentation.pptx", _zip({"[Content_Types].xml": "<Types/>"}), "no ppt/presentation.xml"),
        (
            "kaputte-folie.pptx",
            _zip(
                {
                    "ppt/presentation.xml": f'<p:presentation xmlns:p="{_P_NS}" xmlns:r="{_R_NS}"><p:sldIdLst>'
                    '<p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>',
                    "ppt/_rels/presentation.xml.rels": _rels([("rId2", _SLIDE_REL, "slides/slide1.xml")]),
                    "ppt/slides/slide1.xml": "<p:sld><nicht geschlossen",
                }
            ),
            "ppt/slides/slide1.xml is not valid XML",
        ),
        (
            "fehlende-folie.pptx",
            _zip(
                {
                    "ppt/presentation.xml": f'<p:presentation xmlns:p="{_P_NS}" xmlns:r="{_R_NS}"><p:sldIdLst>'
                    '<p:sldId id="256" r:id="rId9"/></p:sldIdLst></p:presentation>',
                    "ppt/_rels/presentation.xml.rels": _rels([("rId2", _SLIDE_REL, "slides/slide1.xml")]),
                }
            ),
            "slide rId9 has no part",
        ),
        ("leer.pptx", pptx_bytes(["", ""]), "contains no text"),
    ],
)
def test_broken_office_files_are_reported_with_name_and_reason(
    tmp_path: Path, name: str, data: bytes, says: str
) -> None:
    with pytest.raises(LoaderError) as caught:
        load(_write(tmp_path / name, data))
    assert name in str(caught.value) and says in str(caught.value)


def test_an_office_zip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), ODT_MIMETYPE, compress_type=zipfile.ZIP_STORED)
        with archive.open("content.xml", "w", force_zip64=True) as member:
            for _ in range(210):
                member.write(bytes(1024 * 1024))
    with pytest.raises(LoaderError, match="zip bomb"):
        load(_write(tmp_path / "bombe.odt", buffer.getvalue()))


# --- uploads: the type comes from the content -------------------------------------------------------------------


def test_uploads_are_told_apart_by_their_content() -> None:
    odt, pptx = odt_bytes(ODT_BODY), pptx_bytes(SLIDES)
    assert ".odt" in SUPPORTED_SUFFIXES and ".pptx" in SUPPORTED_SUFFIXES
    assert detect_suffix(odt, "bericht.odt") == ".odt"
    assert detect_suffix(odt, "upload") == ".odt"  # no name needed
    assert detect_suffix(pptx, "folien.pptx") == ".pptx"
    with pytest.raises(UnsupportedFileError, match="named like a PowerPoint"):
        detect_suffix(odt, "folien.pptx")
    with pytest.raises(UnsupportedFileError, match="named like an OpenDocument"):
        detect_suffix(pptx, "bericht.odt")
    spreadsheet = odt_bytes("", mimetype="application/vnd.oasis.opendocument.spreadsheet")  # not an .odt
    with pytest.raises(UnsupportedFileError):
        detect_suffix(spreadsheet, "tabelle.ods")


# --- through ingestion, the API and `kb show` -------------------------------------------------------------------


@pytest.fixture(scope="module")
def installation(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[Settings, TestClient, str]]:
    root = tmp_path_factory.mktemp("office")
    settings = Settings(
        corpus_dir=make_small_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data"
    )
    Ingestor(settings, embedder).run()
    db = CurationDB(settings.data_dir)
    key = create_key(db, "curator", "LaKI Redaktion")[1]
    db.close()
    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as client:
        yield settings, client, key


def _show_json(settings: Settings, target: str) -> Any:
    options = ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    result = CliRunner().invoke(app, [*options, "--data-dir", str(settings.data_dir), "show", target, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("name", "make", "query", "pages"),
    [
        ("sprachcafe.odt", lambda: odt_bytes(ODT_BODY, title="Sprachcafé Essen"), "Sprachcafé Thementische", 1),
        (
            "lotsen.pptx",
            lambda: pptx_bytes(SLIDES, title="Willkommenslotsen Essen"),
            "Willkommenslotsen Altenessen",
            5,
        ),
    ],
)
def test_an_uploaded_office_file_is_detected_searchable_and_shown_page_by_page(
    installation: tuple[Settings, TestClient, str], name: str, make: Any, query: str, pages: int
) -> None:
    settings, client, key = installation
    data = make()
    response = client.post(
        "/documents",
        files={"file": ("upload", data)},  # no suffix: the content decides
        data={"metadata": json.dumps({"district": "Essen"})},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    hits = client.get("/search", params={"q": query, "k": 3}).json()["results"]
    assert hits[0]["document_id"] == body["id"], [h["title"] for h in hits]
    assert client.get(body["document"]["file_url"]).content == data

    shown = _show_json(settings, body["id"])
    assert shown["file_type"] == Path(name).suffix[1:]
    assert [p["page"] for p in shown["pages"]] == list(range(1, pages + 1))
    assert client.get(f"/documents/{body['id']}/text").json() == shown
    if name.endswith(".pptx"):
        assert shown["title"] == "Willkommenslotsen Essen"
        assert shown["pages"][2]["text"] == "" and "Altenessen ; 42" in shown["pages"][3]["text"]
        assert [(h["text"], h["page"]) for h in shown["headings"]] == [
            ("Willkommenslotsen", 1),
            ("Was wir tun", 2),
            ("Zahlen", 4),
        ]
    else:
        assert shown["title"] == "Sprachcafé Essen"
        assert "Dienstag ; 15 bis 17 Uhr" in shown["pages"][0]["text"]
        assert ("Zeiten", 1) in [(h["text"], h["page"]) for h in shown["headings"]]


def test_odt_and_pptx_words_broken_at_a_line_break_are_joined(tmp_path: Path) -> None:
    odt = load(
        _write(
            tmp_path / "brief.odt",
            odt_bytes(
                "<text:p>Der Kurs befä-<text:line-break/>higt Eltern, Sprach- und Kulturmittler "
                "per E-Mail zu erreichen.</text:p>",
                meta=False,
            ),
        )
    )
    assert [s.text for s in odt.sections] == [
        "Der Kurs befähigt Eltern, Sprach- und Kulturmittler per E-Mail zu erreichen."
    ]
    slides = [
        shape(["Fortbildung"], "title") + shape(["Kompe- tenzaufbau für Schul- oder Kitaleitungen"], None, 3)
    ]
    deck = load(_write(tmp_path / "deck.pptx", pptx_bytes(slides)))
    assert "Kompetenzaufbau für Schul- oder Kitaleitungen" in deck.sections[0].text
