"""Search filters and facets over the registry's fields (:mod:`kb.fields`).

A filter is named as a search request names it: a field's ``key`` (``district``, ``topic``) with the values
wanted, or ``<key>_from`` / ``<key>_to`` for a year field. The CLI, the API and the web page all build the same
:class:`Filters`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from kb import fields
from kb.fields import Field, parse_span
from kb.visibility import visible_to

if TYPE_CHECKING:
    from kb.store import StoredDocument

#: One filter's setting: the values wanted (alternatives), or a bound of a year range.
Criterion = tuple[str, ...] | int


def filter_params() -> dict[str, Field]:
    """Every filter parameter of the registry and its field, in registry order."""
    return {param: f for f in fields.filtered() for param in f.filter_params()}


class Filters:
    """Restrictions on metadata: values within one field are alternatives (OR), fields combine (AND).

    ``Filters(district=("Dortmund",), year_from=2020)``; empty values and ``None`` set nothing. Without a
    ``status`` filter only published documents match. A span field (the grade) matches documents whose span
    holds the value asked for: ``jahrgang="Klasse 5"`` keeps 5-6 and 5-10.
    """

    __slots__ = ("_criteria", "_ranges", "_spans", "_wanted")
    _criteria: dict[str, Criterion]
    _wanted: tuple[tuple[Field, frozenset[str]], ...]
    _ranges: tuple[tuple[Field, int | None, int | None], ...]
    _spans: tuple[tuple[Field, tuple[tuple[int, int], ...]], ...]

    def __init__(self, **criteria: Iterable[str] | int | None) -> None:
        known = filter_params()
        chosen: dict[str, Criterion] = {}
        for param, value in criteria.items():
            if param not in known:
                raise TypeError(f"unknown filter {param!r}; the filters are: {', '.join(known)}")
            if isinstance(value, int):
                if known[param].ranged:
                    chosen[param] = value
            elif value is not None and not known[param].ranged:
                values = (value,) if isinstance(value, str) else tuple(value)
                if values:
                    chosen[param] = tuple(dict.fromkeys(_canonical(known[param], v) for v in values))
        ordered = {param: chosen[param] for param in known if param in chosen}
        wanted: list[tuple[Field, frozenset[str]]] = []
        ranges: list[tuple[Field, int | None, int | None]] = []
        spans: list[tuple[Field, tuple[tuple[int, int], ...]]] = []
        for f in {known[param].name: known[param] for param in ordered}.values():
            if f.kind == "span":  # a value that is no span matches nothing
                asked = (parse_span(v) for v in self._values(ordered, f.key))
                spans.append((f, tuple(span for span in asked if span is not None)))
            elif f.ranged:
                low, high = (ordered.get(p) for p in f.filter_params())
                ranges.append((f, low if isinstance(low, int) else None, high if isinstance(high, int) else None))
            else:
                wanted.append((f, frozenset(_fold(v) for v in self._values(ordered, f.key))))
        object.__setattr__(self, "_criteria", ordered)
        object.__setattr__(self, "_wanted", tuple(wanted))  # case-folded once, not per document
        object.__setattr__(self, "_ranges", tuple(ranges))
        object.__setattr__(self, "_spans", tuple(spans))

    @staticmethod
    def _values(criteria: Mapping[str, Criterion], param: str) -> tuple[str, ...]:
        value = criteria.get(param, ())
        return value if isinstance(value, tuple) else ()

    def values(self, param: str) -> tuple[str, ...]:
        """The values wanted for the filter ``param`` (none: no restriction)."""
        return self._values(self._criteria, param)

    def bound(self, param: str) -> int | None:
        """The year bound ``param`` (``year_from``, ``year_to``), if set."""
        value = self._criteria.get(param)
        return value if isinstance(value, int) else None

    def items(self) -> Iterator[tuple[str, Criterion]]:
        """The filters set, ``(param, values or bound)``, in registry order."""
        return iter(self._criteria.items())

    def replace(self, **changes: Iterable[str] | int | None) -> Filters:
        """These filters with some parameters set anew (``None`` or ``()`` removes one)."""
        criteria: dict[str, Iterable[str] | int | None] = {**self._criteria, **changes}
        return Filters(**criteria)

    @property
    def restricted(self) -> bool:
        """Whether a filter is for editors and curators only (the review status)."""
        known = filter_params()
        return any(not known[param].readers for param in self._criteria)

    def matches(self, doc: StoredDocument) -> bool:
        m = doc.metadata
        if all(f.name != "status" for f, _ in self._wanted) and not visible_to(doc):
            return False  # drafts and archived documents only when a status filter asks for them
        for f, wanted in self._wanted:
            if wanted.isdisjoint(_fold(v) for v in f.values(m.get(f.name))):
                return False
        for f, asked in self._spans:
            span = parse_span(str(m.get(f.name) or ""))
            if span is None or not any(low <= span[1] and span[0] <= high for low, high in asked):
                return False
        for f, low, high in self._ranges:
            year = m.get(f.name)
            if not isinstance(year, int) or (low is not None and year < low) or (high is not None and year > high):
                return False
        return True

    def __bool__(self) -> bool:
        return bool(self._criteria)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filters) and self._criteria == other._criteria

    def __hash__(self) -> int:
        return hash(tuple(self._criteria.items()))

    def __repr__(self) -> str:
        return "Filters(" + ", ".join(f"{k}={v!r}" for k, v in self._criteria.items()) + ")"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Filters are immutable; use replace()")


def count_facets(documents: Iterable[StoredDocument]) -> dict[str, dict[str, int]]:
    """Counts per value of each facet field over ``documents``, most frequent first (empty values left out)."""
    facets = fields.faceted()
    counters: dict[str, Counter[str]] = {f.name: Counter() for f in facets}
    for doc in documents:
        for f in facets:
            counters[f.name].update(f.values(doc.metadata.get(f.name)))
    return {
        name: dict(sorted(counter.items(), key=lambda vc: (-vc[1], vc[0]))) for name, counter in counters.items()
    }


def _canonical(field: Field, value: str) -> str:
    """A filter value in the field's canonical form ("Herford" → "Kreis Herford"), so that a short form in a URL or
    on the command line finds what the official name finds; a value the field does not know stays as it is (and
    matches nothing)."""
    try:
        return field.normalized(value)
    except ValueError:
        return value


def _fold(value: str) -> str:
    return value.casefold().strip()
