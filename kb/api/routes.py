"""The JSON API: search, documents, files, health."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from kb.api.deps import CuratorDep, PrincipalDep, SearcherDep
from kb.api.schemas import (
    ConstraintOut,
    DocumentList,
    DocumentOut,
    DocumentTextOut,
    ErrorOut,
    FilterQuery,
    FiltersIn,
    Health,
    SearchHitOut,
    SearchRequest,
    SearchResponse,
    SimilarResponse,
)
from kb.curation.keys import Principal
from kb.errors import KBError, NotFoundError
from kb.fields import Mode, Status
from kb.search import Searcher
from kb.storage import StorageReader, StoredDocument
from kb.visibility import ANONYMOUS, visible_to

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


def _response(searcher: Searcher, request: SearchRequest, principal: Principal) -> SearchResponse:
    """The search and its response model, in one trip to the thread pool (the async endpoints' only one: the
    response is then checked on the event loop, not in a second trip)."""
    filters = request.filters.to_filters()
    if filters.restricted:
        principal.require_writer()  # drafts and archived documents are for editors and curators
    result = searcher.search(
        request.q,
        request.k,
        mode=request.mode,
        group=request.group,
        filters=filters,
        facets=request.facets,
        viewer=principal.viewer,
        ignore_constraints=request.ignore_constraints,
    )
    return SearchResponse(
        query=result.query,
        k=request.k,
        mode=result.mode,
        lexical_weight=round(result.lexical_weight, 3),
        confidence=round(result.confidence, 3),
        nothing_fits=result.nothing_fits,
        took_ms=round(result.took_ms, 2),
        index_version=result.index_version,
        results=[SearchHitOut.of(hit) for hit in result.hits],
        facets=result.facets,
        constraints=[ConstraintOut.of(c) for c in result.constraints],
    )


@router.get("/search", response_model=SearchResponse, responses=ERRORS, tags=["search"])
async def search(
    searcher: SearcherDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(description="The question or words to search for, in any language.")] = "",
    k: Annotated[int, Query(description="How many results (1–100).")] = 10,
    mode: Annotated[
        Mode | None,
        Query(description="hybrid (default): meaning and words; dense: meaning only; lexical: words only."),
    ] = None,
    group: Annotated[
        bool, Query(description="One result per document (its best passage); false gives raw passages.")
    ] = True,
    facets: Annotated[bool, Query(description="Also count metadata values of the matching documents.")] = False,
    ignore_constraints: Annotated[
        list[str] | None,
        Query(description="Fields whose constraint named in the query is not preferred (repeatable)."),
    ] = None,
    *,
    filters: Annotated[FilterQuery, Query()],
) -> SearchResponse:
    """The documents (or passages) that best answer the query, best first, optionally filtered."""
    chosen = FiltersIn.model_validate(filters.model_dump())  # the filters of POST /search, as query parameters
    ignored = ignore_constraints or []
    request = SearchRequest(
        q=q, k=k, mode=mode, group=group, facets=facets, filters=chosen, ignore_constraints=ignored
    )
    return await run_in_threadpool(_response, searcher, request, principal)


@router.post("/search", response_model=SearchResponse, responses=ERRORS, tags=["search"])
async def search_post(searcher: SearcherDep, principal: PrincipalDep, request: SearchRequest) -> SearchResponse:
    """The same search with a JSON body (for long queries and many filters)."""
    return await run_in_threadpool(_response, searcher, request, principal)


@router.get("/documents/{doc_id}/similar", response_model=SimilarResponse, responses=ERRORS, tags=["documents"])
def similar(
    searcher: SearcherDep,
    principal: PrincipalDep,
    doc_id: str,
    k: Annotated[int, Query(description="How many documents (1–100).")] = 5,
    other_districts: Annotated[bool, Query(description="Only documents from other districts.")] = True,
) -> SimilarResponse:
    """Documents most similar to this one (similar approaches), one result per document."""
    visible_document(searcher, principal, doc_id)
    hits = searcher.similar(doc_id, k, other_districts=other_districts, viewer=principal.viewer)
    return SimilarResponse(
        document_id=doc_id, other_districts=other_districts, results=[SearchHitOut.of(h) for h in hits]
    )


@router.get("/documents", response_model=DocumentList, responses=ERRORS, tags=["documents"])
def list_documents(
    searcher: SearcherDep,
    principal: PrincipalDep,
    offset: Annotated[int, Query(ge=0, description="How many documents to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size (1–200).")] = 50,
    status: Annotated[
        list[Status] | None,
        Query(description="Review status (editors and curators only; default: published)."),
    ] = None,
) -> DocumentList:
    """The documents in the index, ordered by path, one page at a time (published ones unless asked)."""
    if status:
        principal.require_writer()
    wanted = status or ()
    index = searcher.reader(principal.viewer)
    documents = sorted((d for d in index.documents.values() if visible_to(d, wanted)), key=lambda d: d.key)
    page = documents[offset : offset + limit]
    return DocumentList(total=len(documents), offset=offset, limit=limit, items=[DocumentOut.of(d) for d in page])


@router.get("/documents/{doc_id}", response_model=DocumentOut, responses=ERRORS, tags=["documents"])
def get_document(searcher: SearcherDep, principal: PrincipalDep, doc_id: str) -> DocumentOut:
    """One document's metadata and chunk count (drafts only for editors and curators)."""
    index = searcher.reader(principal.viewer)  # one version for both reads
    document = visible_document(searcher, principal, doc_id, index)
    return DocumentOut.of(document, index.near_duplicates_of(doc_id))


