"""``kb doctor`` with PostgreSQL (``KB_DATABASE_URL``): the database instead of the index folder.

Checks that the server answers, that its schema is this release's, that the live version's rows agree with its
manifest (documents, chunks, a vector of the model's dimension for every chunk), that the curation tables are
there (keys, sessions, curated metadata, audit log, the uploaded files every upload needs), and that a read
replica (``KB_DATABASE_READ_URL``) answers and follows. Nothing is changed (no migration).
"""

from __future__ import annotations

from typing import Any

import psycopg

from kb.doctor import Check
from kb.errors import KBError
from kb.settings import Settings
from kb.storage.pg_health import live_version, missing_tables, schema_of
from kb.storage.pg_schema import CURATION_TABLES, SCHEMA_VERSION


def _where(url: str) -> str:
    return url.rsplit("@", 1)[-1].split("?", 1)[0]


def check_database(settings: Settings) -> list[Check]:
    url = settings.database_url
    try:
        conn = psycopg.connect(url, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as exc:
        return [
            Check(
                "database", "FAIL",
                f"{_where(url)} cannot be reached ({str(exc).strip()}); check KB_DATABASE_URL and that the server "
                "runs.",
            )
        ]  # fmt: skip
    with conn:
        checks = [_schema(conn, url)]
        if checks[0].status == "OK":
            checks.append(_index(conn, settings))
            checks.append(_curation(conn, url))
    if settings.database_read_url:
        checks.append(_read_replica(settings))
    return checks


def _schema(conn: psycopg.Connection[Any], url: str) -> Check:
    version = schema_of(conn)
    if version == SCHEMA_VERSION:
        return Check("database", "OK", f"{_where(url)} answers, schema version {version}")
    if version > SCHEMA_VERSION:
        return Check(
            "database", "FAIL",
            f"{_where(url)} has schema version {version}, this release knows up to {SCHEMA_VERSION}; run a newer "
            "release of kb against it.",
        )  # fmt: skip
    return Check(
        "database", "FAIL",
        f"{_where(url)} has schema version {version}, this release needs {SCHEMA_VERSION}; run `kb db migrate`.",
    )  # fmt: skip


def _index(conn: psycopg.Connection[Any], settings: Settings) -> Check:
    live = live_version(conn)
    if live is None:
        return Check(
            "index", "FAIL",
            "the database holds no index version yet; run `kb ingest` (or `kb db import-local INDEX_DIR`).",
        )  # fmt: skip
    manifest = live.manifest
    problems = []
    if manifest.get("model") != settings.model:
        problems.append(
            f"it was built with the model {manifest.get('model')!r}, KB_MODEL is {settings.model!r} "
            "(`kb ingest --rebuild`)"
        )
    if (live.documents, live.chunks) != (manifest.get("documents"), manifest.get("chunks")):
        problems.append(
            f"its manifest counts {manifest.get('documents')} documents and {manifest.get('chunks')} chunks, its "
            f"rows {live.documents} and {live.chunks} (`kb ingest --rebuild`)"
        )
    if live.without_vector or live.wrong_dimension:
        problems.append(
            f"{live.without_vector} chunk(s) have no vector and {live.wrong_dimension} one of another dimension "
            f"than {manifest.get('dimension')} (`kb ingest --rebuild`)"
        )
    if problems:
        return Check("index", "FAIL", f"version {live.version}: " + "; ".join(problems) + ".")
    return Check(
        "index", "OK",
        f"version {live.version} in the database: {live.documents} documents, {live.chunks} chunks, each with a "
        f"vector of dimension {manifest.get('dimension')}",
    )  # fmt: skip


def _curation(conn: psycopg.Connection[Any], url: str) -> Check:
    from kb.curation.pg_db import PgCurationDB

    missing = missing_tables(conn, CURATION_TABLES)
    if missing:
        return Check("curation data", "FAIL", f"the tables {', '.join(missing)} are missing; run `kb db migrate`.")
    try:
        curation = PgCurationDB(url, migrate=False)
        try:
            counts, without_file = curation.counts(), curation.uploads_without_file()
        finally:
            curation.close()
    except KBError as exc:
        return Check("curation data", "FAIL", exc.message)
    summary = (
        f"in the database: {counts['keys']} API key(s), {counts['sessions']} session(s), {counts['records']} "
        f"curated document(s), {counts['excluded']} exclusion(s), {counts['audit']} audit entries, "
        f"{counts['files']} uploaded file(s)"
    )
    if without_file:
        return Check(
            "curation data", "FAIL",
            f"{summary}; {len(without_file)} upload(s) have no stored file ({', '.join(without_file[:3])}): no "
            "replica can ingest them again; upload them again or purge them.",
        )  # fmt: skip
    if counts["keys"] == 0:
        return Check("curation data", "WARN", f"{summary}; create a curator's key with `kb keys create`.")
    return Check("curation data", "OK", summary)


def _read_replica(settings: Settings) -> Check:
    url = settings.database_read_url
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            live = live_version(conn) if schema_of(conn) == SCHEMA_VERSION else None
    except psycopg.Error as exc:
        return Check(
            "read replica", "FAIL",
            f"{_where(url)} (KB_DATABASE_READ_URL) cannot be read ({str(exc).strip()}); searches fail until it is "
            "back, or unset KB_DATABASE_READ_URL.",
        )  # fmt: skip
    if live is None:
        return Check(
            "read replica", "WARN", f"{_where(url)} answers but holds no index version of this schema yet."
        )
    return Check("read replica", "OK", f"{_where(url)} answers, live version {live.version}")
