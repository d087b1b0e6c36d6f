"""The PDF loader's rules, each on a small PDF drawn here: page furniture, hyphens and dashes, headings, titles,
footnotes and pages without text. The real PDFs they were found on are in ``test_pdf_real.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from kb.loaders.pdf import join_pdf_lines, load
from kb.loaders.pdf_lines import LINE_END_HYPHEN, _glyph_text
from kb.loaders.pdf_structure import is_junk_title

WIDTH, HEIGHT = A4
BODY = [
    "Die Schule informiert alle Eltern frühzeitig über die Angebote im Stadtteil und in der Stadt.",
    "Das Kommunale Integrationszentrum berät die Familien bei der Wahl der passenden Schule.",
    "Im Elterncafé treffen sich Mütter und Väter einmal in der Woche zum Austausch.",
    "Die Sprachförderung beginnt im Kindergarten und wird in der Grundschule fortgesetzt.",
    "Ehrenamtliche Sprachbegleiterinnen begleiten die Familien zu Terminen bei den Ämtern.",
]


@dataclass
class Text:
    """A line of text at a place, in a font and size."""

    text: str
    x: float = 72
    y: float = 700  # from the bottom of the page, as PDF counts
    size: float = 11
    font: str = "Helvetica"


@dataclass
class Sheet:
    texts: list[Text] = field(default_factory=list)
    image_only: bool = False


def body(y: float = 700, lines: list[str] | None = None, x: float = 72) -> list[Text]:
    return [Text(line, x=x, y=y - 15 * i) for i, line in enumerate(lines or BODY)]


def write(path: Path, sheets: list[Sheet], title: str = "", outline: list[tuple[str, int]] | None = None) -> Path:
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    if title:
        pdf.setTitle(title)
    for number, sheet in enumerate(sheets, 1):
        if sheet.image_only:
            pdf.rect(60, 300, 400, 400, fill=1)  # a scanned page: an image, no text layer
        for text in sheet.texts:
            pdf.setFont(text.font, text.size)
            pdf.drawString(text.x, text.y, text.text)
        for heading, page in outline or []:
            if page == number:
                pdf.bookmarkPage(heading)
                pdf.addOutlineEntry(heading, heading, level=0)
        pdf.showPage()
    pdf.save()
    return path


def page_texts(path: Path) -> list[str]:
    return [page.text for page in load(path).text_by_page().pages]


def test_running_headers_that_alternate_between_odd_and_even_pages_are_removed(tmp_path: Path) -> None:
    sheets = []
    for number in range(1, 7):
        header = f"{number} Deutscher Bundestag – 18. Wahlperiode – 238. Sitzung"
        x = 72 if number % 2 == 0 else 300  # the page number switches sides
        sheets.append(Sheet([Text(header, x=x, y=800, size=9), *body()]))
    texts = page_texts(write(tmp_path / "protokoll.pdf", sheets))
    assert all("Wahlperiode" not in text for text in texts)
    assert all(text.startswith("Die Schule informiert") for text in texts)


def test_page_numbers_in_any_form_are_removed_and_numbers_in_the_text_stay(tmp_path: Path) -> None:
    forms = ["- {n} -", "Seite {n} von 4", "{n}/4", "{n}"]
    sheets = [
        Sheet([Text(form.format(n=n), x=290, y=30, size=9), Text(f"- {n + 1} -", x=480, y=50, size=9), *body()])
        for n, form in enumerate(forms, 1)
    ]
    sheets[1].texts.append(Text("Im Jahr 2023 nahmen 45 Familien teil.", y=500))
    texts = page_texts(write(tmp_path / "urteil.pdf", sheets))
    joined = " ".join(texts)
    for n in range(1, 6):
        assert f"- {n} -" not in joined
    assert "Seite" not in joined and "/4" not in joined
    assert "Im Jahr 2023 nahmen 45 Familien teil." in joined


def test_margin_letters_go_and_paragraph_numbers_in_the_margin_stay(tmp_path: Path) -> None:
    sheets = []
    for number in range(1, 4):
        margin = [Text(letter, x=x, y=y, size=9) for letter, x, y in (("(A)", 30, 700), ("(C)", 540, 700))]
        numbers = [Text(str(3 * number + i), x=545, y=610 - 30 * i, size=11) for i in range(3)]
        sheets.append(Sheet([*margin, *numbers, *body()]))
    texts = page_texts(write(tmp_path / "rand.pdf", sheets))
    joined = " ".join(texts)
    assert "(A)" not in joined and "(C)" not in joined
    assert "4" in texts[0].split() and "11" in texts[2].split()


def test_a_speaker_name_under_the_running_header_is_removed(tmp_path: Path) -> None:
    speakers = ["Dr. Reinhard Brandl", "Dr. Reinhard Brandl", "Agnieszka Brugger", "Achim Post"]
    sheets = [
        Sheet([Text("Deutscher Bundestag – 238. Sitzung", y=800, size=9), Text(name, y=783, size=9), *body(740)])
        for name in speakers
    ]
    joined = " ".join(page_texts(write(tmp_path / "redner.pdf", sheets)))
    assert not any(name in joined for name in speakers)
    assert joined.count("Die Schule informiert") == 4


def test_a_line_repeated_at_the_same_place_anywhere_on_the_page_is_removed(tmp_path: Path) -> None:
    sheets = [Sheet([Text("ENTWURF – NICHT ZITIEREN", x=200, y=420, size=14), *body()]) for _ in range(5)]
    joined = " ".join(page_texts(write(tmp_path / "entwurf.pdf", sheets)))
    assert "ENTWURF" not in joined and joined.count("Ehrenamtliche Sprachbegleiterinnen") == 5


def test_blank_pages_do_not_vote_on_running_lines(tmp_path: Path) -> None:
    header = Text("Integrationskonzept der Stadt Hamm", y=800, size=9)
    sheets = [Sheet([header, *body()]), Sheet(), Sheet(), Sheet(), Sheet([header, *body()])]
    doc = load(write(tmp_path / "leer.pdf", sheets))
    assert "Integrationskonzept der Stadt Hamm" not in " ".join(s.text for s in doc.sections)
    assert doc.pages == 5 and len(doc.text_by_page().pages) == 5


def test_hyphens_capitals_dashes_and_real_hyphens() -> None:
    h = LINE_END_HYPHEN
    assert join_pdf_lines([f"BÜNDNIS 90/DIE GRÜ{h}", "NEN]: So ist es!"]) == "BÜNDNIS 90/DIE GRÜNEN]: So ist es!"
    assert join_pdf_lines(["Bundesverfassungsgericht - Erster Senat -", "unter Mitwirkung"]) == (
        "Bundesverfassungsgericht - Erster Senat - unter Mitwirkung"
    )
    assert join_pdf_lines([f"die Sprach{h}", "förderung"]) == "die Sprachförderung"
    assert join_pdf_lines([f"Sprach{h}", "und Kulturmittler"]) == "Sprach- und Kulturmittler"
    assert join_pdf_lines([f"im DaZ{h}", "Kurs"]) == "im DaZ-Kurs"
    assert join_pdf_lines([f"betreibt Frag{h}", "DenStaat.de"]) == "betreibt FragDenStaat.de"
    assert join_pdf_lines([f"der Konrad{h}", "Adenauer-Stiftung"]) == "der Konrad-Adenauer-Stiftung"


def test_a_word_broken_across_a_page_break_is_joined(tmp_path: Path) -> None:
    sheets = [
        Sheet(body(lines=[*BODY, "Erst wenn ein Stellvertreter-"])),
        Sheet(body(lines=["krieg verhindert werden kann, hilft die Hilfe.", *BODY])),
    ]
    texts = page_texts(write(tmp_path / "umbruch.pdf", sheets))
    assert texts[0].endswith("Erst wenn ein Stellvertreterkrieg")
    assert texts[1].startswith("verhindert werden kann")


def test_headings_from_size_weight_and_bookmarks_but_not_dates_case_numbers_or_contents_lines(
    tmp_path: Path,
) -> None:
    first = Sheet(
        [
            Text("Leitfaden Elternarbeit", y=760, size=22, font="Helvetica-Bold"),
            Text("Inhalt", y=700, size=14, font="Helvetica-Bold"),
            Text("1 Einleitung 3", y=680, font="Helvetica-Bold"),
            Text("2 Ablauf 4", y=665, font="Helvetica-Bold"),
            Text("20. Juni 2017", y=640, font="Helvetica-Bold"),
            Text("- 1 BvR 1978/13 -", y=620, font="Helvetica-Bold"),
            *body(590),
        ]
    )
    second = Sheet(
        [
            Text("Einleitung", y=760, size=16),  # no bold, no size of its own: found by its bookmark
            *body(730),
            Text("Ablauf der Beratung", y=620, font="Helvetica-Bold"),
            *body(600),
        ]
    )
    doc = load(write(tmp_path / "leitfaden.pdf", [first, second], outline=[("Einleitung", 2)]))
    headings = [(h.text, h.page) for h in doc.headings]
    assert ("Leitfaden Elternarbeit", 1) in headings and ("Inhalt", 1) in headings
    assert ("Einleitung", 2) in headings and ("Ablauf der Beratung", 2) in headings
    texts = [h for h, _ in headings]
    assert not any(t.startswith(("1 Einleitung", "2 Ablauf", "20. Juni", "- 1 BvR")) for t in texts)
    sections = [(s.page, s.heading) for s in doc.sections]
    assert (2, "Leitfaden Elternarbeit › Einleitung") in sections or (2, "Einleitung") in sections


def test_title_from_metadata_unless_it_is_a_producer_file_name(tmp_path: Path) -> None:
    cover = Sheet([Text("- 1 -", x=290, y=30, size=9), Text("Integrationskonzept Kreis Kleve", y=700, size=20)])
    good = load(write(tmp_path / "a.pdf", [cover, Sheet(body())], title="Konzept 2024"))
    assert good.metadata.title == "Konzept 2024"
    word = load(write(tmp_path / "b.pdf", [cover, Sheet(body())], title="Microsoft Word - nr009.doc"))
    assert word.metadata.title == "Integrationskonzept Kreis Kleve"
    stamp = Sheet([Text("Ausfertigung", y=780), Text("VERWALTUNGSGERICHT BERLIN", y=740), *body()])
    assert load(write(tmp_path / "c.pdf", [stamp])).metadata.title == "VERWALTUNGSGERICHT BERLIN"
    assert is_junk_title("- 2 -") and is_junk_title("10S58.97U") and not is_junk_title("Leitfaden 2024")


def test_footnote_markers_are_split_from_words_and_footnote_bodies_leave_the_text(tmp_path: Path) -> None:
    page = Sheet(
        [
            Text("Lokale Netzwerke", y=700),
            Text("1", x=72 + 88, y=705, size=6),
            Text("sind für die Arbeit der Zentren unverzichtbar und werden", x=72 + 92, y=700),
            Text("gemeinsam mit den Trägern aufgebaut.", y=685),
            *body(660),
            Text("1 Vgl. den Bericht der Landesregierung 2022.", y=80, size=8),
        ]
    )
    [text] = [s.text for s in load(write(tmp_path / "fn.pdf", [page])).sections if "Netzwerke" in s.text]
    assert "Netzwerke sind für die Arbeit" in text and "Netzwerke1" not in text
    assert "Vgl. den Bericht" not in text


def test_an_image_only_page_inside_a_text_pdf_stays_a_page(tmp_path: Path) -> None:
    sheets = [Sheet(body()), Sheet(image_only=True), Sheet(body())]
    doc = load(write(tmp_path / "gemischt.pdf", sheets))
    pages = doc.text_by_page().pages
    assert doc.pages == 3 and len(pages) == 3 and pages[1].text == ""  # OCR finds no words in a black box
    assert pages[0].text.startswith("Die Schule informiert") and pages[2].text.startswith("Die Schule informiert")


def test_glyph_names_become_letters() -> None:
    assert _glyph_text("f_t") == "ft" and _glyph_text("f_f") == "ff" and _glyph_text("uni00DF") == "ß"
    assert _glyph_text("germandbls") == "ß" and _glyph_text("H17007") == ""
