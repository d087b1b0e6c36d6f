"""Build the map of NRW's 53 districts that the search page draws (``kb/data/nrw_map.json``).

The boundaries are BKG's VG250 Kreise (© GeoBasis-DE / BKG, Datenlizenz Deutschland – Namensnennung 2.0; source,
licence and date in ``kb/data/nrw_map.SOURCE.txt``). The repository keeps only the NRW part of them,
``tools/nrw_map/vg250_krs_nrw.geojson`` (lon/lat, WGS 84), made once from a Germany-wide GeoJSON by ``extract``.

``build`` projects lon/lat to a plane (equirectangular, longitudes scaled by cos 51.5°, the middle of NRW, so a
kilometre east is as long as a kilometre north), scales the state to :data:`WIDTH` units, simplifies every ring
with Douglas–Peucker, rounds to whole units and writes per AGS the SVG path ``d``, a coarser ``d_small`` for the
small map beside the facet, and a label point inside the district. Every district is matched to
``kb/districts.py`` by its AGS, never by name. The output is the same for the same input.

Run from the repository root::

    python tools/nrw_map/build.py extract /path/to/DE-counties.geojson   # once: keep NRW's features
    python tools/nrw_map/build.py build                                  # writes kb/data/nrw_map.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kb import districts  # noqa: E402  (the repository's own package, found through ROOT)

RAW = Path(__file__).parent / "vg250_krs_nrw.geojson"
OUT = ROOT / "kb" / "data" / "nrw_map.json"
WIDTH = 1000  # units across the state; the page scales the SVG, so this only sets the rounding step
TOLERANCE = 1.2  # Douglas–Peucker tolerance in units (one unit is about 260 m): finer than a pixel on the page
TOLERANCE_SMALL = 3.0  # for the small map beside the facet (about 17rem wide): still under a pixel there
COS_LAT = math.cos(math.radians(51.5))

Point = tuple[float, float]
Ring = list[Point]


def extract(source: Path) -> None:
    """Keep the NRW features (AGS 05xxx) of a Germany-wide VG250 Kreise GeoJSON, with AGS, name and kind only,
    coordinates to 6 decimals (about 0.1 m)."""
    data = json.loads(source.read_text(encoding="utf-8"))
    features = []
    for feature in data["features"]:
        props = feature["properties"]
        if not props["AGS"].startswith("05"):
            continue
        geometry = feature["geometry"]
        features.append(
            {
                "type": "Feature",
                "properties": {"AGS": props["AGS"], "GEN": props["GEN"], "BEZ": props["BEZ"]},
                "geometry": {"type": geometry["type"], "coordinates": _rounded(geometry["coordinates"])},
            }
        )
    features.sort(key=lambda f: f["properties"]["AGS"])
    out = {"type": "FeatureCollection", "name": "VG250_KRS NRW", "features": features}
    RAW.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(features)} features -> {RAW} ({RAW.stat().st_size} bytes)")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    return [_rounded(v) for v in value]


def polygons(geometry: dict[str, Any]) -> list[list[Ring]]:
    """A Polygon or MultiPolygon as a list of polygons, each a list of rings (outer first) of lon/lat points."""
    coords = geometry["coordinates"]
    parts = [coords] if geometry["type"] == "Polygon" else coords
    return [[[(float(x), float(y)) for x, y in ring] for ring in polygon] for polygon in parts]


def simplify(ring: Ring, tolerance: float) -> Ring:
    """Douglas–Peucker on a closed ring: keeps the first point and the point farthest from it, simplifies the
    two halves between them (so a ring never collapses to its start)."""
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(ring) < 4:
        return ring
    far = max(range(len(ring)), key=lambda i: _dist2(ring[0], ring[i]))
    first = _douglas_peucker([*ring[: far + 1]], tolerance)
    second = _douglas_peucker([*ring[far:], ring[0]], tolerance)
    return first[:-1] + second[:-1]


def _douglas_peucker(line: Ring, tolerance: float) -> Ring:
    keep = [False] * len(line)
    keep[0] = keep[-1] = True
    stack = [(0, len(line) - 1)]
    while stack:
        start, end = stack.pop()
        best, index = 0.0, -1
        for i in range(start + 1, end):
            d = _segment_distance(line[i], line[start], line[end])
            if d > best:
                best, index = d, i
        if index >= 0 and best > tolerance:
            keep[index] = True
            stack += [(start, index), (index, end)]
    return [p for p, k in zip(line, keep, strict=True) if k]


def _dist2(a: Point, b: Point) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    length2 = _dist2(a, b)
    if length2 == 0:
        return math.sqrt(_dist2(p, a))
    t = max(0.0, min(1.0, ((p[0] - a[0]) * (b[0] - a[0]) + (p[1] - a[1]) * (b[1] - a[1])) / length2))
    return math.sqrt(_dist2(p, (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))))


def area(ring: Ring) -> float:
    """Signed area (shoelace)."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)) / 2


