"""The ingestion pipeline: walk, load, chunk, embed, and write a new index version atomically.

Incremental: a content hash per file (file bytes plus its sidecar) decides what is added, updated, removed or
left unchanged. A file that cannot be read is reported with its reason and the rest is ingested; if an
earlier, good version of that file is in the index it stays there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kb.chunking import chunk_sections
from kb.documents import Chunk, Document, document_id, file_hash
from kb.embedder import Embedder
from kb.errors import IndexUnavailableError, LoaderError
from kb.index import DATA_FILES, STORE_FILE, VECTORS_FILE, IndexDir, LoadedIndex, Manifest, file_sha256
from kb.lexical import LexicalIndex
from kb.loaders.metadata import sidecar_path
from kb.metrics import LAST_INGEST_FILE
from kb.sandbox import Limits, load_isolated, size_problem
from kb.settings import Settings
from kb.store import Store
from kb.vectors import Vectors

log = logging.getLogger(__name__)

#: Bumped whenever loading or chunking changes in a way that requires re-chunking and re-embedding everything.
CHUNKER_VERSION = 2
#: Language codes whose documents get German lexical analysis.
GERMAN = frozenset({"de", "de-de", "de-at", "de-ch", "deu", "ger"})
#: Exit code of `kb ingest` when some files failed and the rest was ingested.
EXIT_PARTIAL = 6
_IGNORED_NAMES = {"readme.md", "readme.txt", "readme", "license", "license.md", "licence.md"}


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


@dataclass
class IngestReport:
    """What one ingestion did; ``exit_code`` is 0, or :data:`EXIT_PARTIAL` when some files failed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    version: int | None = None
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed else 0


def chunking_settings(settings: Settings) -> dict[str, int]:
    """What the manifest records about chunking; a difference means every document is chunked again."""
    return {
        "chunk_words": settings.chunk_words,
        "chunk_overlap": settings.chunk_overlap,
        "chunker_version": CHUNKER_VERSION,
    }


def passage_text(title: str, heading: str, text: str) -> str:
    """What is embedded for a chunk: the document title and section heading give the passage its context."""
    context = " – ".join(part for part in (title, heading) if part)
    return f"{context}\n{text}" if context else text


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


