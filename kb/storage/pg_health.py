"""What ``kb doctor`` asks the ``postgres`` engine's database: its schema version and whether the live version's
rows agree with its manifest (documents, chunks, a vector of the right dimension for every chunk). Read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from kb.storage.pg_schema import VISIBLE, schema_version


@dataclass(frozen=True)
class LiveVersion:
    """The live version's manifest against what its rows hold."""

    version: int
    manifest: dict[str, Any]
    documents: int
    chunks: int
    without_vector: int
    wrong_dimension: int


def schema_of(conn: psycopg.Connection[Any]) -> int:
    """The database's schema version (0: ``kb db migrate`` never ran)."""
    return schema_version(conn)


def live_version(conn: psycopg.Connection[Any]) -> LiveVersion | None:
    """The live version and its counted rows; None when no version was published yet."""
    row = conn.execute("SELECT version, manifest FROM kb_versions ORDER BY version DESC LIMIT 1").fetchone()
    if row is None:
        return None
    version, manifest = int(row[0]), dict(row[1])
    v = {"v": version, "dimension": int(manifest.get("dimension") or 0)}
    counts = conn.execute(
        f"SELECT (SELECT count(*) FROM kb_documents WHERE {VISIBLE}), "
        f"count(*), count(*) FILTER (WHERE embedding IS NULL), "
        "count(*) FILTER (WHERE embedding IS NOT NULL AND vector_dims(embedding) <> %(dimension)s) "
        f"FROM kb_chunks WHERE {VISIBLE}",
        v,
    ).fetchone()
    assert counts is not None
    return LiveVersion(version, manifest, int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3]))


def missing_tables(conn: psycopg.Connection[Any], names: tuple[str, ...]) -> list[str]:
    """Which of the tables ``names`` are missing."""
    rows = conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL", (list(names),)
    )
    return [str(r[0]) for r in rows.fetchall()]
