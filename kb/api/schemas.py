"""Response models of the HTTP API (separate from the internal dataclasses)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, create_model, model_serializer

from kb import fields
from kb.constraints import Constraint
from kb.documents import DocumentText
from kb.fields import YEAR_MAX, YEAR_MIN, Mode, Status
from kb.filters import Filters
from kb.search import Hit
from kb.store import StoredDocument

# -- models derived from the field registry (kb/fields.py) -------------------------------------------------------
# Their metadata fields are generated from the registry when this module is imported; mypy sees the static
# part (the base classes), the app the whole model.
Fields = dict[str, tuple[Any, Any]]  # name: (type, pydantic Field)


def _word_type(f: fields.Field) -> Any:
    """The type of one text value of the field (one of its choices, if it has them)."""
    return Literal[f.choices] if f.choices else str


def _value_type(f: fields.Field, date: Any = str) -> Any:
    """The JSON type of the field's value (a date is sent as ``date`` and shown as an ISO text)."""
    text = Literal[("", *f.choices)] if f.choices and f.empty == "" else _word_type(f)  # '' when none is set
    kinds = {"text": text, "list": list.__class_getitem__(_word_type(f)), "year": int | None}
    return {**kinds, "bool": bool, "date": date, "span": str}[f.kind]


def _description(f: fields.Field) -> str | None:
    """What the field holds (a filter field's help describes the filter instead)."""
    if f.filter:
        return f"One of {', '.join(f.choices)}." if f.choices else None
    return " ".join((f.help, "Curators only." if f.curators_only else "")).strip() or None


def _metadata_out() -> Fields:
    """Every metadata field as a response shows it."""
    return {f.name: (_value_type(f), Field(description=_description(f))) for f in fields.FIELDS}


def _filters_in() -> Fields:
    """The filters of a search request: values per field, or a year range."""
    model: Fields = {}
    for f in fields.filtered():
        if f.ranged:
            low, high = f.filter_params()
            model[low] = (
                int | None,
                Field(None, ge=YEAR_MIN, le=YEAR_MAX, description=f"{f.help}: this or later."),
            )
            model[high] = (
                int | None,
                Field(None, ge=YEAR_MIN, le=YEAR_MAX, description=f"{f.help}: this or earlier."),
            )
        else:
            most = len(f.choices) or f.max_values
            model[f.key] = (
                list.__class_getitem__(_word_type(f)),
                Field(default_factory=list, max_length=most, description=f.help),
            )
    return model


def _metadata_patch() -> Fields:
    """Every metadata field as a change request sends it: all optional, with the API's limits."""
    model: Fields = {}
    for f in fields.FIELDS:
        limits: dict[str, dict[str, Any]] = {
            "text": {"min_length": 1 if f.required else None, "max_length": None if f.choices else f.max_chars},
            "list": {"max_length": f.max_values},
            "year": {"ge": YEAR_MIN, "le": YEAR_MAX},
        }
        info = Field(None, description=_description(f), **limits.get(f.kind, {}))
        model[f.name] = (_value_type(f, date=dt.date) | None, info)
    return model


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


class _DocumentOut(BaseModel):
    """A document: its id, every metadata field of the registry, and what the index knows about its file."""

    id: str
    file_type: str
    path: str = Field(description="Path of the file relative to the corpus (or absolute when outside it).")
    pages: int | None
    words: int
    chunks: int
    ingested_at: str
    file_url: str
    near_duplicates: list[DocumentRef] = Field(
        default_factory=list, description="Documents with nearly the same text (e.g. adapted by another district)."
    )

    @classmethod
    def of(cls, doc: StoredDocument, near_duplicates: list[StoredDocument] | None = None) -> DocumentOut:
        return DocumentOut(
            id=doc.id,
            file_type=doc.file_type,
            path=doc.key,
            pages=doc.pages,
            words=doc.words,
            chunks=doc.chunks,
            ingested_at=doc.ingested_at,
            file_url=f"/documents/{doc.id}/file",
            near_duplicates=[DocumentRef.of(d) for d in near_duplicates or []],
            **doc.metadata.as_dict(),
        )


if TYPE_CHECKING:
    DocumentOut = _DocumentOut
else:
    DocumentOut = create_model(
        "DocumentOut", __base__=_DocumentOut, __doc__=_DocumentOut.__doc__, **_metadata_out()
    )


