"""`kb show` and `GET /documents/{id}/text`: what the index holds of one document as it was read."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kb.api.app import create_app
from kb.cli import app
from kb.curation.db import CurationDB
from kb.curation.keys import create_key
from kb.documents import document_id
from kb.embedder import Embedder
from kb.files import file_sha256
from kb.index import CHECKSUM_MAX_BYTES, STORE_FILE, IndexDir, Manifest
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories

runner = CliRunner()

#: The fixture PDF: a title line, then a numbered heading on each page (the third halfway down).
PDF_PAGES = [
    [
        "Leitfaden Sprachförderung",
        "1. Einleitung",
        "Die Sprachförderung beginnt in der Kita und setzt sich in der Grundschule fort, sagt",
        "das Integrationszentrum. Erzieherinnen dokumentieren die Sprachentwicklung im Alltag.",
    ],
    [
        "2. Ablauf der Förderung",
        "Nach der Beobachtung vereinbaren Eltern und Fachkräfte gemeinsam kleine Ziele, die im",
        "Gruppenalltag geübt werden. Vorlesepaten besuchen die Gruppen einmal in der Woche.",
    ],
    [
        "Die Ergebnisse werden halbjährlich mit der Grundschule besprochen und schriftlich",
        "festgehalten, damit der Übergang für die Kinder gut gelingt und nichts verloren geht.",
        "3. Ausblick",
        "Im nächsten Jahr sollen weitere Stadtteile mit Familienzentren hinzukommen, erklärt",
        "die Stadt in ihrem Bericht zum Ausbau der sprachlichen Bildung vor Ort im Quartier.",
    ],
]
PDF_HEADINGS = [("1. Einleitung", 1), ("2. Ablauf der Förderung", 2), ("3. Ausblick", 3)]
PDF_KEY, MD_KEY, DRAFT_KEY = "essen/leitfaden.pdf", "dortmund/elterncafe.md", "entwurf.md"


def _corpus(root: Path) -> Path:
    (root / "essen").mkdir(parents=True)
    (root / "dortmund").mkdir()
    factories.write_pdf(
        root / PDF_KEY, PDF_PAGES, header="Kommunales Integrationszentrum Essen", title="Leitfaden Sprachförderung"
    )
    (root / MD_KEY).write_text(
        factories.markdown(
            "Elterncafé an der Grundschule",
            "Dortmund",
            "## Ziel\n\nMütter und Väter treffen sich einmal in der Woche im Elterncafé.\n\n"
            "## Erfahrungen\n\nSeit März kommen regelmäßig etwa zwanzig Eltern.",
        ),
        encoding="utf-8",
    )
    (root / DRAFT_KEY).write_text(
        factories.markdown("Entwurf Hausaufgabenhilfe", "Hagen", "Noch nicht fertig.", status="draft"),
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module")
def settings(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("show")
    settings = Settings(corpus_dir=_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data")
    report = Ingestor(settings, embedder).run()
    assert report.failed == [] and len(report.added) == 3
    return settings


def _show(settings: Settings, *args: str) -> tuple[int, str, str]:
    """``kb show ARGS`` on the index of ``settings``: exit code, stdout, stderr."""
    options = ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    result = runner.invoke(app, [*options, "--data-dir", str(settings.data_dir), "show", *args])
    return result.exit_code, result.stdout, result.stderr


def _json(settings: Settings, target: str) -> Any:
    """What ``kb show TARGET --json`` prints, parsed."""
    code, out, err = _show(settings, target, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def client(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as test_client:
        yield test_client


def test_a_pdf_is_shown_page_by_page_with_its_headings(settings: Settings) -> None:
    shown = _json(settings, PDF_KEY)
    assert set(shown) >= {"id", "title", "pages", "headings"}
    assert shown["id"] == document_id(PDF_KEY) and shown["path"] == PDF_KEY and shown["file_type"] == "pdf"
    assert shown["title"] == "Leitfaden Sprachförderung"
    pages = shown["pages"]
    assert isinstance(pages, list) and [p["page"] for p in pages] == [1, 2, 3]
    assert all(set(p) == {"page", "text", "ocr"} and p["ocr"] is False for p in pages)
    first, second, third = (p["text"] for p in pages)
    assert "Erzieherinnen dokumentieren die Sprachentwicklung im Alltag." in first
    assert "Vorlesepaten besuchen die Gruppen" in second and "Vorlesepaten" not in first + third
    assert "halbjährlich" in third and "Familienzentren" in third
    # running header and page-number footer are not page text; headings are listed apart
    assert not any("Integrationszentrum Essen" in t or "Seite" in t for t in (first, second, third))
    assert [(h["text"], h["page"]) for h in shown["headings"]] == PDF_HEADINGS


def test_a_file_without_pages_is_one_page_with_its_headings(settings: Settings) -> None:
    shown = _json(settings, MD_KEY)
    assert shown["title"] == "Elterncafé an der Grundschule" and shown["file_type"] == "markdown"
    (page,) = shown["pages"]
    assert page["page"] == 1 and page["ocr"] is False
    assert "treffen sich einmal in der Woche" in page["text"] and "zwanzig Eltern" in page["text"]
    assert [(h["text"], h["page"]) for h in shown["headings"]] == [
        ("Elterncafé an der Grundschule", 1),
        ("Ziel", 1),
        ("Erfahrungen", 1),
    ]


def test_a_document_is_found_by_id_key_or_path(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _json(settings, PDF_KEY)
    assert _json(settings, document_id(PDF_KEY)) == expected
    assert _json(settings, str(settings.corpus_dir / PDF_KEY)) == expected  # absolute
    assert _json(settings, "./" + PDF_KEY) == expected
    monkeypatch.chdir(settings.corpus_dir / "essen")
    assert _json(settings, "leitfaden.pdf") == expected  # relative to the working folder


def test_the_readable_form_names_pages_and_headings(settings: Settings) -> None:
    code, out, _ = _show(settings, PDF_KEY)
    assert code == 0
    assert out.startswith("Leitfaden Sprachförderung\n") and f"id {document_id(PDF_KEY)}" in out
    assert "3 pages" in out and "p. 2   2. Ablauf der Förderung" in out
    assert out.index("--- page 1 ---") < out.index("Erzieherinnen") < out.index("--- page 2 ---")
    assert "(OCR)" not in out


def test_an_unknown_path_or_id_is_exit_code_7(settings: Settings) -> None:
    for target in ("essen/fehlt.pdf", "0123456789abcdef"):
        code, out, err = _show(settings, target, "--json")
        assert code == 7 and out == ""
        assert err.startswith(f"error: No document in the index is {target!r}")


def test_the_api_gives_what_the_cli_prints(settings: Settings, client: TestClient) -> None:
    for key in (PDF_KEY, MD_KEY):
        response = client.get(f"/documents/{document_id(key)}/text")
        assert response.status_code == 200
        assert response.json() == _json(settings, key)
    missing = client.get("/documents/0123456789abcdef/text")
    assert missing.status_code == 404 and "0123456789abcdef" in missing.json()["detail"]


def test_a_draft_is_shown_to_editors_but_not_to_readers(settings: Settings, client: TestClient) -> None:
    draft = document_id(DRAFT_KEY)
    assert client.get(f"/documents/{draft}").status_code == 404
    assert client.get(f"/documents/{draft}/text").status_code == 404
    db = CurationDB(settings.data_dir)
    key = create_key(db, "curator", "show")[1]
    db.close()
    response = client.get(f"/documents/{draft}/text", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200 and "Noch nicht fertig." in response.json()["pages"][0]["text"]
    assert _json(settings, DRAFT_KEY)["id"] == draft  # the CLI is run by the people who run the server


def _as_written_before_page_texts(index_dir: Path) -> None:
    """Make the live version look like one an earlier release wrote: no page texts, no headings."""
    folder = IndexDir(index_dir).current()
    assert folder is not None
    with sqlite3.connect(folder / STORE_FILE) as db:
        db.execute("DROP TABLE page_texts")
        db.execute("DROP TABLE headings")
    db.close()
    manifest = Manifest.read(folder)
    sizes = {name: (folder / name).stat().st_size for name in manifest.files}
    checksums = {name: file_sha256(folder / name) for name in sizes if sizes[name] <= CHECKSUM_MAX_BYTES}
    replace(manifest, files=sizes, checksums=checksums).write(folder)


def test_an_index_from_before_is_completed_by_the_next_ingest(
    settings: Settings, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = settings.model_copy(update={"index_dir": tmp_path / "index"})
    Ingestor(old, embedder).run()
    _as_written_before_page_texts(old.index_dir)
    code, out, err = _show(old, PDF_KEY, "--json")
    assert code == 4 and out == "" and "run `kb ingest` once" in err
    encoded: list[str] = []
    encode = embedder.encode_documents

    def counting(texts: list[str], *args: Any, **kwargs: Any) -> Any:
        encoded.extend(texts)
        return encode(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "encode_documents", counting)
    report = Ingestor(old, embedder).run()
    keys = sorted([PDF_KEY, MD_KEY, DRAFT_KEY])
    assert sorted(report.updated) == keys and report.failed == [] and encoded == []  # read again, not encoded
    assert _json(old, PDF_KEY) == _json(settings, PDF_KEY)
    assert sorted(Ingestor(old, embedder).run().unchanged) == keys  # and from then on nothing is read again


def test_word_and_html_files_give_their_headings(tmp_path: Path) -> None:
    from kb.loaders import load

    word = factories.write_docx(
        tmp_path / "begleitung.docx",
        "Sprachbegleitung",
        [("Heading 1", "Sprachbegleitung"), ("", "Freiwillige begleiten."), ("Heading 2", "Qualifizierung"),
         ("Heading 2", "Ablauf"), ("", "Eine Basisschulung.")],
    )  # fmt: skip
    page = tmp_path / "bibliothek.html"
    page.write_text(
        "<main><h1>Bibliothek</h1><p>Bücher in vielen Sprachen.</p><h2>Vorlesen</h2><p>Jeden Montag.</p></main>",
        encoding="utf-8",
    )
    expected = {word: ["Sprachbegleitung", "Qualifizierung", "Ablauf"], page: ["Bibliothek", "Vorlesen"]}
    for path, headings in expected.items():
        text = load(path).text_by_page()
        assert [(h.text, h.page) for h in text.headings] == [(h, 1) for h in headings]  # also one without text
        assert len(text.pages) == 1 and not text.pages[0].ocr
