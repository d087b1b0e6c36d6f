"""The index on disk: immutable versions, a manifest per version, and an atomic switch between them.

::

    index/
      CURRENT                 name of the live version ("v000007"), replaced atomically
      versions/v000007/       manifest.json, store.sqlite, vectors.faiss, BM25 arrays, [metadata.json]
      versions/.build-…/      a version being written (removed if its writer died)
      .ingest.lock            held by the one running ingestion

A writer builds a complete new version beside the live one, fsyncs it, renames it into ``versions/`` and only
then replaces ``CURRENT``. A crash at any point leaves the previous version live and searchable.

A version whose only change is documents' metadata (a curator's recommendation, review status, description)
shares its data files with the version before it: they are hard links to the same immutable files, and the new
metadata is ``metadata.json`` (document id → metadata), laid over the store's rows. So such a write copies no
vectors, postings or chunks, and pruning an old version deletes only its names (a file lives while a kept version
links it). The next write that changes chunks keeps the overlay (a delta segment) or folds it into its copy of the
store (a small index, a merge).

A version written after a base is its base's files (hard links) plus one small delta segment: the documents put
since, tombstones of the base documents removed since (:mod:`kb.storage.segments`). A reader of such a version
searches both; a reader of an earlier version with the same base takes over the base's loaded parts.

These are the parts of the ``local`` storage engine; the rest of the program reaches them through
:mod:`kb.storage` (:class:`kb.storage.local.LocalStorage`), except for ``kb doctor``, which checks the files.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from kb.documents import DocumentText
from kb.errors import IndexMissingError, IndexUnavailableError, IngestLockedError
from kb.files import file_sha256, fsync_path, write_atomic
from kb.lexical import LEXICAL_MATRIX, LEXICAL_TERMS, LexicalIndex
from kb.storage.segments import (
    BANDS_FILE,
    DELTA_FILES,
    DELTA_STORE,
    DELTA_VECTORS,
    BaseCounts,
    Delta,
    LayeredLexical,
    LayeredStore,
    LayeredVectors,
    base_key,
    has_delta,
    remember_splitter,
)
from kb.store import Store, StoredChunk, StoredDocument
from kb.vectors import Vectors, deleted_file
from kb.visibility import visible_to

FORMAT_VERSION = 1
KEEP_VERSIONS = 3
STORE_FILE = "store.sqlite"
VECTORS_FILE = "vectors.faiss"
VECTORS_DELETED_FILE = deleted_file(Path(VECTORS_FILE)).name
MANIFEST_FILE = "manifest.json"
#: Metadata changed after the version's store was written (optional; see the module's docstring).
OVERLAY_FILE = "metadata.json"
#: The files of a version besides its manifest (sizes recorded in the manifest and checked at load).
DATA_FILES = (STORE_FILE, VECTORS_FILE, VECTORS_DELETED_FILE, LEXICAL_MATRIX, LEXICAL_TERMS)
#: Larger data files are checked by size only at load (hashing them would slow every start); see reliability.md.
CHECKSUM_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Manifest:
    """What a version was built with and what it holds; checked whenever the version is loaded."""

    version: int
    model: str
    dimension: int
    chunking: dict[str, Any]
    documents: int
    chunks: int
    built_at: str
    files: dict[str, int] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    checksums: dict[str, str] = field(default_factory=dict)  # sha256 of each data file
    #: KB_ENCODER of the build, where the writer records it. Informational: torch and onnx-int8 vectors agree to
    #: cosine >= 0.99 (docs/performance.md), so an index is searched with either without a rebuild.
    encoder: str | None = None
    #: The documents whose metadata alone changed since the version before (None: a version whose chunks
    #: changed, or an older manifest). A reader of the version before takes over everything else.
    metadata_changed: list[str] | None = None

    def write(self, folder: Path) -> None:
        write_atomic(folder / MANIFEST_FILE, json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            manifest = cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise IndexUnavailableError(
                f"The index manifest {path} is missing or damaged ({exc}); run `kb ingest --rebuild`."
            ) from exc
        if manifest.format_version != FORMAT_VERSION:
            raise IndexUnavailableError(
                f"The index in {folder} has format {manifest.format_version}, this program reads "
                f"{FORMAT_VERSION}; run `kb ingest --rebuild`."
            )
        return manifest


class IndexDir:
    """The folder that holds all versions of one index."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions = root / "versions"

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    def current_name(self) -> str | None:
        try:
            name = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not name:
            raise IndexUnavailableError(f"{self.current_file} is empty (damaged); run `kb ingest --rebuild`.")
        return name

    def current(self) -> Path | None:
        """The folder of the live version, or None when no index has been built yet."""
        name = self.current_name()
        if name is None:
            return None
        folder = self.versions / name
        if not folder.is_dir():
            raise IndexUnavailableError(
                f"{self.current_file} names version {name!r}, which does not exist; run `kb ingest --rebuild`."
            )
        return folder

    def lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / ".ingest.lock")

    def acquire(self, wait: float = 0) -> FileLock:
        """Take the writer lock or raise :class:`IngestLockedError`."""
        lock = self.lock()
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise IngestLockedError(
                f"Another ingestion is running on {self.root} (lock file {lock.lock_file}); "
                "wait until it has finished, then try again."
            ) from None
        return lock

    def start_build(self) -> Path:
        """A fresh folder for a new version; leftovers of writers that died are removed first."""
        self.versions.mkdir(parents=True, exist_ok=True)
        for stale in self.versions.glob(".build-*"):
            shutil.rmtree(stale, ignore_errors=True)
        folder = self.versions / f".build-{os.getpid()}-{time.time_ns()}"
        folder.mkdir()
        return folder

    def next_version(self) -> int:
        numbers = [int(p.name[1:]) for p in self.versions.glob("v*") if p.name[1:].isdigit()]
        return max(numbers, default=0) + 1

    def publish(self, build: Path, version: int) -> Path:
        """Make a finished build the live version (atomic), then prune old versions."""
        for name in (*DATA_FILES, BANDS_FILE, *DELTA_FILES, OVERLAY_FILE, MANIFEST_FILE):
            path = build / name
            if not path.exists() or path.stat().st_nlink > 1:
                continue  # no overlay; or a link to a published version's file, made durable when it was published
            fsync_path(path)
        final = self.versions / f"v{version:06d}"
        os.rename(build, final)
        fsync_path(self.versions)
        write_atomic(self.current_file, final.name + "\n")
        self._prune(keep=final.name)
        return final

    def _prune(self, keep: str) -> None:
        """Keep the newest versions (readers may still use them); remove the rest."""
        versions = sorted(p for p in self.versions.glob("v*") if p.name[1:].isdigit())
        for old in versions[:-KEEP_VERSIONS]:
            if old.name != keep:
                shutil.rmtree(old, ignore_errors=True)


