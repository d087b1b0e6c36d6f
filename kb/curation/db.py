"""The curation database (``KB_DATA_DIR/curation.sqlite``): keys, curated metadata, exclusions, audit log.

Unlike an index version it is mutable and not regenerated, so it is opened in WAL mode with synchronous writes,
and every change that belongs together happens in one transaction (:meth:`CurationDB.transaction` hands out the
:class:`Changes` that may be made in it). All SQL on these tables is in this module; keys, the audit log and the
Curator speak to the database through the methods here. With ``KB_DATABASE_URL`` set, the same data lives in
PostgreSQL instead (:mod:`kb.curation.pg_db`, the twin of this module); :func:`kb.curation.store.open_curation`
chooses, and both satisfy :class:`kb.curation.store.CurationStore`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
-- Web page logins: the cookie holds a random token, only its sha256 is stored (kb/curation/sessions.py).
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    csrf TEXT NOT NULL,             -- the token forms and scripts send back with changes (not a secret of the key)
    expires_at TEXT NOT NULL        -- ISO time in UTC; the session is over afterwards
);
"""


class CurationDB:
    """A thread-safe connection to ``curation.sqlite`` in ``data_dir`` (created on first use).

    It is also the ingestion's :class:`~kb.ingest.CuratedOverrides`: :meth:`overrides` and :meth:`excluded`.
    """

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

    def shared_files(self) -> None:
        """Uploaded files stay in ``KB_DATA_DIR/files`` of this machine (nothing is shared)."""
        return None

    # -- moving the data between installations (``kb db import-local`` / ``export-local``) ---------------------
    def dump(self) -> CurationData:
        """Every row of every table, as :class:`CurationData`."""
        return CurationData(
            keys=[tuple(r) for r in self.query(f"SELECT hash, {_KEY_COLUMNS} FROM api_keys ORDER BY created_at")],
            records=[
                (r[0], r[1], _load(r[2]), bool(r[3]), r[4], r[5])
                for r in self.query(
                    "SELECT key, doc_id, metadata, uploaded, created_by, updated_at FROM records ORDER BY key"
                )
            ],
            excluded=[tuple(r) for r in self.query("SELECT key, doc_id, at, actor FROM excluded ORDER BY key")],
            audit=[
                (int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6] and _load(r[6]), r[7] and _load(r[7]), r[8])
                for r in self.query(
                    "SELECT id, at, actor, action, doc_id, title, before, after, note FROM audit ORDER BY id"
                )
            ],
            sessions=[tuple(r) for r in self.query("SELECT hash, key_id, csrf, expires_at FROM sessions")],
        )

    def load(self, data: CurationData) -> None:
        """Replace every row of every table by ``data`` (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for table in ("api_keys", "records", "excluded", "audit", "sessions"):
                    self._db.execute(f"DELETE FROM {table}")
                self._db.executemany(
                    "INSERT INTO api_keys (hash, id, role, district, label, created_at, revoked_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    data.keys,
                )
                self._db.executemany(
                    "INSERT INTO records (key, doc_id, metadata, uploaded, created_by, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(k, d, _json(m), int(u), c, t) for k, d, m, u, c, t in data.records],
                )
                self._db.executemany(
                    "INSERT INTO excluded (key, doc_id, at, actor) VALUES (?, ?, ?, ?)", data.excluded
                )
                self._db.executemany(
                    "INSERT INTO audit (id, at, actor, action, doc_id, title, before, after, note) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*row[:6], _json_or_none(row[6]), _json_or_none(row[7]), row[8]) for row in data.audit],
                )
                self._db.executemany(
                    "INSERT INTO sessions (hash, key_id, csrf, expires_at) VALUES (?, ?, ?, ?)", data.sessions
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement (for inspection; the application reads through the methods)."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[Changes]:
        """One atomic unit of change (``BEGIN IMMEDIATE`` … ``COMMIT``), rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Changes(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- curated metadata -------------------------------------------------------------------------------------
    def overrides(self) -> dict[str, dict[str, Any]]:
        """``key → metadata`` set by curators, for every document that has some."""
        return {key: _load(meta) for key, meta in self.query("SELECT key, metadata FROM records")}

    def record(self, doc_id: str) -> tuple[str, dict[str, Any], bool] | None:
        """``(key, curated metadata, uploaded)`` of one document, or None."""
        rows = self.query("SELECT key, metadata, uploaded FROM records WHERE doc_id = ?", (doc_id,))
        return (rows[0][0], _load(rows[0][1]), bool(rows[0][2])) if rows else None

    def excluded(self) -> set[str]:
        """Keys of the documents a curator purged."""
        return {row[0] for row in self.query("SELECT key FROM excluded")}

    # -- API keys ---------------------------------------------------------------------------------------------
    def key(self, key_id: str) -> ApiKey | None:
        rows = self.query(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        return _api_key(rows[0]) if rows else None

    def keys(self) -> list[ApiKey]:
        return [_api_key(row) for row in self.query(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at")]

    def key_by_hash(self, digest: str) -> tuple[str, ApiKey] | None:
        """``(stored hash, key)`` of the key whose secret has the sha256 ``digest``, or None."""
        rows = self.query(f"SELECT hash, {_KEY_COLUMNS} FROM api_keys WHERE hash = ?", (digest,))
        return (str(rows[0][0]), _api_key(rows[0][1:])) if rows else None

    # -- web sessions -----------------------------------------------------------------------------------------
    def session(self, digest: str) -> tuple[str, str, str] | None:
        """``(key id, csrf token, expires at)`` of the session whose token has the sha256 ``digest``, or None."""
        rows = self.query("SELECT key_id, csrf, expires_at FROM sessions WHERE hash = ?", (digest,))
        return (str(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None

    # -- audit log --------------------------------------------------------------------------------------------
    def audit(self, doc_id: str | None = None, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        """Audit entries newest first; only one document's entries when ``doc_id`` is given."""
        where, params = ("WHERE doc_id = ?", (doc_id,)) if doc_id else ("", ())
        rows = self.query(
            f"SELECT id, at, actor, action, doc_id, title, before, after, note FROM audit {where} "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [
            AuditEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6] and _load(r[6]), r[7] and _load(r[7]), r[8])
            for r in rows
        ]


@dataclass
class CurationData:
    """All rows of a curation database in the engine-neutral form both databases read and write (times as ISO
    text in UTC, metadata as dicts), for moving an installation between SQLite and PostgreSQL."""

    #: ``(hash, id, role, district, label, created_at, revoked_at)``
    keys: list[tuple[Any, ...]]
    #: ``(key, doc_id, metadata, uploaded, created_by, updated_at)``
    records: list[tuple[Any, ...]]
    #: ``(key, doc_id, at, actor)``
    excluded: list[tuple[Any, ...]]
    #: ``(id, at, actor, action, doc_id, title, before, after, note)``
    audit: list[tuple[Any, ...]]
    #: ``(hash, key_id, csrf, expires_at)``
    sessions: list[tuple[Any, ...]]


@dataclass(frozen=True)
class ApiKey:
    """An API key as stored (the secret itself never is)."""

    id: str
    role: str
    district: str
    label: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log: who, when, what, and the metadata fields before and after."""

    id: int
    at: str
    actor: str
    action: str
    doc_id: str
    title: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str


class Changes:
    """The changes that can be made inside one :meth:`CurationDB.transaction`."""

    def __init__(self, tx: sqlite3.Connection) -> None:
        self._tx = tx

    # -- API keys ---------------------------------------------------------------------------------------------
    def add_key(self, key_id: str, digest: str, role: str, district: str, label: str) -> None:
        self._tx.execute(
            "INSERT INTO api_keys (id, hash, role, district, label) VALUES (?, ?, ?, ?, ?)",
            (key_id, digest, role, district, label),
        )

    def revoke_key(self, key_id: str) -> None:
        self._tx.execute(
            "UPDATE api_keys SET revoked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
            "WHERE id = ? AND revoked_at IS NULL",
            (key_id,),
        )

    # -- web sessions -----------------------------------------------------------------------------------------
    def add_session(self, digest: str, key_id: str, csrf: str, expires_at: str) -> None:
        self._tx.execute(
            "INSERT INTO sessions (hash, key_id, csrf, expires_at) VALUES (?, ?, ?, ?)",
            (digest, key_id, csrf, expires_at),
        )

    def end_session(self, digest: str) -> None:
        self._tx.execute("DELETE FROM sessions WHERE hash = ?", (digest,))

    def end_sessions(self, *, expired_before: str = "", key_id: str = "") -> None:
        """Drop the sessions that expired before an ISO time, or every session of one key."""
        if expired_before:
            self._tx.execute("DELETE FROM sessions WHERE expires_at < ?", (expired_before,))
        if key_id:
            self._tx.execute("DELETE FROM sessions WHERE key_id = ?", (key_id,))

    # -- curated metadata and exclusions ----------------------------------------------------------------------
    def add_upload(self, key: str, doc_id: str, metadata: dict[str, Any], actor: str) -> None:
        """The record of an uploaded file; uploading a purged file again is a deliberate act, so it is no
        longer excluded."""
        self._tx.execute("DELETE FROM excluded WHERE key = ?", (key,))
        self._tx.execute(
            "INSERT OR REPLACE INTO records (key, doc_id, metadata, uploaded, created_by) VALUES (?, ?, ?, 1, ?)",
            (key, doc_id, _json(metadata), actor),
        )

    def curated(self, doc_id: str) -> dict[str, Any]:
        """The metadata curators set on one document so far (``{}`` if none)."""
        row = self._tx.execute("SELECT metadata FROM records WHERE doc_id = ?", (doc_id,)).fetchone()
        return _load(row[0]) if row else {}

    def set_curated(self, key: str, doc_id: str, metadata: dict[str, Any], actor: str) -> None:
        """Replace the curated metadata of a document (creating its record on the first change)."""
        self._tx.execute(
            "INSERT INTO records (key, doc_id, metadata, created_by) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET metadata = excluded.metadata, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (key, doc_id, _json(metadata), actor),
        )

    def forget(self, key: str) -> None:
        """Drop the record of the document keyed ``key``."""
        self._tx.execute("DELETE FROM records WHERE key = ?", (key,))

    def exclude(self, key: str, doc_id: str, actor: str) -> None:
        """Drop the document's record and keep its file out of every later ingestion (a purge)."""
        self._tx.execute("DELETE FROM records WHERE doc_id = ?", (doc_id,))
        self._tx.execute(
            "INSERT OR REPLACE INTO excluded (key, doc_id, actor) VALUES (?, ?, ?)", (key, doc_id, actor)
        )

    # -- audit log --------------------------------------------------------------------------------------------
    def audit(
        self,
        actor: str,
        action: str,
        doc_id: str = "",
        title: str = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        note: str = "",
    ) -> None:
        """Append one entry (committed with the change it records)."""
        self._tx.execute(
            "INSERT INTO audit (actor, action, doc_id, title, before, after, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                actor,
                action,
                doc_id,
                title,
                None if before is None else _json(before),
                None if after is None else _json(after),
                note,
            ),
        )

    def unaudit_last(self, doc_id: str, action: str) -> None:
        """Remove the newest entry of ``action`` on a document (a change that was undone never happened)."""
        self._tx.execute(
            "DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit WHERE doc_id = ? AND action = ?)",
            (doc_id, action),
        )


_KEY_COLUMNS = "id, role, district, label, created_at, revoked_at"


def _api_key(row: tuple[Any, ...]) -> ApiKey:
    key_id, role, district, label, created, revoked = row
    revoked_at = str(revoked) if revoked else None
    return ApiKey(str(key_id), str(role), str(district), str(label), str(created), revoked_at)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _json_or_none(value: dict[str, Any] | None) -> str | None:
    return None if value is None else _json(value)


def _load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded
