"""Response models of the HTTP API (separate from the internal dataclasses)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from kb.search import Hit
from kb.store import StoredDocument


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

    @classmethod
    def of(cls, doc: StoredDocument) -> DocumentOut:
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
        )


class SearchHitOut(BaseModel):
    score: float = Field(description="Cosine similarity of query and chunk (higher is better).")
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
    snippet: str
    text: str
    more_chunks: int = Field(description="Further passages of the same document that also matched.")
    file_url: str = Field(description="The original file; for PDFs it opens at the chunk's page.")

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
            text=hit.chunk.text,
            more_chunks=hit.more_chunks,
            file_url=url,
        )


class SearchResponse(BaseModel):
    query: str
    k: int
    took_ms: float
    index_version: int
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
