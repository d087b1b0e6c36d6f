"""Delta segments of the local engine (:mod:`kb.storage.segments`): writes that change chunks of a large index
write a small delta beside the base, readers search both, and a merge folds them into a new base.

The corpus here is small, so the size from which an index gets segments is lowered to nothing; every engine
contract of ``tests/test_storage_contract.py`` is run once more on such an engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kb.storage import Storage, segments
from kb.storage.local import LocalStorage
from tests.test_storage_contract import *  # noqa: F403  (the contract, run again on an engine with segments)


@pytest.fixture(params=["segments", "segments-ann"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    monkeypatch.setattr(segments, "MIN_BASE_CHUNKS", 0)
    monkeypatch.setattr(segments, "MERGE_FRACTION", 1000.0)  # the deltas stay: every write after the first one
    yield LocalStorage(tmp_path / "index", ann_threshold=1 if request.param == "segments-ann" else 10_000)
