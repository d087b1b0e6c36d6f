"""What the knowledge base stores: documents, their metadata, sections and chunks; ids and content hashes."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from kb import fields
from kb.fields import DocType, Status, Value, Visibility


class Metadata:
    """Provenance and classification of one document, as curators describe it: a value for every field of the
    registry (:data:`kb.fields.FIELDS`), read as attributes (``meta.district``) or by name (``meta.get(name)``).

    Immutable and compared by value. The annotations below only type, for mypy, the fields the code reads by name;
    the registry declares every field, its kind and its default.
    """

    title: str
    district: str
    doc_type: DocType
    topics: tuple[str, ...]
    audience: tuple[str, ...]
    year: int | None
    language: str
    status: Status
    visibility: Visibility  # who may see it: oeffentlich, netzwerk or kommune (kb.visibility)
    jahrgang: str  # a span of grades, "5-10" ('' if none)
    translation_of: str  # the id or corpus path of the document this one translates ('' if none)
    languages: tuple[str, ...]
    valid_until: str  # ISO date ('' if open-ended)
    recommended: bool
    review_by: str  # ISO date by which a curator should look at the document again ('' if none)
    superseded_by: str  # id of the document that replaces this one ('' if none)

    def __init__(self, **values: Value) -> None:
        """Values already valid for their fields (parsing and checking is the loaders' job); the others get
        their field's default. An unknown name is a :class:`TypeError`, as for any other constructor."""
        registry = fields.FIELDS
        if len(values) > sum(f.name in values for f in registry):
            unknown = sorted(set(values).difference(f.name for f in registry))
            raise TypeError(f"Metadata has no field {unknown[0]!r}")
        self.__dict__.update({f.name: values.get(f.name, f.empty) for f in registry})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Metadata:
        """Metadata as :meth:`as_dict` wrote it (lists back to tuples); keys of unknown fields are ignored."""
        meta = cls.__new__(cls)  # one pass over the registry: every stored document is read this way
        meta.__dict__.update(
            {
                f.name: (tuple(raw[f.name]) if f.kind == "list" else raw[f.name]) if f.name in raw else f.empty
                for f in fields.FIELDS
            }
        )
        return meta

    def get(self, name: str) -> Value:
        """The value of the field ``name``."""
        value: Value = self.__dict__[name]
        return value

    @property
    def published(self) -> bool:
        return self.status == "published"

    def as_dict(self) -> dict[str, Any]:
        """Every field in registry order, as JSON values (lists for list fields)."""
        return {name: list(v) if isinstance(v, tuple) else v for name, v in self.__dict__.items()}

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Metadata is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Metadata is immutable; cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metadata) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.items()))

    def __repr__(self) -> str:
        return "Metadata(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


@dataclass(frozen=True)
class Section:
    """A run of text under one heading, on one page (``page`` is None for formats without pages); ``ocr``: the
    text was recognised in an image of the page (the page has no text layer), ``confidence`` the mean confidence
    of its page's words then (0–100)."""

    text: str
    heading: str = ""
    page: int | None = None
    ocr: bool = False
    confidence: float | None = None


@dataclass(frozen=True)
class Heading:
    """A heading the loader detected, on its page (None for formats without pages)."""

    text: str
    page: int | None = None


class PageText(NamedTuple):
    """The text read on one page, in reading order; ``ocr``: some of it was recognised by OCR, with the mean
    word ``confidence`` (0–100; None for a text layer)."""

    page: int
    text: str
    ocr: bool
    confidence: float | None = None


class PageHeading(NamedTuple):
    """A detected heading and its page."""

    text: str
    page: int


@dataclass(frozen=True)
class DocumentText:
    """What the loader read of a document, page by page, with its headings (what ``kb show`` shows; chunks overlap
    and so cannot give it back). A file without pages (Markdown, text, Word, HTML) is one page, number 1."""

    pages: tuple[PageText, ...]
    headings: tuple[PageHeading, ...]


@dataclass(frozen=True)
class Document:
    """A loaded file: its metadata, its text in reading order and the headings detected in it; ``needs_ocr``: pages
    without a text layer that OCR could not read, and ``ocr_problem`` why (Tesseract not installed, say)."""

    path: Path
    file_type: str
    metadata: Metadata
    sections: tuple[Section, ...]
    pages: int | None = None
    headings: tuple[Heading, ...] = ()
    needs_ocr: tuple[int, ...] = ()
    ocr_problem: str = ""
    #: Pages with nothing to index: blank, only page furniture (a running header, a page number), or an image in
    #: which OCR found no words. With ``needs_ocr`` and the pages that carry text, every page is accounted for.
    blank_pages: tuple[int, ...] = ()

    @property
    def word_count(self) -> int:
        return sum(len(s.text.split()) for s in self.sections)

    @property
    def ocr_pages(self) -> tuple[int, ...]:
        """The pages whose text was read by OCR."""
        return tuple(sorted({s.page or 1 for s in self.sections if s.ocr}))

    def text_by_page(self) -> DocumentText:
        """The sections' texts page by page (pages 1 to :attr:`pages`, a page without text as ``""``; the texts
        of one page separated by a blank line) and the headings with their pages. Without pages, all of it is
        page 1."""
        texts: defaultdict[int, list[str]] = defaultdict(list)
        ocr: dict[int, float | None] = {}
        for section in self.sections:
            page = section.page or 1
            texts[page].append(section.text)
            if section.ocr:
                ocr[page] = section.confidence
        last = max([self.pages or 1, *texts])
        return DocumentText(
            pages=tuple(
                PageText(n, "\n\n".join(texts.get(n, ())), n in ocr, ocr.get(n)) for n in range(1, last + 1)
            ),
            headings=tuple(PageHeading(h.text, h.page or 1) for h in self.headings),
        )


@dataclass(frozen=True)
class Chunk:
    """A passage of a document that is embedded and retrieved as one unit."""

    ordinal: int
    text: str
    heading: str = ""
    page: int | None = None
    page_end: int | None = None


def document_id(key: str) -> str:
    """A stable, URL-safe id for a document, derived from its path key (relative to the corpus when inside it)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def file_hash(*parts: bytes) -> str:
    """The content hash that decides whether a file must be re-ingested (file bytes plus sidecar bytes)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()
