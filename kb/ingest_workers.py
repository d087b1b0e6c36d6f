"""``kb ingest`` on several machines against one PostgreSQL database: the work shared through claims.

Every worker walks the folders, registers the files whose content differs from the live version
(:class:`kb.storage.pg_claims.Claims`) and then takes batches of claims until none is open: reads them (in the
sandbox), chunks and encodes them with no lock held, and publishes each batch as one version under the writer's
lock (readers see a batch's documents all or none). A worker that finds no open claim while another worker's are
still leased waits for them, so every ``kb ingest`` returns once the whole folder is in the index. Removals
(files gone, exclusions, ``--purge``) are one more short version at the end; they are idempotent, so each worker
may do them. The local engine's ingestion (:class:`kb.ingest.Ingestor`) is unchanged; it delegates here when the
index is in PostgreSQL (:func:`shared_ingestion`), except for ``--rebuild`` and a change of the chunking
settings, which re-encode everything under the one writer's lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb.chunking import chunk_sections, passage_text
from kb.documents import Chunk, Document, document_id
from kb.errors import LoaderError
from kb.files import write_atomic
from kb.ingest import (
    UPLOAD_PREFIX,
    Ingestor,
    IngestReport,
    OcrNote,
    _hash_file,
    _link_key,
    _outside_problem,
    checked_hash,
    chunking_settings,
    discover,
    path_key,
    with_curated_metadata,
)
from kb.sandbox import load_isolated
from kb.storage import StorageWriter
from kb.storage.pg_claims import Claim, Claims
from kb.storage.postgres import PostgresStorage

log = logging.getLogger(__name__)

#: Longest pause between two looks for open claims while other workers hold the rest.
POLL_S = 1.0


def shared_ingestion(ingestor: Ingestor) -> SharedIngestion | None:
    """The shared ingestion for ``ingestor``'s storage, or None when it does not apply (the local engine; an
    index whose chunking settings differ from these, which is encoded again as a whole)."""
    if not isinstance(ingestor.storage, PostgresStorage):
        return None
    shared = SharedIngestion(ingestor)
    live = shared.claims.live_chunking()
    if live is not None and live != chunking_settings(ingestor.settings):
        shared.claims.close()
        return None
    return shared


class SharedIngestion:
    """One worker of a shared ingestion (:mod:`kb.ingest_workers`)."""

    def __init__(self, ingestor: Ingestor, worker: str | None = None) -> None:
        self.ingestor, self.settings = ingestor, ingestor.settings
        assert isinstance(ingestor.storage, PostgresStorage)
        self.storage: PostgresStorage = ingestor.storage
        self.claims = Claims(
            self.storage, worker, ingestor.settings.ingest_lease_s, ingestor.settings.ingest_attempts
        )
        self._curated: dict[str, dict[str, Any]] = {}

    def run(
        self,
        roots: list[Path],
        on_file: Callable[[str], None] | None = None,
        purge: Sequence[str] = (),
        wait: float = 0.0,
    ) -> IngestReport:
        """Register the changed files under ``roots``, ingest claims until none is open, then remove what is
        gone; ``wait``: how long the removals wait for the writer's lock."""
        report = IngestReport()
        try:
            self._curated = self.ingestor.curation.overrides()
            excluded = self.ingestor.curation.excluded()
            known, seen, gone = self._register(roots, excluded, purge, report, on_file)
            self._work(report, on_file)
            self._remove(roots, known, seen, gone | {k for k in purge if k in known}, report, wait)
            report.version, report.documents, report.chunks = self.claims.live_counts()
        finally:
            self.claims.close()
        return report

    # -- registering ----------------------------------------------------------------------------------------------
    def _register(
        self,
        roots: list[Path],
        excluded: set[str],
        purge: Sequence[str],
        report: IngestReport,
        on_file: Callable[[str], None] | None,
    ) -> tuple[dict[str, str], set[str], set[str]]:
        """The live documents this run may change (``key → content hash``: those of the files found, of
        ``purge`` and those stored from under ``roots``; not every document), the files found (keys) and the
        live documents to remove for exclusion; registers the changed files."""
        settings, limits = self.settings, self.ingestor.limits
        found: list[tuple[str, Path]] = []
        for path in discover(roots):
            outside = _outside_problem(path, roots)
            if outside:
                self._fail(report, _link_key(path, settings.corpus_dir), outside, on_file)
                continue
            found.append((path_key(path, settings.corpus_dir, settings.uploads_dir), path))
        keys = [key for key, _ in found] + list(purge)
        known = self.claims.live_of(keys, [str(root) for root in roots])
        seen: set[str] = set()
        gone: set[str] = set()
        todo: list[Claim] = []
        for key, path in found:
            seen.add(key)
            if key in excluded:
                report.excluded.append(key)
                if key in known:
                    gone.add(key)
                if on_file:
                    on_file(key)
                continue
            try:
                content_hash = checked_hash(key, path, limits, self._curated.get(key))
            except LoaderError as exc:
                self._fail(report, key, exc.reason, on_file)
                continue
            if known.get(key) == content_hash:
                report.unchanged.append(key)
                if on_file:
                    on_file(key)
                continue
            todo.append(Claim(key, content_hash, str(path)))
        self.claims.register(todo)
        return known, seen, gone

    # -- working --------------------------------------------------------------------------------------------------
    def _work(self, report: IngestReport, on_file: Callable[[str], None] | None) -> None:
        while True:
            for claim, reason in self.claims.abandoned():  # its workers died on it: failed, not passed on again
                self._fail(report, claim.key, reason, on_file)
            batch = self.claims.take(self.settings.ingest_claim_documents)
            if not batch:
                left = self.claims.open_lease()
                if left is None:
                    return
                time.sleep(min(max(left, 0.05), POLL_S))
                continue
            try:
                with self.claims.holding():
                    self._ingest(batch, report, on_file)
            except BaseException:
                self.claims.release(batch)
                raise

    def _ingest(self, batch: list[Claim], report: IngestReport, on_file: Callable[[str], None] | None) -> None:
        """Read, chunk and encode a batch with no lock held, then publish it as one version."""
        live = self.claims.live([c.key for c in batch])
        finished = [c for c in batch if live.get(c.key) == c.content_hash]  # another worker committed them
        work: list[tuple[tuple[Claim, bool], Path]] = []
        for claim in batch:
            if claim in finished:
                continue
            path = Path(claim.path)
            if not path.is_file():
                path = self._upload_here(claim) or path
            try:
                current = _hash_file(path, self._curated.get(claim.key))
            except OSError:
                current = ""
            if current != claim.content_hash:  # changed or gone since it was registered: a newer claim has it
                finished.append(claim)
                continue
            work.append(((claim, claim.key in live), path))
        self.claims.done(finished)
        ready: list[tuple[Claim, Document, list[Chunk]]] = []
        for loaded in load_isolated(work, self.ingestor.limits):
            claim, _ = loaded.item
            if on_file:
                on_file(claim.key)
            if loaded.document is None:
                self._fail(report, claim.key, loaded.reason, None)
                self.claims.failed(claim, loaded.reason)
                continue
            try:
                document = with_curated_metadata(loaded.document, self._curated.get(claim.key))
            except LoaderError as exc:
                self._fail(report, claim.key, f"curated metadata: {exc.reason}", None)
                self.claims.failed(claim, f"curated metadata: {exc.reason}")
                continue
            chunks = chunk_sections(document.sections, self.settings.chunk_words, self.settings.chunk_overlap)
            ready.append((claim, document, chunks))
            if note := OcrNote.of(claim.key, document):
                report.ocr.append(note)
        texts = [passage_text(d.metadata.title, c.heading, c.text) for _, d, chunks in ready for c in chunks]
        embedder = self.ingestor.embedder
        vectors = embedder.encode_documents(texts, self.settings.batch_size) if texts else np.zeros((0, 0))
        self._commit(ready, vectors, report)
        self.claims.done([claim for claim, _, _ in ready])

    def _upload_here(self, claim: Claim) -> Path | None:
        """The file of an upload that another machine received (the claim holds its path there), written into this
        machine's uploads folder from the shared copy, so that any worker can take any claim; None when the claim
        is no upload or no shared copy exists (the file is then gone, and a newer claim or the removal has it)."""
        name = claim.key.removeprefix(UPLOAD_PREFIX)
        if not claim.key.startswith(UPLOAD_PREFIX) or not name or "/" in name or name.startswith("."):
            return None
        local = self.settings.uploads_dir / name
        if local.is_file():
            return local
        shared = self.ingestor.curation.shared_files()
        data = shared.file(name) if shared is not None else None
        if data is None:
            return None
        local.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(local, data)
        return local

    def _commit(
        self, ready: list[tuple[Claim, Document, list[Chunk]]], vectors: np.ndarray, report: IngestReport
    ) -> None:
        """Publish the batch as one version under the writer's lock (held for this only)."""
        if not ready:
            return
        embedder = self.ingestor.embedder
        with self.storage.lock(self.settings.write_wait_s):
            writer = self.storage.open_writer(model=self.settings.model, dimension=lambda: embedder.dimension)
            try:
                offset, added, updated = 0, list[str](), list[str]()
                for claim, document, chunks in ready:
                    rows = vectors[offset : offset + len(chunks)]
                    offset += len(chunks)
                    doc_id = document_id(claim.key)
                    stored = writer.document(doc_id)
                    if stored is not None and stored.content_hash == claim.content_hash:
                        continue  # committed by a worker whose lease ran out meanwhile: stored once
                    ids = writer.put_document(doc_id, claim.key, claim.content_hash, document, chunks)
                    writer.add_vectors(ids, rows)
                    (updated if stored is not None else added).append(claim.key)
                if added or updated:
                    self._publish(writer)
            finally:
                writer.discard()
        report.added.extend(added)
        report.updated.extend(updated)

    # -- finishing ------------------------------------------------------------------------------------------------
    def _remove(
        self,
        roots: list[Path],
        known: dict[str, str],
        seen: set[str],
        remove: set[str],
        report: IngestReport,
        wait: float,
    ) -> None:
        """Remove the documents excluded, purged, or whose files under ``roots`` are gone (one version)."""
        under = [str(root) for root in roots]
        missing = {key for key in known if key not in seen} | remove
        if not missing and self.claims.live_counts()[0]:
            return  # nothing to remove (as after an upload): no lock, no writer
        with self.storage.lock(max(wait, self.settings.write_wait_s)):
            embedder = self.ingestor.embedder
            writer = self.storage.open_writer(model=self.settings.model, dimension=lambda: embedder.dimension)
            try:
                for stored in writer.locations_of(under=under):
                    if stored.key in seen or stored.key not in known:
                        continue
                    if not Path(stored.path).exists():
                        remove.add(stored.key)
                live = {loc.key: loc.doc_id for loc in writer.locations_of(keys=sorted(remove))}
                for key in sorted(remove):
                    if key in live:
                        writer.remove_document(live[key])
                        report.removed.append(key)
                if report.removed or writer.base is None:  # the first ingestion publishes even an empty index
                    self._publish(writer)
            finally:
                writer.discard()

    def _publish(self, writer: StorageWriter) -> None:
        """Publish ``writer`` as the next version, stamped with this installation's model and chunking."""
        writer.publish(
            model=self.settings.model, chunking=chunking_settings(self.settings), encoder=self.settings.encoder
        )

    _fail = staticmethod(Ingestor._fail)  # a failed file is reported as by the local ingestion
