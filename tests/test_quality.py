"""Retrieval quality regression on XQuAD (240 German passages; German, Turkish and English questions).

Data: XQuAD (Artetxe et al., 2019), CC BY-SA 4.0, read from ../shared/eval (see its SOURCE.txt); not copied here.
Measured in the default (hybrid) mode on 2026-11-25 (docs/quality.md): de-de nDCG@10 0.967 / R@10 0.993,
tr-de 0.829 / 0.935, en-de 0.917 / 0.987; dense alone: 0.952, 0.829, 0.917. The floors below sit above dense
alone for German (the hybrid gain must not vanish) and at dense level for the other languages (lexical evidence
must not drag them down).
"""

from pathlib import Path

import pytest

from kb.embedder import Embedder
from kb.evaluation import build_index, evaluate, load_dataset, score_ranking
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import SHARED_EVAL

needs_shared = pytest.mark.skipif(
    not (SHARED_EVAL / "xquad-de-de").is_dir(),
    reason=f"the shared evaluation sets are not at {SHARED_EVAL} (they live beside the repository, in ../shared)",
)


@pytest.fixture(scope="module")
def xquad_searcher(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    """One index over the 240 German passages, shared by the German and the Turkish questions."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("xquad") / "index")
    build_index(load_dataset(SHARED_EVAL / "xquad-de-de"), settings, embedder)
    return Searcher(settings, embedder)


@needs_shared
@pytest.mark.parametrize(
    ("name", "min_ndcg", "min_recall"),
    [("xquad-de-de", 0.958, 0.985), ("xquad-tr-de", 0.82, 0.925), ("xquad-en-de", 0.905, 0.98)],
)
def test_retrieval_quality_does_not_regress(
    xquad_searcher: Searcher, name: str, min_ndcg: float, min_recall: float
):
    dataset = load_dataset(SHARED_EVAL / name)
    assert len(dataset.corpus) == 240 and dataset.queries
    metrics = evaluate(dataset, xquad_searcher)
    assert metrics.queries == len(dataset.queries)
    assert metrics.ndcg_at_10 >= min_ndcg, metrics
    assert metrics.recall_at_10 >= min_recall, metrics


def test_metrics_of_a_known_ranking() -> None:
    ndcg, recall10, recall100, mrr = score_ranking(["a", "b", "c"], {"b": 1})
    assert mrr == 0.5 and recall10 == recall100 == 1.0
    assert ndcg == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert score_ranking(["x"], {"b": 1}) == (0.0, 0.0, 0.0, 0.0)


def test_eval_does_not_touch_the_configured_index(tmp_path: Path, embedder: Embedder) -> None:
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Elterncafé", "text": "Eltern treffen sich in der Schule."}\n'
        '{"_id": "d2", "title": "Schwimmen", "text": "Mädchen lernen schwimmen."}\n',
        encoding="utf-8",
    )
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "Treffen für Eltern"}\n', encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    from kb.evaluation import run

    settings = Settings(index_dir=tmp_path / "index")
    metrics = run(folder, settings, embedder)["hybrid"]
    assert metrics.queries == 1 and metrics.mrr_at_10 == 1.0
    assert not (tmp_path / "index").exists()
