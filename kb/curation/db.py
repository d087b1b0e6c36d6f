"""The curation database (``KB_DATA_DIR/curation.sqlite``): keys, curated metadata, exclusions, audit log.

Unlike an index version it is mutable and not regenerated, so it is opened in WAL mode with synchronous writes,
and every change that belongs together happens in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kb.errors import ConfigError

DB_FILE = "curation.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,            -- short public id, shown in lists and the audit log
    hash TEXT NOT NULL UNIQUE,      -- sha256 of the secret key; the key itself is never stored
    role TEXT NOT NULL,
    district TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    revoked_at TEXT
);
-- Metadata set through the API or CLI; applied over the file's own metadata at every ingestion.
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,           -- the document's key in the index (corpus path or upload/<sha256>.<ext>)
    doc_id TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL DEFAULT '{}',
    uploaded INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
-- Documents a curator purged: never ingested again while the entry exists.
CREATE TABLE IF NOT EXISTS excluded (
    key TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    actor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    doc_id TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    before TEXT,
    after TEXT,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_doc ON audit(doc_id, id);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class CurationDB:
    """A thread-safe connection to ``curation.sqlite`` in ``data_dir`` (created on first use)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DB_FILE
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO info VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except (OSError, sqlite3.DatabaseError) as exc:
            raise ConfigError(
                f"The curation database {self.path} cannot be opened ({exc}); check that KB_DATA_DIR "
                f"({data_dir}) is a writable folder."
            ) from exc
        self._lock = threading.RLock()

    @classmethod
    def open_existing(cls, data_dir: Path) -> CurationDB | None:
        """The database if one was ever created (ingestion without curation data must not create one)."""
        return cls(data_dir) if (data_dir / DB_FILE).is_file() else None

    def close(self) -> None:
        self._db.close()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of change (``BEGIN IMMEDIATE`` … ``COMMIT``), rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- curated metadata -------------------------------------------------------------------------------------
    def overrides(self) -> dict[str, dict[str, Any]]:
        """``key → metadata`` set by curators, for every document that has some."""
        return {key: json.loads(meta) for key, meta in self.query("SELECT key, metadata FROM records")}

    def record(self, doc_id: str) -> tuple[str, dict[str, Any], bool] | None:
        """``(key, curated metadata, uploaded)`` of one document, or None."""
        rows = self.query("SELECT key, metadata, uploaded FROM records WHERE doc_id = ?", (doc_id,))
        return (rows[0][0], json.loads(rows[0][1]), bool(rows[0][2])) if rows else None

    def excluded(self) -> set[str]:
        return {row[0] for row in self.query("SELECT key FROM excluded")}
