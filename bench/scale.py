"""Search at growing sizes: latency in process and over HTTP, where the time goes, memory, writes.

Each size is a synthetic index (:mod:`bench.synthetic`) kept in a work folder, so a later run with the same
``--workdir`` measures it again without rebuilding it.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.paths import REPO
from bench.server import concurrent, kb_serve, thread_server
from bench.synthetic import build_synthetic, bundled_questions, scale_pool
from bench.timing import process_status, reset_peak, rss_mb, timed
from kb.curation.keys import Principal, Role
from kb.curation.service import Curator
from kb.embedder import Embedder
from kb.filters import Filters
from kb.index import IndexDir
from kb.search import Searcher
from kb.settings import Settings
from kb.vectors import Vectors

#: The file a curator uploads in the write timings.
UPLOAD = REPO / "corpus" / "bielefeld" / "elternsprechtag-mit-dolmetschenden.md"


def measure_scale(
    work: Path, sizes: list[int], serve_sizes: list[int], write_sizes: list[int]
) -> list[dict[str, float]]:
    """Synthetic indexes scaled up from real chunks (:func:`bench.synthetic.scale_pool`) to each size, kept in
    ``work``; one row per size."""
    settings = Settings(corpus_dir=REPO / "corpus", index_dir=work / "seed", data_dir=work / "data")
    embedder = Embedder(settings)
    pool, vectors = scale_pool(settings, embedder, work / "pool")
    texts = bundled_questions()
    rows = []
    for size in sizes:
        index_settings = settings.model_copy(update={"index_dir": work / f"s{size}"})
        marker = index_settings.index_dir / "build.json"
        if marker.is_file():  # built by an earlier run with --workdir: measure it again, do not rebuild
            build_s = json.loads(marker.read_text())["build_s"]
        else:
            build_s = build_synthetic(index_settings, pool, vectors, size)
            marker.write_text(json.dumps({"build_s": build_s, "pool": len(pool)}))
        row = measure_size(index_settings, embedder, texts)
        row["build_s"], row["pool"] = build_s, len(pool)
        if size in serve_sizes:
            row.update(kb_serve(index_settings, texts))
        if size in write_sizes:
            row.update(measure_writes(index_settings, embedder, work))
        print(size, row, flush=True)
        rows.append(row)
    return rows


def measure_size(settings: Settings, embedder: Embedder, texts: list[str]) -> dict[str, Any]:
    """Latency (in process and over HTTP), load time, memory and ANN recall of the index in settings.index_dir."""
    gc.collect()
    embedder._cache.size = 0  # unique-query latency: every search encodes its query
    searcher = Searcher(settings, embedder)
    searcher.results.size = 0  # and computes its results (the stages below repeat the same questions)
    before = rss_mb()
    started = time.perf_counter()
    index = searcher.index
    load_s = time.perf_counter() - started
    vectors = index.vectors
    assert isinstance(vectors, Vectors)  # the FAISS engine's own measures: index type, exact search, recall
    searcher.search(texts[0], 10)
    it = iter(texts * 10)
    row: dict[str, Any] = {"chunks": index.manifest.chunks, "documents": index.manifest.documents,
                           "load_s": load_s, "ann": vectors.is_ann}  # fmt: skip
    row["index_type"] = vectors.kind
    row["p50"], row["p95"] = timed(lambda: searcher.search(next(it), 10), len(texts))
    row["rss_mb"] = rss_mb() - before
    # Where the time goes (the profile behind the totals): query encoding, BM25 alone, the vector index alone.
    it3 = iter(texts * 10)
    row["encode_p50"], row["encode_p95"] = timed(lambda: embedder.encode_queries([next(it3)]), len(texts))
    it4 = iter(texts * 10)
    row["lexical_p50"], row["lexical_p95"] = timed(
        lambda: searcher.search(next(it4), 10, mode="lexical"), len(texts)
    )
    # Searches that cannot use the approximate index, at their widest: a filter that allows every chunk
    # (status=published named explicitly) and "similar documents" (all chunks but the document's own), both exact.
    everything = Filters(status=("published",))
    it6 = iter(texts * 10)
    row["filtered_p50"], row["filtered_p95"] = timed(
        lambda: searcher.search(next(it6), 10, filters=everything), 50
    )
    doc_ids = list(index.documents)[:: max(1, len(index.documents) // 50)][:50]
    it7 = iter(doc_ids)
    row["similar_p50"], row["similar_p95"] = timed(
        lambda: searcher.similar(next(it7), 5, other_districts=False), len(doc_ids)
    )
    qv = embedder.encode_queries(texts[:100])
    it5 = iter(list(qv) * 10)
    row["dense_p50"], row["dense_p95"] = timed(lambda: vectors.search(next(it5), 100), len(qv))
    if vectors.is_ann:
        hits = [
            len({i for i, _ in vectors.search(q, 10)} & {i for i, _ in vectors.search_exact(q, 10)}) / 10
            for q in qv
        ]
        row["recall10"] = float(np.mean(hits))
    with thread_server(settings, searcher) as url, httpx.Client(base_url=url, timeout=60) as client:
        it2 = iter(texts[::-1] * 10)
        client.get("/search", params={"q": "warm up"})
        row["http_p50"], row["http_p95"] = timed(
            lambda: client.get("/search", params={"q": next(it2), "k": 10}).raise_for_status(), len(texts)
        )
        # Repeated queries: the caches are the point. First the query-vector cache alone (every search is
        # computed), then with the result cache too (the default).
        embedder._cache.size = settings.query_cache_size
        row["concurrent_qps_vectors"] = concurrent(url, texts[:20])
        searcher.results.size = settings.result_cache_size
        row["concurrent_qps"] = concurrent(url, texts[:20])
    return row


def measure_writes(settings: Settings, embedder: Embedder, work: Path) -> dict[str, float]:
    """A curator's three writes on a copy of the index, each a new published version, as the API runs them:
    upload of a new Markdown file (embedded), a metadata change (vectors reused), a purge (removal)."""
    copy = work / "writes"
    shutil.rmtree(copy, ignore_errors=True)
    live = IndexDir(settings.index_dir).current()
    assert live is not None
    shutil.copytree(live, copy / "index" / "versions" / live.name)
    (copy / "index" / "CURRENT").write_text(live.name + "\n")
    settings = settings.model_copy(update={"index_dir": copy / "index", "data_dir": copy / "data"})
    curator = Curator(Searcher(settings, embedder))
    principal = Principal(Role.CURATOR, "bench")
    text = UPLOAD.read_bytes()
    row: dict[str, float] = {}
    gc.collect()
    reset_peak()
    row["write_rss_before_mb"] = process_status(os.getpid())["VmRSS"] / 1024
    started = time.perf_counter()
    uploaded = curator.upload(principal, "neu.md", text, {"title": "Neuer Bericht", "district": "Bielefeld"})
    row["write_upload_s"] = time.perf_counter() - started
    started = time.perf_counter()
    curator.update(principal, uploaded.document.id, {"recommended": True})
    row["write_metadata_s"] = time.perf_counter() - started
    started = time.perf_counter()
    curator.purge(principal, uploaded.document.id)
    row["write_purge_s"] = time.perf_counter() - started
    row["write_peak_mb"] = process_status(os.getpid())["VmHWM"] / 1024
    shutil.rmtree(copy, ignore_errors=True)
    return row
