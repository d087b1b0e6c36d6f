"""The ``local`` storage engine: immutable version folders under ``KB_INDEX_DIR``.

A version is a folder of files (layout and atomic switch: :mod:`kb.index`): the SQLite store of documents and
chunks (:mod:`kb.store`), the FAISS vectors (:mod:`kb.vectors`) and the BM25 arrays (:mod:`kb.lexical`). A reader
is a :class:`kb.index.LoadedIndex`; a writer (:class:`LocalWriter`) copies the live version's store and vectors
into a build folder, changes them there and publishes the folder as the next version. A writer that changes only
documents' metadata (:meth:`LocalWriter.set_metadata`) copies nothing: its version links the live version's data
files and adds the metadata overlay (:mod:`kb.index`); the copy is made only when a chunk is put or removed.

BM25 is kept incremental: the writer tracks which German chunks it removed and added, so that publishing
analyses only those (:meth:`kb.lexical.LexicalIndex.updated`) unless so much changed that a full build is due.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from kb import duplicates, lexical
from kb.chunking import passage_text
from kb.documents import Chunk, Document, Metadata
from kb.errors import IndexUnavailableError
from kb.files import file_sha256
from kb.index import (
    CHECKSUM_MAX_BYTES,
    DATA_FILES,
    OVERLAY_FILE,
    STORE_FILE,
    VECTORS_FILE,
    IndexDir,
    LoadedIndex,
    Manifest,
    StoredVersion,
    check_model,
    link_data,
    open_current,
    verify_files,
    write_overlay,
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
        #: The reader opened last: a later version that shares its data files takes its parts over.
        self._last: LoadedIndex | None = None

    def current_name(self) -> str | None:
        return self.dir.current_name()

    def open_reader(self) -> LoadedIndex:
        self._last = open_current(self.root, self._last)
        return self._last

    def lock(self, wait: float = 0) -> FileLock:
        return self.dir.acquire(wait)

    def open_writer(self, *, model: str, dimension: Callable[[], int], rebuild: bool = False) -> LocalWriter:
        folder = None if rebuild else self.dir.current()
        if folder is None:
            build = self.dir.start_build()
            return LocalWriter(
                self.dir, build, Store(build / STORE_FILE), Vectors.new(dimension(), self.ann_threshold)
            )
        current = StoredVersion.open(folder, checksums=False)
        try:
            check_model(folder, current.manifest, model)
            expected = dimension()
            if current.manifest.dimension != expected:
                raise IndexUnavailableError(
                    f"The index has vectors of dimension {current.manifest.dimension}, the model gives "
                    f"{expected}; rebuild it with `kb ingest --rebuild`."
                )
        except BaseException:
            current.store.close()
            raise
        return LocalWriter(self.dir, None, current.store, None, current.manifest, previous=folder,
                           ann_threshold=self.ann_threshold)  # fmt: skip


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
        build: Path | None,
        store: Store,
        vectors: Vectors | None,
        base: Manifest | None = None,
        previous: Path | None = None,
        ann_threshold: int = ANN_THRESHOLD,
    ) -> None:
        """``previous``: the live version this one continues (None for a new index). Continuing it, ``build`` and
        ``vectors`` are None and ``store`` is the live version's (read-only): the build folder with copies of its
        store and vectors is made when a chunk is first put or removed (:meth:`_copy`); until then only
        metadata changed, and :meth:`publish` links the live version's files. The BM25 term counts of
        ``previous`` let :meth:`finish_rows` analyse only the chunks that changed."""
        self.index_dir, self.store, self._base, self._previous = index_dir, store, base, previous
        self._build, self._vectors, self._ann_threshold = build, vectors, ann_threshold
        #: Metadata changed by this writer while nothing was copied (laid over the live version's store).
        self._changed_metadata = False
        self._metadata_changed: set[str] = set()
        self._lexical_changes: _LexicalChanges | None = None
        self._lexical_budget = 0.0
        self._rows_finished = False
        self._done = False
        if build is not None and previous is not None:  # a copy made by the caller
            self._track_lexical()

    def _track_lexical(self) -> None:
        # What changed in BM25's rows since ``previous``; tracking stops (None) once a full build is due anyway.
        self._lexical_changes = _LexicalChanges()
        self._lexical_budget = lexical.FULL_REBUILD_FRACTION * max(len(self.vectors), 1)

    @property
    def copied(self) -> bool:
        """Whether the build folder holds copies of the store and the vectors (a chunk was put or removed)."""
        return self._build is not None

    @property
    def build(self) -> Path:
        self._copy()
        assert self._build is not None
        return self._build

    @property
    def vectors(self) -> Vectors:
        self._copy()
        assert self._vectors is not None
        return self._vectors

    def _copy(self) -> None:
        """Copy the live version's store (with the metadata overlay folded in) and vectors into a build folder:
        what every change of chunks needs (checked in full first, as the version is read)."""
        if self._build is not None:
            return
        assert self._previous is not None and self._base is not None
        verify_files(self._previous, self._base)
        build = self.index_dir.start_build()
        try:
            store = self.store.copy_to(build / STORE_FILE)
            store.overlay = dict(self.store.overlay)
            store.fold_overlay()
            vectors = Vectors.load(self._previous / VECTORS_FILE, ann_threshold=self._ann_threshold)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        self.store.close()
        self.store, self._build, self._vectors = store, build, vectors
        self._track_lexical()

    @property
    def base(self) -> Manifest | None:
        return self._base

    @property
    def dimension(self) -> int:
        return self._base.dimension if self._vectors is None and self._base else self.vectors.dimension

    @property
    def vector_count(self) -> int:
        return self._base.chunks if self._vectors is None and self._base else len(self.vectors)

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

    def set_metadata(self, doc_id: str, metadata: Metadata) -> None:
        """Replace a stored document's metadata, keeping its chunks, vectors and postings: the caller makes sure
        that what is searched did not change (title and language are part of the passages, :func:`passage_text`).
        Before any chunk changed, this copies nothing (see :meth:`publish`)."""
        if not self.store.has_document(doc_id):
            raise KeyError(doc_id)
        self.store.overlay[doc_id] = json.dumps(metadata.as_dict(), ensure_ascii=False)
        self._metadata_changed.add(doc_id)
        if self.copied:
            self.store.fold_overlay()
        else:
            self._changed_metadata = True

    def put_document(
        self, doc_id: str, key: str, content_hash: str, document: Document, chunks: list[Chunk]
    ) -> list[int]:
        self._copy()
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
        if len(chunk_ids):
            self.vectors.add(chunk_ids, vectors)

    def remove_document(self, doc_id: str) -> None:
        if not self.copied and not self.store.has_document(doc_id):
            return  # nothing to remove: no copy needed
        self._copy()
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
        if self._rows_finished or not self.copied:  # metadata alone changed nothing BM25 or near-duplicates read
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
        if not self.copied and self._base is not None:
            return self._publish_metadata()
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

    def _publish_metadata(self) -> Manifest:
        """The next version of a writer that changed only metadata: hard links to the live version's data files
        and the metadata overlay; the manifest is the live one's with the overlay's size and checksum (what was
        chunked, encoded and counted did not change)."""
        assert self._previous is not None and self._base is not None
        base, overlay = self._base, dict(self.store.overlay)
        self.store.close()
        build = self.index_dir.start_build()
        self._build = build
        link_data(self._previous, build)
        files = {name: size for name, size in base.files.items() if name != OVERLAY_FILE}
        checksums = {name: value for name, value in base.checksums.items() if name != OVERLAY_FILE}
        if overlay:
            write_overlay(build, overlay)
            files[OVERLAY_FILE] = (build / OVERLAY_FILE).stat().st_size
            checksums[OVERLAY_FILE] = file_sha256(build / OVERLAY_FILE)
        version = self.index_dir.next_version()
        manifest = replace(
            base, version=version, built_at=datetime.now(UTC).isoformat(timespec="seconds"), files=files,
            checksums=checksums, metadata_changed=sorted(self._metadata_changed),
        )  # fmt: skip
        manifest.write(build)
        self.index_dir.publish(build, version)
        self._done = True
        return manifest

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        self.store.close()
        if self._build is not None:
            shutil.rmtree(self._build, ignore_errors=True)
