"""A real SIGKILL of a real server in the middle of uploads: the last good index stays live, nothing is lost."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kb.curation.db import CurationDB
from kb.documents import document_id
from kb.embedder import Embedder
from kb.index import open_current
from kb.search import Searcher
from tests.conftest import REPO, curated_installation

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kb", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).json().get("status") == "ready":
                return process, url
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError("the server did not become ready")


def _paper(i: int) -> bytes:
    body = "\n\n".join(
        f"## Abschnitt {s}\n\nIm Projekt {i} begleiten Lotsinnen neu zugewanderte Familien im Quartier {s} "
        "zu Schulen, Kitas und Beratungsstellen und übersetzen bei Elterngesprächen." * 3
        for s in range(60)  # long enough that the upload is still running when the kill comes
    )
    return f"# Lotsenprojekt {i}\n\n{body}".encode()


def test_killing_the_server_during_uploads_loses_nothing(tmp_path: Path, embedder: Embedder) -> None:
    settings, key = curated_installation(tmp_path, embedder)
    db = CurationDB(settings.data_dir)
    env = {
        **os.environ,
        "KB_CORPUS_DIR": str(settings.corpus_dir),
        "KB_INDEX_DIR": str(settings.index_dir),
        "KB_DATA_DIR": str(settings.data_dir),
    }
    rng = random.Random(7)
    killed_during_upload = 0
    for i in range(3):
        process, url = _start(env)
        answered: list[int] = []

        def upload(number: int = i, base: str = url, answered: list[int] = answered) -> None:
            try:
                response = httpx.post(
                    f"{base}/documents",
                    files={"file": (f"lotsen-{number}.md", _paper(number))},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=120,
                )
                answered.append(response.status_code)
            except httpx.HTTPError:
                pass

        thread = threading.Thread(target=upload)
        thread.start()
        time.sleep(rng.uniform(0.5, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        thread.join(timeout=30)
        killed_during_upload += not answered
        index = open_current(settings.index_dir)  # the live version loads and passes its checks
        hits = Searcher(settings, embedder).search("Elterncafé mit Zuwanderungsgeschichte", 3).hits
        assert hits[0].document.metadata.title == "Elterncafé an der Grundschule"
        assert index.manifest.documents == len(index.store.documents())
    assert killed_during_upload >= 1

    rerun = subprocess.run(
        [sys.executable, "-m", "kb", "ingest"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    index = open_current(settings.index_dir)
    stored = {p.name for p in settings.uploads_dir.glob("*.md")}
    in_index = {d.key.removeprefix("upload/") for d in index.documents.values() if d.key.startswith("upload/")}
    assert stored == in_index  # every file that reached the disk is searchable, nothing else is
    records = {row[0] for row in db.query("SELECT key FROM records WHERE uploaded = 1")}
    assert {f"upload/{name}" for name in stored} <= records
    for name in stored:
        assert index.documents[document_id(f"upload/{name}")].metadata.title.startswith("Lotsenprojekt")
    assert not list((settings.index_dir / "versions").glob(".build-*"))
    assert len(index.vectors) == index.manifest.chunks
