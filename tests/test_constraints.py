"""Constraints a query names (kb/constraints.py): the parser on its own, and searches on a real small index where
a document that satisfies the constraint rises while the others stay in the list, through the library, the CLI,
the API and the page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb import constraints, fields
from kb.api.app import create_app
from kb.cli import app as cli
from kb.constraints import recognise
from kb.embedder import Embedder
from kb.errors import QueryError
from kb.filters import Filters
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories

# -- the parser ---------------------------------------------------------------------------------------------------


def named(query: str) -> list[tuple[str, str, str]]:
    return [(c.field, c.value, c.text) for c in recognise(query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("DaZ Material Klasse 5", [("jahrgang", "5", "Klasse 5")]),
        ("5. Klasse Mathematik", [("jahrgang", "5", "5. Klasse")]),
        ("Jahrgang 7 Deutsch", [("jahrgang", "7", "Jahrgang 7")]),
        ("Jg. 8 Deutsch", [("jahrgang", "8", "Jg. 8")]),
        ("Stufe 9 Praktikum", [("jahrgang", "9", "Stufe 9")]),
        ("Neu zugewanderte in Klasse 5 bis 10", [("jahrgang", "5-10", "Klasse 5 bis 10")]),
        ("Berufsorientierung Klasse 9 und 10", [("jahrgang", "9-10", "Klasse 9 und 10")]),
        (
            "Elternbrief arabisch",
            [("doc_type", "Elternbrief/Flyer", "Elternbrief"), ("languages", "ar", "arabisch")],
        ),
        ("Einladung auf Türkisch", [("languages", "tr", "Türkisch")]),
        ("ukrainische Fassung des Merkblatts", [("languages", "uk", "ukrainische")]),
        ("Merkblatt ukrainisch-deutsch", [("languages", "uk", "ukrainisch")]),
        ("Englisch lernen", [("languages", "en", "Englisch")]),
        ("auf Ukrainisch und Russisch", [("languages", "uk", "Ukrainisch"), ("languages", "ru", "Russisch")]),
        (
            "Konzepte aus Dortmund seit 2020",
            [
                ("doc_type", "Konzeptpapier", "Konzepte"),
                ("district", "Dortmund", "Dortmund"),
                ("year", "2020..", "seit 2020"),
            ],
        ),
        ("Kreis Lippe Elterncafé", [("district", "Kreis Lippe", "Kreis Lippe")]),
        ("Lippe Elterncafé", [("district", "Kreis Lippe", "Lippe")]),
        ("Aachen Seiteneinstieg", [("district", "StädteRegion Aachen", "Aachen")]),
        ("Rhein-Kreis Neuss Wohnen", [("district", "Rhein-Kreis Neuss", "Rhein-Kreis Neuss")]),
        ("Sprach-Kita Mülheim an der Ruhr", [("district", "Mülheim an der Ruhr", "Mülheim an der Ruhr")]),
        ("Elterncafé in Essen", [("district", "Essen", "Essen")]),
        ("Dortmunder Elterncafé", [("district", "Dortmund", "Dortmunder")]),  # the place adjective
        ("Kölner Sprachcafé", [("district", "Köln", "Kölner")]),
        ("Essener Schulen", [("district", "Essen", "Essener")]),
        ("Herner Seiteneinstieg", [("district", "Herne", "Herner")]),
        ("Münsteraner Sprachcafé", [("district", "Münster", "Münsteraner")]),
        ("Mindener Elterncafé", [("district", "Kreis Minden-Lübbecke", "Mindener")]),
        ("ab 2019 Sprachförderung", [("year", "2019..", "ab 2019")]),
        ("vor 2015 Elternarbeit", [("year", "..2014", "vor 2015")]),
        ("Berichte 2018–2020", [("year", "2018..2020", "2018–2020")]),
        ("Bericht 2021", [("year", "2021", "2021")]),
        ("Schuljahr 2018/19", [("year", "2018..2019", "2018/19")]),
        ("Checklisten Seiteneinstieg", [("doc_type", "Checkliste", "Checklisten")]),
        ("Protokoll des Arbeitskreises", [("doc_type", "Protokoll", "Protokoll")]),
    ],
)
def test_recognises_grades_languages_districts_years_and_types(
    query: str, expected: list[tuple[str, str, str]]
) -> None:
    assert named(query) == expected
    for c in recognise(query):
        assert query[c.start : c.end] == c.text and c.label


@pytest.mark.parametrize(
    "query",
    [
        "gesundes Essen in der Kita",  # a district's name that is an everyday word
        "Demenz bei türkischen Senioren",  # people, not the language of a document
        "türkisch- und russischsprachige Familien begleiten",
        "Seiteneinsteiger in der Sekundarstufe I",
        "5.000 Euro Förderung in den 2020er Jahren",
        "Wie unterrichte ich Deutsch als Zweitsprache?",  # German is not a preference
        "Elternarbeit mit Zuwanderungsgeschichte",
        "Hammer und Nagel im Werkunterricht",  # not an adjective of Hamm
        "Sieger des Lesewettbewerbs",  # not of the Rhein-Sieg-Kreis
        "Rheinischer Verband der Lehrer",  # an adjective inside a district's name, not a district
    ],
)
def test_plain_text_names_no_constraint(query: str) -> None:
    assert recognise(query) == ()


def test_the_vocabularies_come_from_the_registry_and_the_district_list() -> None:
    for code, name in fields.LANGUAGE_NAMES.items():
        if code != "de":
            assert named(f"Text auf {name}") == [("languages", code, name)]
    for doc_type in fields.DOC_TYPES:
        word = doc_type.split("/")[0]
        assert ("doc_type", doc_type, word) in named(f"{word} zum Thema Sprache")
    for district in ("Kreis Siegen-Wittgenstein", "Oberbergischer Kreis", "Landesweit (LaKI)", "Bielefeld"):
        assert [c.value for c in recognise(f"Sprachförderung {district}")] == [district]


def test_a_district_filter_takes_the_short_form_of_the_official_name() -> None:
    # "?district=Herford" in a URL or "-f district=Herford" on the command line finds "Kreis Herford".
    assert Filters(district="Herford").values("district") == ("Kreis Herford",)
    assert Filters(district=("Stadt Köln", "Köln")).values("district") == ("Köln",)
    assert Filters(district="Atlantis").values("district") == ("Atlantis",)  # unknown: kept, and matches nothing


def test_a_field_turned_off_is_not_recognised_and_an_unknown_one_is_an_error() -> None:
    query = "Konzepte aus Dortmund seit 2020"
    assert [c.field for c in recognise(query, ignore={"district", "year"})] == ["doc_type"]
    assert constraints.ignored(["jahrgang"]) == {"jahrgang"}
    with pytest.raises(QueryError, match=r"'bezirk'.*jahrgang, languages, district, year, doc_type"):
        constraints.ignored(["bezirk"])


def test_each_constraint_matches_as_the_filter_of_its_field_does() -> None:
    grade = recognise("Klasse 5")[0]
    assert grade.filters() == (Filters(jahrgang=("5",)),)
    since = recognise("seit 2020")[0]
    assert since.filters() == (Filters(year_from=2020),)
    language = recognise("auf Arabisch")[0]
    assert language.filters() == (Filters(languages=("ar",)), Filters(language=("ar",)))


def test_preferring_is_bounded_and_leaves_order_alone_when_nothing_satisfies() -> None:
    query = recognise("Elternbrief Dortmund")
    assert constraints.prefer(["a", "b"], [0.9, 0.5], [None, None], query) is None
    assert constraints.prefer(["a"], [0.9], [None], ()) is None


# -- searching a real small index ---------------------------------------------------------------------------------

PARENTS = (
    "Elternarbeit in der Schule: Eltern mit Zuwanderungsgeschichte werden zu Elternabenden und zum Elterncafé "
    "eingeladen, Sprachmittlerinnen übersetzen, und die Schule erklärt Zeugnisse und Schullaufbahn."
)
MATHS = (
    "Sprachsensibler Mathematikunterricht für DaZ-Kinder: Textaufgaben mit Wortspeicher, Satzmustern und "
    "Bildern, damit neu zugewanderte Schülerinnen und Schüler Brüche und Dezimalzahlen verstehen."
)
INVITATION = (
    "Einladung zum Elternsprechtag: Liebe Eltern, wir laden Sie herzlich zum Elternsprechtag ein. Bitte melden "
    "Sie sich mit dem Abschnitt unten an; eine Dolmetscherin ist da."
)


def make_constraint_corpus(root: Path) -> Path:
    """Pairs of documents on one subject each, one of each pair with the metadata a query may name."""
    docs = {
        "essen/elternarbeit.md": factories.markdown(
            "Elternarbeit an Schulen", "Essen", PARENTS + " Ein Konzept zur Elternarbeit.", year=2016
        ),
        "dortmund/elternarbeit.md": factories.markdown(
            "Elternarbeit im Stadtteil", "Dortmund", PARENTS, doc_type="Konzeptpapier", year=2022
        ),
        "bochum/mathe.md": factories.markdown(
            "Mathematik mit DaZ-Kindern", "Bochum", MATHS + " Mit Kopiervorlagen.", doc_type="Unterrichtsmaterial"
        ),
        "bottrop/mathe.md": factories.markdown(
            "Brüche sprachsensibel", "Bottrop", MATHS, doc_type="Unterrichtsmaterial", jahrgang='"5-6"'
        ),
        "herford/einladung.md": factories.markdown(
            "Einladung zum Elternsprechtag", "Kreis Herford", INVITATION, doc_type='"Elternbrief/Flyer"', year=2024
        ),
        "herford/einladung-ar.md": factories.markdown(
            "دعوة إلى يوم استشارة أولياء الأمور",
            "Kreis Herford",
            "دعوة إلى يوم استشارة أولياء الأمور. نرجو التسجيل بالقسيمة أدناه.",
            doc_type='"Elternbrief/Flyer"',
            year=2024,
            language="ar",
            languages="[ar, de]",
        ),
    }
    for path, text in docs.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def constraint_settings(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("constraints")
    settings = Settings(
        corpus_dir=make_constraint_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data"
    )
    report = Ingestor(settings, embedder).run()
    assert report.failed == [] and len(report.added) == 6
    return settings


@pytest.fixture(scope="module")
def searcher(constraint_settings: Settings, embedder: Embedder) -> Searcher:
    return Searcher(constraint_settings, embedder)


def keys(searcher: Searcher, query: str, *ignore: str) -> list[str]:
    return [hit.document.key for hit in searcher.search(query, 6, ignore_constraints=ignore).hits]


@pytest.mark.parametrize(
    ("query", "field", "preferred"),
    [
        ("Konzepte zur Elternarbeit aus Dortmund", "district", "dortmund/elternarbeit.md"),
        ("Konzepte zur Elternarbeit seit 2020", "year", "dortmund/elternarbeit.md"),
        ("DaZ Mathematik Brüche Klasse 5", "jahrgang", "bottrop/mathe.md"),
        ("Einladung zum Elternsprechtag arabisch", "languages", "herford/einladung-ar.md"),
    ],
)
def test_a_document_satisfying_the_constraint_rises_and_the_others_stay(
    searcher: Searcher, query: str, field: str, preferred: str
) -> None:
    result = searcher.search(query, 6)
    assert field in [c.field for c in result.constraints]
    ranked = [hit.document.key for hit in result.hits]
    without = keys(searcher, query, *constraints.named_keys())
    assert ranked.index(preferred) < without.index(preferred)  # it rose
    assert sorted(ranked) == sorted(without)  # a preference, not a filter: every document is still there
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_a_constraint_no_document_satisfies_changes_nothing(searcher: Searcher) -> None:
    query = "Elternarbeit Kreis Lippe 1990"
    result = searcher.search(query, 6)
    assert {c.field for c in result.constraints} == {"district", "year"}
    plain = searcher.search(query, 6, ignore_constraints=("district", "year"))
    assert plain.constraints == ()
    assert [(h.chunk_id, h.score) for h in result.hits] == [(h.chunk_id, h.score) for h in plain.hits]


def test_a_filter_on_the_same_field_replaces_the_constraint(searcher: Searcher) -> None:
    result = searcher.search("Elternarbeit aus Dortmund", 6, filters=Filters(district=("Essen",)))
    assert result.constraints == ()
    assert [hit.document.metadata.district for hit in result.hits] == ["Essen"]


def test_raw_passages_are_not_reranked_and_name_no_constraint(searcher: Searcher) -> None:
    query = "DaZ Mathematik Brüche Klasse 5"
    assert searcher.search(query, 6, group=False).constraints == ()
    assert [c.field for c in searcher.search(query, 6).constraints] == ["jahrgang"]


def test_languages_is_counted_as_a_facet(searcher: Searcher) -> None:
    facets = searcher.search("Einladung zum Elternsprechtag", 6, facets=True).facets
    assert facets["languages"] == {"ar": 1, "de": 1}


# -- CLI, API and page ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(constraint_settings: Settings, searcher: Searcher) -> Iterator[TestClient]:
    with TestClient(create_app(constraint_settings, searcher=searcher)) as test_client:
        yield test_client


QUERY = "Konzepte zur Elternarbeit aus Dortmund seit 2020"


def test_api_returns_the_constraints_and_turns_one_off(client: TestClient) -> None:
    body = client.get("/search", params={"q": QUERY}).json()
    assert body["constraints"] == [
        {"field": "doc_type", "value": "Konzeptpapier", "label": "Dokumentart: Konzeptpapier", "text": "Konzepte"},
        {"field": "district", "value": "Dortmund", "label": "Kommune: Dortmund", "text": "Dortmund"},
        {"field": "year", "value": "2020..", "label": "Jahr: ab 2020", "text": "seit 2020"},
    ]
    off = client.get("/search", params=[("q", QUERY), ("ignore_constraints", "district")]).json()
    assert [c["field"] for c in off["constraints"]] == ["doc_type", "year"]
    posted = client.post("/search", json={"q": QUERY, "ignore_constraints": ["district", "year"]}).json()
    assert [c["field"] for c in posted["constraints"]] == ["doc_type"]
    wrong = client.get("/search", params={"q": QUERY, "ignore_constraints": "bezirk"})
    assert wrong.status_code == 422 and "bezirk" in wrong.json()["detail"]


def test_cli_json_prints_the_constraints_as_the_api_does(
    constraint_settings: Settings, client: TestClient
) -> None:
    api = client.get("/search", params=[("q", QUERY), ("ignore_constraints", "year")]).json()
    printed = CliRunner().invoke(
        cli,
        [
            "--index-dir",
            str(constraint_settings.index_dir),
            "search",
            QUERY,
            "--json",
            "--ignore-constraint",
            "year",
        ],
    )
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["constraints"] == api["constraints"]
    assert [r["document_id"] for r in json.loads(printed.stdout)["results"]] == [
        r["document_id"] for r in api["results"]
    ]


def test_page_shows_each_constraint_as_a_chip_that_removes_it(client: TestClient) -> None:
    html = client.get("/", params={"q": "DaZ Mathematik Brüche Klasse 5"}).text
    assert 'aria-label="Vorgabe „Klasse 5“ entfernen"' in html
    assert "ohne=jahrgang" in html
    without = client.get("/", params={"q": "DaZ Mathematik Brüche Klasse 5", "ohne": "jahrgang"}).text
    assert "Vorgabe „Klasse 5“" not in without
    assert client.get("/", params={"q": "Klasse 5", "ohne": "unbekannt"}).status_code == 200  # lenient page