def inside(point: Point, rings: list[Ring]) -> bool:
    """Even-odd rule over all rings of a polygon (holes included)."""
    x, y = point
    crossings = 0
    for ring in rings:
        for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True):
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                crossings += 1
    return crossings % 2 == 1


def label_point(rings: list[Ring]) -> Point:
    """A point inside the polygon: its centroid when that lies inside, else the middle of the widest inside
    stretch of the horizontal line through it (a crescent-shaped Kreis around a city)."""
    outer = rings[0]
    a = area(outer)
    edges = list(zip(outer, outer[1:] + outer[:1], strict=True))
    cx = sum((x0 + x1) * (x0 * y1 - x1 * y0) for (x0, y0), (x1, y1) in edges) / (6 * a)
    cy = sum((y0 + y1) * (x0 * y1 - x1 * y0) for (x0, y0), (x1, y1) in edges) / (6 * a)
    if inside((cx, cy), rings):
        return cx, cy
    best: tuple[float, Point] = (-1.0, (cx, cy))
    ys = sorted(y for _, y in outer)
    for y in (cy, *(ys[len(ys) * k // 10] + 0.5 for k in range(1, 10))):
        xs = sorted(
            x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            for ring in rings
            for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)
            if (y0 > y) != (y1 > y)
        )
        for left, right in zip(xs[::2], xs[1::2], strict=True):
            if right - left > best[0]:
                best = (right - left, ((left + right) / 2, y))
    return best[1]


def build(out_file: Path = OUT) -> None:
    data = json.loads(RAW.read_text(encoding="utf-8"))
    shapes = {f["properties"]["AGS"]: polygons(f["geometry"]) for f in data["features"]}
    expected = {d.ags: d for d in districts.districts() if len(d.ags) == 5}
    missing, unknown = set(expected) - set(shapes), set(shapes) - set(expected)
    if missing or unknown:
        raise SystemExit(f"AGS not matched: missing {sorted(missing)}, unknown {sorted(unknown)}")

    points = [p for parts in shapes.values() for polygon in parts for ring in polygon for p in ring]
    west, east = min(x for x, _ in points), max(x for x, _ in points)
    south, north = min(y for _, y in points), max(y for _, y in points)
    scale = WIDTH / ((east - west) * COS_LAT)

    def project(p: Point) -> Point:
        return (p[0] - west) * COS_LAT * scale, (north - p[1]) * scale

    height = math.ceil((north - south) * scale)
    out: dict[str, Any] = {"width": WIDTH, "height": height, "districts": {}}
    for ags in sorted(shapes):
        projected = [[[project(p) for p in ring] for ring in polygon] for polygon in shapes[ags]]
        d, rings = outline(projected, TOLERANCE)
        label = label_point(rings)
        out["districts"][ags] = {
            "name": expected[ags].name,
            "d": d,
            "d_small": outline(projected, TOLERANCE_SMALL)[0],
            "label": [round(label[0]), round(label[1])],
        }
    text = json.dumps(out, ensure_ascii=False, separators=(",", ":"), indent=None) + "\n"
    out_file.write_text(text, encoding="utf-8")
    print(f"{len(shapes)} districts, {points_in(shapes)} points, {out_file} ({len(text.encode())} bytes)")


def points_in(shapes: dict[str, list[list[Ring]]]) -> int:
    return sum(len(ring) for parts in shapes.values() for polygon in parts for ring in polygon)


def outline(parts: list[list[Ring]], tolerance: float) -> tuple[str, list[Ring]]:
    """The SVG path of a district's polygons, simplified and rounded (rings that shrink below one square unit
    are left out), and the rings of its largest polygon (where its label goes)."""
    paths, biggest = [], (0.0, [[(0.0, 0.0)]])
    for polygon in parts:
        rings = []
        for ring in polygon:
            simple = [(float(round(x)), float(round(y))) for x, y in simplify(ring, tolerance)]
            simple = [p for i, p in enumerate(simple) if p != simple[i - 1]]  # rounding made twins
            if len(simple) >= 3 and abs(area(simple)) >= 1:
                rings.append(simple)
        if rings:
            paths.append(" ".join(_path(r) for r in rings))
            if abs(area(rings[0])) > biggest[0]:
                biggest = (abs(area(rings[0])), rings)
    return " ".join(paths), biggest[1]


def _path(ring: list[Point]) -> str:
    """An absolute move, then relative line steps (whole units, so nothing drifts): about half the bytes."""
    points = [(int(x), int(y)) for x, y in ring]
    steps = [f"{x1 - x0} {y1 - y0}" for (x0, y0), (x1, y1) in itertools.pairwise(points)]
    return f"M{points[0][0]} {points[0][1]}l" + " ".join(steps).replace(" -", "-") + "z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("extract", help="keep NRW's features of a Germany-wide VG250 Kreise GeoJSON").add_argument(
        "source", type=Path
    )
    commands.add_parser("build", help=f"write {OUT.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.command == "extract":
        extract(args.source)
    else:
        build()


if __name__ == "__main__":
    main()
