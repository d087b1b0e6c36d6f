"""Preparing a folder once under a lock: the shared step of the bundled model and the ONNX export."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from filelock import FileLock

from kb import preparation
from kb.errors import ModelError
from kb.preparation import prepare_once


def test_a_ready_target_is_not_built_again(tmp_path: Path) -> None:
    target = tmp_path / "model"
    built: list[Path] = []

    def build() -> None:
        built.append(target)
        target.mkdir()

    for _ in range(3):
        assert prepare_once(target, build, ready=target.is_dir, busy="testing") == target
    assert built == [target]


def test_concurrent_callers_build_once(tmp_path: Path) -> None:
    target = tmp_path / "model"
    built: list[int] = []

    def build() -> None:
        built.append(1)
        target.mkdir()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: prepare_once(target, build, ready=target.is_dir, busy="x"), range(8)))
    assert results == [target] * 8 and built == [1]


def test_the_thorough_check_under_the_lock_decides(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    built: list[int] = []
    prepare_once(target, lambda: built.append(1), ready=lambda: False, ready_under_lock=target.is_dir, busy="x")
    assert built == []


def test_a_lock_held_too_long_names_what_the_other_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preparation, "LOCK_TIMEOUT_S", 0.1)
    target = tmp_path / "model"
    with FileLock(str(tmp_path / "model.lock")), ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(prepare_once, target, lambda: None, ready=lambda: False, busy="exporting it")
        with pytest.raises(ModelError, match="Another process has been exporting it for over"):
            waiting.result(timeout=30)
