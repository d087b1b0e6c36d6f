"""Index type by size: HNSW above the threshold with high recall, filtered search exact, memory-mapped loading."""

from __future__ import annotations

import gc
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


def test_removing_from_hnsw_tombstones_without_a_rebuild(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    ids, x, q = data
    vectors = Vectors.load(_path_of(tmp_path, ids, x), mmap=False, ann_threshold=1000)
    assert vectors.is_ann
    best = [i for i, _ in vectors.search_exact(q[0], 3)]
    assert vectors.remove([*best, best[0], 999_999]) == 3  # repeated and unknown ids are not counted
    assert vectors.remove([best[0]]) == 0 and len(vectors) == len(ids) - 3
    assert vectors.is_ann  # still the graph: no rebuild for a removal
    assert not set(best) & {i for i, _ in vectors.search(q[0], 10)}
    gc.collect()  # the cached tombstone selector must outlive any temporary (faiss keeps a raw pointer)
    assert not set(best) & {i for i, _ in vectors.search(q[0], 10)}
    assert not set(best) & {i for i, _ in vectors.search_exact(q[0], 10)}
    assert not set(best) & {i for i, _ in vectors.search(q[0], 10, allowed=[*best, ids[5]])}
    assert set(best).isdisjoint(vectors.ids()) and len(vectors.ids()) == len(ids) - 3
    vectors.add([9_000_000], x[:1])  # adding to a graph with tombstones extends it
    vectors.save(tmp_path / "again.faiss")
    again = Vectors.load(tmp_path / "again.faiss", mmap=True, ann_threshold=1000)
    assert again.is_ann and len(again) == len(ids) - 2
    assert not set(best) & {i for i, _ in again.search(q[0], 10)}
    assert 9_000_000 in {i for i, _ in again.search(x[0], 3)}
    recall = np.mean(
        [len({i for i, _ in again.search(v, 10)} & {i for i, _ in again.search_exact(v, 10)}) / 10 for v in q]
    )
    assert recall >= 0.98


def test_many_tombstones_rebuild_the_graph_on_save(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    ids, x, q = data
    vectors = Vectors.load(_path_of(tmp_path, ids, x), mmap=False, ann_threshold=1000)
    removed = ids[::5]  # 20 % > COMPACT_FRACTION
    assert vectors.remove(removed) == len(removed)
    vectors.save(tmp_path / "compact.faiss")
    compact = Vectors.load(tmp_path / "compact.faiss", ann_threshold=1000)
    assert compact.is_ann and len(compact) == len(ids) - len(removed)
    assert set(removed).isdisjoint(compact._all_ids())  # rebuilt from the live vectors only
    assert not set(removed) & {i for v in q for i, _ in compact.search(v, 10)}


def test_an_hnsw_index_shrunk_below_the_threshold_is_saved_flat(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    ids, x, _ = data
    vectors = Vectors.load(_path_of(tmp_path, ids, x), mmap=False, ann_threshold=1000)
    vectors.remove(ids[999:])
    vectors.save(tmp_path / "small.faiss")
    small = Vectors.load(tmp_path / "small.faiss", ann_threshold=1000)
    assert not small.is_ann and sorted(small.ids()) == ids[:999]


def _path_of(tmp_path: Path, ids: list[int], x: np.ndarray) -> Path:
    _saved(tmp_path, ids, x, threshold=1000)
    return tmp_path / "v.faiss"


def test_a_memory_mapped_index_refuses_changes_instead_of_crashing(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    ids, x, q = data
    for threshold in (1000, len(ids) + 1):  # HNSW and flat
        mapped = _saved(tmp_path, ids, x, threshold=threshold)
        assert mapped.search(q[0], 3)
        with pytest.raises(ValueError, match="memory-mapped"):
            mapped.add([9_999_999], x[:1])
        with pytest.raises(ValueError, match="memory-mapped"):
            mapped.remove([ids[0]])
        assert len(mapped) == len(ids)