@dataclass
class BaseParts:
    """What a reader loaded of a base (the files of a full version): shared by every later reader of a version on
    the same base, which then reads only its delta segment."""

    key: tuple[tuple[int, ...], ...]
    vectors: Vectors
    documents: dict[str, StoredDocument]
    doc_chunks: dict[str, np.ndarray]
    overlay: dict[str, str]
    counts: BaseCounts | None = None
    #: The base's chunk id → document map (:func:`chunk_map`), built once for every reader of the base.
    _map: tuple[np.ndarray, np.ndarray, list[str]] | None = None

    def chunk_map(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The base's chunk ids sorted, each one's owner index, and the owners (document ids)."""
        if self._map is None:
            self._map = chunk_map(self.doc_chunks)
        return self._map


def chunk_map(doc_chunks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A compact chunk id → document map: the chunk ids sorted, the index of each one's document in ``owners``,
    and ``owners`` (:func:`owners_of` looks chunk ids up in it)."""
    owners = list(doc_chunks)
    if not owners:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32), owners
    ids = np.concatenate([doc_chunks[d] for d in owners])
    own = np.concatenate([np.full(len(doc_chunks[d]), i, dtype=np.int32) for i, d in enumerate(owners)])
    order = np.argsort(ids, kind="stable")
    return ids[order], own[order], owners


