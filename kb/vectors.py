"""The FAISS index: inner product over L2-normalised vectors, with stable integer ids (chunk ids).

Index type by size (``KB_ANN_THRESHOLD``, default 50,000 chunks, see docs/performance.md):

- below it, exact flat search (``IndexFlatIP``), whose time per query grows linearly with the size;
- from it on, the saved file holds an inverted-file index (``IndexIVFFlat``: the vectors grouped into about
  4·√n lists around k-means centres, trained at save time); an unfiltered search scans the
  :data:`IVF_NPROBE` lists nearest to the query (Recall@10 against exact is measured by the benchmark), and
  scores are the exact inner products of the vectors in them. Later writes add to the lists in place; once the
  index has grown fourfold since its lists were made, the next save makes them anew.

Filtered searches (an id allow-list) are exact for every type: a flat index scans only the allowed ids
(``IDSelectorBatch``); an inverted file scans all its lists with a bitmap of the allowed ids.

An HNSW graph (``IndexHNSWFlat``), which an earlier release wrote for a short time under the same index format,
is refused with a message to rebuild the index (:data:`kb.index.FORMAT_VERSION` did not change with it, so the
file itself is what tells).

An ANN index does not delete: removed ids stay in it as tombstones, kept in a small file beside the index
(``<name>.deleted.npy``) and skipped by every search. Updating a document in a large index therefore costs no
rebuild; once tombstones are more than :data:`COMPACT_FRACTION` of the index, the next save rebuilds it from the
live vectors. Searching readers load the file memory-mapped (``mmap=True``), so opening a large index costs no
copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from kb.errors import IndexUnavailableError
from kb.files import write_atomic

#: Default size from which a saved index is an inverted file (``KB_ANN_THRESHOLD`` overrides it).
ANN_THRESHOLD = 50_000
#: Lists an unfiltered search scans: enough for Recall@10 against exact above the 0.98 target at 100k and 1M
#: chunks on the benchmark's synthetic vectors; fewer lists fall below it, more cost time for little recall
#: (docs/performance.md).
IVF_NPROBE = 64
#: k-means of the lists is trained on at most this many vectors per list (a sample; all of them if fewer).
IVF_TRAIN_PER_LIST = 64
#: Fewer vectors per list than this and k-means has too little to go on: a small index gets fewer lists.
IVF_MIN_PER_LIST = 39
#: Share of removed (tombstoned) vectors in an ANN index above which a save rebuilds it.
COMPACT_FRACTION = 0.1


class Vectors:
    """Vectors keyed by chunk id; exact below the ANN threshold, an inverted file above; filtered search always
    exact."""

    def __init__(
        self, index: faiss.IndexIDMap2, ann_threshold: int = ANN_THRESHOLD, deleted: np.ndarray | None = None
    ) -> None:
        """``ann_threshold``: the size from which :meth:`save` writes an inverted file (``KB_ANN_THRESHOLD``;
        writers pass the setting, readers never save)."""
        self._index = index
        self.ann_threshold = ann_threshold
        #: Sorted ids removed from an ANN index but still in it (tombstones); always empty for flat storage.
        self._deleted = np.zeros(0, dtype=np.int64) if deleted is None else np.asarray(deleted, dtype=np.int64)
        self._mapped = False  # a memory-mapped index cannot change (faiss would abort the process)
        self._skip: tuple[faiss.IDSelector, faiss.IDSelector] | None = None  # see _skip_deleted

    @classmethod
    def new(cls, dimension: int, ann_threshold: int = ANN_THRESHOLD) -> Vectors:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)), ann_threshold)

    @classmethod
    def load(cls, path: Path, *, mmap: bool = False, ann_threshold: int = ANN_THRESHOLD) -> Vectors:
        """Read an index file; ``mmap`` maps it instead, for searching only (adding or removing then raises).

        Mapped (``IO_FLAG_MMAP_IFC``), the vectors are file-backed pages: shared with the
        page cache and other processes, loaded as touched, and given back to the kernel under memory pressure.
        """
        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            raise IndexUnavailableError(
                f"The vector file {path} is unreadable ({str(exc).splitlines()[0][:160]}); "
                "rebuild the index with `kb ingest --rebuild`."
            ) from exc
        if not isinstance(index, faiss.IndexIDMap2):
            index = faiss.downcast_index(index)
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexUnavailableError(
                f"The vector file {path} is not an index of this program; run `kb ingest --rebuild`."
            )
        if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW):
            raise IndexUnavailableError(
                f"The vector file {path} holds an HNSW graph, which an earlier release wrote for a short time; "
                "this release searches flat and inverted-file indexes only: run `kb ingest --rebuild`."
            )
        deleted_path = deleted_file(path)
        try:
            deleted = np.load(deleted_path) if deleted_path.exists() else None  # absent in older indexes
        except (OSError, ValueError) as exc:
            raise IndexUnavailableError(
                f"The file {deleted_path} is unreadable ({exc}); rebuild the index with `kb ingest --rebuild`."
            ) from exc
        vectors = cls(index, ann_threshold, deleted)
        vectors._mapped = mmap
        return vectors

    def save(self, path: Path) -> None:
        """Write atomically, with the tombstone file beside it; from the ANN threshold on, as an inverted file
        (made here when the index is flat, holds too many tombstones or has grown fourfold
        since its lists were made; else extended in place)."""
        index, deleted = self._index, self._deleted
        too_many_deleted = len(deleted) > COMPACT_FRACTION * int(index.ntotal)
        ivf = self._ivf()
        outgrown = ivf is not None and ivf_lists(len(self)) >= 2 * int(ivf.nlist)
        if len(self) >= self.ann_threshold and (ivf is None or too_many_deleted or outgrown):
            index, deleted = self._as_ivf(), np.zeros(0, dtype=np.int64)
        elif len(self) < self.ann_threshold and self.is_ann:
            index, deleted = self._as_flat(), np.zeros(0, dtype=np.int64)
        write_atomic(path, lambda tmp: faiss.write_index(index, str(tmp)))
        write_atomic(deleted_file(path), lambda tmp: _save_array(tmp, deleted))

    def without(self, removed: np.ndarray) -> Vectors:
        """A read-only view of these vectors with the ids ``removed`` (all stored here) left out of every search,
        count and listing: a base segment searched beside its delta (:mod:`kb.storage.segments`). The index
        itself is shared, not copied."""
        view = Vectors(self._index, self.ann_threshold, np.union1d(self._deleted, removed))
        view._mapped = True
        return view

    def stored(self) -> tuple[np.ndarray, np.ndarray]:
        """The ids and vectors of every live vector, in storage order (a delta segment folded into its base); a
        copy, which outlives this object (a flat index's vectors are otherwise a view of its memory)."""
        ids, vectors = self._live_vectors()
        return ids, np.array(vectors, copy=True)

    @property
    def is_ann(self) -> bool:
        return self.kind != "flat"

    @property
    def kind(self) -> str:
        """``flat`` (exact) or ``ivf`` (an inverted file)."""
        return "ivf" if self._ivf() is not None else "flat"

    def _ivf(self) -> faiss.IndexIVF | None:
        inner = faiss.downcast_index(self._index.index)
        return inner if isinstance(inner, faiss.IndexIVF) else None

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._deleted)

    def ids(self) -> np.ndarray:
        """The ids of the stored vectors, in storage order (tombstones left out)."""
        ids = self._all_ids()
        return ids[self._live(ids)] if len(self._deleted) else ids

    def _check_writable(self) -> None:
        if self._mapped:
            raise ValueError(
                "This vector index is memory-mapped for searching; load it with mmap=False to change it."
            )

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        self._check_writable()
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )

    def remove(self, ids: list[int]) -> int:
        """Remove ``ids`` (unknown ones are ignored); from an ANN index as tombstones. Returns how many."""
        if not ids:
            return 0
        self._check_writable()
        wanted = np.asarray(ids, dtype=np.int64)
        if not self.is_ann:
            return int(self._index.remove_ids(wanted))  # type: ignore[arg-type]
        all_ids = self._all_ids()
        present = np.unique(wanted[np.isin(wanted, all_ids)])
        present = present[~np.isin(present, self._deleted)]
        self._deleted = np.union1d(self._deleted, present)
        self._skip = None
        return len(present)

    def search(
        self, query: np.ndarray, k: int, allowed: Sequence[int] | np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids with their cosine scores; ``allowed`` restricts the search exactly."""
        if len(self) == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        ivf = self._ivf()
        if allowed is not None and ivf is not None:
            bitmap = self._allowed_bitmap(np.asarray(allowed, dtype=np.int64))
            return self._scan_lists(ivf, q, k, bitmap) if bitmap is not None else []
        params: faiss.SearchParameters | None = None
        if allowed is not None and len(self._deleted):  # a flat view with ids left out (:meth:`without`)
            allowed = np.asarray(allowed, dtype=np.int64)
            allowed = allowed[~np.isin(allowed, self._deleted)]
            if not len(allowed):
                return []
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
            k = min(k, len(allowed))
        elif ivf is not None:
            params = faiss.SearchParametersIVF(  # type: ignore[call-arg]
                nprobe=min(IVF_NPROBE, int(ivf.nlist)), sel=self._skip_deleted()
            )
        elif len(self._deleted):
            params = faiss.SearchParameters(sel=self._skip_deleted())  # type: ignore[call-arg]
        return self._search(q, k, params)

    def _search(self, q: np.ndarray, k: int, params: faiss.SearchParameters | None) -> list[tuple[int, float]]:
        k = min(k, len(self))
        if k <= 0:
            return []
        with _one_thread():
            scores, ids = self._index.search(q, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _scan_lists(
        self, ivf: faiss.IndexIVF, q: np.ndarray, k: int, selector: faiss.IDSelector | None
    ) -> list[tuple[int, float]]:
        """Exact top ``k`` of the inverted file ``ivf``: every list scanned, only ids the selector passes."""
        params = faiss.SearchParametersIVF(nprobe=int(ivf.nlist), sel=selector)  # type: ignore[call-arg]
        return self._search(q, k, params)

    def _allowed_bitmap(self, allowed: np.ndarray) -> faiss.IDSelector | None:
        """A selector of the allowed ids without tombstones (None if none is left): a bitmap over the id range,
        one bit test per vector. The bitmap is kept alive on the selector (faiss holds a raw pointer)."""
        allowed = allowed[allowed >= 0]
        if len(self._deleted):
            allowed = allowed[~np.isin(allowed, self._deleted)]
        if not len(allowed):
            return None
        bits = np.zeros(int(allowed.max()) + 1, dtype=bool)
        bits[allowed] = True
        bitmap = np.packbits(bits, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        selector.bitmap_array = bitmap  # type: ignore[attr-defined]
        return selector

    def search_exact(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Exact top ``k`` whatever the index type (the benchmark's reference for ANN recall)."""
        ivf = self._ivf()
        if ivf is None:
            return self.search(query, k)
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        return self._scan_lists(ivf, q, k, self._skip_deleted())

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        return np.asarray(self._index.reconstruct(int(chunk_id)), dtype=np.float32)

    # ------------------------------------------------------------------------------------------ internals

    def _skip_deleted(self) -> faiss.IDSelector | None:
        """A selector that leaves out the tombstones, made once and kept (faiss holds only a raw pointer)."""
        if not len(self._deleted):
            return None
        if self._skip is None:
            inner = faiss.IDSelectorBatch(self._deleted)
            self._skip = (inner, faiss.IDSelectorNot(inner))
        return self._skip[1]

    def _all_ids(self) -> np.ndarray:
        """The ids of all stored vectors in storage order, tombstones included."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def _live(self, ids: np.ndarray) -> np.ndarray:
        """A mask over ``ids``: True where the id is not a tombstone."""
        return ~np.isin(ids, self._deleted)

    def _stored(self) -> np.ndarray:
        """All vectors of a flat index in storage order (a view of the index's memory, no copy)."""
        flat = faiss.downcast_index(self._index.index)
        n, d = int(flat.ntotal), int(flat.d)
        return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)  # type: ignore[attr-defined]

    def _live_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids = self._all_ids()
        if self._ivf() is not None:  # its vectors are in the lists: gathered in storage order
            stored = self._index.index.reconstruct_n(0, int(self._index.ntotal))
        else:
            stored = self._stored()
        if not len(self._deleted):
            return ids, np.ascontiguousarray(stored)
        live = self._live(ids)
        return ids[live], np.ascontiguousarray(stored[live])

    def _as_ivf(self) -> faiss.IndexIDMap2:
        """An inverted file of the live vectors, its lists trained on a sample of them."""
        ids, vectors = self._live_vectors()
        lists = ivf_lists(len(ids))
        quantizer = faiss.IndexFlatIP(self.dimension)
        ivf = faiss.IndexIVFFlat(quantizer, self.dimension, lists, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.min_points_per_centroid = 1  # a sample of IVF_TRAIN_PER_LIST per list, drawn here
        ivf.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
        sample = min(len(ids), lists * IVF_TRAIN_PER_LIST)
        ivf.train(vectors[np.sort(np.random.default_rng(0).choice(len(ids), sample, replace=False))])
        # Vectors reconstructed by position ("similar documents", rebuilds): a map from position to list entry.
        ivf.set_direct_map_type(faiss.DirectMap.Array)  # type: ignore[attr-defined]
        index = faiss.IndexIDMap2(ivf)  # faiss's Python wrappers keep the inner index and quantizer alive
        index.add_with_ids(vectors, ids)
        return index

    def _as_flat(self) -> faiss.IndexIDMap2:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        ids, vectors = self._live_vectors()
        index.add_with_ids(vectors, ids)
        return index


def ivf_lists(count: int) -> int:
    """Lists of an inverted file over ``count`` vectors: about 4·√n, with at least IVF_MIN_PER_LIST per list."""
    return max(1, min(int(4 * count**0.5), count // IVF_MIN_PER_LIST))


def deleted_file(path: Path) -> Path:
    """The tombstone file of the vector file ``path``."""
    return path.with_name(path.stem + ".deleted.npy")


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a handle: np.save would append ".npy" to a path
        np.save(handle, array)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run faiss calls of this thread on one OpenMP thread (the setting is per calling thread; restored after).

    One query gains nothing from a team of threads, and the team's idle threads spin after each search, taking the
    second core from the query encoder and made a whole search clearly slower (docs/performance.md).
    """
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
