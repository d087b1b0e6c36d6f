"""Fusion that follows the evidence, and the confidence / "nothing fits" of every search (search, API, CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb import fusion
from kb.api.app import create_app
from kb.cli import app
from kb.embedder import Embedder
from kb.filters import Filters
from kb.search import Searcher
from kb.settings import Settings

OFF_TOPIC = "Welche Hunderasse braucht die wenigsten Impfungen beim Tierarzt in Bielefeld?"


@pytest.fixture(scope="module")
def searcher(small_settings: Settings, embedder: Embedder) -> Searcher:
    return Searcher(small_settings, embedder)


def test_lexical_weight_follows_how_much_of_the_query_the_lexical_hits_hold(searcher: Searcher) -> None:
    borrowed = searcher.search("Schwimmkurse für Mädchen mit Trainerinnen", 3)  # the document's own words
    reworded = searcher.search("Wo kann meine Tochter im Wasser üben, ohne dass Jungen zuschauen?", 3)
    assert borrowed.lexical_weight > reworded.lexical_weight
    assert borrowed.hits[0].document.metadata.title == reworded.hits[0].document.metadata.title


def test_weight_and_confidence_from_the_signals() -> None:
    german = fusion.Evidence(language=1.0, matched=1.0, agreement=0.5, similarity=0.9, words=5)
    assert fusion.lexical_weight(german) == pytest.approx(fusion.WEIGHT_AT_FULL_MATCH)
    weak = fusion.Evidence(language=1.0, matched=0.0, agreement=0.5, similarity=0.9, words=5)
    assert fusion.lexical_weight(weak) == pytest.approx(fusion.WEIGHT_AT_NO_MATCH)
    assert fusion.lexical_weight(fusion.Evidence(language=0.0, matched=1.0, similarity=0.9)) == 0.0
    sure = fusion.confidence(german)
    unsure = fusion.confidence(fusion.Evidence(language=1.0, matched=0.2, similarity=0.75, words=5))
    assert 0.0 <= unsure < sure <= 1.0
    assert fusion.nothing_fits(unsure) and not fusion.nothing_fits(sure)


def test_an_off_topic_question_has_low_confidence_and_nothing_fits(searcher: Searcher) -> None:
    off = searcher.search(OFF_TOPIC, 5)
    on = searcher.search("Elterncafé an der Grundschule", 5)
    assert off.nothing_fits and off.hits  # the closest documents are still there, for who wants them
    assert not on.nothing_fits and on.confidence > off.confidence
    for mode in ("dense", "lexical"):
        assert not searcher.search("Elterncafé an der Grundschule", 5, mode=mode).nothing_fits


def test_confidence_is_measured_within_the_filters(searcher: Searcher) -> None:
    everywhere = searcher.search("Schwimmkurse für Mädchen", 5)
    elsewhere = searcher.search("Schwimmkurse für Mädchen", 5, filters=Filters(district=("Dortmund",)))
    assert not everywhere.nothing_fits
    assert elsewhere.confidence < everywhere.confidence


@pytest.fixture(scope="module")
def client(small_settings: Settings, searcher: Searcher) -> Iterator[TestClient]:
    with TestClient(create_app(small_settings, searcher=searcher)) as test_client:
        yield test_client


def test_the_api_and_the_cli_report_confidence_and_nothing_fits(
    client: TestClient, searcher: Searcher, small_settings: Settings
) -> None:
    for query in (OFF_TOPIC, "Elterncafé an der Grundschule"):
        expected = searcher.search(query, 3)
        body = client.get("/search", params={"q": query, "k": 3}).json()
        assert body["nothing_fits"] is expected.nothing_fits
        assert body["confidence"] == round(expected.confidence, 3)
        cli = CliRunner().invoke(app, ["--index-dir", str(small_settings.index_dir), "search", query, "--json"])
        assert cli.exit_code == 0, cli.output
        payload = json.loads(cli.stdout)
        assert payload["nothing_fits"] is expected.nothing_fits
        assert payload["confidence"] == body["confidence"]
