from pathlib import Path

import pytest

from kb import loaders
from kb.errors import LoaderError
from kb.loaders.pdf import join_lines
from tests import factories


def test_markdown_front_matter_headings_and_markup(small_corpus: Path) -> None:
    doc = loaders.load(small_corpus / "dortmund" / "elterncafe.md")
    assert doc.metadata.title == "Elterncafé an der Grundschule"
    assert doc.metadata.district == "Dortmund"
    assert doc.metadata.topics == ("Eltern und Familien",)
    assert doc.metadata.year == 2023
    assert [s.heading for s in doc.sections] == [
        "Elterncafé an der Grundschule › Ziel",
        "Elterncafé an der Grundschule › Erfahrungen",
    ]
    assert "##" not in " ".join(s.text for s in doc.sections)


def test_markdown_metadata_of_wrong_type_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.md"
    path.write_text(factories.markdown("Titel", "Köln", "Text.", year="zweitausend"), encoding="utf-8")
    with pytest.raises(LoaderError, match="'year' must be a year like 2023"):
        loaders.load(path)


def test_pdf_pages_headers_footers_and_hyphenation(small_corpus: Path) -> None:
    doc = loaders.load(small_corpus / "essen" / "mathe.pdf")
    assert doc.pages == 2 and [s.page for s in doc.sections] == [1, 2]
    text = " ".join(s.text for s in doc.sections)
    assert "Rechnen" in text  # syllable hyphenation joined
    assert "Sprach- und Kulturmittler" in text  # a real hyphen before "und" kept
    assert "DaZ-Kurs" in text  # a compound hyphen kept
    assert "Wortspeicherheft" in text
    assert "Seite 1 von 2" not in text and "Kommunales Integrationszentrum Essen" not in text
    assert doc.metadata.district == "Essen"  # from the sidecar


def test_join_lines_rules() -> None:
    assert join_lines(["die Sprach-", "förderung"]) == "die Sprachförderung"
    assert join_lines(["Sprach-", "und Kulturmittler"]) == "Sprach- und Kulturmittler"
    assert join_lines(["im DaZ-", "Kurs"]) == "im DaZ-Kurs"
    assert join_lines(["das KAoA-", "kompakt-Angebot"]) == "das KAoA-kompakt-Angebot"
    assert join_lines(["des Be -", "richts"]) == "des Berichts"
    assert join_lines(["Ende.", "Anfang"]) == "Ende. Anfang"


def test_text_in_latin1_is_decoded_not_garbled(small_corpus: Path) -> None:
    doc = loaders.load(small_corpus / "duisburg" / "seiteneinstieg.txt")
    assert "Erstförderung" in " ".join(s.text for s in doc.sections)
    assert doc.metadata.title == "Schulplatzvergabe für Seiteneinsteiger"


def test_utf16_text(tmp_path: Path) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes("Über Mehrsprachigkeit in der Familie.".encode("utf-16"))
    assert loaders.load(path).sections[0].text == "Über Mehrsprachigkeit in der Familie."


def test_docx_headings_and_title(small_corpus: Path) -> None:
    doc = loaders.load(small_corpus / "hamm" / "sprachbegleitung.docx")
    assert doc.metadata.title == "Ehrenamtliche Sprachbegleitung"
    assert doc.sections[-1].heading.endswith("Qualifizierung")


