"""What one caller may see of a version: a :class:`StorageReader` that holds only the visible documents.

This is the one place where document visibility (:class:`kb.visibility.Viewer`) is enforced for reading. Search,
similar documents, facet counts, document pages, texts, files and lists all read through a scoped reader, so a
document the caller may not see is, for them, a document that does not exist: it is never ranked (dense and
lexical search are restricted to the visible chunks), never counted (documents, chunk counts, the manifest's
totals), never named as a near-duplicate, and its chunks, text and id are unknown (so an API answers 404, never
403). Its :attr:`ScopedReader.name` carries the viewer's scope, so caches keyed by the reader's name are kept apart
per scope.

It wraps any engine's reader through the protocol alone, so a new engine needs nothing for visibility.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from kb.store import StoredChunk, StoredDocument
from kb.visibility import Viewer

if TYPE_CHECKING:
    from kb.documents import DocumentText
    from kb.index import Manifest
    from kb.lexical import Analyzer
    from kb.storage import DenseSearch, LexicalSearch, Scored, StorageReader


def scoped(reader: StorageReader, viewer: Viewer) -> StorageReader:
    """``reader`` as ``viewer`` may see it (curators see everything: the reader itself)."""
    if viewer.everything:
        return reader
    return ScopedReader(reader, viewer)


class ScopedReader:
    """The documents of ``reader`` that ``viewer`` may see, and nothing of the others."""

    def __init__(self, reader: StorageReader, viewer: Viewer) -> None:
        self.inner, self.viewer = reader, viewer

    @property
    def name(self) -> str:
        return f"{self.inner.name}@{self.viewer.scope}"

    @cached_property
    def documents(self) -> Mapping[str, StoredDocument]:
        return {d: doc for d, doc in self.inner.documents.items() if self.viewer.may_see(doc)}

    @cached_property
    def complete(self) -> bool:
        """Whether the viewer sees every document (then searches need no restriction)."""
        return len(self.documents) == len(self.inner.documents)

    @cached_property
    def doc_chunks(self) -> Mapping[str, np.ndarray]:
        visible = self.documents
        return {d: ids for d, ids in self.inner.doc_chunks.items() if d in visible}

    @cached_property
    def visible_chunks(self) -> np.ndarray | None:
        """The sorted ids of the visible chunks (None: all of them)."""
        if self.complete:
            return None
        ids = list(self.doc_chunks.values())
        return np.sort(np.concatenate(ids)) if ids else np.zeros(0, dtype=np.int64)

    @cached_property
    def manifest(self) -> Manifest:
        chunks = sum(len(ids) for ids in self.doc_chunks.values())
        return replace(self.inner.manifest, documents=len(self.documents), chunks=chunks)

    @cached_property
    def hidden(self) -> frozenset[str]:
        return self.inner.hidden.intersection(self.documents)

    @cached_property
    def near_duplicates(self) -> Mapping[str, tuple[str, ...]]:
        visible = self.documents
        kept = {
            d: tuple(o for o in others if o in visible)
            for d, others in self.inner.near_duplicates.items()
            if d in visible
        }
        return {d: others for d, others in kept.items() if others}

    @cached_property
    def vectors(self) -> DenseSearch:
        return _ScopedDense(self.inner.vectors, self.visible_chunks)

    @cached_property
    def lexical(self) -> LexicalSearch:
        return _ScopedLexical(self.inner.lexical, self.visible_chunks)

    def near_duplicates_of(self, doc_id: str) -> list[StoredDocument]:
        visible = self.documents
        return [visible[d] for d in self.near_duplicates.get(doc_id, ()) if d in visible]

    def doc_of(self, chunk_ids: list[int]) -> dict[int, str]:
        visible = self.documents
        return {c: d for c, d in self.inner.doc_of(chunk_ids).items() if d in visible}

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        visible = self.documents
        return {i: c for i, c in self.inner.chunks(ids).items() if c.doc_id in visible}

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        return self.inner.chunks_of(doc_id) if doc_id in self.documents else []

    def document_text(self, doc_id: str) -> DocumentText | None:
        return self.inner.document_text(doc_id) if doc_id in self.documents else None

    def check_model(self, model: str, dimension: int | None = None) -> None:
        self.inner.check_model(model, dimension)


def _restrict(allowed: Sequence[int] | np.ndarray | None, visible: np.ndarray | None) -> np.ndarray | None:
    """``allowed`` cut down to ``visible`` (None stands for all)."""
    if visible is None:
        return None if allowed is None else np.asarray(allowed, dtype=np.int64)
    if allowed is None:
        return visible
    return np.intersect1d(np.asarray(allowed, dtype=np.int64), visible, assume_unique=False)


class _ScopedDense:
    def __init__(self, inner: DenseSearch, visible: np.ndarray | None) -> None:
        self.inner, self.visible = inner, visible

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def __len__(self) -> int:
        return len(self.inner) if self.visible is None else len(self.visible)

    def search(self, query: np.ndarray, k: int, allowed: Sequence[int] | np.ndarray | None = None) -> Scored:
        return self.inner.search(query, k, _restrict(allowed, self.visible))

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        if self.visible is not None and not _member(self.visible, chunk_id):
            raise KeyError(f"no chunk {chunk_id}")
        return self.inner.reconstruct(chunk_id)


class _ScopedLexical:
    def __init__(self, inner: LexicalSearch, visible: np.ndarray | None) -> None:
        self.inner, self.visible = inner, visible

    @property
    def analyzer(self) -> Analyzer:
        return self.inner.analyzer

    def use_synonyms(self, groups: list[list[str]]) -> None:
        self.inner.use_synonyms(groups)

    def query_terms(self, query: str) -> dict[str, float]:
        return self.inner.query_terms(query)

    def coverage(self, query: str) -> float:
        """The share of the query's terms found in the visible chunks: the whole index's vocabulary would tell
        (through the lexical weight a search reports) whether an invisible document uses a word."""
        whole = self.inner.coverage(query)
        if self.visible is None or whole == 0.0:
            return whole
        terms = self.inner.analyzer.terms(query)
        present = {t: bool(self.inner.search({t: 1.0}, 1, self.visible)) for t in dict.fromkeys(terms)}
        return sum(present[t] for t in terms) / len(terms) if terms else 0.0

    def search(self, weights: dict[str, float], k: int, allowed: np.ndarray | None = None) -> Scored:
        restricted = _restrict(allowed, self.visible)
        if restricted is not None and not len(restricted):
            return []
        return self.inner.search(weights, k, restricted)


def _member(sorted_ids: np.ndarray, value: int) -> bool:
    pos = int(np.searchsorted(sorted_ids, value))
    return pos < len(sorted_ids) and int(sorted_ids[pos]) == value
