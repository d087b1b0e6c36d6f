import json
from pathlib import Path

from typer.testing import CliRunner

from kb.cli import app
from kb.settings import Settings
from tests.conftest import make_small_corpus

runner = CliRunner()


def test_search_prints_json_like_the_api(small_settings: Settings) -> None:
    result = runner.invoke(
        app,
        [
            "--index-dir",
            str(small_settings.index_dir),
            "search",
            "Schwimmen lernen für Mädchen",
            "-k",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["results"][0]["title"] == "Schwimmkurse für Mädchen"
    assert len(payload["results"]) == 2


def test_search_prints_readable_results(small_settings: Settings) -> None:
    result = runner.invoke(app, ["--index-dir", str(small_settings.index_dir), "search", "Demenz", "-k", "1"])
    assert result.exit_code == 0
    assert "Demenz und Migration in der Altenpflege" in result.stdout and "Hagen" in result.stdout


def test_stats_counts_per_district_type_and_topic(small_settings: Settings) -> None:
    result = runner.invoke(app, ["--index-dir", str(small_settings.index_dir), "stats"])
    assert result.exit_code == 0
    assert "7 documents" in result.stdout
    assert "Dortmund" in result.stdout and "Praxisbericht" in result.stdout and "Sport" in result.stdout


def test_ingest_reports_failures_and_exits_partial(tmp_path: Path) -> None:
    corpus = make_small_corpus(tmp_path / "corpus")
    (corpus / "leer.txt").write_bytes(b"")
    result = runner.invoke(app, ["--corpus-dir", str(corpus), "--index-dir", str(tmp_path / "index"), "ingest"])
    assert result.exit_code == 6
    assert "added 7, updated 0, removed 0, unchanged 0, failed 1" in result.stdout
    assert "failed: leer.txt: empty file (0 bytes)" in result.stderr


def test_missing_index_is_one_line_and_exit_code_4(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--index-dir", str(tmp_path / "nothing"), "search", "Eltern"])
    assert result.exit_code == 4
    assert (
        result.stderr.strip()
        == f"error: There is no index in {tmp_path / 'nothing'} yet; run `kb ingest` to build it."
    )


def test_empty_query_is_exit_code_2(small_settings: Settings) -> None:
    result = runner.invoke(app, ["--index-dir", str(small_settings.index_dir), "search", "  "])
    assert result.exit_code == 2 and "The query is empty" in result.stderr


def test_search_with_filters_and_mode(small_settings: Settings) -> None:
    args = ["--index-dir", str(small_settings.index_dir), "search", "Schulplatz", "--json", "--mode", "lexical"]
    result = runner.invoke(app, [*args, "--filter", "district=Duisburg", "-f", "year=2020..2022"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mode"] == "lexical" and [r["district"] for r in payload["results"]] == ["Duisburg"]


def test_bad_filter_is_exit_code_2(small_settings: Settings) -> None:
    result = runner.invoke(app, ["--index-dir", str(small_settings.index_dir), "search", "x", "-f", "bezirk=Köln"])
    assert result.exit_code == 2 and "Unknown filter 'bezirk'" in result.stderr


def test_similar_prints_documents_from_other_districts(small_settings: Settings) -> None:
    search = runner.invoke(
        app, ["--index-dir", str(small_settings.index_dir), "search", "Elterncafé", "-k", "1", "--json"]
    )
    doc_id = json.loads(search.stdout)["results"][0]["document_id"]
    result = runner.invoke(
        app, ["--index-dir", str(small_settings.index_dir), "similar", doc_id, "-k", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 2 and all(h["district"] != "Dortmund" for h in hits)


def test_json_results_have_the_fields_and_values_of_the_api(small_settings: Settings) -> None:
    from kb.api.schemas import SearchHitOut
    from kb.cli import hit_fields
    from kb.search import Searcher

    hits = Searcher(small_settings).search("Eltern und Schule", 5).hits
    assert hits
    for hit in hits:
        assert hit_fields(hit) == json.loads(SearchHitOut.of(hit).model_dump_json())


def _tiny_beir(folder: Path) -> Path:
    """Three German passages; one German and one Turkish question for each of two of them."""
    passages = {
        "p1": "Das Elterncafé an der Grundschule lädt Eltern jeden Dienstag zum Austausch mit Lehrkräften ein.",
        "p2": "Schwimmkurse für Mädchen finden im Hallenbad statt, mit Trainerinnen und eigenen Zeiten.",
        "p3": "Die Stadtbibliothek verleiht zweisprachige Bilderbücher in Arabisch und Deutsch.",
    }
    questions = [
        ("q1", "Wann trifft sich das Elterncafé?", "de", "p1"),
        ("q2", "Veli kafesi ne zaman toplanıyor?", "tr", "p1"),
        ("q3", "Wo lernen Mädchen schwimmen?", "de", "p2"),
        ("q4", "Kızlar nerede yüzmeyi öğreniyor?", "tr", "p2"),
    ]
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": pid, "title": "", "text": text} for pid, text in passages.items()]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(row) for row in corpus), encoding="utf-8")
    queries = [{"_id": q, "text": text, "metadata": {"language": lang}} for q, text, lang, _ in questions]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(row) for row in queries), encoding="utf-8")
    qrels = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{pid}\t1" for q, _, _, pid in questions]
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return folder


def test_eval_json_reports_each_query_language(tmp_path: Path) -> None:
    dataset = _tiny_beir(tmp_path / "tiny")
    result = runner.invoke(app, ["--index-dir", str(tmp_path / "index"), "eval", str(dataset), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["queries"] == 4
    assert sorted(payload["by_language"]) == ["de", "tr"]
    assert all(m["queries"] == 2 for m in payload["by_language"].values())
    assert all(0 < m["ndcg@10"] <= 1 for m in payload["by_language"].values())
