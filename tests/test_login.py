"""Logging in on the web page: the key once through the form, then a session cookie; logout, expiry, revocation,
the login rate limit and the CSRF check of cookie-authenticated changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from kb.api.app import create_app
from kb.curation.db import CurationDB
from kb.curation.keys import create_key, revoke_key
from kb.documents import document_id
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import make_small_corpus

HIDDEN_TITLE = "Beschlussvorlage Seiteneinstieg Hamm intern"


@dataclass(frozen=True)
class Site:
    settings: Settings
    embedder: Embedder
    keys: dict[str, str]
    key_ids: dict[str, str]
    hidden: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Site:
    root = tmp_path_factory.mktemp("login")
    corpus = make_small_corpus(root / "corpus")
    (corpus / "hamm" / "vorlage.md").write_text(
        factories.markdown(
            HIDDEN_TITLE,
            "Hamm",
            "Der Ausschuss berät über zusätzliche Plätze in Seiteneinsteigerklassen.",
            doc_type="Beschlussvorlage",
            visibility="kommune",
        ),
        encoding="utf-8",
    )
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", data_dir=root / "data", login_attempts=3)
    Ingestor(settings, embedder).run()
    db = CurationDB(settings.data_dir)
    made = {
        "reader": create_key(db, "reader", "KI Hamm Lesen", "Hamm"),
        "editor": create_key(db, "editor", "KI Hamm Redaktion", "Hamm"),
        "other": create_key(db, "reader", "KI Dortmund", "Dortmund"),
    }
    db.close()
    keys = {who: secret for who, (_, secret) in made.items()}
    ids = {who: key.id for who, (key, _) in made.items()}
    return Site(settings, embedder, keys, ids, document_id("hamm/vorlage.md"))


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site.settings, searcher=Searcher(site.settings, site.embedder))) as c:
        yield c


def _login(client: TestClient, key: str, **headers: str) -> object:
    return client.post(
        "/anmelden", data={"schluessel": key, "weiter": "/"}, headers=headers, follow_redirects=False
    )


def test_the_login_form_is_german_and_takes_the_key_as_a_password(client: TestClient) -> None:
    page = client.get("/anmelden")
    assert page.status_code == 200
    assert (
        "<h1>Anmelden</h1>" in page.text and 'type="password"' in page.text and 'action="/anmelden"' in page.text
    )
    assert 'href="/anmelden"' in client.get("/").text  # every page offers it


def test_a_key_becomes_a_session_cookie_that_shows_the_districts_documents(client: TestClient, site: Site) -> None:
    assert client.get(f"/dokument/{site.hidden}").status_code == 404
    response = _login(client, site.keys["reader"])
    assert response.status_code == 303 and response.headers["location"] == "/"  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith("kb_session=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here: a Secure cookie would never come back
    assert site.keys["reader"] not in cookie  # the cookie holds a session token, never the key
    page = client.get(f"/dokument/{site.hidden}")
    assert page.status_code == 200 and HIDDEN_TITLE in page.text
    assert "Angemeldet: KI Hamm Lesen (Hamm)" in page.text and page.headers["cache-control"] == "private, no-store"
    assert HIDDEN_TITLE in client.get("/", params={"q": "Seiteneinsteigerklassen Ausschuss"}).text
    # the same cookie opens the API's read paths too
    assert client.get(f"/documents/{site.hidden}/text").status_code == 200


def test_over_tls_the_cookie_is_secure(site: Site) -> None:
    app = create_app(site.settings, searcher=Searcher(site.settings, site.embedder))
    with TestClient(app, base_url="https://testserver") as client:
        response = _login(client, site.keys["reader"])
        assert "Secure" in response.headers["set-cookie"]  # type: ignore[attr-defined]
        assert client.get(f"/dokument/{site.hidden}").status_code == 200


def test_logout_needs_the_pages_token_and_ends_the_session(client: TestClient, site: Site) -> None:
    _login(client, site.keys["reader"])
    token = client.cookies["kb_session"]
    forged = client.post("/abmelden", data={"csrf": "geraten"}, follow_redirects=False)
    assert forged.status_code == 403 and client.get(f"/dokument/{site.hidden}").status_code == 200
    page = client.get("/").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    out = client.post("/abmelden", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and 'kb_session=""' in out.headers["set-cookie"]
    assert client.get(f"/dokument/{site.hidden}").status_code == 404
    client.cookies.set("kb_session", token)  # the old cookie replayed: the session is gone on the server
    assert client.get(f"/dokument/{site.hidden}").status_code == 404


def test_a_wrong_key_is_refused_in_german_and_repeated_failures_are_limited(
    client: TestClient, site: Site
) -> None:
    for _ in range(site.settings.login_attempts):
        wrong = _login(client, "kbk_falsch")
        assert wrong.status_code == 401 and "nicht gültig" in wrong.text  # type: ignore[attr-defined]
        assert "set-cookie" not in wrong.headers  # type: ignore[attr-defined]
    limited = _login(client, site.keys["reader"])  # even the right key waits now
    assert limited.status_code == 429 and "Zu viele fehlgeschlagene Anmeldungen" in limited.text  # type: ignore[attr-defined]
    assert int(limited.headers["retry-after"]) > 0  # type: ignore[attr-defined]


def test_a_login_posted_from_another_site_is_refused(client: TestClient, site: Site) -> None:
    response = _login(client, site.keys["reader"], origin="https://boese.example")
    assert response.status_code == 403 and "set-cookie" not in response.headers  # type: ignore[attr-defined]


def test_a_cookie_authenticated_change_needs_the_csrf_token(client: TestClient, site: Site) -> None:
    _login(client, site.keys["editor"])
    change = {"title": "Beschlussvorlage Seiteneinstieg (überarbeitet)"}
    refused = client.patch(f"/documents/{site.hidden}", json=change)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    csrf = client.get("/").text.split('name="csrf" value="')[1].split('"')[0]
    other = client.patch(
        f"/documents/{site.hidden}", json=change, headers={"X-CSRF-Token": csrf, "Origin": "https://boese.example"}
    )
    assert other.status_code == 403
    done = client.patch(f"/documents/{site.hidden}", json=change, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200 and done.json()["title"] == change["title"]


def test_sessions_expire_on_the_server(site: Site) -> None:
    short = site.settings.model_copy(update={"session_hours": 3 / 3600})  # three seconds
    with TestClient(create_app(short, searcher=Searcher(short, site.embedder))) as client:
        response = _login(client, site.keys["reader"])
        assert "Max-Age=" in response.headers["set-cookie"]  # type: ignore[attr-defined]
        token = client.cookies["kb_session"]
        assert client.get(f"/dokument/{site.hidden}").status_code == 200
        time.sleep(3.5)
        client.cookies.set("kb_session", token)  # a browser would have dropped it; a copied cookie is replayed
        assert client.get(f"/dokument/{site.hidden}").status_code == 404


def test_revoking_the_key_ends_its_sessions_at_once(client: TestClient, site: Site, embedder: Embedder) -> None:
    db = CurationDB(site.settings.data_dir)
    key, secret = create_key(db, "reader", "Befristet", "Hamm")
    _login(client, secret)
    assert client.get(f"/dokument/{site.hidden}").status_code == 200
    revoke_key(db, key.id)
    db.close()
    assert client.get(f"/dokument/{site.hidden}").status_code == 404


def test_a_reader_key_reads_but_cannot_change(client: TestClient, site: Site) -> None:
    headers = {"Authorization": f"Bearer {site.keys['reader']}"}
    assert client.get(f"/documents/{site.hidden}", headers=headers).status_code == 200
    refused = client.patch(f"/documents/{site.hidden}", json={"title": "x"}, headers=headers)
    assert refused.status_code == 403 and "reader" in refused.json()["detail"]
    other = {"Authorization": f"Bearer {site.keys['other']}"}
    assert client.get(f"/documents/{site.hidden}", headers=other).status_code == 404
