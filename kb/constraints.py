"""Constraints a query names: a grade, a language, a district, a year or a document type.

"DaZ Material Klasse 5", "Elternbrief arabisch", "Konzepte aus Dortmund seit 2020": :func:`recognise` finds such
phrases with the span of text each came from, and :func:`prefer` moves the documents that satisfy them up among
the candidates the search retrieved. A constraint is a soft preference, never a filter: nothing is removed from
the results, and when no candidate carries the metadata (a corpus without any) the order does not change. The
query's words stay in the text search as well (a district or a language may also be what the text is about).

The vocabularies come from where they are kept: the grade from the ``span`` field, the languages from
:data:`kb.fields.LANGUAGE_NAMES`, the districts from :mod:`kb.districts` (official names, their usual short forms,
and a word of a name when it names only one district: "Aachen", "Neuss"), the years from the ``year`` field's
bounds and the document types from :data:`kb.fields.DOC_TYPES`. Each constraint tests documents through a
:class:`kb.filters.Filters` of its field, so it matches exactly as the filter of the same value would.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final, TypeVar

from kb import districts, fields
from kb.errors import QueryError
from kb.fields import DOC_TYPES, LANGUAGE_NAMES, YEAR_MAX, YEAR_MIN
from kb.filters import Filters

if TYPE_CHECKING:
    from kb.storage import StoredDocument

#: A document satisfying every constraint of a query gains this share of the candidates' score spread (best
#: minus worst of the pool); one satisfying some gains that share of it. Bounded: it reorders, it never filters.
BONUS: Final = 0.3
#: Documents re-ranked when a query names a constraint (a matching document may rise from this deep).
POOL: Final = 50
#: The grades a school has (Klasse 1 to 13).
GRADES: Final = range(1, 14)
#: Words of a district's name that are also everyday German words: they name the district only after a word of
#: place ("in Essen", "aus Essen", "Stadt Essen"), never "gesundes Essen in der Kita".
EVERYDAY_WORDS: Final = frozenset({"essen"})
_PLACE_WORDS: Final = frozenset({"in", "aus", "stadt", "nach", "von", "ki", "kreis"})
#: German words for a document type that its name does not hold ("Konzepte aus Dortmund").
_TYPE_SPELLINGS: Final = {"konzept": "Konzeptpapier", "brief": "Elternbrief/Flyer"}
#: German is the language of nearly every document: "Deutsch" in a query is the subject or the language taught
#: ("Erstförderung in Deutsch"), not a preference.
_NOT_PREFERRED: Final = frozenset({"de"})


#: The registry's fields a query may name, by name.
NAMED: Final = ("jahrgang", "languages", "district", "year", "doc_type")


def named_keys() -> tuple[str, ...]:
    """The filter names of the fields a query may name (what ``ignore`` takes)."""
    return tuple(fields.field(name).key for name in NAMED)


def ignored(keys: Iterable[str]) -> frozenset[str]:
    """The fields ``keys`` turns off (a :class:`kb.errors.QueryError` names an unknown one and the known ones)."""
    chosen = frozenset(keys)
    unknown = sorted(chosen - set(named_keys()))
    if unknown:
        raise QueryError(
            f"ignore_constraints: unknown field {', '.join(map(repr, unknown))}; use {', '.join(named_keys())}."
        )
    return chosen


@dataclass(frozen=True)
class Constraint:
    """One constraint a query names: the field (``key``: its filter name), the value wanted as a filter of that
    field takes it, a German label for the page, and where in the query it was written."""

    field: str  # the filter name of the field: jahrgang, languages, district, year, doc_type
    value: str  # "5-10", "ar", "Dortmund", "2020..", "Elternbrief/Flyer"
    label: str  # "Klasse 5–10", "Sprache: Arabisch", "Kommune: Dortmund", "Jahr: ab 2020"
    text: str  # the words of the query it came from
    start: int
    end: int

    def filters(self) -> tuple[Filters, ...]:
        """The filters a document satisfying this constraint passes (any of them)."""
        if self.field == "year":
            low, dots, high = self.value.partition("..")
            high = high if dots else low
            return (Filters(year_from=int(low) if low else None, year_to=int(high) if high else None),)
        if self.field == "languages":  # a document names its languages, or only its one language
            return (Filters(languages=(self.value,)), Filters(language=(self.value,)))
        return (Filters(**{self.field: (self.value,)}),)

    def satisfied_by(self, document: StoredDocument) -> bool:
        return any(f.matches(document) for f in self.filters())


# -- recognising ------------------------------------------------------------------------------------------------

_NUMBER = r"(\d{1,2})"
_JOIN = r"\s*(?:-|–|bis|und|/|&)\s*"
_GRADE_WORDS = r"(?:Klassen(?:stufen?)?|Klasse|Jahrgangsstufen?|Jahrgänge|Jahrgang|Jg\.?|Stufen?|grades?|year)"
_GRADE_BEFORE = re.compile(rf"\b{_GRADE_WORDS}\s*{_NUMBER}(?:{_JOIN}{_NUMBER})?\b(?!\.\d)", re.IGNORECASE)
_GRADE_AFTER = re.compile(
    rf"\b{_NUMBER}\.(?:{_JOIN}{_NUMBER}\.)?\s*(?:Klassen?|Jahrgangs?(?:stufen?)?|Schuljahr(?:es)?)\b",
    re.IGNORECASE,
)
_YEAR = r"((?:19|20)\d{2})"
_YEAR_RANGE = re.compile(
    rf"\b(?:(?:von|zwischen)\s+)?{_YEAR}\s*(?:-|–|bis|und)\s*{_YEAR}\b(?!er)|\b{_YEAR}/(\d{{2}})\b", re.IGNORECASE
)
_YEAR_BOUND = re.compile(
    rf"\b(seit|ab|nach|vor|bis|bis\s+einschließlich)\s+(?:dem\s+Jahr\s+)?{_YEAR}\b(?!er)", re.IGNORECASE
)
_YEAR_ALONE = re.compile(rf"(?<![\d./-]){_YEAR}\b(?![\d.,/-]|er)")
_WORD = re.compile(r"[^\W\d_][\w-]*", re.UNICODE)


def recognise(query: str, ignore: Iterable[str] = ()) -> tuple[Constraint, ...]:
    """The constraints ``query`` names, in the order they are written, leaving out the fields in ``ignore``
    (filter names: ``jahrgang``, ``languages``, ``district``, ``year``, ``doc_type``). Phrases do not overlap
    (the grade and the year are read first: "Klasse 5 bis 10", "seit 2020"); a field named twice ("auf
    Ukrainisch und Russisch") holds alternatives, as a filter's values do."""
    skipped = set(ignore)
    found: list[Constraint] = []
    for finder in (_grades, _years, _languages, _districts, _doc_types):
        for c in finder(query):
            overlaps = any(c.start < other.end and other.start < c.end for other in found)
            repeated = any((c.field, c.value) == (other.field, other.value) for other in found)
            if not overlaps and not repeated and c.field not in skipped:
                found.append(c)
    return tuple(sorted(found, key=lambda c: c.start))


def by_field(constraints: Iterable[Constraint]) -> dict[str, tuple[Constraint, ...]]:
    """The constraints grouped by field, in the order the fields are first named."""
    groups: dict[str, tuple[Constraint, ...]] = {}
    for c in constraints:
        groups[c.field] = (*groups.get(c.field, ()), c)
    return groups


def _grades(query: str) -> Iterable[Constraint]:
    for pattern in (_GRADE_BEFORE, _GRADE_AFTER):
        for m in pattern.finditer(query):
            low = int(m.group(1))
            high = int(m.group(2)) if m.group(2) else low
            if low in GRADES and high in GRADES and low <= high:
                value = f"{low}-{high}" if high > low else str(low)
                label = f"Klasse {low}–{high}" if high > low else f"Klasse {low}"
                yield Constraint(fields.field("jahrgang").key, value, label, m.group(0), m.start(), m.end())


def _years(query: str) -> Iterable[Constraint]:
    key, label = fields.field("year").key, fields.field("year").label

    def year(low: int | None, high: int | None, m: re.Match[str]) -> Constraint | None:
        if any(y is not None and not YEAR_MIN <= y <= YEAR_MAX for y in (low, high)):
            return None
        if low is not None and high is not None and low > high:
            return None
        value = str(low) if low == high else f"{low or ''}..{high or ''}"
        return Constraint(key, value, f"{label}: {fields.range_label(low, high)}", m.group(0), m.start(), m.end())

    found: list[Constraint | None] = []
    for m in _YEAR_RANGE.finditer(query):
        if m.group(1):
            found.append(year(int(m.group(1)), int(m.group(2)), m))
        else:  # a school year: 2018/19
            first = int(m.group(3))
            found.append(year(first, first - first % 100 + int(m.group(4)), m))
    for m in _YEAR_BOUND.finditer(query):
        word, y = m.group(1).casefold(), int(m.group(2))
        bounds = {"seit": (y, None), "ab": (y, None), "nach": (y + 1, None), "vor": (None, y - 1)}
        found.append(year(*bounds.get(word, (None, y)), m))
    for m in _YEAR_ALONE.finditer(query):
        found.append(year(int(m.group(1)), int(m.group(1)), m))
    taken: list[Constraint] = []
    for c in found:  # the longest phrase first ("seit 2020" rather than "2020")
        if c is not None and not any(c.start < t.end and t.start < c.end for t in taken):
            taken.append(c)
    return sorted(taken, key=lambda c: c.start)


#: Words for a text that an inflected language adjective may describe: "arabische Fassung", "ukrainischer
#: Elternbrief" name a language of the document, "türkische Senioren" or "die ukrainische Schule" do not.
_TEXT_WORDS: Final = frozenset(
    {"version", "fassung", "übersetzung", "ausgabe", "text", "texte", "material", "materialien", "merkblatt"}
    | {"informationen", "infos", "broschüre", "einladung", "formular", "vorlage", "vorlagen", "sprache"}
)


@cache
def _language_words() -> dict[str, tuple[str, bool]]:
    """Every spelling of a language's name in a query (lower case) → its code and whether it is an inflected
    adjective: the name ("arabisch", also without umlauts: "tuerkisch"), its adjective forms ("arabische",
    "ukrainischen") and "-sprachig" forms ("türkischsprachige")."""
    words: dict[str, tuple[str, bool]] = {}
    for code, name in LANGUAGE_NAMES.items():
        if code in _NOT_PREFERRED:
            continue
        stem = name.casefold()
        for form in (stem, stem.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae")):
            for ending in ("", "e", "en", "er", "es", "em"):
                words[form + ending] = (code, ending != "")
                words[f"{form}sprachig{ending}"] = (code, True)
    return words


def _languages(query: str) -> Iterable[Constraint]:
    label = fields.field("languages").label.removesuffix("n")  # "Sprache: Arabisch"
    key = fields.field("languages").key
    words = _language_words()
    tokens = list(_WORD.finditer(query))
    for i, m in enumerate(tokens):
        following = tokens[i + 1].group(0).casefold() if i + 1 < len(tokens) else ""
        describes_text = following in _TEXT_WORDS or following in _type_words()
        offset = m.start()
        for part in m.group(0).split("-"):  # "ukrainisch-deutsch": each part may name a language
            code, adjective = words.get(part.casefold(), ("", False))
            adjective = adjective or m.group(0).endswith("-")  # "türkisch- und russischsprachige Familien"
            if code and (describes_text or not adjective):
                yield Constraint(key, code, f"{label}: {LANGUAGE_NAMES[code]}", part, offset, offset + len(part))
            offset += len(part) + 1


@cache
def _district_words() -> dict[str, str]:
    """Each word of a district's official name that names only that district ("aachen", "neuss", "lübbecke")."""
    owners: dict[str, set[str]] = {}
    for d in districts.districts():
        for word in re.split(r"[\s()-]+", d.name.casefold()):
            if len(word) >= 4 and word not in {"kreis", "stadt", "landesweit"}:
                owners.setdefault(word, set()).add(d.name)
    return {word: next(iter(names)) for word, names in owners.items() if len(names) == 1}


#: Adjectives of a place that do not end in its name plus "-er" ("Münsteraner Schulen").
_ADJECTIVES: Final = {"münsteraner": "münster"}
#: Words that look like a district's adjective but are everyday words ("Hammer": the tool, not Hamm; "Sieger":
#: the winner, not the Rhein-Sieg-Kreis).
_NOT_ADJECTIVES: Final = frozenset({"hammer", "sieger"})


def _district_adjective(word: str) -> str | None:
    """The district a place adjective names ("Dortmunder", "Kölner", "Essener", "Mindener"), if any."""
    folded = word.casefold()
    if folded in _NOT_ADJECTIVES or not folded.endswith("er"):
        return None
    for stem in (_ADJECTIVES.get(folded, folded[:-2]), folded[:-1]):  # "Dortmund-er", "Herne-r"
        district = districts.find(stem)
        # A word of a longer name counts unless it is an adjective itself ("rheinisch" of Rhein-Sieg, Rheinisch-
        # Bergischer Kreis): "Rheinischer Verband" names no district.
        name = district.name if district else None if stem.endswith("isch") else _district_words().get(stem)
        if name:
            return name
    return None


def _districts(query: str) -> Iterable[Constraint]:
    key, label = fields.field("district").key, fields.field("district").label
    tokens = list(re.finditer(r"[\w-]+", query))
    i = 0
    while i < len(tokens):
        found = None
        for n in (4, 3, 2, 1):  # the longest name first: "Mülheim an der Ruhr", "Kreis Lippe"
            if i + n > len(tokens):
                continue
            start, end = tokens[i].start(), tokens[i + n - 1].end()
            phrase = query[start:end]
            district = districts.find(phrase)
            name = district.name if district else None
            if name is None and n == 1:
                name = _district_words().get(phrase.casefold()) or _district_adjective(phrase)
            if name is None:
                continue
            before = tokens[i - 1].group(0).casefold() if i > 0 else ""
            if n == 1 and phrase.casefold() in EVERYDAY_WORDS and before not in _PLACE_WORDS:
                continue
            found = (n, Constraint(key, name, f"{label}: {name}", phrase, start, end))
            break
        if found is None:
            i += 1
            continue
        yield found[1]
        i += found[0]


@cache
def _type_words() -> dict[str, str]:
    """Each document type's name, the parts of "Elternbrief/Flyer" and a few usual words, singular and plural."""
    words: dict[str, str] = {}
    spellings = [(part, t) for t in DOC_TYPES for part in t.split("/")]
    spellings += [(word, t) for word, t in _TYPE_SPELLINGS.items() if t in DOC_TYPES]
    for word, doc_type in spellings:
        stem = word.casefold()
        for ending in ("", "e", "en", "n", "s", "ien", "er"):
            words.setdefault(stem + ending, doc_type)
    if "schulungsmaterial" in words:  # "Materialien": the -ial/-ialien plural
        words.setdefault("schulungsmaterialien", words["schulungsmaterial"])
    return words


def _doc_types(query: str) -> Iterable[Constraint]:
    key, label = fields.field("doc_type").key, fields.field("doc_type").label
    words = _type_words()
    for m in _WORD.finditer(query):
        doc_type = words.get(m.group(0).casefold())
        if doc_type is not None:
            yield Constraint(key, doc_type, f"{label}: {doc_type}", m.group(0), m.start(), m.end())


# -- preferring -------------------------------------------------------------------------------------------------

Item = TypeVar("Item")


def prefer(
    items: Sequence[Item],
    scores: Sequence[float],
    documents: Sequence[StoredDocument | None],
    constraints: Sequence[Constraint],
) -> list[tuple[Item, float]] | None:
    """``items`` re-ranked by their score plus a bonus for the constraints their document satisfies (best
    first, with the new scores); None when no document satisfies any (the order stays as it was).

    The bonus is :data:`BONUS` times the spread of the scores times the share of the constraints satisfied, so
    it is measured in the scores' own scale whatever the search mode; the fields named are weighed alike."""
    if not constraints or not items:
        return None
    groups = list(by_field(constraints).values())  # values of one field are alternatives

    def share(document: StoredDocument | None) -> float:
        if document is None:
            return 0.0
        return sum(any(c.satisfied_by(document) for c in group) for group in groups) / len(groups)

    shares = [share(d) for d in documents]
    if not any(shares):
        return None
    spread = max(scores) - min(scores)
    if spread <= 0:
        spread = abs(max(scores)) or 1.0
    bonus = BONUS * spread
    rescored = [(item, score + bonus * share) for item, score, share in zip(items, scores, shares, strict=True)]
    return sorted(rescored, key=lambda pair: -pair[1])  # stable: ties keep their order
