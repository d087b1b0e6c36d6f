"""A result opens its document at the passage: the page the answer is on, the matching sentence marked and scrolled
to by the link's fragment (no JavaScript needed), and for a PDF a link that opens the file at that page. Headless
Chromium (Debian's ``chromium``) driven by Playwright against a real uvicorn over the bundled corpus."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from kb.api.app import create_app
from kb.api.page import find_sentence, page_view
from kb.chunking import split_sentences
from kb.documents import PageText
from kb.embedder import Embedder
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import serving
from tests.test_browser import in_chromium, sync_api

pytestmark = pytest.mark.browser

expect = sync_api.expect

#: A short viewport: the title and the facts alone fill it, so the passage is below the fold unless the link's
#: fragment scrolls to it.
VIEWPORT = {"width": 1024, "height": 360}
ANSWER_PAGE = 3


@pytest.fixture(scope="module")
def corpus_site(corpus_settings: Settings, embedder: Embedder) -> Iterator[tuple[str, Searcher]]:
    searcher = Searcher(corpus_settings, embedder)
    with serving(create_app(corpus_settings, searcher=searcher)) as url:
        yield url, searcher


def words(text: str) -> str:
    return " ".join(text.split())


def answer_on_page_3(searcher: Searcher) -> tuple[str, str]:
    """A multi-page PDF of the corpus and a sentence that stands on its page 3 only (read from the index, so the
    test follows the corpus): the title and the sentence."""
    index = searcher.reader()
    for document in sorted(index.documents.values(), key=lambda d: d.key):
        if document.file_type != "pdf" or (document.pages or 0) <= ANSWER_PAGE:
            continue
        text = index.document_text(document.id)
        assert text is not None
        pages = {p.page: words(p.text) for p in text.pages}
        for sentence in split_sentences(pages[ANSWER_PAGE]):
            elsewhere = any(sentence in t for n, t in pages.items() if n != ANSWER_PAGE)
            whole = sentence[:1].isupper() and sentence[-1] in ".!?"  # a sentence, not a list item
            if 12 <= len(sentence.split()) <= 30 and not elsewhere and whole:
                return document.metadata.title, sentence
    raise AssertionError("the corpus has no PDF with a sentence on page 3")


def test_a_result_opens_the_document_at_page_3_with_the_sentence_marked(corpus_site: tuple[str, Searcher]) -> None:
    url, searcher = corpus_site
    title, sentence = answer_on_page_3(searcher)
    in_chromium(lambda page: _opens_at_page_3(page, url, title, sentence), VIEWPORT)


def _opens_at_page_3(page: Any, url: str, title: str, sentence: str) -> None:
    page.goto(url + "/?" + urlencode({"q": sentence, "mode": "lexical"}))  # its words: the passage that has them
    card = page.locator(".card", has=page.locator(".card-title", has_text=title)).first
    link = card.locator(".card-title a")
    assert re.search(r"/dokument/[0-9a-f]+\?q=.+&stelle=\d+#treffer$", str(link.get_attribute("href")))
    link.click()
    page.wait_for_url(re.compile(r"/dokument/[0-9a-f]+\?.*#treffer$"))

    mark = page.locator("mark#treffer")
    expect(mark).to_have_count(1)
    assert words(mark.inner_text()) == sentence
    assert page.locator(f"#seite-{ANSWER_PAGE} mark#treffer").count() == 1  # on the page the answer is on
    expect(mark).to_be_in_viewport()  # the fragment scrolled to it, without JavaScript
    top = page.evaluate("document.getElementById('treffer').getBoundingClientRect().top + window.scrollY")
    assert top > VIEWPORT["height"] and page.evaluate("window.scrollY") > 0  # it was below the fold
    expect(page.get_by_role("heading", level=2, name=f"Fundstelle auf Seite {ANSWER_PAGE}")).to_be_visible()

    pdf = page.get_by_role("link", name=f"PDF öffnen (Seite {ANSWER_PAGE})")
    href = str(pdf.get_attribute("href"))
    assert re.fullmatch(rf"/documents/[0-9a-f]+/file#page={ANSWER_PAGE}", href), href
    response = page.request.get(url + href.split("#")[0])
    assert response.ok and response.headers["content-type"] == "application/pdf"


def test_without_javascript_the_fragment_still_lands_on_the_sentence(corpus_site: tuple[str, Searcher]) -> None:
    url, searcher = corpus_site
    title, sentence = answer_on_page_3(searcher)
    without_js = {"java_script_enabled": False}
    in_chromium(lambda tab: _lands_without_javascript(tab, url, title, sentence), VIEWPORT, **without_js)


def _lands_without_javascript(tab: Any, url: str, title: str, sentence: str) -> None:
    tab.goto(url + "/?" + urlencode({"q": sentence, "mode": "lexical"}))
    href = tab.locator(".card", has=tab.locator(".card-title", has_text=title)).first.locator(".card-title a")
    tab.goto(url + str(href.get_attribute("href")))
    mark = tab.locator(f"#seite-{ANSWER_PAGE} mark#treffer")
    expect(mark).to_be_in_viewport()


def test_a_document_page_without_a_passage_shows_none(corpus_site: tuple[str, Searcher]) -> None:
    url, searcher = corpus_site
    document = next(d for d in searcher.reader().documents.values() if d.file_type == "pdf")
    in_chromium(lambda page: _no_passage(page, url, document.id), VIEWPORT)


def _no_passage(page: Any, url: str, doc_id: str) -> None:
    page.goto(f"{url}/dokument/{doc_id}")
    assert page.locator(".passage").count() == 0
    page.goto(f"{url}/dokument/{doc_id}?stelle=999999999")  # no such chunk: the page, without a passage
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.locator(".passage").count() == 0


def test_a_sentence_that_runs_on_to_the_next_page_is_marked_where_it_starts() -> None:
    pages = [
        PageText(2, "Erster Satz.\n\nDer Antrag auf Zugang zu den Protokollen der Besprechungen wurde", False),
        PageText(3, "am 5. Juli abgelehnt. Danach klagte er.", False),
    ]
    sentence = "Der Antrag auf Zugang zu den Protokollen der Besprechungen wurde am 5. Juli abgelehnt."
    found = find_sentence(pages, sentence)
    assert found is not None and found[0] == 2
    assert pages[0].text[found[1] : found[2]] == "Der Antrag auf Zugang zu den Protokollen der Besprechungen wurde"
    assert find_sentence(pages, "Danach klagte er.") == (3, 22, 39)
    assert find_sentence(pages, "Ein Satz, der nirgends steht und auch nicht beginnt.") is None


def test_a_long_page_is_cut_to_the_paragraphs_around_the_mark() -> None:
    paragraphs = [f"Absatz {n}: " + "Wort " * 400 for n in range(20)]
    text = "\n\n".join(paragraphs)
    start = text.index("Absatz 10:")
    view = page_view(PageText(1, text, False), (start, start + 10))
    assert view.cut_before and view.cut_after and len(view.paragraphs) == 5
    marked = [str(p) for p in view.paragraphs if "<mark" in str(p)]
    assert marked == [str(view.paragraphs[2])] and '<mark id="treffer">Absatz 10:</mark>' in marked[0]
    short = page_view(PageText(1, "Eins <b>.\n\nZwei.", False), None)
    assert [str(p) for p in short.paragraphs] == ["Eins &lt;b&gt;.", "Zwei."] and not short.cut_before
