"""`kb doctor`: one line per check, OK or FAIL with the fix, and a non-zero exit code on any failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kb.cli import app
from kb.index import VECTORS_FILE, IndexDir
from kb.settings import Settings


def _doctor(index_dir: Path, corpus_dir: Path, *extra: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(
        app, ["--index-dir", str(index_dir), "--corpus-dir", str(corpus_dir), *extra, "doctor"]
    )
    return result.exit_code, result.stdout.strip().splitlines()


def test_doctor_passes_on_a_good_installation(small_settings: Settings) -> None:
    code, lines = _doctor(small_settings.index_dir, small_settings.corpus_dir)
    assert code == 0, lines
    by_name = {line.split(":")[0][5:]: line for line in lines[:-1]}
    assert set(by_name) >= {"versions", "model", "index", "index folder", "binding"}
    assert all(line.startswith("OK ") for line in by_name.values())
    assert "dimension 384" in by_name["model"] and "checksums match" in by_name["index"]
    assert "torch 2.13.0" in by_name["versions"] and lines[-1] == "Everything looks fine."


def test_doctor_reports_a_damaged_index_with_the_fix(small_settings: Settings, tmp_path: Path) -> None:
    index_dir = Path(shutil.copytree(small_settings.index_dir, tmp_path / "index"))
    folder = IndexDir(index_dir).current()
    assert folder is not None
    data = bytearray((folder / VECTORS_FILE).read_bytes())
    data[-5] ^= 0xFF
    (folder / VECTORS_FILE).write_bytes(bytes(data))

    code, lines = _doctor(index_dir, small_settings.corpus_dir)

    assert code == 8
    index_line = next(line for line in lines if line.startswith("FAIL index:"))
    assert VECTORS_FILE in index_line and "kb ingest --rebuild" in index_line
    assert lines[-1] == "1 problem(s) found."


def test_doctor_reports_a_missing_index_and_an_unprepared_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("KB_HOST", "0.0.0.0")
    code, lines = _doctor(tmp_path / "index", tmp_path)
    assert code == 8
    assert any(line.startswith("FAIL model:") and "run `kb prepare-model`" in line for line in lines)
    assert any(line.startswith("FAIL index:") and "run `kb ingest`" in line for line in lines)
    assert any(line.startswith("WARN binding:") and "KB_HOST=127.0.0.1" in line for line in lines)
