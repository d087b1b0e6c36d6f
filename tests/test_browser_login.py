"""The login form in a real browser (headless Chromium via Playwright, real uvicorn): a wrong key is refused in
German, the right key logs in (and offers the curation page), logging out ends the session and drops the cookie."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from kb.api.app import create_app
from kb.api.login import WRONG_KEY
from kb.embedder import Embedder
from kb.search import Searcher
from tests.conftest import curated_installation, serving
from tests.test_browser_nothing_fits import browse, expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[tuple[str, str]]:
    settings, key = curated_installation(tmp_path_factory.mktemp("browser-login"), embedder, "LaKI Redaktion")
    with serving(create_app(settings, searcher=Searcher(settings, embedder))) as url:
        yield url, key


def test_a_wrong_key_is_refused_the_right_one_logs_in_and_logging_out_ends_it(site: tuple[str, str]) -> None:
    url, key = site

    def steps(page: Any) -> None:
        page.goto(url + "/")
        page.get_by_role("link", name="Anmelden").click()
        page.wait_for_url(re.compile(r"/anmelden$"))
        page.get_by_label("Ihr Schlüssel").fill("kbk_falsch")
        page.get_by_role("button", name="Anmelden").click()
        expect(page.get_by_role("alert")).to_have_text(WRONG_KEY)
        assert not [c for c in page.context.cookies() if c["name"] == "kb_session"]

        page.get_by_label("Ihr Schlüssel").fill(key)
        page.get_by_role("button", name="Anmelden").click()
        page.wait_for_url(url + "/")
        account = page.get_by_role("navigation", name="Anmeldung")
        expect(account).to_contain_text("Angemeldet: LaKI Redaktion")
        cookie = next(c for c in page.context.cookies() if c["name"] == "kb_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and key not in cookie["value"]
        account.get_by_role("link", name="Kuratieren").click()
        page.wait_for_url(re.compile(r"/kuratieren$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Kuratieren")

        page.get_by_role("button", name="Abmelden").click()
        page.wait_for_url(url + "/")
        expect(page.get_by_role("navigation", name="Anmeldung")).to_contain_text("Anmelden")
        assert not [c for c in page.context.cookies() if c["name"] == "kb_session"]
        page.goto(url + "/kuratieren")
        page.wait_for_url(re.compile(r"/anmelden\?weiter=%2Fkuratieren$"))  # the curation page is closed again
        expect(page.get_by_label("Ihr Schlüssel")).to_be_visible()

    browse(steps)
