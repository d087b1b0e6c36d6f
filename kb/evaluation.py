"""Retrieval evaluation on BEIR-format datasets (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``).

Each dataset gets a throw-away index in a temporary folder (never the configured ``index/``). Corpus entries are
ranked by their ``_id``: an entry split into several chunks counts once (results are grouped by document). A
dataset without ``corpus.jsonl`` (like ``eval/bundled``) is judged against a folder of files, ingested by the real
pipeline; its ids are the files' paths relative to that folder.
Metrics: nDCG@10 (graded), Recall@10, Recall@100 and MRR@10, averaged over the queries that have relevance
judgements, overall, per language and per query kind.

A query's kind is its ``metadata.kind`` ("keyword", "question", "typo", "constraint", "translation",
"no-answer"); a set that does not mark kinds gets "keyword" for one to three words and "question" otherwise, so
short queries are measured as a group everywhere. "no-answer" queries have no judgements: they measure the
search's "nothing fits" decision (precision and recall, with answerable queries where it fired as false alarms).
Queries of another set can serve as no-answer queries (``no_answer_from``): their answers are not in this corpus.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kb.documents import Document, Metadata, Section, document_id
from kb.embedder import Embedder
from kb.errors import ConfigError
from kb.fields import Mode
from kb.ingest import IndexWriter, Ingestor
from kb.search import Searcher
from kb.settings import Settings
from kb.storage import open_storage


@dataclass(frozen=True)
class Dataset:
    name: str
    corpus: dict[str, tuple[str, str]]  # _id → (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id → {corpus id: grade}
    languages: dict[str, str] = field(default_factory=dict)  # query id → language, where the set says
    kinds: dict[str, str] = field(default_factory=dict)  # query id → kind (every query, also no-answer ones)

    @property
    def no_answer(self) -> list[str]:
        return [q for q in self.queries if q not in self.qrels]


@dataclass(frozen=True)
class Metrics:
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int
    misses_at_10: int = 0  # queries without any relevant document in the top 10
    by_language: dict[str, Metrics] = field(default_factory=dict)
    by_kind: dict[str, Metrics] = field(default_factory=dict)
    nothing_fits: NothingFits | None = None

    def as_dict(self) -> dict[str, float | int]:
        return {
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@10": round(self.recall_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "queries": self.queries,
            "misses@10": self.misses_at_10,
        }


@dataclass(frozen=True)
class NothingFits:
    """How well the search's "nothing fits" decision separates no-answer queries from answerable ones."""

    no_answer: int  # no-answer queries
    answerable: int
    caught: int  # no-answer queries where it fired
    false_alarms: int  # answerable queries where it fired

    @property
    def precision(self) -> float:
        fired = self.caught + self.false_alarms
        return self.caught / fired if fired else 0.0

    @property
    def recall(self) -> float:
        return self.caught / self.no_answer if self.no_answer else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "no_answer_queries": self.no_answer,
            "caught": self.caught,
            "false_alarms": self.false_alarms,
            "answerable_queries": self.answerable,
        }


NO_ANSWER = "no-answer"
#: Up to this many words a query is a keyword query when its set does not say.
KEYWORD_WORDS = 3


def query_kind(text: str, metadata: dict[str, Any]) -> str:
    """The kind the set gives a query, or "keyword" (one to three words) / "question"."""
    kind = metadata.get("kind")
    if kind:
        return str(kind)
    return "keyword" if len(text.split()) <= KEYWORD_WORDS else "question"


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load_dataset(folder: Path, max_queries: int | None = None, no_answer_from: Path | None = None) -> Dataset:
    """Read a BEIR folder; ``max_queries`` keeps the first N judged queries (in file order), and every query
    marked "no-answer". ``no_answer_from`` (another set's folder or ``queries.jsonl``) adds its queries as
    no-answer queries (ids prefixed "no-answer:")."""
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
    all_rows = list(_jsonl(needed[1]))
    rows = [row for row in all_rows if row["_id"] in qrels][:max_queries]
    rows += [
        row for row in all_rows if row["_id"] not in qrels and row.get("metadata", {}).get("kind") == NO_ANSWER
    ]
    if no_answer_from is not None:
        source = no_answer_from / "queries.jsonl" if no_answer_from.is_dir() else no_answer_from
        if not source.is_file():
            raise ConfigError(f"{no_answer_from} has no queries.jsonl to take no-answer queries from.")
        rows += [
            {**row, "_id": f"{NO_ANSWER}:{row['_id']}", "metadata": {**row.get("metadata", {}), "kind": NO_ANSWER}}
            for row in _jsonl(source)
        ]
    queries = {row["_id"]: row["text"] for row in rows}
    languages = {
        row["_id"]: str(row["metadata"]["language"]) for row in rows if "language" in row.get("metadata", {})
    }
    kinds = {row["_id"]: query_kind(row["text"], row.get("metadata", {})) for row in rows}
    judged = {q: qrels[q] for q in queries if q in qrels}
    return Dataset(folder.name, corpus, queries, judged, languages, kinds)


