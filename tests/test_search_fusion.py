"""Fusion that follows the evidence, and the confidence / "nothing fits" of every search (search, API, CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb import confidence, fusion
from kb.api.app import create_app
from kb.cli import app
from kb.embedder import Embedder
from kb.filters import Filters
from kb.search import Searcher, gather_evidence
from kb.settings import Settings

#: Far from every document of the bundled corpus; the other one is answered by it.
OFF_TOPIC = "Wie hoch ist die Hundesteuer in Bochum?"
ON_TOPIC = "Wie bekommt ein neu zugewandertes Kind einen Schulplatz?"


@pytest.fixture(scope="module")
def searcher(small_settings: Settings, embedder: Embedder) -> Searcher:
    return Searcher(small_settings, embedder)


@pytest.fixture(scope="module")
def corpus_searcher(corpus_settings: Settings, embedder: Embedder) -> Searcher:
    return Searcher(corpus_settings, embedder)


def test_the_lexical_share_shrinks_as_the_dense_side_grows_sure(searcher: Searcher) -> None:
    queries = [
        "Schwimmkurse für Mädchen mit Trainerinnen",
        "Wo kann meine Tochter im Wasser üben, ohne dass Jungen zuschauen?",
        "Elterncafé Grundschule",
        "Wie erklären Lehrkräfte Eltern das Schulsystem?",
    ]
    index = searcher.index
    evidence = []
    for query in queries:
        vector = searcher.embedder.encode_queries([query])[0]
        found = gather_evidence(index, query, index.lexical.query_terms(query), vector, "hybrid", None)
        assert searcher.search(query, 3).lexical_weight == pytest.approx(fusion.lexical_weight(found))
        evidence.append(found)
    german = sorted((e for e in evidence if e.language == 1.0), key=lambda e: e.similarity)
    weights = [fusion.lexical_weight(e) for e in german]
    assert len(german) >= 2 and weights == sorted(weights, reverse=True) and weights[0] > weights[-1]
    assert all(0 <= w <= fusion.MAX_WEIGHT for w in weights)


def test_weight_and_confidence_from_the_signals() -> None:
    unsure = fusion.Evidence(language=1.0, matched=0.5, similarity=0.8, words=5, ranked=100)
    centre = fusion.Evidence(language=1.0, matched=0.5, similarity=fusion.WEIGHT_CENTRE, words=5, ranked=100)
    sure = fusion.Evidence(language=1.0, matched=0.5, similarity=0.95, words=5, ranked=100)
    assert fusion.lexical_weight(unsure) > fusion.lexical_weight(centre) > fusion.lexical_weight(sure) == 0.0
    assert fusion.lexical_weight(centre) == pytest.approx(fusion.WEIGHT_AT_CENTRE)
    assert fusion.lexical_weight(fusion.Evidence(language=0.0, matched=1.0, similarity=0.8)) == 0.0
    assert 0.0 <= confidence.score(unsure) < confidence.score(centre) < confidence.score(sure) <= 1.0
    assert confidence.nothing_fits(unsure) and not confidence.nothing_fits(sure)
    assert confidence.score(unsure, "lexical") == 0.5  # words only: the share of the query the hits hold
    # The words of a German query all held by one passage make it surer than the same similarity without them.
    words_there = replace(unsure, matched=1.0)
    assert confidence.score(words_there) > confidence.score(unsure)
    # Too few passages to judge by: never "nothing fits".
    assert not confidence.nothing_fits(replace(unsure, ranked=confidence.MIN_JUDGED - 1))


def test_fusion_scales_each_ranking_before_mixing() -> None:
    dense = [(1, 0.9), (2, 0.85), (3, 0.8)]
    lexical = [(3, 12.0), (4, 6.0)]
    assert [c for c, _ in fusion.fuse(dense, lexical, 0.0)] == [1, 2, 3]
    fused = dict(fusion.fuse(dense, lexical, 0.6))
    assert fused[3] == pytest.approx(0.6) and fused[1] == pytest.approx(0.4) and fused[4] == pytest.approx(0.3)


def test_an_off_topic_question_has_low_confidence_and_nothing_fits(corpus_searcher: Searcher) -> None:
    off = corpus_searcher.search(OFF_TOPIC, 5)
    on = corpus_searcher.search(ON_TOPIC, 5)
    assert off.nothing_fits and off.hits  # the closest documents are still there, for who wants them
    assert not on.nothing_fits and on.confidence > off.confidence
    for mode in ("dense", "lexical"):
        assert not corpus_searcher.search(ON_TOPIC, 5, mode=mode).nothing_fits


def test_too_few_passages_to_judge_never_say_nothing_fits(searcher: Searcher) -> None:
    assert len(searcher.index.vectors) < confidence.MIN_JUDGED  # the small corpus: one passage per document
    off = searcher.search(OFF_TOPIC, 5)
    assert not off.nothing_fits and off.confidence < searcher.search("Elterncafé an der Grundschule", 5).confidence


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