@dataclass
class LoadedIndex:
    """One version, opened for reading; document metadata and the chunk ids of each document kept in memory."""

    folder: Path
    manifest: Manifest
    store: Store | LayeredStore
    vectors: Vectors | LayeredVectors
    lexical: LexicalIndex
    documents: dict[str, StoredDocument] = field(default_factory=dict)
    doc_chunks: dict[str, np.ndarray] = field(default_factory=dict)
    near_duplicates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _chunk_order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _chunk_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    _owners: list[str] = field(default_factory=list)
    hidden: frozenset[str] = frozenset()  # documents readers do not see (draft or archived)

    def __post_init__(self) -> None:
        """A compact chunk id → document map (sorted ids and owner indexes) for grouping results in memory."""
        self.hidden = frozenset(d for d, doc in self.documents.items() if not visible_to(doc))
        if self._owners:  # taken over from the reader of a version with the same chunks, or built from a base's
            return
        self._chunk_order, self._chunk_owner, self._owners = chunk_map(self.doc_chunks)

    @property
    def name(self) -> str:
        """The version's folder name ("v000007"), as ``CURRENT`` names it."""
        return self.folder.name

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        return self.store.chunks(ids)

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        return self.store.chunks_of(doc_id)

    def document_text(self, doc_id: str) -> DocumentText | None:
        return self.store.document_text(doc_id)

    def near_duplicates_of(self, doc_id: str) -> list[StoredDocument]:
        """The documents of this version with nearly the same text as ``doc_id``."""
        return [self.documents[d] for d in self.near_duplicates.get(doc_id, ()) if d in self.documents]

    def doc_of(self, chunk_ids: list[int]) -> dict[int, str]:
        """The document id of each known chunk id."""
        return owners_of(chunk_ids, self._chunk_order, self._chunk_owner, self._owners)

    overlay: dict[str, str] = field(default_factory=dict)  # metadata.json of the version (see the module)
    base: BaseParts | None = None  # what was loaded of the base, for the next reader on the same base

    @classmethod
    def open(cls, folder: Path, previous: LoadedIndex | None = None) -> LoadedIndex:
        """``previous``: the reader of an earlier version; when this version shares its data files (hard links,
        a metadata-only change), its vectors, BM25 and chunk maps are taken over instead of loaded again; when it
        shares the base only, the base's parts are taken over and only the delta segment is read."""
        manifest = Manifest.read(folder)
        if previous is not None and shares_data(previous.folder, folder):
            return cls._sharing(folder, manifest, previous)
        if has_delta(manifest.files):
            return cls._layered(folder, manifest, previous)
        verify_files(folder, manifest)
        overlay = read_overlay(folder)
        store = Store(folder / STORE_FILE, readonly=True, overlay=overlay)
        vectors = Vectors.load(folder / VECTORS_FILE, mmap=True)  # read-only: versions are immutable
        if vectors.dimension != manifest.dimension or len(vectors) != manifest.chunks:
            raise IndexUnavailableError(
                f"The index in {folder} does not match its manifest ({len(vectors)} vectors of dimension "
                f"{vectors.dimension}); run `kb ingest --rebuild`."
            )
        try:
            lexical = LexicalIndex.load(folder)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexUnavailableError(
                f"The lexical index in {folder} is unreadable ({exc}); run `kb ingest --rebuild`."
            ) from exc
        if lexical.analyzer.umlauts:  # the current analysis: what a writer's delta segment needs from this base
            remember_splitter(folder, lexical.analyzer.splitter)
        documents = {doc.id: doc for doc in store.documents()}
        doc_chunks = {
            doc_id: np.asarray(ids, dtype=np.int64) for doc_id, ids in store.chunk_ids_by_document().items()
        }
        near = store.near_duplicates()
        base = BaseParts(base_key(folder), vectors, documents, doc_chunks, overlay)
        return cls(folder, manifest, store, vectors, lexical, documents, doc_chunks, near, overlay=overlay,
                   base=base)  # fmt: skip

    @classmethod
    def _layered(cls, folder: Path, manifest: Manifest, previous: LoadedIndex | None) -> LoadedIndex:
        """A version of a base and a delta segment: the base's parts taken over from ``previous`` when it read
        the same base (else loaded), the delta read."""
        key = base_key(folder)
        base = previous.base if previous is not None and previous.base is not None else None
        overlay = read_overlay(folder) if (folder / OVERLAY_FILE).exists() else {}
        if base is None or base.key != key:
            verify_files(folder, manifest)
            base_store = Store(folder / STORE_FILE, readonly=True, overlay=dict(overlay))
            base = BaseParts(
                key,
                Vectors.load(folder / VECTORS_FILE, mmap=True),
                {doc.id: doc for doc in base_store.documents()},
                {d: np.asarray(ids, dtype=np.int64) for d, ids in base_store.chunk_ids_by_document().items()},
                dict(overlay),
            )
            base_store.close()
        else:
            verify_files(folder, manifest, only=(*DELTA_FILES, OVERLAY_FILE))
        try:
            if base.counts is None:
                base.counts = BaseCounts.load(folder)
            delta = Delta.load(folder)
            delta_vectors = Vectors.load(folder / DELTA_VECTORS)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexUnavailableError(
                f"The delta segment or the BM25 counts in {folder} are unreadable ({exc}); "
                "run `kb ingest --rebuild`."
            ) from exc
        store = LayeredStore(Store(folder / STORE_FILE, readonly=True, overlay=overlay),
                             Store(folder / DELTA_STORE, readonly=True), delta.removed_documents,
                             len(delta.removed_chunks))  # fmt: skip
        assert store.delta is not None
        removed = delta.removed_documents
        documents = {d: doc for d, doc in base.documents.items() if d not in removed}
        for doc_id in set(overlay) | set(base.overlay):
            if doc_id not in removed and overlay.get(doc_id) != base.overlay.get(doc_id):
                doc = store.base.document(doc_id)
                if doc is not None:
                    documents[doc_id] = doc
        # The base's documents are in the order of their keys (as a reader loaded whole has them); the delta's few
        # are merged in rather than sorting every document again (a merge is linear in the base, a sort is not).
        added = sorted(store.delta.documents(), key=attrgetter("key"))
        if added:
            merged = heapq.merge(documents.values(), added, key=attrgetter("key"))
            documents = {doc.id: doc for doc in merged}
        doc_chunks = {d: ids for d, ids in base.doc_chunks.items() if d not in removed}
        delta_chunks = {
            d: np.asarray(ids, dtype=np.int64) for d, ids in store.delta.chunk_ids_by_document().items()
        }
        doc_chunks.update(delta_chunks)
        chunk_order, chunk_owner, owners = _layered_chunk_map(base, removed, delta_chunks)
        vectors = LayeredVectors(base.vectors, delta_vectors, delta.removed_chunks)
        if vectors.dimension != manifest.dimension or len(vectors) != manifest.chunks:
            raise IndexUnavailableError(
                f"The index in {folder} does not match its manifest ({len(vectors)} vectors of dimension "
                f"{vectors.dimension}); run `kb ingest --rebuild`."
            )
        lexical = LayeredLexical(base.counts, delta.lexical, delta.removed_chunks)
        near = store.near_duplicates()
        return cls(folder, manifest, store, vectors, lexical, documents, doc_chunks, near, chunk_order,
                   chunk_owner, owners, overlay=overlay, base=base)  # fmt: skip

    @classmethod
    def _sharing(cls, folder: Path, manifest: Manifest, previous: LoadedIndex) -> LoadedIndex:
        """This version, whose data files are those of ``previous`` (verified when it was opened): only the
        metadata overlay is read, and only the documents whose overlay entry changed are read again."""
        verify_files(folder, manifest, only=(OVERLAY_FILE,))
        overlay = read_overlay(folder)
        store: Store | LayeredStore = Store(folder / STORE_FILE, readonly=True, overlay=overlay)
        if isinstance(previous.store, LayeredStore):
            assert isinstance(store, Store)
            store = LayeredStore(store, Store(folder / DELTA_STORE, readonly=True), previous.store.removed,
                                 previous.store.removed_chunks)  # fmt: skip
        documents = dict(previous.documents)
        for doc_id in set(overlay) | set(previous.overlay):
            if overlay.get(doc_id) != previous.overlay.get(doc_id):
                doc = store.document(doc_id)
                if doc is not None:
                    documents[doc_id] = doc
        return cls(folder, manifest, store, previous.vectors, previous.lexical, documents, previous.doc_chunks,
                   previous.near_duplicates, previous._chunk_order, previous._chunk_owner, previous._owners,
                   overlay=overlay, base=previous.base)  # fmt: skip

    def check_model(self, model: str, dimension: int | None = None) -> None:
        """Fail with a clear message when this index was built with another model than the configured one."""
        check_model(self.folder, self.manifest, model, dimension)


