"""What the knowledge base stores: documents, their metadata, sections and chunks; ids and content hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb import fields
from kb.fields import Status, Value


class Metadata:
    """Provenance and classification of one document, as curators describe it: a value for every field of the
    registry (:data:`kb.fields.FIELDS`), read as attributes (``meta.district``) or by name (``meta.get(name)``).

    Immutable and compared by value. The annotations below only type, for mypy, the fields the code reads by name;
    the registry declares every field, its kind and its default.
    """

    title: str
    district: str
    doc_type: str
    topics: tuple[str, ...]
    audience: tuple[str, ...]
    year: int | None
    language: str
    status: Status
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


def document_id(key: str) -> str:
    """A stable, URL-safe id for a document, derived from its path key (relative to the corpus when inside it)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def file_hash(*parts: bytes) -> str:
    """The content hash that decides whether a file must be re-ingested (file bytes plus sidecar bytes)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()
