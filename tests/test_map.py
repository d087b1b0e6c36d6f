"""The map of NRW's districts: every district of the controlled list drawn once (matched by AGS), small data
built reproducibly from the boundaries kept in the repository, and per caller only the documents that caller may
see counted and linked: a ``kommune`` document of Hamm neither counts nor makes Hamm a link for an anonymous
caller or a reader of Dortmund."""

from __future__ import annotations

import html
import importlib.util
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from kb import districts, nrw_map
from kb.api.app import create_app
from kb.curation.db import CurationDB
from kb.curation.keys import create_key
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import REPO, make_small_corpus

TOOL = REPO / "tools" / "nrw_map" / "build.py"
RAW = REPO / "tools" / "nrw_map" / "vg250_krs_nrw.geojson"
SOURCE = REPO / "kb" / "data" / "nrw_map.SOURCE.txt"
MAX_MAP_BYTES = 100_000  # inline on the page, which must stay under 100 KB with its assets
MAX_RAW_BYTES = 400_000


def _build_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nrw_map_build", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse(d: str) -> list[list[tuple[int, int]]]:
    rings = []
    for x0, y0, steps in re.findall(r"M(-?\d+) (-?\d+)l([-\d ]*)z", d):
        x, y = int(x0), int(y0)
        ring = [(x, y)]
        numbers = [int(n) for n in re.findall(r"-?\d+", steps)]
        for dx, dy in zip(numbers[::2], numbers[1::2], strict=True):
            x, y = x + dx, y + dy
            ring.append((x, y))
        rings.append(ring)
    return rings


def test_every_district_is_on_the_map_exactly_once_by_ags() -> None:
    expected = [d for d in districts.districts() if len(d.ags) == 5]
    assert len(expected) == 53
    shapes = nrw_map.shapes()
    assert sorted(o.ags for o in shapes.outlines) == sorted(d.ags for d in expected)
    assert {o.ags: o.name for o in shapes.outlines} == {d.ags: d.name for d in expected}
    raw = json.loads(RAW.read_text(encoding="utf-8"))
    assert sorted(Counter(f["properties"]["AGS"] for f in raw["features"]).items()) == [
        (d.ags, 1) for d in sorted(expected, key=lambda d: d.ags)
    ]


def test_map_data_is_small_and_every_outline_is_a_closed_polygon_holding_its_label() -> None:
    assert (REPO / "kb" / "data" / "nrw_map.json").stat().st_size < MAX_MAP_BYTES
    assert RAW.stat().st_size < MAX_RAW_BYTES
    shapes = nrw_map.shapes()
    tool = _build_tool()
    for outline in shapes.outlines:
        for d in (outline.d, outline.d_small):
            rings = _parse(d)
            assert rings and all(len(r) >= 3 for r in rings), outline.name
            assert d.count("M") == len(rings) == d.count("z"), outline.name
            points = [p for r in rings for p in r]
            assert all(0 <= x <= shapes.width and 0 <= y <= shapes.height for x, y in points), outline.name
            assert tool.inside(outline.label, [[(float(x), float(y)) for x, y in r] for r in rings]), outline.name
        assert len(outline.d_small) < len(outline.d), outline.name


def test_the_build_is_reproducible_from_the_kept_boundaries(tmp_path: Path) -> None:
    out = tmp_path / "nrw_map.json"
    _build_tool().build(out)
    assert out.read_bytes() == (REPO / "kb" / "data" / "nrw_map.json").read_bytes()


def test_the_source_and_licence_are_recorded_and_shown() -> None:
    source = SOURCE.read_text(encoding="utf-8")
    assert "dl-de/by-2-0" in source and nrw_map.ATTRIBUTION in source and "build.py build" in source
    assert nrw_map.ATTRIBUTION.startswith("© GeoBasis-DE / BKG")


def test_shades_follow_the_legend() -> None:
    assert nrw_map.level(0) == 0
    for shade, text in nrw_map.legend():
        low = int(re.match(r"\d+", text).group())  # type: ignore[union-attr]
        assert nrw_map.level(low) == shade and nrw_map.level(low - 1) == shade - 1, text
    counts = [0, 1, 2, 3, 7, 12, 30, 500]
    assert [nrw_map.level(n) for n in counts] == sorted(nrw_map.level(n) for n in counts)


def test_view_links_only_districts_with_documents_and_names_them_with_the_count() -> None:
    counts = {"Dortmund": 4, "Wuppertal": 1, districts.STATEWIDE: 2}
    view = nrw_map.view(counts, lambda name: f"/?district={name}", frozenset({"dortmund"}))
    areas = {a.name: a for a in view.areas}
    assert len(areas) == 53
    assert areas["Dortmund"].url == "/?district=Dortmund" and areas["Dortmund"].active
    assert areas["Dortmund"].title == "Dortmund: 4 Dokumente (Filter aktiv)"
    assert areas["Wuppertal"].title == "Wuppertal: 1 Dokument" and not areas["Wuppertal"].active
    assert areas["Hamm"].url is None and areas["Hamm"].level == 0
    assert areas["Hamm"].title == "Hamm: keine Dokumente"
    assert [a.name for a in view.listed] == ["Dortmund", districts.STATEWIDE, "Wuppertal"]
    assert view.statewide is not None and view.statewide.url == f"/?district={districts.STATEWIDE}"


# -- per caller, over a real small index --------------------------------------------------------------------------
HAMM_TITLE = "Protokoll der Lenkungsgruppe Karte"


