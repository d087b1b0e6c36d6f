"""What a curator's write costs, per kind, in both engines at a given index size.

The kinds, each through the :class:`kb.curation.service.Curator` as the API runs them, each a new published
version read back by the searcher: the upload of a 10-page PDF (its encoding time reported separately), three
metadata changes (recommend, review date, describe), retire, purge. The index is a synthetic one
(:mod:`bench.synthetic`, no passage encoded) kept in ``--workdir``; the local engine works on a linked copy of
its live version (versions are immutable, so ``cp -al`` is a copy), PostgreSQL on a database made from that
version by :func:`kb.storage.transfer.copy_version` (the writes add and purge their own documents only).

Usage: ``python -m bench.writes --sizes 100000 --engines local postgres --workdir W [--rounds 3]``; prints one
JSON row per engine and size (the rows of ``docs/performance.md``'s ``writes`` table).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, cast

from bench.paths import REPO
from bench.synthetic import build_synthetic, scale_pool
from bench.timing import percentiles, process_status, reset_peak
from kb.curation.keys import Principal, Role
from kb.curation.service import Curator
from kb.embedder import Embedder
from kb.index import IndexDir, open_current
from kb.search import Searcher
from kb.settings import Settings
from kb.storage import open_storage
from kb.storage.transfer import copy_version

#: Two PDFs of the corpus whose pages together make the 10-page document every round uploads.
PDF_PARTS = (
    REPO / "corpus" / "oberhausen" / "konzept-schulische-integration-neuzugewanderter.pdf",
    REPO / "corpus" / "hochsauerlandkreis" / "konzept-uebergang-schule-beruf-neuzugewanderte.pdf",
)
KINDS = ("upload", "recommend", "review", "describe", "retire", "purge")
#: Queries timed in process before the first write and with the delta segment of the writes present (local).
SEARCHES = (
    "Sprachförderung in der Kita",
    "Elternarbeit mit neu zugewanderten Familien",
    "Übergang Schule Beruf",
    "Integrationskurs Anmeldung",
    "Demokratiebildung Jugendliche",
    "Beratung für Geflüchtete im Quartier",
)


class TimedEmbedder:
    """The real embedder, with the seconds spent encoding passages added up (the upload's encoding time)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder, self.seconds = embedder, 0.0

    def encode_documents(
        self, passages: list[str], batch_size: int = 32, stop: threading.Event | None = None
    ) -> Any:
        started = time.perf_counter()
        try:
            return self._embedder.encode_documents(passages, batch_size, stop=stop)
        finally:
            self.seconds += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)


