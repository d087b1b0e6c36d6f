"""The ``local`` storage engine: immutable version folders under ``KB_INDEX_DIR``.

A version is a folder of files (layout and atomic switch: :mod:`kb.index`): the SQLite store of documents and
chunks (:mod:`kb.store`), the FAISS vectors (:mod:`kb.vectors`) and the BM25 arrays (:mod:`kb.lexical`). A reader
is a :class:`kb.index.LoadedIndex`; a writer (:class:`LocalWriter`) copies the live version's store and vectors
into a build folder, changes them there and publishes the folder as the next version. A writer that changes only
documents' metadata (:meth:`LocalWriter.set_metadata`) copies nothing: its version links the live version's data
files and adds the metadata overlay (:mod:`kb.index`); the copy is made only when a chunk is put or removed.

A writer that changes chunks of a large index (:data:`kb.storage.segments.MIN_BASE_CHUNKS`) writes a delta
segment instead (:mod:`kb.storage.segments`): the live version's base is linked, its delta copied (small), the
documents put go into the delta, the documents removed from the base become tombstones, and near-duplicate groups
are computed around the changed documents only (:func:`kb.duplicates.regroup`). Once the delta exceeds
:data:`kb.storage.segments.MERGE_FRACTION` of its base, the next such writer folds it into a new base (the copy
below) before making its own changes.

A full copy (a small index, a merge, a rebuild) keeps BM25 incremental: the writer tracks which German chunks it
removed and added, so that publishing analyses only those (:meth:`kb.lexical.LexicalIndex.updated`) unless so
much changed that a full build is due.
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
from kb.lexical import GERMAN, Analyzer, LexicalIndex, term_counts, vocabulary_counts
from kb.storage import segments
from kb.storage.segments import (
    BANDS_FILE,
    DELTA_FILES,
    DELTA_STORE,
    DELTA_VECTORS,
    FLAT_ONLY,
    Delta,
    LayeredStore,
    has_counts,
    has_delta,
)
from kb.store import DocumentLocation, KnownDocument, Store, StoredChunk, StoredDocument
from kb.vectors import ANN_THRESHOLD, Vectors

log = logging.getLogger(__name__)


class LocalStorage:
    """The index in the folder ``root`` (see :mod:`kb.index` for its layout)."""

    def __init__(self, root: Path, *, ann_threshold: int = ANN_THRESHOLD) -> None:
        self.root = root
        self.ann_threshold = ann_threshold
        self.dir = IndexDir(root)
        #: The reader opened last: a later version that shares its data files (or its base) takes its parts over.
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


@dataclass
class _DeltaWrite:
    """A writer's delta segment: store and vectors in the build folder, its arrays and lists, what it changed."""

    store: Store
    vectors: Vectors
    delta: Delta
    #: German chunks put by this writer, not analysed yet (id → passage text).
    added_texts: dict[int, str] = field(default_factory=dict)
    #: Documents put, replaced or removed by this writer (what near-duplicate groups are computed around).
    changed: set[str] = field(default_factory=set)


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
        ``vectors`` are None and ``store`` is the live version's base store (read-only): the build folder is made
        when a chunk is first put or removed (:meth:`_change`: a delta segment, or copies of the store and
        vectors); until then only metadata changed, and :meth:`publish` links the live version's files. The BM25
        term counts of ``previous`` let :meth:`finish_rows` analyse only the chunks that changed."""
        self.index_dir, self._base, self._previous = index_dir, base, previous
        self._build, self._vectors, self._ann_threshold = build, vectors, ann_threshold
        #: The live version's delta segment (None: it has none).
        self._prev_delta: Delta | None = None
        self.store: Store | LayeredStore = store
        if previous is not None and base is not None and has_delta(base.files):
            try:
                self._prev_delta = Delta.load(previous)
                delta_store = Store(previous / DELTA_STORE, readonly=True)
            except BaseException:
                store.close()
                raise
            removed = self._prev_delta.removed_documents
            delta_docs, delta_chunks = delta_store.counts()
            counts = (base.documents - delta_docs + len(removed),
                      base.chunks - delta_chunks + len(self._prev_delta.removed_chunks))  # fmt: skip
            self.store = LayeredStore(
                store, delta_store, set(removed), len(self._prev_delta.removed_chunks), counts
            )
        self._delta: _DeltaWrite | None = None
        self._read_vectors: dict[str, Vectors] = {}  # the live version's, loaded to reconstruct kept vectors
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
        """Whether a chunk was put or removed (the build folder holds a delta segment, or copies of the store and
        the vectors)."""
        return self._build is not None

    @property
    def build(self) -> Path:
        self._change()
        assert self._build is not None
        return self._build

    @property
    def vectors(self) -> Vectors:
        """The vectors of a full copy (the copy is made here if no delta segment is being written)."""
        self._change()
        if self._delta is not None:
            return self._delta.vectors
        assert self._vectors is not None
        return self._vectors

    def _layered(self) -> LayeredStore:
        assert isinstance(self.store, LayeredStore)
        return self.store

    def _change(self) -> None:
        """Before the first chunk is put or removed: a delta segment when the live version's base is large
        enough, has BM25 term counts and its delta is below the merge threshold; else a full copy (which folds
        any delta in: the merge)."""
        if self._build is not None:
            return
        if self._delta_allowed():
            self._start_delta()
        else:
            self._copy()

    def _delta_allowed(self) -> bool:
        assert self._previous is not None and self._base is not None
        view = self.store
        base_chunks = (
            view.base_counts[1] if isinstance(view, LayeredStore) and view.base_counts else self._base.chunks
        )
        if base_chunks < segments.MIN_BASE_CHUNKS or not has_counts(self._previous):
            return False
        if self._prev_delta is None:
            return True
        assert isinstance(self.store, LayeredStore) and self.store.delta is not None
        size = self.store.delta.counts()[1] + len(self._prev_delta.removed_chunks)
        return size <= segments.MERGE_FRACTION * base_chunks

    def _start_delta(self) -> None:
        """The build folder with the live version's base linked and its delta segment copied (or a new one)."""
        assert self._previous is not None and self._base is not None
        build = self.index_dir.start_build()
        previous, prev_delta = self._previous, self._prev_delta
        try:
            link_data(previous, build, (*DATA_FILES, BANDS_FILE))
            if isinstance(self.store, LayeredStore) and prev_delta is not None:
                assert self.store.delta is not None
                delta_store = self.store.delta.copy_to(build / DELTA_STORE)
                vectors = Vectors.load(previous / DELTA_VECTORS, ann_threshold=FLAT_ONLY)
                delta = Delta(prev_delta.lexical, prev_delta.removed_chunks, set(prev_delta.removed_documents))
                self.store.delta.close()
                view = self.store
            else:
                assert isinstance(self.store, Store)
                delta_store = Store(build / DELTA_STORE)
                delta_store.set_chunk_sequence(self.store.chunk_sequence())
                delta_store.set_near_duplicates(self.store.near_duplicate_groups())
                vectors = Vectors.new(self._base.dimension, FLAT_ONLY)
                delta = Delta()
                view = LayeredStore(self.store, None, set(), 0, (self._base.documents, self._base.chunks))
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        view.delta, view.removed = delta_store, delta.removed_documents
        delta_store.overlay = view.overlay
        self.store, self._build = view, build
        self._delta = _DeltaWrite(delta_store, vectors, delta)

    def _copy(self) -> None:
        """Copy the live version's store (with the metadata overlay folded in and any delta segment absorbed)
        and vectors into a build folder: what every change of chunks of a small index, and a merge, needs
        (checked in full first, as the version is read)."""
        if self._build is not None:
            return
        assert self._previous is not None and self._base is not None
        previous, prev_delta = self._previous, self._prev_delta
        verify_files(previous, self._base)
        build = self.index_dir.start_build()
        base_store = self.store.base if isinstance(self.store, LayeredStore) else self.store
        try:
            store = base_store.copy_to(build / STORE_FILE)
            if prev_delta is not None:
                store.absorb(previous / DELTA_STORE, prev_delta.removed_documents)
            store.overlay = dict(self.store.overlay)
            store.fold_overlay()
            vectors = Vectors.load(previous / VECTORS_FILE, ann_threshold=self._ann_threshold)
            if prev_delta is not None:
                vectors.remove(prev_delta.removed_chunks.tolist())
                ids, stored = Vectors.load(previous / DELTA_VECTORS).stored()
                vectors.add(ids.tolist(), stored)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        added = self._delta_texts(self.store) if isinstance(self.store, LayeredStore) else {}
        self.store.close()
        self.store, self._build, self._vectors = store, build, vectors
        self._track_lexical()
        if prev_delta is not None and self._lexical_changes is not None:
            # The merge, for BM25: the tombstoned base rows out, the delta's rows analysed in (their words are the
            # delta's vocabulary change plus those of the tombstoned rows).
            changes = self._lexical_changes
            removed_vocabulary = vocabulary_counts(added.values())
            removed_vocabulary.subtract(prev_delta.lexical.vocabulary)
            changes.removed = prev_delta.removed_chunks.tolist()
            changes.removed_vocabulary = Counter({w: n for w, n in removed_vocabulary.items() if n > 0})
            changes.added = added
            self._check_lexical_budget()

    @staticmethod
    def _delta_texts(view: LayeredStore) -> dict[int, str]:
        """The passage texts of the German chunks of a delta segment (what its BM25 rows were analysed from)."""
        assert view.delta is not None
        meta = {doc.id: doc.metadata for doc in view.delta.documents()}
        return {
            row.chunk_id: passage_text(meta[row.doc_id].title, row.heading, row.text)
            for row in view.delta.chunk_texts()
            if meta[row.doc_id].language in GERMAN
        }

    @property
    def base(self) -> Manifest | None:
        return self._base

    @property
    def dimension(self) -> int:
        if self._vectors is None and self._base:
            return self._base.dimension
        return self.vectors.dimension

    @property
    def vector_count(self) -> int:
        if self._delta is not None:
            return self.store.counts()[1]
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
        return np.stack([self._reconstruct(c) for c in chunk_ids])

    def _reconstruct(self, chunk_id: int) -> np.ndarray:
        """A stored vector: from the copy, the delta being written, or the live version's files."""
        if self._vectors is not None:
            return self._vectors.reconstruct(chunk_id)
        if self._delta is not None and chunk_id in set(self._delta.vectors.ids().tolist()):
            return self._delta.vectors.reconstruct(chunk_id)
        assert self._previous is not None
        if self._prev_delta is not None:
            delta = self._read_vectors.get(DELTA_VECTORS)
            if delta is None:
                delta = self._read_vectors[DELTA_VECTORS] = Vectors.load(self._previous / DELTA_VECTORS)
            if chunk_id in set(delta.ids().tolist()):
                return delta.reconstruct(chunk_id)
        base = self._read_vectors.get(VECTORS_FILE)
        if base is None:
            base = self._read_vectors[VECTORS_FILE] = Vectors.load(self._previous / VECTORS_FILE, mmap=True)
        return base.reconstruct(chunk_id)

    def set_metadata(self, doc_id: str, metadata: Metadata) -> None:
        """Replace a stored document's metadata, keeping its chunks, vectors and postings: the caller makes sure
        that what is searched did not change (title and language are part of the passages, :func:`passage_text`).
        Before any chunk changed, this copies nothing (see :meth:`publish`)."""
        if not self.store.has_document(doc_id):
            raise KeyError(doc_id)
        value = json.dumps(metadata.as_dict(), ensure_ascii=False)
        self._metadata_changed.add(doc_id)
        if self._delta is not None and self._delta.store.has_document(doc_id):
            self._delta.store.set_metadata(doc_id, value)  # a row of this writer's delta: changed in place
            self.store.overlay.pop(doc_id, None)
            return
        self.store.overlay[doc_id] = value
        if self._delta is not None:
            return  # a base document's metadata: the overlay, as before
        if self.copied:
            assert isinstance(self.store, Store)
            self.store.fold_overlay()
        else:
            self._changed_metadata = True

    def put_document(
        self, doc_id: str, key: str, content_hash: str, document: Document, chunks: list[Chunk]
    ) -> list[int]:
        self._change()
        self.remove_document(doc_id)
        german = document.metadata.language in GERMAN
        if self._delta is not None:
            ids = self._delta.store.put_document(doc_id, key, content_hash, document, chunks)
            self._delta.changed.add(doc_id)
            if german:
                self._delta.added_texts.update(
                    (i, passage_text(document.metadata.title, c.heading, c.text))
                    for i, c in zip(ids, chunks, strict=True)
                )
            return ids
        assert isinstance(self.store, Store)
        ids = self.store.put_document(doc_id, key, content_hash, document, chunks)
        changes = self._lexical_changes
        if changes is not None and german:
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
        self._change()
        self._rows_finished = False
        if self._delta is not None:
            self._remove_from_segments(doc_id)
            return
        assert isinstance(self.store, Store)
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

    def _remove_from_segments(self, doc_id: str) -> None:
        """Remove a document while writing a delta: from the delta's own rows, or as a tombstone of the base."""
        write, view = self._delta, self._layered()
        assert write is not None
        if write.store.has_document(doc_id):
            stored, chunks = write.store.document(doc_id), write.store.chunks_of(doc_id)
            if stored is not None and stored.metadata.language in GERMAN:
                analysed = []  # rows of the delta's BM25 (put by an earlier writer)
                for chunk in chunks:
                    if write.added_texts.pop(chunk.id, None) is None:
                        analysed.append(chunk)
                if analysed:
                    texts = [passage_text(stored.metadata.title, c.heading, c.text) for c in analysed]
                    lexical_rows = write.delta.lexical.without(c.id for c in analysed)
                    lexical_rows.vocabulary.subtract(vocabulary_counts(texts))
                    write.delta.lexical = lexical_rows
            write.vectors.remove(write.store.delete_document(doc_id))
        elif doc_id not in write.delta.removed_documents and view.base.has_document(doc_id):
            stored, chunks = view.base.document(doc_id), view.base.chunks_of(doc_id)
            if stored is not None and stored.metadata.language in GERMAN:
                texts = [passage_text(stored.metadata.title, c.heading, c.text) for c in chunks]
                write.delta.lexical.vocabulary.subtract(vocabulary_counts(texts))
            write.delta.removed_documents.add(doc_id)
            write.delta.removed_chunks = np.union1d(
                write.delta.removed_chunks, np.asarray([c.id for c in chunks], dtype=np.int64)
            )
            view.removed_chunks = len(write.delta.removed_chunks)
        else:
            return
        view.overlay.pop(doc_id, None)
        write.changed.add(doc_id)

    def _check_lexical_budget(self) -> None:
        changes = self._lexical_changes
        if changes is not None and len(changes.removed) + len(changes.added) > self._lexical_budget:
            self._lexical_changes = None  # too much changed: BM25 is built from scratch

    def finish_rows(self) -> None:
        if self._rows_finished or not self.copied:  # metadata alone changed nothing BM25 or near-duplicates read
            return
        if self._delta is not None:
            self._finish_delta()
        else:
            self._lexical().save(self.build)
            self._near_duplicates()
        self._rows_finished = True

    def _finish_delta(self) -> None:
        """The delta's BM25 rows of the chunks put (analysed with the version's vocabulary), the signatures of
        the documents put and the near-duplicate groups around the changed documents."""
        write, view = self._delta, self._layered()
        assert write is not None and self._previous is not None
        if write.added_texts:
            items = sorted(write.added_texts.items())
            write.added_texts = {}
            rows = write.delta.lexical
            rows.vocabulary.update(vocabulary_counts(text for _, text in items))
            analyzer = Analyzer(segments.base_lexicon(self._previous)[0].changed(rows.vocabulary))
            counts = term_counts(analyzer, [text for _, text in items], rows.terms)
            write.delta.lexical = rows.with_rows([i for i, _ in items], counts)
        texts: dict[str, list[str]] = defaultdict(list)
        for row in write.store.chunk_texts(unsigned_only=True):
            texts[row.doc_id].append(row.text)
        new: dict[str, bytes] = {}
        for doc_id, parts in texts.items():
            sig = duplicates.signature(parts)
            new[doc_id] = b"" if sig is None else sig.tobytes()
        write.store.put_signatures(new)
        added = {d: np.frombuffer(b, dtype=np.uint64) for d, b in new.items() if b and d in write.changed}
        bands_ids, bands = self._base_bands(view)

        def signature_of(ids: set[str]) -> dict[str, np.ndarray]:
            return {d: np.frombuffer(b, dtype=np.uint64) for d, b in view.signatures_of(ids).items() if b}

        def sharing_band(keys: np.ndarray) -> set[str]:
            """Documents of the version sharing a band key with a row of ``keys``: the base's (band keys by band,
            :func:`kb.storage.segments.read_bands`) and the delta's."""
            delta = {d: np.frombuffer(b, dtype=np.uint64) for d, b in write.store.signatures().items() if b}
            segments_ = [(bands_ids, bands)]
            if delta:
                segments_.append((np.asarray(list(delta)), duplicates.band_keys(np.stack(list(delta.values()))).T))
            found: set[str] = set()
            for ids, by_band in segments_:
                hits = np.zeros(len(ids), dtype=bool)
                for band in range(keys.shape[1]):
                    hits |= np.isin(by_band[band], keys[:, band])
                found.update(str(d) for d in ids[hits])
            return {d for d in found if view.has_document(d)}

        groups = duplicates.regroup(view.near_duplicate_groups(), set(write.changed), added, signature_of,
                                    sharing_band)  # fmt: skip
        write.store.set_near_duplicates(groups)

    def _base_bands(self, view: LayeredStore) -> tuple[np.ndarray, np.ndarray]:
        """The base's document ids and near-duplicate band keys (a row per band): from its bands file, or computed
        from its signatures once (a base written before bands were kept) and linked by later versions."""
        path = self.build / BANDS_FILE
        if path.exists():
            return segments.read_bands(path)
        signatures = {d: b for d, b in view.base.signatures().items() if b}
        return _write_bands(path, signatures)

    def _lexical(self) -> LexicalIndex:
        """BM25 over the chunks of German documents: the previous version's updated with the changed chunks where
        it can be, else built from all chunks."""
        assert isinstance(self.store, Store)
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
        """MinHash signatures for documents that have none yet, then the near-duplicate groups of all (and, for
        a base large enough to get delta segments, its band keys)."""
        assert isinstance(self.store, Store)
        known = self.store.signatures()
        texts: dict[str, list[str]] = defaultdict(list)
        for row in self.store.chunk_texts(unsigned_only=True):
            texts[row.doc_id].append(row.text)
        new = {}
        for doc_id, parts in texts.items():
            sig = duplicates.signature(parts)
            new[doc_id] = b"" if sig is None else sig.tobytes()
        self.store.put_signatures(new)
        signed = {d: b for d, b in {**known, **new}.items() if b}
        signatures = {d: np.frombuffer(b, dtype=np.uint64) for d, b in signed.items()}
        self.store.set_near_duplicates(duplicates.groups(signatures))
        bands = self.build / BANDS_FILE
        bands.unlink(missing_ok=True)
        if self.store.counts()[1] >= segments.MIN_BASE_CHUNKS:
            _write_bands(bands, signed)

    def publish(self, *, model: str, chunking: dict[str, Any], encoder: str | None) -> Manifest:
        """Write vectors and manifest and make the build folder the live version."""
        if not self.copied and self._base is not None:
            return self._publish_metadata()
        self.finish_rows()
        build = self.build
        checksums: dict[str, str] = {}
        if self._delta is not None:
            assert self._base is not None
            self._delta.vectors.save(build / DELTA_VECTORS)
            self._delta.delta.save(build)
            overlay = dict(self.store.overlay)
            if overlay:
                write_overlay(build, overlay)
            checksums = {n: v for n, v in self._base.checksums.items() if n in DATA_FILES}
            names: tuple[str, ...] = (*DATA_FILES, BANDS_FILE, *DELTA_FILES, OVERLAY_FILE)
            dimension = self._base.dimension
        else:
            self.vectors.save(build / VECTORS_FILE)
            names = (*DATA_FILES, BANDS_FILE)
            dimension = self.vectors.dimension
        documents, chunks = self.store.counts()
        self.store.close()
        version = self.index_dir.next_version()
        files = {name: (build / name).stat().st_size for name in names if (build / name).exists()}
        for name in files:  # large files are checked by size only at load, so they are not hashed here either
            if name in checksums or files[name] > CHECKSUM_MAX_BYTES:
                continue
            if self._base is not None and name in self._base.checksums and self._linked(name):
                checksums[name] = self._base.checksums[name]  # the live version's file, hashed when it was written
            else:
                checksums[name] = file_sha256(build / name)
        manifest = Manifest(
            version=version,
            model=model,
            dimension=dimension,
            chunking=chunking,
            documents=documents,
            chunks=chunks,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            files=files,
            checksums=checksums,
            encoder=encoder,
        )
        manifest.write(build)
        self.index_dir.publish(build, version)
        self._done = True
        return manifest

    def _linked(self, name: str) -> bool:
        """Whether the build folder's file ``name`` is a link to the live version's."""
        if self._previous is None or self._build is None:
            return False
        try:
            return (self._build / name).stat().st_ino == (self._previous / name).stat().st_ino
        except OSError:
            return False

    def _publish_metadata(self) -> Manifest:
        """The next version of a writer that changed only metadata: hard links to the live version's data files
        (a delta segment's too) and the metadata overlay; the manifest is the live one's with the overlay's size
        and checksum (what was chunked, encoded and counted did not change)."""
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


def _write_bands(path: Path, signatures: dict[str, bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Save the near-duplicate band keys of these signatures (:data:`kb.storage.segments.BANDS_FILE`)."""
    ids = np.asarray(list(signatures), dtype=str)
    if signatures:
        keys = duplicates.band_keys(np.stack([np.frombuffer(b, dtype=np.uint64) for b in signatures.values()]))
    else:
        keys = np.zeros((0, duplicates.NUM_PERM // duplicates.BAND_ROWS), dtype=np.uint64)
    with open(path, "wb") as handle:
        np.savez(handle, ids=ids, keys=keys)
    return ids, np.ascontiguousarray(keys.T)
