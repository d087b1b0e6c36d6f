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

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from kb import districts

Mode = Literal["hybrid", "dense", "lexical"]
#: The search modes: meaning and words fused (default), meaning only, words only.
MODES: tuple[Mode, ...] = get_args(Mode)
Status = Literal["draft", "published", "archived"]
#: Review status of a document: only ``published`` documents are shown to readers.
STATUSES: tuple[Status, ...] = get_args(Status)

Visibility = Literal["oeffentlich", "netzwerk", "kommune"]
#: Who may see a document (:mod:`kb.visibility`): everyone, anyone with a key of the network, the owning
#: district's staff and curators.
VISIBILITIES: tuple[Visibility, ...] = get_args(Visibility)

Kind = Literal["text", "list", "year", "bool", "date", "span"]
#: A field's value: text, a tuple of words, a year (or None), a flag, an ISO date ('' when none), a span of
#: numbers as text ("5-10", "7"; '' when none).
Value = str | tuple[str, ...] | int | bool | None
YEAR_MIN, YEAR_MAX = 1900, 2100
#: The value a field has when a document does not set it, per kind (a field may declare another default).
EMPTY: dict[Kind, Value] = {"text": "", "list": (), "year": None, "bool": False, "date": "", "span": ""}
#: A span as written: "5-10", "5 – 10", "Klasse 5 bis 10", "Jahrgang 7", "13".
_SPAN = re.compile(r"^\D*?(\d{1,3})(?:\s*(?:-|–|bis)\s*\D*?(\d{1,3}))?\s*$", re.IGNORECASE)

DocType = Literal[
    "Handreichung",
    "Konzeptpapier",
    "Praxisbericht",
    "Schulungsmaterial",
    "Elternbrief/Flyer",
    "Checkliste",
    "Beschlussvorlage",
    "Integrationskonzept",
    "Jahresbericht",
    "Monitoring",
    "Protokoll",
    "Präsentation",
    "Unterrichtsmaterial",
]
#: The kinds of document the network has ('' when a document names none).
DOC_TYPES: tuple[DocType, ...] = get_args(DocType)
BILDUNGSBEREICHE: tuple[str, ...] = (
    "Kita",
    "Grundschule",
    "Sekundarstufe I",
    "Sekundarstufe II",
    "Berufskolleg",
    "Erwachsenenbildung",
)

#: The languages the network writes in, by code (the values of ``language`` and ``languages``), with their German
#: names: the page shows them, and a query naming one ("Elternbrief arabisch") prefers it (:mod:`kb.constraints`).
LANGUAGE_NAMES: dict[str, str] = {
    "de": "Deutsch",
    "en": "Englisch",
    "tr": "Türkisch",
    "ar": "Arabisch",
    "uk": "Ukrainisch",
    "ru": "Russisch",
    "pl": "Polnisch",
    "fa": "Persisch",
    "fr": "Französisch",
    "ro": "Rumänisch",
    "bg": "Bulgarisch",
    "ku": "Kurdisch",
}

_STAGE_SPELLINGS = {
    "kindertagesstätte": "Kita",
    "kindergarten": "Kita",
    "primarstufe": "Grundschule",
    "sek i": "Sekundarstufe I",
    "sek. i": "Sekundarstufe I",
    "sekundarstufe 1": "Sekundarstufe I",
    "sek ii": "Sekundarstufe II",
    "sek. ii": "Sekundarstufe II",
    "sekundarstufe 2": "Sekundarstufe II",
    "weiterbildung": "Erwachsenenbildung",
}


def stage(text: str) -> str:
    """A stage of education as :data:`BILDUNGSBEREICHE` names it ("Sek I" is "Sekundarstufe I")."""
    folded = " ".join(text.casefold().split())
    return _STAGE_SPELLINGS.get(folded) or next((b for b in BILDUNGSBEREICHE if b.casefold() == folded), text)


