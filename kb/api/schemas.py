"""Response models of the HTTP API (separate from the internal dataclasses)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kb.search import Filters, Hit
from kb.store import StoredDocument

Status = Literal["draft", "published", "archived"]


class DocumentRef(BaseModel):
    """A short reference to another document (near-duplicates, "also from")."""

    id: str
    title: str
    district: str
    year: int | None

    @classmethod
    def of(cls, doc: StoredDocument) -> DocumentRef:
        meta = doc.metadata
        return cls(id=doc.id, title=meta.title, district=meta.district, year=meta.year)


class DocumentOut(BaseModel):
    id: str
    title: str
    district: str
    doc_type: str
    topics: list[str]
    audience: list[str]
    year: int | None
    language: str
    easy_language: bool
    licence: str
    source: str
    file_type: str
    path: str = Field(description="Path of the file relative to the corpus (or absolute when outside it).")
    pages: int | None
    words: int
    chunks: int
    ingested_at: str
    file_url: str
    status: Status = Field(description="draft, published (shown to readers) or archived (retired).")
    recommended: bool = Field(description="A recommendation of the coordinating office (LaKI).")
    review_by: str = Field(description="ISO date by which a curator should review the document ('' if none).")
    superseded_by: str = Field(description="Id of the document that replaces this one ('' if none).")
    near_duplicates: list[DocumentRef] = Field(
        default_factory=list, description="Documents with nearly the same text (e.g. adapted by another district)."
    )

    @classmethod
    def of(cls, doc: StoredDocument, near_duplicates: list[StoredDocument] | None = None) -> DocumentOut:
        meta = doc.metadata
        return cls(
            id=doc.id,
            title=meta.title,
            district=meta.district,
            doc_type=meta.doc_type,
            topics=list(meta.topics),
            audience=list(meta.audience),
            year=meta.year,
            language=meta.language,
            easy_language=meta.easy_language,
            licence=meta.licence,
            source=meta.source,
            file_type=doc.file_type,
            path=doc.key,
            pages=doc.pages,
            words=doc.words,
            chunks=doc.chunks,
            ingested_at=doc.ingested_at,
            file_url=f"/documents/{doc.id}/file",
            status=meta.status,
            recommended=meta.recommended,
            review_by=meta.review_by,
            superseded_by=meta.superseded_by,
            near_duplicates=[DocumentRef.of(d) for d in near_duplicates or []],
        )


class SearchHitOut(BaseModel):
    score: float = Field(
        description="Relevance (cosine for dense, BM25 for lexical, fused rank score for hybrid); compare only "
        "within one response."
    )
    chunk_id: int
    document_id: str
    title: str
    district: str
    doc_type: str
    topics: list[str]
    year: int | None
    language: str
    page: int | None = Field(description="Page of the PDF where the chunk starts; null for formats without pages.")
    heading: str
    snippet: str = Field(description="About 40 words of the passage around the words that match the query.")
    highlights: list[tuple[int, int]] = Field(
        description="Character ranges [start, end) in `snippet` of words that match the query (stem-aware)."
    )
    text: str
    more_chunks: int = Field(description="Further passages of the same document that also matched.")
    file_url: str = Field(description="The original file; for PDFs it opens at the chunk's page.")
    recommended: bool = Field(False, description="Recommended by the coordinating office (LaKI).")
    status: Status = "published"
    also_from: list[DocumentRef] = Field(
        default_factory=list, description="Near-duplicates of this document (shown as one result)."
    )

    @classmethod
    def of(cls, hit: Hit) -> SearchHitOut:
        meta = hit.document.metadata
        url = f"/documents/{hit.document.id}/file"
        if hit.document.file_type == "pdf" and hit.chunk.page:
            url += f"#page={hit.chunk.page}"
        return cls(
            score=round(hit.score, 5),
            chunk_id=hit.chunk_id,
            document_id=hit.document.id,
            title=meta.title,
            district=meta.district,
            doc_type=meta.doc_type,
            topics=list(meta.topics),
            year=meta.year,
            language=meta.language,
            page=hit.chunk.page,
            heading=hit.chunk.heading,
            snippet=hit.snippet,
            highlights=hit.highlights,
            text=hit.chunk.text,
            more_chunks=hit.more_chunks,
            file_url=url,
            recommended=meta.recommended,
            status=meta.status,
            also_from=[DocumentRef.of(d) for d in hit.also_from],
        )


class SearchResponse(BaseModel):
    query: str
    k: int
    mode: Literal["hybrid", "dense", "lexical"]
    lexical_weight: float = Field(description="Weight of lexical evidence in this search (0 = dense only).")
    took_ms: float
    index_version: int
    results: list[SearchHitOut]
    facets: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Counts per metadata value over the best 100 matching documents (when facets=true).",
    )


class FiltersIn(BaseModel):
    """Metadata filters: values within a field are alternatives, fields are combined."""

    model_config = ConfigDict(extra="forbid")

    district: list[str] = Field(default_factory=list, max_length=60)
    doc_type: list[str] = Field(default_factory=list, max_length=20)
    topic: list[str] = Field(default_factory=list, max_length=40)
    audience: list[str] = Field(default_factory=list, max_length=40)
    language: list[str] = Field(default_factory=list, max_length=20)
    year_from: int | None = Field(None, ge=1900, le=2100)
    year_to: int | None = Field(None, ge=1900, le=2100)
    status: list[Status] = Field(
        default_factory=list,
        max_length=3,
        description="Review status (editors and curators only); default: published documents.",
    )

    def to_filters(self) -> Filters:
        return Filters(
            district=tuple(self.district),
            doc_type=tuple(self.doc_type),
            topic=tuple(self.topic),
            audience=tuple(self.audience),
            language=tuple(self.language),
            year_from=self.year_from,
            year_to=self.year_to,
            status=tuple(self.status),
        )


class SearchRequest(BaseModel):
    """The body of `POST /search`: the same as the query parameters of `GET /search`."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(description="The question or words to search for, in any language.", max_length=10_000)
    k: int = 10
    mode: Literal["hybrid", "dense", "lexical"] | None = None
    group: bool = True
    facets: bool = False
    filters: FiltersIn = Field(default_factory=FiltersIn)


