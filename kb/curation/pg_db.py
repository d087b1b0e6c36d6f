"""The curation data in PostgreSQL (``KB_DATABASE_URL``): the twin of :mod:`kb.curation.db`, shared by every
replica on the database, so a key created through one replica works on all, a login through one is a login on
all, and an upload through one can be ingested again by any other (the file itself is in ``kb_upload_files``).

The tables are created by schema step 4 (:mod:`kb.storage.pg_schema`); all SQL on them is in this module. Reads
and writes go to the primary (``KB_DATABASE_URL``, never ``KB_DATABASE_READ_URL``): a key created or a session
opened a moment ago must be found at once. Every transaction takes one advisory lock first, so curation changes
are serialised across replicas as SQLite's ``BEGIN IMMEDIATE`` serialises them on one machine (a curator's change
reads the curated fields and writes them back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from kb.curation.db import ApiKey, AuditEntry, CurationData
from kb.errors import CurationUnavailableError
from kb.storage.pg_schema import SCHEMA_VERSION, schema_version
from kb.storage.pg_schema import migrate as migrate_schema

#: The advisory lock every curation transaction holds ("kbCU").
CURATION_LOCK = 0x6B62_4355
#: Databases this process brought to the schema (once per process and database).
_MIGRATED: set[str] = set()

Connection = psycopg.Connection[TupleRow]


def _where(url: str) -> str:
    """The server part of a connection URL, without user and password (for messages)."""
    return url.rsplit("@", 1)[-1].split("?", 1)[0]


class PgCurationDB:
    """The curation data in the PostgreSQL database ``url`` (a small pool of connections to the primary)."""

    def __init__(self, url: str, *, pool_size: int = 4, migrate: bool = True) -> None:
        """``migrate``: bring the schema to this release's first (not for `kb doctor` and `kb backup`, which
        change nothing)."""
        self.url = url
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": 5},
            open=False,
            timeout=5,
            # as the engine's reader pool: while the server is away a request fails at once (503), not after the
            # pool's background retries
            reconnect_timeout=0,
        )
        self._pool.open(wait=False)
        if migrate and url not in _MIGRATED:
            try:
                with self._connection() as conn:
                    if schema_version(conn) < SCHEMA_VERSION:
                        migrate_schema(conn)
            except BaseException:
                self._pool.close()  # the next request opens a new one (the server may be back by then)
                raise
            _MIGRATED.add(url)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise CurationUnavailableError(
                f"The curation data in the database {_where(self.url)} cannot be reached ({exc}); check that the "
                "server runs and KB_DATABASE_URL, then try again."
            ) from exc

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(sql.encode(), params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[PgChanges]:
        """One atomic unit of change, serialised with every other replica's, rolled back on any error."""
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (CURATION_LOCK,))
            yield PgChanges(conn)

    # -- curated metadata -------------------------------------------------------------------------------------
    def overrides(self) -> dict[str, dict[str, Any]]:
        return {str(key): _sorted(meta) for key, meta in self._rows("SELECT key, metadata FROM kb_curated")}

    def record(self, doc_id: str) -> tuple[str, dict[str, Any], bool] | None:
        rows = self._rows("SELECT key, metadata, uploaded FROM kb_curated WHERE doc_id = %s", (doc_id,))
        return (str(rows[0][0]), _sorted(rows[0][1]), bool(rows[0][2])) if rows else None

    def excluded(self) -> set[str]:
        return {str(row[0]) for row in self._rows("SELECT key FROM kb_excluded")}

    # -- API keys ---------------------------------------------------------------------------------------------
    def key(self, key_id: str) -> ApiKey | None:
        rows = self._rows(f"SELECT {_KEY_COLUMNS} FROM kb_api_keys WHERE id = %s", (key_id,))
        return _api_key(rows[0]) if rows else None

    def keys(self) -> list[ApiKey]:
        return [_api_key(row) for row in self._rows(f"SELECT {_KEY_COLUMNS} FROM kb_api_keys ORDER BY created_at")]

    def key_by_hash(self, digest: str) -> tuple[str, ApiKey] | None:
        rows = self._rows(f"SELECT hash, {_KEY_COLUMNS} FROM kb_api_keys WHERE hash = %s", (digest,))
        return (str(rows[0][0]), _api_key(rows[0][1:])) if rows else None

    # -- web sessions -----------------------------------------------------------------------------------------
    def session(self, digest: str) -> tuple[str, str, str] | None:
        rows = self._rows("SELECT key_id, csrf, expires_at FROM kb_sessions WHERE hash = %s", (digest,))
        return (str(rows[0][0]), str(rows[0][1]), _iso(rows[0][2])) if rows else None

    # -- audit log --------------------------------------------------------------------------------------------
    def audit(self, doc_id: str | None = None, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        where, params = ("WHERE doc_id = %s", (doc_id,)) if doc_id else ("", ())
        rows = self._rows(
            f"SELECT id, at, actor, action, doc_id, title, before, after, note FROM kb_audit {where} "
            "ORDER BY id DESC LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [
            AuditEntry(
                int(r[0]), _stamp(r[1], millis=True), r[2], r[3], r[4], r[5], _maybe(r[6]), _maybe(r[7]), r[8]
            )
            for r in rows
        ]

    # -- uploaded files (SharedFiles) -------------------------------------------------------------------------
    def shared_files(self) -> PgCurationDB:
        return self

    def put_file(self, name: str, data: bytes) -> None:
        """Keep an uploaded file (an existing copy of the same name, hence content, is kept)."""
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO kb_upload_files (name, sha256, size, data) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, hashlib.sha256(data).hexdigest(), len(data), data),
            )

    def file(self, name: str) -> bytes | None:
        rows = self._rows("SELECT data FROM kb_upload_files WHERE name = %s", (name,))
        return bytes(rows[0][0]) if rows else None

    def delete_file(self, name: str) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM kb_upload_files WHERE name = %s", (name,))

    def file_names(self) -> list[str]:
        return [str(row[0]) for row in self._rows("SELECT name FROM kb_upload_files ORDER BY name")]

    # -- moving the data between installations ----------------------------------------------------------------
    def dump(self) -> CurationData:
        """Every row of every table but the files (:meth:`file_names`, :meth:`file`), as :class:`CurationData`."""
        keys = self._rows(f"SELECT hash, {_KEY_COLUMNS} FROM kb_api_keys ORDER BY created_at")
        records = self._rows(
            "SELECT key, doc_id, metadata, uploaded, created_by, updated_at FROM kb_curated ORDER BY key"
        )
        excluded = self._rows("SELECT key, doc_id, at, actor FROM kb_excluded ORDER BY key")
        audit = self._rows(
            "SELECT id, at, actor, action, doc_id, title, before, after, note FROM kb_audit ORDER BY id"
        )
        sessions = self._rows("SELECT hash, key_id, csrf, expires_at FROM kb_sessions")
        return CurationData(
            keys=[(*r[:5], _stamp(r[5]), _stamp(r[6]) if r[6] else None) for r in keys],
            records=[(r[0], r[1], _sorted(r[2]), bool(r[3]), r[4], _stamp(r[5])) for r in records],
            excluded=[(r[0], r[1], _stamp(r[2]), r[3]) for r in excluded],
            audit=[
                (int(r[0]), _stamp(r[1], millis=True), *r[2:6], _maybe(r[6]), _maybe(r[7]), r[8]) for r in audit
            ],
            sessions=[(r[0], r[1], r[2], _iso(r[3])) for r in sessions],
        )

    def load(self, data: CurationData) -> None:
        """Replace every row of every table but the files by ``data`` (one transaction)."""
        with self.transaction() as changes:
            conn = changes.connection
            conn.execute("TRUNCATE kb_api_keys, kb_curated, kb_excluded, kb_audit, kb_sessions")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO kb_api_keys (hash, id, role, district, label, created_at, revoked_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s::timestamptz, %s::timestamptz)",
                    data.keys,
                )
                cur.executemany(
                    "INSERT INTO kb_curated (key, doc_id, metadata, uploaded, created_by, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s::timestamptz)",
                    [(k, d, Jsonb(m), bool(u), c, t) for k, d, m, u, c, t in data.records],
                )
                cur.executemany(
                    "INSERT INTO kb_excluded (key, doc_id, at, actor) VALUES (%s, %s, %s::timestamptz, %s)",
                    data.excluded,
                )
                cur.executemany(
                    "INSERT INTO kb_audit (id, at, actor, action, doc_id, title, before, after, note) "
                    "VALUES (%s, %s::timestamptz, %s, %s, %s, %s, %s, %s, %s)",
                    [(*r[:6], _jsonb(r[6]), _jsonb(r[7]), r[8]) for r in data.audit],
                )
                cur.executemany(
                    "INSERT INTO kb_sessions (hash, key_id, csrf, expires_at) "
                    "VALUES (%s, %s, %s, %s::timestamptz)",
                    data.sessions,
                )
            # the next entry continues after the imported ones
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('kb_audit', 'id'), coalesce(max(id), 0) + 1, false) "
                "FROM kb_audit"
            )

    # -- for `kb doctor` ----------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows per table (keys, curated records, exclusions, audit entries, sessions, files)."""
        row = self._rows(
            "SELECT (SELECT count(*) FROM kb_api_keys), (SELECT count(*) FROM kb_curated), "
            "(SELECT count(*) FROM kb_excluded), (SELECT count(*) FROM kb_audit), "
            "(SELECT count(*) FROM kb_sessions), (SELECT count(*) FROM kb_upload_files)"
        )[0]
        names = ("keys", "records", "excluded", "audit", "sessions", "files")
        return {name: int(n) for name, n in zip(names, row, strict=True)}

    def uploads_without_file(self) -> list[str]:
        """Keys of uploaded documents whose file the database does not hold (a replica could not ingest them)."""
        rows = self._rows(
            "SELECT c.key FROM kb_curated c WHERE c.uploaded AND c.key LIKE 'upload/%%' AND NOT EXISTS "
            "(SELECT 1 FROM kb_upload_files f WHERE 'upload/' || f.name = c.key) ORDER BY c.key"
        )
        return [str(row[0]) for row in rows]


