"""The JSON API: search, documents, files, health."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from kb.api.deps import SearcherDep
from kb.api.schemas import DocumentList, DocumentOut, ErrorOut, Health, SearchHitOut, SearchResponse
from kb.errors import KBError, NotFoundError
from kb.store import StoredDocument

router = APIRouter()
ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorOut, "description": "Unknown document."},
    422: {"model": ErrorOut, "description": "The request is not valid; `detail` says why."},
    503: {"model": ErrorOut, "description": "No index yet, or the model is not ready."},
}
_MEDIA_TYPES = {
    "pdf": "application/pdf",
    "markdown": "text/markdown; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/plain; charset=utf-8",  # never rendered as a page of ours: it may carry scripts
}


@router.get("/search", response_model=SearchResponse, responses=ERRORS, tags=["search"])
def search(
    searcher: SearcherDep,
    q: Annotated[str, Query(description="The question or words to search for, in any language.")] = "",
    k: Annotated[int, Query(description="How many results (1–100).")] = 10,
    group: Annotated[
        bool, Query(description="One result per document (its best passage); false gives raw passages.")
    ] = True,
) -> SearchResponse:
    """The documents (or passages) most similar in meaning to the query, best first."""
    result = searcher.search(q, k, group=group)
    return SearchResponse(
        query=result.query,
        k=k,
        took_ms=round(result.took_ms, 2),
        index_version=result.index_version,
        results=[SearchHitOut.of(hit) for hit in result.hits],
    )


@router.get("/documents", response_model=DocumentList, responses=ERRORS, tags=["documents"])
def list_documents(
    searcher: SearcherDep,
    offset: Annotated[int, Query(ge=0, description="How many documents to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size (1–200).")] = 50,
) -> DocumentList:
    """All documents in the index, ordered by path, one page at a time."""
    documents = searcher.index.store.documents()
    page = documents[offset : offset + limit]
    return DocumentList(total=len(documents), offset=offset, limit=limit, items=[DocumentOut.of(d) for d in page])


@router.get("/documents/{doc_id}", response_model=DocumentOut, responses=ERRORS, tags=["documents"])
def get_document(searcher: SearcherDep, doc_id: str) -> DocumentOut:
    """One document's metadata and chunk count."""
    return DocumentOut.of(searcher.document(doc_id))


@router.get("/documents/{doc_id}/file", responses=ERRORS, tags=["documents"], response_class=FileResponse)
def get_document_file(searcher: SearcherDep, doc_id: str) -> FileResponse:
    """The original file of a document, as it was ingested."""
    document = searcher.document(doc_id)
    path = safe_file_path(document, searcher.settings.corpus_dir)
    media = (
        _MEDIA_TYPES.get(document.file_type) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    inline = document.file_type in ("pdf", "markdown", "text")
    return FileResponse(
        path,
        media_type=media,
        filename=path.name,
        content_disposition_type="inline" if inline else "attachment",
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
    )


def safe_file_path(document: StoredDocument, corpus_dir: Path) -> Path:
    """The document's file, only if it still lies where it was ingested and inside the corpus when relative."""
    stored = Path(document.path)
    resolved = stored.resolve()
    corpus = corpus_dir.resolve()
    inside = resolved == corpus or corpus in resolved.parents
    relative_key = not Path(document.key).is_absolute()
    if (relative_key and not inside) or (not relative_key and resolved != stored) or not resolved.is_file():
        raise NotFoundError(
            f"The file of document {document.id!r} is no longer available at its ingested place; "
            "run `kb ingest` to bring the index up to date."
        )
    return resolved


@router.get("/health", response_model=Health, tags=["service"])
def health(searcher: SearcherDep) -> Health:
    """Whether the service can answer searches: the model, the index version and its counts."""
    try:
        index = searcher.index
    except KBError as exc:
        return Health(status="degraded", model=searcher.settings.model, detail=str(exc))
    return Health(
        status="ready",
        model=index.manifest.model,
        index_version=index.manifest.version,
        documents=index.manifest.documents,
        chunks=index.manifest.chunks,
    )
