"""Several search processes on one PostgreSQL database, a streaming replica, and the primary going away: real
``kb serve`` processes and real servers (tests/pg.py), nothing mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kb.curation.keys import create_key
from kb.curation.store import open_curation
from kb.documents import document_id
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import make_small_corpus
from tests.pg import PgServer
from tests.test_upload_crash import _start

pytestmark = pytest.mark.slow

#: How soon a write must be visible on every other search process (issue 16).
VISIBLE_WITHIN_S = 2.0


def _within(seconds: float, check: Callable[[], bool]) -> float:
    """Poll ``check`` until it holds; the seconds it took (fails after ``seconds``)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not visible within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - started


def _installation(root: Path, url: str, embedder: Embedder) -> tuple[Settings, str]:
    settings = Settings(
        corpus_dir=make_small_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data",
        database_url=url,
    )  # fmt: skip
    Ingestor(settings, embedder).run()
    db = open_curation(settings)  # in the database: every server finds the key
    key = create_key(db, "curator", "Replicas")[1]
    db.close()
    return settings, key


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    return env | {
        "KB_DATABASE_URL": settings.database_url,
        "KB_DATA_DIR": str(settings.data_dir),
        "KB_INDEX_DIR": str(settings.index_dir),
        "KB_CORPUS_DIR": str(settings.corpus_dir),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }


Servers = tuple[subprocess.Popen[bytes], str, str, str]  # process A, URL of A, URL of B, a curator's key


@pytest.fixture
def two_servers(tmp_path: Path, pg_url: str, embedder: Embedder) -> Iterator[Servers]:
    """Two `kb serve` processes on one database (as on two machines; they share only the database, which holds
    the API keys too)."""
    settings, key = _installation(tmp_path, pg_url, embedder)
    first, url_a = _start(_env(settings))
    try:
        second, url_b = _start(_env(settings))
    except BaseException:
        first.kill()
        raise
    yield first, url_a, url_b, key
    for process in (first, second):
        process.kill()
        process.wait(30)


def test_a_write_through_one_server_is_seen_by_the_other_within_2_s(two_servers: Servers) -> None:
    _, url_a, url_b, key = two_servers
    auth = {"Authorization": f"Bearer {key}"}
    doc = document_id("dortmund/elterncafe.md")
    with httpx.Client(base_url=url_a, timeout=60) as a, httpx.Client(base_url=url_b, timeout=60) as b:
        assert b.get(f"/documents/{doc}").json()["title"] == "Elterncafé an der Grundschule"
        response = a.patch(f"/documents/{doc}", json={"title": "Elterntreff am Morgen"}, headers=auth)
        assert response.status_code == 200, response.text
        _within(VISIBLE_WITHIN_S, lambda: b.get(f"/documents/{doc}").json()["title"] == "Elterntreff am Morgen")

        paper = factories.markdown("Zirkusprojekt", "Dortmund", "Kinder üben Jonglieren im Zirkuszelt.")
        response = a.post("/documents", files={"file": ("zirkus.md", paper.encode())}, headers=auth)
        assert response.status_code in (200, 201), response.text

        def found_on_b() -> bool:
            results = b.get("/search", params={"q": "Jonglieren im Zirkuszelt", "k": 1}).json()["results"]
            return bool(results) and results[0]["title"] == "Zirkusprojekt"

        _within(VISIBLE_WITHIN_S, found_on_b)


def test_one_server_killed_the_other_keeps_answering(two_servers: Servers) -> None:
    first, url_a, url_b, _ = two_servers
    with httpx.Client(base_url=url_a, timeout=60) as a:
        assert a.get("/search", params={"q": "Elterncafé"}).status_code == 200
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    with httpx.Client(base_url=url_b, timeout=60) as b:
        for _ in range(5):
            response = b.get("/search", params={"q": "Elterncafé"})
            assert response.status_code == 200 and response.json()["results"]


def test_a_streaming_replica_serves_searches_and_sees_writes_within_2_s(
    tmp_path: Path, pg_server: PgServer, embedder: Embedder
) -> None:
    url = pg_server.create_database("kb_streaming")
    replica = PgServer(tmp_path / "replica").replica_of(pg_server).start()
    try:
        settings = Settings(
            corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index", database_url=url,
            database_read_url=replica.url("kb_streaming"),
        )  # fmt: skip
        Ingestor(settings, embedder).run()  # writes go to the primary
        searcher = Searcher(settings, embedder)
        _within(VISIBLE_WITHIN_S, lambda: searcher.handle._storage.current_name() == "v000001")
        assert searcher.search("Elterncafé", 1).hits[0].document.key == "dortmund/elterncafe.md"
        (settings.corpus_dir / "zirkus.md").write_text(
            factories.markdown("Zirkusprojekt", "Dortmund", "Kinder üben Jonglieren im Zirkuszelt."),
            encoding="utf-8",
        )
        Ingestor(settings, embedder).run()

        def found() -> bool:
            hits = searcher.search("Jonglieren im Zirkuszelt", 1).hits
            return bool(hits) and hits[0].document.key == "zirkus.md"

        _within(VISIBLE_WITHIN_S, found)
    finally:
        replica.stop()


def test_the_primary_restarted_during_searches_503_then_recovery(tmp_path: Path, embedder: Embedder) -> None:
    server = PgServer(tmp_path / "primary").init().start()
    try:
        settings, _ = _installation(tmp_path, server.create_database("kb"), embedder)
        process, url = _start(_env(settings))
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                assert client.get("/search", params={"q": "Elterncafé"}).status_code == 200
                server.stop(signal.SIGKILL)  # the database crashes
                time.sleep(1.0)  # past the server's re-check of the live version
                response = client.get("/search", params={"q": "Schwimmkurs für Frauen"})
                assert response.status_code == 503, response.text
                assert "Datenbank" in response.text and "cannot be reached" in response.text
                server.start()  # back on the same port
                _within(30, lambda: client.get("/search", params={"q": "Schwimmkurs"}).status_code == 200)
        finally:
            process.kill()
            process.wait(30)
    finally:
        server.stop()
