"""The metadata that answers real searches: the district list, grade spans, stages, subjects, programmes,
languages with their translations, document types and validity dates, through the loader, CLI, API and page."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb import districts, fields
from kb.api.app import create_app
from kb.cli import app as cli
from kb.curation.db import CurationDB
from kb.curation.keys import create_key
from kb.curation.service import Curator
from kb.documents import document_id
from kb.embedder import Embedder
from kb.errors import CurationError, LoaderError
from kb.ingest import Ingestor
from kb.loaders.metadata import build_metadata
from kb.search import Searcher
from kb.settings import Settings
from tests import factories

REPO = Path(__file__).resolve().parent.parent


def test_the_district_list_holds_the_53_kreise_and_kreisfreie_staedte_of_nrw() -> None:
    listed = [d for d in districts.districts() if d.kind != "Land"]
    assert len(listed) == 53
    assert Counter(d.kind for d in listed) == {"Kreis": 31, "kreisfreie Stadt": 22}
    assert Counter(d.regierungsbezirk for d in listed) == {
        "Düsseldorf": 15,
        "Köln": 11,
        "Münster": 8,
        "Detmold": 7,
        "Arnsberg": 12,
    }
    assert all(re.fullmatch(r"05[13579]\d\d", d.ags) for d in listed)
    assert len({d.ags for d in listed}) == len({d.name for d in listed}) == 53
    assert districts.find("Landesweit (LaKI)") is not None
    aachen = districts.find("StädteRegion Aachen")
    assert aachen is not None and aachen.ags == "05334" and aachen.regierungsbezirk == "Köln"


@pytest.mark.parametrize(
    ("written", "official"),
    [
        ("Städteregion Aachen", "StädteRegion Aachen"),
        ("unna", "Kreis Unna"),
        ("Stadt Hamm", "Hamm"),
        ("Rhein-Kreis Neuss", "Rhein-Kreis Neuss"),
        ("LaKI", "Landesweit (LaKI)"),
    ],
)
def test_a_district_is_stored_by_its_official_name(written: str, official: str) -> None:
    assert build_metadata({"district": written}, Path("x.md"), "x").district == official


@pytest.mark.parametrize(
    ("written", "suggested"),
    [("Aachen", "StädteRegion Aachen"), ("Neuss", "Rhein-Kreis Neuss"), ("Dortmnd", "Dortmund")],
)
def test_an_unknown_district_is_refused_with_a_suggestion(written: str, suggested: str) -> None:
    with pytest.raises(LoaderError, match=f"Meinten Sie: {re.escape(suggested)}"):
        build_metadata({"district": written}, Path("x.md"), "x")


def test_every_district_of_the_bundled_corpus_is_on_the_list() -> None:
    written = {
        line.split(":", 1)[1].strip().strip('"')
        for path in (REPO / "corpus").rglob("*")
        if path.is_file() and path.suffix in (".md", ".yaml")
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith("district:")
    }
    assert written
    assert all(districts.canonical(name) for name in written)


def test_keys_take_districts_from_the_list(tmp_path: Path) -> None:
    db = CurationDB(tmp_path)
    key, _ = create_key(db, "reader", "KI Unna", "Unna")
    assert key.district == "Kreis Unna"
    with pytest.raises(CurationError, match="Meinten Sie: StädteRegion Aachen"):
        create_key(db, "editor", "KI Aachen", "Aachen")
    with pytest.raises(CurationError, match="--district"):
        create_key(db, "reader", "ohne Kommune")
    db.close()


def test_document_types_stages_and_spans_are_checked() -> None:
    meta = build_metadata(
        {"doc_type": "checkliste", "bildungsbereich": ["Sek I", "Grundschule"], "jahrgang": "Klasse 5 bis 10"},
        Path("x.md"),
        "x",
    )
    assert (meta.doc_type, meta.bildungsbereich, meta.jahrgang) == (
        "Checkliste",
        ("Sekundarstufe I", "Grundschule"),
        "5-10",
    )
    assert {"Elternbrief/Flyer", "Beschlussvorlage", "Unterrichtsmaterial"} <= set(fields.DOC_TYPES)
    with pytest.raises(LoaderError, match="doc_type"):
        build_metadata({"doc_type": "Roman"}, Path("x.md"), "x")
    with pytest.raises(LoaderError, match="jahrgang"):
        build_metadata({"jahrgang": "ab und zu"}, Path("x.md"), "x")
    with pytest.raises(LoaderError, match="visibility"):
        build_metadata({"visibility": "geheim"}, Path("x.md"), "x")


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True)
    body = "Arbeitsblätter für den Fachunterricht mit neu zugewanderten Schülerinnen und Schülern."
    materials = {
        "bio-5-6.md": ("Biologie Klasse 5 und 6", "5-6", "[Biologie]"),
        "bio-5-10.md": ("Biologie in der Sekundarstufe I", "5-10", "[Biologie, Chemie]"),
        "mathe-7-10.md": ("Mathematik ab Klasse 7", "7-10", "[Mathematik]"),
    }
    for name, (title, grades, subjects) in materials.items():
        (root / name).write_text(
            factories.markdown(
                title,
                "Kreis Unna",
                body,
                doc_type="Unterrichtsmaterial",
                jahrgang=f'"{grades}"',
                fach=subjects,
                bildungsbereich="[Sekundarstufe I]",
                programm='["KOMM-AN NRW"]',
                handlungsfeld="[Bildung]",
                languages="[de]",
            ),
            encoding="utf-8",
        )
    letter = "Liebe Eltern, am Donnerstag ist Elternsprechtag in der Schule. Bitte kommen Sie um 16 Uhr."
    translations = {  # the original named beside the file, by its id, by its corpus path
        "elternbrief.md": ("Elternbrief Sprechtag", "de", ""),
        "elternbrief-tr.md": ("Veli mektubu", "tr", "elternbrief.md"),
        "elternbrief-ar.md": ("رسالة إلى الأهل", "ar", document_id("hamm/elternbrief.md")),
        "elternbrief-uk.md": ("Лист батькам", "uk", "hamm/elternbrief.md"),
    }
    (root / "hamm").mkdir()
    for name, (title, language, original) in translations.items():
        extra = {"translation_of": f'"{original}"'} if original else {}
        hidden = {"visibility": "kommune"} if language == "uk" else {}
        (root / "hamm" / name).write_text(
            factories.markdown(
                title,
                "Hamm",
                letter,
                doc_type="Elternbrief/Flyer",
                language=language,
                valid_until="2020-07-31" if language == "de" else "",
                **extra,
                **hidden,
            ),
            encoding="utf-8",
        )
    return root


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[tuple[Settings, TestClient]]:
    root = tmp_path_factory.mktemp("fields")
    settings = Settings(corpus_dir=_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data")
    assert Ingestor(settings, embedder).run().failed == []
    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as client:
        yield settings, client


def test_klasse_5_finds_the_spans_that_hold_grade_5_everywhere(indexed: tuple[Settings, TestClient]) -> None:
    settings, client = indexed
    wanted = {"Biologie Klasse 5 und 6", "Biologie in der Sekundarstufe I"}
    got = client.get(
        "/search", params={"q": "Arbeitsblätter Fachunterricht", "jahrgang": "Klasse 5", "facets": True}
    )
    assert {r["title"] for r in got.json()["results"]} == wanted
    unfiltered = client.get("/search", params={"q": "Arbeitsblätter Fachunterricht", "facets": True}).json()
    assert unfiltered["facets"]["jahrgang"] == {"5-10": 1, "5-6": 1, "7-10": 1}
    assert unfiltered["facets"]["fach"]["Biologie"] == 2 and unfiltered["facets"]["programm"] == {"KOMM-AN NRW": 3}
    posted = client.post(
        "/search", json={"q": "Arbeitsblätter", "filters": {"fach": ["Chemie"], "jahrgang": ["8"]}}
    )
    assert [r["title"] for r in posted.json()["results"]] == ["Biologie in der Sekundarstufe I"]

    args = ["--index-dir", str(settings.index_dir), "search", "Arbeitsblätter Fachunterricht", "--json"]
    result = CliRunner().invoke(cli, [*args, "-f", "jahrgang=5", "-f", "bildungsbereich=Sekundarstufe I"])
    assert result.exit_code == 0, result.output
    assert {r["title"] for r in json.loads(result.stdout)["results"]} == wanted

    page = client.get("/", params={"q": "Arbeitsblätter Fachunterricht", "jahrgang": "Klasse 5"}).text
    assert "Jahrgang: Klasse 5" in page and "Mathematik ab Klasse 7" not in page


def test_a_document_page_links_its_translations_it_may_show(indexed: tuple[Settings, TestClient]) -> None:
    settings, client = indexed
    german = client.get(f"/dokument/{document_id('hamm/elternbrief.md')}").text
    assert "Auch auf" in german
    links = re.findall(r'hreflang="(\w+)"[^>]*>([^<]+)</a>', german)
    assert links == [("ar", "العربية"), ("tr", "Türkçe")]  # the Ukrainian one is for Hamm only
    turkish = client.get(f"/dokument/{document_id('hamm/elternbrief-tr.md')}").text
    assert re.findall(r'hreflang="(\w+)"', turkish) == ["ar", "de"]
    db = CurationDB(settings.data_dir)
    secret = create_key(db, "reader", "KI Hamm", "Hamm")[1]
    db.close()
    own = client.get(
        f"/dokument/{document_id('hamm/elternbrief.md')}", headers={"Authorization": f"Bearer {secret}"}
    )
    assert re.findall(r'hreflang="(\w+)"[^>]*>([^<]+)</a>', own.text)[-1] == ("uk", "Українська")


def test_valid_until_feeds_the_review_list(indexed: tuple[Settings, TestClient], embedder: Embedder) -> None:
    settings, _ = indexed
    curator = Curator(Searcher(settings, embedder))
    due = curator.due_for_review(dt.date(2021, 1, 1))
    assert [d.metadata.title for d in due] == ["Elternbrief Sprechtag"]
    assert curator.due_for_review(dt.date(2020, 1, 1)) == []
