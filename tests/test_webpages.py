"""Web pages: the main content only (no menu, cookie banner, skip link, share buttons or footer), headings kept;
and words hyphenated at a line end joined again in every format that is not a PDF."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb import loaders
from kb.documents import Document
from kb.embedder import Embedder
from kb.fields import MODES
from kb.ingest import Ingestor
from kb.loaders.hyphens import repair_hyphens
from kb.search import Searcher
from kb.settings import Settings
from tests import factories

#: A municipal page as content management systems render it: the article inside a frame of furniture.
MUNICIPAL_PAGE = """<!DOCTYPE html>
<html lang="de">
<head>
  <meta charset="utf-8">
  <title>Kommunales Integrationszentrum | Stadt Musterstadt</title>
  <meta property="og:title" content="Kommunales Integrationszentrum Musterstadt">
  <script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}</script>
  <style>.cookie-notice { position: fixed; bottom: 0; }</style>
</head>
<body>
  <a href="#inhalt">Zum Hauptinhalt springen</a>
  <div class="cookie-notice" id="cookie-banner">
    <p>Diese Website verwendet Cookies. Einige sind notwendig, andere helfen uns, das Angebot zu verbessern.
       Sie können selbst entscheiden, welche Cookies Sie zulassen.</p>
    <button>Alle Cookies akzeptieren</button> <button>Nur notwendige Cookies</button>
    <a href="/datenschutz">Datenschutzerklärung</a>
  </div>
  <header>
    <a class="logo" href="/">Stadt Musterstadt</a>
    <nav aria-label="Hauptmenü">
      <ul>
        <li><a href="/">Startseite</a></li>
        <li><a href="/rathaus">Rathaus und Verwaltung</a></li>
        <li><a href="/leben">Leben in Musterstadt</a></li>
        <li><a href="/wirtschaft">Wirtschaft und Stadtentwicklung</a></li>
      </ul>
    </nav>
  </header>
  <main id="inhalt">
    <article>
      <h1>Kommunales Integrationszentrum</h1>
      <p>Das Kommunale Integrationszentrum unterstützt Kinder, Jugendliche und Familien mit
         Einwanderungsgeschichte. Wir beraten Schulen und Kitas bei der sprachlichen Bildung und vermitteln
         Sprach- und Kulturmittler für Elterngespräche in mehr als zwanzig Sprachen.</p>
      <h2>Beratung für Schulen</h2>
      <p>Lehrkräfte werden befä-<br>higt, Kinder mit geringen Deutschkenntnissen im Fachunterricht gezielt
         zu fördern. Die Fortbildungen zum Kompe- tenzaufbau finden zweimal im Jahr im Bildungshaus statt.</p>
      <p>Die Schul- oder Kitaleitung vereinbart per E-Mail einen Beratungstermin mit unserem Team.</p>
      <h2>Angebote im Überblick</h2>
      <table>
        <tr><th>Angebot</th><th>Zielgruppe</th></tr>
        <tr><td>Rucksack-Programm</td><td>Eltern von Kitakindern</td></tr>
        <tr><td>KOMM-AN Sprachcafé</td><td>Neu zugewanderte Erwachsene</td></tr>
      </table>
      <p>Eltern- und Familienarbeit ist ein Schwerpunkt, auch in deutsch-türkischen Elterngruppen.</p>
    </article>
    <div class="social-share">
      <span>Seite teilen:</span>
      <a href="https://www.facebook.com/sharer">auf Facebook teilen</a>
      <a href="https://x.com/intent/post">auf X (vormals Twitter) teilen</a>
      <a href="mailto:?subject=Integrationszentrum">per E-Mail versenden</a>
    </div>
  </main>
  <footer>
    <ul>
      <li><a href="/impressum">Impressum</a></li>
      <li><a href="/datenschutz">Datenschutz</a></li>
      <li><a href="/barrierefreiheit">Erklärung zur Barrierefreiheit</a></li>
    </ul>
    <p>© 2026 Stadt Musterstadt, Rathausplatz 1</p>
  </footer>
