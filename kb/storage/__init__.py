"""Storage: what ingestion writes and search reads, behind one interface per side, whatever engine holds it.

::

    Storage          an engine: the live version's name, a reader of it, the one writer's lock, a writer
    StorageReader    one published version, never changed: documents, chunks, each document's text by page,
                     dense and lexical search, near-duplicates, the version's manifest
    StorageWriter    the next version, built from the live one: documents with their chunks, vectors and text by
                     page put and removed, then published atomically (readers see all of it or none of it)

Engines (``KB_STORAGE``, chosen by :func:`open_storage`):

- ``local`` (:mod:`kb.storage.local`): immutable version folders under ``KB_INDEX_DIR`` (SQLite
  :mod:`kb.store`, FAISS :mod:`kb.vectors`, BM25 arrays :mod:`kb.lexical`, manifests and the ``CURRENT``
  switch :mod:`kb.index`).
- ``postgres`` (:mod:`kb.storage.postgres`), whenever ``KB_DATABASE_URL`` is set: PostgreSQL with pgvector,
  versions as row ranges (:mod:`kb.storage.pg_schema`), shared by any number of search processes.

Another engine (a database server, say) is one more module with one more class for each protocol here, and one
more name in :data:`ENGINES`; ``tests/test_storage_contract.py`` is the suite every engine must pass. German
analysis (:class:`kb.lexical.Analyzer`) stays in Python for every engine: a reader hands out the analyzer built
from its version's vocabulary, and an engine stores only the postings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from kb.errors import ConfigError
from kb.store import ChunkText, DocumentLocation, KnownDocument, StoredChunk, StoredDocument

if TYPE_CHECKING:
    from kb.documents import Chunk, Document, DocumentText, Metadata
    from kb.index import Manifest
    from kb.lexical import Analyzer
    from kb.settings import Settings

__all__ = [
    "ENGINES",
    "ChunkText",
    "DenseSearch",
    "DocumentLocation",
    "KnownDocument",
    "LexicalSearch",
    "Storage",
    "StorageReader",
    "StorageWriter",
    "StoredChunk",
    "StoredDocument",
    "open_storage",
]

#: The values ``KB_STORAGE`` accepts.
ENGINES = ("local",)

#: Chunk ids with scores, best first (what both searches return).
Scored = list[tuple[int, float]]


class DenseSearch(Protocol):
    """The vectors of one version: nearest chunks by cosine similarity."""

    @property
    def dimension(self) -> int: ...

    def __len__(self) -> int: ...

    def search(self, query: np.ndarray, k: int, allowed: Sequence[int] | np.ndarray | None = None) -> Scored:
        """The ``k`` nearest chunk ids with their scores; ``allowed`` (chunk ids) restricts the search exactly."""
        ...

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        """The stored vector of one chunk."""
        ...


class LexicalSearch(Protocol):
    """BM25 over the German chunks of one version, with the analysis its terms were made with."""

    @property
    def analyzer(self) -> Analyzer: ...

    def use_synonyms(self, groups: list[list[str]]) -> None: ...

    def query_terms(self, query: str) -> dict[str, float]:
        """The query's index terms with weights (synonyms at a lower weight)."""
        ...

    def coverage(self, query: str) -> float:
        """Share of the query's terms the index knows: near 0 for queries in other languages."""
        ...

    def search(self, weights: dict[str, float], k: int, allowed: np.ndarray | None = None) -> Scored:
        """The ``k`` best chunk ids by BM25; ``allowed`` (chunk ids) restricts the search exactly."""
        ...


class StorageReader(Protocol):
    """One published version, opened for searching; it never changes (a newer version is another reader)."""

    @property
    def name(self) -> str:
        """What identifies this version among all of the engine's (cache keys; :meth:`Storage.current_name`)."""
        ...

    @property
    def manifest(self) -> Manifest:
        """Version number, model, dimension, chunking settings and counts of this version."""
        ...

    @property
    def documents(self) -> Mapping[str, StoredDocument]:
        """Every document of the version by id, ordered by key."""
        ...

    @property
    def doc_chunks(self) -> Mapping[str, np.ndarray]:
        """The chunk ids of each document, in reading order."""
        ...

    @property
    def hidden(self) -> frozenset[str]:
        """Documents readers do not see by default (drafts, archived)."""
        ...

    @property
    def near_duplicates(self) -> Mapping[str, tuple[str, ...]]:
        """``document id → ids of its near-duplicates`` (documents without any left out)."""
        ...

    @property
    def vectors(self) -> DenseSearch: ...

    @property
    def lexical(self) -> LexicalSearch: ...

    def near_duplicates_of(self, doc_id: str) -> list[StoredDocument]: ...

    def doc_of(self, chunk_ids: list[int]) -> dict[int, str]:
        """The document id of each known chunk id (unknown ids left out)."""
        ...

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        """The chunks with these ids (unknown ids left out)."""
        ...

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        """A document's chunks in reading order."""
        ...

    def document_text(self, doc_id: str) -> DocumentText | None:
        """What the loader read of a document: its text page by page and its headings (None for an unknown id;
        :class:`kb.errors.IndexUnavailableError` when the version was written without them)."""
        ...

    def check_model(self, model: str, dimension: int | None = None) -> None:
        """Fail with a clear message when the version was built with another model."""
        ...


