"""The FAISS index: exact inner product over L2-normalised vectors, with stable integer ids (chunk ids)."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from kb.errors import IndexUnavailableError


class Vectors:
    """Vectors keyed by chunk id. Exact search; an optional id allow-list gives exact filtered search."""

    def __init__(self, index: faiss.IndexIDMap2) -> None:
        self._index = index

    @classmethod
    def new(cls, dimension: int) -> Vectors:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def load(cls, path: Path) -> Vectors:
        try:
            index = faiss.read_index(str(path))
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
        return cls(index)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )

    def remove(self, ids: list[int]) -> int:
        if not ids:
            return 0
        return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))  # type: ignore[arg-type]

    def search(self, query: np.ndarray, k: int, allowed: list[int] | None = None) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids with their cosine scores; ``allowed`` restricts the search exactly."""
        if len(self) == 0 or k <= 0 or (allowed is not None and not allowed):
            return []
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
            k = min(k, len(allowed))
        k = min(k, len(self))
        scores, ids = self._index.search(
            np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params
        )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        return np.asarray(self._index.reconstruct(int(chunk_id)), dtype=np.float32)