@dataclass
class StoredVersion:
    """A version opened for a writer: its manifest (checked against its files) and its store; nothing else is
    loaded (a writer reads the vectors and BM25 term counts it needs from ``folder`` itself)."""

    folder: Path
    manifest: Manifest
    store: Store

    @classmethod
    def open(cls, folder: Path, *, checksums: bool = True) -> StoredVersion:
        """``checksums``: False checks the files' sizes only (a writer that may change metadata alone reads no
        data file; one that copies them checks them in full first, :func:`verify_files`)."""
        manifest = Manifest.read(folder)
        verify_files(folder, manifest, checksums=checksums)
        return cls(folder, manifest, Store(folder / STORE_FILE, readonly=True, overlay=read_overlay(folder)))


def check_model(where: Path | str, manifest: Manifest, model: str, dimension: int | None = None) -> None:
    """Fail with a clear message when a version was built with another model than ``model``; ``where`` names the
    index: a version folder (its index folder is named), or a description such as "the database …"."""
    place = where.parent.parent if isinstance(where, Path) else where
    if manifest.model != model or (dimension is not None and manifest.dimension != dimension):
        raise IndexUnavailableError(
            f"The index in {place} was built with model {manifest.model!r} "
            f"(dimension {manifest.dimension}), but KB_MODEL is {model!r}"
            + (f" (dimension {dimension})" if dimension is not None else "")
            + "; rebuild it with `kb ingest --rebuild` or set KB_MODEL back."
        )