class StorageWriter(Protocol):
    """The next version, being built from the version that was live when it was opened (or from nothing).

    Nothing of it is visible until :meth:`publish`; :meth:`discard` (or a crash) leaves the live version as it was.
    """

    @property
    def base(self) -> Manifest | None:
        """The manifest of the version this one continues (None for a new index)."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def vector_count(self) -> int:
        """How many vectors the version holds now."""
        ...

    def known(self) -> dict[str, KnownDocument]:
        """``key → (document id, content hash)`` of every document stored now; the hash is empty for a document
        stored without its text by page, so that ingestion reads its file again."""
        ...

    def locations(self) -> list[DocumentLocation]:
        """Every stored document's id, key and path, by key."""
        ...

    def document(self, doc_id: str) -> StoredDocument | None: ...

    def chunks_of(self, doc_id: str) -> list[StoredChunk]: ...

    def vectors_of(self, chunk_ids: list[int]) -> np.ndarray:
        """The stored vectors of these chunks, one row each (to keep them when only metadata changed)."""
        ...

    def put_document(
        self, doc_id: str, key: str, content_hash: str, document: Document, chunks: list[Chunk]
    ) -> list[int]:
        """Store a document, its chunks and its text by page (:meth:`kb.documents.Document.text_by_page`),
        replacing any stored under ``doc_id``, vectors included; returns the new chunk ids in order. Their vectors
        follow with :meth:`add_vectors`."""
        ...

    def add_vectors(self, chunk_ids: list[int], vectors: np.ndarray) -> None: ...

    def set_metadata(self, doc_id: str, metadata: Metadata) -> None:
        """Replace a stored document's metadata and nothing else: its chunks, vectors and lexical postings are
        kept, so the caller makes sure that its title and language (part of what is searched) did not change.
        ``KeyError`` for an unknown id. A write of metadata alone costs what it changes in every engine."""
        ...

    def remove_document(self, doc_id: str) -> None:
        """Remove a document with its chunks, vectors, text by page and lexical postings (an unknown id is
        ignored)."""
        ...

    def finish_rows(self) -> None:
        """Every document is put: build what derives from the rows (lexical postings, near-duplicate groups).

        Vectors may still be added afterwards, so this overlaps with the last encoding; :meth:`publish` calls it
        when the caller did not.
        """
        ...

    def publish(self, *, model: str, chunking: dict[str, Any], encoder: str | None) -> Manifest:
        """Make the version live, atomically; returns its manifest. The writer is finished afterwards."""
        ...

    def discard(self) -> None:
        """Abandon the version (nothing of it becomes visible); harmless after :meth:`publish`."""
        ...


class Storage(Protocol):
    """An engine's entry: which version is live, a reader of it, and the one writer."""

    def current_name(self) -> str | None:
        """The live version's :attr:`StorageReader.name` (None before the first publish); cheap, so a server
        can ask often whether a newer version was published."""
        ...

    def open_reader(self) -> StorageReader:
        """The live version (:class:`kb.errors.IndexMissingError` when there is none yet)."""
        ...

    def lock(self, wait: float = 0) -> AbstractContextManager[object]:
        """Hold the one writer's lock (:class:`kb.errors.IngestLockedError` after ``wait`` seconds)."""
        ...

    def open_writer(self, *, model: str, dimension: Callable[[], int], rebuild: bool = False) -> StorageWriter:
        """A writer of the next version, continuing the live one unless ``rebuild`` (the caller holds
        :meth:`lock`); fails when the live version was built with another model or dimension.

        ``dimension`` gives the model's vector dimension; it is asked only after the model's name was checked
        (asking may load the model).
        """
        ...


def open_storage(settings: Settings) -> Storage:
    """The engine ``KB_STORAGE`` names, for the index ``settings`` describe; PostgreSQL whenever
    ``KB_DATABASE_URL`` is set."""
    if settings.database_url:
        from kb.storage.postgres import PostgresStorage

        return PostgresStorage(settings.database_url, settings.database_read_url or None)
    if settings.storage == "local":
        from kb.storage.local import LocalStorage

        return LocalStorage(settings.index_dir, ann_threshold=settings.ann_threshold)
    raise ConfigError(
        f"KB_STORAGE is {settings.storage!r}, but this release knows only {', '.join(map(repr, ENGINES))}; "
        "set KB_STORAGE=local or leave it unset."
    )
