"""The curation workflow through the real API: keys and roles, uploads, metadata, retire/purge, audit."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from kb.api.app import create_app
from kb.curation.db import CurationDB
from kb.curation.keys import Principal, Role, create_key, revoke_key
from kb.curation.service import Curator
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Filters, Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import curated_installation, make_small_corpus, serving

LONG_TEXT = " ".join(
    f"Im Abschnitt {i} beschreibt das Konzept, wie das Kommunale Integrationszentrum Lotsinnen und Lotsen "
    f"für neu zugewanderte Familien gewinnt, schult und im Stadtteil {i} begleitet."
    for i in range(1, 31)
)


class Env:
    def __init__(self, settings: Settings, client: TestClient, keys: dict[str, str]) -> None:
        self.settings, self.client, self.keys = settings, client, keys

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def upload(
        self,
        who: str | None,
        name: str,
        data: bytes,
        metadata: dict[str, Any] | None = None,
        raw: str | None = None,
    ) -> httpx.Response:
        meta = raw if raw is not None else json.dumps(metadata or {})
        headers = self.auth(who) if who else {}
        return self.client.post(
            "/documents", files={"file": (name, data)}, data={"metadata": meta}, headers=headers
        )

    def search(self, q: str, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/search", params={"q": q, **params}, headers=params.pop("headers", {}))
        assert response.status_code == 200, response.text
        return list(response.json()["results"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("curation")
    settings = Settings(
        corpus_dir=make_small_corpus(root / "corpus"),
        index_dir=root / "index",
        data_dir=root / "data",
        max_upload_mb=1,
    )
    Ingestor(settings, embedder).run()
    db = CurationDB(settings.data_dir)
    keys = {
        "curator": create_key(db, "curator", "LaKI Redaktion")[1],
        "dortmund": create_key(db, "editor", "KI Dortmund", "Dortmund")[1],
        "wuppertal": create_key(db, "editor", "KI Wuppertal", "Wuppertal")[1],
    }
    revoked, keys["revoked"] = create_key(db, "editor", "Alter Schlüssel", "Dortmund")
    revoke_key(db, revoked.id)
    db.close()
    app = create_app(settings, searcher=Searcher(settings, embedder))
    with TestClient(app) as client:
        yield Env(settings, client, keys)


def _doc_id(env: Env, title: str) -> str:
    listing = env.client.get("/documents", params={"limit": 200}).json()["items"]
    return next(d["id"] for d in listing if d["title"] == title)


def test_writes_without_a_valid_key_are_refused_with_401(env: Env) -> None:
    doc = _doc_id(env, "Schwimmkurse für Mädchen")
    attempts = [
        ("post", "/documents", {"files": {"file": ("a.md", b"# Titel\n\nText")}}),
        ("patch", f"/documents/{doc}", {"json": {"title": "Neu"}}),
        ("delete", f"/documents/{doc}", {}),
        ("get", "/audit", {}),
        ("get", "/review/due", {}),
    ]
    for headers in ({}, {"Authorization": "Bearer kbk_not-a-key"}, env.auth("revoked"), {"Authorization": "x"}):
        for method, url, kwargs in attempts:
            response = getattr(env.client, method)(url, headers=headers, **kwargs)
            assert response.status_code == 401, (method, url, headers, response.text)
            assert response.json()["detail"] and response.headers["www-authenticate"] == "Bearer"
    assert "revoked" in env.client.get("/audit", headers=env.auth("revoked")).json()["detail"]
    assert env.client.get(f"/documents/{doc}").json()["title"] == "Schwimmkurse für Mädchen"  # nothing changed


def test_an_editor_may_change_only_its_own_district(env: Env) -> None:
    wuppertal = _doc_id(env, "Schwimmkurse für Mädchen")
    dortmund = _doc_id(env, "Elterncafé an der Grundschule")
    as_dortmund = env.auth("dortmund")
    forbidden = [
        env.client.patch(f"/documents/{wuppertal}", json={"year": 2020}, headers=as_dortmund),
        env.client.delete(f"/documents/{wuppertal}", headers=as_dortmund),
        env.client.patch(f"/documents/{dortmund}", json={"district": "Wuppertal"}, headers=as_dortmund),
        env.client.patch(f"/documents/{dortmund}", json={"recommended": True}, headers=as_dortmund),
        env.client.delete(f"/documents/{dortmund}", params={"purge": True}, headers=as_dortmund),
        env.client.get("/audit", headers=as_dortmund),
        env.upload("dortmund", "fremd.md", b"# Fremd\n\nEin Text aus Wuppertal.", {"district": "Wuppertal"}),
    ]
    for response in forbidden:
        assert response.status_code == 403, response.text
        assert "Dortmund" in response.json()["detail"] or "curator" in response.json()["detail"]
    allowed = env.client.patch(f"/documents/{dortmund}", json={"audience": ["Eltern"]}, headers=as_dortmund)
    assert allowed.status_code == 200 and allowed.json()["audience"] == ["Eltern"]
    assert env.client.get(f"/documents/{wuppertal}").json()["year"] == 2022


def test_uploads_of_every_format_are_searchable_when_the_request_returns(env: Env, tmp_path: Path) -> None:
    pdf = factories.write_pdf(
        tmp_path / "x.pdf", [["Kiezlotsen im Quartier", "Kiezlotsen begleiten Familien zu Ämtern und Kitas."]]
    )
    docx = factories.write_docx(
        tmp_path / "x.docx", "Zirkuspädagogik", [("Heading 1", "Zirkuspädagogik"), ("", "Jonglieren verbindet.")]
    )
    uploads = {
        "kiezlotsen.pdf": (pdf.read_bytes(), "Kiezlotsen"),
        "zirkus.docx": (docx.read_bytes(), "Zirkuspädagogik Jonglieren"),
        "imkerei.md": ("# Imkerei-AG\n\nSchülerinnen betreuen Bienenvölker.".encode(), "Bienenvölker Imkerei"),
        "kochbuch.txt": ("Mehrsprachiges Kochbuch\n\nRezepte in sieben Sprachen.".encode("utf-16"), "Kochbuch"),
        "chor.html": (
            b"<html><body><main><h1>Interkultureller Chor</h1><p>Wir singen.</p></main></body></html>",
            "Chor",
        ),
    }
    for name, (data, query) in uploads.items():
        response = env.upload("dortmund", name, data, {"topics": ["Sprachbildung"], "year": 2025})
        assert response.status_code == 201, (name, response.text)
        body = response.json()
        assert body["document"]["district"] == "Dortmund"  # an editor's uploads belong to its district
        hits = env.search(query, k=3)
        assert hits[0]["document_id"] == body["id"], (name, [h["title"] for h in hits])
        assert env.client.get(body["document"]["file_url"]).content == data
    again = env.upload("curator", "kopie.md", uploads["imkerei.md"][0])
    assert again.status_code == 409 and "already stored" in again.json()["detail"]


@pytest.mark.parametrize(
    ("name", "data", "metadata", "status", "says"),
    [
        ("bericht.pdf", b"Dies ist gar kein PDF, nur Text.", "{}", 415, "named like a PDF"),
        ("bericht.pdf", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "{}", 415, "not a PDF"),
        ("alt.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "{}", 415, "old Word"),
        ("leer.md", b"", "{}", 422, "empty"),
        ("gross.txt", b"a " * 600_000, "{}", 413, "1 MB (KB_MAX_UPLOAD_MB)"),
        ("kaputt.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50, "{}", 422, "cannot be read"),
        ("x.md", b"# T\n\nText", "{not json", 422, "not valid JSON"),
        ("x.md", b"# T\n\nText", '["a"]', 422, "JSON object"),
        ("x.md", b"# T\n\nText", '{"year": "letztes Jahr"}', 422, "year"),
        ("x.md", b"# T\n\nText", '{"colour": "blau"}', 422, "colour"),
        ("x.md", b"# T\n\nText", '{"status": "geheim"}', 422, "status"),
    ],
)
def test_bad_uploads_are_refused_with_a_clear_reason_and_leave_nothing_behind(
    env: Env, name: str, data: bytes, metadata: str, status: int, says: str
) -> None:
    files_before = sorted(p.name for p in env.settings.uploads_dir.glob("*"))
    audit_before = env.client.get("/audit", headers=env.auth("curator")).json()["items"]
    response = env.upload("curator", name, data, raw=metadata)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    files_after = sorted(p.name for p in env.settings.uploads_dir.glob("*"))
    assert files_after == files_before
    assert env.client.get("/audit", headers=env.auth("curator")).json()["items"] == audit_before


def test_a_document_lives_through_upload_describe_recommend_supersede_retire_and_purge(env: Env) -> None:
    curator = env.auth("curator")
    first = env.upload(
        "wuppertal",
        "patenschaften-2023.md",
        b"# Bildungspatenschaften 2023\n\nPatinnen und Paten lesen mit Kindern aus Seiteneinsteigerklassen.",
        {"year": 2023, "doc_type": "Konzeptpapier"},
    )
    assert first.status_code == 201, first.text
    old = first.json()["id"]
    described = env.client.patch(
        f"/documents/{old}",
        json={"topics": ["Ehrenamt"], "review_by": "2020-01-31"},
        headers=env.auth("wuppertal"),
    )
    assert described.status_code == 200 and described.json()["topics"] == ["Ehrenamt"]
    due = env.client.get("/review/due", headers=curator).json()["items"]
    assert [d["id"] for d in due] == [old]
    recommended = env.client.patch(f"/documents/{old}", json={"recommended": True}, headers=curator)
    assert recommended.json()["recommended"] is True
    hit = env.search("Bildungspatenschaften Seiteneinsteigerklassen", k=3)[0]
    assert hit["document_id"] == old and hit["recommended"] is True

    newer = env.upload(
        "wuppertal",
        "patenschaften-2025.md",
        b"# Bildungspatenschaften 2025\n\nPatinnen und Paten lesen und rechnen mit Kindern aus "
        b"Seiteneinsteigerklassen, jetzt auch in den Ferien.",
        {"year": 2025, "supersedes": old},
    )
    assert newer.status_code == 201, newer.text
    new = newer.json()["id"]
    replaced = env.client.get(f"/documents/{old}").json()
    assert replaced["status"] == "archived" and replaced["superseded_by"] == new
    found = [h["document_id"] for h in env.search("Bildungspatenschaften Seiteneinsteigerklassen")]
    assert new in found and old not in found

    retired = env.client.delete(f"/documents/{new}", headers=env.auth("wuppertal"))
    assert retired.status_code == 200 and retired.json()["status"] == "archived"
    assert new not in [h["document_id"] for h in env.search("Bildungspatenschaften Seiteneinsteigerklassen")]
    kept = env.client.get(f"/documents/{new}")
    assert kept.json()["status"] == "archived" and env.client.get(kept.json()["file_url"]).status_code == 200
    archived = env.search("Bildungspatenschaften", status=["archived"], headers=curator)
    assert {old, new} <= {h["document_id"] for h in archived}

    purged = env.client.delete(f"/documents/{old}", params={"purge": True}, headers=curator)
    assert purged.status_code == 200 and purged.json()["status"] == "purged"
    assert env.client.get(f"/documents/{old}").status_code == 404
    assert not any(old in p.name for p in env.settings.uploads_dir.glob("*"))
    assert len(list(env.settings.uploads_dir.glob("*.md"))) >= 1

    trail = env.client.get("/audit", params={"limit": 500}, headers=curator).json()["items"]
    mine = [(e["action"], e["actor"].split(" (")[0]) for e in reversed(trail) if e["document_id"] in (old, new)]
    assert mine == [
        ("create", "KI Wuppertal"),
        ("update", "KI Wuppertal"),
        ("recommend", "LaKI Redaktion"),
        ("create", "KI Wuppertal"),
        ("supersede", "KI Wuppertal"),
        ("retire", "KI Wuppertal"),
        ("purge", "LaKI Redaktion"),
    ]
    update = next(e for e in trail if e["document_id"] == old and e["action"] == "update")
    assert update["before"] == {"topics": [], "review_by": ""}
    assert update["after"] == {"topics": ["Ehrenamt"], "review_by": "2020-01-31"}
    assert not any(secret in str(trail) for secret in env.keys.values())


def test_near_duplicates_are_linked_on_upload_and_shown_as_one_result(env: Env) -> None:
    original = env.upload("dortmund", "lotsen.md", f"# Stadtteillotsen\n\n{LONG_TEXT}".encode())
    assert original.status_code == 201 and original.json()["near_duplicates"] == []
    adapted = LONG_TEXT.replace("Stadtteil 3 ", "Ortsteil 3 ").replace("Stadtteil 7 ", "Quartier 7 ")
    copy = env.upload("wuppertal", "lotsen-wuppertal.md", f"# Stadtteillotsen in Wuppertal\n\n{adapted}".encode())
    assert copy.status_code == 201, copy.text
    assert [d["id"] for d in copy.json()["near_duplicates"]] == [original.json()["id"]]
    hits = env.search("Lotsinnen für neu zugewanderte Familien gewinnen und schulen")
    ids = [h["document_id"] for h in hits]
    pair = {original.json()["id"], copy.json()["id"]}
    assert len(pair & set(ids)) == 1  # one result for the group
    shown = next(h for h in hits if h["document_id"] in pair)
    assert {d["id"] for d in shown["also_from"]} == pair - {shown["document_id"]}
    assert shown["also_from"][0]["district"] in ("Dortmund", "Wuppertal")


def test_drafts_are_hidden_from_readers(env: Env) -> None:
    draft = env.upload(
        "dortmund", "entwurf.md", b"# Entwurf Hausaufgabenhilfe\n\nNoch nicht fertig.", {"status": "draft"}
    )
    assert draft.status_code == 201
    doc = draft.json()["id"]
    assert doc not in [h["document_id"] for h in env.search("Entwurf Hausaufgabenhilfe")]
    assert env.client.get(f"/documents/{doc}").status_code == 404
    assert env.client.get("/search", params={"q": "Entwurf", "status": "draft"}).status_code == 401
    mine = env.search("Entwurf Hausaufgabenhilfe", status=["draft"], headers=env.auth("dortmund"))
    assert mine[0]["document_id"] == doc
    published = env.client.patch(f"/documents/{doc}", json={"status": "published"}, headers=env.auth("dortmund"))
    assert published.status_code == 200
    assert env.search("Entwurf Hausaufgabenhilfe", k=1)[0]["document_id"] == doc


def test_concurrent_uploads_while_searching_lose_nothing(tmp_path: Path, embedder: Embedder) -> None:
    settings, key = curated_installation(tmp_path, embedder, "Last")
    db = CurationDB(settings.data_dir)
    app = create_app(settings, searcher=Searcher(settings, embedder))
    errors: list[str] = []
    ids: list[str] = []
    stop = threading.Event()
    with serving(app) as url:

        def upload(i: int) -> None:
            text = f"# Projekt Nummer {i}\n\nDas Projekt {i} fördert Leseclubs in Moscheegemeinden."
            r = httpx.post(
                f"{url}/documents",
                files={"file": (f"p{i}.md", text.encode())},
                headers={"Authorization": f"Bearer {key}"},
                timeout=300,
            )
            if r.status_code != 201:
                errors.append(f"upload {i}: {r.status_code} {r.text}")
            else:
                ids.append(r.json()["id"])

        def search() -> None:
            while not stop.is_set():
                r = httpx.get(f"{url}/search", params={"q": "Elterncafé Grundschule"}, timeout=60)
                if r.status_code != 200 or r.json()["results"][0]["title"] != "Elterncafé an der Grundschule":
                    errors.append(f"search: {r.status_code} {r.text[:200]}")

        searchers = [threading.Thread(target=search) for _ in range(2)]
        uploaders = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
        for t in searchers + uploaders:
            t.start()
        for t in uploaders:
            t.join()
        stop.set()
        for t in searchers:
            t.join()
        assert errors == []
        listed = {d["id"] for d in httpx.get(f"{url}/documents", params={"limit": 200}).json()["items"]}
    assert len(ids) == 4 and set(ids) <= listed
    actions = [row[0] for row in db.query("SELECT action FROM audit WHERE action = 'create'")]
    assert len(actions) == 4


def test_keys_are_stored_only_as_hashes(env: Env) -> None:
    raw = (env.settings.data_dir / "curation.sqlite").read_bytes()
    with sqlite3.connect(env.settings.data_dir / "curation.sqlite") as db:
        dumped = "\n".join(db.iterdump())
    for secret in env.keys.values():
        assert secret.encode() not in raw and secret not in dumped


def test_the_web_page_shows_recommendations_groups_and_archived_documents(env: Env) -> None:
    curator = env.auth("curator")
    one = env.upload("curator", "sprachcafe.md", f"# Sprachcafé für Eltern\n\n{LONG_TEXT} Sprachcafé".encode())
    two = env.upload(
        "curator", "sprachcafe-hamm.md", f"# Sprachcafé für Eltern in Hamm\n\n{LONG_TEXT} Sprachcafé Hamm".encode()
    )
    assert one.status_code == two.status_code == 201
    first, second = one.json()["id"], two.json()["id"]
    env.client.patch(f"/documents/{first}", json={"district": "Unna", "recommended": True}, headers=curator)
    env.client.patch(f"/documents/{second}", json={"district": "Hamm"}, headers=curator)
    page = env.client.get("/", params={"q": "Sprachcafé für Eltern Lotsinnen"}).text
    assert "LaKI-Empfehlung" in page and "Fast gleich auch aus" in page
    env.client.patch(f"/documents/{second}", json={"superseded_by": first}, headers=curator)
    archived = env.client.get(f"/dokument/{second}").text
    assert "archiviert" in archived and f'href="/dokument/{first}"' in archived


def test_upload_names_cannot_escape_the_data_folder(env: Env) -> None:
    before = {p.resolve() for p in env.settings.data_dir.rglob("*")}
    text = "# Pfadtest\n\nEin Text mit einem bösen Namen.".encode()
    response = env.upload("curator", "../../../etc/Ümläut name.md", text)
    assert response.status_code == 201, response.text
    created = {p.resolve() for p in env.settings.data_dir.rglob("*") if "curation.sqlite" not in p.name} - before
    uploads = env.settings.uploads_dir.resolve()
    assert created and all(p.parent == uploads for p in created if p.is_file())
    assert not (env.settings.data_dir.parent.parent / "etc").exists()
    entry = env.client.get("/audit", params={"limit": 1}, headers=env.auth("curator")).json()["items"][0]
    assert entry["note"] == "Ümläut name.md"


def test_the_first_upload_of_a_new_installation_builds_the_index(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    settings.corpus_dir.mkdir()
    key = create_key(CurationDB(settings.data_dir), "curator", "Erste")[1]
    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as client:
        assert client.get("/search", params={"q": "Theater"}).status_code == 503  # no index yet: says so
        response = client.post(
            "/documents",
            files={"file": ("theater.md", b"# Theater-AG\n\nKinder spielen Theater in zwei Sprachen.")},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201, response.text
        hits = client.get("/search", params={"q": "Theater in zwei Sprachen"}).json()["results"]
        assert hits[0]["document_id"] == response.json()["id"]


def test_repeated_searches_come_from_the_result_cache_until_the_index_changes(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = curated_installation(tmp_path, embedder)
    searcher = Searcher(settings, embedder)
    curator = Curator(searcher)
    computed: list[str] = []
    compute = searcher.search_encoded

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        computed.append(text)
        return compute(text, *args, **kwargs)

    monkeypatch.setattr(searcher, "search_encoded", counting)
    query = "Wie gewinnen Kommunen Ehrenamtliche für die Arbeit mit Neuzugewanderten?"
    first = searcher.search(query, 5)
    again = searcher.search("  " + query.replace(" ", "   "), 5)  # the same question, spaced differently
    assert len(computed) == 1
    assert [h.chunk_id for h in again.hits] == [h.chunk_id for h in first.hits] and first.hits
    searcher.search(query, 3)
    searcher.search(query, 5, mode="lexical")
    searcher.search(query, 5, filters=Filters(district=(first.hits[0].document.metadata.district,)))
    assert len(computed) == 4  # another k, mode or filter is another search

    retired = first.hits[0].document
    curator.retire(Principal(Role.CURATOR, "test"), retired.id)  # publishes a new index version
    after = searcher.search(query, 5)
    assert len(computed) == 5
    assert retired.id not in [h.document.id for h in after.hits]

    uncached = Searcher(settings.model_copy(update={"result_cache_size": 0}), embedder)
    assert uncached.search(query, 5).hits[0].chunk_id == after.hits[0].chunk_id