@router.get("/documents/{doc_id}/text", response_model=DocumentTextOut, responses=ERRORS, tags=["documents"])
def get_document_text(searcher: SearcherDep, principal: PrincipalDep, doc_id: str) -> DocumentTextOut:
    """What the index holds of one document as it was read: its text page by page (with whether OCR read it)
    and its detected headings with their pages. A file without pages is one page (drafts only for editors and
    curators)."""
    index = searcher.reader(principal.viewer)  # one version for both reads
    document = visible_document(searcher, principal, doc_id, index)
    text = index.document_text(doc_id)
    if text is None:
        raise NotFoundError(_unknown(doc_id))
    return DocumentTextOut.of(document, text)


@router.get("/documents/{doc_id}/file", responses=ERRORS, tags=["documents"], response_class=FileResponse)
def get_document_file(
    searcher: SearcherDep, principal: PrincipalDep, curator: CuratorDep, doc_id: str
) -> FileResponse:
    """The original file of a document, as it was ingested."""
    document = curator.with_local_file(visible_document(searcher, principal, doc_id))
    path = safe_file_path(document, searcher.settings.corpus_dir, searcher.settings.uploads_dir)
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


def visible_document(
    searcher: Searcher, principal: Principal, doc_id: str, index: StorageReader | None = None
) -> StoredDocument:
    """The document (of ``index``, default: the live version as the caller may see it), unless it is a draft
    and the caller a reader (drafts are not public yet). A document the caller may not see is unknown (404)."""
    index = searcher.reader(principal.viewer) if index is None else index
    document = index.documents.get(doc_id)
    if document is None or not visible_to(document, principal.may_open):
        raise NotFoundError(_unknown(doc_id))
    return document


def _unknown(doc_id: str) -> str:
    return f"There is no document with id {doc_id!r}; search again to get current ids."


def safe_file_path(document: StoredDocument, corpus_dir: Path, uploads_dir: Path | None = None) -> Path:
    """The document's file, only if it still lies where it was ingested: inside the corpus when its key is
    relative, in the uploads folder when it was uploaded."""
    stored = Path(document.path)
    resolved = stored.resolve()
    corpus = corpus_dir.resolve()
    inside = resolved == corpus or corpus in resolved.parents
    if document.key.startswith("upload/") and uploads_dir is not None:
        inside = resolved.parent == uploads_dir.resolve() and resolved.name == document.key.removeprefix("upload/")
    relative_key = not Path(document.key).is_absolute()
    if (relative_key and not inside) or (not relative_key and resolved != stored) or not resolved.is_file():
        raise NotFoundError(
            f"The file of document {document.id!r} is no longer available at its ingested place; "
            "run `kb ingest` to bring the index up to date."
        )
    return resolved


@router.get("/health", response_model=Health, tags=["service"])
def health(request: Request) -> Health:
    """Says "starting" while the model loads, "ready" when searches can be answered, or "degraded" and why."""
    settings = request.app.state.searcher.settings
    startup = request.app.state.startup
    if startup.state == "starting":
        return Health(status="starting", model=settings.model, detail="Loading the search model.")
    if startup.problem is not None:
        return Health(status="degraded", model=settings.model, detail=startup.problem)
    try:  # the public totals: counting every document would tell anyone how many are not public
        index = request.app.state.searcher.reader(ANONYMOUS)
    except KBError as exc:
        return Health(status="degraded", model=settings.model, detail=str(exc))
    return Health(
        status="ready",
        model=index.manifest.model,
        index_version=index.manifest.version,
        documents=index.manifest.documents,
        chunks=index.manifest.chunks,
    )
