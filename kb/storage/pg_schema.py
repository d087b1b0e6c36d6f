"""The schema of the ``postgres`` storage engine, versioned: each step runs once, recorded in ``kb_schema``.

Versions of the index are row ranges, not copies: every row of a document (its document row, chunks with their
vectors, BM25 postings) carries the version that added it and the version that removed it (NULL while live). A
reader of version ``V`` sees the rows with ``added <= V AND (removed IS NULL OR removed > V)``; a writer works in
one transaction and makes version ``V + 1`` live by inserting its row into ``kb_versions`` at commit, so readers
see all of a write or nothing of it. Rows removed more than :data:`KEEP_VERSIONS` versions ago are deleted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import psycopg

from kb import duplicates
from kb.errors import ConfigError

#: Versions a reader may still hold open after a newer one was published (as the local engine keeps).
KEEP_VERSIONS = 3

#: Whether a row is part of version ``%(v)s`` (the columns ``added`` and ``removed`` of the row's table).
VISIBLE = "added <= %(v)s AND (removed IS NULL OR removed > %(v)s)"

#: Schema steps in order; step ``n`` (1-based) brings the schema to version ``n``. Never edit a released step:
#: append one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE kb_versions (
        version integer PRIMARY KEY,
        manifest jsonb NOT NULL,
        german_chunks bigint NOT NULL,
        german_length bigint NOT NULL,
        near_duplicates jsonb NOT NULL,
        published_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE kb_documents (
        row_id bigserial PRIMARY KEY,
        id text NOT NULL,
        key text NOT NULL,
        path text NOT NULL,
        content_hash text NOT NULL,
        file_type text NOT NULL,
        metadata jsonb NOT NULL,
        pages integer,
        words integer NOT NULL,
        ingested_at text NOT NULL,
        german boolean NOT NULL,
        signature bytea,
        added integer NOT NULL,
        removed integer
    );
    CREATE INDEX kb_documents_id ON kb_documents (id);
    CREATE INDEX kb_documents_removed ON kb_documents (removed) WHERE removed IS NOT NULL;
    CREATE INDEX kb_documents_live ON kb_documents (key) WHERE removed IS NULL;
    CREATE INDEX kb_documents_unsigned ON kb_documents (row_id) WHERE signature IS NULL;
    CREATE SEQUENCE kb_chunk_ids;
    CREATE TABLE kb_chunks (
        id bigint PRIMARY KEY,
        doc_row bigint NOT NULL REFERENCES kb_documents (row_id) ON DELETE CASCADE,
        doc_id text NOT NULL,
        ordinal integer NOT NULL,
        heading text NOT NULL,
        page integer,
        page_end integer,
        text text NOT NULL,
        embedding vector,
        added integer NOT NULL,
        removed integer
    ) WITH (fillfactor = 80);  -- room for HOT updates when a writer stamps ``removed`` (no index is touched)
    CREATE INDEX kb_chunks_doc ON kb_chunks (doc_row, ordinal);
    CREATE INDEX kb_chunks_doc_id ON kb_chunks (doc_id, ordinal);
    CREATE TABLE kb_page_texts (
        doc_row bigint NOT NULL REFERENCES kb_documents (row_id) ON DELETE CASCADE,
        page integer NOT NULL,
        ocr boolean NOT NULL,
        text text NOT NULL,
        PRIMARY KEY (doc_row, page)
    );
    CREATE TABLE kb_headings (
        doc_row bigint NOT NULL REFERENCES kb_documents (row_id) ON DELETE CASCADE,
        ordinal integer NOT NULL,
        page integer NOT NULL,
        text text NOT NULL,
        PRIMARY KEY (doc_row, ordinal)
    );
    CREATE TABLE kb_postings (
        term text NOT NULL,
        chunk_id bigint NOT NULL REFERENCES kb_chunks (id) ON DELETE CASCADE,
        tf integer NOT NULL,
        length integer NOT NULL,
        added integer NOT NULL,
        removed integer
    ) WITH (fillfactor = 90);
    CREATE INDEX kb_postings_term ON kb_postings (term) INCLUDE (chunk_id, tf, length, added, removed);
    CREATE INDEX kb_postings_chunk ON kb_postings (chunk_id);
    CREATE INDEX kb_postings_removed ON kb_postings (removed) WHERE removed IS NOT NULL;
    CREATE TABLE kb_vocabulary (
        word text NOT NULL,
        count integer NOT NULL,
        added integer NOT NULL,
        removed integer
    );
    CREATE INDEX kb_vocabulary_word ON kb_vocabulary (word);
    CREATE INDEX kb_vocabulary_removed ON kb_vocabulary (removed) WHERE removed IS NOT NULL;
    """,
    # 2: shared ingestion (kb/storage/pg_claims.py): the files workers claim, and one live row per document.
    """
    CREATE TABLE kb_claims (
        key text NOT NULL,
        content_hash text NOT NULL,
        path text NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'claimed', 'failed')),
        worker text,
        claimed_at timestamptz,
        lease_until timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        reason text,
        PRIMARY KEY (key, content_hash)
    );
    CREATE INDEX kb_claims_open ON kb_claims (state, lease_until);
    CREATE UNIQUE INDEX kb_documents_one_live ON kb_documents (id) WHERE removed IS NULL;
    """,
    # 3: writes that cost what they change. Near-duplicate band keys per document (a writer finds the documents
    # sharing a band with a changed one in one indexed query, kb.duplicates.regroup); metadata changes as
    # versioned rows (a reader of an older version keeps its metadata); what a reader needs to read only the
    # rows a newer version added or removed, and a writer only the vocabulary and documents it touches.
    """
    CREATE TABLE kb_bands (
        doc_row bigint NOT NULL REFERENCES kb_documents (row_id) ON DELETE CASCADE,
        band smallint NOT NULL,
        key bigint NOT NULL,
        PRIMARY KEY (doc_row, band)
    );
    CREATE INDEX kb_bands_key ON kb_bands (band, key) INCLUDE (doc_row);
    CREATE TABLE kb_metadata (
        doc_row bigint NOT NULL REFERENCES kb_documents (row_id) ON DELETE CASCADE,
        metadata jsonb NOT NULL,
        added integer NOT NULL,
        removed integer
    );
    CREATE INDEX kb_metadata_doc ON kb_metadata (doc_row);
    CREATE INDEX kb_metadata_added ON kb_metadata (added);
    CREATE INDEX kb_metadata_removed ON kb_metadata (removed) WHERE removed IS NOT NULL;
    CREATE INDEX kb_documents_added ON kb_documents (added);
    CREATE INDEX kb_documents_live_path ON kb_documents (path text_pattern_ops) WHERE removed IS NULL;
    CREATE INDEX kb_vocabulary_added ON kb_vocabulary (added);
    CREATE INDEX kb_vocabulary_folded ON kb_vocabulary (translate(word, 'äöü', 'aou')) WHERE removed IS NULL;
    """,
    # 4: the curation data every replica shares (kb/curation/pg_db.py holds all SQL on these tables): API keys,
    # login sessions, curated metadata, exclusions, the audit log and the uploaded files themselves.
    """
    CREATE TABLE kb_api_keys (
        id text PRIMARY KEY,
        hash text NOT NULL UNIQUE,
        role text NOT NULL,
        district text NOT NULL DEFAULT '',
        label text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
    );
    CREATE TABLE kb_curated (
        key text PRIMARY KEY,
        doc_id text NOT NULL UNIQUE,
        metadata jsonb NOT NULL DEFAULT '{}',
        uploaded boolean NOT NULL DEFAULT false,
        created_by text NOT NULL DEFAULT '',
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE kb_excluded (
        key text PRIMARY KEY,
        doc_id text NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL
    );
    CREATE TABLE kb_audit (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        actor text NOT NULL,
        action text NOT NULL,
        doc_id text NOT NULL DEFAULT '',
        title text NOT NULL DEFAULT '',
        before jsonb,
        after jsonb,
        note text NOT NULL DEFAULT ''
    );
    CREATE INDEX kb_audit_doc ON kb_audit (doc_id, id);
    CREATE TABLE kb_sessions (
        hash text PRIMARY KEY,
        key_id text NOT NULL,
        csrf text NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX kb_sessions_key ON kb_sessions (key_id);
    CREATE TABLE kb_upload_files (
        name text PRIMARY KEY,
        sha256 text NOT NULL,
        size bigint NOT NULL,
        data bytea NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now()
    );
    -- PDFs, office files and images are compressed already: stored out of line as they are, not compressed again
    ALTER TABLE kb_upload_files ALTER COLUMN data SET STORAGE EXTERNAL;
    """,
)

