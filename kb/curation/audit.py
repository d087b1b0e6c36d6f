"""The audit log: who (key label), when, what (create, update, retire, purge, …), metadata before and after."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from kb.curation.db import CurationDB

ACTIONS = ("create", "update", "recommend", "supersede", "retire", "purge", "key-create", "key-revoke")


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    doc_id: str
    title: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str


def write(
    tx: sqlite3.Connection,
    actor: str,
    action: str,
    doc_id: str = "",
    title: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
) -> None:
    """Append one entry inside the caller's transaction (so the change and its record commit together)."""
    tx.execute(
        "INSERT INTO audit (actor, action, doc_id, title, before, after, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            actor,
            action,
            doc_id,
            title,
            None if before is None else json.dumps(before, ensure_ascii=False, sort_keys=True),
            None if after is None else json.dumps(after, ensure_ascii=False, sort_keys=True),
            note,
        ),
    )


def entries(db: CurationDB, doc_id: str | None = None, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
    """Newest first; only one document's entries when ``doc_id`` is given."""
    where, params = ("WHERE doc_id = ?", (doc_id,)) if doc_id else ("", ())
    rows = db.query(
        f"SELECT id, at, actor, action, doc_id, title, before, after, note FROM audit {where} "
        "ORDER BY id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [
        AuditEntry(
            int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6] and json.loads(r[6]), r[7] and json.loads(r[7]), r[8]
        )
        for r in rows
    ]
