"""The metadata fields of a document, each declared once, and the search modes and review statuses.

Everything that knows about a field derives it from :data:`FIELDS`: :class:`kb.documents.Metadata` (what a
document carries and how it is stored), the front-matter and sidecar parser (``kb/loaders/metadata.py``), the
search filters and facets (``kb/filters.py``), the API models (``kb/api/schemas.py``), the CLI's ``-f KEY=VALUE``
and ``-m KEY=VALUE`` and the web page's facets and URL parameters. A new field is one more :class:`Field` here.

Consumers read the registry when they run (``fields.FIELDS``, :func:`field`, :func:`filtered`, :func:`faceted`),
not a copy taken at import, so a test can extend it; only the API's models are built when ``kb.api.schemas`` is
imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Mode = Literal["hybrid", "dense", "lexical"]
#: The search modes: meaning and words fused (default), meaning only, words only.
MODES: tuple[Mode, ...] = get_args(Mode)
Status = Literal["draft", "published", "archived"]
#: Review status of a document: only ``published`` documents are shown to readers.
STATUSES: tuple[Status, ...] = get_args(Status)

Kind = Literal["text", "list", "year", "bool", "date"]
#: A field's value: text, a tuple of words, a year (or None), a flag, an ISO date ('' when none).
Value = str | tuple[str, ...] | int | bool | None
YEAR_MIN, YEAR_MAX = 1900, 2100
#: The value a field has when a document does not set it, per kind (a field may declare another default).
EMPTY: dict[Kind, Value] = {"text": "", "list": (), "year": None, "bool": False, "date": ""}


@dataclass(frozen=True)
class Field:
    """One metadata field: its name in front matter, sidecars, JSON and the store; how it is typed, filtered,
    counted and labelled.

    ``param`` is its name in search filters (CLI ``-f``, URL and API): ``topic=Sport`` filters ``topics``. A
    ``year`` field filters on a range, ``<param>_from`` and ``<param>_to`` (the CLI takes ``year=2019..2023``).
    Values of ``text`` and ``list`` fields match case-insensitively; values within a field are alternatives.
    """

    name: str
    kind: Kind = "text"
    label: str = ""  # German, on the web page (facet heading, active filter)
    help: str = ""  # English, for the API documentation; for a filter field: what the filter keeps
    param: str = ""  # default: ``name``
    filter: bool = False
    facet: bool = False
    readers: bool = True  # readers may filter on it too (the review status is for editors and curators)
    curators_only: bool = False  # only curators may set it
    required: bool = False  # a document always has one (the title: the file's first heading or name)
    lowercase: bool = False
    choices: tuple[str, ...] = ()
    default: Value = None  # None: the kind's empty value
    max_chars: int = 200  # a text sent to the API
    max_values: int = 40  # a list sent to the API, and values of one filter

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"field name {self.name!r} must be a Python identifier")
        if (self.filter or self.facet) and self.kind not in ("text", "list", "year"):
            raise ValueError(f"field {self.name!r}: only text, list and year fields filter and facet")

    @property
    def key(self) -> str:
        """Its name in filters, URLs and the CLI."""
        return self.param or self.name

    @property
    def empty(self) -> Value:
        """The value of a document that does not set the field."""
        return EMPTY[self.kind] if self.default is None else self.default

    @property
    def ranged(self) -> bool:
        """Filtered on a range (``<key>_from``, ``<key>_to``) rather than on values."""
        return self.kind == "year"

    def filter_params(self) -> tuple[str, ...]:
        """Its parameter names in a search request."""
        return (f"{self.key}_from", f"{self.key}_to") if self.ranged else (self.key,)

    def values(self, value: Value) -> tuple[str, ...]:
        """A document's value as the words that filters match and facets count ('' and None count as none)."""
        if isinstance(value, tuple):
            return value
        if value is None or value == "" or isinstance(value, bool):
            return ()
        return (str(value),)


FIELDS: tuple[Field, ...] = (
    Field("title", required=True, max_chars=500, help="Title (default: the first heading or the file name)."),
    Field(
        "district",
        label="Kommune",
        filter=True,
        facet=True,
        max_values=60,
        help="Only these districts (repeatable).",
    ),
    Field(
        "doc_type",
        label="Dokumentart",
        filter=True,
        facet=True,
        max_chars=100,
        max_values=20,
        help="Only these document types (repeatable).",
    ),
    Field(
        "topics",
        "list",
        label="Thema",
        param="topic",
        filter=True,
        facet=True,
        help="Only documents with one of these topics.",
    ),
    Field(
        "audience",
        "list",
        label="Zielgruppe",
        filter=True,
        facet=True,
        help="Only documents for one of these audiences.",
    ),
    Field(
        "language",
        label="Sprache",
        filter=True,
        facet=True,
        lowercase=True,
        default="de",
        max_chars=20,
        max_values=20,
        help="Only these languages, e.g. de, tr, ar, uk.",
    ),
    Field("year", "year", label="Jahr", filter=True, facet=True, help="Year of publication"),
    Field("easy_language", "bool", help="Written in easy language (Leichte Sprache)."),
    Field("licence", help="Licence of the document."),
    Field("source", max_chars=500, help="Where the document comes from."),
    Field(
        "status",
        label="Status",
        filter=True,
        readers=False,
        choices=STATUSES,
        default="published",
        lowercase=True,
        help="Review status (editors and curators only; default: published).",
    ),
    Field("recommended", "bool", curators_only=True, help="A recommendation of the coordinating office (LaKI)."),
    Field("review_by", "date", help="ISO date by which a curator should review the document ('' if none)."),
    Field("superseded_by", max_chars=64, help="Id of the document that replaces this one ('' if none)."),
)


def names() -> tuple[str, ...]:
    return tuple(f.name for f in FIELDS)


def field(name: str) -> Field:
    """The field called ``name`` (a :class:`KeyError` names the known ones)."""
    for f in FIELDS:
        if f.name == name:
            return f
    raise KeyError(f"unknown metadata field {name!r}; the fields are: {', '.join(names())}")


def filtered(*, readers_only: bool = False) -> tuple[Field, ...]:
    """The fields a search can filter on (only those open to readers, if asked), in registry order."""
    return tuple(f for f in FIELDS if f.filter and (f.readers or not readers_only))


def faceted() -> tuple[Field, ...]:
    """The fields whose values a search counts, in the order the page shows them."""
    return tuple(f for f in FIELDS if f.facet)


def filter_field(key: str) -> Field | None:
    """The filterable field whose filter name is ``key`` (``topic`` → ``topics``), if any."""
    return next((f for f in filtered() if f.key == key), None)
