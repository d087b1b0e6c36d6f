"""The ingestion pipeline: walk, load, chunk, embed, and write a new index version atomically.

Incremental: a content hash per file (file bytes plus its sidecar) decides what is added, updated, removed or
left unchanged. A file that cannot be read is reported with its reason and the rest is ingested; if an
earlier, good version of that file is in the index it stays there.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from kb.chunking import chunk_sections, passage_text
from kb.documents import Chunk, Document, Metadata, document_id, file_hash
from kb.embedder import Embedder
from kb.errors import LoaderError
from kb.files import write_atomic
from kb.loaders.metadata import build_metadata, sidecar_path
from kb.loaders.scans import page_list
from kb.sandbox import Limits, load_isolated, size_problem
from kb.settings import Settings
from kb.storage import KnownDocument, StorageWriter, open_storage

if TYPE_CHECKING:
    from kb.index import Manifest

log = logging.getLogger(__name__)

#: Bumped whenever loading or chunking changes in a way that requires re-chunking and re-embedding everything.
CHUNKER_VERSION = 2
#: At most this many encoder batches of chunks are collected before they are handed to the encoder: it sorts
#: them by length, so larger groups pad less (smaller groups left the pipeline well behind the raw encoder).
FLUSH_BATCHES = 16
#: While the encoder is idle, a group is handed over as soon as it holds this many batches, so that encoding
#: starts early and reading and chunking the following files overlap with it.
FIRST_BATCHES = 4
#: Exit code of `kb ingest` when some files failed and the rest was ingested.
EXIT_PARTIAL = 6
_IGNORED_NAMES = {"readme.md", "readme.txt", "readme", "license", "license.md", "licence.md"}
#: Key prefix of documents uploaded through the API (stored in ``KB_DATA_DIR/files``).
UPLOAD_PREFIX = "upload/"
#: Written by every ingestion next to CURRENT, for /metrics of a server running in another process.
LAST_INGEST_FILE = "last-ingest.json"


class UploadSource(Protocol):
    """Uploaded files kept where every machine reaches them (the PostgreSQL curation data): name → bytes."""

    def file(self, name: str) -> bytes | None: ...


class CuratedOverrides(Protocol):
    """What curators decided about files, asked for afresh by every ingestion while it holds the writer lock:
    metadata laid over a file's own (``key → fields``), the keys of purged files, never ingested again, and where
    uploads received by another machine can be read (None: uploads are this machine's own)."""

    def overrides(self) -> dict[str, dict[str, Any]]: ...

    def excluded(self) -> set[str]: ...

    def shared_files(self) -> UploadSource | None: ...


class NoCuration:
    """No curated metadata and no exclusions: the files as they are."""

    def overrides(self) -> dict[str, dict[str, Any]]:
        return {}

    def excluded(self) -> set[str]:
        return set()

    def shared_files(self) -> UploadSource | None:
        return None


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


@dataclass(frozen=True)
class OcrNote:
    """OCR in one ingested document: ``read`` of its ``pages`` were read by OCR; ``unread`` pages have no text
    layer and could not be read (``problem`` says why: Tesseract missing, say), so their text is not indexed."""

    path: str
    read: int
    pages: int
    unread: tuple[int, ...] = ()
    problem: str = ""
    blank: tuple[int, ...] = ()  # pages with nothing to read (blank, only a header or page number): not indexed

    @classmethod
    def of(cls, path: str, document: Document) -> OcrNote | None:
        read = len(document.ocr_pages)
        if not read and not document.needs_ocr and not document.blank_pages:
            return None
        return cls(path, read, document.pages or 1, document.needs_ocr, document.ocr_problem, document.blank_pages)


@dataclass
class IngestReport:
    """What one ingestion did; ``exit_code`` is 0, or :data:`EXIT_PARTIAL` when some files failed or some pages
    could not be read by OCR (those documents are ingested without them); ``ocr``: the documents OCR read or
    should have read."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # purged by a curator: not ingested again
    ocr: list[OcrNote] = field(default_factory=list)
    version: int | None = None
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed or any(note.unread for note in self.ocr) else 0


def chunking_settings(settings: Settings) -> dict[str, int]:
    """What the manifest records about chunking; a difference means every document is chunked again."""
    return {
        "chunk_words": settings.chunk_words,
        "chunk_overlap": settings.chunk_overlap,
        "chunker_version": CHUNKER_VERSION,
    }


def discover(paths: list[Path]) -> Iterator[Path]:
    """Files under ``paths`` in a stable order; hidden and ``_``-prefixed entries, READMEs and sidecars skipped."""
    for root in paths:
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).parts
            if any(part.startswith((".", "_")) for part in relative) or not path.is_file():
                continue
            if path.name.endswith(".meta.yaml") or path.name.lower() in _IGNORED_NAMES:
                continue
            yield path


def path_key(path: Path, corpus_dir: Path, uploads_dir: Path | None = None) -> str:
    """The identity of a file in the index: its path relative to the corpus, ``upload/<name>`` for an uploaded
    file, or else its absolute path."""
    resolved = path.resolve()
    if uploads_dir is not None and resolved.parent == uploads_dir.resolve():
        return UPLOAD_PREFIX + resolved.name
    try:
        return resolved.relative_to(corpus_dir.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def with_curated_metadata(document: Document, curated: dict[str, Any] | None) -> Document:
    """The document with the metadata curators set through the API or CLI laid over its own."""
    if not curated:
        return document
    merged = {**document.metadata.as_dict(), **curated}
    return replace(document, metadata=build_metadata(merged, document.path, document.metadata.title))


class _Pending(NamedTuple):
    """A document chunked and waiting to be handed to the encoder."""

    doc_id: str
    key: str
    content_hash: str
    document: Document
    chunks: list[Chunk]


class _Part(NamedTuple):
    """A document's stored chunk ids and its reused vectors (None: its rows of the group's encoding)."""

    chunk_ids: list[int]
    reused: np.ndarray | None


@dataclass
class _Encoding:
    """A group of documents whose rows are in the store and whose passages are being encoded on ``thread``;
    setting ``stop`` ends the encoding after the current batch."""

    doc_ids: set[str]
    parts: list[_Part]
    vectors: Future[np.ndarray]
    stop: threading.Event
    thread: threading.Thread


class IndexWriter:
    """Chunks and encodes documents into a version being built (a :class:`kb.storage.StorageWriter`).

    Chunks of many documents are encoded as one group, on a background thread: while one group is encoded, the
    caller goes on reading and chunking files and the group's rows are written to the store. At most one group
    is encoded at a time; its vectors are added before the next group is handed over, and by :meth:`publish`.
    """

    def __init__(self, settings: Settings, embedder: Embedder, storage: StorageWriter) -> None:
        self.settings, self.embedder, self.storage = settings, embedder, storage
        self._pending: list[_Pending] = []
        self._pending_chunks = 0
        self._encoding: _Encoding | None = None

    @classmethod
    def new(cls, settings: Settings, embedder: Embedder) -> IndexWriter:
        """A writer of a new, empty index in the configured storage (the caller holds the storage's lock)."""
        storage = open_storage(settings).open_writer(
            model=settings.model, dimension=lambda: embedder.dimension, rebuild=True
        )
        return cls(settings, embedder, storage)

    def add(self, doc_id: str, key: str, content_hash: str, document: Document) -> None:
        chunks = chunk_sections(document.sections, self.settings.chunk_words, self.settings.chunk_overlap)
        self._pending.append(_Pending(doc_id, key, content_hash, document, chunks))
        self._pending_chunks += len(chunks)
        batches = self._pending_chunks / self.settings.batch_size
        if batches >= FLUSH_BATCHES or (batches >= FIRST_BATCHES and self._encoder_idle()):
            self.flush()

    def _encoder_idle(self) -> bool:
        return self._encoding is None or self._encoding.vectors.done()

    def remove(self, doc_id: str) -> None:
        if self._encoding is not None and doc_id in self._encoding.doc_ids:
            self._collect()  # its vectors are added before its rows are removed
        self.storage.remove_document(doc_id)

    def flush(self) -> None:
        """Hand the collected documents to the encoder (after adding the vectors of the group before them) and
        write their rows to the store while they are encoded."""
        if not self._pending:
            return
        self._collect()
        pending, self._pending, self._pending_chunks = self._pending, [], 0
        reused = [self._reusable(p.doc_id, p.document, p.chunks) for p in pending]
        texts = [
            passage_text(p.document.metadata.title, c.heading, c.text)
            for p, kept in zip(pending, reused, strict=True)
            if kept is None
            for c in p.chunks
        ]
        stop = threading.Event()
        vectors, thread = self._encode_in_background(texts, stop)
        parts = [
            _Part(self.storage.put_document(p.doc_id, p.key, p.content_hash, p.document, p.chunks), kept)
            for p, kept in zip(pending, reused, strict=True)
        ]
        self._encoding = _Encoding({p.doc_id for p in pending}, parts, vectors, stop, thread)

    def _encode_in_background(
        self, texts: list[str], stop: threading.Event
    ) -> tuple[Future[np.ndarray], threading.Thread]:
        """The vectors of ``texts``, encoded on a new thread that ``stop`` ends after the batch it is on."""
        vectors: Future[np.ndarray] = Future()

        def encode() -> None:
            try:
                vectors.set_result(self.embedder.encode_documents(texts, self.settings.batch_size, stop=stop))
            except BaseException as exc:  # handed to the thread that collects the group
                vectors.set_exception(exc)

        thread = threading.Thread(target=encode, name="kb-encoder")
        thread.start()
        return vectors, thread

    def _collect(self) -> None:
        """Wait for the group being encoded, if any, and add its vectors."""
        encoding, self._encoding = self._encoding, None
        if encoding is None:
            return
        embeddings = encoding.vectors.result()
        offset = 0
        for part in encoding.parts:
            vectors = part.reused
            if vectors is None:
                vectors = embeddings[offset : offset + len(part.chunk_ids)]
                offset += len(part.chunk_ids)
            self.storage.add_vectors(part.chunk_ids, vectors)

    def close(self) -> None:
        """Stop encoding the group in flight, if any, after its current batch, wait for the encoder thread and
        discard the version unless it was published (after an error or Ctrl-C: nothing of it is published)."""
        encoding, self._encoding = self._encoding, None
        try:
            if encoding is not None:
                encoding.stop.set()
                encoding.thread.join()
        finally:
            self.storage.discard()

    def _reusable(self, doc_id: str, document: Document, chunks: list[Chunk]) -> np.ndarray | None:
        """The stored vectors of a document whose passages did not change (only its metadata did), or None."""
        stored = self.storage.document(doc_id)
        if stored is None or stored.metadata.title != document.metadata.title:
            return None
        old = self.storage.chunks_of(doc_id)
        same = [(c.heading, c.page, c.page_end, c.text) for c in old] == [
            (c.heading, c.page, c.page_end, c.text) for c in chunks
        ]
        if not same or not old:
            return None
        return self.storage.vectors_of([c.id for c in old])

    def publish(self) -> Manifest:
        """Encode what is left, make the version live and return its manifest."""
        self.flush()  # every row is stored now: BM25 and near-duplicates overlap with the last encoding
        self.storage.finish_rows()
        self._collect()
        return self.storage.publish(
            model=self.settings.model, chunking=chunking_settings(self.settings), encoder=self.settings.encoder
        )


class Ingestor:
    """Runs one ingestion into ``settings.index_dir`` (holding the writer lock throughout)."""

    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, curation: CuratedOverrides | None = None
    ) -> None:
        """``curation``: the curated metadata and exclusions to apply (default: none; the CLI and the Curator
        pass the curation database of ``KB_DATA_DIR``)."""
        self.settings = settings
        self.curation: CuratedOverrides = NoCuration() if curation is None else curation
        self.embedder = embedder or Embedder(settings)
        self.storage = open_storage(settings)
        self.limits = Limits(settings.file_timeout_s, settings.file_memory_mb, settings.max_file_mb)
        self._curated: dict[str, dict[str, Any]] = {}
        self._excluded: set[str] = set()

    def default_roots(self) -> list[Path]:
        """The corpus folder, and the folder of uploaded files once there is one."""
        uploads = self.settings.uploads_dir
        return [self.settings.corpus_dir] + ([uploads] if uploads.is_dir() else [])

    def run(
        self,
        paths: list[Path] | None = None,
        *,
        rebuild: bool = False,
        on_file: Callable[[str], None] | None = None,
        purge: Sequence[str] = (),
        wait: float = 0.0,
    ) -> IngestReport:
        """Ingest ``paths`` (default: :meth:`default_roots`) and remove the documents keyed ``purge``.

        ``wait`` is how long to wait for another running ingestion before :class:`IngestLockedError`.
        """
        started = time.monotonic()
        roots = [p.resolve() for p in (self.default_roots() if paths is None else paths)]
        for root in roots:
            if not root.exists():
                raise LoaderError(str(root), "does not exist (check the path or KB_CORPUS_DIR)")
        if not rebuild:  # a PostgreSQL index: shared with workers on other machines (kb/ingest_workers.py)
            from kb.ingest_workers import shared_ingestion  # it imports this module

            if (shared := shared_ingestion(self)) is not None:
                report = shared.run(roots, on_file, purge, wait)
                report.seconds = time.monotonic() - started
                self._record(report)
                return report
        with self.storage.lock(wait):
            report = self._run_locked(roots, rebuild, on_file, purge)
            report.seconds = time.monotonic() - started
            self._record(report)
        return report

    def update_metadata(self, doc_id: str, metadata: Metadata, *, wait: float = 0.0) -> Manifest | None:
        """Publish a version in which only ``doc_id``'s metadata changed, without reading its file or touching
        its chunks, vectors and postings (a curator's change); None, publishing nothing, when the document is
        not stored or its title or language changed (both are part of what is searched: ingest the file).

        The stored content hash is kept, so the next ingestion of the file, which hashes the curated metadata
        too, reads it once more and stores the hash that covers the change.
        """
        with self.storage.lock(wait):
            writer = self.storage.open_writer(model=self.settings.model, dimension=lambda: self.embedder.dimension)
            try:
                stored = writer.document(doc_id)
                base = writer.base
                same = stored is not None and (stored.metadata.title, stored.metadata.language) == (
                    metadata.title,
                    metadata.language,
                )
                if not same or base is None:
                    return None
                writer.set_metadata(doc_id, metadata)
                return writer.publish(model=self.settings.model, chunking=base.chunking, encoder=base.encoder)
            finally:
                writer.discard()

    def _record(self, report: IngestReport) -> None:
        """The outcome counts, for /metrics of a server running in another process."""
        counts = {
            name: len(getattr(report, name)) for name in ("added", "updated", "removed", "unchanged", "failed")
        }
        data = {
            **counts,
            "version": report.version,
            "seconds": round(report.seconds, 2),
            "finished_at": time.time(),
        }
        target = self.settings.index_dir / LAST_INGEST_FILE
        target.parent.mkdir(parents=True, exist_ok=True)  # with PostgreSQL, the folder holds only this report
        write_atomic(target, json.dumps(data) + "\n")

    def _run_locked(
        self, roots: list[Path], rebuild: bool, on_file: Callable[[str], None] | None, purge: Sequence[str] = ()
    ) -> IngestReport:
        report = IngestReport()
        self._curated = self.curation.overrides()
        self._excluded = self.curation.excluded()
        storage = self.storage.open_writer(
            model=self.settings.model, dimension=lambda: self.embedder.dimension, rebuild=rebuild
        )
        writer = IndexWriter(self.settings, self.embedder, storage)
        try:
            base = storage.base
            reembed_all = base is not None and base.chunking != chunking_settings(self.settings)
            known = storage.known()
            seen = self._apply(roots, known, reembed_all, writer, report, on_file)
            self._remove_missing(roots, known, seen, writer, report)
            for key in purge:
                if key in known and key not in report.removed:
                    writer.remove(known[key].doc_id)
                    report.removed.append(key)
            published = writer.publish() if report.changed or base is None else base
            report.version, report.documents, report.chunks = (
                published.version,
                published.documents,
                published.chunks,
            )
            return report
        finally:
            writer.close()

    def _apply(
        self,
        roots: list[Path],
        known: dict[str, KnownDocument],
        reembed_all: bool,
        writer: IndexWriter,
        report: IngestReport,
        on_file: Callable[[str], None] | None,
    ) -> set[str]:
        seen: set[str] = set()
        to_load: list[tuple[tuple[str, str, bool], Path]] = []
        for path in discover(roots):
            outside = _outside_problem(path, roots)
            if outside:  # named by the link, not by where it points
                self._fail(report, _link_key(path, self.settings.corpus_dir), outside, on_file)
                continue
            key = path_key(path, self.settings.corpus_dir, self.settings.uploads_dir)
            seen.add(key)
            previous = known.get(key)
            if key in self._excluded:
                report.excluded.append(key)
                if previous:
                    writer.remove(previous.doc_id)
                    report.removed.append(key)
                if on_file:
                    on_file(key)
                continue
            try:
                content_hash = checked_hash(key, path, self.limits, self._curated.get(key))
            except LoaderError as exc:
                self._fail(report, key, exc.reason, on_file)
                continue
            previous = known.get(key)
            if previous and previous.content_hash == content_hash and not reembed_all:
                report.unchanged.append(key)
                if on_file:
                    on_file(key)
                continue
            to_load.append(((key, content_hash, previous is not None), path))
        for loaded in load_isolated(to_load, self.limits):
            key, content_hash, existed = loaded.item
            if loaded.document is None:
                self._fail(report, key, loaded.reason, on_file)
                continue
            if on_file:
                on_file(key)
            try:
                document = with_curated_metadata(loaded.document, self._curated.get(key))
            except LoaderError as exc:
                self._fail(report, key, f"curated metadata: {exc.reason}", None)
                continue
            writer.add(document_id(key), key, content_hash, document)
            (report.updated if existed else report.added).append(key)
            if note := OcrNote.of(key, document):
                report.ocr.append(note)
                if note.unread:
                    log.warning("%s: %s need OCR and were not read: %s", key, page_list(note.unread), note.problem)
        return seen

    @staticmethod
    def _fail(report: IngestReport, key: str, reason: str, on_file: Callable[[str], None] | None) -> None:
        report.failed.append(Failure(key, reason))
        log.warning("cannot ingest %s: %s", key, reason)
        if on_file:
            on_file(key)

    def _remove_missing(
        self,
        roots: list[Path],
        known: dict[str, KnownDocument],
        seen: set[str],
        writer: IndexWriter,
        report: IngestReport,
    ) -> None:
        """Documents that were ingested from under ``roots`` but whose file is gone are removed."""
        prefixes = tuple(os.path.join(str(root), "") for root in roots)  # "…/corpus/" (string tests: fast)
        exact = {str(root) for root in roots}
        for stored in writer.storage.locations():
            if stored.key in seen or stored.key not in known:
                continue
            path = stored.path
            if (path in exact or path.startswith(prefixes)) and not Path(path).exists():
                writer.remove(stored.doc_id)
                report.removed.append(stored.key)


