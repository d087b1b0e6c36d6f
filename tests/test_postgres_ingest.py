"""Shared ingestion on the PostgreSQL engine (kb/ingest_workers.py, kb/storage/pg_claims.py) against real
servers (tests/pg.py) and the real model: worker processes over one folder store every document exactly once, a
worker killed mid-batch loses nothing, and an expired lease passes a file to another worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.settings import Settings
from kb.storage.pg_claims import Claim, Claims
from kb.storage.postgres import PostgresStorage

REPO = Path(__file__).resolve().parent.parent
SUBJECTS = [
    "Elterncafé", "Sprachförderung", "Schwimmkurs", "Berufsorientierung", "Hausaufgabenhilfe", "Ehrenamt",
    "Kita-Eingewöhnung", "Theaterprojekt", "Demokratiebildung", "Lesepaten", "Sportverein", "Familienzentrum",
]  # fmt: skip

#: One worker as ``kb ingest`` runs it, printing its report as JSON.
WORKER = (
    "import json; from kb.ingest import Ingestor; from kb.settings import Settings; "
    "r = Ingestor(Settings()).run(); "
    "print(json.dumps({'added': r.added, 'updated': r.updated, 'failed': [f.key for f in r.failed]}))"
)


def _corpus(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for n, subject in enumerate(SUBJECTS):
        paragraphs = [
            f"Das Kommunale Integrationszentrum stellt das Projekt {subject} vor, Abschnitt {i}. "
            f"Im Projekt {subject} treffen sich Familien mit Zuwanderungsgeschichte jede Woche im Stadtteil. "
            f"Die Teilnahme ist kostenlos; Anmeldung bei der Koordinierungsstelle {n}."
            for i in range(24)
        ]
        (folder / f"projekt-{n:02d}.md").write_text(f"# {subject}\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    return sorted(f"projekt-{n:02d}.md" for n in range(len(SUBJECTS)))


def _env(url: str, corpus: Path, folder: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ, "PYTHONPATH": str(REPO), "KB_DATABASE_URL": url, "KB_CORPUS_DIR": str(corpus),
        "KB_INDEX_DIR": str(folder / "index"), "KB_DATA_DIR": str(folder / "data"), "KB_LOG_LEVEL": "WARNING",
        **extra,
    }  # fmt: skip


def _worker(url: str, corpus: Path, folder: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER], env=_env(url, corpus, folder, **extra), cwd=folder.parent,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stored_once(url: str, keys: list[str]) -> None:
    """Every key is live exactly once, no document row was ever written twice, and no claim is left open."""
    with psycopg.connect(url) as conn:
        live = conn.execute("SELECT key, count(*) FROM kb_documents WHERE removed IS NULL GROUP BY key").fetchall()
        rows = conn.execute("SELECT key, count(*) FROM kb_documents GROUP BY key").fetchall()
        open_claims = conn.execute("SELECT count(*) FROM kb_claims").fetchone()
        chunks = conn.execute(
            "SELECT count(*) FILTER (WHERE embedding IS NULL), count(*) FROM kb_chunks WHERE removed IS NULL"
        ).fetchone()
    assert sorted(k for k, _ in live) == keys and {n for _, n in live} == {1}
    assert {n for _, n in rows} == {1}  # nothing encoded and stored a second time in another version
    assert open_claims == (0,)
    assert chunks is not None and chunks[0] == 0 and chunks[1] > 0  # every chunk has its vector


def test_two_worker_processes_share_one_folder(pg_url: str, tmp_path: Path) -> None:
    keys = _corpus(tmp_path / "corpus")
    workers = [
        _worker(pg_url, tmp_path / "corpus", tmp_path / f"w{n}", KB_INGEST_CLAIM_DOCUMENTS="2") for n in range(2)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    added = [key for report in reports for key in report["added"]]
    assert sorted(added) == keys, reports  # each file ingested by exactly one of the two
    assert all(report["failed"] == [] and report["updated"] == [] for report in reports)
    _stored_once(pg_url, keys)
    storage = PostgresStorage(pg_url)
    reader = storage.open_reader()
    assert sorted(doc.key for doc in reader.documents.values()) == keys
    storage.close()


def test_a_worker_killed_mid_batch_loses_nothing(pg_url: str, tmp_path: Path, embedder: Embedder) -> None:
    keys = _corpus(tmp_path / "corpus")
    lease = "3"
    worker = _worker(pg_url, tmp_path / "corpus", tmp_path / "w", KB_INGEST_CLAIM_DOCUMENTS="2",
                     KB_INGEST_LEASE_S=lease)  # fmt: skip
    deadline = time.monotonic() + 300
    published = 0
    try:
        while time.monotonic() < deadline and worker.poll() is None:
            try:
                with psycopg.connect(pg_url) as conn:
                    versions = conn.execute("SELECT count(*) FROM kb_versions").fetchone()
                    claimed = conn.execute("SELECT count(*) FROM kb_claims WHERE state = 'claimed'").fetchone()
            except psycopg.errors.UndefinedTable:
                versions = claimed = (0,)
            published = int(versions[0]) if versions else 0
            if published >= 1 and claimed and claimed[0] > 0:  # a batch committed, the next one claimed
                break
            time.sleep(0.05)
        assert worker.poll() is None, "the worker finished before it could be killed mid-batch"
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert published >= 1
    with psycopg.connect(pg_url) as conn:
        before = conn.execute("SELECT count(*) FROM kb_documents").fetchone()
        held = conn.execute("SELECT count(*) FROM kb_claims WHERE state = 'claimed'").fetchone()
    assert before is not None and 0 < before[0] < len(keys) and held is not None and held[0] > 0

    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "rerun", database_url=pg_url,
                        ingest_lease_s=float(lease), ingest_claim_documents=2)  # fmt: skip
    report = Ingestor(settings, embedder).run()  # waits for the dead worker's leases, then takes its files
    assert report.failed == [] and report.updated == []
    assert sorted(report.added + report.unchanged) == keys
    assert len(report.added) == len(keys) - before[0]
    _stored_once(pg_url, keys)
    assert report.documents == len(keys)


def test_an_expired_lease_passes_the_files_to_another_worker(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    files = [Claim(f"f{n}.md", f"hash{n}", f"/corpus/f{n}.md") for n in range(3)]
    with Claims(storage, "first", lease_s=0.5) as first, Claims(storage, "second", lease_s=30) as second:
        first.register(files)
        second.register(files)  # both workers found the same files: registered once
        taken = first.take(2)
        assert taken == files[:2]
        assert second.take(5) == files[2:]  # skips the first worker's claims
        assert second.take(5) == []
        left = second.open_lease()
        assert left is not None and 0 < left <= 0.5
        time.sleep(0.6)
        assert second.open_lease() == 0.0
        assert second.take(5) == files[:2]  # the first worker's lease ran out
        first.done(taken)  # too late: the claims are the second worker's now, and stay
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT key, worker, attempts FROM kb_claims ORDER BY key").fetchall()
        assert rows == [("f0.md", "second", 2), ("f1.md", "second", 2), ("f2.md", "second", 1)]
        second.failed(files[2], "kaputt")
        second.done(files[:2])
        assert second.open_lease() is None  # nothing open: the run is over
        first.register(files[2:])  # a later run tries the failed file again
        assert first.take(5) == files[2:]


def test_a_renewed_lease_is_not_taken(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    files = [Claim("a.md", "h", "/corpus/a.md")]
    with Claims(storage, "busy", lease_s=0.6) as busy, Claims(storage, "idle", lease_s=0.6) as idle:
        busy.register(files)
        assert busy.take(1) == files
        with busy.holding():  # a worker that is still encoding renews its lease
            time.sleep(1.2)
            assert idle.take(1) == []
        busy.release(files)
        assert idle.take(1) == files


def test_a_document_is_live_once_whatever_writes_it(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    storage.migrate()
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        for _ in range(2):
            conn.execute(
                "INSERT INTO kb_documents (id, key, path, content_hash, file_type, metadata, words, ingested_at, "
                "german, added) VALUES ('d1', 'a.md', '/a.md', 'h', 'md', '{}', 1, 'now', true, 1)"
            )
