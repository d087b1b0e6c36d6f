"""The curation data in PostgreSQL (issue 16, items 1 and 2): keys, sessions, curated metadata, exclusions, the
audit log and the uploaded files are in the database, so every replica on it shares them. Real servers
(tests/pg.py), the real app, the real model; nothing mocked."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb.api.app import create_app
from kb.backup_postgres import find_tool
from kb.cli import app as cli
from kb.curation.db import CurationData, CurationDB
from kb.curation.keys import authenticate, create_key
from kb.curation.pg_db import PgCurationDB
from kb.curation.service import Curator
from kb.curation.sessions import login
from kb.curation.store import open_curation
from kb.doctor_postgres import check_database
from kb.documents import document_id
from kb.embedder import Embedder
from kb.errors import BackupError, CurationUnavailableError
from kb.ingest import UPLOAD_PREFIX, Ingestor, _hash_file
from kb.search import Searcher
from kb.settings import Settings
from kb.storage.pg_claims import Claim, Claims
from kb.storage.pg_schema import SCHEMA_VERSION
from kb.storage.postgres import PostgresStorage
from tests import factories
from tests.conftest import curated_installation, make_small_corpus
from tests.pg import PgServer

pytestmark = pytest.mark.slow

ZIRKUS = factories.markdown("Zirkusprojekt", "Wuppertal", "Kinder üben Jonglieren im Zirkuszelt.")


def _replica(root: Path, url: str, corpus: Path) -> Settings:
    """One replica's settings: its own index folder and KB_DATA_DIR (as on its own machine), one database."""
    return Settings(corpus_dir=corpus, index_dir=root / "index", data_dir=root / "data", database_url=url)


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


def _upload(client: TestClient, key: str, name: str, text: str, meta: dict[str, Any] | None = None) -> str:
    response = client.post(
        "/documents",
        files={"file": (name, text.encode())},
        data={"metadata": json.dumps(meta or {})},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class Replicas:
    def __init__(self, a: Settings, b: Settings, client_a: TestClient, client_b: TestClient, keys: dict[str, str]):
        self.a, self.b, self.client_a, self.client_b, self.keys = a, b, client_a, client_b, keys

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str, embedder: Embedder) -> Iterator[Replicas]:
    """Two app instances on one database, each with its own KB_DATA_DIR; the keys created through A."""
    corpus = make_small_corpus(tmp_path / "corpus")
    a, b = _replica(tmp_path / "a", pg_url, corpus), _replica(tmp_path / "b", pg_url, corpus)
    Ingestor(a, embedder).run()
    db = open_curation(a)  # as `kb keys create` on machine A
    keys = {
        "curator": create_key(db, "curator", "LaKI Redaktion")[1],
        "wuppertal": create_key(db, "editor", "KI Wuppertal", "Wuppertal")[1],
    }
    db.close()
    with (
        TestClient(create_app(a, searcher=Searcher(a, embedder))) as client_a,
        TestClient(create_app(b, searcher=Searcher(b, embedder))) as client_b,
    ):
        yield Replicas(a, b, client_a, client_b, keys)


