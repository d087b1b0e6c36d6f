"""The controlled list of districts: the 53 Kreise and kreisfreie Städte of NRW and the state-wide office.

Read once from ``kb/data/districts_nrw.tsv`` (official name, AGS, Regierungsbezirk, kind). :func:`canonical` turns
what a curator or a front matter wrote into the official name: the name itself in any case ("Städteregion Aachen"
is the StädteRegion Aachen), a Kreis without "Kreis" ("Unna"), a city with "Stadt" ("Stadt Hamm"). Anything else
is refused with the nearest names as a suggestion.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

DATA_FILE: Final = Path(__file__).parent / "data" / "districts_nrw.tsv"
STATEWIDE: Final = "Landesweit (LaKI)"


@dataclass(frozen=True)
class District:
    name: str
    ags: str  # Amtlicher Gemeindeschlüssel of the Kreis or the city (5 digits; "05" for the whole state)
    regierungsbezirk: str  # "-" for the state-wide office
    kind: str  # "Kreis", "kreisfreie Stadt" or "Land"


@cache
def districts() -> tuple[District, ...]:
    """Every district in the file's order (by AGS), the state-wide office last."""
    rows = []
    for line in DATA_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, ags, bezirk, kind = line.split("\t")
            rows.append(District(name, ags, bezirk, kind))
    return tuple(rows)


def names() -> tuple[str, ...]:
    return tuple(d.name for d in districts())


@cache
def _by_spelling() -> dict[str, str]:
    spellings: dict[str, str] = {}
    for d in districts():
        forms = [d.name]
        if d.kind == "kreisfreie Stadt":
            forms.append(f"Stadt {d.name}")
        if d.name.startswith("Kreis "):
            forms.append(d.name.removeprefix("Kreis "))
        if d.name == STATEWIDE:
            forms += ["Landesweit", "LaKI"]
        for form in forms:
            spellings.setdefault(_fold(form), d.name)
    return spellings


def find(value: str) -> District | None:
    """The district ``value`` names (see :func:`canonical`), if any."""
    name = _by_spelling().get(_fold(value))
    return next((d for d in districts() if d.name == name), None) if name else None


def suggestions(value: str, n: int = 3) -> list[str]:
    """The official names nearest to ``value``: those sharing a word with it ("Aachen", "Neuss"), else the
    closest spellings ("Dortmnd")."""
    names_ = {_fold(d.name): d.name for d in districts()}
    words = set(_words(value)) - _COMMON
    close = [name for folded, name in names_.items() if words & set(_words(folded))]
    if not close:
        spellings = _by_spelling()
        close = [spellings[c] for c in difflib.get_close_matches(_fold(value), list(spellings), n=n, cutoff=0.7)]
    return list(dict.fromkeys(close))[:n]


_COMMON: Final = frozenset({"kreis", "stadt", "an", "der", "landesweit"})


def _words(value: str) -> list[str]:
    return _fold(value).replace("-", " ").replace("(", " ").replace(")", " ").split()


def canonical(value: str) -> str:
    """The official name of the district ``value`` names ('' stays ''); a :class:`ValueError` with a German
    suggestion ("Meinten Sie: StädteRegion Aachen?") when it names none."""
    if not value.strip():
        return ""
    found = find(value)
    if found is not None:
        return found.name
    near = suggestions(value)
    hint = f" Meinten Sie: {' oder '.join(near)}?" if near else ""
    raise ValueError(
        f"unknown district {value.strip()!r}: use the official name of a Kreis or kreisfreie Stadt in NRW "
        f"or {STATEWIDE!r}.{hint}"
    )


def _fold(value: str) -> str:
    return " ".join(value.casefold().split())
