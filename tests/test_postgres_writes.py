"""Writes that cost what they change in the PostgreSQL engine, against a real server (tests/pg.py) and the real
model: near-duplicate groups computed around the changed documents equal those computed from every signature,
a reader that takes over the one before and reads only the rows changed equals a reader loaded whole, metadata
versioned per row, the migration from schema step 2, and the cap on attempts for files that kill their workers."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from kb import duplicates
from kb.cli import app
from kb.documents import Metadata, document_id
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.settings import Settings
from kb.storage.pg_claims import Claim, Claims
from kb.storage.pg_schema import MIGRATIONS, SCHEMA_VERSION
from kb.storage.postgres import PgReader, PostgresStorage

WORDS = (
    "Schule Eltern Kinder Sprache Förderung Kommune Integration Beratung Familie Projekt Stadtteil Angebot "
    "Ausbildung Beruf Jugend Sport Verein Ehrenamt Kultur Theater Musik Woche Treffen Gruppe Lehrkraft Bildung "
    "Zentrum Netzwerk Arbeit Wohnung Gesundheit Frauen Männer Senioren Begegnung Austausch Stadt Kreis Land "
    "Migration Zuwanderung Unterricht Hausaufgaben Lesen Schreiben Rechnen Spielen Kochen Garten Reise Fest"
).split()
#: Queries for comparing readers (subjects of the documents below).
QUERIES = ["Sprachförderung für Kinder", "Ehrenamt im Sportverein", "Beratung für Familien", "Theater Musik"]


def _text(seed: int, words: int = 160) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(WORDS) for _ in range(words)]


def _near_copy(tokens: list[str], seed: int) -> list[str]:
    """The same text with every 30th word replaced: estimated Jaccard well above the threshold."""
    rng = random.Random(seed)
    return [rng.choice(WORDS) + "x" if i % 30 == 7 else t for i, t in enumerate(tokens)]


def _write(folder: Path, name: str, title: str, tokens: list[str]) -> Path:
    path = folder / name
    sentences = [" ".join(tokens[i : i + 12]) + "." for i in range(0, len(tokens), 12)]
    path.write_text(f"# {title}\n\n" + "\n\n".join(sentences) + "\n", encoding="utf-8")
    return path


def _corpus(folder: Path) -> dict[str, list[str]]:
    """Six documents: two planted pairs of near-copies and two on their own."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {"a": _text(1), "b": _text(2), "c": _text(3), "d": _text(4)}
    texts["a2"] = _near_copy(texts["a"], 11)
    texts["b2"] = _near_copy(texts["b"], 12)
    for name, tokens in texts.items():
        _write(folder, f"{name}.md", f"Dokument {name}", tokens)
    return texts


def _groups_from_all_signatures(url: str) -> list[list[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, signature FROM kb_documents WHERE removed IS NULL AND length(signature) > 0"
        ).fetchall()
    return duplicates.groups({str(d): np.frombuffer(bytes(s), dtype=np.uint64) for d, s in rows})


def _groups_of(reader: PgReader) -> list[list[str]]:
    found = {tuple(sorted({d, *others})) for d, others in reader.near_duplicates.items()}
    return sorted((list(g) for g in found), key=lambda g: g[0])


def _fresh(url: str) -> PgReader:
    storage = PostgresStorage(url)
    try:
        return storage.open_reader()
    finally:
        storage.close()


@pytest.fixture
def settings(pg_url: str, tmp_path: Path) -> Settings:
    return Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        data_dir=tmp_path / "data",
        database_url=pg_url,
    )


def test_near_duplicate_groups_after_each_write_equal_those_of_all_signatures(
    settings: Settings, embedder: Embedder
) -> None:
    corpus = settings.corpus_dir
    texts = _corpus(corpus)
    ingestor = Ingestor(settings, embedder)
    assert ingestor.run().failed == []
    url = settings.database_url
    assert url is not None
    ids = {name: document_id(f"{name}.md") for name in ["a", "a2", "b", "b2", "c", "d", "e", "f"]}

    def check() -> list[list[str]]:
        groups = _groups_of(_fresh(url))
        assert groups == _groups_from_all_signatures(url)
        return groups

    assert check() == sorted([sorted([ids["a"], ids["a2"]]), sorted([ids["b"], ids["b2"]])])
    # An upload of a near-copy of "c" joins it into a new group; another copy of "a" joins a's group.
    _write(corpus, "e.md", "Dokument e", _near_copy(texts["c"], 13))
    _write(corpus, "f.md", "Dokument f", _near_copy(texts["a"], 14))
    assert ingestor.run([corpus / "e.md"]).added == ["e.md"]
    assert ingestor.run([corpus / "f.md"]).added == ["f.md"]
    groups = check()
    assert sorted([ids["c"], ids["e"]]) in groups and sorted([ids["a"], ids["a2"], ids["f"]]) in groups
    # Replacing "a2" by a copy of "d" moves it from a's group to d's.
    _write(corpus, "a2.md", "Dokument a2", _near_copy(texts["d"], 15))
    assert ingestor.run([corpus / "a2.md"]).updated == ["a2.md"]
    groups = check()
    assert sorted([ids["a"], ids["f"]]) in groups and sorted([ids["a2"], ids["d"]]) in groups
    # Purging "c" leaves "e" on its own; purging "a" splits nothing that "f" still links.
    ingestor.run([], purge=["c.md"])
    groups = check()
    assert all(ids["e"] not in group for group in groups)
    (corpus / "b.md").unlink()  # a file gone: removed by the next run over the folder
    ingestor.run()
    groups = check()
    assert all(ids["b2"] not in group for group in groups)


