"""SQLite store of documents, chunks and their metadata (one file per index version)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from kb.documents import Chunk, Document, DocumentText, Metadata, PageHeading, PageText
from kb.errors import IndexUnavailableError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    file_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    pages INTEGER,
    words INTEGER NOT NULL,
    ingested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    heading TEXT NOT NULL,
    page INTEGER,
    page_end INTEGER,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signatures (doc_id TEXT PRIMARY KEY, sig BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS near_duplicates (doc_id TEXT PRIMARY KEY, group_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS page_texts (
    doc_id TEXT NOT NULL,
    page INTEGER NOT NULL,
    ocr INTEGER NOT NULL,
    text TEXT NOT NULL,
    confidence REAL,
    PRIMARY KEY (doc_id, page)
);
CREATE TABLE IF NOT EXISTS headings (
    doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    page INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (doc_id, ordinal)
);
"""
#: What a store written before page texts were kept says when they are asked for.
_NO_TEXTS = (
    "The index was built before it kept the text of each page; run `kb ingest` once: it reads those files "
    "again (without encoding their passages again)."
)
_CHUNK_COLUMNS = "id, doc_id, ordinal, heading, page, page_end, text"
#: The tables that hold rows of a document, with the column of its id.
_DOCUMENT_ROWS = (
    ("chunks", "doc_id"),
    ("documents", "id"),
    ("signatures", "doc_id"),
    ("page_texts", "doc_id"),
    ("headings", "doc_id"),
)

#: The tables a delta segment's store holds rows of (:meth:`Store.absorb`), with their columns.
_SEGMENT_COLUMNS = {
    "documents": "id, key, path, content_hash, file_type, metadata, pages, words, ingested_at",
    "chunks": "id, doc_id, ordinal, heading, page, page_end, text",
    "signatures": "doc_id, sig",
    "page_texts": "doc_id, page, ocr, text, confidence",
    "headings": "doc_id, ordinal, page, text",
}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Columns added to a table after a store was first written (a copy of an older version gets them)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(page_texts)")}
    if "confidence" not in columns:
        db.execute("ALTER TABLE page_texts ADD COLUMN confidence REAL")


@dataclass(frozen=True)
class StoredDocument:
    id: str
    key: str
    path: str
    content_hash: str
    file_type: str
    metadata: Metadata
    pages: int | None
    words: int
    chunks: int
    ingested_at: str


@dataclass(frozen=True)
class StoredChunk:
    id: int
    doc_id: str
    ordinal: int
    heading: str
    page: int | None
    page_end: int | None
    text: str


class DocumentLocation(NamedTuple):
    """Where a stored document came from."""

    doc_id: str
    key: str
    path: str


class KnownDocument(NamedTuple):
    """What a writer needs to know of a stored document to decide whether its file changed."""

    doc_id: str
    content_hash: str


class ChunkText(NamedTuple):
    """The text of a stored chunk with its document and heading (what BM25 and near-duplicates read)."""

    chunk_id: int
    doc_id: str
    heading: str
    text: str


