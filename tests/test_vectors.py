"""Index type by size: an inverted file above the threshold with high recall (HNSW files of an earlier release
refused with a rebuild message), filtered search exact, tombstones, memory-mapped loading."""

from __future__ import annotations

import gc
from pathlib import Path

import faiss
import numpy as np
import pytest

from kb.vectors import Vectors, ivf_lists


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


def _recall(vectors: Vectors, queries: np.ndarray) -> float:
    return float(
        np.mean(
            [
                len({i for i, _ in vectors.search(v, 10)} & {i for i, _ in vectors.search_exact(v, 10)}) / 10
                for v in queries
            ]
        )
    )


def test_ann_recall_at_10_against_exact(tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]) -> None:
    ids, x, q = data
    ann = _saved(tmp_path, ids, x, threshold=1000)
    assert ann.is_ann and len(ann) == len(ids)
    assert ann._ivf() is not None and int(ann._ivf().nlist) == ivf_lists(len(ids)) > 1
    exact = sorted(((float(x[i - 100] @ q[0]), i) for i in ids), reverse=True)[:10]
    assert [i for i, _ in ann.search_exact(q[0], 10)] == [i for _, i in exact]
    assert _recall(ann, q) >= 0.98


def test_filtered_search_is_exact_on_an_inverted_file(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    ids, x, q = data
    ann = _saved(tmp_path, ids, x, threshold=1000)
    allowed = [*ids[::37], 999_999]  # an unknown id is ignored
    expected = sorted(((float(x[i - 100] @ q[0]), i) for i in ids[::37]), reverse=True)[:5]
    got = ann.search(q[0], 5, allowed)
    assert [i for i, _ in got] == [i for _, i in expected]
    assert np.allclose([s for _, s in got], [s for s, _ in expected], atol=1e-5)
    assert ann.search(q[0], 10, allowed=ids) == ann.search_exact(q[0], 10)  # a filter allowing everything
    assert ann.search(q[0], 5, allowed=[999_999]) == []


def test_removing_from_an_ann_index_tombstones_without_a_rebuild(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    ids, x, q = data
    vectors = Vectors.load(_path_of(tmp_path, ids, x), mmap=False, ann_threshold=1000)
    assert vectors.is_ann
    best = [i for i, _ in vectors.search_exact(q[0], 3)]
    assert vectors.remove([*best, best[0], 999_999]) == 3  # repeated and unknown ids are not counted
    assert vectors.remove([best[0]]) == 0 and len(vectors) == len(ids) - 3
    assert vectors.is_ann  # still the same index: no rebuild for a removal
    assert not set(best) & {i for i, _ in vectors.search(q[0], 10)}
    gc.collect()  # the cached tombstone selector must outlive any temporary (faiss keeps a raw pointer)
    assert not set(best) & {i for i, _ in vectors.search(q[0], 10)}
    assert not set(best) & {i for i, _ in vectors.search_exact(q[0], 10)}
    assert not set(best) & {i for i, _ in vectors.search(q[0], 10, allowed=[*best, ids[5]])}
    assert set(best).isdisjoint(vectors.ids()) and len(vectors.ids()) == len(ids) - 3
    vectors.add([9_000_000], x[:1])  # adding to an index with tombstones extends it
    vectors.save(tmp_path / "again.faiss")
    again = Vectors.load(tmp_path / "again.faiss", mmap=True, ann_threshold=1000)
    assert again.is_ann and len(again) == len(ids) - 2
    assert not set(best) & {i for i, _ in again.search(q[0], 10)}
    assert 9_000_000 in {i for i, _ in again.search(x[0], 3)}
    assert _recall(again, q) >= 0.98


def test_many_tombstones_rebuild_the_index_on_save(
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


def test_an_ann_index_shrunk_below_the_threshold_is_saved_flat(
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
    for threshold in (1000, len(ids) + 1):  # inverted file and flat
        mapped = _saved(tmp_path, ids, x, threshold=threshold)
        assert mapped.search(q[0], 3)
        with pytest.raises(ValueError, match="memory-mapped"):
            mapped.add([9_999_999], x[:1])
        with pytest.raises(ValueError, match="memory-mapped"):
            mapped.remove([ids[0]])
        assert len(mapped) == len(ids)


def test_an_index_grown_fourfold_gets_new_lists_on_save(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    ids, x, q = data
    small = Vectors.new(x.shape[1], ann_threshold=1000)
    small.add(ids[:1200], x[:1200])
    small.save(tmp_path / "small.faiss")
    grown = Vectors.load(tmp_path / "small.faiss", ann_threshold=1000)
    lists = int(grown._ivf().nlist)
    grown.add(ids[1200:2000], x[1200:2000])
    grown.save(tmp_path / "grown.faiss")  # under fourfold: extended in place
    assert int(Vectors.load(tmp_path / "grown.faiss")._ivf().nlist) == lists
    grown.add(ids[2000:], x[2000:])
    grown.save(tmp_path / "grown.faiss")
    again = Vectors.load(tmp_path / "grown.faiss", ann_threshold=1000)
    assert int(again._ivf().nlist) == ivf_lists(len(ids)) > lists and len(again) == len(ids)
    assert _recall(again, q) >= 0.98


def test_an_hnsw_file_of_an_earlier_release_is_refused_with_a_rebuild_message(
    tmp_path: Path, data: tuple[list[int], np.ndarray, np.ndarray]
) -> None:
    from kb.errors import IndexUnavailableError

    ids, x, _ = data
    graph = faiss.IndexIDMap2(faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT))
    graph.add_with_ids(x[:200], np.asarray(ids[:200], dtype=np.int64))
    faiss.write_index(graph, str(tmp_path / "old.faiss"))
    for mmap in (False, True):
        with pytest.raises(IndexUnavailableError, match=r"HNSW graph.*kb ingest --rebuild"):
            Vectors.load(tmp_path / "old.faiss", mmap=mmap, ann_threshold=1000)