class SimilarResponse(BaseModel):
    document_id: str
    other_districts: bool
    results: list[SearchHitOut]


class DocumentList(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[DocumentOut]


class Health(BaseModel):
    status: Literal["starting", "ready", "degraded"]
    model: str
    index_version: int | None = None
    documents: int | None = None
    chunks: int | None = None
    detail: str | None = Field(None, description="Why the service is degraded, and what to do.")


class ErrorOut(BaseModel):
    detail: str


class MetadataPatch(BaseModel):
    """Fields to change; fields left out stay as they are. Unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=500)
    district: str | None = Field(None, max_length=200)
    doc_type: str | None = Field(None, max_length=100)
    topics: list[str] | None = Field(None, max_length=40)
    audience: list[str] | None = Field(None, max_length=40)
    year: int | None = Field(None, ge=1900, le=2100)
    language: str | None = Field(None, max_length=20)
    easy_language: bool | None = None
    licence: str | None = Field(None, max_length=200)
    source: str | None = Field(None, max_length=500)
    status: Status | None = None
    recommended: bool | None = Field(None, description="Curators only.")
    review_by: dt.date | None = None
    superseded_by: str | None = Field(
        None, max_length=64, description="Id of the document that replaces this one."
    )

    def changes(self) -> dict[str, Any]:
        """The fields that were sent (an explicit null clears a text field)."""
        sent = self.model_dump(exclude_unset=True, mode="json")
        return {k: (_CLEARED.get(k, "") if v is None else v) for k, v in sent.items()}


#: What an explicit null sets a field to (text fields become empty).
_CLEARED: dict[str, Any] = {"topics": [], "audience": [], "year": None, "easy_language": False}
_CLEARED |= {"recommended": False}


class UploadOut(BaseModel):
    id: str
    index_version: int = Field(description="The index version that contains the document (live when answered).")
    document: DocumentOut
    near_duplicates: list[DocumentRef] = Field(
        description="Documents already stored that have nearly the same text; shown as one search result."
    )


class RetireOut(BaseModel):
    id: str
    status: Literal["archived", "purged"]
    index_version: int


class AuditOut(BaseModel):
    id: int
    at: str
    actor: str = Field(description="Label and id of the key (or cli:<user>); never the key itself.")
    action: str
    document_id: str
    title: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str


class AuditList(BaseModel):
    offset: int
    limit: int
    items: list[AuditOut]