def test_a_document_lives_through_upload_recommend_retire_and_purge_in_postgres(replicas: Replicas) -> None:
    a, url = replicas.client_a, replicas.a.database_url
    doc = _upload(
        a, replicas.keys["wuppertal"], "patenschaften.md",
        "# Bildungspatenschaften\n\nPatinnen und Paten lesen mit Kindern aus Seiteneinsteigerklassen.",
        {"year": 2023},
    )  # fmt: skip
    described = a.patch(f"/documents/{doc}", json={"topics": ["Ehrenamt"]}, headers=replicas.auth("wuppertal"))
    assert described.status_code == 200 and described.json()["topics"] == ["Ehrenamt"]
    recommended = a.patch(f"/documents/{doc}", json={"recommended": True}, headers=replicas.auth("curator"))
    assert recommended.status_code == 200 and recommended.json()["recommended"] is True
    assert _rows(url, f"SELECT metadata->'recommended', uploaded FROM kb_curated WHERE doc_id = '{doc}'") == [
        (True, True)
    ]
    retired = a.delete(f"/documents/{doc}", headers=replicas.auth("wuppertal"))
    assert retired.status_code == 200 and retired.json()["status"] == "archived"
    name = _rows(url, "SELECT name FROM kb_upload_files")[0][0]
    assert (replicas.a.uploads_dir / name).is_file()

    purged = a.delete(f"/documents/{doc}", params={"purge": True}, headers=replicas.auth("curator"))
    assert purged.status_code == 200 and purged.json()["status"] == "purged"
    assert a.get(f"/documents/{doc}").status_code == 404
    assert _rows(url, "SELECT count(*) FROM kb_upload_files") == [(0,)]  # the file is gone everywhere
    assert not (replicas.a.uploads_dir / name).exists()
    assert _rows(url, "SELECT key FROM kb_excluded") == [(f"upload/{name}",)]

    trail = a.get("/audit", params={"limit": 50}, headers=replicas.auth("curator")).json()["items"]
    assert [(e["action"], e["actor"].split(" (")[0]) for e in reversed(trail)] == [
        ("create", "KI Wuppertal"),
        ("update", "KI Wuppertal"),
        ("recommend", "LaKI Redaktion"),
        ("retire", "KI Wuppertal"),
        ("purge", "LaKI Redaktion"),
    ]
    page = a.get("/audit", params={"limit": 2, "offset": 1}, headers=replicas.auth("curator")).json()["items"]
    assert [e["action"] for e in page] == ["retire", "recommend"]
    assert trail[3]["after"] == {"topics": ["Ehrenamt"]} and trail[3]["before"] == {"topics": []}
    # nothing of the curation data is kept on the machine: no SQLite database, keys only as hashes
    assert not (replicas.a.data_dir / "curation.sqlite").exists()
    stored = str(_rows(url, "SELECT * FROM kb_api_keys"))
    assert not any(secret in stored for secret in replicas.keys.values())


def test_a_key_and_a_login_made_through_one_replica_work_on_the_other(replicas: Replicas) -> None:
    b = replicas.client_b
    assert b.get("/audit", headers=replicas.auth("curator")).status_code == 200  # the key was created via A
    assert b.get("/audit").status_code == 401
    login = replicas.client_a.post(
        "/anmelden", data={"schluessel": replicas.keys["curator"], "weiter": "/"}, follow_redirects=False
    )
    assert login.status_code == 303, login.text
    cookies = dict(replicas.client_a.cookies)
    assert cookies
    b.cookies.update(cookies)
    assert b.get("/audit").status_code == 200  # the session opened on A is known on B
    b.cookies.clear()


