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
            factories.markdown(f"Lotsenprojekt {i}", "Bochum", sentence * 60), encoding="utf-8"
        )


def test_killed_ingestion_leaves_previous_version_searchable(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    assert Ingestor(settings, embedder).run().version == 1
    _more_documents(settings.corpus_dir, 8)
    env = {**os.environ, "KB_CORPUS_DIR": str(settings.corpus_dir), "KB_INDEX_DIR": str(settings.index_dir)}
    env["KB_ENCODER"] = "torch"  # slow enough to be killed midway (the int8 encoder often finishes first)
    rng = random.Random(20261125)
    killed_midway = 0
    for _ in range(5):
        process = subprocess.Popen(
            [sys.executable, "-m", "kb", "ingest"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(rng.uniform(0.3, 9.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed_midway += 1
        process.wait(timeout=60)
        index = open_current(settings.index_dir)  # loads, passes its checks
        assert index.manifest.version in (1, 2)
        expected = 7 if index.manifest.version == 1 else 15
        assert index.manifest.documents == expected == len(index.store.documents())
        hits = Searcher(settings, embedder).search("Elterncafé mit Zuwanderungsgeschichte", 3).hits
        assert hits[0].document.metadata.title == "Elterncafé an der Grundschule"
        if index.manifest.version == 2:
            break
    assert killed_midway >= 1
    rerun = subprocess.run(
        [sys.executable, "-m", "kb", "ingest"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    index = open_current(settings.index_dir)
    assert index.manifest.documents == 15 and len(index.vectors) == index.manifest.chunks
    assert not list((settings.index_dir / "versions").glob(".build-*"))
    titles = [h.document.metadata.title for h in Searcher(settings, embedder).search("Lotsenprojekt 3", 20).hits]
    assert "Lotsenprojekt 3" in titles