class PgChanges:
    """The changes that can be made inside one :meth:`PgCurationDB.transaction`."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def _do(self, sql: str, params: tuple[Any, ...]) -> None:
        self.connection.execute(sql.encode(), params)

    # -- API keys ---------------------------------------------------------------------------------------------
    def add_key(self, key_id: str, digest: str, role: str, district: str, label: str) -> None:
        self._do(
            "INSERT INTO kb_api_keys (id, hash, role, district, label) VALUES (%s, %s, %s, %s, %s)",
            (key_id, digest, role, district, label),
        )

    def revoke_key(self, key_id: str) -> None:
        self._do("UPDATE kb_api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,))

    # -- web sessions -----------------------------------------------------------------------------------------
    def add_session(self, digest: str, key_id: str, csrf: str, expires_at: str) -> None:
        self._do(
            "INSERT INTO kb_sessions (hash, key_id, csrf, expires_at) VALUES (%s, %s, %s, %s::timestamptz)",
            (digest, key_id, csrf, expires_at),
        )

    def end_session(self, digest: str) -> None:
        self._do("DELETE FROM kb_sessions WHERE hash = %s", (digest,))

    def end_sessions(self, *, expired_before: str = "", key_id: str = "") -> None:
        if expired_before:
            self._do("DELETE FROM kb_sessions WHERE expires_at < %s::timestamptz", (expired_before,))
        if key_id:
            self._do("DELETE FROM kb_sessions WHERE key_id = %s", (key_id,))

    # -- curated metadata and exclusions ----------------------------------------------------------------------
    def add_upload(self, key: str, doc_id: str, metadata: dict[str, Any], actor: str) -> None:
        self._do("DELETE FROM kb_excluded WHERE key = %s", (key,))
        self._do(
            "INSERT INTO kb_curated (key, doc_id, metadata, uploaded, created_by) VALUES (%s, %s, %s, true, %s) "
            "ON CONFLICT (key) DO UPDATE SET doc_id = excluded.doc_id, metadata = excluded.metadata, "
            "uploaded = true, created_by = excluded.created_by, updated_at = now()",
            (key, doc_id, Jsonb(metadata), actor),
        )

    def curated(self, doc_id: str) -> dict[str, Any]:
        row = self.connection.execute("SELECT metadata FROM kb_curated WHERE doc_id = %s", (doc_id,)).fetchone()
        return _sorted(row[0]) if row else {}

    def set_curated(self, key: str, doc_id: str, metadata: dict[str, Any], actor: str) -> None:
        self._do(
            "INSERT INTO kb_curated (key, doc_id, metadata, created_by) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET metadata = excluded.metadata, updated_at = now()",
            (key, doc_id, Jsonb(metadata), actor),
        )

    def forget(self, key: str) -> None:
        self._do("DELETE FROM kb_curated WHERE key = %s", (key,))

    def exclude(self, key: str, doc_id: str, actor: str) -> None:
        self._do("DELETE FROM kb_curated WHERE doc_id = %s", (doc_id,))
        self._do(
            "INSERT INTO kb_excluded (key, doc_id, actor) VALUES (%s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET doc_id = excluded.doc_id, at = now(), actor = excluded.actor",
            (key, doc_id, actor),
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
        self._do(
            "INSERT INTO kb_audit (actor, action, doc_id, title, before, after, note) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (actor, action, doc_id, title, _jsonb(before), _jsonb(after), note),
        )

    def unaudit_last(self, doc_id: str, action: str) -> None:
        self._do(
            "DELETE FROM kb_audit WHERE id = (SELECT max(id) FROM kb_audit WHERE doc_id = %s AND action = %s)",
            (doc_id, action),
        )


_KEY_COLUMNS = "id, role, district, label, created_at, revoked_at"


def _api_key(row: tuple[Any, ...]) -> ApiKey:
    key_id, role, district, label, created, revoked = row
    return ApiKey(str(key_id), str(role), str(district), str(label), _stamp(created), _stamp(revoked) or None)


def _stamp(value: datetime | None, *, millis: bool = False) -> str:
    """A time as the SQLite database writes it (``2026-12-02T07:56:55Z``; the audit log with milliseconds)."""
    if value is None:
        return ""
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{utc.microsecond // 1000:03d}Z" if millis else f"{text}Z"


def _iso(value: datetime) -> str:
    """A session's end as :mod:`kb.curation.sessions` writes and reads it (ISO 8601 in UTC)."""
    return value.astimezone(UTC).isoformat()


def _sorted(value: dict[str, Any]) -> dict[str, Any]:
    """Fields in name order, as the SQLite database's JSON keeps them (``jsonb`` orders them its own way)."""
    return {name: value[name] for name in sorted(value)}


def _maybe(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else _sorted(value)


def _jsonb(value: dict[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)
