"""The vector index alone: the approximate index against exact search (no SQLite, no BM25).

Build time, file size, load time and memory read and memory-mapped, latency, Recall@10 and a filtered search,
on two kinds of synthetic vectors: ``mixed`` (as the scale rows) and ``copies`` (the pessimistic case).
"""

from __future__ import annotations

import functools
import gc
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.paths import REPO
from bench.synthetic import StubEncoder, bundled_questions, scale_pool
from bench.timing import rss_mb, timed
from kb.embedder import Embedder
from kb.index import open_current
from kb.ingest import Ingestor
from kb.settings import Settings
from kb.vectors import Vectors


def measure_ann(tmp: Path, sizes: list[int], work: Path) -> list[dict[str, Any]]:
    """Vector index alone: the ANN index against exact at each size (build, file load, memory, latency,
    Recall@10), on two kinds of synthetic vectors: ``mixed`` (as the scale rows: mixes of two real vectors of the
    pool, :class:`bench.synthetic.StubEncoder`) and ``copies`` (the bundled corpus's vectors cycled with noise:
    thousands of near-tied copies of each, the pessimistic case)."""
    settings = Settings(corpus_dir=REPO / "corpus", index_dir=tmp / "seed-ann", data_dir=tmp / "data")
    embedder = Embedder(settings)
    _, pool = scale_pool(settings.model_copy(update={"index_dir": work / "seed"}), embedder, work / "pool")
    Ingestor(settings, embedder).run()
    seed = open_current(settings.index_dir)
    ids = np.concatenate(list(seed.doc_chunks.values()))
    base = np.stack([seed.vectors.reconstruct(int(c)) for c in ids])
    queries = embedder.encode_queries(bundled_questions()[:100])
    rng = np.random.default_rng(0)

    def copies(start: int, n: int) -> np.ndarray:
        part = base[np.arange(start, start + n) % len(base)] + rng.normal(0, 0.02, (n, base.shape[1])).astype(
            np.float32
        )
        return np.asarray(part / np.linalg.norm(part, axis=1, keepdims=True), dtype=np.float32)

    rows = []
    for data in ("mixed", "copies"):
        stub = StubEncoder(pool)
        make = copies if data == "copies" else (lambda start, n, stub=stub: stub.encode_documents([""] * n))
        for size in sizes:
            row = _ann_row(tmp, size, queries, make)
            row["data"] = data
            print("ann", row, flush=True)
            rows.append(row)
    return rows


def _ann_row(tmp: Path, size: int, queries: np.ndarray, make: Callable[[int, int], np.ndarray]) -> dict[str, Any]:
    """One row of :func:`measure_ann`: ``size`` vectors from ``make(start, n)``, saved as the ANN index."""
    row: dict[str, Any] = {"chunks": size}
    flat = Vectors.new(queries.shape[1], ann_threshold=size + 1)
    for start in range(0, size, 100_000):
        n = min(100_000, size - start)
        flat.add(list(range(start, start + n)), make(start, n))
    path = tmp / f"ann-{size}.faiss"
    started = time.perf_counter()
    flat.ann_threshold = 0
    flat.save(path)  # as the ANN index
    row["ann_build_s"] = time.perf_counter() - started
    row["file_mb"] = path.stat().st_size / 2**20
    del flat
    gc.collect()
    for mmap in (False, True):
        before = rss_mb()
        started = time.perf_counter()
        loaded = Vectors.load(path, mmap=mmap)
        row[f"load_s_mmap{int(mmap)}"] = time.perf_counter() - started
        row[f"ann_p50_mmap{int(mmap)}"], row[f"ann_p95_mmap{int(mmap)}"] = timed(
            _each(loaded.search, queries), len(queries)
        )
        row[f"rss_mb_mmap{int(mmap)}"] = rss_mb() - before
        row["index_type"] = loaded.kind
        if mmap:
            row["exact_p50"], row["exact_p95"] = timed(_each(loaded.search_exact, queries), len(queries))
            row["recall10"] = float(
                np.mean(
                    [
                        len({i for i, _ in loaded.search(q, 10)} & {i for i, _ in loaded.search_exact(q, 10)}) / 10
                        for q in queries
                    ]
                )
            )
            allowed = list(range(0, size, 50))
            row["filtered_p50"], _ = timed(functools.partial(loaded.search, queries[0], 10, allowed), 20)
        del loaded
        gc.collect()
    path.unlink()
    return row


def _each(search: Callable[[np.ndarray, int], object], queries: np.ndarray) -> Callable[[], object]:
    """A call that runs ``search`` (k = 100) on the next of ``queries`` each time, round and round."""
    cycle = itertools.cycle(queries)
    return lambda: search(next(cycle), 100)