def verify_files(
    folder: Path, manifest: Manifest, *, checksums: bool = True, only: tuple[str, ...] | None = None
) -> None:
    """Every data file (or those named in ``only``) has the size, and (up to :data:`CHECKSUM_MAX_BYTES`, unless
    ``checksums`` is False) the sha256, the manifest records."""
    for name, size in manifest.files.items():
        if only is not None and name not in only:
            continue
        path = folder / name
        actual = path.stat().st_size if path.exists() else -1
        checksum = manifest.checksums.get(name) if checksums else None
        if actual == size and (checksum is None or size > CHECKSUM_MAX_BYTES or file_sha256(path) == checksum):
            continue
        found = "missing" if actual < 0 else f"{actual} bytes" if actual != size else "other content (checksum)"
        raise IndexUnavailableError(
            f"The index file {path} is damaged (expected {size} bytes with the recorded checksum, found {found}); "
            "run `kb ingest --rebuild` to build it again."
        )


def open_current(root: Path, previous: LoadedIndex | None = None) -> LoadedIndex:
    """The live version of the index in ``root``, or :class:`IndexMissingError` telling how to build one;
    ``previous``: see :meth:`LoadedIndex.open`."""
    folder = IndexDir(root).current()
    if folder is None:
        raise IndexMissingError(f"There is no index in {root} yet; run `kb ingest` to build it.")
    return LoadedIndex.open(folder, previous)


