"""The Searcher: validates a query, embeds it, searches the live index version and builds the hits.

The live version is re-read when ``kb ingest`` publishes a new one, so a running server picks it up without a
restart; requests already running finish on the version they started with.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from kb.embedder import Embedder
from kb.errors import NotFoundError, QueryError
from kb.index import IndexDir, LoadedIndex, open_current
from kb.settings import Settings
from kb.store import StoredChunk, StoredDocument

SNIPPET_WORDS = 40
#: Grouped search looks at this many chunks per wanted document first (more if too few documents come back).
GROUP_POOL_FACTOR = 8
_RECHECK_SECONDS = 0.5


@dataclass(frozen=True)
class Hit:
    score: float
    chunk_id: int
    document: StoredDocument
    chunk: StoredChunk
    snippet: str
    more_chunks: int = 0  # further chunks of the same document among the candidates (grouped results)


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    took_ms: float
    index_version: int


class IndexHandle:
    """Holds the live index version and swaps in a newer one when ``CURRENT`` changes."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self._dir = IndexDir(settings.index_dir)
        self._settings = settings
        self._embedder = embedder
        self._loaded: LoadedIndex | None = None
        self._loaded_name: str | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def get(self) -> LoadedIndex:
        now = time.monotonic()
        if self._loaded is not None and now - self._checked < _RECHECK_SECONDS:
            return self._loaded
        with self._lock:
            name = self._dir.current_name()
            if self._loaded is None or name != self._loaded_name:
                index = open_current(self._settings.index_dir)
                index.check_model(self._settings.model, self._embedder.dimension)
                self._loaded, self._loaded_name = index, index.folder.name
            self._checked = now
            return self._loaded


class Searcher:
    """Search and read access to the knowledge base, as the CLI and the API use it."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(settings)
        self.handle = IndexHandle(settings, self.embedder)

    @property
    def index(self) -> LoadedIndex:
        return self.handle.get()

    def validate(self, query: str, k: int) -> str:
        text = " ".join(query.split())
        if not text:
            raise QueryError("The query is empty: type a question or a few words.")
        if len(text) > self.settings.max_query_chars:
            raise QueryError(
                f"The query has {len(text)} characters; the limit is {self.settings.max_query_chars}. Shorten it."
            )
        if not 1 <= k <= self.settings.max_k:
            raise QueryError(f"k must be between 1 and {self.settings.max_k}, got {k}.")
        return text

    def search(self, query: str, k: int = 10, *, group: bool = True) -> SearchResult:
        """The ``k`` best results: one per document (its best chunk) by default, or raw chunks."""
        started = time.perf_counter()
        text = self.validate(query, k)
        _ = self.index  # a missing or incompatible index fails here, before the model is loaded
        vector = self.embedder.encode_queries([text])[0]
        return self.search_encoded(text, vector, k, group=group, started=started)

    def search_encoded(
        self, text: str, vector: np.ndarray, k: int, *, group: bool = True, started: float | None = None
    ) -> SearchResult:
        """Search with a query vector that is already encoded (evaluation encodes all queries in one batch)."""
        started = time.perf_counter() if started is None else started
        index = self.index
        ranked = self._ranked(index, vector, k, group)
        chunks = index.store.chunks([chunk_id for chunk_id, _, _ in ranked])
        documents: dict[str, StoredDocument | None] = {}
        hits = []
        for chunk_id, score, more in ranked:
            chunk = chunks.get(chunk_id)
            if chunk is None:
                continue
            if chunk.doc_id not in documents:
                documents[chunk.doc_id] = index.store.document(chunk.doc_id)
            document = documents[chunk.doc_id]
            if document is not None:
                hits.append(Hit(score, chunk_id, document, chunk, snippet(chunk.text, text), more))
        took = (time.perf_counter() - started) * 1000
        return SearchResult(query=text, hits=hits, took_ms=took, index_version=index.manifest.version)

    @staticmethod
    def _ranked(index: LoadedIndex, vector: np.ndarray, k: int, group: bool) -> list[tuple[int, float, int]]:
        """``(chunk id, score, further chunks of its document)``, best first."""
        if not group:
            return [(chunk_id, score, 0) for chunk_id, score in index.vectors.search(vector, k)]
        total = len(index.vectors)
        pool = min(total, max(k * GROUP_POOL_FACTOR, 50))
        while True:
            candidates = index.vectors.search(vector, pool)
            doc_of = index.store.doc_ids([chunk_id for chunk_id, _ in candidates])
            best: dict[str, tuple[int, float]] = {}
            counts: dict[str, int] = {}
            for chunk_id, score in candidates:
                doc = doc_of.get(chunk_id)
                if doc is None:
                    continue
                counts[doc] = counts.get(doc, 0) + 1
                best.setdefault(doc, (chunk_id, score))
            if len(best) >= k or pool >= total:
                break
            pool = min(total, pool * 4)
        return [(chunk_id, score, counts[doc] - 1) for doc, (chunk_id, score) in list(best.items())[:k]]

    def document(self, doc_id: str) -> StoredDocument:
        document = self.index.store.document(doc_id)
        if document is None:
            raise NotFoundError(f"There is no document with id {doc_id!r}; search again to get current ids.")
        return document


_WORD = re.compile(r"\w+")


def _stems(text: str) -> set[str]:
    return {w.lower()[:5] for w in _WORD.findall(text) if len(w) >= 4}


def snippet(text: str, query: str, size: int = SNIPPET_WORDS) -> str:
    """The window of ``size`` words of ``text`` that shares the most word stems with ``query``."""
    words = text.split()
    if len(words) <= size:
        return text
    wanted = _stems(query)
    hits = [1 if _stems(w) & wanted else 0 for w in words]
    best, best_score, window = 0, sum(hits[:size]), sum(hits[:size])
    for start in range(1, len(words) - size + 1):
        window += hits[start + size - 1] - hits[start - 1]
        if window > best_score:
            best, best_score = start, window
    if best_score == 0:
        best = 0
    prefix = "… " if best > 0 else ""
    suffix = " …" if best + size < len(words) else ""
    return prefix + " ".join(words[best : best + size]) + suffix
