"""The ``local`` storage engine: immutable version folders under ``KB_INDEX_DIR``.

A version is a folder of files (layout and atomic switch: :mod:`kb.index`): the SQLite store of documents and
chunks (:mod:`kb.store`), the FAISS vectors (:mod:`kb.vectors`) and the BM25 arrays (:mod:`kb.lexical`). A reader
is a :class:`kb.index.LoadedIndex`; a writer (:class:`LocalWriter`) copies the live version's store and vectors
into a build folder, changes them there and publishes the folder as the next version.

BM25 is kept incremental: the writer tracks which German chunks it removed and added, so that publishing
analyses only those (:meth:`kb.lexical.LexicalIndex.updated`) unless so much changed that a full build is due.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from kb import duplicates, lexical
from kb.chunking import passage_text
from kb.documents import Chunk, Document
from kb.errors import IndexUnavailableError
from kb.files import file_sha256
from kb.index import (
    CHECKSUM_MAX_BYTES,
    DATA_FILES,
    STORE_FILE,
    VECTORS_FILE,
    IndexDir,
    LoadedIndex,
    Manifest,
    StoredVersion,
    check_model,
    open_current,
)
from kb.lexical import GERMAN, LexicalIndex, vocabulary_counts
from kb.store import DocumentLocation, KnownDocument, Store, StoredChunk, StoredDocument
from kb.vectors import ANN_THRESHOLD, Vectors

log = logging.getLogger(__name__)


class LocalStorage:
    """The index in the folder ``root`` (see :mod:`kb.index` for its layout)."""

    def __init__(self, root: Path, *, ann_threshold: int = ANN_THRESHOLD) -> None:
        self.root = root
        self.ann_threshold = ann_threshold
        self.dir = IndexDir(root)

    def current_name(self) -> str | None:
        return self.dir.current_name()

    def open_reader(self) -> LoadedIndex:
        return open_current(self.root)

    def lock(self, wait: float = 0) -> FileLock:
        return self.dir.acquire(wait)

    def open_writer(self, *, model: str, dimension: Callable[[], int], rebuild: bool = False) -> LocalWriter:
        folder = None if rebuild else self.dir.current()
        if folder is None:
            build = self.dir.start_build()
            return LocalWriter(
                self.dir, build, Store(build / STORE_FILE), Vectors.new(dimension(), self.ann_threshold)
            )
        current = StoredVersion.open(folder)
        try:
            check_model(folder, current.manifest, model)
            build = self.dir.start_build()
            try:
                store = current.store.copy_to(build / STORE_FILE)
                vectors = Vectors.load(folder / VECTORS_FILE, ann_threshold=self.ann_threshold)
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
        finally:
            current.store.close()
        writer = LocalWriter(self.dir, build, store, vectors, current.manifest, previous=folder)
        expected = dimension()
        if vectors.dimension != expected:
            writer.discard()
            raise IndexUnavailableError(
                f"The index has vectors of dimension {vectors.dimension}, the model gives {expected}; "
                "rebuild it with `kb ingest --rebuild`."
            )
        return writer


@dataclass
class _LexicalChanges:
    """The BM25 rows a writer removed (ids, and the vocabulary of their texts) and added (id, passage text)."""

    removed: list[int] = field(default_factory=list)
    removed_vocabulary: Counter[str] = field(default_factory=Counter)
    added: dict[int, str] = field(default_factory=dict)


class LocalWriter:
    """The next version, written into a build folder beside the live versions."""

    def __init__(
        self,
        index_dir: IndexDir,
        build: Path,
        store: Store,
        vectors: Vectors,
        base: Manifest | None = None,
        previous: Path | None = None,
    ) -> None:
        """``previous``: the version folder ``store`` and ``vectors`` were copied from (None for a new index);
        its BM25 term counts let :meth:`finish_rows` analyse only the chunks that changed."""
        self.index_dir, self.build, self.store, self.vectors = index_dir, build, store, vectors
        self._base, self._previous = base, previous
        # What changed in BM25's rows since ``previous``; tracking stops (None) once a full build is due anyway.
        self._lexical_changes: _LexicalChanges | None = _LexicalChanges() if previous is not None else None
        self._lexical_budget = lexical.FULL_REBUILD_FRACTION * max(len(vectors), 1)
        self._rows_finished = False
        self._done = False

    @property
    def base(self) -> Manifest | None:
        return self._base

    @property
    def dimension(self) -> int:
        return self.vectors.dimension

    @property
    def vector_count(self) -> int:
        return len(self.vectors)

    def known(self) -> dict[str, KnownDocument]:
        return self.store.hashes()

    def locations(self) -> list[DocumentLocation]:
        return self.store.locations()

    def document(self, doc_id: str) -> StoredDocument | None:
        return self.store.document(doc_id)

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        return self.store.chunks_of(doc_id)

    def vectors_of(self, chunk_ids: list[int]) -> np.ndarray:
        if not chunk_ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.vectors.reconstruct(c) for c in chunk_ids])

    def put_document(
        self, doc_id: str, key: str, content_hash: str, document: Document, chunks: list[Chunk]
    ) -> list[int]:
        self.remove_document(doc_id)
        ids = self.store.put_document(doc_id, key, content_hash, document, chunks)
        changes = self._lexical_changes
        if changes is not None and document.metadata.language in GERMAN:
            changes.added.update(
                (i, passage_text(document.metadata.title, c.heading, c.text))
                for i, c in zip(ids, chunks, strict=True)
            )
            self._check_lexical_budget()
        return ids

    def add_vectors(self, chunk_ids: list[int], vectors: np.ndarray) -> None:
        self.vectors.add(chunk_ids, vectors)

    def remove_document(self, doc_id: str) -> None:
        self._rows_finished = False
        changes = self._lexical_changes
        if changes is not None:
            stored = self.store.document(doc_id)
            if stored is not None and stored.metadata.language in GERMAN:
                for chunk in self.store.chunks_of(doc_id):
                    if changes.added.pop(chunk.id, None) is not None:
                        continue  # added by this writer: never in the previous version's BM25
                    text = passage_text(stored.metadata.title, chunk.heading, chunk.text)
                    changes.removed.append(chunk.id)
                    changes.removed_vocabulary.update(vocabulary_counts([text]))
                self._check_lexical_budget()
        self.vectors.remove(self.store.delete_document(doc_id))

    def _check_lexical_budget(self) -> None:
        changes = self._lexical_changes
        if changes is not None and len(changes.removed) + len(changes.added) > self._lexical_budget:
            self._lexical_changes = None  # too much changed: BM25 is built from scratch

    def finish_rows(self) -> None:
        if self._rows_finished:
            return
        self._lexical().save(self.build)
        self._near_duplicates()
        self._rows_finished = True

    def _lexical(self) -> LexicalIndex:
        """BM25 over the chunks of German documents: the previous version's updated with the changed chunks where
        it can be, else built from all chunks."""
        changes = self._lexical_changes
        if changes is not None and self._previous is not None:
            updated = LexicalIndex.updated(
                self._previous, changes.removed, changes.removed_vocabulary, list(changes.added.items())
            )
            if updated is not None and len(updated.chunk_ids) == self.store.count_chunks(GERMAN):
                return updated
            if updated is not None:  # a change that bypassed put/remove: never publish a stale BM25
                log.warning("BM25 update did not match the store; building it from all chunks")
        documents = {doc.id: doc.metadata for doc in self.store.documents()}
        german = [
            (row.chunk_id, passage_text(documents[row.doc_id].title, row.heading, row.text))
            for row in self.store.chunk_texts()
            if documents[row.doc_id].language in GERMAN
        ]
        return LexicalIndex.build(german)

    def _near_duplicates(self) -> None:
        """MinHash signatures for documents that have none yet, then the near-duplicate groups of all."""
        known = self.store.signatures()
        texts: dict[str, list[str]] = defaultdict(list)
        for row in self.store.chunk_texts(unsigned_only=True):
            texts[row.doc_id].append(row.text)
        new = {}
        for doc_id, parts in texts.items():
            sig = duplicates.signature(parts)
            new[doc_id] = b"" if sig is None else sig.tobytes()
        self.store.put_signatures(new)
        signatures = {d: np.frombuffer(b, dtype=np.uint64) for d, b in {**known, **new}.items() if b}
        self.store.set_near_duplicates(duplicates.groups(signatures))

    def publish(self, *, model: str, chunking: dict[str, Any], encoder: str | None) -> Manifest:
        """Write vectors and manifest and make the build folder the live version."""
        self.finish_rows()
        self.vectors.save(self.build / VECTORS_FILE)
        documents, chunks = self.store.counts()
        self.store.close()
        version = self.index_dir.next_version()
        manifest = Manifest(
            version=version,
            model=model,
            dimension=self.vectors.dimension,
            chunking=chunking,
            documents=documents,
            chunks=chunks,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            files={name: (self.build / name).stat().st_size for name in DATA_FILES},
            checksums={  # large files are checked by size only at load, so they are not hashed here either
                name: file_sha256(self.build / name)
                for name in DATA_FILES
                if (self.build / name).stat().st_size <= CHECKSUM_MAX_BYTES
            },
            encoder=encoder,
        )
        manifest.write(self.build)
        self.index_dir.publish(self.build, version)
        self._done = True
        return manifest

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        self.store.close()
        shutil.rmtree(self.build, ignore_errors=True)
