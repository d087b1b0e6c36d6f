"""Backups of a local installation that restore: ``kb backup DIR`` and ``kb restore DIR``.

A backup folder holds the live index version, a copy of the curation database and the uploaded files it refers to,
and ``manifest.json`` (written last, so a folder without it is an unfinished backup)::

    DIR/
      manifest.json               format, kb version, time, index version, counts, size and sha256 of every file
      index/CURRENT
      index/versions/v000007/     the version CURRENT named when the backup began (immutable, copied as it is)
      data/curation.sqlite        taken with SQLite's online backup (consistent while the server writes)
      data/files/<sha256>.<ext>   the uploaded files the copied database records
      corpus/…                    only with ``--with-corpus``: the corpus is the users' own folder

**Consistency while the server runs.** No lock that blocks searches or uploads is held. An upload writes its
curation record, then its file, then publishes the index version that holds it, and only then answers 201. The
backup therefore copies first the index version (so every document acknowledged
before the backup began is in it), then the database (which has the record of every document in that version),
then the files that database records (each document in the version has its file on disk by then). A version is
immutable, but old ones are pruned (``kb.index.KEEP_VERSIONS``): a copy whose version vanished underneath it is
checked against the version's manifest and taken again from the then-live version. Changes made while the backup
runs may be in it partly (an upload's record without its file); ``kb ingest`` after a restore reconciles them.

**Restore** checks every file against the manifest first, refuses to overwrite an installation unless ``--force``,
and writes the index version under a build name and the files and the database under temporary names; the switch
of ``CURRENT`` comes last, so a crash leaves no half-restored index live (run the restore again with ``--force``).
Only the local storage engine is backed up this way; with ``KB_DATABASE_URL`` both commands dispatch to
:mod:`kb.backup_postgres` (``pg_dump -Fc`` / ``pg_restore``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb import __version__
from kb.curation.db import DB_FILE
from kb.errors import BackupError, ConfigError, IndexMissingError, KBError
from kb.files import file_sha256, fsync_path, write_atomic
from kb.index import IndexDir, Manifest, open_current, verify_files
from kb.ingest import UPLOAD_PREFIX
from kb.settings import Settings

FORMAT = "kb-backup"
FORMAT_VERSION = 1
BACKUP_MANIFEST = "manifest.json"
INDEX = "index"
DATA = "data"
FILES = "files"
CORPUS = "corpus"
#: How often the live version is copied again when it was pruned during the copy (three publishes in a row).
COPY_ATTEMPTS = 5


@dataclass
class BackupReport:
    """What a backup holds (also what a restore brought back)."""

    folder: Path
    index_version: int
    index_name: str
    documents: int
    chunks: int
    uploads: int
    missing_uploads: list[str] = field(default_factory=list)
    corpus_files: int | None = None  # None: the corpus is not in the backup
    unindexed_uploads: int = 0  # restore only: uploaded files the restored index does not hold yet
    created_at: str = ""


def backup(settings: Settings, target: Path, *, with_corpus: bool = False) -> BackupReport:
    """Take a consistent copy of the running installation into the new or empty folder ``target``."""
    if settings.database_url:  # PostgreSQL: pg_dump (kb/backup_postgres.py)
        from kb.backup_postgres import backup_postgres

        return backup_postgres(settings, target, with_corpus=with_corpus)
    _check_engine(settings)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"The backup folder {target} is not empty; name a new or empty folder.")
    target.mkdir(parents=True, exist_ok=True)
    created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    version_name, manifest = _copy_live_version(IndexDir(settings.index_dir), target / INDEX)
    data = target / DATA
    data.mkdir()
    uploads, missing = 0, []
    source_db = settings.data_dir / DB_FILE
    if source_db.is_file():
        _backup_database(source_db, data / DB_FILE)
        (data / FILES).mkdir()
        for name in _recorded_uploads(data / DB_FILE):
            source = settings.uploads_dir / name
            try:
                shutil.copyfile(source, data / FILES / name)
                uploads += 1
            except FileNotFoundError:  # an upload in flight (record written, file not yet) or purged meanwhile
                missing.append(name)
    corpus_files = None
    if with_corpus:
        if not settings.corpus_dir.is_dir():
            raise ConfigError(f"The corpus folder {settings.corpus_dir} (KB_CORPUS_DIR) does not exist.")
        shutil.copytree(settings.corpus_dir, target / CORPUS, symlinks=False)
        corpus_files = sum(1 for p in (target / CORPUS).rglob("*") if p.is_file())
    report = BackupReport(
        target, manifest.version, version_name, manifest.documents, manifest.chunks, uploads, missing,
        corpus_files, created_at=created_at,
    )  # fmt: skip
    checksums = synced_checksums(target)
    write_atomic(target / BACKUP_MANIFEST, json.dumps(_manifest(report, checksums), indent=2) + "\n")
    return report


def restore(settings: Settings, source: Path, *, force: bool = False) -> BackupReport:
    """Bring the backup in ``source`` back into KB_INDEX_DIR and KB_DATA_DIR (and the corpus, if it holds one)."""
    from kb.backup_postgres import ENGINE, backup_engine, restore_postgres

    if settings.database_url or backup_engine(source) == ENGINE:  # PostgreSQL: pg_restore
        return restore_postgres(settings, source, force=force)
    _check_engine(settings)
    manifest = read_manifest(source)
    verify_backup(source, manifest)
    has_corpus = bool(manifest.get("corpus"))
    occupied = _occupied(settings, has_corpus)
    if occupied and not force:
        raise BackupError(
            f"{' and '.join(map(str, occupied))} already hold(s) an installation; restore into empty folders "
            "(KB_INDEX_DIR, KB_DATA_DIR) or pass --force to replace it (stop `kb serve` first)."
        )
    index_dir = IndexDir(settings.index_dir)
    lock = index_dir.acquire()  # no ingestion writes a version while the restore switches CURRENT
    try:
        files = source / DATA / FILES
        if files.is_dir():
            settings.uploads_dir.mkdir(parents=True, exist_ok=True)
            for upload in sorted(files.iterdir()):  # content-addressed: an extra file changes nothing
                _copy_atomic(upload, settings.uploads_dir / upload.name)
        name = str(manifest["index_name"])
        build = index_dir.start_build()
        for part in sorted((source / INDEX / "versions" / name).iterdir()):
            shutil.copyfile(part, build / part.name)
            fsync_path(build / part.name)
        fsync_path(build)
        final = index_dir.versions / name
        replaced = index_dir.versions / f".build-replaced-{time.time_ns()}"
        if final.exists():
            os.rename(final, replaced)
        os.rename(build, final)
        fsync_path(index_dir.versions)
        shutil.rmtree(replaced, ignore_errors=True)
        if (source / DATA / DB_FILE).is_file():
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            for stale in ("-wal", "-shm", "-journal"):  # the old database's journal must not meet the new file
                (settings.data_dir / f"{DB_FILE}{stale}").unlink(missing_ok=True)
            _copy_atomic(source / DATA / DB_FILE, settings.data_dir / DB_FILE)
        write_atomic(index_dir.current_file, name + "\n")  # the switch: the restored installation is live
    finally:
        lock.release()
    corpus_files = None
    if has_corpus:
        corpus_files = 0
        for path in sorted((source / CORPUS).rglob("*")):
            if path.is_file():
                destination = settings.corpus_dir / path.relative_to(source / CORPUS)
                destination.parent.mkdir(parents=True, exist_ok=True)
                _copy_atomic(path, destination)
                corpus_files += 1
    index = open_current(settings.index_dir)
    keys = {d.key for d in index.documents.values()}
    uploads = sorted(p.name for p in files.iterdir()) if files.is_dir() else []
    return BackupReport(
        settings.index_dir, index.manifest.version, name, index.manifest.documents, index.manifest.chunks,
        len(uploads), list(manifest.get("missing_uploads", [])), corpus_files,
        sum(UPLOAD_PREFIX + n not in keys for n in uploads),
        created_at=str(manifest.get("created_at", "")),
    )  # fmt: skip


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, or :class:`BackupError` saying why the folder is not a (finished) backup."""
    path = source / BACKUP_MANIFEST
    if not path.is_file():
        raise BackupError(
            f"{source} is not a finished backup (no {BACKUP_MANIFEST}); name a folder written by `kb backup`, "
            "or take a new backup."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"The backup manifest {path} is damaged ({exc}); use another backup.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a kb backup manifest; name a folder written by `kb backup`.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"The backup in {source} has format {manifest.get('format_version')}, this program restores "
            f"{FORMAT_VERSION}; restore it with the kb version that wrote it ({manifest.get('kb_version')})."
        )
    return manifest