def _found_within(client: TestClient, query: str, doc_id: str, seconds: float) -> bool:
    """Whether ``client`` ranks ``doc_id`` first for ``query`` within ``seconds`` (a replica looks for a newer
    version every 0.5 s)."""
    deadline = time.monotonic() + seconds
    while True:
        hits = client.get("/search", params={"q": query, "k": 1}).json()["results"]
        if hits and hits[0]["document_id"] == doc_id:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _status_within(client: TestClient, path: str, status: int, seconds: float) -> bool:
    """Whether ``GET path`` answers ``status`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while client.get(path).status_code != status:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_an_upload_through_one_replica_is_ingested_again_by_the_other_without_its_folder(
    replicas: Replicas,
) -> None:
    doc = _upload(
        replicas.client_a, replicas.keys["wuppertal"], "zirkus.md",
        factories.markdown("Zirkusprojekt", "Wuppertal", "Kinder üben Jonglieren im Zirkuszelt."),
    )  # fmt: skip
    b = replicas.client_b
    assert _found_within(b, "Jonglieren im Zirkuszelt", doc, 2.0)  # replicas see a write within 2 s (issue 16)
    shutil.rmtree(replicas.a.data_dir)  # machine A's folder is gone: B has only the database
    assert not replicas.b.uploads_dir.exists()

    file = b.get(f"/documents/{doc}/file")
    assert file.status_code == 200 and "Jonglieren im Zirkuszelt" in file.text
    # a new title is part of what is searched: B reads the file again (from the database) and encodes it
    renamed = b.patch(f"/documents/{doc}", json={"title": "Zirkus im Quartier"}, headers=replicas.auth("curator"))
    assert renamed.status_code == 200, renamed.text
    deadline = time.monotonic() + 2.0  # A sees B's write within 2 s
    while replicas.client_a.get(f"/documents/{doc}").json()["title"] != "Zirkus im Quartier":
        assert time.monotonic() < deadline, "replica A did not see the new title within 2 s"
        time.sleep(0.1)
    stored = Searcher(replicas.b).index.documents[doc]
    assert Path(stored.path).parent == replicas.b.uploads_dir.resolve()

    trail = replicas.client_a.get("/audit", params={"doc_id": doc}, headers=replicas.auth("curator")).json()
    assert [(e["action"], e["actor"].split(" (")[0]) for e in reversed(trail["items"])] == [
        ("create", "KI Wuppertal"),  # through A
        ("update", "LaKI Redaktion"),  # through B
    ]


def test_kb_ingest_on_another_machine_keeps_uploads_and_writes_their_files(
    replicas: Replicas, tmp_path: Path
) -> None:
    doc = _upload(
        replicas.client_a, replicas.keys["wuppertal"], "zirkus.md",
        factories.markdown("Zirkusprojekt", "Wuppertal", "Kinder üben Jonglieren im Zirkuszelt."),
    )  # fmt: skip
    # machine C: the same corpus path and KB_DATA_DIR path as A, but an empty data folder
    shutil.rmtree(replicas.a.uploads_dir)
    env = {"KB_DATABASE_URL": replicas.a.database_url}
    args = ["--corpus-dir", str(replicas.a.corpus_dir), "--index-dir", str(tmp_path / "c-index")]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(replicas.a.data_dir), "ingest"], env=env)
    assert result.exit_code == 0, result.output
    assert doc in Searcher(replicas.a).index.documents  # not taken for a file that is gone
    assert len(list(replicas.a.uploads_dir.glob("*.md"))) == 1


def test_the_curation_cli_uses_the_database(tmp_path: Path, pg_url: str) -> None:
    env = {"KB_DATABASE_URL": pg_url}
    args = ["--data-dir", str(tmp_path / "data"), "keys", "create", "--role", "curator", "--label", "LaKI"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    secret = next(word for word in result.output.split() if word.startswith("kbk_"))
    db = PgCurationDB(pg_url)
    try:
        assert authenticate(db, secret).label == "LaKI"
    finally:
        db.close()
    assert not (tmp_path / "data" / "curation.sqlite").exists()


def test_without_a_database_the_curation_data_stays_in_sqlite(tmp_path: Path) -> None:
    store = open_curation(Settings(data_dir=tmp_path / "data"))
    try:
        assert isinstance(store, CurationDB) and store.shared_files() is None
    finally:
        store.close()
    assert (tmp_path / "data" / "curation.sqlite").is_file()


def test_a_file_purged_through_one_replica_can_be_uploaded_again_through_the_other(replicas: Replicas) -> None:
    """A purge through A keeps the file out of B's ingestion; uploading it again through B brings it back."""
    text = factories.markdown("Sprachcafé", "Wuppertal", "Jeden Mittwoch sprechen Eltern Deutsch beim Kaffee.")
    doc = _upload(replicas.client_a, replicas.keys["wuppertal"], "cafe.md", text)
    a, b = replicas.client_a, replicas.client_b
    assert _status_within(b, f"/documents/{doc}", 200, 2.0)  # B sees the upload
    purged = a.delete(f"/documents/{doc}", params={"purge": True}, headers=replicas.auth("curator"))
    assert purged.status_code == 200
    assert _status_within(b, f"/documents/{doc}", 404, 2.0)  # and then the purge
    again = _upload(b, replicas.keys["wuppertal"], "cafe.md", text)
    assert again == doc
    assert _status_within(a, f"/documents/{doc}", 200, 2.0)
    assert document_id(f"upload/{_rows(replicas.a.database_url, 'SELECT name FROM kb_upload_files')[0][0]}") == doc


