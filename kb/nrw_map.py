"""The map of NRW's 53 districts that the search page draws: outlines by AGS, and the view of one page's counts.

The outlines come from ``kb/data/nrw_map.json`` (BKG's VG250, built by ``tools/nrw_map/build.py``; source and
licence in ``kb/data/nrw_map.SOURCE.txt``), keyed by the AGS of :mod:`kb.districts`. :func:`view` turns a
caller's document counts per district into what the template draws: each district's outline, its shade, its
accessible name and, when it has documents, the link to its filtered search. Pure functions: the counts come in
from the caller's scoped reader, so a district's hidden documents are never counted here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from kb import districts

DATA_FILE: Final = Path(__file__).parent / "data" / "nrw_map.json"
#: BKG's required source note (dl-de/by-2-0), shown under the map and linked to BKG_URL.
ATTRIBUTION: Final = "© GeoBasis-DE / BKG 2020 (Daten verändert)"
BKG_URL: Final = "https://www.bkg.bund.de"
#: Lower bounds of the shades 1..5 (0: no documents). Fixed, so the legend means the same on every page.
LEVELS: Final = (1, 3, 6, 11, 26)


@dataclass(frozen=True)
class Outline:
    ags: str
    name: str
    d: str  # SVG path data in the map's units
    d_small: str  # the same, coarser: for the small map beside the facet
    label: tuple[int, int]  # a point inside the district


@dataclass(frozen=True)
class Shapes:
    width: int
    height: int
    outlines: tuple[Outline, ...]  # by AGS


@cache
def shapes() -> Shapes:
    """The 53 outlines, read once; names are those of :mod:`kb.districts`, matched by AGS."""
    raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    by_ags = {d.ags: d for d in districts.districts()}
    outlines = tuple(
        Outline(
            ags, by_ags[ags].name, entry["d"], entry["d_small"], (int(entry["label"][0]), int(entry["label"][1]))
        )
        for ags, entry in sorted(raw["districts"].items())
    )
    return Shapes(int(raw["width"]), int(raw["height"]), outlines)


def level(count: int) -> int:
    """The shade of a district with ``count`` documents: 0 (none) to 5."""
    return sum(count >= low for low in LEVELS)


def legend() -> list[tuple[int, str]]:
    """Each shade with its German range ("1–2", "26 und mehr")."""
    bounds = [*LEVELS, None]
    rows = []
    for i, low in enumerate(LEVELS):
        high = bounds[i + 1]
        text = f"{low} und mehr" if high is None else (str(low) if high - 1 == low else f"{low}–{high - 1}")
        rows.append((i + 1, text))
    return rows


def documents_label(count: int) -> str:
    return "keine Dokumente" if count == 0 else ("1 Dokument" if count == 1 else f"{count} Dokumente")


@dataclass(frozen=True)
class Area:
    """One district as the map draws it."""

    name: str
    d: str
    label: tuple[int, int]
    count: int
    level: int
    url: str | None  # None: no documents the caller may see, so nothing to open
    active: bool

    @property
    def title(self) -> str:
        """Its accessible name and tooltip: "Dortmund: 4 Dokumente"."""
        return f"{self.name}: {documents_label(self.count)}" + (" (Filter aktiv)" if self.active else "")


@dataclass(frozen=True)
class MapView:
    width: int
    height: int
    areas: list[Area]
    statewide: Area | None  # the state-wide office's documents: not a place on the map, listed below it
    legend: list[tuple[int, str]]
    attribution: str = ATTRIBUTION
    source_url: str = BKG_URL

    @property
    def listed(self) -> list[Area]:
        """The districts with documents (and the state-wide office), most documents first: the map as a list."""
        shown = [a for a in self.areas if a.count] + ([self.statewide] if self.statewide else [])
        return sorted(shown, key=lambda a: (-a.count, a.name))


def view(
    counts: Mapping[str, int],
    url: Callable[[str], str],
    active: frozenset[str] = frozenset(),
    *,
    small: bool = False,
) -> MapView:
    """The map for ``counts`` (documents per official district name, as the caller may see them); ``url`` gives
    the filtered search of a district's name, ``active`` names the districts filtered on now; ``small`` draws
    the coarser outlines (a map a few hundred pixels wide, fewer bytes on the page)."""
    folded = {name.casefold() for name in active}

    def area(name: str, d: str = "", label: tuple[int, int] = (0, 0)) -> Area:
        n = counts.get(name, 0)
        return Area(name, d, label, n, level(n), url(name) if n else None, name.casefold() in folded)

    found = shapes()
    state = counts.get(districts.STATEWIDE, 0)
    return MapView(
        found.width,
        found.height,
        [area(o.name, o.d_small if small else o.d, o.label) for o in found.outlines],
        area(districts.STATEWIDE) if state else None,
        legend(),
    )
