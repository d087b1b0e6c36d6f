"""Index type by size: HNSW above the threshold with high recall, filtered search exact, memory-mapped loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.vectors import Vectors


@pytest.fixture(scope="module")
def data() -> tuple[list[int], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(200, 64)).astype(np.float32)
    x = centres[rng.integers(0, 200, 5000)] + rng.normal(0, 0.3, (5000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:50] + rng.normal(0, 0.05, (50, 64)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return list(range(100, 5100)), x, q


def _saved(tmp_path: Path, ids: list[int], x: np.ndarray, threshold: int) -> Vectors:
    vectors = Vectors.new(x.shape[1], ann_threshold=threshold)
    vectors.add(ids, x)
    vectors.save(tmp_path / "v.faiss")
    return Vectors.load(tmp_path / "v.faiss", mmap=True)


def test_small_index_stays_exact(tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]) -> None:
    ids, x, _ = data
    assert not _saved(tmp_path, ids, x, threshold=len(ids) + 1).is_ann


def test_hnsw_recall_at_10_against_exact(tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]) -> None:
    ids, x, q = data
    ann = _saved(tmp_path, ids, x, threshold=1000)
    assert ann.is_ann and len(ann) == len(ids)
    recall = np.mean(
        [len({i for i, _ in ann.search(v, 10)} & {i for i, _ in ann.search_exact(v, 10)}) / 10 for v in q]
    )
    assert recall >= 0.98


def test_filtered_search_is_exact_on_hnsw(tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]) -> None:
    ids, x, q = data
    ann = _saved(tmp_path, ids, x, threshold=1000)
    allowed = [*ids[::37], 999_999]  # an unknown id is ignored
    expected = sorted(((float(x[i - 100] @ q[0]), i) for i in ids[::37]), reverse=True)[:5]
    got = ann.search(q[0], 5, allowed)
    assert [i for i, _ in got] == [i for _, i in expected]
    assert np.allclose([s for _, s in got], [s for s, _ in expected], atol=1e-5)


def test_removing_from_hnsw_keeps_the_rest_searchable(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    ids, x, q = data
    vectors = Vectors.load(_path_of(tmp_path, ids, x), mmap=False, ann_threshold=1000)
    assert vectors.is_ann
    best = vectors.search_exact(q[0], 1)[0][0]
    assert vectors.remove([best]) == 1 and len(vectors) == len(ids) - 1
    assert best not in {i for i, _ in vectors.search(q[0], 10)}
    vectors.save(tmp_path / "again.faiss")
    assert Vectors.load(tmp_path / "again.faiss").is_ann


def _path_of(tmp_path: Path, ids: list[int], x: np.ndarray) -> Path:
    _saved(tmp_path, ids, x, threshold=1000)
    return tmp_path / "v.faiss"