def read_overlay(folder: Path) -> dict[str, str]:
    """The version's metadata overlay (document id → metadata as JSON); empty when it has none."""
    path = folder / OVERLAY_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise IndexUnavailableError(
            f"The metadata file {path} is damaged ({exc}); run `kb ingest --rebuild`."
        ) from exc
    return {str(d): json.dumps(m, ensure_ascii=False) for d, m in raw.items()}


def write_overlay(folder: Path, overlay: dict[str, str]) -> None:
    write_atomic(
        folder / OVERLAY_FILE,
        json.dumps({d: json.loads(m) for d, m in sorted(overlay.items())}, ensure_ascii=False) + "\n",
    )


def shares_data(a: Path, b: Path) -> bool:
    """Whether two version folders hold the same data files, delta segment included (hard links of one file
    each; a file neither has is shared)."""
    for name in (*DATA_FILES, *DELTA_FILES):
        pa, pb = a / name, b / name
        if not pa.exists() and not pb.exists():
            continue
        try:
            sa, sb = pa.stat(), pb.stat()
        except OSError:
            return False
        if (sa.st_dev, sa.st_ino) != (sb.st_dev, sb.st_ino):
            return False
    return True


_ALL_DATA = (*DATA_FILES, BANDS_FILE, *DELTA_FILES)


def link_data(source: Path, target: Path, names: tuple[str, ...] = _ALL_DATA) -> None:
    """The data files of version ``source`` (those of ``names`` it has) into the build folder ``target``, as hard
    links (copies where the file system has none)."""
    for name in names:
        if not (source / name).exists():
            continue
        try:
            os.link(source / name, target / name)
        except OSError:
            shutil.copy2(source / name, target / name)


def _layered_chunk_map(
    base: BaseParts, removed: set[str], delta_chunks: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The chunk map of a base and a delta: the base's map (built once per base) without the removed documents'
    chunks, the delta's chunks inserted in order; the owners list only grows (a removed document's entry is never
    pointed at again)."""
    order, owner, base_owners = base.chunk_map()
    if removed:
        gone = np.fromiter((d in removed for d in base_owners), dtype=bool, count=len(base_owners))
        keep = ~gone[owner]
        order, owner = order[keep], owner[keep]
    owners = [*base_owners, *delta_chunks]
    if delta_chunks:
        ids = np.concatenate(list(delta_chunks.values()))
        own = np.concatenate(
            [np.full(len(c), len(base_owners) + i, dtype=np.int32) for i, c in enumerate(delta_chunks.values())]
        )
        by_id = np.argsort(ids, kind="stable")
        ids, own = ids[by_id], own[by_id]
        at = np.searchsorted(order, ids)
        order, owner = np.insert(order, at, ids), np.insert(owner, at, own)
    return order, owner, owners


def owners_of(chunk_ids: list[int], order: np.ndarray, owner: np.ndarray, owners: list[str]) -> dict[int, str]:
    """The document id of each known chunk id, by binary search in the sorted chunk ids ``order``, whose
    documents are ``owners[owner[i]]`` (one lookup table for every engine's reader)."""
    if not chunk_ids or not len(order):
        return {}
    wanted = np.asarray(chunk_ids, dtype=np.int64)
    pos = np.clip(np.searchsorted(order, wanted), 0, len(order) - 1)
    found = order[pos] == wanted
    return {int(c): owners[int(o)] for c, o, ok in zip(wanted, owner[pos], found, strict=True) if ok}
