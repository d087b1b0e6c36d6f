"""Retrieval evaluation on BEIR-format datasets (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``).

Each dataset gets a throw-away index in a temporary folder (never the configured ``index/``). Corpus entries are
ranked by their ``_id``: an entry split into several chunks counts once (results are grouped by document). A
dataset without ``corpus.jsonl`` (like ``eval/bundled``) is judged against a folder of files, ingested by the real
pipeline; its ids are the files' paths relative to that folder.
Metrics: nDCG@10 (graded), Recall@10, Recall@100 and MRR@10, averaged over the queries that have relevance
judgements.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kb.documents import Document, Metadata, Section, document_id
from kb.embedder import Embedder
from kb.errors import ConfigError
from kb.index import IndexDir
from kb.ingest import IndexWriter
from kb.search import Searcher
from kb.settings import Settings


@dataclass(frozen=True)
class Dataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # _id → (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id → {corpus id: grade}


@dataclass(frozen=True)
class Metrics:
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@10": round(self.recall_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "queries": self.queries,
        }


def _jsonl(path: Path) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load_dataset(folder: Path, max_queries: int | None = None) -> Dataset:
    """Read a BEIR folder; ``max_queries`` keeps the first N judged queries (in file order)."""
    needed = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "test.tsv"]
    missing = [str(p) for p in needed[1:] if not p.is_file()]
    if missing:
        raise ConfigError(f"{folder} is not a BEIR dataset: missing {', '.join(missing)}.")
    corpus = (
        {row["_id"]: (row.get("title", "") or "", row.get("text", "") or "") for row in _jsonl(needed[0])}
        if needed[0].is_file()
        else {}
    )
    qrels: dict[str, dict[str, int]] = {}
    for line in needed[2].read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
            continue  # header or malformed line
        if int(parts[2]) > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {row["_id"]: row["text"] for row in _jsonl(needed[1]) if row["_id"] in qrels}
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])
    return Dataset(folder.name, corpus, queries, {q: qrels[q] for q in queries})


def build_index(dataset: Dataset, settings: Settings, embedder: Embedder) -> None:
    """Index every corpus entry as one document whose key is its ``_id``, into ``settings.index_dir``."""
    index_dir = IndexDir(settings.index_dir)
    with index_dir.acquire():
        writer = IndexWriter.empty(settings, embedder, index_dir.start_build())
        for corpus_id, (title, text) in dataset.corpus.items():
            document = Document(
                path=Path(corpus_id), file_type="text", metadata=Metadata(title=title), sections=(Section(text),)
            )
            writer.add(document_id(corpus_id), corpus_id, "", document)
        writer.publish(index_dir)


def evaluate(dataset: Dataset, searcher: Searcher) -> Metrics:
    """Rank the corpus for every judged query and average the metrics."""
    ids = list(dataset.queries)
    vectors = searcher.embedder.encode_queries([dataset.queries[q] for q in ids])
    totals = [0.0, 0.0, 0.0, 0.0]
    for qid, vector in zip(ids, vectors, strict=True):
        hits = searcher.search_encoded(dataset.queries[qid], vector, 100).hits
        ranking = [hit.document.key for hit in hits]
        for i, value in enumerate(score_ranking(ranking, dataset.qrels[qid])):
            totals[i] += value
    n = max(len(ids), 1)
    return Metrics(totals[0] / n, totals[1] / n, totals[2] / n, totals[3] / n, len(ids))


def score_ranking(ranking: list[str], relevant: dict[str, int]) -> tuple[float, float, float, float]:
    """nDCG@10, Recall@10, Recall@100 and MRR@10 of one ranked list of corpus ids."""
    dcg = sum((2 ** relevant.get(doc, 0) - 1) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum((2**grade - 1) / math.log2(rank + 2) for rank, grade in enumerate(ideal))
    recall10 = len(set(ranking[:10]) & relevant.keys()) / len(relevant)
    recall100 = len(set(ranking[:100]) & relevant.keys()) / len(relevant)
    mrr = next((1 / (rank + 1) for rank, doc in enumerate(ranking[:10]) if doc in relevant), 0.0)
    return (dcg / idcg if idcg else 0.0), recall10, recall100, mrr


def run(
    folder: Path, settings: Settings, embedder: Embedder | None = None, max_queries: int | None = None
) -> Metrics:
    """Load a dataset, index it in a temporary folder, evaluate, and clean up."""
    dataset = load_dataset(folder, max_queries)
    embedder = embedder or Embedder(settings)
    with tempfile.TemporaryDirectory(prefix=f"kb-eval-{dataset.name}-") as tmp:
        eval_settings = settings.model_copy(update={"index_dir": Path(tmp) / "index"})
        build_index(dataset, eval_settings, embedder)
        return evaluate(dataset, Searcher(eval_settings, embedder))