def _same_reader(advanced: PgReader, fresh: PgReader, embedder: Embedder) -> None:
    assert advanced.name == fresh.name and advanced.manifest == fresh.manifest
    assert advanced.documents == fresh.documents
    assert list(advanced.documents) == list(fresh.documents)
    assert advanced.doc_chunks.keys() == fresh.doc_chunks.keys()
    for doc_id, ids in fresh.doc_chunks.items():
        assert advanced.doc_chunks[doc_id].tolist() == ids.tolist()
    assert advanced.hidden == fresh.hidden
    assert advanced.near_duplicates == fresh.near_duplicates
    every = [int(c) for ids in fresh.doc_chunks.values() for c in ids]
    assert advanced.doc_of([*every, 10**9]) == fresh.doc_of([*every, 10**9])
    assert advanced.lexical.analyzer.splitter.vocabulary == fresh.lexical.analyzer.splitter.vocabulary
    assert advanced.lexical.analyzer.splitter._folded == fresh.lexical.analyzer.splitter._folded
    vectors = embedder.encode_queries(QUERIES)
    for query, vector in zip(QUERIES, vectors, strict=True):
        weights = fresh.lexical.query_terms(query)
        assert advanced.lexical.query_terms(query) == weights
        assert advanced.lexical.search(weights, 10) == fresh.lexical.search(weights, 10)
        assert advanced.vectors.search(vector, 10) == fresh.vectors.search(vector, 10)
        assert len(advanced.vectors) == len(fresh.vectors)


