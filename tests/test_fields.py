"""The field registry: each metadata field is declared once in kb/fields.py, and a field added there is read from
front matter and sidecars, stored, returned, filtered and counted through the CLI, the API and the web page."""

from __future__ import annotations

import importlib
import json
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb import fields, ingest, loaders
from kb.cli import app as cli
from kb.curation.commands import parse_meta
from kb.documents import Metadata
from kb.embedder import Embedder
from kb.fields import Field
from kb.filters import Filters, filter_params
from kb.sandbox import Limits, Loaded
from kb.search import Searcher
from kb.settings import Settings

#: The modules that build API models and routes from the registry when they are imported.
API_MODULES = ("kb.api.schemas", "kb.api.routes", "kb.api.curation", "kb.api.page")
SCHOOL_FORM = Field(
    "school_forms",
    "list",
    label="Schulform",
    param="school_form",
    filter=True,
    facet=True,
    help="Only documents for one of these school forms.",
)


def test_each_field_and_filter_is_declared_once() -> None:
    names = [f.name for f in fields.FIELDS]
    params = [p for f in fields.filtered() for p in f.filter_params()]
    assert len(set(names)) == len(names) and len(set(params)) == len(params)
    assert all(f.label for f in fields.FIELDS if f.filter or f.facet)
    assert not set(names) & set(dir(Metadata))  # a field must not hide a method of Metadata


def test_metadata_types_only_fields_of_the_registry() -> None:
    python_types: dict[str, Any] = {
        "text": str,
        "list": tuple[str, ...],
        "year": int | None,
        "bool": bool,
        "date": str,
        "span": str,
    }
    for name, annotation in typing.get_type_hints(Metadata).items():
        f = fields.field(name)
        assert annotation == (typing.Literal[f.choices] if f.choices else python_types[f.kind]), name


def test_metadata_round_trips_through_its_stored_form() -> None:
    meta = Metadata(title="T", topics=("Sport", "Schule"), year=2021, recommended=True)
    stored = json.loads(json.dumps(meta.as_dict()))
    assert (
        stored["topics"] == ["Sport", "Schule"] and stored["language"] == "de" and stored["status"] == "published"
    )
    assert Metadata.from_dict({**stored, "gone": "a field removed since"}) == meta
    assert hash(Metadata.from_dict(stored)) == hash(meta)
    with pytest.raises(TypeError, match="colour"):
        Metadata(title="T", colour="blau")
    with pytest.raises(AttributeError):
        meta.title = "other"  # type: ignore[misc]


def test_filters_know_every_filter_of_the_registry_and_nothing_else() -> None:
    filters = Filters(district=("Dortmund",), topic="Sport", year_from=2020, status=())
    assert dict(filters.items()) == {"district": ("Dortmund",), "topic": ("Sport",), "year_from": 2020}
    assert filters == Filters(year_from=2020, topic=["Sport"], district=("Dortmund",))
    assert filters.replace(topic=None) == Filters(district=("Dortmund",), year_from=2020)
    assert (
        not Filters(district=(), year_to=None) and not Filters().restricted and Filters(status="draft").restricted
    )
    with pytest.raises(TypeError, match="bezirk"):
        Filters(bezirk=("Köln",))


def test_get_and_post_search_take_the_same_filters_with_their_descriptions() -> None:
    from kb.api.app import create_app

    openapi = create_app(Settings()).openapi()
    described = {p["name"]: p["description"] for p in openapi["paths"]["/search"]["get"]["parameters"]}
    body = openapi["components"]["schemas"]["FiltersIn"]["properties"]
    assert set(body) == set(filter_params()) and all(described[name] for name in body)
    assert {name: described[name] for name in body} == {name: p["description"] for name, p in body.items()}


def _read_here(items: Iterable[tuple[Any, Path]], limits: Limits) -> Iterator[Loaded[Any]]:
    """Files read in this process: the loader worker is a fresh interpreter that knows only kb/fields.py."""
    for item, path in items:
        yield Loaded(item, path, loaders.load(path))


def _rebuild_api() -> None:
    for name in API_MODULES:
        importlib.reload(importlib.import_module(name))


