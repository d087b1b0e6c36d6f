"""Raw signals of every tuning and test query of the "nothing fits" decision, searched on the bundled corpus.

Writes one JSON line per query (its source, id, language, whether it has an answer in the bundled corpus, and the
signals :mod:`kb.confidence` reads) so that ``fit.py`` can choose the decision's constants offline::

    PYTHONPATH=. python tools/nothing_fits/collect.py /tmp/nf/index /tmp/nf/signals.jsonl

The index folder is built from ``corpus/`` on the first run and reused afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from kb.embedder import Embedder
from kb.evaluation import NO_ANSWER, load_dataset
from kb.ingest import Ingestor
from kb.search import Searcher, gather_evidence
from kb.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent.parent / "shared" / "eval"
#: Queries taken from each shared set as off-topic questions for the bundled corpus (the first N in file order).
NEGATIVES = {
    "miracl-de-dev": 150,
    "faq-paraphrase-de": 143,
    "germanquad-test": 150,
    "xquad-de-de": 100,
    "xquad-tr-de": 150,
    "xquad-ar-de": 150,
    "xquad-en-de": 150,
    "gesetze-headings": 200,
}


def main(index_dir: Path, out: Path) -> None:
    settings = Settings(corpus_dir=ROOT / "corpus", index_dir=index_dir, data_dir=index_dir.parent / "data")
    embedder = Embedder(settings)
    if not (index_dir / "CURRENT").exists():
        Ingestor(settings, embedder).run()
    searcher = Searcher(settings, embedder)
    index = searcher.index
    rows: list[dict[str, object]] = []
    bundled = load_dataset(ROOT / "eval" / "bundled")
    for qid, text in bundled.queries.items():
        kind = bundled.kinds.get(qid, "")
        rows.append({"source": "bundled", "id": qid, "text": text, "kind": kind, "answer": kind != NO_ANSWER})
    for name, count in NEGATIVES.items():
        lines = (SHARED / name / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        for line in lines:
            row = json.loads(line)
            rows.append({"source": name, "id": row["_id"], "text": row["text"], "kind": NO_ANSWER, "answer": 0})
    vectors = embedder.encode_queries([str(r["text"]) for r in rows])
    with open(out, "w", encoding="utf-8") as handle:
        for row, vector in zip(rows, vectors, strict=True):
            result = searcher.search_encoded(str(row["text"]), vector, 10, mode="hybrid", with_hits=False)
            text = str(row["text"])
            evidence = gather_evidence(index, text, index.lexical.query_terms(text), vector, "hybrid", None)
            row.update(dataclasses.asdict(evidence))
            row["old_nothing_fits"] = result.nothing_fits
            row["old_confidence"] = result.confidence
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