def test_html_main_text_without_scripts_and_navigation(small_corpus: Path) -> None:
    doc = loaders.load(small_corpus / "bonn" / "bibliothek.html")
    text = " ".join(s.text for s in doc.sections)
    assert "Vorlesestunden" in text
    assert "alert" not in text and "Impressum" not in text and "Startseite" not in text
    assert doc.metadata.title == "Die Bibliothek als Begegnungsort"


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("leer.pdf", lambda p, src: p.write_bytes(b""), "empty file"),
        ("kaputt.pdf", lambda p, src: p.write_bytes(src.read_bytes()[:400]), "corrupt or truncated PDF"),
        ("nicht-pdf.pdf", lambda p, src: p.write_bytes(b"Hallo, ich bin kein PDF.\n" * 10), "corrupt"),
        ("scan.pdf", lambda p, src: factories.write_image_only_pdf(p), "no text layer (needs OCR)"),
        ("geheim.pdf", lambda p, src: factories.write_encrypted_pdf(p, src, "geheim"), "encrypted PDF"),
        ("binaer.txt", lambda p, src: p.write_bytes(bytes(range(256)) * 20), "binary data"),
        ("alt.doc", lambda p, src: p.write_bytes(b"\xd0\xcf\x11\xe0 old word"), "unsupported file type '.doc'"),
        ("kein-zip.docx", lambda p, src: p.write_bytes(b"PK nope"), "not a Word (.docx) file"),
    ],
)
def test_bad_files_give_a_clear_reason(tmp_path: Path, small_corpus: Path, name: str, make, reason: str) -> None:
    path = tmp_path / name
    make(path, small_corpus / "essen" / "mathe.pdf")
    with pytest.raises(LoaderError) as info:
        loaders.load(path)
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_encrypted_pdf_with_empty_password_is_read(tmp_path: Path, small_corpus: Path) -> None:
    path = factories.write_encrypted_pdf(tmp_path / "offen.pdf", small_corpus / "essen" / "mathe.pdf", "")
    doc = loaders.load(path)
    assert "Textaufgaben" in doc.sections[0].text


def test_pdf_numbered_headings_become_section_headings(tmp_path: Path) -> None:
    body = [
        f"Die Schule informiert {who} frühzeitig über die Angebote im Stadtteil und in der Stadt."
        for who in ("alle Eltern", "die Familien", "die Kinder", "das Kollegium", "die Vereine", "die Presse")
    ]
    path = factories.write_pdf(
        tmp_path / "konzept.pdf",
        [
            ["1. Ausgangslage", body[0], body[1], "2. Zusammenarbeit mit Eltern", body[2]],
            [body[3], "3. Ausblick", body[4], body[5]],
        ],
    )
    doc = loaders.load(path)
    assert [(s.page, s.heading) for s in doc.sections] == [
        (1, "1. Ausgangslage"),
        (1, "2. Zusammenarbeit mit Eltern"),
        (2, "2. Zusammenarbeit mit Eltern"),
        (2, "3. Ausblick"),
    ]


def test_heading_trail_closes_headings_of_the_same_level_or_deeper() -> None:
    from kb.loaders.headings import HeadingTrail

    trail = HeadingTrail()
    assert trail.context == "" and trail.first == ""
    trail.enter(1, "Leitfaden")
    trail.enter(2, "Ablauf")
    trail.enter(3, "Anmeldung")
    assert trail.context == "Leitfaden › Ablauf › Anmeldung"
    trail.enter(2, "Kosten")
    assert trail.context == "Leitfaden › Kosten"
    trail.enter(1, "Anhang")
    assert trail.context == "Anhang" and trail.first == "Leitfaden"


def test_markdown_html_and_docx_share_the_heading_trail(tmp_path: Path) -> None:
    markdown = tmp_path / "a.md"
    markdown.write_text("# Eins\n\n## Zwei\n\n### Drei\n\nText a.\n\n## Vier\n\nText b.\n", encoding="utf-8")
    html = tmp_path / "a.html"
    html.write_text(
        "<html><body><h1>Eins</h1><h2>Zwei</h2><h3>Drei</h3><p>Text a.</p>"
        "<h2>Vier</h2><p>Text b.</p></body></html>",
        encoding="utf-8",
    )
    for path in (markdown, html):
        document = loaders.load(path)
        assert [(s.heading, s.text) for s in document.sections] == [
            ("Eins › Zwei › Drei", "Text a."),
            ("Eins › Vier", "Text b."),
        ]
        assert document.metadata.title == "Eins"
