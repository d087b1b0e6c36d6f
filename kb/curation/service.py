"""The Curator: the life of a document through the API and the CLI (upload, describe, recommend, supersede,
retire, purge), each step checked against the caller's role and written to the audit log.

Every change is applied by an ingestion of the one affected file (curated metadata is laid over the file's own),
so it becomes a new immutable index version: readers see the old version or the new one, never a mix. The
curation database is written first; if the process dies before the new version is published, the next
ingestion (`kb ingest`, or the next write) completes the change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kb import fields
from kb.curation import uploads
from kb.curation.db import AuditEntry
from kb.curation.keys import Principal, Role
from kb.curation.store import CurationStore, open_curation
from kb.documents import Metadata, document_id
from kb.errors import ConflictError, CurationError, IndexMissingError, LoaderError, NotFoundError
from kb.ingest import UPLOAD_PREFIX, Ingestor, IngestReport
from kb.loaders.metadata import build_metadata
from kb.search import Searcher
from kb.storage import StorageReader
from kb.store import StoredDocument


@dataclass(frozen=True)
class UploadResult:
    document: StoredDocument
    index_version: int
    near_duplicates: list[StoredDocument]


class Curator:
    """Write access to the knowledge base; ``searcher`` gives the live index and is refreshed after each write."""

    def __init__(self, searcher: Searcher, db: CurationStore | None = None) -> None:
        self.searcher = searcher
        self.settings = searcher.settings
        self.db = db or open_curation(self.settings)
        #: Uploaded files: this machine's folder, and with PostgreSQL the database every replica reads them from.
        self.files = uploads.UploadFiles(self.settings.uploads_dir, self.db.shared_files())

    # -- reading ----------------------------------------------------------------------------------------------
    def _index(self) -> StorageReader:
        return self.searcher.index

    def document(self, doc_id: str, principal: Principal | None = None) -> StoredDocument:
        """The document; for a ``principal``, only one it may see (else it is unknown: 404, never 403)."""
        return self.searcher.document(doc_id, None if principal is None else principal.viewer)

    def due_for_review(self, on: dt.date | None = None) -> list[StoredDocument]:
        """Documents not archived whose review-by date is on or before ``on`` (today), earliest first."""
        day = (on or dt.date.today()).isoformat()

        def due_on(d: StoredDocument) -> str:  # the earlier of the review date and the end of validity
            return min((v for v in (d.metadata.review_by, d.metadata.valid_until) if v), default="")

        due = [
            d
            for d in self._index().documents.values()
            if due_on(d) and due_on(d) <= day and d.metadata.status != "archived"
        ]
        return sorted(due, key=lambda d: (due_on(d), d.metadata.title))

    def audit(self, doc_id: str | None = None, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        return self.db.audit(doc_id, limit, offset)

    # -- writing ----------------------------------------------------------------------------------------------
    def upload(self, principal: Principal, filename: str, data: bytes, metadata: dict[str, Any]) -> UploadResult:
        """Store a new file and ingest it; searchable (if published) when this returns."""
        principal.require_writer()
        name = uploads.display_name(filename)
        uploads.check_size(data, name, self.settings.max_upload_mb)
        suffix = uploads.detect_suffix(data, name)
        changes = dict(metadata)
        supersedes = str(changes.pop("supersedes", "") or "")
        if principal.role is Role.EDITOR:
            changes.setdefault("district", principal.district)
        self._check_fields(principal, changes)
        checked = _validated({"title": Path(name).stem, **changes})
        principal.require_district(checked.district)
        old = self._superseded(principal, supersedes) if supersedes else None
        key = UPLOAD_PREFIX + uploads.content_key(data, suffix)
        doc_id = document_id(key)
        existing = self._known(doc_id)
        if existing is not None:
            named = f" ({existing.metadata.title!r})" if principal.viewer.may_see(existing) else ""
            raise ConflictError(
                f"This file is already stored as document {doc_id}{named}; change its "
                "metadata with PATCH /documents/{id} instead of uploading it again."
            )
        with self.db.transaction() as tx:
            tx.add_upload(key, doc_id, changes, principal.actor)
            title = str(changes.get("title") or name)
            tx.audit(principal.actor, "create", doc_id, title, None, changes, note=name)
        stored = self.files.store(data, suffix)
        try:
            report = self._ingest([stored.path])
            failure = next((f for f in report.failed if f.path == key), None)
            if failure is not None:
                raise CurationError(f"The file {name!r} cannot be read: {failure.reason}.")
        except BaseException:
            self._forget_upload(key, stored.path)
            raise
        document = self.document(doc_id)
        if old is not None:
            self._apply(principal, old, {"superseded_by": doc_id, "status": "archived"}, "supersede")
        index = self.searcher.reader(principal.viewer)
        return UploadResult(document, index.manifest.version, index.near_duplicates_of(doc_id))

    def update(
        self, principal: Principal, doc_id: str, changes: dict[str, Any], action: str = "update"
    ) -> StoredDocument:
        """Change metadata fields of a document (an editor: only within its own district)."""
        principal.require_writer()
        document = self.document(doc_id, principal)
        principal.require_district(document.metadata.district)
        changes = dict(changes)
        if not changes:
            raise CurationError("The request changes nothing: send at least one metadata field.")
        self._check_fields(principal, changes)
        if "district" in changes:
            principal.require_district(str(changes["district"] or ""))
        if changes.get("superseded_by"):
            newer = self.document(str(changes["superseded_by"]), principal)
            if newer.id == doc_id:
                raise CurationError("A document cannot supersede itself: 'superseded_by' names its own id.")
            changes.setdefault("status", "archived")
            action = "supersede"
        elif changes.get("recommended") is True and action == "update":
            action = "recommend"
        return self._apply(principal, document, changes, action)

    def retire(self, principal: Principal, doc_id: str) -> StoredDocument:
        """Hide a document from search (status ``archived``); its file, metadata and history are kept."""
        return self.update(principal, doc_id, {"status": "archived"}, action="retire")

    def purge(self, principal: Principal, doc_id: str) -> int:
        """Remove a document for good (curators only); returns the new index version.

        An uploaded file is deleted; a file in the corpus folder is left alone (it is the office's folder) but
        never ingested again while the purge stands (`excluded` in the curation database).
        """
        principal.require_curator("purge documents")
        document = self.document(doc_id)
        record = self.db.record(doc_id)
        with self.db.transaction() as tx:
            tx.exclude(document.key, doc_id, principal.actor)
            tx.audit(principal.actor, "purge", doc_id, document.metadata.title, document.metadata.as_dict(), None)
        if document.key.startswith(UPLOAD_PREFIX) or (record is not None and record[2]):
            Path(document.path).unlink(missing_ok=True)
            if document.key.startswith(UPLOAD_PREFIX):  # this machine's copy and the shared one
                self.files.remove(document.key.removeprefix(UPLOAD_PREFIX))
        report = self._ingest([], purge=[document.key])
        return int(report.version or 0)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _apply(
        self, principal: Principal, document: StoredDocument, changes: dict[str, Any], action: str
    ) -> StoredDocument:
        merged = _validated({**document.metadata.as_dict(), **changes})
        before = document.metadata.as_dict()
        after = merged.as_dict()
        changed = {k: after[k] for k in changes if before.get(k) != after.get(k)}
        if not changed:
            return document
        with self.db.transaction() as tx:
            curated = {**tx.curated(document.id), **changed}
            tx.set_curated(document.key, document.id, curated, principal.actor)
            earlier = {k: before.get(k) for k in changed}
            tx.audit(principal.actor, action, document.id, merged.title, earlier, changed)
        path = self._file_of(document)
        if not path.is_file():
            raise NotFoundError(
                f"The file of document {document.id} is gone from {path}; the change is saved and applies when "
                "the file is back (or purge the document)."
            )
        ingestor = Ingestor(self.settings, self.searcher.embedder, self.db)
        if ingestor.update_metadata(document.id, merged, wait=self.settings.write_wait_s) is not None:
            self.searcher.handle.refresh()  # metadata alone: its chunks and vectors are kept, the file not read
            return self.document(document.id)
        report = self._ingest([path])
        failure = next((f for f in report.failed if f.path == document.key), None)
        if failure is not None:
            raise CurationError(f"The document's file cannot be read any more: {failure.reason}.")
        return self.document(document.id)

    def _ingest(self, paths: list[Path], purge: list[str] | None = None) -> IngestReport:
        ingestor = Ingestor(self.settings, self.searcher.embedder, self.db)
        report = ingestor.run(paths, purge=purge or (), wait=self.settings.write_wait_s)
        self.searcher.handle.refresh()
        return report

    def _forget_upload(self, key: str, path: Path) -> None:
        """Undo an upload that could not be ingested: its record, its audit entry and its file."""
        with self.db.transaction() as tx:
            tx.forget(key)
            tx.unaudit_last(document_id(key), "create")
        if self._known(document_id(key)) is None:
            path.unlink(missing_ok=True)
            self.files.remove(key.removeprefix(UPLOAD_PREFIX))

    def with_local_file(self, document: StoredDocument) -> StoredDocument:
        """``document`` with the path of its file on this machine (an upload through another replica is written
        here from the shared copy first)."""
        path = self._file_of(document)
        return document if str(path) == document.path else replace(document, path=str(path))

    def _file_of(self, document: StoredDocument) -> Path:
        """The document's file on this machine: an upload stored through another replica (another
        ``KB_DATA_DIR``) is written here from the shared copy first."""
        path = Path(document.path)
        if path.is_file() or not document.key.startswith(UPLOAD_PREFIX):
            return path
        return self.files.local(document.key.removeprefix(UPLOAD_PREFIX)) or path

    def _known(self, doc_id: str) -> StoredDocument | None:
        """The document if the live index has it (there may be no index yet: the first upload builds it)."""
        try:
            return self._index().documents.get(doc_id)
        except IndexMissingError:
            return None

    def _check_fields(self, principal: Principal, changes: dict[str, Any]) -> None:
        if "title" in changes and not str(changes["title"] or "").strip():
            raise CurationError("Invalid metadata: the title cannot be empty.")
        known = fields.names()
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise CurationError(f"Unknown metadata field {unknown[0]!r}; the fields are: {', '.join(known)}.")
        for f in fields.FIELDS:
            if f.curators_only and f.name in changes:  # e.g. a LaKI recommendation: the coordinating office's call
                principal.require_curator(f"set '{f.name}'")

    def _superseded(self, principal: Principal, doc_id: str) -> StoredDocument:
        old = self.document(doc_id, principal)
        principal.require_district(old.metadata.district)
        return old


def _validated(raw: dict[str, Any]) -> Metadata:
    """Metadata from a request, or a :class:`CurationError` that names the field and what was wrong."""
    try:
        return build_metadata(raw, Path("metadata"), str(raw.get("title") or ""))
    except LoaderError as exc:
        raise CurationError(f"Invalid metadata: {exc.reason}.") from None
