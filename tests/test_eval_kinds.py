"""`kb eval` per language and per query kind, and the "nothing fits" decision measured on no-answer queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app
from kb.embedder import Embedder
from kb.evaluation import NO_ANSWER, NothingFits, build_index, evaluate, load_dataset, query_kind
from kb.search import Searcher
from kb.settings import Settings

CORPUS = {
    "d1": (
        "Elterncafé",
        "Eltern treffen sich jede Woche im Elterncafé der Grundschule und sprechen über Zeugnisse.",
    ),
    "d2": ("Schwimmkurs", "Mädchen lernen im Schwimmkurs mit Trainerinnen schwimmen."),
    "d3": ("Seiteneinstieg", "Seiteneinsteiger lernen Deutsch in einer Vorbereitungsklasse der Sekundarstufe."),
}
QUERIES = [
    {"_id": "q1", "text": "Elterncafé", "metadata": {"language": "de", "kind": "keyword"}},
    {"_id": "q2", "text": "Wo treffen sich Eltern an der Grundschule?", "metadata": {"language": "de"}},
    {"_id": "q3", "text": "Yüzme kursu kızlar için", "metadata": {"language": "tr", "kind": "translation"}},
    {"_id": "q4", "text": "Seiteneinsteier Deutsch", "metadata": {"language": "de", "kind": "typo"}},
    {"_id": "q5", "text": "Wie hoch ist die Hundesteuer?", "metadata": {"language": "de", "kind": NO_ANSWER}},
    {"_id": "q6", "text": "not judged and not marked: left out", "metadata": {"language": "en"}},
]
QRELS = {"q1": "d1", "q2": "d1", "q3": "d2", "q4": "d3"}


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("kinds") / "kinds"
    (folder / "qrels").mkdir(parents=True)
    rows = [{"_id": k, "title": t, "text": x} for k, (t, x) in CORPUS.items()]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t1" for q, d in QRELS.items())]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_kinds_come_from_the_metadata_or_from_the_length() -> None:
    assert query_kind("Elternbrief", {}) == "keyword"
    assert query_kind("HSU Anmeldung Frist", {}) == "keyword"
    assert query_kind("Wie melde ich mein Kind an?", {}) == "question"
    assert query_kind("Elternbrief", {"kind": "translation"}) == "translation"


def test_no_answer_queries_are_kept_without_judgements(dataset_folder: Path) -> None:
    dataset = load_dataset(dataset_folder)
    assert set(dataset.queries) == {"q1", "q2", "q3", "q4", "q5"}
    assert dataset.no_answer == ["q5"] and "q5" not in dataset.qrels
    assert dataset.kinds == {"q1": "keyword", "q2": "question", "q3": "translation", "q4": "typo", "q5": NO_ANSWER}
    with_foreign = load_dataset(dataset_folder, no_answer_from=dataset_folder / "queries.jsonl")
    foreign = [q for q in with_foreign.queries if q.startswith(f"{NO_ANSWER}:")]
    assert len(foreign) == len(QUERIES) and all(with_foreign.kinds[q] == NO_ANSWER for q in foreign)
    assert with_foreign.qrels == dataset.qrels


def test_metrics_per_kind_and_the_nothing_fits_decision(
    dataset_folder: Path, embedder: Embedder, tmp_path: Path
) -> None:
    dataset = load_dataset(dataset_folder)
    settings = Settings(index_dir=tmp_path / "index")
    build_index(dataset, settings, embedder)
    searcher = Searcher(settings, embedder)
    metrics = evaluate(dataset, searcher)
    assert metrics.queries == 4
    assert set(metrics.by_kind) == {"keyword", "question", "translation", "typo"}
    assert sum(m.queries for m in metrics.by_kind.values()) == 4
    assert set(metrics.by_language) == {"de", "tr"}
    fired = {q for q, text in dataset.queries.items() if searcher.search(text, 10).nothing_fits}
    assert metrics.nothing_fits == NothingFits(
        no_answer=1, answerable=4, caught=int("q5" in fired), false_alarms=len(fired - {"q5"})
    )


def test_nothing_fits_precision_and_recall() -> None:
    decision = NothingFits(no_answer=10, answerable=90, caught=6, false_alarms=2)
    assert decision.precision == 0.75 and decision.recall == 0.6
    assert NothingFits(no_answer=0, answerable=5, caught=0, false_alarms=0).as_dict()["precision"] == 0.0


def test_eval_json_prints_languages_kinds_and_the_decision(dataset_folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--index-dir", str(tmp_path / "index"), "eval", str(dataset_folder), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert set(payload["by_language"]) == {"de", "tr"}
    assert payload["by_kind"]["keyword"]["queries"] == 1 and payload["by_kind"]["typo"]["queries"] == 1
    decision = payload["nothing_fits"]
    assert decision["no_answer_queries"] == 1 and decision["answerable_queries"] == 4
    assert not (tmp_path / "index").exists()
