"""The "nothing fits" state of the search page in a real browser (headless Chromium via Playwright, real uvicorn):
instead of ten weak hits the page says that no document fits, offers a broader search, and keeps the closest
documents folded away."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import serving
from tests.test_browser import in_chromium

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python")
expect = sync_api.expect

#: Far from every document of the bundled corpus (integration work in schools, families, municipalities); the
#: other question is answered by it.
OFF_TOPIC = "Wie hoch ist die Hundesteuer in Bochum?"
ON_TOPIC = "Wie bekommt ein neu zugewandertes Kind einen Schulplatz?"


@pytest.fixture(scope="module")
def searcher(corpus_settings: Settings, embedder: Embedder) -> Searcher:
    return Searcher(corpus_settings, embedder)


@pytest.fixture(scope="module")
def site(corpus_settings: Settings, searcher: Searcher) -> Iterator[str]:
    with serving(create_app(corpus_settings, searcher=searcher)) as url:
        yield url


#: A test's steps in a Chromium of their own (the name the other browser modules import).
browse = in_chromium


def ask(page: Any, site: str, question: str) -> None:
    page.goto(site + "/")
    page.get_by_label("Wonach suchen Sie?").fill(question)
    page.get_by_role("button", name="Suchen").click()
    page.wait_for_url(re.compile(r"\?q="))


def test_an_off_topic_question_says_nothing_fits_and_offers_a_broader_search(
    site: str, searcher: Searcher
) -> None:
    result = searcher.search(OFF_TOPIC, 10)
    assert result.nothing_fits and result.hits  # the decision the page shows, made by the search itself
    browse(lambda page: _nothing_fits_steps(page, site, len(result.hits)))


def _nothing_fits_steps(page: Any, site: str, hits: int) -> None:
    ask(page, site, OFF_TOPIC)
    status = page.locator(".nothing-fits")
    expect(status).to_contain_text("Keine Dokumente passen gut zu Ihrer Frage")
    expect(page.get_by_role("heading", level=2, name=re.compile("^Keine passenden Treffer"))).to_be_visible()
    broader = status.get_by_role("link", name=re.compile("^Mit weniger Wörtern suchen"))
    expect(broader).to_be_visible()

    weak = page.locator("details.weak-results")
    expect(weak.locator(".card").first).to_be_hidden()  # the weak hits are folded away, not shown as results
    weak.locator("summary").click()
    expect(weak.locator(".card").first).to_be_visible()
    assert weak.locator(".card").count() == hits

    broader.click()
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query)["q"][0] != OFF_TOPIC)
    words = parse_qs(urlsplit(page.url).query)["q"][0].split()
    assert 1 <= len(words) < len(OFF_TOPIC.split())


def test_a_question_that_fits_shows_its_results_as_before(site: str, searcher: Searcher) -> None:
    result = searcher.search(ON_TOPIC, 10)
    assert not result.nothing_fits and result.confidence > searcher.search(OFF_TOPIC, 10).confidence
    title = result.hits[0].document.metadata.title

    def steps(page: Any) -> None:
        ask(page, site, ON_TOPIC)
        expect(page.locator(".nothing-fits")).to_have_count(0)
        expect(page.get_by_role("heading", level=2, name=re.compile(r"^\d+ Treffer für"))).to_be_visible()
        expect(page.locator(".card-title").first).to_have_text(title)

    browse(steps)
