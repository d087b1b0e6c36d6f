"""A truncated or tampered index file is detected when the index is loaded, with a message that says what to do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.errors import IndexUnavailableError
from kb.index import DATA_FILES, MANIFEST_FILE, IndexDir, Manifest, open_current
from kb.settings import Settings


@pytest.fixture
def index_copy(small_settings: Settings, tmp_path: Path) -> Path:
    """A private copy of the small corpus's index, free to damage."""
    return Path(shutil.copytree(small_settings.index_dir, tmp_path / "index"))


def _live_file(root: Path, name: str) -> Path:
    folder = IndexDir(root).current()
    assert folder is not None
    return folder / name


def test_manifest_records_a_checksum_of_every_data_file(index_copy: Path) -> None:
    manifest = Manifest.read(_live_file(index_copy, MANIFEST_FILE).parent)
    assert set(manifest.checksums) == set(DATA_FILES)
    assert all(len(value) == 64 for value in manifest.checksums.values())


@pytest.mark.parametrize("name", DATA_FILES)
def test_truncated_data_file_is_detected_with_the_fix(index_copy: Path, name: str) -> None:
    path = _live_file(index_copy, name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexUnavailableError, match=r"is damaged.*kb ingest --rebuild") as caught:
        open_current(index_copy)
    assert name in str(caught.value)


@pytest.mark.parametrize("name", DATA_FILES)
def test_one_flipped_byte_in_a_data_file_is_detected_with_the_fix(index_copy: Path, name: str) -> None:
    path = _live_file(index_copy, name)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IndexUnavailableError, match=r"other content \(checksum\).*kb ingest --rebuild"):
        open_current(index_copy)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: _live_file(root, MANIFEST_FILE).write_text('{"version": 1, "mod'), "manifest .* damaged"),
        (lambda root: _live_file(root, MANIFEST_FILE).unlink(), "manifest .* missing"),
        (lambda root: (root / "CURRENT").write_text(""), "CURRENT is empty"),
        (lambda root: (root / "CURRENT").write_text("v9\x00\x01"), "does not exist"),
    ],
    ids=["manifest-truncated", "manifest-missing", "current-empty", "current-garbage"],
)
def test_damaged_manifest_or_current_is_detected_with_the_fix(index_copy: Path, damage, message: str) -> None:
    damage(index_copy)
    with pytest.raises(IndexUnavailableError, match=f"{message}.*kb ingest --rebuild"):
        open_current(index_copy)


def test_intact_copy_still_loads(index_copy: Path) -> None:
    assert open_current(index_copy).manifest.documents == 7