def test_a_reader_advanced_by_the_changed_rows_equals_one_loaded_whole(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = settings.corpus_dir
    texts = _corpus(corpus)
    ingestor = Ingestor(settings, embedder)
    ingestor.run()
    url = settings.database_url
    assert url is not None
    advanced: list[str] = []
    original = PgReader._advanced

    def spy(self: PgReader, *args: object) -> PgReader | None:
        reader = original(self, *args)  # type: ignore[arg-type]
        if reader is not None:
            advanced.append(reader.name)
        return reader

    monkeypatch.setattr(PgReader, "_advanced", spy)

    def archived() -> Metadata:
        metadata = _fresh(url).documents[document_id("d.md")].metadata.as_dict()
        return Metadata.from_dict({**metadata, "contact": "Büro 7", "status": "archived"})

    server = PostgresStorage(url)  # a replica's storage: it keeps the reader it opened last
    try:
        server.open_reader()
        steps = [
            lambda: ingestor.run([_write(corpus, "e.md", "Neues Dokument", _near_copy(texts["c"], 3))]),
            lambda: ingestor.run([_write(corpus, "a.md", "Dokument a", _text(99))]),  # replaced
            lambda: ingestor.run([], purge=["b.md"]),
            lambda: ingestor.update_metadata(document_id("d.md"), archived()),
        ]
        for step in steps:
            step()
            reader = server.open_reader()
            _same_reader(reader, _fresh(url), embedder)
        assert len(advanced) == len(steps)
        assert document_id("d.md") in reader.hidden  # archived by the metadata change
        # Two versions at once (another replica published twice meanwhile): still advanced by their rows.
        ingestor.run([_write(corpus, "g.md", "Dokument g", _text(7))])
        ingestor.run([], purge=["c.md"])
        _same_reader(server.open_reader(), _fresh(url), embedder)
        assert len(advanced) == len(steps) + 1
        behind = server.open_reader()
        for key in ("g.md", "e.md", "a2.md"):  # rows removed since may be deleted by the third of these writes
            ingestor.run([], purge=[key])
        with server.read() as conn:  # two versions ahead, but a newer writer may have deleted rows it needs
            again = PgReader.load(server, conn, behind.manifest.version + 2, behind)
            whole = PgReader.load(server, conn, behind.manifest.version + 2)
        _same_reader(again, whole, embedder)
        _same_reader(server.open_reader(), _fresh(url), embedder)  # three versions ahead
        assert len(advanced) == len(steps) + 1  # both loaded whole
    finally:
        server.close()


def test_a_reader_of_an_older_version_keeps_its_metadata(settings: Settings, embedder: Embedder) -> None:
    _corpus(settings.corpus_dir)
    ingestor = Ingestor(settings, embedder)
    before = ingestor.run().version
    url = settings.database_url
    assert url is not None and before is not None
    doc_id = document_id("d.md")
    old = _fresh(url).documents[doc_id].metadata
    changed = Metadata.from_dict({**old.as_dict(), "contact": "Büro 7"})
    manifest = ingestor.update_metadata(doc_id, changed)
    assert manifest is not None and manifest.version == before + 1
    storage = PostgresStorage(url)
    try:
        with storage.read() as conn:  # the older version, opened after the change was published
            older = PgReader.load(storage, conn, before)
            newer = PgReader.load(storage, conn, manifest.version)
    finally:
        storage.close()
    assert older.documents[doc_id].metadata == old
    assert newer.documents[doc_id].metadata == changed
    with psycopg.connect(url) as conn:  # one row for the change, none of the document's other rows rewritten
        rows = conn.execute("SELECT added, removed FROM kb_metadata").fetchall()
        documents = conn.execute("SELECT count(*) FROM kb_documents WHERE added > %s", (before,)).fetchone()
    assert rows == [(manifest.version, None)] and documents == (0,)


def test_migrate_brings_a_step_2_database_up_to_date(settings: Settings, embedder: Embedder) -> None:
    texts = _corpus(settings.corpus_dir)
    ingestor = Ingestor(settings, embedder)
    ingestor.run()
    url = settings.database_url
    assert url is not None
    expected = _groups_of(_fresh(url))
    with psycopg.connect(url) as conn:  # back to step 2: what this release added is gone, the rows are kept
        bands = conn.execute("SELECT doc_row, band, key FROM kb_bands ORDER BY doc_row, band").fetchall()
        conn.execute(
            "DROP TABLE kb_bands, kb_metadata; DROP INDEX kb_documents_added, kb_documents_live_path, "
            "kb_vocabulary_added, kb_vocabulary_folded; DROP TABLE kb_api_keys, kb_curated, kb_excluded, "
            "kb_audit, kb_sessions, kb_upload_files; DELETE FROM kb_schema WHERE version > 2"
        )
    assert len(bands) == 6 * (duplicates.NUM_PERM // duplicates.BAND_ROWS) and SCHEMA_VERSION >= 4
    result = CliRunner().invoke(app, ["db", "migrate"], env={"KB_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert f"schema version {SCHEMA_VERSION}" in result.output
    with psycopg.connect(url) as conn:
        filled = conn.execute("SELECT doc_row, band, key FROM kb_bands ORDER BY doc_row, band").fetchall()
        version = conn.execute("SELECT max(version) FROM kb_schema").fetchone()
    assert filled == bands and version == (len(MIGRATIONS),)
    assert _groups_of(_fresh(url)) == expected
    # The next write groups from the filled band keys.
    ingestor.run([_write(settings.corpus_dir, "e.md", "Dokument e", _near_copy(texts["c"], 5))])
    groups = _groups_of(_fresh(url))
    assert groups == _groups_from_all_signatures(url)
    assert sorted([document_id("c.md"), document_id("e.md")]) in groups


def test_a_file_whose_workers_die_on_it_is_reported_failed(pg_url: str) -> None:
    storage = PostgresStorage(pg_url)
    files = [Claim("kills.pdf", "h1", "/corpus/kills.pdf"), Claim("fine.md", "h2", "/corpus/fine.md")]
    with (
        Claims(storage, "first", lease_s=0.3, attempts=2) as first,
        Claims(storage, "second", lease_s=0.3, attempts=2) as second,
        Claims(storage, "third", lease_s=30, attempts=2) as third,
    ):
        first.register(files)
        assert first.take(1) == files[1:]  # in key order: "fine.md" first
        first.done(files[1:])
        assert first.take(1) == files[:1]  # then the worker is killed: its lease runs out
        time.sleep(0.4)
        assert second.abandoned() == []  # taken once: passed on
        assert second.take(5) == files[:1]
        time.sleep(0.4)  # killed again
        gone = third.abandoned()
        assert [claim for claim, _ in gone] == files[:1]
        assert "2 time(s)" in gone[0][1]
        assert third.abandoned() == [] and third.take(5) == [] and third.open_lease() is None
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT key, state, reason FROM kb_claims").fetchall()
        assert rows == [("kills.pdf", "failed", gone[0][1])]
    storage.close()


def test_an_ingestion_reports_a_file_that_killed_its_workers(settings: Settings, embedder: Embedder) -> None:
    _corpus(settings.corpus_dir)
    url = settings.database_url
    assert url is not None
    storage = PostgresStorage(url)
    killer = settings.corpus_dir / "c.md"
    from kb.ingest import checked_hash

    content_hash = checked_hash("c.md", killer, Ingestor(settings, embedder).limits)
    with Claims(storage, "killed", lease_s=0.2) as dead:  # a worker took it and died on it
        dead.register([Claim("c.md", content_hash, str(killer))])
        assert dead.take(1) == [Claim("c.md", content_hash, str(killer))]
    storage.close()
    time.sleep(0.3)
    capped = settings.model_copy(update={"ingest_attempts": 1})
    report = Ingestor(capped, embedder).run()
    assert [(f.path, "1 time(s)" in f.reason) for f in report.failed] == [("c.md", True)]
    assert sorted(report.added) == ["a.md", "a2.md", "b.md", "b2.md", "d.md"]
    assert document_id("c.md") not in _fresh(url).documents
