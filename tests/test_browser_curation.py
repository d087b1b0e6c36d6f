"""The curation page in a real browser (headless Chromium via Playwright, real uvicorn, real model and index): a
curator logs in, uploads a file with its metadata through the form, finds it with the search page, edits it,
recommends it and retires it; an editor of another district is refused another district's document by URL and
by POST as if it did not exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kb.api.app import create_app
from kb.api.page import NOT_FOUND
from kb.curation.db import CurationDB
from kb.curation.keys import create_key
from kb.embedder import Embedder
from kb.search import Searcher
from tests.conftest import curated_installation, serving
from tests.test_browser_nothing_fits import browse, expect

pytestmark = pytest.mark.browser

TITLE = "Lesepatenschaften im Offenen Ganztag"
EDITED = "Lesepatenschaften im Offenen Ganztag – Leitfaden"
QUESTION = "Wie gewinnen wir Lesepatinnen für den Offenen Ganztag?"
TEXT = """# Lesepatenschaften im Offenen Ganztag

Ehrenamtliche Lesepatinnen und Lesepaten lesen einmal in der Woche mit Kindern im Offenen Ganztag.
Das Kommunale Integrationszentrum gewinnt die Lesepatinnen über Vereine und Moscheegemeinden,
schult sie zu mehrsprachigem Vorlesen und begleitet die Grundschulen bei der Einführung.
"""
OTHER_TITLE = "Elterncafé an der Grundschule"  # Dortmund's, in the small corpus


@dataclass(frozen=True)
class Site:
    url: str
    searcher: Searcher
    curator_key: str
    editor_key: str  # an editor of Wuppertal


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Site]:
    settings, curator_key = curated_installation(tmp_path_factory.mktemp("browser-curation"), embedder)
    db = CurationDB(settings.data_dir)
    editor_key = create_key(db, "editor", "KI Wuppertal", "Wuppertal")[1]
    db.close()
    searcher = Searcher(settings, embedder)
    with serving(create_app(settings, searcher=searcher)) as url:
        yield Site(url, searcher, curator_key, editor_key)


def log_in(page: Any, site: str, key: str, path: str = "/kuratieren") -> None:
    """Open ``path``, get sent to the login form, log in, and land on ``path`` again."""
    page.goto(site + path)
    page.wait_for_url(re.compile(r"/anmelden\?weiter="))
    page.get_by_label("Ihr Schlüssel").fill(key)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(re.compile(re.escape(path) + "$"))


def titles_found(page: Any, site: str, question: str) -> list[str]:
    page.goto(site + "/")
    page.get_by_label("Wonach suchen Sie?").fill(question)
    page.get_by_role("button", name="Suchen").click()
    page.wait_for_url(re.compile(r"\?q="))
    return [t.strip() for t in page.locator(".card-title").all_inner_texts()]


def test_a_curator_uploads_edits_recommends_and_retires_a_document(site: Site, tmp_path: Path) -> None:
    upload = tmp_path / "lesepaten.md"
    upload.write_text(TEXT, encoding="utf-8")
    found: dict[str, str] = {}

    def steps(page: Any) -> None:
        log_in(page, site.url, site.curator_key)
        expect(page.get_by_role("heading", level=1)).to_have_text("Kuratieren")
        page.get_by_role("link", name="Dokument hochladen").click()
        page.get_by_label(re.compile(r"^Datei")).set_input_files(str(upload))
        page.get_by_label("Titel", exact=True).fill(TITLE)
        page.get_by_label("Kommune", exact=True).select_option("Kreis Unna")
        page.get_by_label("Dokumentart", exact=True).select_option("Handreichung")
        page.get_by_label("Jahr", exact=True).fill("2025")
        page.get_by_label("Themen", exact=True).fill("Ehrenamt, Leseförderung")
        page.get_by_role("group", name="Bildungsbereich").get_by_label("Grundschule", exact=True).check()
        page.get_by_role("button", name="Hochladen").click()
        page.wait_for_url(re.compile(r"/kuratieren/\w+\?erledigt=hochgeladen$"))
        found["id"] = page.url.split("/kuratieren/")[1].split("?")[0]
        expect(page.get_by_role("status")).to_contain_text("Das Dokument ist hochgeladen")
        expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
        expect(page.locator(".curation-list.audit")).to_contain_text("Hochgeladen")

        assert titles_found(page, site.url, QUESTION)[0] == TITLE  # searchable at once
        card = page.locator(".card").first
        expect(card.locator(".meta")).to_contain_text("Kreis Unna")
        expect(card.locator(".meta")).to_contain_text("Handreichung")

        page.goto(f"{site.url}/kuratieren/{found['id']}")
        expect(page.get_by_label("Jahr", exact=True)).to_have_value("2025")  # the form shows what is stored
        page.get_by_label(re.compile(r"^Titel")).fill(EDITED)
        page.get_by_role("button", name="Änderungen speichern").click()
        page.wait_for_url(re.compile(r"erledigt=gespeichert$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(EDITED)

        page.get_by_role("button", name="Als LaKI-Empfehlung markieren").click()
        page.wait_for_url(re.compile(r"erledigt=empfohlen$"))
        expect(page.get_by_role("button", name="Empfehlung zurücknehmen")).to_be_visible()
        expect(page.locator(".curation-list.audit")).to_contain_text("Empfohlen")
        titles = titles_found(page, site.url, QUESTION)
        assert titles[0] == EDITED
        expect(page.locator(".card").first.locator(".badge")).to_have_text("LaKI-Empfehlung")

        page.goto(f"{site.url}/kuratieren/{found['id']}")
        page.get_by_role("button", name="Zurückziehen").click()
        page.wait_for_url(re.compile(r"erledigt=zurueckgezogen$"))
        expect(page.get_by_role("status")).to_contain_text("zurückgezogen")
        assert EDITED not in titles_found(page, site.url, QUESTION)  # gone from search

    browse(steps)
    stored = site.searcher.index.documents[found["id"]].metadata
    assert (stored.title, stored.district, stored.year, stored.doc_type) == (
        EDITED,
        "Kreis Unna",
        2025,
        "Handreichung",
    )
    assert stored.topics == ("Ehrenamt", "Leseförderung") and stored.bildungsbereich == ("Grundschule",)
    assert stored.recommended and stored.status == "archived"


def test_an_editor_is_refused_another_districts_document_by_url_and_by_post(site: Site) -> None:
    other = next(d for d in site.searcher.index.documents.values() if d.metadata.title == OTHER_TITLE)
    before = other.metadata.as_dict()

    def steps(page: Any) -> None:
        log_in(page, site.url, site.editor_key)
        page.get_by_role("link", name="Dokument hochladen").click()
        expect(page.get_by_label("Kommune", exact=True).locator("option")).to_have_text(["Wuppertal"])
        csrf = page.locator('input[name="csrf"]').first.get_attribute("value")

        opened = page.goto(f"{site.url}/kuratieren/{other.id}")
        assert opened is not None and opened.status == 404
        expect(page.locator(".message.error")).to_have_text(NOT_FOUND)
        expect(page.locator("main")).not_to_contain_text(OTHER_TITLE)
        for action, form in (("", {"title": "Übernommen"}), ("/zurueckziehen", {}), ("/empfehlen", {})):
            posted = page.request.post(f"{site.url}/kuratieren/{other.id}{action}", form={"csrf": csrf, **form})
            assert posted.status == 404 and NOT_FOUND in posted.text()

    browse(steps)
    assert site.searcher.index.documents[other.id].metadata.as_dict() == before  # nothing changed