def verify_checksums(source: Path, files: dict[str, dict[str, Any]]) -> None:
    """Every file of ``files`` (a backup manifest's, by path relative to ``source``) is there with its size and
    sha256, whatever the engine that wrote the backup."""
    for relative, expected in files.items():
        path = source / relative
        if ".." in Path(relative).parts or not path.is_file():
            raise BackupError(f"The backup file {path} is missing; the backup is damaged, use another backup.")
        if path.stat().st_size != expected["size"] or file_sha256(path) != expected["sha256"]:
            raise BackupError(
                f"The backup file {path} does not match its checksum in {BACKUP_MANIFEST} (changed or damaged); "
                "use another backup."
            )


def verify_backup(source: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is there with its size and sha256; nothing is restored otherwise."""
    files: dict[str, dict[str, Any]] = manifest.get("files", {})
    verify_checksums(source, files)
    name = str(manifest.get("index_name", ""))
    if not re.fullmatch(r"v\d+", name) or not any(r.startswith(f"{INDEX}/versions/{name}/") for r in files):
        raise BackupError(f"The backup in {source} holds no index version; take a new backup with `kb backup`.")


def _check_engine(settings: Settings) -> None:
    if settings.storage != "local":
        raise ConfigError(
            f"KB_STORAGE is {settings.storage!r}; `kb backup` and `kb restore` handle the local engine only; "
            "back up that engine with its own tools."
        )


def _copy_live_version(index_dir: IndexDir, target: Path) -> tuple[str, Manifest]:
    """Copy the version CURRENT names into ``target`` (``CURRENT`` and ``versions/NAME``), checked against its
    manifest; when it was pruned during the copy, the then-live version is copied instead."""
    for _attempt in range(COPY_ATTEMPTS):
        name = index_dir.current_name()
        if name is None:
            raise IndexMissingError(f"There is no index in {index_dir.root} to back up; run `kb ingest` first.")
        copy = target / "versions" / name
        shutil.rmtree(target, ignore_errors=True)
        copy.mkdir(parents=True)
        try:
            for part in sorted((index_dir.versions / name).iterdir()):
                if part.is_file():
                    shutil.copyfile(part, copy / part.name)
            manifest = Manifest.read(copy)
            verify_files(copy, manifest)
        except (FileNotFoundError, KBError):  # pruned underneath the copy (an open file is read to its end)
            continue
        write_atomic(target / "CURRENT", name + "\n")
        return name, manifest
    raise BackupError(
        f"The live index version in {index_dir.root} changed faster than it could be copied "
        f"({COPY_ATTEMPTS} attempts); run `kb backup` again when fewer uploads arrive."
    )


def _backup_database(source: Path, target: Path) -> None:
    """A consistent copy of the curation database while the server writes to it (SQLite's online backup)."""
    try:
        live = sqlite3.connect(source, timeout=30)  # only read: the backup API takes a consistent snapshot
        copy = sqlite3.connect(target)
        try:
            live.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        finally:
            copy.close()
            live.close()
    except sqlite3.Error as exc:
        raise BackupError(
            f"The curation database {source} cannot be copied ({exc}); check that KB_DATA_DIR is readable."
        ) from exc


def _recorded_uploads(database: Path) -> list[str]:
    """The file names (``<sha256>.<ext>``) of the uploads the database records."""
    db = sqlite3.connect(database)
    try:
        rows = db.execute("SELECT key FROM records WHERE uploaded = 1 ORDER BY key").fetchall()
    finally:
        db.close()
    names = (str(key).removeprefix(UPLOAD_PREFIX) for (key,) in rows if str(key).startswith(UPLOAD_PREFIX))
    return [n for n in names if n and "/" not in n and not n.startswith(".")]


def _copy_atomic(source: Path, target: Path) -> None:
    def copy(tmp: Path) -> None:
        shutil.copyfile(source, tmp)

    write_atomic(target, copy)


def _occupied(settings: Settings, with_corpus: bool) -> list[Path]:
    """The target folders that already hold something a restore would replace."""
    occupied = []
    index = IndexDir(settings.index_dir)
    if index.current_file.exists() or any(index.versions.glob("v*")):
        occupied.append(settings.index_dir)
    data = settings.data_dir
    if (data / DB_FILE).exists() or any(settings.uploads_dir.glob("*")):
        occupied.append(data)
    if with_corpus and settings.corpus_dir.is_dir() and any(settings.corpus_dir.iterdir()):
        occupied.append(settings.corpus_dir)
    return occupied


def synced_checksums(target: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file in the backup folder ``target`` (by path relative to it), each file and folder
    flushed to disk first: what the backup's manifest records and ``kb restore`` checks, whatever the engine."""
    for path in target.rglob("*"):
        fsync_path(path)
    return {
        p.relative_to(target).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(target.rglob("*"))
        if p.is_file()
    }


def _manifest(report: BackupReport, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kb_version": __version__,
        "created_at": report.created_at,
        "index_version": report.index_version,
        "index_name": report.index_name,
        "documents": report.documents,
        "chunks": report.chunks,
        "uploads": report.uploads,
        "missing_uploads": report.missing_uploads,
        "corpus": report.corpus_files is not None,
        "corpus_files": report.corpus_files,
        "files": files,
    }


__all__ = ["BackupError", "BackupReport", "backup", "read_manifest", "restore", "verify_backup"]