def test_import_local_and_export_local_move_the_curation_data_and_the_files(
    tmp_path: Path, pg_url: str, embedder: Embedder
) -> None:
    local, secret = curated_installation(tmp_path / "local", embedder)
    curator = Curator(Searcher(local, embedder))
    principal = authenticate(curator.db, secret)
    uploaded = curator.upload(principal, "zirkus.md", ZIRKUS.encode(), {"topics": ["Kultur"]}).document
    curator.update(principal, uploaded.id, {"recommended": True})
    purged = next(d for d in curator.searcher.index.documents.values() if not d.key.startswith("upload/"))
    curator.purge(principal, purged.id)
    login(curator.db, secret, 8)
    before = curator.db.dump()
    curator.db.close()
    env = {"KB_DATABASE_URL": pg_url}

    result = CliRunner().invoke(
        cli, ["db", "import-local", str(local.index_dir), "--data-dir", str(local.data_dir)], env=env
    )
    assert result.exit_code == 0, result.output
    counts = f"{len(before.keys)} API key(s), {len(before.records)} curated document(s), {len(before.excluded)} "
    assert counts + f"exclusion(s), {len(before.audit)} audit entries, 1 uploaded file(s)" in result.output
    assert len(before.sessions) == 1 and len(before.audit) == 3  # create, recommend, purge
    db = PgCurationDB(pg_url)
    try:
        assert _same_rows(db.dump(), before)
        assert authenticate(db, secret).label == "Test"
        assert db.excluded() == {purged.key}
        assert db.record(uploaded.id) == (uploaded.key, {"topics": ["Kultur"], "recommended": True}, True)
        assert db.file(uploaded.key.removeprefix("upload/")) == ZIRKUS.encode()
        assert [e.action for e in db.audit()] == ["purge", "recommend", "create"]
        with db.transaction() as tx:  # the log goes on after the imported entries
            tx.audit("cli:test", "update", uploaded.id)
        assert db.audit(limit=1)[0].id == max(row[0] for row in before.audit) + 1
        in_database = db.dump()
    finally:
        db.close()

    exported, data = tmp_path / "exported", tmp_path / "exported-data"
    result = CliRunner().invoke(cli, ["db", "export-local", str(exported), "--data-dir", str(data)], env=env)
    assert result.exit_code == 0, result.output
    back = CurationDB(data)
    try:
        assert _same_rows(back.dump(), in_database)
    finally:
        back.close()
    assert (data / "files" / uploaded.key.removeprefix("upload/")).read_bytes() == ZIRKUS.encode()


def test_import_local_names_a_data_dir_without_curation_data(
    tmp_path: Path, pg_url: str, small_settings: Settings
) -> None:
    result = CliRunner().invoke(
        cli, ["db", "import-local", str(small_settings.index_dir), "--data-dir", str(tmp_path)],
        env={"KB_DATABASE_URL": pg_url},
    )  # fmt: skip
    assert result.exit_code == 2
    assert str(tmp_path / "curation.sqlite") in result.output and "--data-dir" in result.output


def _same_rows(got: CurationData, expected: CurationData) -> bool:
    """The same rows in every table (keys created in the same second may come in either order)."""
    return all(
        sorted(map(repr, getattr(got, table))) == sorted(map(repr, getattr(expected, table)))
        for table in ("keys", "records", "excluded", "audit", "sessions")
    )


def test_doctor_checks_the_database_its_live_version_and_the_curation_tables(replicas: Replicas) -> None:
    settings, url = replicas.a, replicas.a.database_url
    doc = _upload(replicas.client_a, replicas.keys["wuppertal"], "zirkus.md", ZIRKUS)
    checks = {c.name: c for c in check_database(settings)}
    live = Searcher(settings).index.manifest
    assert checks["database"].status == "OK" and f"schema version {SCHEMA_VERSION}" in checks["database"].message
    assert checks["index"].status == "OK", checks["index"].message
    assert f"{live.documents} documents, {live.chunks} chunks" in checks["index"].message
    assert checks["curation data"].status == "OK" and "2 API key(s)" in checks["curation data"].message

    with psycopg.connect(url) as conn:
        conn.execute("UPDATE kb_chunks SET embedding = NULL WHERE id = (SELECT min(id) FROM kb_chunks)")
        conn.execute("DELETE FROM kb_upload_files")
    checks = {c.name: c for c in check_database(settings)}
    assert checks["index"].status == "FAIL" and "1 chunk(s) have no vector" in checks["index"].message
    assert checks["curation data"].status == "FAIL"
    assert Searcher(settings).index.documents[doc].key in checks["curation data"].message

    env = {"KB_DATABASE_URL": url, "KB_INDEX_DIR": str(settings.index_dir)}
    result = CliRunner().invoke(cli, ["doctor"], env=env)
    assert result.exit_code == 8 and "FAIL index: version" in result.output


def test_doctor_names_a_database_that_cannot_be_reached() -> None:
    checks = check_database(Settings(database_url="postgresql://kb@127.0.0.1:1/kb"))
    assert [(c.name, c.status) for c in checks] == [("database", "FAIL")]
    assert "127.0.0.1:1/kb cannot be reached" in checks[0].message and "KB_DATABASE_URL" in checks[0].message