def _outside_problem(path: Path, roots: list[Path]) -> str | None:
    """A link found under a folder that points outside it is refused (it could expose any file on the host)."""
    containing = [root for root in roots if root.is_dir() and root in path.parents]
    if not containing:
        return None
    resolved = path.resolve()
    if any(resolved == root or root.resolve() in resolved.parents for root in containing):
        return None
    return f"is a link to {resolved}, outside the folder being ingested; copy the file in instead"


def _link_key(path: Path, corpus_dir: Path) -> str:
    try:
        return path.relative_to(corpus_dir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def checked_hash(key: str, path: Path, limits: Limits, curated: dict[str, Any] | None = None) -> str:
    """The content hash of a file about to be ingested (:func:`_hash_file`); a file too large to read or one that
    cannot be read raises a :class:`LoaderError` with the reason, so the caller reports it and goes on."""
    try:
        problem = size_problem(path, limits)
        if problem:
            raise LoaderError(key, problem)
        return _hash_file(path, curated)
    except OSError as exc:
        raise LoaderError(key, f"cannot be read ({exc.strerror or exc})") from exc


def _hash_file(path: Path, curated: dict[str, Any] | None = None) -> str:
    """File bytes, sidecar and curated metadata: a change in any of them means the document is read again."""
    side = sidecar_path(path)
    parts = [path.read_bytes(), side.read_bytes() if side.is_file() else b""]
    if curated:
        parts.append(json.dumps(curated, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return file_hash(*parts)