def ten_pages(round_: int) -> bytes:
    """A 10-page PDF made of corpus pages; ``round_`` in its document info, so each round uploads new bytes."""
    import pypdf

    writer = pypdf.PdfWriter()
    for part in PDF_PARTS:
        writer.append(str(part))
    writer.add_metadata({"/Subject": f"bench.writes round {round_} {time.time_ns()}"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def local_index(work: Path, size: int, embedder: Embedder) -> Path:
    """The synthetic index of ``size`` chunks in ``work`` (built once, with the stub encoder, from the pool of
    real chunks :func:`bench.synthetic.scale_pool` keeps in ``work/pool``)."""
    folder = work / f"local-{size}"
    if not (folder / "build.json").is_file():
        seed = Settings(corpus_dir=REPO / "corpus", index_dir=work / "seed", data_dir=work / "data")
        pool, vectors = scale_pool(seed, embedder, work / "pool")
        settings = Settings(index_dir=folder, data_dir=work / f"local-{size}-data")
        seconds = build_synthetic(settings, pool, vectors, size)
        (folder / "build.json").write_text(json.dumps({"build_s": seconds, "pool": len(pool)}))
    return folder


def linked_copy(index: Path, target: Path) -> Path:
    """A copy of the live version of ``index`` made of hard links (its files are never written again)."""
    shutil.rmtree(target, ignore_errors=True)
    live = IndexDir(index).current()
    assert live is not None
    (target / "versions").mkdir(parents=True)
    subprocess.run(["cp", "-al", str(live), str(target / "versions" / live.name)], check=True)
    (target / "CURRENT").write_text(live.name + "\n")
    return target


def postgres_database(work: Path, size: int, index: Path) -> tuple[Any, str]:
    """A PostgreSQL server in ``work/pg`` (kept between runs) and the database holding ``index``'s version."""
    from tests.pg import PgServer

    server = PgServer(work / "pg")
    if not (server.data / "PG_VERSION").is_file():
        server.init()
    server.start()
    name = f"kb{size}"
    url = server.url(name)
    marker = work / f"pg-{size}.json"
    if not marker.is_file():
        import psycopg

        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        server.create_database(name)
        started = time.perf_counter()
        target = open_storage(Settings(index_dir=work / f"pg-{size}-index", database_url=url))
        with target.lock():
            copy_version(open_current(index), target)
        marker.write_text(json.dumps({"import_s": time.perf_counter() - started}))
    from kb.storage.postgres import PostgresStorage

    storage = PostgresStorage(url)  # a database kept from an earlier release: brought to this schema first
    storage.migrate()
    storage.close()
    return server, url


def measure(settings: Settings, embedder: Embedder, rounds: int) -> dict[str, Any]:
    """Each kind ``rounds`` times; p50 and max seconds per kind, the upload's encoding seconds, peak memory."""
    timed = TimedEmbedder(embedder)
    searcher = Searcher(settings, cast(Embedder, timed))
    assert searcher.index.manifest.chunks  # opened before the clock starts: a server has its index open
    curator = Curator(searcher)
    principal = Principal(Role.CURATOR, "bench")
    samples: dict[str, list[float]] = {kind: [] for kind in (*KINDS, "encoding")}
    gc.collect()
    reset_peak()
    before = process_status(os.getpid())["VmRSS"] / 1024

    def clock(kind: str, fn: Any) -> Any:
        started = time.perf_counter()
        result = fn()
        samples[kind].append(time.perf_counter() - started)
        return result

    searches: dict[str, float] = {}
    if not settings.database_url:
        searches["search_base_ms"] = _search_p50(searcher)
    for n in range(rounds):
        data = ten_pages(n)
        timed.seconds = 0.0
        upload = {"title": f"Bench-Bericht {n}", "district": "Bielefeld"}
        uploaded = clock("upload", lambda: curator.upload(principal, f"bericht-{n}.pdf", data, upload))  # noqa: B023
        samples["encoding"].append(timed.seconds)
        doc_id = uploaded.document.id
        clock("recommend", lambda: curator.update(principal, doc_id, {"recommended": True}))  # noqa: B023
        clock("review", lambda: curator.update(principal, doc_id, {"review_by": f"2027-0{n % 9 + 1}-15"}))  # noqa: B023
        clock("describe", lambda: curator.update(principal, doc_id, {"contact": f"Büro {n}"}))  # noqa: B023
        clock("retire", lambda: curator.retire(principal, doc_id))  # noqa: B023
        if n == 0 and not settings.database_url:
            searches["search_delta_ms"] = _search_p50(searcher)  # the upload's delta segment present
        clock("purge", lambda: curator.purge(principal, doc_id))  # noqa: B023
    peak = process_status(os.getpid())["VmHWM"] / 1024
    row: dict[str, Any] = {"rss_before_mb": round(before), "peak_mb": round(peak), **searches}
    if not settings.database_url:
        row["merge_s"] = _merge_seconds(settings, embedder)
    for kind, values in samples.items():
        p50, _ = percentiles(values)
        row[kind] = {"p50_s": round(p50, 3), "max_s": round(max(values), 3)}
    return row


def _search_p50(searcher: Searcher, repeats: int = 5) -> float:
    """Median milliseconds of an in-process hybrid search of the live version over :data:`SEARCHES`, the queries
    encoded beforehand and no result cache (what the index costs, not the encoder)."""
    vectors = searcher.embedder.encode_queries(list(SEARCHES))
    index = searcher.index
    for query, vector in zip(SEARCHES, vectors, strict=True):  # warm up
        searcher.search_encoded(query, vector, 10, index=index)
    samples = []
    for _ in range(repeats):
        for query, vector in zip(SEARCHES, vectors, strict=True):
            started = time.perf_counter()
            searcher.search_encoded(query, vector, 10, index=index)
            samples.append(time.perf_counter() - started)
    return round(percentiles(samples)[0] * 1000, 2)


def _merge_seconds(settings: Settings, embedder: Embedder) -> float:
    """Seconds of a write that folds the delta segment into a new base (the local engine's merge), forced here
    by a merge threshold of nothing: a purge of a document of the base."""
    from kb.ingest import Ingestor
    from kb.storage import segments

    index = open_current(settings.index_dir)
    victim = next(iter(index.documents.values())).key
    threshold, segments.MERGE_FRACTION = segments.MERGE_FRACTION, -1.0  # any delta, even an empty one
    try:
        started = time.perf_counter()
        Ingestor(settings, embedder).run([], purge=[victim])
        return round(time.perf_counter() - started, 3)
    finally:
        segments.MERGE_FRACTION = threshold


def run(work: Path, sizes: list[int], engines: list[str], rounds: int) -> list[dict[str, Any]]:
    rows = []
    embedder = Embedder(Settings())
    for size in sizes:
        index = local_index(work, size, embedder)
        for engine in engines:
            data = work / f"data-{engine}-{size}"
            shutil.rmtree(data, ignore_errors=True)
            server = None
            if engine == "local":
                settings = Settings(index_dir=linked_copy(index, work / f"copy-{size}"), data_dir=data)
            else:
                server, url = postgres_database(work, size, index)
                settings = Settings(index_dir=work / f"pg-{size}-index", data_dir=data, database_url=url)
            try:
                row = {"engine": engine, "chunks": size, **measure(settings, embedder, rounds)}
            finally:
                if server is not None:
                    server.stop()
            print(json.dumps(row, ensure_ascii=False), flush=True)
            rows.append(row)
            if engine == "local":
                shutil.rmtree(work / f"copy-{size}", ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--engines", nargs="+", default=["local", "postgres"], choices=["local", "postgres"])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = run(args.workdir, args.sizes, args.engines, args.rounds)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
