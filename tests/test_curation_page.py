"""The rules of the curation page (/kuratieren) through the real app: who may open it, the CSRF check of its
forms, an editor of another district answered as for an unknown document, purging only after confirmation, form
choices derived from the registry, and errors shown in German with the values typed kept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from kb import districts, fields
from kb.api import curation_forms
from kb.api.app import create_app
from kb.api.page import NOT_FOUND
from kb.curation.db import CurationDB
from kb.curation.keys import Principal, Role, create_key
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import make_small_corpus

DORTMUND_TITLE = "Elterncafé an der Grundschule"
WUPPERTAL_TITLE = "Schwimmkurse für Mädchen"


@dataclass
class Site:
    client: TestClient
    searcher: Searcher
    keys: dict[str, str]
    settings: Settings

    def login(self, who: str) -> str:
        """Log in as ``who`` (a fresh session) and return the session's CSRF token from a page's form."""
        self.client.cookies.clear()
        response = self.client.post("/anmelden", data={"schluessel": self.keys[who], "weiter": "/"})
        assert response.status_code == 200, response.text
        return csrf_of(self.client.get("/").text)

    def doc_id(self, title: str) -> str:
        index = self.searcher.index
        return next(d.id for d in index.documents.values() if d.metadata.title == title)

    def metadata(self, doc_id: str) -> dict[str, object]:
        return self.searcher.index.documents[doc_id].metadata.as_dict()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no form with a CSRF token on the page"
    return found.group(1)


def options_of(html: str, select_id: str) -> list[str]:
    select = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None, f"no select {select_id}"
    return re.findall(r'<option value="([^"]*)"', select.group(1))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("curation-page")
    settings = Settings(
        corpus_dir=make_small_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data"
    )
    Ingestor(settings, embedder).run()
    db = CurationDB(settings.data_dir)
    keys = {
        "curator": create_key(db, "curator", "LaKI Redaktion")[1],
        "dortmund": create_key(db, "editor", "KI Dortmund", "Dortmund")[1],
        "wuppertal": create_key(db, "editor", "KI Wuppertal", "Wuppertal")[1],
        "reader": create_key(db, "reader", "KI Hamm Lesen", "Hamm")[1],
    }
    db.close()
    searcher = Searcher(settings, embedder)
    with TestClient(create_app(settings, searcher=searcher)) as client:
        yield Site(client, searcher, keys, settings)


def test_anonymous_callers_are_sent_to_the_login_form_and_readers_are_refused_in_german(site: Site) -> None:
    site.client.cookies.clear()
    for path in ("/kuratieren", "/kuratieren/neu", f"/kuratieren/{site.doc_id(DORTMUND_TITLE)}"):
        response = site.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/anmelden?weiter=%2F")
    assert 'href="/kuratieren"' not in site.client.get("/").text  # no header link without a login
    site.login("reader")
    refused = site.client.get("/kuratieren")
    assert refused.status_code == 403 and "nicht das Ändern" in refused.text
    assert 'href="/kuratieren"' not in site.client.get("/").text.split("</header>")[0]
    site.login("dortmund")
    assert 'href="/kuratieren"' in site.client.get("/").text.split("</header>")[0]


def test_a_post_without_the_sessions_token_is_refused_and_changes_nothing(site: Site) -> None:
    doc = site.doc_id(DORTMUND_TITLE)
    before = site.metadata(doc)
    site.login("curator")
    for data in ({"title": "Gefälscht"}, {"title": "Gefälscht", "csrf": "geraten"}):
        response = site.client.post(f"/kuratieren/{doc}", data=data)
        assert response.status_code == 403 and "ohne gültiges Formular" in response.text
    for action in ("empfehlen", "zurueckziehen", "loeschen"):
        assert site.client.post(f"/kuratieren/{doc}/{action}", data={"bestaetigt": "ja"}).status_code == 403
    csrf = csrf_of(site.client.get(f"/kuratieren/{doc}").text)
    other_site = site.client.post(
        f"/kuratieren/{doc}",
        data={"title": "Gefälscht", "csrf": csrf},
        headers={"origin": "https://boese.example"},
    )
    assert other_site.status_code == 403
    assert site.metadata(doc) == before


def test_an_editor_of_another_district_gets_the_answer_of_an_unknown_document(site: Site) -> None:
    doc = site.doc_id(DORTMUND_TITLE)
    before = site.metadata(doc)
    csrf = site.login("wuppertal")
    unknown = site.client.get("/kuratieren/0123456789abcdef")
    assert unknown.status_code == 404 and NOT_FOUND in unknown.text
    opened = site.client.get(f"/kuratieren/{doc}")
    assert opened.status_code == 404 and opened.text == unknown.text  # same page: nothing says it exists
    assert DORTMUND_TITLE not in opened.text
    posts = [
        (f"/kuratieren/{doc}", {"title": "Übernommen", "csrf": csrf}),
        (f"/kuratieren/{doc}/zurueckziehen", {"csrf": csrf}),
        (f"/kuratieren/{doc}/empfehlen", {"csrf": csrf}),
        (f"/kuratieren/{doc}/loeschen", {"csrf": csrf, "bestaetigt": "ja"}),
    ]
    for url, data in posts:
        response = site.client.post(url, data=data)
        assert response.status_code == 404 and NOT_FOUND in response.text, url
    assert DORTMUND_TITLE not in site.client.get("/kuratieren").text  # not in its list either
    assert site.metadata(doc) == before


def test_an_editor_sees_only_its_own_district_and_no_curators_fields(site: Site) -> None:
    site.login("wuppertal")
    overview = site.client.get("/kuratieren").text
    assert WUPPERTAL_TITLE in overview
    form = site.client.get("/kuratieren/neu").text
    assert options_of(form, "f-district") == ["Wuppertal"]
    assert 'name="visibility"' not in form and 'name="recommended"' not in form
    page = site.client.get(f"/kuratieren/{site.doc_id(WUPPERTAL_TITLE)}").text
    assert "/loeschen" not in page and 'id="verlauf-titel"' not in page  # curators only


def test_the_forms_choices_come_from_the_field_registry_and_the_district_list(site: Site) -> None:
    site.login("curator")
    form = site.client.get("/kuratieren/neu").text
    assert options_of(form, "f-district") == ["", *districts.names()]
    assert options_of(form, "f-doc_type") == ["", *fields.DOC_TYPES]
    assert options_of(form, "f-status") == list(fields.STATUSES)
    assert options_of(form, "f-visibility") == list(fields.VISIBILITIES)
    for stage in fields.BILDUNGSBEREICHE:
        assert f'name="bildungsbereich" value="{stage}"' in form
    for f in fields.FIELDS:
        if f.name != "superseded_by":
            assert f'name="{f.name}"' in form, f.name
            if f.kind != "list" or not f.choices:
                assert f'for="f-{f.name}"' in form, f.name  # every input has its label


def test_invalid_values_are_explained_in_german_next_to_the_field_and_kept(site: Site) -> None:
    doc = site.doc_id(WUPPERTAL_TITLE)
    before = site.metadata(doc)
    csrf = site.login("curator")
    data = {"csrf": csrf, "title": WUPPERTAL_TITLE, "district": "Wuppertal", "year": "zwanzig"}
    response = site.client.post(f"/kuratieren/{doc}", data=data)
    assert response.status_code == 422, response.text
    html = response.text
    assert 'class="error-summary"' in html and 'href="#f-year"' in html and "„zwanzig“ ist kein Jahr" in html
    assert (
        'value="zwanzig"' in html
        and 'aria-invalid="true"' in html
        and 'aria-describedby="f-year-hint f-year-error"' in html
    )
    empty_title = site.client.post(
        f"/kuratieren/{doc}", data={**data, "year": "2021", "jahrgang": "", "title": ""}
    )
    assert empty_title.status_code == 422 and "Bitte einen Titel eintragen." in empty_title.text
    assert site.metadata(doc) == before


def test_an_upload_without_a_file_or_of_an_unreadable_kind_is_refused_in_german(site: Site) -> None:
    csrf = site.login("dortmund")
    data = {"csrf": csrf, "title": "Ohne Datei", "district": "Dortmund"}
    missing = site.client.post("/kuratieren/neu", data=data)
    assert missing.status_code == 422 and "Bitte eine Datei auswählen." in missing.text
    assert 'value="Ohne Datei"' in missing.text
    binary = site.client.post(
        "/kuratieren/neu", data=data, files={"datei": ("bild.pdf", b"\x89PNG\r\n\x1a\n\0\0")}
    )
    assert binary.status_code == 415 and "Diese Datei kann die Wissensbasis nicht lesen" in binary.text
    # a file larger than KB_MAX_BODY_KB reaches the form (uploads have their own limit) and is refused there
    large = b"\x89PNG\r\n\x1a\n" + bytes(site.settings.max_body_kb * 1024)
    refused = site.client.post("/kuratieren/neu", data=data, files={"datei": ("gross.pdf", large)})
    assert refused.status_code == 415 and "Diese Datei kann die Wissensbasis nicht lesen" in refused.text
    assert not any(d.metadata.title == "Ohne Datei" for d in site.searcher.index.documents.values())


def test_purging_needs_a_confirmation_step(site: Site) -> None:
    csrf = site.login("curator")
    text = (
        b"# Einmaliger Aushang\n\nDer Aushang zum Sommerfest der Sprachpatenschaften wird nicht mehr gebraucht.\n"
    )
    uploaded = site.client.post(
        "/kuratieren/neu",
        data={"csrf": csrf, "title": "Aushang Sommerfest", "district": "Hagen"},
        files={"datei": ("aushang.md", text)},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    doc = uploaded.headers["location"].split("/")[-1].split("?")[0]
    assert site.metadata(doc)["district"] == "Hagen"

    asked = site.client.get(f"/kuratieren/{doc}/loeschen")
    assert asked.status_code == 200 and "endgültig löschen?" in asked.text and 'name="bestaetigt"' in asked.text
    unconfirmed = site.client.post(f"/kuratieren/{doc}/loeschen", data={"csrf": csrf})
    assert unconfirmed.status_code == 200 and 'name="bestaetigt"' in unconfirmed.text
    assert doc in site.searcher.index.documents  # still there

    editor_csrf = site.login("dortmund")  # an editor may not purge, even with the confirmation
    assert (
        site.client.post(f"/kuratieren/{doc}/loeschen", data={"csrf": editor_csrf, "bestaetigt": "ja"}).status_code
        == 404
    )
    csrf = site.login("curator")
    done = site.client.post(
        f"/kuratieren/{doc}/loeschen", data={"csrf": csrf, "bestaetigt": "ja"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/kuratieren?erledigt=geloescht"
    assert doc not in site.searcher.index.documents
    assert site.client.get(f"/kuratieren/{doc}").status_code == 404


def test_a_field_added_to_the_registry_is_on_the_forms_without_touching_the_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    added = fields.Field("traeger", choices=("Kommune", "Freier Träger"), label="Träger")
    monkeypatch.setattr(fields, "FIELDS", (*fields.FIELDS, added))
    for principal in (Principal(Role.CURATOR, "LaKI"), Principal(Role.EDITOR, "KI Hagen", "Hagen")):
        form = curation_forms.build(principal, {}, upload=True)
        inputs = {i.name: i for _, group in form.groups for i in group}
        assert inputs["traeger"].widget == "select" and inputs["traeger"].label == "Träger"
        assert [value for value, _ in inputs["traeger"].choices] == ["", "Kommune", "Freier Träger"]
        assert ("visibility" in inputs) is (principal.role is Role.CURATOR)
    sent = {"traeger": "Freier Träger", "title": "Neu"}
    values, changed = curation_forms.changes(Principal(Role.CURATOR, "LaKI"), sent, lambda name: [])
    assert changed == {"traeger": "Freier Träger", "title": "Neu"} and values["traeger"] == "Freier Träger"