@dataclass(frozen=True)
class Site:
    client: TestClient
    keys: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("map")
    corpus = make_small_corpus(root / "corpus")
    (corpus / "hamm").mkdir(exist_ok=True)
    (corpus / "hamm" / "protokoll.md").write_text(
        factories.markdown(HAMM_TITLE, "Hamm", "Die Lenkungsgruppe tagt.", visibility="kommune"), encoding="utf-8"
    )
    (corpus / "essen" / "netzwerk.md").parent.mkdir(exist_ok=True)
    (corpus / "essen" / "netzwerk.md").write_text(
        factories.markdown("Netzwerkpapier", "Essen", "Das Netzwerk trifft sich.", visibility="netzwerk"),
        encoding="utf-8",
    )
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", data_dir=root / "data")
    assert Ingestor(settings, embedder).run().failed == []
    db = CurationDB(settings.data_dir)
    keys = {
        "reader Hamm": create_key(db, "reader", "KI Hamm", "Hamm")[1],
        "reader Dortmund": create_key(db, "reader", "KI Dortmund", "Dortmund")[1],
        "curator": create_key(db, "curator", "LaKI")[1],
    }
    db.close()
    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as client:
        yield Site(client, keys)


def _headers(site: Site, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {site.keys[who]}"} if who in site.keys else {}


def _map_of(page: str) -> dict[str, tuple[str, str | None]]:
    """District → (its title, its link or None), read from the first map of a page."""
    svg = re.search(r"<svg [^>]*class=\"map-svg\".*?</svg>", page, re.S)
    assert svg is not None
    found: dict[str, tuple[str, str | None]] = {}
    for link, title in re.findall(r'(?:<a href="([^"]*)"[^>]*>)?<title>([^<]*)</title>', svg.group()):
        title = html.unescape(title)
        found[title.split(":")[0]] = (title, html.unescape(link) or None)
    return found


def _visible_per_district(site: Site, who: str) -> Counter[str]:
    listing = site.client.get("/documents?limit=200", headers=_headers(site, who)).json()
    return Counter(d["district"] for d in listing["items"] if d["district"])


@pytest.mark.parametrize("who", ["anonymous", "reader Dortmund", "reader Hamm", "curator"])
def test_the_start_page_map_counts_only_what_the_caller_may_see(site: Site, who: str) -> None:
    page = site.client.get("/", headers=_headers(site, who))
    assert page.status_code == 200
    drawn = _map_of(page.text)
    assert len(drawn) == 53
    visible = _visible_per_district(site, who)
    for name, (title, link) in drawn.items():
        n = visible.get(name, 0)
        assert title == f"{name}: {nrw_map.documents_label(n)}", (who, title)
        assert (link is not None) == (n > 0), (who, name, link)
        if link:
            assert link == "/?" + urlencode({"district": name})
    sees_hamm = who in ("reader Hamm", "curator")
    assert drawn["Hamm"][1] == ("/?district=Hamm" if sees_hamm else None)
    assert ("Hamm: 1 Dokument" in page.text) == sees_hamm
    assert ("district=Hamm" in page.text) == sees_hamm
    assert ("Essen: " + nrw_map.documents_label(visible["Essen"])) in page.text
    assert nrw_map.ATTRIBUTION in html.unescape(page.text)


def test_a_district_link_opens_its_filtered_search_and_marks_it(site: Site) -> None:
    page = site.client.get("/?district=Dortmund")
    assert page.status_code == 200
    drawn = _map_of(page.text)
    assert drawn["Dortmund"][0].endswith("(Filter aktiv)") and drawn["Dortmund"][1] == "/"
    assert 'name="district" value="Dortmund"' in page.text  # the search form keeps the filter
    assert 'class="marker"' in page.text and page.text.count('class="outline-on"') == 1


@pytest.mark.parametrize("who", ["anonymous", "reader Dortmund", "reader Hamm", "curator"])
def test_a_district_chosen_without_a_question_lists_the_documents_the_caller_may_see(site: Site, who: str) -> None:
    listing = site.client.get("/documents?limit=200", headers=_headers(site, who)).json()["items"]
    for district in ("Hamm", "Dortmund"):
        page = site.client.get("/?" + urlencode({"district": district}), headers=_headers(site, who))
        assert page.status_code == 200
        shown = re.search(r'<section class="listed".*?</section>', page.text, re.S)
        assert shown is not None
        expected = {d["id"] for d in listing if d["district"] == district}
        linked = set(re.findall(r'<a href="/dokument/([^"]+)"', shown.group()))
        assert linked == expected, (who, district)
        n = len(expected)
        assert f"{n} Dokument{'e' if n != 1 else ''} mit diesen Filtern" in shown.group()
        assert (HAMM_TITLE in page.text) == (district == "Hamm" and who in ("reader Hamm", "curator"))


@pytest.mark.parametrize("who", ["anonymous", "reader Dortmund", "reader Hamm"])
def test_the_facet_map_counts_the_callers_hits_per_district(site: Site, who: str) -> None:
    query = "Lenkungsgruppe Protokoll Elterncafé Netzwerk"
    page = site.client.get(f"/?q={query}&mode=lexical", headers=_headers(site, who))
    api = site.client.get(f"/search?q={query}&mode=lexical&facets=true", headers=_headers(site, who)).json()
    drawn = _map_of(page.text)
    counts = api["facets"]["district"]
    assert counts, api
    for name, (title, link) in drawn.items():
        assert title == f"{name}: {nrw_map.documents_label(counts.get(name, 0))}", (who, title)
        assert (link is not None) == (name in counts)
    assert ("Hamm" in counts) == (who == "reader Hamm")
    assert "Treffer nach Kommune" in page.text