def parse_span(text: str) -> tuple[int, int] | None:
    """``(low, high)`` of a span as written ("5-10", "Klasse 5", "7 bis 9"); None when it is not one."""
    found = _SPAN.match(text.strip())
    if found is None:
        return None
    low = int(found.group(1))
    high = int(found.group(2)) if found.group(2) else low
    return (low, high) if low <= high else None


def range_label(low: int | None, high: int | None) -> str:
    """How a range of years reads on the page: "2021", "ab 2020", "bis 2015", "2018–2020"."""
    if low == high:
        return str(low)
    if high is None:
        return f"ab {low}"
    if low is None:
        return f"bis {high}"
    return f"{low}–{high}"


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
    #: Turns a text value (each value of a list) into its canonical form, or raises ValueError saying why not
    #: (the district: an official name from :mod:`kb.districts`).
    normalize: Callable[[str], str] | None = None
    default: Value = None  # None: the kind's empty value
    max_chars: int = 200  # a text sent to the API
    max_values: int = 40  # a list sent to the API, and values of one filter

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"field name {self.name!r} must be a Python identifier")
        if (self.filter or self.facet) and self.kind not in ("text", "list", "year", "span"):
            raise ValueError(f"field {self.name!r}: only text, list, year and span fields filter and facet")

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

    def normalized(self, text: str) -> str:
        """A text value in its canonical form (a :class:`ValueError` says why it is not one)."""
        return self.normalize(text) if self.normalize is not None and text else text

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
        normalize=districts.canonical,
        max_values=60,
        help="Only these districts (repeatable): a Kreis or kreisfreie Stadt of NRW, or 'Landesweit (LaKI)'.",
    ),
    Field(
        "doc_type",
        label="Dokumentart",
        filter=True,
        facet=True,
        choices=DOC_TYPES,
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
    Field(
        "languages",
        "list",
        label="Sprachen",
        filter=True,
        facet=True,
        lowercase=True,
        max_values=20,
        help="Only documents written (also) in one of these languages: a bilingual flyer names both.",
    ),
    Field(
        "translation_of",
        max_chars=500,
        help="The document this one translates: its id, or its path in the corpus ('' if none).",
    ),
    Field("year", "year", label="Jahr", filter=True, facet=True, help="Year of publication"),
    Field(
        "bildungsbereich",
        "list",
        label="Bildungsbereich",
        filter=True,
        facet=True,
        choices=BILDUNGSBEREICHE,
        normalize=stage,
        help="Only documents for one of these stages of education.",
    ),
    Field(
        "schulform",
        "list",
        label="Schulform",
        filter=True,
        facet=True,
        help="Only documents for one of these school types (Grundschule, Gesamtschule, Gymnasium, …).",
    ),
    Field(
        "jahrgang",
        "span",
        label="Jahrgang",
        filter=True,
        facet=True,
        max_chars=40,
        help="Only documents for this grade: 'Klasse 5' or '5' finds documents for 5-6 and 5-10.",
    ),
    Field("fach", "list", label="Fach", filter=True, facet=True, help="Only documents for one of these subjects."),
    Field(
        "programm",
        "list",
        label="Programm",
        filter=True,
        facet=True,
        help="Only documents of one of these programmes (Rucksack, Griffbereit, KOMM-AN NRW, KIM, …).",
    ),
    Field(
        "handlungsfeld",
        "list",
        label="Handlungsfeld",
        filter=True,
        facet=True,
        help="Only documents of one of these fields of work of the Kommunale Integrationszentren.",
    ),
    Field("contact", help="Whom to ask about the document: an office or a role, not a person's private data."),
    Field("valid_until", "date", help="ISO date until which the document is valid ('' if open-ended)."),
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
    Field(
        "visibility",
        label="Sichtbarkeit",
        choices=VISIBILITIES,
        default="oeffentlich",
        lowercase=True,
        curators_only=True,
        help="Who may see the document: oeffentlich (everyone, default), netzwerk (any key of the network), "
        "kommune (the owning district's keys and curators). Curators only.",
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