class PageTextOut(BaseModel):
    page: int = Field(description="Page number (1 for formats without pages, which are one page).")
    text: str = Field(description="The text read on the page, in reading order (headings are listed apart).")
    ocr: bool = Field(description="Whether the text was recognised by OCR (the page has no text layer).")
    confidence: float | None = Field(
        None, description="Mean confidence of the words OCR read on the page (0-100); only on pages read by OCR."
    )

    @model_serializer(mode="wrap")
    def _without_empty_confidence(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A page of a text layer has no confidence: the field is left out (as ``kb show --json`` does)."""
        fields: dict[str, Any] = handler(self)
        if fields.get("confidence") is None:
            fields.pop("confidence", None)
        return fields


class HeadingOut(BaseModel):
    text: str
    page: int


class DocumentTextOut(BaseModel):
    """What the index holds of one document as it was read: its text page by page and its detected headings."""

    id: str
    path: str = Field(description="Path of the file relative to the corpus (or absolute when outside it).")
    title: str
    file_type: str
    pages: list[PageTextOut]
    headings: list[HeadingOut]

    @classmethod
    def of(cls, doc: StoredDocument, text: DocumentText) -> DocumentTextOut:
        return cls(
            id=doc.id,
            path=doc.key,
            title=doc.metadata.title,
            file_type=doc.file_type,
            pages=[PageTextOut(page=p.page, text=p.text, ocr=p.ocr, confidence=p.confidence) for p in text.pages],
            headings=[HeadingOut(text=h.text, page=h.page) for h in text.headings],
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
    page_end: int | None = Field(
        None, description="Page of the PDF where the chunk ends (equal to `page` for a chunk on one page)."
    )
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
            page_end=hit.page_end,
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


class ConstraintOut(BaseModel):
    """A grade, language, district, year or document type the query names: documents that satisfy it are ranked
    higher (none is left out). Send its `field` in `ignore_constraints` to search without it."""

    field: str = Field(description="The filter it prefers: jahrgang, languages, district, year or doc_type.")
    value: str = Field(description="The value as that filter takes it ('5-10', 'ar', 'Dortmund', '2020..').")
    label: str = Field(description="German label, as the web page shows it ('Klasse 5', 'Jahr: ab 2020').")
    text: str = Field(description="The words of the query it was read from.")

    @classmethod
    def of(cls, c: Constraint) -> ConstraintOut:
        return cls(field=c.field, value=c.value, label=c.label, text=c.text)


class SearchResponse(BaseModel):
    query: str
    k: int
    mode: Mode
    lexical_weight: float = Field(description="Weight of lexical evidence in this search (0 = dense only).")
    confidence: float = Field(
        0.0, description="How sure the search is that its best results fit the query, from 0 (not at all) to 1."
    )
    nothing_fits: bool = Field(
        False,
        description="True when no document fits the query well: the results are weak matches, and a broader "
        "search (fewer words, fewer filters) is the better next step.",
    )
    took_ms: float
    index_version: int
    results: list[SearchHitOut]
    facets: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Counts per metadata value over the best 100 matching documents (when facets=true).",
    )
    constraints: list[ConstraintOut] = Field(
        default_factory=list,
        description="What the query names as a grade, language, district, year or document type, preferred in "
        "the ranking of documents (not filtered; raw passages, group=false, are not re-ranked).",
    )


class _FiltersIn(BaseModel):
    """Metadata filters: values within a field are alternatives, fields are combined."""

    model_config = ConfigDict(extra="forbid")

    def to_filters(self) -> Filters:
        return Filters(**self.model_dump())


class _FilterQuery(_FiltersIn):
    """The same filters as query parameters of `GET /search` (where other parameters are not filters)."""

    model_config = ConfigDict(extra="ignore")


if TYPE_CHECKING:
    FiltersIn = _FiltersIn
    FilterQuery = _FilterQuery
else:
    FiltersIn = create_model("FiltersIn", __base__=_FiltersIn, __doc__=_FiltersIn.__doc__, **_filters_in())
    FilterQuery = create_model("FilterQuery", __base__=_FilterQuery, __doc__=_FilterQuery.__doc__, **_filters_in())


class SearchRequest(BaseModel):
    """The body of `POST /search`: the same as the query parameters of `GET /search`."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(description="The question or words to search for, in any language.", max_length=10_000)
    k: int = 10
    mode: Mode | None = None
    group: bool = True
    facets: bool = False
    filters: FiltersIn = Field(default_factory=FiltersIn)
    ignore_constraints: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Fields whose constraint named in the query is not preferred (see `constraints`).",
    )


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


class _MetadataPatch(BaseModel):
    """Fields to change; fields left out stay as they are. Unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    def changes(self) -> dict[str, Any]:
        """The fields that were sent (an explicit null clears a field: empty text, no list, no year, false)."""
        sent = self.model_dump(exclude_unset=True, mode="json")
        return {k: (_cleared(k) if v is None else v) for k, v in sent.items()}


if TYPE_CHECKING:
    MetadataPatch = _MetadataPatch
else:
    MetadataPatch = create_model(
        "MetadataPatch", __base__=_MetadataPatch, __doc__=_MetadataPatch.__doc__, **_metadata_patch()
    )


def _cleared(name: str) -> Any:
    empty = fields.EMPTY[fields.field(name).kind]
    return list(empty) if isinstance(empty, tuple) else empty


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
