"""Searches keep answering correctly while ingestions switch the index; two ingestions at once do not mix."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.errors import IngestLockedError
from kb.index import open_current
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import REPO, make_small_corpus, serving

pytestmark = pytest.mark.slow
CLIENTS = 4
PUBLISHES = 3


def test_searches_answer_correctly_while_new_versions_are_published(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    Ingestor(settings, embedder).run()
    failures: list[str] = []
    versions: set[int] = set()
    answered = [0]
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                response = http.get("/search", params={"q": "Elterncafé Zuwanderungsgeschichte", "k": 3})
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                body = response.json()
                versions.add(body["index_version"])
                if body["results"][0]["title"] != "Elterncafé an der Grundschule":
                    failures.append(f"wrong first result in version {body['index_version']}")
                answered[0] += 1

    with serving(create_app(settings, searcher=Searcher(settings, embedder))) as url:
        threads = [threading.Thread(target=client, args=(url,)) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            for i in range(PUBLISHES):
                (settings.corpus_dir / "dortmund" / f"neu-{i}.md").write_text(
                    factories.markdown(
                        f"Neues Projekt {i}", "Dortmund", "Nachbarschaftsgarten im Quartier. " * 40
                    ),
                    encoding="utf-8",
                )
                assert Ingestor(settings, embedder).run().version == i + 2
                time.sleep(0.7)  # the server re-checks CURRENT twice a second
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    assert failures == []
    assert answered[0] >= CLIENTS * 2
    assert max(versions) == PUBLISHES + 1 and len(versions) >= 2


def test_second_ingestion_while_another_process_ingests_stops_with_a_clear_message(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = Settings(corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    env = {**os.environ, "KB_CORPUS_DIR": str(settings.corpus_dir), "KB_INDEX_DIR": str(settings.index_dir)}
    first = subprocess.Popen(
        [sys.executable, "-m", "kb", "ingest"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not list((settings.index_dir / "versions").glob(".build-*")) and time.monotonic() < deadline:
            assert first.poll() is None, "the first ingestion ended before the second one could start"
            time.sleep(0.05)
        with pytest.raises(IngestLockedError, match=r"Another ingestion is running.*wait until it has finished"):
            Ingestor(settings, embedder).run()
    finally:
        assert first.wait(timeout=120) == 0
    assert open_current(settings.index_dir).manifest.documents == 7