#: The tables of the curation data (schema step 4), for ``kb doctor``.
CURATION_TABLES = ("kb_api_keys", "kb_curated", "kb_excluded", "kb_audit", "kb_sessions", "kb_upload_files")

#: The schema version this release writes and reads.
SCHEMA_VERSION = len(MIGRATIONS)


def _fill_bands(conn: psycopg.Connection) -> None:
    """Step 4: the band keys of every signed document row (they are derived from the signatures in Python)."""
    with conn.cursor(name="kb_signatures") as rows, conn.cursor() as out:
        rows.itersize = 10_000
        rows.execute("SELECT row_id, signature FROM kb_documents WHERE length(signature) > 0")
        while batch := rows.fetchmany(10_000):
            doc_rows = [int(r) for r, _ in batch]
            keys = duplicates.band_keys(np.stack([np.frombuffer(bytes(s), dtype=np.uint64) for _, s in batch]))
            with out.copy("COPY kb_bands (doc_row, band, key) FROM STDIN") as copy:
                for doc_row, row in zip(doc_rows, keys.view(np.int64).tolist(), strict=True):
                    for band, key in enumerate(row):
                        copy.write_row((doc_row, band, key))


#: What a step fills in Python after its SQL ran (in the same transaction), from the rows already there.
FILLS: dict[int, Callable[[psycopg.Connection], None]] = {3: _fill_bands}


def schema_version(conn: psycopg.Connection) -> int:
    """The database's schema version (0 for a database ``kb db migrate`` never ran on)."""
    exists = conn.execute("SELECT to_regclass('kb_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM kb_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection) -> tuple[int, int]:
    """Apply the steps the database lacks, in one transaction; returns ``(before, after)`` schema versions."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('kb_schema'))")  # two processes never race
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kb_schema "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        before = schema_version(conn)
        if before > SCHEMA_VERSION:
            raise ConfigError(
                f"The database has schema version {before}, this release knows up to {SCHEMA_VERSION}; "
                "run a newer release of kb against it."
            )
        for number in range(before + 1, SCHEMA_VERSION + 1):
            conn.execute(MIGRATIONS[number - 1].encode())
            if (fill := FILLS.get(number)) is not None:
                fill(conn)
            conn.execute("INSERT INTO kb_schema (version) VALUES (%s)", (number,))
    return before, SCHEMA_VERSION
