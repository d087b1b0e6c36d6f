"""The map of NRW in a real browser (headless Chromium, Playwright, a real uvicorn over the small index): it is on
the start page, a district is a link that opens its filtered search by mouse and by keyboard, its focus is
visible, and beside the district facet of a result page it narrows the search. A screenshot of the start page is
written to ``/tmp/nrw_map_start.png`` (the bundled corpus) for a person to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import serving
from tests.test_browser import PHONE, in_chromium, query_of, search, tab_to

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python")
expect = sync_api.expect
SCREENSHOT = Path("/tmp/nrw_map_start.png")


@pytest.fixture(scope="module")
def site(small_settings: Settings, embedder: Embedder) -> Iterator[str]:
    with serving(create_app(small_settings, searcher=Searcher(small_settings, embedder))) as url:
        yield url


def test_the_start_page_shows_the_map_and_a_click_opens_the_districts_search(site: str) -> None:
    in_chromium(lambda page: _click_steps(page, site))


def _click_steps(page: Any, site: str) -> None:
    page.goto(site + "/")
    figure = page.locator(".start .nrw-map")
    expect(figure).to_be_visible()
    box = figure.locator("svg").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 300
    links = figure.locator("svg a")
    names = [str(links.nth(i).get_attribute("aria-label")) for i in range(links.count())]
    assert names and all(re.fullmatch(r".+: (1 Dokument|\d+ Dokumente)", n) for n in names), names
    expect(figure).to_contain_text("© GeoBasis-DE / BKG")

    page.get_by_role("link", name=re.compile(r"^Dortmund: \d+ Dokument")).click()
    page.wait_for_url(re.compile("district=Dortmund"))
    assert query_of(page.url) == {"district": ["Dortmund"]}
    expect(page.locator(".active")).to_contain_text("Kommune: Dortmund")
    expect(page.get_by_role("link", name=re.compile(r"^Dortmund: .*\(Filter aktiv\)"))).to_be_visible()
    page.get_by_label("Wonach suchen Sie?").fill("Elterncafé")
    page.get_by_role("button", name="Suchen").click()
    page.wait_for_url(re.compile(r"\?q="))
    assert query_of(page.url)["district"] == ["Dortmund"]
    titles = page.locator(".card-title").all_inner_texts()
    assert titles and "Elterncafé an der Grundschule" in titles


def test_keyboard_reaches_a_district_with_a_visible_focus_and_enter_opens_it(site: str) -> None:
    in_chromium(lambda page: _keyboard_steps(page, site))


def _keyboard_steps(page: Any, site: str) -> None:
    page.goto(site + "/")
    tab_to(page, ".map-svg a")
    name = str(page.evaluate("document.activeElement.getAttribute('aria-label')"))
    district = name.split(":")[0]
    focused = page.evaluate("getComputedStyle(document.activeElement.querySelector('path')).fill")
    unfocused_link = page.locator(".map-svg a:not(:focus)").first
    other = unfocused_link.evaluate("a => getComputedStyle(a.querySelector('path')).fill")
    assert focused == "rgb(255, 221, 0)" and other != focused  # the yellow focus colour of the page
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("district="))
    assert query_of(page.url) == {"district": [district]}


def test_the_list_is_the_maps_fallback(site: str) -> None:
    in_chromium(lambda page: _list_steps(page, site))


def _list_steps(page: Any, site: str) -> None:
    page.goto(site + "/")
    figure = page.locator(".start .nrw-map")
    figure.get_by_text("Als Liste anzeigen").click()
    items = figure.locator(".map-list a")
    assert items.count() == figure.locator("svg a").count()
    first = items.first
    label = first.locator(".label").inner_text()
    count = first.locator(".n").inner_text()
    expect(figure.locator(f'svg a[aria-label^="{label}: {count} Dokument"]')).to_have_count(1)


def test_the_map_beside_the_district_facet_narrows_the_search(site: str) -> None:
    in_chromium(lambda page: _facet_steps(page, site))


def _facet_steps(page: Any, site: str) -> None:
    search(page, site, "Sprache lernen")
    figure = page.locator(".facets .nrw-map")
    expect(figure).to_be_visible()
    link = figure.locator("svg a").first
    district = str(link.get_attribute("aria-label")).split(":")[0]
    link.click()
    page.wait_for_url(re.compile("district="))
    assert query_of(page.url) == {"q": ["Sprache lernen"], "district": [district]}
    metas = page.locator(".card .meta").all_inner_texts()
    assert metas and all(district in m for m in metas)


def test_the_map_fits_a_phone(site: str) -> None:
    def steps(tab: Any) -> None:
        tab.goto(site + "/")
        assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        box = tab.locator(".nrw-map svg").bounding_box()
        assert box is not None and 200 <= box["width"] <= PHONE["width"]

    in_chromium(steps, PHONE)


def test_screenshot_of_the_start_page_with_the_bundled_corpus(
    corpus_settings: Settings, embedder: Embedder
) -> None:
    def steps(tab: Any) -> None:
        tab.goto(url + "/")
        shaded = tab.locator(".start .map-svg a").count()
        assert shaded >= 5  # the bundled corpus has documents of many districts
        tab.locator(".start .nrw-map").screenshot(path=str(SCREENSHOT))
        tab.screenshot(path=str(SCREENSHOT.with_name("nrw_map_start_page.png")), full_page=True)

    with serving(create_app(corpus_settings, searcher=Searcher(corpus_settings, embedder))) as url:
        in_chromium(steps, {"width": 1280, "height": 1500})
    assert SCREENSHOT.stat().st_size > 10_000