def path_key(path: Path, corpus_dir: Path) -> str:
    """The identity of a file in the index: its path relative to the corpus, or its absolute path."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(corpus_dir.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


class IndexWriter:
    """Writes documents into a version being built; chunks of many documents are encoded in one batch."""

    def __init__(
        self, settings: Settings, embedder: Embedder, build: Path, store: Store, vectors: Vectors
    ) -> None:
        self.settings, self.embedder, self.build = settings, embedder, build
        self.store, self.vectors = store, vectors
        self._pending: list[tuple[str, str, str, Document, list[Chunk]]] = []
        self._pending_chunks = 0

    @classmethod
    def empty(cls, settings: Settings, embedder: Embedder, build: Path) -> IndexWriter:
        return cls(settings, embedder, build, Store(build / STORE_FILE), Vectors.new(embedder.dimension))

    def add(self, doc_id: str, key: str, content_hash: str, document: Document) -> None:
        chunks = chunk_sections(document.sections, self.settings.chunk_words, self.settings.chunk_overlap)
        self._pending.append((doc_id, key, content_hash, document, chunks))
        self._pending_chunks += len(chunks)
        if self._pending_chunks >= self.settings.batch_size * 4:
            self.flush()

    def remove(self, doc_id: str) -> None:
        self.vectors.remove(self.store.delete_document(doc_id))

    def flush(self) -> None:
        if not self._pending:
            return
        texts = [
            passage_text(d.metadata.title, c.heading, c.text) for *_, d, chunks in self._pending for c in chunks
        ]
        embeddings = self.embedder.encode_documents(texts, batch_size=self.settings.batch_size)
        offset = 0
        for doc_id, key, content_hash, document, chunks in self._pending:
            self.remove(doc_id)
            ids = self.store.put_document(doc_id, key, content_hash, document, chunks)
            self.vectors.add(ids, embeddings[offset : offset + len(chunks)])
            offset += len(chunks)
        self._pending, self._pending_chunks = [], 0

    def _lexical(self) -> LexicalIndex:
        """BM25 over the chunks of German documents (other languages are left to the dense path)."""
        documents = {doc.id: doc.metadata for doc in self.store.documents()}
        german = [
            (chunk_id, passage_text(documents[doc_id].title, heading, text))
            for chunk_id, doc_id, heading, text in self.store.chunk_texts()
            if documents[doc_id].language in GERMAN
        ]
        return LexicalIndex.build(german)

    def publish(self, index_dir: IndexDir) -> tuple[int, int, int]:
        """Write vectors and manifest and make the build the live version; ``(version, documents, chunks)``."""
        self.flush()
        self.vectors.save(self.build / VECTORS_FILE)
        self._lexical().save(self.build)
        documents, chunks = self.store.counts()
        self.store.close()
        version = index_dir.next_version()
        Manifest(
            version=version,
            model=self.settings.model,
            dimension=self.vectors.dimension,
            chunking=chunking_settings(self.settings),
            documents=documents,
            chunks=chunks,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            files={name: (self.build / name).stat().st_size for name in DATA_FILES},
            checksums={name: file_sha256(self.build / name) for name in DATA_FILES},
        ).write(self.build)
        index_dir.publish(self.build, version)
        return version, documents, chunks


class Ingestor:
    """Runs one ingestion into ``settings.index_dir`` (holding the writer lock throughout)."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(settings)
        self.index_dir = IndexDir(settings.index_dir)
        self.limits = Limits(settings.file_timeout_s, settings.file_memory_mb, settings.max_file_mb)

    def run(
        self,
        paths: list[Path] | None = None,
        *,
        rebuild: bool = False,
        on_file: Callable[[str], None] | None = None,
    ) -> IngestReport:
        started = time.monotonic()
        roots = [p.resolve() for p in (paths or [self.settings.corpus_dir])]
        for root in roots:
            if not root.exists():
                raise LoaderError(str(root), "does not exist (check the path or KB_CORPUS_DIR)")
        with self.index_dir.acquire():
            report = self._run_locked(roots, rebuild, on_file)
            report.seconds = time.monotonic() - started
            self._record(report)
        return report

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
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
        os.replace(tmp, target)

    def _run_locked(self, roots: list[Path], rebuild: bool, on_file: Callable[[str], None] | None) -> IngestReport:
        report = IngestReport()
        current_folder = None if rebuild else self.index_dir.current()
        current = LoadedIndex.open(current_folder) if current_folder else None
        reembed_all = False
        if current is not None:
            current.check_model(self.settings.model)
            reembed_all = current.manifest.chunking != chunking_settings(self.settings)
        known = current.store.hashes() if current else {}
        build = self.index_dir.start_build()
        try:
            if current is not None:
                writer = IndexWriter(
                    self.settings,
                    self.embedder,
                    build,
                    current.store.copy_to(build / STORE_FILE),
                    Vectors.load(current.folder / VECTORS_FILE),
                )
                current.store.close()
            else:
                writer = IndexWriter.empty(self.settings, self.embedder, build)
            if writer.vectors.dimension != self.embedder.dimension:
                raise IndexUnavailableError(
                    f"The index has vectors of dimension {writer.vectors.dimension}, the model gives "
                    f"{self.embedder.dimension}; rebuild it with `kb ingest --rebuild`."
                )
            seen = self._apply(roots, known, reembed_all, writer, report, on_file)
            self._remove_missing(roots, known, seen, writer, report)
            if not report.changed and current is not None:
                report.version = current.manifest.version
                report.documents, report.chunks = current.manifest.documents, current.manifest.chunks
                writer.store.close()
                return report
            report.version, report.documents, report.chunks = writer.publish(self.index_dir)
            return report
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)

    def _apply(
        self,
        roots: list[Path],
        known: dict[str, tuple[str, str]],
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
            key = path_key(path, self.settings.corpus_dir)
            seen.add(key)
            try:
                problem = size_problem(path, self.limits)
                if problem:
                    raise LoaderError(key, problem)
                content_hash = _hash_file(path)
            except LoaderError as exc:
                self._fail(report, key, exc.reason, on_file)
                continue
            except OSError as exc:
                self._fail(report, key, f"cannot be read ({exc.strerror or exc})", on_file)
                continue
            previous = known.get(key)
            if previous and previous[1] == content_hash and not reembed_all:
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
            writer.add(document_id(key), key, content_hash, loaded.document)
            (report.updated if existed else report.added).append(key)
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
        known: dict[str, tuple[str, str]],
        seen: set[str],
        writer: IndexWriter,
        report: IngestReport,
    ) -> None:
        """Documents that were ingested from under ``roots`` but whose file is gone are removed."""
        for stored in writer.store.documents():
            if stored.key in seen or stored.key not in known:
                continue
            path = Path(stored.path)
            if any(path == root or root in path.parents for root in roots) and not path.exists():
                writer.remove(stored.id)
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


def _hash_file(path: Path) -> str:
    side = sidecar_path(path)
    return file_hash(path.read_bytes(), side.read_bytes() if side.is_file() else b"")
