"""Curators on the server: keys, the life of a document and the audit log through `kb`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kb.cli import app
from kb.curation.db import CurationDB
from kb.curation.keys import authenticate
from kb.embedder import Embedder
from kb.errors import AuthError
from kb.ingest import Ingestor
from kb.settings import Settings
from tests.conftest import make_small_corpus

runner = CliRunner()


def _kb(settings: Settings, *args: str, input: str | None = None) -> tuple[int, str, str]:
    base = ["--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    result = runner.invoke(app, [*base, "--data-dir", str(settings.data_dir), *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_keys_are_created_listed_and_revoked(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    code, out, err = _kb(
        settings, "keys", "create", "--role", "editor", "--label", "KI Hamm", "--district", "Hamm"
    )
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("kbk_") and "shown only now" in err
    db = CurationDB(settings.data_dir)
    principal = authenticate(db, secret)
    assert (principal.role, principal.district, principal.label) == ("editor", "Hamm", "KI Hamm")
    code, out, _ = _kb(settings, "keys", "list")
    assert code == 0 and "KI Hamm" in out and "active" in out and secret not in out
    assert _kb(settings, "keys", "revoke", principal.key_id)[0] == 0
    try:
        authenticate(db, secret)
        raise AssertionError("a revoked key must not authenticate")
    except AuthError as exc:
        assert "revoked" in str(exc)
    code, _, err = _kb(settings, "keys", "create", "--role", "editor", "--label", "Ohne Kommune")
    assert code == 2 and "--district" in err
    code, _, err = _kb(settings, "keys", "revoke", "nope")
    assert code == 7 and "kb keys list" in err


def test_a_curator_runs_the_life_of_a_document_from_the_shell(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(
        corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index", data_dir=tmp_path / "data"
    )
    Ingestor(settings, embedder).run()
    paper = tmp_path / "leseclub.md"
    paper.write_text(
        "# Leseclub im Jugendzentrum\n\nJugendliche lesen gemeinsam Graphic Novels.", encoding="utf-8"
    )
    code, out, err = _kb(
        settings, "documents", "add", str(paper), "-m", "district=Hamm", "-m", "topics=Lesen,Jugend"
    )
    assert code == 0, err
    doc_id = out.split()[0]
    assert "Leseclub im Jugendzentrum" in out and "[Hamm" in out
    code, out, err = _kb(settings, "search", "Graphic Novels lesen", "-k", "1")
    assert code == 0 and "Leseclub im Jugendzentrum" in out

    code, out, err = _kb(
        settings, "documents", "update", doc_id, "-m", "recommended=true", "-m", "review_by=2020-05-01"
    )
    assert code == 0 and "recommended" in out, err
    code, out, _ = _kb(settings, "documents", "due", "--on", "2021-01-01")
    assert code == 0 and doc_id in out and "2020-05-01" in out
    code, _, err = _kb(settings, "documents", "update", doc_id, "-m", "year=bald")
    assert code == 2 and "year" in err

    code, out, _ = _kb(settings, "documents", "retire", doc_id)
    assert code == 0 and "archived" in out
    code, out, _ = _kb(settings, "search", "Graphic Novels lesen", "-k", "3")
    assert "Leseclub im Jugendzentrum" not in out
    assert _kb(settings, "documents", "purge", doc_id, input="n\n")[0] == 1  # asked, declined: nothing happens
    code, out, _ = _kb(settings, "documents", "purge", doc_id, "--yes")
    assert code == 0 and "purged" in out
    assert not list((settings.data_dir / "files").glob("*.md"))

    code, out, _ = _kb(settings, "audit", "--document", doc_id)
    actions = [line.split("  ")[2] for line in out.strip().splitlines()]
    assert actions == ["purge", "retire", "recommend", "create"]
    assert all("cli:" in line for line in out.splitlines())
    assert "review_by: '' → '2020-05-01'" in out


def test_kb_ingest_keeps_curated_metadata_and_purges(tmp_path: Path, embedder: Embedder) -> None:
    from kb.index import open_current

    settings = Settings(
        corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index", data_dir=tmp_path / "data"
    )
    Ingestor(settings, embedder).run()
    documents = sorted(open_current(settings.index_dir).documents.values(), key=lambda d: d.key)
    described, purged = documents[0], documents[1]
    assert _kb(settings, "documents", "update", described.id, "-m", "district=Kreis Kleve")[0] == 0
    assert _kb(settings, "documents", "purge", purged.id, "--yes")[0] == 0

    code, out, err = _kb(settings, "ingest", "--rebuild")
    assert code == 0, err
    assert "excluded (purged) 1" in out
    index = open_current(settings.index_dir)
    assert index.documents[described.id].metadata.district == "Kreis Kleve"
    assert purged.id not in index.documents and len(index.documents) == len(documents) - 1