</body>
</html>
"""

#: Words of the page's furniture: none may reach a section, a heading or a search snippet.
FURNITURE = (
    "springen",
    "Cookie",
    "akzeptieren",
    "Startseite",
    "Rathaus und Verwaltung",
    "teilen",
    "Twitter",
    "Facebook",
    "Impressum",
    "Barrierefreiheit",
    "Rathausplatz",
    "dataLayer",
)


def _page(tmp_path: Path, source: str, name: str = "seite.html") -> Document:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return loaders.load(path)


def _text(document: Document) -> str:
    return "\n".join(section.text for section in document.sections)


def test_a_municipal_page_gives_its_article_with_headings_and_table(tmp_path: Path) -> None:
    document = _page(tmp_path, MUNICIPAL_PAGE)
    text = _text(document)
    assert "unterstützt Kinder, Jugendliche und Familien mit Einwanderungsgeschichte" in text
    assert "Sprach- und Kulturmittler für Elterngespräche" in text
    assert "per E-Mail einen Beratungstermin" in text
    assert "Rucksack-Programm ; Eltern von Kitakindern" in text  # a table row stays one line
    assert "KOMM-AN Sprachcafé ; Neu zugewanderte Erwachsene" in text
    assert [heading.text for heading in document.headings] == [
        "Kommunales Integrationszentrum",
        "Beratung für Schulen",
        "Angebote im Überblick",
    ]
    by_text = {section.text: section.heading for section in document.sections}
    lehrkraefte = next(t for t in by_text if t.startswith("Lehrkräfte"))
    assert by_text[lehrkraefte] == "Kommunales Integrationszentrum › Beratung für Schulen"
    assert document.metadata.title == "Kommunales Integrationszentrum"
    assert document.file_type == "html"


#: The same page with the banner and the share bar in boxes whose class names say nothing: found by their content.
PLAIN_CLASSES_PAGE = MUNICIPAL_PAGE.replace('class="cookie-notice" id="cookie-banner"', 'class="hinweis"').replace(
    'class="social-share"', 'class="werkzeuge"'
)


@pytest.mark.parametrize("source", [MUNICIPAL_PAGE, PLAIN_CLASSES_PAGE], ids=["named", "plain"])
def test_no_furniture_reaches_the_sections(tmp_path: Path, source: str) -> None:
    assert source.count("Zum Hauptinhalt springen") == 1 and source.count("vormals Twitter") == 1
    document = _page(tmp_path, source)
    assert "Einwanderungsgeschichte" in _text(document)
    read = _text(document) + "\n" + "\n".join(h.text for h in document.headings)
    for word in FURNITURE:
        assert word.lower() not in read.lower(), word


def test_line_breaks_inside_words_are_joined_on_a_web_page(tmp_path: Path) -> None:
    text = _text(_page(tmp_path, MUNICIPAL_PAGE))
    assert "werden befähigt, Kinder" in text and "befä-" not in text
    assert "zum Kompetenzaufbau" in text
    assert "Die Schul- oder Kitaleitung" in text
    assert "Eltern- und Familienarbeit" in text and "deutsch-türkischen" in text


def test_a_tiny_page_is_read_whole_with_its_headings(tmp_path: Path) -> None:
    document = _page(
        tmp_path,
        "<html><head><title>Öffnungszeiten</title></head><body><nav><a href='/'>Startseite</a></nav>"
        "<h1>Bürgerbüro</h1><h2>Öffnungszeiten</h2><p>Montag bis Freitag 8 bis 12 Uhr.</p>"
        "<h2>Kontakt</h2><p>Telefon 0123 4567.</p></body></html>",
    )
    assert [(s.heading, s.text) for s in document.sections] == [
        ("Bürgerbüro › Öffnungszeiten", "Montag bis Freitag 8 bis 12 Uhr."),
        ("Bürgerbüro › Kontakt", "Telefon 0123 4567."),
    ]
    assert [h.text for h in document.headings] == ["Bürgerbüro", "Öffnungszeiten", "Kontakt"]
    assert "Startseite" not in _text(document)


def test_a_page_of_bare_text_is_not_lost(tmp_path: Path) -> None:
    document = _page(
        tmp_path,
        "<html><body><div class='cookie-consent'>Wir nutzen Cookies.</div>"
        "<div class='social-work'>Sprechstunde dienstags 9 bis 12 Uhr<br>im Raum 104</div></body></html>",
        name="sprechstunde.htm",
    )
    text = _text(document)
    assert "Sprechstunde dienstags 9 bis 12 Uhr" in text and "im Raum 104" in text
    assert "Cookies" not in text


def test_the_title_comes_from_h1_else_title_else_og_title(tmp_path: Path) -> None:
    body = "<p>Ein Absatz über die Hausaufgabenhilfe im Stadtteilzentrum.</p>"
    with_title = f"<html><head><title>Hausaufgabenhilfe</title></head><body>{body}</body></html>"
    assert _page(tmp_path, with_title, "a.html").metadata.title == "Hausaufgabenhilfe"
    og_meta = "<meta property='og:title' content='Hilfe bei Hausaufgaben'>"
    og = f"<html><head>{og_meta}</head><body>{body}</body></html>"
    assert _page(tmp_path, og, "b.html").metadata.title == "Hilfe bei Hausaufgaben"
    h1 = f"<html><head><title>Seite</title></head><body><h1>Lernhilfe</h1>{body}</body></html>"
    assert _page(tmp_path, h1, "c.html").metadata.title == "Lernhilfe"


@pytest.mark.parametrize(
    ("broken", "repaired"),
    [
        ("Lehrkräfte werden befä- higt", "Lehrkräfte werden befähigt"),
        ("zum Kompe- tenzaufbau", "zum Kompetenzaufbau"),
        ("werden befä-\nhigt, Kinder", "werden befähigt, Kinder"),
        ("die Sprach-\nförderung", "die Sprachförderung"),
        ("im DaZ-\nKurs", "im DaZ-Kurs"),
        ("Sprach-\nund Kulturmittler", "Sprach- und Kulturmittler"),
        ("Kin\u00adder\u00adgarten", "Kindergarten"),
        ("  zwei   Zeilen \n  Text ", "zwei Zeilen Text"),
    ],
)
def test_words_broken_at_a_line_end_are_joined(broken: str, repaired: str) -> None:
    assert repair_hyphens(broken) == repaired


@pytest.mark.parametrize(
    "kept",
    [
        "Sprach- und Kulturmittler",
        "Eltern- und Familienarbeit",
        "Schul- oder Kitaleitung",
        "Vor- bzw. Nachteile",
        "Haupt- sowie Realschulen",
        "ein- bis zweimal",
        "per E-Mail",
        "Deutsch-Türkisch",
        "KOMM-AN",
        "KAoA- kompakt",
        "Kinder- Jugendhilfe",
        "seit 2019- heute",
        "Montag - Freitag",
        "Punkt A -\nPunkt B",
    ],
)
def test_real_hyphens_and_compounds_stay(kept: str) -> None:
    assert repair_hyphens(kept) == " ".join(kept.split())


def test_text_markdown_and_docx_join_broken_words(tmp_path: Path) -> None:
    txt = tmp_path / "notiz.txt"
    txt.write_text("Notiz\n\nDie Fachkräfte werden befä-\nhigt und der Kompe- tenzaufbau beginnt.\n", "utf-8")
    md = tmp_path / "notiz.md"
    md.write_text("# Notiz\n\nDie Fachkräfte werden befä-\nhigt, die Schul- oder Kitaleitung hilft.\n", "utf-8")
    docx = factories.write_docx(
        tmp_path / "notiz.docx", "Notiz", [("Heading 1", "Notiz"), ("", "Die Fachkräfte werden befä-\nhigt.")]
    )
    assert "werden befähigt und der Kompetenzaufbau beginnt." in _text(loaders.load(txt))
    assert "werden befähigt, die Schul- oder Kitaleitung hilft." in _text(loaders.load(md))
    assert "Die Fachkräfte werden befähigt." in _text(loaders.load(docx))


@pytest.mark.slow
def test_search_snippets_show_the_article_not_the_furniture(embedder: Embedder, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "integrationszentrum.html").write_text(MUNICIPAL_PAGE, encoding="utf-8")
    (corpus / "elterncafe.md").write_text(
        factories.markdown("Elterncafé", "Hamm", "Eltern treffen sich jeden Mittwoch im Familienzentrum."),
        encoding="utf-8",
    )
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    report = Ingestor(settings, embedder).run()
    assert report.failed == [] and len(report.added) == 2
    searcher = Searcher(settings, embedder)
    query = "Fortbildung für Lehrkräfte zur Förderung von Kindern mit wenig Deutsch"
    found = searcher.search(query, 2, group=False)
    assert found.hits and found.hits[0].document.key == "integrationszentrum.html"
    assert "befähigt" in " ".join(hit.chunk.text for hit in found.hits if hit.document.key.endswith(".html"))
    for query in ("Cookies akzeptieren", "Impressum Datenschutz", "auf X (vormals Twitter) teilen", "Startseite"):
        for mode in MODES:
            for hit in searcher.search(query, 10, mode=mode, group=False).hits:
                for word in FURNITURE:
                    assert word.lower() not in (hit.snippet + hit.chunk.text).lower(), (query, mode, word)
