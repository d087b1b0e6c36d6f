"""Proof that a document nobody may see outside its district leaks nothing on any read path.

The bundled small corpus plus three documents: one visible only to district Hamm (``kommune``), one for the
network (``netzwerk``), and a public one that is a near-duplicate of the Hamm document. For every read path of the
API and the web page, the Hamm document gives anonymous callers and a reader of Dortmund nothing: not its title,
not a word of its text, not its id, not a count; and it is there for a reader of Hamm and for curators. An
invisible document is a 404 with the same message as one that never existed. A property test assigns random
visibilities and districts and runs random searches, filters and similar lookups through the API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from kb.api.app import create_app
from kb.curation.db import CurationDB
from kb.curation.keys import create_key
from kb.documents import document_id
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import make_small_corpus

SECRET_TITLE = "Protokoll der Steuerungsgruppe Quokkarat"
SECRET_WORDS = ("Quokkarat", "Zebrafinkenhaus")
NETWORK_WORD = "Okapiforum"
SHARED = (
    "Beim Elternabend erklären Sprachmittlerinnen den Eltern das Schulsystem in ihrer Herkunftssprache. "
    "Die Klassenleitung stellt die Fächer vor, die Schulsozialarbeit erzählt von den Beratungsangeboten, "
    "und am Ende beantworten alle gemeinsam die Fragen der Familien zu Zeugnissen, Ganztag und Förderung. "
    "Die Einladung wird in sechs Sprachen verschickt und zwei Wochen vorher im Klassenchat erinnert. "
)
UNKNOWN_ID = "0123456789abcdef"


@dataclass(frozen=True)
class Installation:
    client: TestClient
    settings: Settings
    keys: dict[str, str]  # who → secret key
    secret: str  # the Hamm-only document's id
    network: str
    twin: str  # the public near-duplicate of the secret document


def _extra_documents(corpus: Path) -> None:
    (corpus / "hamm" / "protokoll.md").write_text(
        factories.markdown(
            SECRET_TITLE,
            "Hamm",
            f"{SHARED}\n\nIm {SECRET_WORDS[0]} wurde beschlossen, das {SECRET_WORDS[1]} im Frühjahr zu eröffnen.",
            doc_type="Protokoll",
            year=2025,
            visibility="kommune",
        ),
        encoding="utf-8",
    )
    (corpus / "essen" / "netzwerk.md").write_text(
        factories.markdown(
            f"Netzwerkpapier {NETWORK_WORD}",
            "Essen",
            f"Das {NETWORK_WORD} trifft sich zweimal im Jahr zur Abstimmung der Integrationszentren.",
            doc_type="Konzeptpapier",
            visibility="netzwerk",
        ),
        encoding="utf-8",
    )
    (corpus / "dortmund" / "elternabend.md").write_text(
        factories.markdown("Elternabend mit Sprachmittlern", "Dortmund", SHARED, doc_type="Praxisbericht"),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Installation]:
    root = tmp_path_factory.mktemp("leaks")
    corpus = make_small_corpus(root / "corpus")
    _extra_documents(corpus)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", data_dir=root / "data")
    report = Ingestor(settings, embedder).run()
    assert report.failed == []
    db = CurationDB(settings.data_dir)
    keys = {
        "curator": create_key(db, "curator", "LaKI")[1],
        "reader A": create_key(db, "reader", "KI Hamm", "Hamm")[1],
        "reader B": create_key(db, "reader", "KI Dortmund", "Dortmund")[1],
        "editor B": create_key(db, "editor", "Redaktion Dortmund", "Dortmund")[1],
    }
    db.close()
    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as client:
        yield Installation(
            client,
            settings,
            keys,
            document_id("hamm/protokoll.md"),
            document_id("essen/netzwerk.md"),
            document_id("dortmund/elternabend.md"),
        )


def _auth(inst: Installation, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {inst.keys[who]}"} if who in inst.keys else {}


def _read_paths(inst: Installation) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """Every read path, as (method, URL, JSON body)."""
    s, t = inst.secret, inst.twin
    words = " ".join(SECRET_WORDS)
    return {
        "search": ("GET", f"/search?q={words}&facets=true&k=50", None),
        "search lexical": ("GET", f"/search?q={words}&mode=lexical&facets=true", None),
        "search dense": ("GET", f"/search?q={SECRET_TITLE}&mode=dense&facets=true&k=50", None),
        "search raw passages": ("GET", f"/search?q={words}&group=false&k=50", None),
        "search filtered": ("POST", "/search", {"q": words, "facets": True, "filters": {"district": ["Hamm"]}}),
        "search year filter": ("GET", f"/search?q={words}&year_from=2025&facets=true", None),
        "search twin": ("GET", "/search?q=Elternabend Sprachmittlerinnen Schulsystem&facets=true", None),
        "list": ("GET", "/documents?limit=200", None),
        "document": ("GET", f"/documents/{s}", None),
        "text": ("GET", f"/documents/{s}/text", None),
        "file": ("GET", f"/documents/{s}/file", None),
        "similar of it": ("GET", f"/documents/{s}/similar?other_districts=false", None),
        "twin document": ("GET", f"/documents/{t}", None),
        "similar of twin": ("GET", f"/documents/{t}/similar?other_districts=false&k=20", None),
        "page start": ("GET", "/", None),
        "page search": ("GET", f"/?q={words}", None),
        "page search filtered": ("GET", f"/?q={words}&district=Hamm", None),
        "page document": ("GET", f"/dokument/{s}", None),
        "page twin": ("GET", f"/dokument/{t}", None),
        "health": ("GET", "/health", None),
        "metrics": ("GET", "/metrics", None),
    }


def _call(inst: Installation, who: str, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, str]:
    response = inst.client.request(method, url, json=body, headers=_auth(inst, who))
    return response.status_code, response.text


def _leaks(inst: Installation, text: str, asked: str = "") -> list[str]:
    """What of the Hamm document ``text`` shows; ``asked`` is the request itself (its words come back as the
    query, so they prove nothing)."""
    asked = asked.casefold()
    markers = [m for m in (SECRET_TITLE, *SECRET_WORDS, inst.secret) if m.casefold() not in asked]
    found = [m for m in markers if m.casefold() in text.casefold()]
    if re.search(r'"district":\s*\{[^}]*"Hamm"', text):
        found.append("the district Hamm in a facet")
    if "district=hamm" not in asked and "district=Hamm" in text:
        found.append("the district Hamm as a filter of the page")
    if re.search(r"Fast gleich auch aus.{0,400}Hamm", text, re.S) or '"district":"Hamm"' in text:
        found.append("Hamm as a near-duplicate")
    return found


@pytest.mark.parametrize("who", ["anonymous", "reader B", "editor B"])
def test_no_read_path_shows_anything_of_another_districts_document(installation: Installation, who: str) -> None:
    inst = installation
    for name, (method, url, body) in _read_paths(inst).items():
        _call(inst, "curator", method, url, body)  # the curator's result first: a shared cache must not serve it
        status, text = _call(inst, who, method, url, body)
        assert status in (200, 404), (name, status, text[:300])
        asked = f"{url} {body}"
        assert _leaks(inst, text, asked) == [], (name, who, _leaks(inst, text, asked))


@pytest.mark.parametrize("who", ["reader A", "curator"])
def test_the_district_and_curators_see_it_on_every_path(installation: Installation, who: str) -> None:
    inst = installation
    seen = {
        name: _call(inst, who, method, url, body)
        for name, (method, url, body) in _read_paths(inst).items()
        if name not in ("health", "metrics", "page start", "similar of it", "file")
    }
    for name in ("search", "search lexical", "search filtered", "list", "document", "text", "page document"):
        status, text = seen[name]
        assert status == 200 and SECRET_TITLE in text.replace("&amp;", "&"), name
    assert SECRET_WORDS[1] in seen["text"][1] and SECRET_WORDS[1] in seen["search raw passages"][1]
    assert inst.secret in seen["twin document"][1]  # named as the near-duplicate it is
    assert inst.client.get(f"/documents/{inst.secret}/file", headers=_auth(inst, who)).status_code == 200


def test_an_invisible_document_is_a_404_like_one_that_never_existed(installation: Installation) -> None:
    inst = installation
    for who in ("anonymous", "reader B", "editor B"):
        for suffix in ("", "/text", "/file", "/similar"):
            hidden = inst.client.get(f"/documents/{inst.secret}{suffix}", headers=_auth(inst, who))
            unknown = inst.client.get(f"/documents/{UNKNOWN_ID}{suffix}", headers=_auth(inst, who))
            assert hidden.status_code == unknown.status_code == 404, (who, suffix)
            assert hidden.json()["detail"].replace(inst.secret, UNKNOWN_ID) == unknown.json()["detail"]
            assert _leaks(inst, hidden.text.replace(inst.secret, "")) == []
        page = inst.client.get(f"/dokument/{inst.secret}", headers=_auth(inst, who))
        missing = inst.client.get(f"/dokument/{UNKNOWN_ID}", headers=_auth(inst, who))
        assert page.status_code == missing.status_code == 404
        assert page.text.replace(inst.secret, UNKNOWN_ID) == missing.text.replace(inst.secret, UNKNOWN_ID)


def test_an_editor_of_another_district_cannot_learn_it_exists_by_changing_it(installation: Installation) -> None:
    inst = installation
    editor = _auth(inst, "editor B")
    for response in (
        inst.client.patch(f"/documents/{inst.secret}", json={"title": "Neu"}, headers=editor),
        inst.client.delete(f"/documents/{inst.secret}", headers=editor),
        inst.client.patch(f"/documents/{inst.twin}", json={"superseded_by": inst.secret}, headers=editor),
    ):
        assert response.status_code == 404, response.text
        assert _leaks(inst, response.text.replace(inst.secret, "")) == []


def test_counts_are_those_of_the_visible_documents(installation: Installation) -> None:
    inst = installation
    totals = {
        who: inst.client.get("/documents?limit=200", headers=_auth(inst, who)).json()["total"]
        for who in ("anonymous", "reader B", "reader A", "curator")
    }
    # 7 small-corpus documents and the public twin; the network paper for keys; the Hamm paper for Hamm
    assert totals == {"anonymous": 8, "reader B": 9, "reader A": 10, "curator": 10}
    assert inst.client.get("/health").json()["documents"] == 8
    assert "kb_index_documents 8.0" in inst.client.get("/metrics").text
    network = inst.client.get(f"/search?q={NETWORK_WORD}&mode=lexical").json()
    assert network["results"] == []
    assert inst.client.get(f"/search?q={NETWORK_WORD}&mode=lexical", headers=_auth(inst, "reader B")).json()[
        "results"
    ]


def test_the_lexical_weight_does_not_tell_whether_a_hidden_word_exists(installation: Installation) -> None:
    """The weight a search reports comes from the words the caller may see: a word only the Hamm document uses
    weighs like a word no document uses."""
    inst = installation
    hidden = inst.client.get(f"/search?q={SECRET_WORDS[0]} {SECRET_WORDS[1]}").json()["lexical_weight"]
    nowhere = inst.client.get("/search?q=Xylofonwerkstatt Pumaquartier").json()["lexical_weight"]
    assert hidden == nowhere == 0.0
    own = inst.client.get(f"/search?q={SECRET_WORDS[0]} {SECRET_WORDS[1]}", headers=_auth(inst, "reader A"))
    assert own.json()["lexical_weight"] > 0


# -- the property: random visibilities, random callers, random searches ------------------------------------------
DISTRICTS = ("Hamm", "Dortmund", "Essen")
CALLERS = ("anonymous", "reader Hamm", "reader Dortmund", "editor Essen")


@dataclass
class Shuffled:
    client: TestClient
    settings: Settings
    embedder: Embedder
    keys: dict[str, str]
    keys_of_docs: list[str]


class _Overrides:
    """Curated metadata laid over the files (as the curation database does), set per example."""

    def __init__(self) -> None:
        self.metadata: dict[str, dict[str, Any]] = {}

    def overrides(self) -> dict[str, dict[str, Any]]:
        return self.metadata

    def excluded(self) -> set[str]:
        return set()

    def shared_files(self) -> None:
        return None


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Shuffled]:
    root = tmp_path_factory.mktemp("shuffled")
    corpus = make_small_corpus(root / "corpus")
    _extra_documents(corpus)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", data_dir=root / "data")
    Ingestor(settings, embedder).run()
    db = CurationDB(settings.data_dir)
    keys = {
        "reader Hamm": create_key(db, "reader", "Hamm", "Hamm")[1],
        "reader Dortmund": create_key(db, "reader", "Dortmund", "Dortmund")[1],
        "editor Essen": create_key(db, "editor", "Essen", "Essen")[1],
    }
    db.close()
    searcher = Searcher(settings, embedder)
    with TestClient(create_app(settings, searcher=searcher)) as client:
        every = sorted(d.key for d in searcher.index.documents.values())
        assert len(every) == 10
        yield Shuffled(client, settings, embedder, keys, every)


def _may_see(caller: str, visibility: str, district: str) -> bool:
    if visibility == "oeffentlich":
        return True
    if caller == "anonymous":
        return False
    return visibility == "netzwerk" or caller.split()[1] == district


QUERIES = ("Eltern Schule", "Sprache", "Quokkarat", "Schwimmen Mädchen", "Okapiforum Netzwerk", "Pflege Demenz")


@hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking re-ingests per step: too slow to be useful
)
@given(data=st.data())
def test_no_forbidden_document_ever_appears(shuffled: Shuffled, data: st.DataObject) -> None:
    keys = shuffled.keys_of_docs
    assignment = {
        key: (
            data.draw(st.sampled_from(("oeffentlich", "netzwerk", "kommune")), label=f"visibility {key}"),
            data.draw(st.sampled_from(DISTRICTS), label=f"district {key}"),
        )
        for key in keys
    }
    overrides = _Overrides()
    overrides.metadata = {k: {"visibility": v, "district": d} for k, (v, d) in assignment.items()}
    Ingestor(shuffled.settings, shuffled.embedder, overrides).run()
    shuffled.client.app.state.searcher.handle.refresh()  # type: ignore[attr-defined]

    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    headers = {"Authorization": f"Bearer {shuffled.keys[caller]}"} if caller in shuffled.keys else {}
    allowed = {document_id(k) for k, (v, d) in assignment.items() if _may_see(caller, v, d)}
    allowed_districts = {assignment[k][1] for k in keys if document_id(k) in allowed}

    body = {
        "q": data.draw(st.sampled_from(QUERIES), label="query"),
        "k": data.draw(st.integers(1, 20), label="k"),
        "mode": data.draw(st.sampled_from(("hybrid", "dense", "lexical")), label="mode"),
        "group": data.draw(st.booleans(), label="group"),
        "facets": True,
        "filters": {"district": data.draw(st.lists(st.sampled_from(DISTRICTS), max_size=2), label="filter")},
    }
    result = shuffled.client.post("/search", json=body, headers=headers).json()
    seen = {hit["document_id"] for hit in result["results"]}
    seen |= {ref["id"] for hit in result["results"] for ref in hit.get("also_from", [])}
    assert seen <= allowed, (caller, assignment)
    assert set(result["facets"].get("district", {})) <= allowed_districts
    assert sum(result["facets"].get("district", {}).values()) <= len(allowed)

    listed = shuffled.client.get("/documents?limit=200", headers=headers).json()
    assert {d["id"] for d in listed["items"]} == allowed and listed["total"] == len(allowed)

    source = data.draw(st.sampled_from(sorted(document_id(k) for k in keys)), label="similar of")
    similar = shuffled.client.get(f"/documents/{source}/similar?other_districts=false&k=20", headers=headers)
    if source in allowed:
        assert {hit["document_id"] for hit in similar.json()["results"]} <= allowed
        near = shuffled.client.get(f"/documents/{source}", headers=headers).json()["near_duplicates"]
        assert {ref["id"] for ref in near} <= allowed
    else:
        assert similar.status_code == 404
        assert shuffled.client.get(f"/documents/{source}/text", headers=headers).status_code == 404
