"""BM25 kept up to date by a writer: analysing only the changed chunks gives the index a full build gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb import lexical
from kb.lexical import LexicalIndex, vocabulary_counts

TEXTS = [
    "Das Elterncafé lädt Mütter und Väter mit Zuwanderungsgeschichte jede Woche in die Grundschule ein.",
    "Sprachbildung im Fachunterricht: Lehrkräfte planen Wortspeicher für Mathematik und Sachunterricht.",
    "Ehrenamtliche Lernpatinnen begleiten neu zugewanderte Kinder bei den Hausaufgaben.",
    "Herkunftssprachlicher Unterricht in Türkisch und Arabisch stärkt die Mehrsprachigkeit.",
    "Die Kommune bildet Sprach- und Kulturmittler für Elterngespräche in Kitas und Schulen aus.",
    "Schwimmkurse für Mädchen finden im geschützten Raum mit Trainerinnen des Sportvereins statt.",
    "Seiteneinsteigerinnen lernen Deutsch als Zweitsprache in Vorbereitungsklassen der Sekundarstufe.",
    "Bildungsberatung für neu zugewanderte Jugendliche am Übergang von der Schule in den Beruf.",
]
REMOVED = {2, 6}  # chunk ids taken out by the writer
ADDED = [
    (20, "Ein Patenschaftsprogramm bringt Ehrenamtliche und neu zugewanderte Familien im Stadtteil zusammen."),
    (21, "Der Quokkaverband übersetzt Zeugnisse für Eltern in mehrere Sprachen."),
]
QUERIES = ["Ehrenamtliche Paten für zugewanderte Familien", "Türkisch Mehrsprachigkeit", "Zeugnisse übersetzen"]


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    LexicalIndex.build(list(enumerate(TEXTS, start=1))).save(tmp_path)
    return tmp_path


def _update(folder: Path, removed: set[int], added: list[tuple[int, str]]) -> LexicalIndex | None:
    gone = [text for i, text in enumerate(TEXTS, start=1) if i in removed]
    return LexicalIndex.updated(folder, removed, vocabulary_counts(gone), added)


def test_an_update_gives_the_index_a_full_build_gives(previous: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical, "FULL_REBUILD_FRACTION", 1.0)  # this tiny index would otherwise be rebuilt
    updated = _update(previous, REMOVED, ADDED)
    assert updated is not None
    full = LexicalIndex.build([(i, t) for i, t in enumerate(TEXTS, start=1) if i not in REMOVED] + ADDED)
    assert updated.chunk_ids.tolist() == full.chunk_ids.tolist() == [1, 3, 4, 5, 7, 8, 20, 21]
    assert set(updated.terms) == set(full.terms)
    assert updated.analyzer.splitter.vocabulary == full.analyzer.splitter.vocabulary
    for query in QUERIES:
        got, want = (index.search(index.query_terms(query), 5) for index in (updated, full))
        assert got and [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)


def test_words_of_removed_chunks_leave_the_index(previous: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical, "FULL_REBUILD_FRACTION", 1.0)
    updated = _update(previous, {6}, [])  # the swimming course: its words occur nowhere else
    assert updated is not None
    assert not {"schwimmkurs", "trainerin", "sportverein"} & set(updated.terms)
    assert "schwimmkurse" not in updated.analyzer.splitter.vocabulary
    assert updated.search(updated.query_terms("Schwimmkurse Mädchen"), 5) == []
    updated.save(previous)  # and it stays out of the next version's files
    assert "Schwimm" not in (previous / lexical.LEXICAL_TERMS).read_text(encoding="utf-8")


def test_too_many_changes_or_an_older_version_ask_for_a_full_build(previous: Path, tmp_path: Path) -> None:
    assert _update(previous, REMOVED, ADDED) is None  # 4 of 8 chunks changed: over FULL_REBUILD_FRACTION
    older = tmp_path / "older"
    older.mkdir()
    built = LexicalIndex.build(list(enumerate(TEXTS, start=1)))
    built.counts = None  # a version written before term counts were stored
    built.save(older)
    assert LexicalIndex.updated(older, set(), vocabulary_counts([]), ADDED[:1]) is None


def test_readers_do_not_load_the_term_counts(previous: Path) -> None:
    loaded = LexicalIndex.load(previous)
    assert loaded.counts is None and loaded.search(loaded.query_terms("Elterncafé"), 1)[0][0] == 1


def test_a_token_as_it_stands_in_a_text_has_the_terms_of_its_word() -> None:
    analyzer = lexical.Analyzer(lexical.CompoundSplitter.from_texts([*TEXTS, "Bildung"]))
    assert analyzer.token_terms("„Sprachbildung,") == frozenset(analyzer.terms("Sprachbildung"))
    assert {"sprach", "bildung"} <= analyzer.token_terms("Sprachbildung")  # compound parts too
    assert analyzer.token_terms("Sprach-") == frozenset(analyzer.terms("Sprach"))
    assert analyzer.token_terms("und") == frozenset()  # a stop word has no terms
    assert analyzer.token_terms("„Sprachbildung,") is analyzer.token_terms("„Sprachbildung,")  # cached


@pytest.mark.parametrize(
    ("acronym", "found"),
    [
        ("SKM", "Die Kommune bildet Sprach- und Kulturmittler"),
        ("Willkommensklasse", "Seiteneinsteigerinnen lernen Deutsch als Zweitsprache in Vorbereitungsklassen"),
        ("HKU", "Herkunftssprachlicher Unterricht in Türkisch und Arabisch"),
    ],
)
def test_the_shipped_synonyms_find_what_an_acronym_or_another_name_means(acronym: str, found: str) -> None:
    index = LexicalIndex.build(list(enumerate(TEXTS)))
    index.use_synonyms(lexical.load_synonyms(None))
    best = index.search(index.query_terms(acronym), 1)
    assert best and TEXTS[best[0][0]].startswith(found)


SPELLING = [
    "Die Gruppengröße im Herkunftssprachlichen Unterricht liegt bei mindestens fünfzehn Kindern.",
    "Die Gruppengröße entscheidet die Schulaufsicht; Seiteneinsteiger werden dazu angemeldet.",
    "Große Runde der Kommunalen Integrationszentren im Rathaus.",
    "Seiteneinsteiger besuchen zuerst eine Erstförderung; Seiteneinsteiger lernen dort Deutsch.",
    "Der Orientierungskurs erklärt Geschichte und Recht; der Orientierungskurs endet mit einem Test.",
    "Die Unterlagen sind schon da. Ein schön gestalteter Elternbrief lädt zum Seiteneinstieg ein.",
    "Zum Seiteneinstieg gibt es eine Beratung beim Seiteneinstieg.",
    "Kleine Gruppen: auf ihre Größe kommt es an.",
]


@pytest.fixture(scope="module")
def spelled() -> LexicalIndex:
    return LexicalIndex.build(list(enumerate(SPELLING)))


def _best(index: LexicalIndex, query: str) -> int:
    return index.search(index.query_terms(query), 1)[0][0]


def test_umlauts_keep_distinct_words_apart(spelled: LexicalIndex) -> None:
    analyzer = spelled.analyzer
    assert analyzer.terms("Größe") != analyzer.terms("Große")
    assert analyzer.terms("schön") != analyzer.terms("schon")
    assert set(analyzer.terms("Größe")) <= set(analyzer.terms("Gruppengröße"))  # the part keeps its umlaut
    assert not set(analyzer.terms("Große")) & set(analyzer.terms("Gruppengröße"))
    assert _best(spelled, "Große Runde") == 2
    assert {c for c, _ in spelled.search(spelled.query_terms("Große"), 10)} == {2}


@pytest.mark.parametrize(
    ("query", "corrected", "found"),
    [
        ("Seiteneinsteier", "seiteneinsteiger", 3),  # one letter missing
        ("Orientirungskurs", "orientierungskurs", 4),  # one letter missing in a long word
        ("Groesse", "groesse", None),  # an umlaut spelled out: read as one by the analysis
        ("Gruppengrosse", "gruppengrösse", None),  # an umlaut left out
    ],
)
def test_unknown_words_are_corrected_against_the_vocabulary(
    spelled: LexicalIndex, query: str, corrected: str, found: int | None
) -> None:
    assert spelled.corrected(query)[0] == [corrected]
    hits = {c for c, _ in spelled.search(spelled.query_terms(query), 10)}
    assert hits and (found is None or _best(spelled, query) == found)
    if "gr" in corrected:
        assert hits == {0, 1, 7}  # the documents with "Größe", not the one with "Große"


def test_known_words_are_never_corrected(spelled: LexicalIndex) -> None:
    assert spelled.corrected("Große schon Runde")[0] == ["grosse", "schon", "runde"]  # case-folded, not changed
    assert spelled.corrected("Quokkaverband")[0] == ["quokkaverband"]  # nothing close: left as it is


def test_split_compounds_find_the_joined_word(spelled: LexicalIndex) -> None:
    assert spelled.corrected("Seiten Einstieg")[1] == ["seiteneinstieg"]
    terms = spelled.query_terms("Seiten Einstieg")
    assert terms["seiteneinstieg"] == lexical.SYNONYM_WEIGHT
    assert _best(spelled, "Seiten Einstieg") == 6


def test_a_version_of_the_old_analysis_is_read_with_it_and_rebuilt_by_the_next_write(tmp_path: Path) -> None:
    built = LexicalIndex.build(list(enumerate(SPELLING)))
    built.analyzer.umlauts = False  # as a version written before umlauts were kept
    built.save(tmp_path)
    payload = (tmp_path / lexical.LEXICAL_TERMS).read_text(encoding="utf-8")
    assert '"analysis": 1' in payload
    loaded = LexicalIndex.load(tmp_path)
    assert not loaded.analyzer.umlauts and loaded.analyzer.terms("Größe") == ["gross"]
    assert loaded.corrected("Seiteneinsteier") == (["seiteneinsteier"], [])  # its vocabulary is folded
    assert LexicalIndex.updated(tmp_path, set(), vocabulary_counts([]), [(99, "Neu")]) is None
