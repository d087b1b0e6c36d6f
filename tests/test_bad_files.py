"""Hostile and broken files: each one ends with a clear per-file reason; the rest of the batch is ingested."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb.embedder import Embedder
from kb.ingest import EXIT_PARTIAL, Ingestor
from kb.sandbox import Limits, load_isolated
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import make_small_corpus
from tests.data.bad import make_bad_files as bad

pytestmark = pytest.mark.slow


def test_hostile_files_are_reported_one_by_one_and_the_rest_is_ingested(
    tmp_path: Path, embedder: Embedder
) -> None:
    corpus = make_small_corpus(tmp_path / "corpus")
    hostile = corpus / "kaputt"
    shutil.copytree(bad.FILES, hostile)
    bad.make_runtime_files(hostile, outside=tmp_path)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")

    report = Ingestor(settings, embedder).run()

    assert report.exit_code == EXIT_PARTIAL
    reasons = {failure.path: failure.reason for failure in report.failed}
    expected = {**bad.EXPECTED, **bad.RUNTIME_EXPECTED}
    for name, reason in expected.items():
        key = f"kaputt/{name}"
        if reason is None:
            assert key in report.added, (name, reasons.get(key))
        else:
            assert reason in reasons.get(key, ""), (name, reasons.get(key))
    assert len(report.failed) == sum(1 for r in expected.values() if r is not None)
    assert len(report.added) == 7 + sum(1 for r in expected.values() if r is None)
    searcher = Searcher(settings, embedder)
    for name, word in bad.MARKERS.items():
        paths = [hit.document.key for hit in searcher.search(word, 3, mode="lexical").hits]
        assert f"kaputt/{name}" in paths, (name, paths)
    top = searcher.search("Elterncafé mit Zuwanderungsgeschichte", 1).hits[0]
    assert top.document.metadata.title == "Elterncafé an der Grundschule"
    html = next(
        h for h in searcher.search("Stadtteilbibliothek", 5).hits if h.document.key.endswith("skripte.html")
    )
    assert "document.cookie" not in html.snippet and "alert" not in html.snippet
    assert _file_readers() == []  # the file reader was shut down


def test_a_file_that_takes_too_long_is_stopped_and_the_next_file_is_read(tmp_path: Path) -> None:
    slow = factories.write_pdf(tmp_path / "300-seiten.pdf", [["Bericht über das Quartier " * 4] * 40] * 300)
    good = tmp_path / "gut.md"
    good.write_text("# Gut\n\nDiese Datei wird nach dem Neustart des Lesers gelesen.\n", encoding="utf-8")

    limits = Limits(timeout_s=0.2, memory_mb=512, max_file_mb=100)
    results = list(load_isolated([("a", slow), ("b", good)], limits))

    assert results[0].document is None and "took longer than 0.2 s" in results[0].reason
    assert results[1].document is not None and results[1].document.metadata.title == "Gut"


def test_a_file_that_needs_too_much_memory_is_stopped_and_the_next_file_is_read(tmp_path: Path) -> None:
    greedy = tmp_path / "gierig.txt"
    greedy.write_bytes(b"wort " * 8_000_000)  # 40 MB of words: millions of string objects once split
    good = tmp_path / "gut.md"
    good.write_text("# Gut\n\nKlein und harmlos.\n", encoding="utf-8")

    results = list(load_isolated([(1, greedy), (2, good)], Limits(timeout_s=60, memory_mb=64, max_file_mb=100)))

    assert results[0].document is None and "more than 64 MB" in results[0].reason, results[0].reason
    assert results[1].document is not None


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "gross.md").write_text("# Groß\n\n" + "Inhalt " * 200_000, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", max_file_mb=1)

    report = Ingestor(settings, embedder).run()

    assert [(f.path, f.reason[:9]) for f in report.failed] == [("gross.md", "too large")]
    assert "KB_MAX_FILE_MB" in report.failed[0].reason


def test_files_are_still_read_when_the_worker_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb import sandbox

    def cannot_start(self: sandbox.LoaderWorker) -> None:
        raise sandbox.WorkerStartError("the file reader process did not start")

    monkeypatch.setattr(sandbox.LoaderWorker, "_start", cannot_start)
    good = tmp_path / "gut.md"
    good.write_text("# Gut\n\nKlein und harmlos.\n", encoding="utf-8")
    empty = tmp_path / "leer.md"
    empty.write_bytes(b"")

    results = list(load_isolated([(1, good), (2, empty)], Limits(timeout_s=5, memory_mb=64, max_file_mb=1)))

    assert results[0].document is not None and results[1].reason == "empty file (0 bytes)"


def test_the_file_reader_process_imports_only_the_loaders() -> None:
    """It is started for every ingestion and after every timeout: the model, FAISS and the rest stay out."""
    heavy = ["faiss", "kb.ingest", "kb.search", "onnxruntime", "torch", "transformers"]
    code = f"import sys; import kb.sandbox, kb.loaders; print(sorted(set({heavy!r}) & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_broken_office_files_are_reported_by_the_file_reader_and_the_good_ones_read(tmp_path: Path) -> None:
    """ODT and PPTX through the sandboxed reader: each broken one with its reason, each good one read."""
    from tests.test_office_formats import ODT_BODY, SLIDES, odt_bytes, pptx_bytes

    files = {
        "kein-zip.odt": (b"PK\x03\x04 kein Archiv", "not a readable OpenDocument text (.odt) file"),
        "ohne-inhalt.odt": (odt_bytes("", content=""), "no content.xml"),
        "gut.odt": (odt_bytes(ODT_BODY, title="Sprachcafé Essen"), None),
        "kaputt.pptx": (pptx_bytes(SLIDES)[:2000], "not a readable PowerPoint (.pptx) file"),
        "gut.pptx": (pptx_bytes(SLIDES, title="Willkommenslotsen Essen"), None),
    }
    items = []
    for name, (data, _) in files.items():
        (tmp_path / name).write_bytes(data)
        items.append((name, tmp_path / name))

    results = {r.item: r for r in load_isolated(items, Limits(timeout_s=60, memory_mb=512, max_file_mb=100))}

    for name, (_, reason) in files.items():
        if reason is None:
            document = results[name].document
            assert document is not None and document.word_count > 0, (name, results[name].reason)
        else:
            assert results[name].document is None and reason in results[name].reason, (name, results[name].reason)
    pptx = results["gut.pptx"].document
    assert pptx is not None and pptx.pages == len(SLIDES) and pptx.metadata.title == "Willkommenslotsen Essen"


def _file_readers() -> list[int]:
    """The process ids of this test process's file readers that still exist (its children only: other test
    runs or ingests on the same machine have readers of their own)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"from kb.sandbox import _serve" not in cmdline.read_bytes():
                continue
            stat = (cmdline.parent / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state; the name may hold spaces
        if parent == os.getpid():
            found.append(int(cmdline.parent.name))
    return found


def test_a_file_reader_that_dies_is_reported_with_its_exit_code_and_replaced(tmp_path: Path) -> None:
    from kb.sandbox import LoaderWorker

    good = tmp_path / "gut.md"
    good.write_text("# Gut\n\nKlein und harmlos.\n", encoding="utf-8")
    worker = LoaderWorker(Limits(timeout_s=30, memory_mb=256, max_file_mb=10))
    try:
        worker.send(good)
        assert worker.receive(time.monotonic())[0] is not None
        [reader] = _file_readers()
        os.kill(reader, signal.SIGSTOP)  # it cannot answer before it dies, as in a parser crash
        sent = worker.send(good)
        os.kill(reader, signal.SIGKILL)
        document, reason = worker.receive(sent)
        assert document is None and reason.startswith("stopped the file reader (exit code -9)"), reason

        worker.send(good)  # a fresh reader reads the next file
        assert worker.receive(time.monotonic())[0] is not None and worker.restarts == 1
        [reader] = _file_readers()
        os.kill(reader, signal.SIGKILL)  # dies while idle, between two files
        while Path(f"/proc/{reader}/stat").read_text().split()[2] != "Z":  # until it has exited (not reaped)
            time.sleep(0.01)
        worker.send(good)
        assert worker.receive(time.monotonic())[0] is not None and worker.restarts == 2
    finally:
        worker.close()
    assert _file_readers() == []
