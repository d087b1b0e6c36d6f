"""nDCG@10 of ``eval/bundled`` per query kind, persona and language, for every search mode, from one index.

``kb eval`` prints the overall numbers (and per language); this script splits them by the ``kind`` and ``persona``
of each query, so that short, misspelt, constrained and translation queries can be compared with questions. It
also reports a usability-weighted nDCG@10, in which a judged document counts with ``min(topic, usability)``
(``qrels/usability.tsv``): a document the user cannot read or use does not count as a hit (queries with no usable
judged document are left out of that column; its count is in brackets). No-answer queries have no judgements and
are not scored here.

The index is the one in ``KB_INDEX_DIR``, brought up to date with ``KB_CORPUS_DIR`` by an (incremental) ingest::

    KB_CORPUS_DIR=corpus KB_INDEX_DIR=/tmp/idx KB_DATA_DIR=/tmp/data python tools/eval_bundled/by_kind.py
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from kb.embedder import Embedder
from kb.evaluation import score_ranking
from kb.fields import MODES
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "eval" / "bundled"


def _grades(name: str) -> dict[str, dict[str, int]]:
    grades: dict[str, dict[str, int]] = {}
    for line in (DATA / "qrels" / name).read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, grade = line.split("\t")
        grades.setdefault(qid, {})[doc] = int(grade)
    return grades


def main() -> int:
    settings = Settings()
    embedder = Embedder(settings)
    report = Ingestor(settings, embedder).run()
    for failure in report.failed:
        print(f"not indexed: {failure.path}: {failure.reason}", file=sys.stderr)
    topic = _grades("test.tsv")
    usable = _grades("usability.tsv")
    rows = [json.loads(line) for line in (DATA / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [row for row in rows if row["_id"] in topic]
    searcher = Searcher(settings, embedder)
    vectors = embedder.encode_queries([row["text"] for row in rows])
    documents = searcher.index.documents
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for mode in MODES:
        for row, vector in zip(rows, vectors, strict=True):
            result = searcher.search_encoded(row["text"], vector, 100, mode=mode, with_hits=False)
            ranking = [documents[doc_id].key for doc_id in result.ranking]
            meta = row["metadata"]
            ndcg = score_ranking(ranking, topic[row["_id"]])[0]
            weighted = {doc: min(g, usable[row["_id"]][doc]) for doc, g in topic[row["_id"]].items()}
            weighted = {doc: g for doc, g in weighted.items() if g}
            groups = ("all", f"kind={meta['kind']}", f"persona={meta['persona']}", f"language={meta['language']}")
            for group in groups:
                table[group][mode].append(ndcg)
                if weighted:  # a query whose judged documents are all unusable for its user has no usable ideal
                    table[group][f"{mode}-usable"].append(score_ranking(ranking, weighted)[0])
    print("| group | n | hybrid | dense | lexical | hybrid, usability-weighted |")
    print("|---|---:|---:|---:|---:|---:|")
    for group in sorted(table, key=lambda g: (g != "all", g)):
        cells = table[group]
        n = len(cells["hybrid"])
        values = [sum(cells[m]) / max(len(cells[m]), 1) for m in ("hybrid", "dense", "lexical", "hybrid-usable")]
        print(
            f"| {group} | {n} | " + " | ".join(f"{v:.3f}" for v in values) + f" ({len(cells['hybrid-usable'])}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