class Store:
    """A connection to one version's ``store.sqlite``; safe to share between threads."""

    def __init__(self, path: Path, *, readonly: bool = False, overlay: dict[str, str] | None = None) -> None:
        """``overlay``: document id → metadata (JSON) laid over the stored one: a version whose metadata changed
        after its store was written shares that store with the version before it (:mod:`kb.index`)."""
        self.path = path
        self.overlay: dict[str, str] = {} if overlay is None else overlay
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            else:
                self._db = sqlite3.connect(path, check_same_thread=False)
                self._db.executescript(_SCHEMA)
                _add_missing_columns(self._db)
                self._db.execute("INSERT OR IGNORE INTO info VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._db.commit()
            self._db.execute("PRAGMA foreign_keys = ON")
            version = self._db.execute("SELECT value FROM info WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexUnavailableError(
                f"The document store {path} is unreadable ({exc}); rebuild it with `kb ingest --rebuild`."
            ) from exc
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise IndexUnavailableError(
                f"The document store {path} has schema {version and version[0]}, this program needs "
                f"{SCHEMA_VERSION}; rebuild it with `kb ingest --rebuild`."
            )
        self._lock = threading.Lock()
        # a version written before OCR confidences were kept is read as it is (its pages have none)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(page_texts)")}
        self._confidence = "confidence" if "confidence" in columns else "NULL"

    def close(self) -> None:
        self._db.close()

    def copy_to(self, target: Path) -> Store:
        """Write a consistent copy of this store to ``target`` and open it for writing."""
        with self._lock:
            dest = sqlite3.connect(target)
            self._db.backup(dest)
            dest.close()
        return Store(target)

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # -- documents --------------------------------------------------------------------------------------------
    _DOC_COLUMNS = (
        "d.id, d.key, d.path, d.content_hash, d.file_type, d.metadata, d.pages, d.words, "
        "(SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id), d.ingested_at"
    )

    def documents(self) -> list[StoredDocument]:
        rows = self._query(f"SELECT {self._DOC_COLUMNS} FROM documents d ORDER BY d.key")
        return [_document(row, self.overlay.get(row[0])) for row in rows]

    def document(self, doc_id: str) -> StoredDocument | None:
        rows = self._query(f"SELECT {self._DOC_COLUMNS} FROM documents d WHERE d.id = ?", (doc_id,))
        return _document(rows[0], self.overlay.get(doc_id)) if rows else None

    def has_document(self, doc_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM documents WHERE id = ?", (doc_id,)))

    def set_metadata(self, doc_id: str, metadata: str) -> None:
        """Replace one document's metadata (JSON) in its row (a writable store)."""
        with self._lock, self._db:
            self._db.execute("UPDATE documents SET metadata = ? WHERE id = ?", (metadata, doc_id))

    def fold_overlay(self) -> None:
        """Write the metadata of :attr:`overlay` into the documents' rows (a writable copy), then forget it."""
        with self._lock, self._db:
            self._db.executemany("UPDATE documents SET metadata = ? WHERE id = ?", [
                (meta, doc_id) for doc_id, meta in self.overlay.items()
            ])  # fmt: skip
        self.overlay = {}

    def locations(self) -> list[DocumentLocation]:
        """Every stored document's id, key and path, by key (no metadata is parsed)."""
        rows = self._query("SELECT id, key, path FROM documents ORDER BY key")
        return [DocumentLocation(str(d), str(k), str(p)) for d, k, p in rows]

    def hashes(self) -> dict[str, KnownDocument]:
        """``key → (document id, content hash)`` for every stored document; the hash is empty for a document
        stored without its text by page (by an earlier release), so that the next ingestion reads it again."""
        try:
            rows = self._query(
                "SELECT id, key, CASE WHEN EXISTS (SELECT 1 FROM page_texts p WHERE p.doc_id = d.id) "
                "THEN content_hash ELSE '' END FROM documents d"
            )
        except sqlite3.OperationalError:  # a store written before page texts were kept (read-only: not added)
            rows = self._query("SELECT id, key, '' FROM documents d")
        return {str(key): KnownDocument(str(doc_id), str(h)) for doc_id, key, h in rows}

    def put_document(
        self, doc_id: str, key: str, content_hash: str, document: Document, chunks: list[Chunk]
    ) -> list[int]:
        """Insert or replace a document, its chunks and its text by page; returns the new chunk ids in order."""
        text = document.text_by_page()
        with self._lock, self._db:
            self._delete_rows(doc_id)
            self._db.execute(
                "INSERT INTO documents (id, key, path, content_hash, file_type, metadata, pages, words) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc_id,
                    key,
                    str(document.path),
                    content_hash,
                    document.file_type,
                    json.dumps(document.metadata.as_dict(), ensure_ascii=False),
                    document.pages,
                    document.word_count,
                ),
            )
            ids = []
            for chunk in chunks:
                cursor = self._db.execute(
                    "INSERT INTO chunks (doc_id, ordinal, heading, page, page_end, text) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (doc_id, chunk.ordinal, chunk.heading, chunk.page, chunk.page_end, chunk.text),
                )
                ids.append(int(cursor.lastrowid or 0))
            self._db.executemany(
                "INSERT INTO page_texts (doc_id, page, ocr, text, confidence) VALUES (?, ?, ?, ?, ?)",
                [(doc_id, p.page, int(p.ocr), p.text, p.confidence) for p in text.pages],
            )
            self._db.executemany(
                "INSERT INTO headings (doc_id, ordinal, page, text) VALUES (?, ?, ?, ?)",
                [(doc_id, n, h.page, h.text) for n, h in enumerate(text.headings)],
            )
        return ids

    def delete_document(self, doc_id: str) -> list[int]:
        """Remove a document; returns the ids of its chunks (to remove from the vectors too)."""
        with self._lock, self._db:
            ids = [row[0] for row in self._db.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
            self._delete_rows(doc_id)
        return ids

    def _delete_rows(self, doc_id: str) -> None:
        """Every row of a document (the caller holds the lock and the transaction)."""
        for table, column in _DOCUMENT_ROWS:
            self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (doc_id,))

    def document_text(self, doc_id: str) -> DocumentText | None:
        """What the loader read of a document, page by page, with its headings (None for an unknown id)."""
        try:
            pages = self._query(
                f"SELECT page, text, ocr, {self._confidence} FROM page_texts WHERE doc_id = ? ORDER BY page",
                (doc_id,),
            )
            headings = self._query("SELECT text, page FROM headings WHERE doc_id = ? ORDER BY ordinal", (doc_id,))
        except sqlite3.OperationalError as exc:  # a store written before page texts were kept
            raise IndexUnavailableError(_NO_TEXTS) from exc
        if not pages:  # every stored document has at least one page
            if not self._query("SELECT 1 FROM documents WHERE id = ?", (doc_id,)):
                return None
            raise IndexUnavailableError(_NO_TEXTS)
        return DocumentText(
            pages=tuple(
                PageText(int(n), str(t), bool(o), None if c is None else float(c)) for n, t, o, c in pages
            ),
            headings=tuple(PageHeading(str(t), int(n)) for t, n in headings),
        )

    def chunk_sequence(self) -> int:
        """The largest chunk id this store ever gave out (never reused: the ``chunks`` table's AUTOINCREMENT)."""
        rows = self._query("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'")
        top = self._query("SELECT MAX(id) FROM chunks")[0][0]
        return max(int(rows[0][0]) if rows else 0, int(top or 0))

    def set_chunk_sequence(self, value: int) -> None:
        """Make the next chunk id larger than ``value`` (a delta segment continues its base's ids)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM sqlite_sequence WHERE name = 'chunks'")
            self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('chunks', ?)", (value,))

    def absorb(self, delta: Path, removed: Iterable[str]) -> None:
        """Fold a delta segment's store into this (writable) copy of its base: the ``removed`` documents' rows
        deleted, the delta's documents with all their rows and its near-duplicate groups taken over, chunk ids
        kept (the vectors are keyed by them)."""
        sequence = Store(delta, readonly=True)
        top = sequence.chunk_sequence()
        sequence.close()
        with self._lock:
            self._db.execute("ATTACH DATABASE ? AS delta", (f"file:{delta}?mode=ro",))
            try:
                with self._db:
                    for doc_id in removed:
                        self._delete_rows(doc_id)
                    for table, columns in _SEGMENT_COLUMNS.items():
                        self._db.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM delta.{table}")
                    self._db.execute("DELETE FROM near_duplicates")
                    self._db.execute("INSERT INTO near_duplicates SELECT * FROM delta.near_duplicates")
                    self._db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'chunks'", (top,))
            finally:
                self._db.execute("DETACH DATABASE delta")

    # -- near-duplicates --------------------------------------------------------------------------------------
    def signatures(self) -> dict[str, bytes]:
        """The stored MinHash signature of each document that has one (empty bytes: too short to have one)."""
        return {doc_id: bytes(sig) for doc_id, sig in self._query("SELECT doc_id, sig FROM signatures")}

    def signatures_of(self, ids: Iterable[str]) -> dict[str, bytes]:
        """The stored signatures of these documents (those that have one)."""
        wanted, found = list(ids), {}
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ",".join("?" * len(batch))
            for doc_id, sig in self._query(f"SELECT doc_id, sig FROM signatures WHERE doc_id IN ({marks})", batch):
                found[str(doc_id)] = bytes(sig)
        return found

    def near_duplicate_groups(self) -> list[list[str]]:
        """The near-duplicate groups as stored (each sorted, first member first)."""
        try:
            rows = self._query("SELECT doc_id, group_id FROM near_duplicates ORDER BY doc_id")
        except sqlite3.OperationalError:
            return []
        members: dict[str, list[str]] = {}
        for doc_id, group in rows:
            members.setdefault(group, []).append(doc_id)
        return sorted((sorted(g) for g in members.values()), key=lambda g: g[0])

    def put_signatures(self, signatures: dict[str, bytes]) -> None:
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO signatures VALUES (?, ?)", signatures.items())

    def set_near_duplicates(self, groups: list[list[str]]) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM near_duplicates")
            self._db.executemany(
                "INSERT INTO near_duplicates VALUES (?, ?)", [(d, group[0]) for group in groups for d in group]
            )

    def near_duplicates(self) -> dict[str, tuple[str, ...]]:
        """``document id → ids of its near-duplicates`` (documents without any are left out)."""
        try:
            rows = self._query("SELECT doc_id, group_id FROM near_duplicates ORDER BY doc_id")
        except sqlite3.OperationalError:  # a store written before near-duplicates were tracked
            return {}
        members: dict[str, list[str]] = {}
        for doc_id, group in rows:
            members.setdefault(group, []).append(doc_id)
        return {d: tuple(o for o in group if o != d) for group in members.values() for d in group}

    # -- chunks -----------------------------------------------------------------------------------------------
    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        found: dict[int, StoredChunk] = {}
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in self._query(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})",
                batch,
            ):
                found[row[0]] = StoredChunk(*row)
        return found

    def chunk_ids_by_document(self) -> dict[str, list[int]]:
        """The chunk ids of each document in reading order (from the ``chunks_doc`` index alone: the chunk
        texts are not read, which matters at a million chunks)."""
        result: dict[str, list[int]] = {}
        for doc_id, chunk_id in self._query("SELECT doc_id, id FROM chunks ORDER BY doc_id, ordinal"):
            result.setdefault(doc_id, []).append(chunk_id)
        return result

    def chunk_texts(self, *, unsigned_only: bool = False) -> list[ChunkText]:
        """Every chunk's text, by chunk id; with ``unsigned_only`` only those of documents that have no
        near-duplicate signature yet."""
        where = " WHERE doc_id NOT IN (SELECT doc_id FROM signatures)" if unsigned_only else ""
        rows = self._query(f"SELECT id, doc_id, heading, text FROM chunks{where} ORDER BY id")
        return [ChunkText(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        rows = self._query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? ORDER BY ordinal",
            (doc_id,),
        )
        return [StoredChunk(*row) for row in rows]

    def count_chunks(self, languages: Iterable[str]) -> int:
        """How many chunks belong to documents in one of ``languages``."""
        wanted = list(languages)
        rows = self._query(
            "SELECT COUNT(*) FROM chunks JOIN documents ON documents.id = chunks.doc_id "
            f"WHERE json_extract(documents.metadata, '$.language') IN ({','.join('?' * len(wanted))})",
            wanted,
        )
        return int(rows[0][0])

    def counts(self) -> tuple[int, int]:
        """``(documents, chunks)``."""
        docs, chunks = self._query("SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM chunks)")[0]
        return int(docs), int(chunks)


def _document(row: tuple[Any, ...], overlay: str | None = None) -> StoredDocument:
    raw = json.loads(row[5] if overlay is None else overlay)
    meta = Metadata.from_dict(raw)
    return StoredDocument(
        id=row[0],
        key=row[1],
        path=row[2],
        content_hash=row[3],
        file_type=row[4],
        metadata=meta,
        pages=row[6],
        words=row[7],
        chunks=row[8],
        ingested_at=row[9],
    )
