"""The web page in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright, against a real
uvicorn on loopback over real indexes.

Set ``SAVE_SCREENSHOTS=1`` to (re)write the README's screenshots in ``docs/screenshots/`` from the bundled corpus.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from kb.api.app import create_app
from kb.api.page import highlight
from kb.embedder import Embedder
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import REPO, serving

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)", allow_module_level=True
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python (pip install playwright==1.65.2)"
)
expect = sync_api.expect

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 320, "height": 640}
MAX_PAGE_BYTES = 100_000
SCREENSHOTS = REPO / "docs" / "screenshots"


#: Console errors that are the error pages themselves (a 404 for a document the caller may not see, say).
IGNORABLE_CONSOLE = tuple(f"status of {code}" for code in (401, 403, 404, 429, 500, 503))


def in_chromium(steps: Callable[[Any], None], viewport: dict[str, int] = DESKTOP, **context: Any) -> None:
    """Run ``steps`` on a fresh tab of a Chromium of its own, in a thread of its own: the session's sync Playwright
    of this module may be running in the calling thread, and one thread holds one. Fails on a page error or a
    console error (a CSP violation by an inline style, say) other than an error page's status."""

    def run() -> None:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                tab = browser.new_context(viewport=viewport, locale="de-DE", **context).new_page()
                errors: list[str] = []
                tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
                tab.on("pageerror", lambda exc: errors.append(str(exc)))
                steps(tab)
                assert [e for e in errors if not any(i in e for i in IGNORABLE_CONSOLE)] == []
            finally:
                browser.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result()


