"""The write API for curators and district editors: upload, change metadata, retire, purge, audit, review.

Every endpoint needs ``Authorization: Bearer <key>``: no key or an unknown key is 401, a key whose role or
district does not allow the operation is 403.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from kb.api.deps import CuratorDep, PrincipalDep
from kb.api.schemas import (
    AuditList,
    AuditOut,
    DocumentList,
    DocumentOut,
    DocumentRef,
    ErrorOut,
    MetadataPatch,
    RetireOut,
    UploadOut,
)
from kb.errors import CurationError

router = APIRouter(tags=["curation"])
WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "No API key, or the key is unknown or revoked."},
    403: {"model": ErrorOut, "description": "The key's role or district does not allow this."},
    404: {"model": ErrorOut, "description": "Unknown document."},
    409: {"model": ErrorOut, "description": "The file is already stored, or an ingestion did not finish in time."},
    413: {"model": ErrorOut, "description": "The file is larger than KB_MAX_UPLOAD_MB."},
    415: {"model": ErrorOut, "description": "The content is not PDF, DOCX, Markdown, text or HTML."},
    422: {"model": ErrorOut, "description": "Invalid metadata or unreadable file; `detail` names the field."},
}


@router.post("/documents", status_code=201, response_model=UploadOut, responses=WRITE_ERRORS)
def upload_document(
    curator: CuratorDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="The document: PDF, DOCX, Markdown, text or HTML.")],
    metadata: Annotated[
        str,
        Form(description='JSON object of metadata fields, e.g. {"title": "…", "district": "Kreis Unna"}.'),
    ] = "{}",
) -> UploadOut:
    """Add a document. It is searchable (when published) as soon as this answers."""
    principal.require_writer()
    fields = _parse_metadata(metadata)
    # The body-limit middleware has already refused bodies over KB_MAX_UPLOAD_MB; the Curator checks the file.
    data = file.file.read()
    result = curator.upload(principal, file.filename or "upload", data, fields)
    return UploadOut(
        id=result.document.id,
        index_version=result.index_version,
        document=DocumentOut.of(result.document, result.near_duplicates),
        near_duplicates=[DocumentRef.of(d) for d in result.near_duplicates],
    )


@router.patch("/documents/{doc_id}", response_model=DocumentOut, responses=WRITE_ERRORS)
def update_document(
    curator: CuratorDep, principal: PrincipalDep, doc_id: str, patch: MetadataPatch
) -> DocumentOut:
    """Change metadata fields (recommend, set review status or review date, supersede, describe)."""
    principal.require_writer()
    document = curator.update(principal, doc_id, patch.changes())
    return DocumentOut.of(document, curator.searcher.reader(principal.viewer).near_duplicates_of(doc_id))


@router.delete("/documents/{doc_id}", response_model=RetireOut, responses=WRITE_ERRORS)
def retire_document(
    curator: CuratorDep,
    principal: PrincipalDep,
    doc_id: str,
    purge: Annotated[bool, Query(description="Remove for good (curators only) instead of retiring.")] = False,
) -> RetireOut:
    """Retire a document (hidden from search; file, metadata and history kept), or purge it for good."""
    principal.require_writer()
    if purge:
        version = curator.purge(principal, doc_id)
        return RetireOut(id=doc_id, status="purged", index_version=version)
    curator.retire(principal, doc_id)
    return RetireOut(id=doc_id, status="archived", index_version=curator.searcher.index.manifest.version)


@router.get("/audit", response_model=AuditList, responses=WRITE_ERRORS)
def audit_log(
    curator: CuratorDep,
    principal: PrincipalDep,
    document: Annotated[str | None, Query(max_length=64, description="Only this document's entries.")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditList:
    """Who changed what and when, newest first (curators only)."""
    principal.require_curator("read the audit log")
    entries = curator.audit(document, limit, offset)
    items = [
        AuditOut(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            document_id=e.doc_id,
            title=e.title,
            before=e.before,
            after=e.after,
            note=e.note,
        )
        for e in entries
    ]
    return AuditList(offset=offset, limit=limit, items=items)


@router.get("/review/due", response_model=DocumentList, responses=WRITE_ERRORS)
def due_for_review(
    curator: CuratorDep,
    principal: PrincipalDep,
    on: Annotated[dt.date | None, Query(description="Reference date (default: today).")] = None,
) -> DocumentList:
    """Documents whose review-by date has come (curators only), earliest first."""
    principal.require_curator("list documents due for review")
    due = curator.due_for_review(on)
    return DocumentList(total=len(due), offset=0, limit=len(due), items=[DocumentOut.of(d) for d in due])


def _parse_metadata(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise CurationError(f"The 'metadata' part is not valid JSON ({exc.msg} at position {exc.pos}).") from None
    if not isinstance(value, dict):
        raise CurationError('The \'metadata\' part must be a JSON object of fields, e.g. {"title": "…"}.')
    patch = MetadataPatch.model_validate({k: v for k, v in value.items() if k != "supersedes"})
    fields = patch.changes()
    if value.get("supersedes"):
        fields["supersedes"] = str(value["supersedes"])
    return fields
