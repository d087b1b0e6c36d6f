"""The query's language and the "nothing fits" decision read against it (kb.confidence)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kb import confidence
from kb.embedder import Embedder
from kb.fusion import Evidence
from kb.search import Searcher
from kb.settings import Settings


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Wie melde ich mein Kind in der Schule an?", "de"),
        ("Elternsprechtag", "de"),
        ("How do I register my child at school?", "en"),
        ("Çocuğumu okula nasıl kaydettiririm?", "tr"),
        ("Veli görüşme günü davet mektubu Türkçe", "tr"),
        ("كيف أسجل طفلي في المدرسة؟", "ar"),
        ("Як записати дитину до школи?", "uk"),
        ("Как записать ребёнка в школу?", "ru"),
    ],
)
def test_the_query_language_is_detected(text: str, language: str) -> None:
    assert confidence.query_language(text) == language


def test_similarity_is_read_against_the_reference_of_the_query_language() -> None:
    # The same similarity is a good fit for an English query (whose off-topic questions reach less) and a poor
    # one for a German query.
    similarity = (confidence.REFERENCE["en"] + confidence.REFERENCE["de"]) / 2
    english = Evidence(similarity=similarity, distinctness=0.04, ranked=100, code="en")
    german = replace(english, code="de", language=1.0)
    assert confidence.score(english) > confidence.score(german)
    other = replace(english, code="uk")
    assert confidence.features(other)[0] == pytest.approx(similarity - confidence.REFERENCE_OTHER)


def test_a_query_standing_out_is_surer_than_a_flat_top() -> None:
    flat = Evidence(similarity=0.86, distinctness=0.01, ranked=100, language=1.0, matched=0.5)
    standing_out = replace(flat, distinctness=0.06)
    assert confidence.score(standing_out) > confidence.score(flat)
    assert confidence.nothing_fits(flat) and not confidence.nothing_fits(standing_out)


@pytest.fixture(scope="module")
def corpus_searcher(corpus_settings: Settings, embedder: Embedder) -> Searcher:
    return Searcher(corpus_settings, embedder)


def test_foreign_questions_the_corpus_answers_are_not_told_nothing_fits(corpus_searcher: Searcher) -> None:
    answered = [
        "Как записать ребёнка в школу в Германии?",
        "How do children who arrive from abroad get a place at school?",
        "Almanya'ya yeni geldik, çocuğumu okula nasıl kaydettiririm?",
    ]
    off_topic = ["Wie hoch ist die Hundesteuer in Bochum?", "Who won the football world cup in 1954?"]
    for query in answered:
        assert not corpus_searcher.search(query, 5).nothing_fits, query
    for query in off_topic:
        assert corpus_searcher.search(query, 5).nothing_fits, query
