"""Constraints named in a query on the search page in a real browser (headless Chromium via Playwright, real
uvicorn): each is shown as a chip with an accessible name, and removing it gives the same search without the
preference (its URL says ``ohne=FIELD``) and the plain ranking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import serving
from tests.test_browser_nothing_fits import ask, browse, expect
from tests.test_constraints import make_constraint_corpus

pytestmark = pytest.mark.browser
QUESTION = "DaZ Mathematik Brüche Klasse 5"


@pytest.fixture(scope="module")
def searcher(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    root: Path = tmp_path_factory.mktemp("browser-constraints")
    settings = Settings(
        corpus_dir=make_constraint_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data"
    )
    assert Ingestor(settings, embedder).run().failed == []
    return Searcher(settings, embedder)


@pytest.fixture(scope="module")
def site(searcher: Searcher) -> Iterator[str]:
    with serving(create_app(searcher.settings, searcher=searcher)) as url:
        yield url


def titles(searcher: Searcher, *ignore: str) -> list[str]:
    return [hit.document.metadata.title for hit in searcher.search(QUESTION, 10, ignore_constraints=ignore).hits]


def test_the_grade_is_a_chip_and_removing_it_changes_the_ranking_and_the_url(
    site: str, searcher: Searcher
) -> None:
    preferred, plain = titles(searcher), titles(searcher, "jahrgang")
    assert preferred != plain and sorted(preferred) == sorted(plain)  # reordered, nothing left out
    browse(lambda page: _steps(page, site, preferred[0], plain[0]))


def _steps(page: Any, site: str, first: str, first_without: str) -> None:
    ask(page, site, QUESTION)
    chip = page.get_by_role("link", name="Vorgabe „Klasse 5“ entfernen")
    expect(chip).to_be_visible()
    expect(chip).to_have_class(re.compile(r"\bchip\b"))
    expect(chip).to_contain_text("Klasse 5")
    cards = page.locator("ol.cards .card-title")
    expect(cards.first).to_have_text(first)

    chip.click()
    page.wait_for_url(re.compile(r"ohne=jahrgang"))
    assert parse_qs(urlsplit(page.url).query)["q"] == [QUESTION]  # the same search, without the preference
    expect(page.get_by_role("link", name="Vorgabe „Klasse 5“ entfernen")).to_have_count(0)
    expect(cards.first).to_have_text(first_without)
    expect(page.locator("ol.cards .card")).to_have_count(6)  # every document is still listed
