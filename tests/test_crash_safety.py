"""A real SIGKILL at random points of a real `kb ingest`: the previous index stays live and searchable."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb.embedder import Embedder
from kb.index import open_current
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import REPO, make_small_corpus

pytestmark = pytest.mark.slow


def _more_documents(corpus: Path, count: int) -> None:
    folder = corpus / "neu"
    folder.mkdir()
    sentence = "Ehrenamtliche Lotsinnen begleiten neu zugewanderte Familien zu Ämtern und Beratungsstellen. "
    for i in range(count):
        (folder / f"lotsen-{i}.md").write_text(
            factories.markdown(f"Lotsenprojekt {i}", "Bochum", sentence * 25), encoding="utf-8"
        )


KILLS = 8


def _wait_for_build(index_dir: Path, process: subprocess.Popen[bytes]) -> None:
    """Until the ingestion has started writing a new version (or has ended)."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if list((index_dir / "versions").glob(".build-*")):
            return
        time.sleep(0.05)


def test_killed_ingestion_leaves_previous_version_searchable(tmp_path: Path, embedder: Embedder) -> None:
    """Eight SIGKILLs at random moments of eight `kb ingest` runs, each with new work to do."""
    settings = Settings(corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    assert Ingestor(settings, embedder).run().version == 1
    _more_documents(settings.corpus_dir, 8)
    env = {**os.environ, "KB_CORPUS_DIR": str(settings.corpus_dir), "KB_INDEX_DIR": str(settings.index_dir)}
    env["KB_ENCODER"] = "torch"  # slow enough to be killed midway (the int8 encoder often finishes first)
    rng = random.Random(20261125)
    killed_midway, last_version = 0, 1
    for round_ in range(KILLS):
        (settings.corpus_dir / "neu" / f"runde-{round_}.md").write_text(
            factories.markdown(f"Runde {round_}", "Herne", "Ein weiteres Dokument für diese Runde. " * 30),
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "kb", "ingest"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if round_ % 2:  # while the new version is being written (the interesting part) ...
            _wait_for_build(settings.index_dir, process)
            time.sleep(rng.uniform(0.0, 1.5))
        else:  # ... or at any moment, start-up included
            time.sleep(rng.uniform(0.3, 3.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed_midway += 1
        process.wait(timeout=60)
        index = open_current(settings.index_dir)  # loads, passes its size and checksum checks
        assert index.manifest.version >= last_version
        last_version = index.manifest.version
        on_disk = {p.relative_to(settings.corpus_dir).as_posix() for p in settings.corpus_dir.rglob("*.*")}
        keys = {doc.key for doc in index.store.documents()}
        assert len(keys) == index.manifest.documents and keys <= on_disk
        assert len(index.vectors) == index.manifest.chunks
        hits = Searcher(settings, embedder).search("Elterncafé mit Zuwanderungsgeschichte", 3).hits
        assert hits[0].document.metadata.title == "Elterncafé an der Grundschule"
    assert killed_midway >= KILLS // 2
    rerun = subprocess.run(
        [sys.executable, "-m", "kb", "ingest"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    index = open_current(settings.index_dir)
    assert index.manifest.documents == 7 + 8 + KILLS and len(index.vectors) == index.manifest.chunks
    assert not list((settings.index_dir / "versions").glob(".build-*"))
    titles = [h.document.metadata.title for h in Searcher(settings, embedder).search("Runde 7", 20).hits]
    assert "Runde 7" in titles
