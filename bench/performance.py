"""Ingestion throughput and search latency on this machine → docs/performance.md (`make bench`).

Measures, on the bundled corpus:
- ingestion (load, chunk, embed, write a version) in chunks per second, next to the raw encoder throughput on
  the very same passages (the physical limit for this model here); the ratio is the figure to push towards 1;
- search latency (p50/p95) in process and over HTTP against a real uvicorn on loopback, per mode;
- exact dense (FAISS) search latency and index memory at synthetic sizes (real vectors repeated with noise).
Scripts, not timed tests: the numbers go into the docs with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import torch
import uvicorn

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.index import open_current
from kb.ingest import Ingestor, passage_text
from kb.search import MODES, Searcher
from kb.settings import Settings
from kb.vectors import Vectors

REPO = Path(__file__).resolve().parent.parent


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.0f} GiB RAM, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), no GPU"
    )


def bench_ingest(settings: Settings, embedder: Embedder) -> dict[str, float]:
    started = time.perf_counter()
    report = Ingestor(settings, embedder).run()
    ingest_s = time.perf_counter() - started
    index = open_current(settings.index_dir)
    texts = [
        passage_text(index.documents[doc_id].metadata.title, heading, text)
        for _, doc_id, heading, text in index.store.chunk_texts()
    ]
    started = time.perf_counter()
    embedder.encode_documents(texts, batch_size=settings.batch_size)
    raw_s = time.perf_counter() - started
    return {
        "documents": report.documents,
        "chunks": report.chunks,
        "ingest_seconds": ingest_s,
        "ingest_chunks_per_s": report.chunks / ingest_s,
        "raw_encode_seconds": raw_s,
        "raw_chunks_per_s": len(texts) / raw_s,
        "ratio": raw_s / ingest_s,
    }


def queries() -> list[str]:
    rows = [json.loads(line) for line in (REPO / "eval" / "bundled" / "queries.jsonl").read_text().splitlines()]
    return [row["text"] for row in rows]


def bench_search(searcher: Searcher, texts: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    searcher.search(texts[0], 10)  # warm up: model, index, caches
    for mode in MODES:
        samples = []
        for text in texts:
            started = time.perf_counter()
            searcher.search(text, 10, mode=mode)
            samples.append((time.perf_counter() - started) * 1000)
        out[mode] = percentiles(samples)
    return out


def bench_http(settings: Settings, searcher: Searcher, texts: list[str]) -> tuple[float, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, searcher=searcher), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    samples = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        client.get("/search", params={"q": texts[0]})
        for text in texts:
            started = time.perf_counter()
            client.get("/search", params={"q": text, "k": 10}).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    server.should_exit = True
    thread.join(timeout=10)
    return percentiles(samples)


def bench_scale(
    settings: Settings, embedder: Embedder, texts: list[str], sizes: list[int]
) -> list[dict[str, float]]:
    index = open_current(settings.index_dir)
    base = np.stack([index.vectors.reconstruct(int(c)) for c in np.concatenate(list(index.doc_chunks.values()))])
    query_vectors = embedder.encode_queries(texts[:50])
    rng = np.random.default_rng(0)
    rows = []
    for size in sizes:
        reps = -(-size // len(base))
        vectors = np.tile(base, (reps, 1))[:size] + rng.normal(0, 0.02, (size, base.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store = Vectors.new(base.shape[1])
        store.add(list(range(size)), vectors)
        samples = []
        for q in query_vectors:
            started = time.perf_counter()
            store.search(q, 100)
            samples.append((time.perf_counter() - started) * 1000)
        p50, p95 = percentiles(samples)
        rows.append({"chunks": size, "p50_ms": p50, "p95_ms": p95, "vector_mb": vectors.nbytes / 2**20})
        del store, vectors
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        settings = Settings(corpus_dir=REPO / "corpus", index_dir=Path(tmp) / "index")
        embedder = Embedder(settings)
        _ = embedder.dimension
        ingest = bench_ingest(settings, embedder)
        print("ingest", ingest, flush=True)
        texts = queries()
        searcher = Searcher(settings, embedder)
        search = bench_search(searcher, texts)
        print("search", search, flush=True)
        http = bench_http(settings, searcher, texts)
        print("http", http, flush=True)
        scale = bench_scale(settings, embedder, texts, args.sizes)
        print("scale", scale, flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(ingest, search, http, scale, peak_mb, len(texts)), encoding="utf-8")
    print(f"wrote {args.out}")


def render(
    ingest: dict[str, float],
    search: dict[str, tuple[float, float]],
    http: tuple[float, float],
    scale: list[dict[str, float]],
    peak_mb: float,
    n_queries: int,
) -> str:
    lines = [
        "# Performance",
        "",
        f"Generated by `make bench` (`bench/performance.py`) on {datetime.now(UTC):%Y-%m-%d}.",
        f"Machine: {machine()}.",
        "",
        "## Ingestion of the bundled corpus",
        "",
        "| documents | chunks | ingestion | ingestion chunks/s | raw encoder chunks/s | pipeline / raw |",
        "|---|---|---|---|---|---|",
        f"| {ingest['documents']:.0f} | {ingest['chunks']:.0f} | {ingest['ingest_seconds']:.1f} s | "
        f"{ingest['ingest_chunks_per_s']:.1f} | {ingest['raw_chunks_per_s']:.1f} | {ingest['ratio']:.2f} |",
        "",
        "The raw encoder figure is `encode_documents` on exactly the passages the pipeline embedded (same batch",
        "size), the limit for this model on this machine. Ingestion includes loading and chunking the files, the",
        "encoder, the SQLite store, the FAISS and BM25 indexes and the atomic switch.",
        "",
        f"## Search latency ({n_queries} questions of `eval/bundled`, k = 10, one client, model warm)",
        "",
        "| where | mode | p50 | p95 |",
        "|---|---|---|---|",
    ]
    for mode, (p50, p95) in search.items():
        lines.append(f"| in process | {mode} | {p50:.1f} ms | {p95:.1f} ms |")
    lines.append(f"| HTTP `GET /search` (uvicorn, loopback) | hybrid | {http[0]:.1f} ms | {http[1]:.1f} ms |")
    lines += [
        "",
        "Most of a dense or hybrid search is encoding the query with the model; lexical search does not use it.",
        "",
        "## Exact dense search at larger sizes (FAISS flat inner product, k = 100, 50 queries)",
        "",
        "Synthetic: the corpus's real chunk vectors repeated with small noise. Vector search only (no model,",
        "no BM25, no SQLite), to show how exact search grows with the index.",
        "",
        "| chunks | p50 | p95 | vector memory |",
        "|---|---|---|---|",
    ]
    for row in scale:
        size, p50, p95, mb = row["chunks"], row["p50_ms"], row["p95_ms"], row["vector_mb"]
        lines.append(f"| {size:,.0f} | {p50:.2f} ms | {p95:.2f} ms | {mb:.0f} MB |")
    lines += [
        "",
        f"Peak resident memory of the benchmark process: {peak_mb:.0f} MB (model, corpus index and the",
        "largest synthetic index).",
        "",
        "Not measured yet (see the performance issue): ingestion of `../shared/eval/gesetze-headings`, HTTP",
        "latency at 10k–1M chunks with the full pipeline, concurrent clients, an ONNX int8 encoder, ANN indexes.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
