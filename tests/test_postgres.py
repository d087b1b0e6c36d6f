"""The PostgreSQL engine with the real model and a real server (tests/pg.py): the same ranking as the local
engine, moving an installation between the engines, and the engine's own behaviour (errors, the schema)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from kb.cli import app
from kb.documents import document_id
from kb.embedder import Embedder
from kb.errors import IngestLockedError
from kb.index import open_current
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from kb.storage import open_storage
from kb.storage.pg_schema import SCHEMA_VERSION
from kb.storage.postgres import PostgresStorage

#: Queries on the small corpus's subjects (tests/conftest.py), German and one English.
QUERIES = [
    "Elterncafé an der Grundschule",
    "Sprachförderung für Kinder",
    "Zuwanderungsgeschichte",
    "Schwimmkurs",
    "Ausbildung und Beruf",
    "How do parents learn about the school system?",
]


def _ranking(searcher: Searcher, query: str, mode: str) -> list[tuple[str, float]]:
    return [(hit.document.key, hit.score) for hit in searcher.search(query, 5, mode=mode).hits]


def _same(local: list[tuple[str, float]], remote: list[tuple[str, float]]) -> None:
    assert [key for key, _ in remote] == [key for key, _ in local]
    assert [score for _, score in remote] == pytest.approx([score for _, score in local], rel=1e-4, abs=1e-5)


@pytest.fixture
def pg_settings(small_corpus: Path, pg_url: str, tmp_path: Path) -> Settings:
    return Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index", database_url=pg_url)


def test_the_small_corpus_ranks_the_same_in_postgres(
    small_settings: Settings, pg_settings: Settings, embedder: Embedder
) -> None:
    report = Ingestor(pg_settings, embedder).run()
    assert report.failed == [] and len(report.added) == 7
    assert not (pg_settings.index_dir / "versions").exists()  # no version of the index went to local files
    local, remote = Searcher(small_settings, embedder), Searcher(pg_settings, embedder)
    assert remote.index.name == "v000001" and len(remote.index.documents) == len(local.index.documents)
    for query in QUERIES:
        for mode in ("hybrid", "dense", "lexical"):
            _same(_ranking(local, query, mode), _ranking(remote, query, mode))


def test_import_and_export_move_an_installation_without_encoding(
    small_settings: Settings, pg_settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"KB_DATABASE_URL": pg_settings.database_url}
    result = runner.invoke(app, ["db", "migrate"], env=env)
    assert result.exit_code == 0 and f"schema version {SCHEMA_VERSION}" in result.output
    result = runner.invoke(app, ["db", "import-local", str(small_settings.index_dir)], env=env)
    assert result.exit_code == 0, result.output
    local, remote = Searcher(small_settings, embedder), Searcher(pg_settings, embedder)
    for query in QUERIES:
        _same(_ranking(local, query, "hybrid"), _ranking(remote, query, "hybrid"))

    exported = tmp_path / "exported"
    result = runner.invoke(app, ["db", "export-local", str(exported)], env=env)
    assert result.exit_code == 0, result.output
    before, after = open_current(small_settings.index_dir), open_current(exported)
    assert list(after.documents) == list(before.documents)
    for doc_id, doc in before.documents.items():
        copy = after.documents[doc_id]
        assert (copy.key, copy.content_hash, copy.metadata, copy.pages, copy.words, copy.chunks) == (
            doc.key, doc.content_hash, doc.metadata, doc.pages, doc.words, doc.chunks,
        )  # fmt: skip
        assert after.document_text(doc_id) == before.document_text(doc_id)
        old, new = before.chunks_of(doc_id), after.chunks_of(doc_id)
        assert [(c.text, c.heading, c.page, c.page_end) for c in new] == [
            (c.text, c.heading, c.page, c.page_end) for c in old
        ]
        for a, b in zip(old, new, strict=True):
            assert np.array_equal(after.vectors.reconstruct(b.id), before.vectors.reconstruct(a.id))
    exported_settings = Settings(corpus_dir=small_settings.corpus_dir, index_dir=exported)
    back = Searcher(exported_settings, embedder)
    for query in QUERIES:
        _same(_ranking(local, query, "hybrid"), _ranking(back, query, "hybrid"))


def test_the_db_commands_need_a_database_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["db", "migrate"], env={"KB_DATABASE_URL": ""})
    assert result.exit_code != 0 and "KB_DATABASE_URL" in result.output


def test_migrate_is_versioned_and_runs_once(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    assert storage.migrate() == (0, SCHEMA_VERSION)
    assert storage.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version FROM kb_schema ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))


def test_the_database_url_chooses_postgres(pg_url: str, tmp_path: Path) -> None:
    storage = open_storage(Settings(index_dir=tmp_path / "index", database_url=pg_url))
    assert isinstance(storage, PostgresStorage) and storage.current_name() is None


def test_one_writer_at_a_time_across_processes(pg_url: str) -> None:
    first, second = PostgresStorage(pg_url), PostgresStorage(pg_url)  # as two machines would
    with first.lock(), pytest.raises(IngestLockedError, match="Another ingestion"):
        second.lock(wait=0.3)
    with second.lock():
        pass  # released with the first


def test_an_unreachable_database_says_so_in_german_and_english(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    storage = PostgresStorage(f"postgresql://postgres@127.0.0.1:{port}/kb")
    from kb.errors import IndexUnavailableError

    with pytest.raises(IndexUnavailableError, match=r"Datenbank.*nicht erreichbar.*cannot be reached"):
        storage.current_name()
    storage.close()


def test_a_metadata_change_writes_only_that_documents_rows(pg_url: str) -> None:
    """What makes writes cheap: the new version adds and stamps the rows of the changed document, nothing else."""
    from tests.test_storage_contract import DOCUMENTS, _filled, _publish, _put, _writer

    storage = PostgresStorage(pg_url)
    stored = _filled(storage)
    key, title, language, status, texts = DOCUMENTS[0]
    with storage.lock():
        writer = _writer(storage)
        _put(writer, key, f"{title} (geändert)", language, status, texts, seed=0)
        _publish(writer)
    with psycopg.connect(pg_url) as conn:
        counts = {
            table: conn.execute(
                f"SELECT count(*) FILTER (WHERE added = 2), count(*) FILTER (WHERE removed = 2) FROM {table}"
            ).fetchone()
            for table in ("kb_documents", "kb_chunks")
        }
        postings = conn.execute("SELECT count(DISTINCT chunk_id) FROM kb_postings WHERE added = 2").fetchone()
        kept = conn.execute(  # what the writer counted as it went, against a count of the rows
            "SELECT manifest->>'documents', manifest->>'chunks', german_chunks, german_length FROM kb_versions "
            "WHERE version = 2"
        ).fetchone()
        counted = conn.execute(
            "SELECT (SELECT count(*) FROM kb_documents WHERE removed IS NULL)::text, "
            "(SELECT count(*) FROM kb_chunks WHERE removed IS NULL)::text, "
            "(SELECT count(*) FROM kb_chunks c JOIN kb_documents d ON d.row_id = c.doc_row "
            " WHERE c.removed IS NULL AND d.german), "
            "(SELECT sum(length) FROM (SELECT DISTINCT chunk_id, length FROM kb_postings WHERE removed IS NULL) s)"
        ).fetchone()
    assert counts == {"kb_documents": (1, 1), "kb_chunks": (len(texts), len(texts))}
    assert postings == (len(texts),)  # only the changed document's chunks were analysed again
    assert kept == counted
    reader = storage.open_reader()
    assert reader.documents[document_id(key)].metadata.title == f"{title} (geändert)"
    assert len(reader.documents) == len(stored)
    storage.close()