def build_index(dataset: Dataset, settings: Settings, embedder: Embedder) -> None:
    """Index every corpus entry as one document whose key is its ``_id``, into ``settings.index_dir``."""
    with open_storage(settings).lock():
        writer = IndexWriter.new(settings, embedder)
        for corpus_id, (title, text) in dataset.corpus.items():
            document = Document(
                path=Path(corpus_id), file_type="text", metadata=Metadata(title=title), sections=(Section(text),)
            )
            writer.add(document_id(corpus_id), corpus_id, "", document)
        writer.publish()


def evaluate(
    dataset: Dataset, searcher: Searcher, mode: Mode = "hybrid", vectors: np.ndarray | None = None
) -> Metrics:
    """Rank the corpus for every query and average the metrics over the judged ones, overall, per language and
    per kind; the "nothing fits" decision is counted when the set has no-answer queries (``vectors``: the
    queries, encoded, in the order of ``dataset.queries``)."""
    ids = list(dataset.queries)
    if vectors is None:
        vectors = searcher.embedder.encode_queries([dataset.queries[q] for q in ids])
    scores: dict[str, tuple[float, float, float, float]] = {}
    fired: set[str] = set()
    documents = searcher.index.documents
    for qid, vector in zip(ids, vectors, strict=True):
        result = searcher.search_encoded(dataset.queries[qid], vector, 100, mode=mode, with_hits=False)
        if result.nothing_fits:
            fired.add(qid)
        if qid in dataset.qrels:
            ranking = [documents[doc_id].key for doc_id in result.ranking]
            scores[qid] = score_ranking(ranking, dataset.qrels[qid])
    judged = [q for q in ids if q in scores]
    overall = _average([scores[q] for q in judged])
    languages = sorted({dataset.languages[q] for q in judged if q in dataset.languages})
    if len(languages) > 1:
        overall.by_language.update(
            {lang: _average([scores[q] for q in judged if dataset.languages.get(q) == lang]) for lang in languages}
        )
    kinds = sorted({dataset.kinds[q] for q in judged if q in dataset.kinds})
    overall.by_kind.update(
        {kind: _average([scores[q] for q in judged if dataset.kinds.get(q) == kind]) for kind in kinds}
    )
    no_answer = dataset.no_answer
    if no_answer:
        decision = NothingFits(
            no_answer=len(no_answer),
            answerable=len(judged),
            caught=sum(q in fired for q in no_answer),
            false_alarms=sum(q in fired for q in judged),
        )
        return replace(overall, nothing_fits=decision)
    return overall


def _average(scores: list[tuple[float, float, float, float]]) -> Metrics:
    n = max(len(scores), 1)
    sums = [sum(s[i] for s in scores) / n for i in range(4)]
    return Metrics(sums[0], sums[1], sums[2], sums[3], len(scores), sum(1 for s in scores if s[1] == 0))


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
    folder: Path,
    settings: Settings,
    embedder: Embedder | None = None,
    max_queries: int | None = None,
    modes: tuple[Mode, ...] = ("hybrid",),
    no_answer_from: Path | None = None,
) -> dict[Mode, Metrics]:
    """Load a dataset, index it in a temporary folder, evaluate each mode, and clean up.

    Without ``corpus.jsonl`` the dataset is judged against ``settings.corpus_dir``, ingested like ``kb ingest``.
    ``no_answer_from``: another set whose queries count as no-answer queries here (:func:`load_dataset`).
    """
    dataset = load_dataset(folder, max_queries, no_answer_from)
    embedder = embedder or Embedder(settings)
    with tempfile.TemporaryDirectory(prefix=f"kb-eval-{dataset.name}-") as tmp:
        eval_settings = settings.model_copy(
            # Local files even when KB_DATABASE_URL is set: the throw-away index must never replace a database's.
            update={"index_dir": Path(tmp) / "index", "data_dir": Path(tmp) / "data", "database_url": ""}
        )
        if dataset.corpus:
            build_index(dataset, eval_settings, embedder)
        else:
            report = Ingestor(eval_settings, embedder).run()
            if report.failed:
                raise ConfigError(
                    f"{len(report.failed)} corpus files could not be ingested, e.g. {report.failed[0]}."
                )
        searcher = Searcher(eval_settings, embedder)
        vectors = embedder.encode_queries(list(dataset.queries.values()))
        return {mode: evaluate(dataset, searcher, mode, vectors) for mode in modes}