def test_backup_and_restore_of_a_postgres_installation(
    replicas: Replicas, pg_server: PgServer, tmp_path: Path
) -> None:
    doc = _upload(replicas.client_a, replicas.keys["wuppertal"], "zirkus.md", ZIRKUS)
    env = {"KB_DATABASE_URL": replicas.a.database_url}
    folder = tmp_path / "backup"
    result = CliRunner().invoke(cli, ["backup", str(folder)], env=env)
    assert result.exit_code == 0, result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["engine"] == "postgres" and manifest["uploads"] == 1 and "database.dump" in manifest["files"]

    restored_url = pg_server.create_database("kb_restored")
    result = CliRunner().invoke(cli, ["restore", str(folder)], env={"KB_DATABASE_URL": restored_url})
    assert result.exit_code == 0, result.output
    restored = _replica(tmp_path / "r", restored_url, replicas.a.corpus_dir)
    assert set(Searcher(restored).index.documents) == set(Searcher(replicas.a).index.documents)
    db = PgCurationDB(restored_url)
    try:
        assert authenticate(db, replicas.keys["curator"]).label == "LaKI Redaktion"
        assert [e.action for e in db.audit(doc)] == ["create"]
        names = _rows(replicas.a.database_url, "SELECT name FROM kb_upload_files")
        assert db.file_names() == [name for (name,) in names] and len(names) == 1
    finally:
        db.close()

    again = CliRunner().invoke(cli, ["restore", str(folder)], env={"KB_DATABASE_URL": restored_url})
    assert again.exit_code == 11 and "already holds an installation" in again.output and "--force" in again.output
    forced = CliRunner().invoke(cli, ["restore", str(folder), "--force"], env={"KB_DATABASE_URL": restored_url})
    assert forced.exit_code == 0, forced.output

    local = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "local"), "restore", str(folder)], env={})
    assert local.exit_code == 11 and "set KB_DATABASE_URL" in local.output


def test_backup_without_a_new_enough_pg_dump_names_the_tools_and_the_docs() -> None:
    with pytest.raises(BackupError) as raised:
        find_tool("pg_dump", 99)  # no client of PostgreSQL 99 exists anywhere
    message = str(raised.value)
    assert "pg_dump of PostgreSQL 99" in message and "pg_dump -Fc" in message and "pg_basebackup" in message
    assert "docs/deployment.md" in message


def test_curation_data_out_of_reach_is_a_503_that_names_the_server() -> None:
    with pytest.raises(CurationUnavailableError) as raised:
        PgCurationDB("postgresql://kb@127.0.0.1:1/kb")
    assert raised.value.status_code == 503
    assert "127.0.0.1:1/kb cannot be reached" in str(raised.value) and "KB_DATABASE_URL" in str(raised.value)


def test_a_worker_on_another_machine_ingests_an_upload_from_the_shared_copy(
    pg_url: str, tmp_path: Path, embedder: Embedder
) -> None:
    """Machine A received an upload (its file in A's folder and in the database) and registered its claim; a worker
    on machine B takes the claim: it writes the file from the database into its own folder and ingests it."""
    a, b = (
        Settings(index_dir=tmp_path / m / "index", data_dir=tmp_path / m / "data", database_url=pg_url)
        for m in ("a", "b")
    )
    data = factories.markdown("Zirkusprojekt", "Wuppertal", "Kinder üben Jonglieren im Zirkuszelt.").encode()
    name = hashlib.sha256(data).hexdigest() + ".md"
    store_a = open_curation(a)
    try:
        shared = store_a.shared_files()
        assert shared is not None
        shared.put_file(name, data)
    finally:
        store_a.close()
    received = a.uploads_dir / name
    received.parent.mkdir(parents=True)
    received.write_bytes(data)
    key = UPLOAD_PREFIX + name
    storage = PostgresStorage(pg_url)
    try:
        with Claims(storage, "machine-a", lease_s=30) as claims:
            claims.register([Claim(key, _hash_file(received), str(received))])
    finally:
        storage.close()
    shutil.rmtree(a.data_dir)  # the path in the claim exists on machine A only

    store_b = open_curation(b)
    try:
        report = Ingestor(b, embedder, store_b).run([])
    finally:
        store_b.close()
    assert report.added == [key] and report.failed == []
    assert (b.uploads_dir / name).read_bytes() == data
    stored = Searcher(b, embedder).index.documents[document_id(key)]
    assert stored.metadata.title == "Zirkusprojekt" and Path(stored.path) == (b.uploads_dir / name).resolve()
