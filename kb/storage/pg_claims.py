"""Shared ingestion on the ``postgres`` engine: the files to ingest as claims that workers on any machines take.

Each ``kb ingest`` against one database registers the files it found changed (``kb_claims``: key, content hash,
path), then takes batches of claims with ``FOR UPDATE SKIP LOCKED`` (no two workers take the same row), reads and
encodes them outside any lock, and publishes them as a version of their own under the writer's lock, held only
for that short commit. A claim carries a lease that its worker renews while it works (:meth:`Claims.holding`);
the claims of a worker that died (killed, its machine gone) are taken again once their lease ran out. Identity:
a document is stored once (the unique live ``kb_documents.id``), and a claim whose file the live version already
holds with the same content hash is dropped without encoding (another worker committed it).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from kb.storage.postgres import PostgresStorage, live_documents

#: Seconds a claim stays a worker's without renewal (the default of ``KB_INGEST_LEASE_S``).
LEASE_S = 120.0
#: Times a claim is taken before one whose lease ran out again is given up (the default of ``KB_INGEST_ATTEMPTS``).
ATTEMPTS = 3
#: Why a claim was given up (``{attempts}``: how many times it was taken).
ABANDONED = (
    "the ingestion stopped while working on this file {attempts} time(s) (its worker was killed, e.g. out of "
    "memory, or its machine went away); not tried again until the next `kb ingest`"
)


@dataclass(frozen=True, order=True)
class Claim:
    """One file to ingest, as registered: its key, the content hash it had then, and its path."""

    key: str
    content_hash: str
    path: str


def worker_name() -> str:
    """A name no other worker has: host, process and a random part (a reused process id stays apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Claims:
    """The claims table of ``storage``'s database as worker ``worker`` uses it (its own connection)."""

    def __init__(
        self,
        storage: PostgresStorage,
        worker: str | None = None,
        lease_s: float = LEASE_S,
        attempts: int = ATTEMPTS,
    ) -> None:
        """``attempts``: how many times a claim is taken before one whose lease ran out once more is given up
        (:meth:`abandoned`): a file that kills every worker reading it is not passed on for ever."""
        self.storage, self.worker, self.lease_s = storage, worker or worker_name(), float(lease_s)
        self.attempts = int(attempts)
        storage.migrated()
        self._conn: psycopg.Connection[TupleRow] = storage.connect(autocommit=True)
        self._lock = threading.Lock()  # the renewing thread and the worker share the connection

    def _execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self._lock:
            cursor = self._conn.execute(query.encode(), params)
            return cursor.fetchall() if cursor.description else []

    def live(self, keys: Sequence[str] | None = None) -> dict[str, str]:
        """``key → content hash`` of the live documents (of ``keys``; all when None)."""
        if keys is None:
            rows = self._execute("SELECT key, content_hash FROM kb_documents WHERE removed IS NULL")
        else:
            rows = self._execute(
                "SELECT key, content_hash FROM kb_documents WHERE removed IS NULL AND key = ANY(%s)", (list(keys),)
            )
        return {str(k): str(h) for k, h in rows}

    def live_of(self, keys: Sequence[str] = (), under: Sequence[str] = ()) -> dict[str, str]:
        """``key → content hash`` of the live documents keyed ``keys`` or stored from a path under ``under`` (what
        an ingestion of a few files compares with, instead of every document)."""
        with self._lock:
            rows = live_documents(self._conn, keys, under)
        return {key: content_hash for _, key, _, content_hash in rows}

    def live_chunking(self) -> dict[str, Any] | None:
        """The chunking settings of the live version (None: no version yet)."""
        rows = self._execute("SELECT manifest->'chunking' FROM kb_versions ORDER BY version DESC LIMIT 1")
        return dict(rows[0][0]) if rows else None

    def live_counts(self) -> tuple[int, int, int]:
        """The live version's number, documents and chunks (zeros: no version yet)."""
        rows = self._execute(
            "SELECT version, (manifest->>'documents')::bigint, (manifest->>'chunks')::bigint FROM kb_versions "
            "ORDER BY version DESC LIMIT 1"
        )
        return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else (0, 0, 0)

    def register(self, claims: Sequence[Claim]) -> None:
        """Add the files to the work to share; one already registered is kept as it is (a failure of an earlier
        run is tried again)."""
        if not claims:
            return
        self._execute(
            "INSERT INTO kb_claims (key, content_hash, path) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) "
            "ON CONFLICT (key, content_hash) DO UPDATE SET state = 'pending', reason = NULL, path = EXCLUDED.path "
            "WHERE kb_claims.state = 'failed'",
            ([c.key for c in claims], [c.content_hash for c in claims], [c.path for c in claims]),
        )

    def take(self, count: int) -> list[Claim]:
        """Up to ``count`` open claims (never taken, or their lease ran out), now this worker's."""
        rows = self._execute(
            "WITH picked AS (SELECT key, content_hash FROM kb_claims WHERE state = 'pending' "
            "OR (state = 'claimed' AND lease_until < clock_timestamp()) ORDER BY key LIMIT %(n)s "
            "FOR UPDATE SKIP LOCKED) "
            "UPDATE kb_claims c SET state = 'claimed', worker = %(w)s, claimed_at = clock_timestamp(), "
            "lease_until = clock_timestamp() + make_interval(secs => %(lease)s), attempts = c.attempts + 1 "
            "FROM picked WHERE c.key = picked.key AND c.content_hash = picked.content_hash "
            "RETURNING c.key, c.content_hash, c.path",
            {"n": int(count), "w": self.worker, "lease": self.lease_s},
        )
        return sorted(Claim(str(k), str(h), str(p)) for k, h, p in rows)

    def abandoned(self) -> list[tuple[Claim, str]]:
        """The claims taken :attr:`attempts` times whose lease ran out again, now failed, with the reason (each
        is returned to one worker only)."""
        rows = self._execute(
            "UPDATE kb_claims SET state = 'failed', worker = NULL, lease_until = NULL, "
            "reason = replace(%(reason)s, '{attempts}', attempts::text) "
            "WHERE state = 'claimed' AND lease_until < clock_timestamp() AND attempts >= %(n)s "
            "RETURNING key, content_hash, path, reason",
            {"reason": ABANDONED, "n": self.attempts},
        )
        return sorted((Claim(str(k), str(h), str(p)), str(r)) for k, h, p, r in rows)

    def open_lease(self) -> float | None:
        """Seconds until the first lease of another worker runs out (0: one already did), None when no claim is
        open: the work is done."""
        rows = self._execute(
            "SELECT min(greatest(extract(epoch FROM lease_until - clock_timestamp()), 0)), "
            "bool_or(state = 'pending') FROM kb_claims WHERE state IN ('pending', 'claimed')"
        )
        if not rows or (rows[0][0] is None and not rows[0][1]):
            return None
        return 0.0 if rows[0][1] else float(rows[0][0])

    def renew(self) -> None:
        """Extend the leases of this worker's claims."""
        self._execute(
            "UPDATE kb_claims SET lease_until = clock_timestamp() + make_interval(secs => %s) "
            "WHERE worker = %s AND state = 'claimed'",
            (self.lease_s, self.worker),
        )

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Renew this worker's leases on a thread (three times per lease) while the block runs."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease_s / 3):
                try:
                    self.renew()
                except psycopg.Error:
                    return  # the block fails on the connection too, and says why

        thread = threading.Thread(target=renew, name="kb-claim-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def done(self, claims: Sequence[Claim]) -> None:
        """The claims are finished (their documents are published, or were already live)."""
        self._finish(claims, "DELETE FROM kb_claims WHERE key = %s AND content_hash = %s AND worker = %s")

    def failed(self, claim: Claim, reason: str) -> None:
        """The file could not be read: kept as failed (the next run tries it again), not taken by this run."""
        self._execute(
            "UPDATE kb_claims SET state = 'failed', reason = %s WHERE key = %s AND content_hash = %s "
            "AND worker = %s",
            (reason, claim.key, claim.content_hash, self.worker),
        )

    def release(self, claims: Sequence[Claim]) -> None:
        """Hand the claims back unfinished (an error or Ctrl-C in this worker): another worker takes them now."""
        self._finish(
            claims,
            "UPDATE kb_claims SET state = 'pending', worker = NULL, lease_until = NULL "
            "WHERE key = %s AND content_hash = %s AND worker = %s AND state = 'claimed'",
        )

    def _finish(self, claims: Sequence[Claim], query: str) -> None:
        with self._lock, self._conn.cursor() as cursor:
            cursor.executemany(query.encode(), [(c.key, c.content_hash, self.worker) for c in claims])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
