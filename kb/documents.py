"""What the knowledge base stores: documents, their metadata, sections and chunks; ids and content hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Metadata keys a document may carry (front matter, sidecar ``<file>.meta.yaml``); all optional but ``title``.
METADATA_FIELDS = (
    "title",
    "district",
    "doc_type",
    "topics",
    "audience",
    "year",
    "language",
    "easy_language",
    "licence",
    "source",
    "status",
    "recommended",
    "review_by",
    "superseded_by",
)
LIST_FIELDS = ("topics", "audience")
#: Review status of a document: only ``published`` documents are shown to readers.
STATUSES = ("draft", "published", "archived")


@dataclass(frozen=True)
class Metadata:
    """Provenance and classification of one document, as curators describe it."""

    title: str
    district: str = ""
    doc_type: str = ""
    topics: tuple[str, ...] = ()
    audience: tuple[str, ...] = ()
    year: int | None = None
    language: str = "de"
    easy_language: bool = False
    licence: str = ""
    source: str = ""
    status: str = "published"
    recommended: bool = False  # a LaKI recommendation (badge and a small ranking boost)
    review_by: str = ""  # ISO date by which a curator should look at the document again
    superseded_by: str = ""  # id of the document that replaces this one

    @property
    def published(self) -> bool:
        return self.status == "published"

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "district": self.district,
            "doc_type": self.doc_type,
            "topics": list(self.topics),
            "audience": list(self.audience),
            "year": self.year,
            "language": self.language,
            "easy_language": self.easy_language,
            "licence": self.licence,
            "source": self.source,
            "status": self.status,
            "recommended": self.recommended,
            "review_by": self.review_by,
            "superseded_by": self.superseded_by,
        }


@dataclass(frozen=True)
class Section:
    """A run of text under one heading, on one page (``page`` is None for formats without pages)."""

    text: str
    heading: str = ""
    page: int | None = None


@dataclass(frozen=True)
class Document:
    """A loaded file: its metadata and its text in reading order."""

    path: Path
    file_type: str
    metadata: Metadata
    sections: tuple[Section, ...]
    pages: int | None = None

    @property
    def word_count(self) -> int:
        return sum(len(s.text.split()) for s in self.sections)


@dataclass(frozen=True)
class Chunk:
    """A passage of a document that is embedded and retrieved as one unit."""

    ordinal: int
    text: str
    heading: str = ""
    page: int | None = None
    page_end: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def document_id(key: str) -> str:
    """A stable, URL-safe id for a document, derived from its path key (relative to the corpus when inside it)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def file_hash(*parts: bytes) -> str:
    """The content hash that decides whether a file must be re-ingested (file bytes plus sidecar bytes)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()