@pytest.fixture
def school_forms() -> Iterator[Field]:
    """The registry with one more field (and the API models rebuilt from it) for the length of a test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fields, "FIELDS", (*fields.FIELDS, SCHOOL_FORM))
        patch.setattr(ingest, "load_isolated", _read_here)
        _rebuild_api()
        yield SCHOOL_FORM
    _rebuild_api()  # the registry as it was


def _corpus(root: Path) -> Path:
    root.mkdir(parents=True)
    documents = {
        "lesen.md": ("Lesepaten in der Grundschule", "[Grundschule]"),
        "mathe.md": ("Sprachsensibler Mathematikunterricht", "[Gymnasium, Gesamtschule]"),
        "eltern.md": ("Elternabend mit Dolmetschern", "[Grundschule, Gesamtschule]"),
    }
    for name, (title, forms) in documents.items():
        text = f"---\ntitle: {title}\ndistrict: Dortmund\nschool_forms: {forms}\n---\n\n# {title}\n\n"
        (root / name).write_text(text + "Die Schule arbeitet mit Eltern und Lehrkräften zusammen.\n", "utf-8")
    (root / "ohne.txt").write_text("Schule ohne Schulform: ein Text mit einer Sidecar-Datei.\n", "utf-8")
    (root / "ohne.txt.meta.yaml").write_text("title: Schule allgemein\nschool_forms: Förderschule\n", "utf-8")
    return root


def test_a_field_added_to_the_registry_is_filtered_and_faceted_everywhere(
    school_forms: Field, tmp_path: Path, embedder: Embedder
) -> None:
    from kb.api.app import create_app

    settings = Settings(corpus_dir=_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    assert ingest.Ingestor(settings, embedder).run().failed == []
    primary = {"Lesepaten in der Grundschule", "Elternabend mit Dolmetschern"}
    counts = {"Grundschule": 2, "Gesamtschule": 2, "Förderschule": 1, "Gymnasium": 1}

    # the CLI: -f school_form=… and --facets
    args = ["--index-dir", str(settings.index_dir), "search", "Schule", "--json", "--facets"]
    result = CliRunner().invoke(cli, [*args, "-f", "school_form=grundschule"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {r["title"] for r in payload["results"]} == primary
    assert payload["facets"]["school_forms"] == {"Grundschule": 2, "Gesamtschule": 1}
    unfiltered = json.loads(CliRunner().invoke(cli, args).stdout)
    assert unfiltered["facets"]["school_forms"] == counts
    assert parse_meta(["school_forms=Grundschule, Hauptschule"]) == {
        "school_forms": ["Grundschule", "Hauptschule"]
    }

    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as client:
        # the API: GET and POST /search filter on it and count it; a document returns it
        params = {"q": "Schule", "school_form": "Grundschule", "facets": "true"}
        got = client.get("/search", params=params).json()
        assert {r["title"] for r in got["results"]} == primary, got
        assert got["facets"]["school_forms"] == {"Grundschule": 2, "Gesamtschule": 1}
        body = {"q": "Schule", "facets": True, "filters": {"school_form": ["Förderschule"]}}
        posted = client.post("/search", json=body).json()
        assert [r["title"] for r in posted["results"]] == ["Schule allgemein"]
        document = client.get(f"/documents/{posted['results'][0]['document_id']}").json()
        assert document["school_forms"] == ["Förderschule"]
        openapi = client.get("/openapi.json").json()
        get_params = {p["name"]: p for p in openapi["paths"]["/search"]["get"]["parameters"]}
        assert get_params["school_form"]["description"] == school_forms.help
        assert "school_forms" in openapi["components"]["schemas"]["MetadataPatch"]["properties"]

        # the page: the URL parameter filters, the facet group has its German label, the chip removes the filter
        page = client.get("/", params={"q": "Schule", "school_form": "Gesamtschule"})
        assert page.status_code == 200
        assert "Elternabend mit Dolmetschern" in page.text and "Lesepaten" not in page.text
        assert '<h3 id="facet-school_form">Schulform</h3>' in page.text
        assert "Schulform: Gesamtschule" in page.text
        assert 'name="school_form" value="Gesamtschule"' in page.text  # kept when searching again