class BrokenSearcher(Searcher):
    """A searcher whose search fails with an unexpected error (a bug, a full disk, ...)."""

    def search(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail /srv/secret/path")


@pytest.fixture(scope="module")
def site(small_settings: Settings, embedder: Embedder) -> Iterator[str]:
    with serving(create_app(small_settings, searcher=Searcher(small_settings, embedder))) as url:
        yield url


@pytest.fixture(scope="module")
def corpus_site(corpus_settings: Settings, embedder: Embedder) -> Iterator[str]:
    with serving(create_app(corpus_settings, searcher=Searcher(corpus_settings, embedder))) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh desktop-sized tab; fails the test if the page logs an error (e.g. a CSP violation)."""
    context = browser.new_context(viewport=DESKTOP, locale="de-DE")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert [e for e in errors if not any(i in e for i in IGNORABLE_CONSOLE)] == []


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def search(page: Any, base: str, question: str) -> None:
    page.goto(base + "/")
    page.get_by_label("Wonach suchen Sie?").fill(question)
    page.get_by_role("button", name="Suchen").click()
    page.wait_for_url(re.compile(r"\?q="))


def test_search_shows_cards_with_district_type_and_marked_snippet(page: Any, site: str) -> None:
    search(page, site, "Elterncafé an der Grundschule")
    assert query_of(page.url) == {"q": ["Elterncafé an der Grundschule"]}  # no empty or default fields
    expect(page.get_by_role("heading", level=2, name=re.compile(r"^\d+ Treffer für"))).to_be_visible()
    first = page.locator(".card").first
    expect(first.locator(".card-title")).to_have_text("Elterncafé an der Grundschule")
    expect(first.locator(".meta")).to_contain_text("Dortmund")
    expect(first.locator(".meta")).to_contain_text("Praxisbericht")
    expect(first.locator(".meta")).to_contain_text("2023")
    expect(first.locator(".tags")).to_contain_text("Eltern und Familien")
    marks = first.locator(".snippet mark").all_inner_texts()
    assert "Elterncafé" in marks
    expect(page.get_by_label("Wonach suchen Sie?")).to_have_value("Elterncafé an der Grundschule")


def test_pdf_result_opens_the_file_at_its_page(page: Any, site: str) -> None:
    search(page, site, "Wortschatzarbeit mit Fachbegriffen wie Bruch und Nenner")
    card = page.locator(".card", has_text="Sprachsensibler Mathematikunterricht").first
    link = card.get_by_role("link", name=re.compile(r"^PDF öffnen, S\. \d+"))
    label_page = re.findall(r"S\. (\d+)", link.inner_text())[0]
    href = str(link.get_attribute("href"))
    assert re.fullmatch(rf"/documents/[0-9a-f]+/file#page={label_page}", href), href
    assert page.request.get(site + href.split("#")[0]).headers["content-type"] == "application/pdf"


def test_facet_narrows_results_and_is_kept_in_the_url(page: Any, site: str) -> None:
    search(page, site, "Sprache lernen")
    all_cards = page.locator(".card").count()
    facet = page.locator(".facet", has=page.get_by_role("heading", name="Dokumentart"))
    facet.get_by_role("link", name=re.compile(r"^Praxisbericht")).click()
    page.wait_for_url(re.compile("doc_type=Praxisbericht"))
    assert query_of(page.url) == {"q": ["Sprache lernen"], "doc_type": ["Praxisbericht"]}
    metas = page.locator(".card .meta").all_inner_texts()
    assert 0 < len(metas) < all_cards and all("Praxisbericht" in m for m in metas)
    expect(page.locator(".active")).to_contain_text("Dokumentart: Praxisbericht")

    facet = page.locator(".facet", has=page.get_by_role("heading", name="Kommune"))
    facet.get_by_role("link", name=re.compile(r"^Wuppertal")).click()
    page.wait_for_url(re.compile("district=Wuppertal"))
    assert page.locator(".card-title").all_inner_texts() == ["Schwimmkurse für Mädchen"]

    page.reload()  # a bookmarked or shared link shows the same search
    assert page.locator(".card-title").all_inner_texts() == ["Schwimmkurse für Mädchen"]
    page.get_by_role("link", name=re.compile(r"^Dokumentart: Praxisbericht")).click()
    page.wait_for_url(lambda url: "doc_type" not in url)
    assert query_of(page.url) == {"q": ["Sprache lernen"], "district": ["Wuppertal"]}


def test_mode_switch_is_under_erweitert_and_lands_in_the_url(page: Any, site: str) -> None:
    page.goto(site + "/")
    lexical = page.get_by_label("Nur nach genau diesen Wörtern")
    expect(lexical).to_be_hidden()
    page.get_by_text("Erweitert").click()
    lexical.check()
    page.get_by_label("Wonach suchen Sie?").fill("Seepferdchen")
    page.get_by_label("Wonach suchen Sie?").press("Enter")
    page.wait_for_url(re.compile("mode=lexical"))
    assert page.locator(".card-title").all_inner_texts() == ["Schwimmkurse für Mädchen"]
    expect(page.get_by_label("Nur nach genau diesen Wörtern")).to_be_checked()


def test_document_page_shows_metadata_outline_file_and_similar_approaches(page: Any, site: str) -> None:
    search(page, site, "Elterncafé an der Grundschule")
    page.locator(".card-title a").first.click()
    page.wait_for_url(re.compile(r"/dokument/[0-9a-f]+\?q="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Elterncafé an der Grundschule")
    facts = page.locator(".facts")
    for text in ("Dortmund", "Praxisbericht", "2023", "Eltern und Familien", "Lehrkräfte"):
        expect(facts).to_contain_text(text)
    expect(page.locator(".outline")).to_contain_text("Ziel")
    file_link = page.locator(".document").get_by_role("link", name=re.compile(r"^Text öffnen\W+Elterncafé"))
    assert page.request.get(site + str(file_link.get_attribute("href"))).ok

    similar = page.locator(
        "section", has=page.get_by_role("heading", name="Ähnliche Ansätze aus anderen Kommunen")
    )
    metas = similar.locator(".card .meta").all_inner_texts()
    assert 1 <= len(metas) <= 5 and not any("Dortmund" in m for m in metas)

    page.get_by_role("link", name=re.compile("Zurück zu den Treffern")).click()
    page.wait_for_url(re.compile(r"/\?q=Elterncaf"))
    expect(page.locator(".card").first).to_be_visible()


def test_start_page_offers_example_questions(page: Any, site: str) -> None:
    page.goto(site + "/")
    examples = page.locator(".examples a")
    assert 2 <= examples.count() <= 4
    expect(page.locator(".start")).to_contain_text("7 Dokumente")
    examples.first.click()
    page.wait_for_url(re.compile(r"\?q="))
    expect(page.locator(".card").first).to_be_visible()


def test_no_results_offers_to_remove_each_filter(page: Any, site: str) -> None:
    page.goto(site + "/?q=Schwimmen&district=Dortmund&topic=Sport")
    expect(page.get_by_role("status")).to_contain_text("Keine Treffer mit den gewählten Filtern")
    expect(page.get_by_role("link", name="Kommune: Dortmund entfernen", exact=True)).to_be_visible()
    page.get_by_role("link", name="Thema: Sport entfernen", exact=True).click()
    page.wait_for_url(lambda url: "topic" not in url)
    assert query_of(page.url) == {"q": ["Schwimmen"], "district": ["Dortmund"]}
    assert page.locator(".card-title").all_inner_texts() == ["Elterncafé an der Grundschule"]


def test_missing_index_is_a_german_sentence(page: Any, tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "no-index")
    with serving(create_app(settings, searcher=Searcher(settings, embedder))) as url:
        page.goto(url + "/")
        expect(page.get_by_role("alert")).to_contain_text("Es gibt noch keinen Suchindex")
        response = page.goto(url + "/?q=Eltern")
        assert response is not None and response.status == 503
        expect(page.get_by_role("alert")).to_contain_text("Es gibt noch keinen Suchindex")
        expect(page.get_by_label("Wonach suchen Sie?")).to_have_value("Eltern")


def test_server_error_is_a_german_sentence_without_details(
    page: Any, small_settings: Settings, embedder: Embedder
) -> None:
    with serving(create_app(small_settings, searcher=BrokenSearcher(small_settings, embedder))) as url:
        response = page.goto(url + "/?q=Eltern")
        assert response is not None and response.status == 500
        expect(page.get_by_role("alert")).to_have_text(re.compile("Auf dem Server ist ein Fehler aufgetreten"))
        body = page.content()
        assert "RuntimeError" not in body and "secret" not in body and "Traceback" not in body


def test_unknown_document_is_a_german_404_page(page: Any, site: str) -> None:
    response = page.goto(site + "/dokument/0000000000000000")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Dokument nicht gefunden")
    expect(page.get_by_role("alert")).to_contain_text("Dieses Dokument gibt es nicht")


def test_keyboard_alone_searches_and_filters(page: Any, site: str) -> None:
    page.goto(site + "/")
    tab_to(page, "#q")
    page.keyboard.type("Schulplatz für Seiteneinsteiger")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Suchen"
    assert_focus_is_visible(page)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"\?q=Schulplatz"))
    tab_to(page, ".facet a")
    assert_focus_is_visible(page)
    chosen = page.evaluate("document.activeElement.querySelector('.label').textContent")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: len(query_of(url)) == 2)
    assert chosen in page.locator(".active").inner_text()


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def assert_focus_is_visible(page: Any) -> None:
    style = page.evaluate(
        "[getComputedStyle(document.activeElement).outlineStyle, "
        "getComputedStyle(document.activeElement).outlineWidth]"
    )
    assert style[0] != "none" and float(style[1].removesuffix("px")) >= 2, style


@pytest.mark.parametrize("path", ["/", "/?q=Wie+finde+ich+einen+Schulplatz+für+mein+Kind", "/dokument/"])
def test_phone_width_needs_no_horizontal_scrolling(browser: Any, site: str, path: str) -> None:
    context = browser.new_context(viewport=PHONE, locale="de-DE")
    tab = context.new_page()
    if path == "/dokument/":
        tab.goto(site + "/?q=Elterncafé")
        path = str(tab.locator(".card-title a").first.get_attribute("href"))
    tab.goto(site + path)
    assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert tab.evaluate("document.body.scrollWidth") <= PHONE["width"]
    context.close()


def page_weight(page: Any, url: str) -> int:
    """Bytes of the HTML, CSS, JS and icon the browser loads for ``url`` (uncompressed: an upper bound)."""
    responses: list[Any] = []

    def record(response: Any) -> None:
        responses.append(response)

    page.on("response", record)
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.remove_listener("response", record)
    kinds = {r.request.resource_type for r in responses}
    assert {"document", "stylesheet", "script"} <= kinds, kinds
    origin = "{0.scheme}://{0.netloc}/".format(urlsplit(url))
    assert all(r.url.startswith(origin) for r in responses), [r.url for r in responses]  # nothing external
    return sum(len(r.body()) for r in responses)


def test_pages_with_their_assets_stay_under_100_kb(page: Any, corpus_site: str) -> None:
    results = page_weight(page, corpus_site + "/?q=Materialien+zur+Sprachförderung+im+Fachunterricht")
    document = page_weight(page, corpus_site + str(page.locator(".card-title a").first.get_attribute("href")))
    print(f"page weight: results page {results} bytes, document page {document} bytes")
    assert results < MAX_PAGE_BYTES and document < MAX_PAGE_BYTES
    response = page.request.get(corpus_site + "/")
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "same-origin"


def test_arabic_documents_are_marked_right_to_left(page: Any, corpus_site: str) -> None:
    page.goto(corpus_site + "/?q=مشاركة أولياء الأمور في المدرسة&language=ar")
    title = page.locator(".card-title a").first
    assert title.get_attribute("lang") == "ar" and title.get_attribute("dir") == "rtl"
    assert page.locator(".card .snippet").first.get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "de"
    title.click()
    page.wait_for_url(re.compile("/dokument/"))
    assert page.get_by_role("heading", level=1).get_attribute("dir") == "rtl"


def test_screenshots_of_the_bundled_corpus(browser: Any, corpus_site: str, tmp_path: Path) -> None:
    """Start, results, document and phone views over the real corpus (written to docs/ with SAVE_SCREENSHOTS=1)."""
    folder = SCREENSHOTS if os.environ.get("SAVE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    question = "/?q=Wie+beziehe+ich+Eltern+mit+Zuwanderungsgeschichte+in+die+Schule+ein%3F"
    tall = {"width": 1280, "height": 1100}
    shots = [
        ("start.png", DESKTOP, "/"),
        ("results.png", tall, question),
        ("document.png", tall, None),  # the first result's document page
        ("phone.png", {"width": 320, "height": 900}, question + "&topic=Eltern+und+Familien"),
    ]
    first_document = ""
    for name, viewport, path in shots:
        context = browser.new_context(viewport=viewport, locale="de-DE", device_scale_factor=1)
        tab = context.new_page()
        tab.goto(corpus_site + (path or first_document))
        if name == "results.png":
            first_document = str(tab.locator(".card-title a").first.get_attribute("href"))
        tab.screenshot(path=str(folder / name))
        context.close()
        assert (folder / name).stat().st_size > 10_000


def test_markup_in_queries_and_snippets_is_shown_as_text(page: Any, site: str) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(site + "/?q=" + quote('<img src=x onerror="alert(1)"> Elterncafé'))
    expect(page.locator("#count")).to_contain_text('<img src=x onerror="alert(1)"> Elterncafé')
    assert page.locator(".results img").count() == 0 and dialogs == []
    assert str(highlight("a <b> & c", [(0, 1), (2, 5)])) == "<mark>a</mark> <mark>&lt;b&gt;</mark> &amp; c"


def test_newcomer_journey_on_the_bundled_corpus(page: Any, corpus_site: str) -> None:
    """The issue's "done when": search, narrow to one district, open the PDF at its page, see similar ones."""
    search(page, corpus_site, "Materialien zur Sprachförderung im Fachunterricht")
    pdf_card = page.locator(".card", has=page.get_by_role("link", name=re.compile(r"^PDF öffnen, S\. \d+"))).first
    district = re.findall(r"Kommune:\s*(.+?)\s*\n", pdf_card.locator(".meta").inner_text())[0]
    facet = page.locator(".facet", has=page.get_by_role("heading", name="Kommune"))
    choice = facet.get_by_role("link", name=re.compile(rf"^{re.escape(district)}\b")).first
    if not choice.is_visible():
        facet.get_by_text(re.compile(r"^Alle \d+ anzeigen")).click()
    choice.click()
    page.wait_for_url(re.compile("district="))
    assert query_of(page.url)["district"] == [district]
    metas = page.locator(".card .meta").all_inner_texts()
    assert metas and all(f"Kommune:\n{district}" in m for m in metas)

    link = page.locator(".card").first.get_by_role("link", name=re.compile(r"^PDF öffnen, S\. \d+"))
    number = re.findall(r"S\. (\d+)", link.inner_text())[0]
    href = str(link.get_attribute("href"))
    assert href.endswith(f"#page={number}")
    response = page.request.get(corpus_site + href.split("#")[0])
    assert response.ok and response.headers["content-type"] == "application/pdf"

    page.locator(".card-title a").first.click()
    page.wait_for_url(re.compile(r"/dokument/[0-9a-f]+"))
    similar = page.locator(
        "section", has=page.get_by_role("heading", name="Ähnliche Ansätze aus anderen Kommunen")
    )
    others = similar.locator(".card .meta").all_inner_texts()
    assert len(others) == 5 and not any(f"Kommune:\n{district}" in m for m in others)
