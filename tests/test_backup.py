"""`kb backup` and `kb restore`: a round trip keeps search, curation and uploads; a damaged backup or an occupied
target is refused; a backup taken while a real server receives uploads restores every acknowledged upload."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from kb.backup import BACKUP_MANIFEST, backup, restore
from kb.cli import app
from kb.curation.db import CurationDB
from kb.curation.keys import Principal, Role
from kb.curation.service import Curator
from kb.doctor import check_index
from kb.embedder import Embedder
from kb.errors import BackupError
from kb.files import write_atomic
from kb.index import IndexDir
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from kb.storage import open_storage
from tests.conftest import REPO, curated_installation
from tests.test_upload_crash import _start

runner = CliRunner()
CURATOR = Principal(Role.CURATOR, "Test")
QUERIES = ("Elterncafé mit Zuwanderungsgeschichte", "Sprachförderung in der Kita", "Lotsen für Familien")


def _elsewhere(root: Path) -> Settings:
    return Settings(corpus_dir=root / "corpus", index_dir=root / "index", data_dir=root / "data")


def _ranking(settings: Settings, embedder: Embedder) -> list[list[tuple[str, float]]]:
    searcher = Searcher(settings, embedder)
    return [[(h.document.id, round(h.score, 5)) for h in searcher.search(q, 5).hits] for q in QUERIES]


def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    options = ["--index-dir", str(settings.index_dir), "--data-dir", str(settings.data_dir)]
    result = runner.invoke(app, [*options, "--corpus-dir", str(settings.corpus_dir), *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Settings, str, Path]:
    """A curated installation with one upload and one metadata change, and a backup of it taken by `kb backup`."""
    root = tmp_path_factory.mktemp("backup")
    settings, _ = curated_installation(root, embedder)
    curator = Curator(Searcher(settings, embedder), CurationDB(settings.data_dir))
    upload = curator.upload(CURATOR, "lotsen.md", b"# Stadtteillotsen\n\nLotsen begleiten Familien.", {})
    curator.update(CURATOR, upload.document.id, {"topics": ["Sprachbildung"]})
    code, output = _cli(settings, "backup", str(root / "backup"))
    assert code == 0, output
    assert "corpus not included" in output and "1 uploaded file(s)" in output
    return settings, upload.document.id, root / "backup"


def test_round_trip_keeps_search_curation_and_uploads(
    installation: tuple[Settings, str, Path], tmp_path: Path, embedder: Embedder
) -> None:
    settings, uploaded, folder = installation
    target = _elsewhere(tmp_path)
    code, output = _cli(target, "restore", str(folder))
    assert code == 0, output
    assert _ranking(target, embedder) == _ranking(settings, embedder)
    reader = open_storage(target).open_reader()
    assert reader.documents[uploaded].metadata.topics == ("Sprachbildung",)
    assert sorted(p.name for p in target.uploads_dir.iterdir()) == sorted(
        p.name for p in settings.uploads_dir.iterdir()
    )
    original, restored = CurationDB(settings.data_dir), CurationDB(target.data_dir)
    assert restored.keys() == original.keys()
    assert restored.audit() == original.audit() and len(restored.audit()) >= 2
    assert restored.overrides() == original.overrides()
    assert check_index(target).status == "OK"


def test_restore_refuses_a_damaged_backup(installation: tuple[Settings, str, Path], tmp_path: Path) -> None:
    _, _, folder = installation
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    manifest = json.loads((damaged / BACKUP_MANIFEST).read_text(encoding="utf-8"))
    victim = damaged / next(name for name in manifest["files"] if name.endswith("store.sqlite"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    target = _elsewhere(tmp_path / "target")
    code, output = _cli(target, "restore", str(damaged))
    assert code == BackupError.exit_code
    assert str(victim) in output and "checksum" in output and "another backup" in output
    assert not target.index_dir.exists() and not target.data_dir.exists()  # nothing was written

    (damaged / BACKUP_MANIFEST).unlink()
    code, output = _cli(target, "restore", str(damaged))
    assert code == BackupError.exit_code and "not a finished backup" in output


def test_restore_refuses_an_installation_without_force(
    installation: tuple[Settings, str, Path], tmp_path: Path, embedder: Embedder
) -> None:
    settings, uploaded, folder = installation
    target = _elsewhere(tmp_path)
    restore(target, folder)
    with pytest.raises(BackupError, match="--force"):
        restore(target, folder)
    code, output = _cli(target, "restore", str(folder))
    assert code == BackupError.exit_code and str(target.index_dir) in output
    report = restore(target, folder, force=True)
    assert report.index_version == json.loads((folder / BACKUP_MANIFEST).read_text())["index_version"]
    assert uploaded in open_storage(target).open_reader().documents
    assert _ranking(target, embedder) == _ranking(settings, embedder)
    with pytest.raises(BackupError, match="not empty"):
        backup(settings, folder)


def test_with_corpus_restores_the_corpus(installation: tuple[Settings, str, Path], tmp_path: Path) -> None:
    settings, _, _ = installation
    folder = tmp_path / "with-corpus"
    report = backup(settings, folder, with_corpus=True)
    expected = sorted(p.relative_to(settings.corpus_dir) for p in settings.corpus_dir.rglob("*") if p.is_file())
    assert report.corpus_files == len(expected) > 0
    target = _elsewhere(tmp_path / "restored")
    restored = restore(target, folder)
    assert restored.corpus_files == len(expected)
    files = sorted(p.relative_to(target.corpus_dir) for p in target.corpus_dir.rglob("*") if p.is_file())
    assert files == expected


WORDS = (
    "Ausbildung Beratung Bibliothek Chor Demokratie Ehrenamt Fahrrad Garten Gesundheit Handwerk Imkerei Jugend "
    "Kochkurs Kunst Lesepaten Mathematik Musik Nachbarschaft Sport Theater Umwelt Verein Wohnen Zirkus"
).split()


def _codeword(i: int) -> str:
    """A made-up word only document ``i`` contains, so that a search finds exactly it."""
    return "quorb" + "".join("klmnprstvz"[int(d)] for d in str(i))


def _paper(i: int) -> bytes:
    """A document of its own: different words in each (near-duplicates would be grouped into one result)."""
    rng = random.Random(i)
    sentences = (" ".join(rng.sample(WORDS, 8)) + "." for _ in range(30))
    return f"# Projektbericht {_codeword(i)}\n\nDas Projekt {_codeword(i)}: {' '.join(sentences)}".encode()


@pytest.mark.slow
def test_backup_during_uploads_restores_every_acknowledged_upload(tmp_path: Path, embedder: Embedder) -> None:
    settings, key = curated_installation(tmp_path / "live", embedder)
    env = {
        **os.environ,
        "KB_CORPUS_DIR": str(settings.corpus_dir),
        "KB_INDEX_DIR": str(settings.index_dir),
        "KB_DATA_DIR": str(settings.data_dir),
    }
    process, url = _start(env)
    acknowledged: list[tuple[float, int, str]] = []  # (when the 201 arrived, upload number, document id)
    stop = threading.Event()

    def upload() -> None:
        number = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            while not stop.is_set():
                response = client.post("/documents", files={"file": (f"paten-{number}.md", _paper(number))})
                if response.status_code == 201:
                    acknowledged.append((time.monotonic(), number, response.json()["id"]))
                number += 1

    thread = threading.Thread(target=upload)
    try:
        thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "kb", "backup", str(tmp_path / "backup")],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        time.sleep(1.0)  # uploads go on after the backup, too
    finally:
        stop.set()
        thread.join(timeout=60)
        process.terminate()
        process.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    before = [(number, doc_id) for at, number, doc_id in acknowledged if at < began]
    assert len(before) >= 2 and len(acknowledged) > len(before)

    target = _elsewhere(tmp_path / "restored").model_copy(update={"corpus_dir": settings.corpus_dir})
    restored = restore(target, tmp_path / "backup")
    documents = open_storage(target).open_reader().documents
    assert {doc_id for _, doc_id in before} <= set(documents)
    searcher = Searcher(target, embedder)
    for number, doc_id in before:
        hits = searcher.search(_codeword(number), 10).hits
        assert doc_id in [h.document.id for h in hits], _codeword(number)
    assert check_index(target).status == "OK"
    db = CurationDB(target.data_dir)
    records = {row[0] for row in db.query("SELECT doc_id FROM records WHERE uploaded = 1")}
    assert {doc_id for _, doc_id in before} <= records
    for _, doc_id in before:
        assert (target.uploads_dir / documents[doc_id].key.removeprefix("upload/")).is_file()

    # What arrived while the backup ran is reconciled by `kb ingest`, which encodes nothing the backup holds.
    report = Ingestor(target, embedder, curation=db).run()
    assert report.failed == [] and report.removed == [] and report.updated == []
    assert len(report.added) == restored.unindexed_uploads
    assert len(report.unchanged) == len(documents)


def test_a_version_pruned_during_the_copy_is_taken_again(
    installation: tuple[Settings, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, uploaded, _ = installation
    copy = settings.model_copy(update={"index_dir": tmp_path / "index"})
    shutil.copytree(settings.index_dir, copy.index_dir)
    index = IndexDir(copy.index_dir)
    live = index.current()
    assert live is not None
    newer = index.versions / f"v{index.next_version():06d}"
    shutil.copytree(live, newer)
    copy_file = shutil.copyfile
    pruned: list[Path] = []

    def copyfile_while_publishing(source: Path, target: Path) -> Path:
        if not pruned:  # a publish comes between reading CURRENT and copying: CURRENT moves on, the old goes
            write_atomic(index.current_file, newer.name + "\n")
            shutil.rmtree(live)
            pruned.append(live)
        return copy_file(source, target)

    monkeypatch.setattr("kb.backup.shutil.copyfile", copyfile_while_publishing)
    report = backup(copy, tmp_path / "backup")
    assert pruned and report.index_name == newer.name
    monkeypatch.undo()
    target = _elsewhere(tmp_path / "restored")
    restore(target, tmp_path / "backup")
    assert uploaded in open_storage(target).open_reader().documents
