"""Shared fixtures: the real model is prepared once per test run (and reused from the cache after that)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from kb.bundled_model import prepare_bundled_model
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.settings import BUNDLED_MODEL, Settings
from tests import factories
from tests.pg import pg_server, pg_url  # noqa: F401  (real PostgreSQL servers for the tests that ask)

REPO = Path(__file__).resolve().parent.parent
SHARED_EVAL = REPO.parent / "shared" / "eval"


@pytest.fixture(scope="session", autouse=True)
def _no_real_curation_data(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads or writes a real ``data/`` folder: the default KB_DATA_DIR points to an empty temporary
    folder, and tests that curate pass their own ``data_dir``."""
    os.environ["KB_DATA_DIR"] = str(tmp_path_factory.mktemp("no-curation-data"))


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The bundled multilingual-e5-small, converted to a sentence-transformers folder (once, cached)."""
    return prepare_bundled_model(Settings().model_cache_dir / BUNDLED_MODEL)


@pytest.fixture(scope="session")
def embedder(model_dir: Path) -> Embedder:
    """One loaded model for the whole run (loading it per test would cost seconds each)."""
    emb = Embedder(Settings())
    assert emb.dimension == 384
    return emb


def make_small_corpus(root: Path) -> Path:
    """Eight short documents in every supported format, on clearly different subjects."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dortmund").mkdir(exist_ok=True)
    (root / "dortmund" / "elterncafe.md").write_text(
        factories.markdown(
            "Elterncafé an der Grundschule",
            "Dortmund",
            "## Ziel\n\nEinmal in der Woche treffen sich Mütter und Väter mit Zuwanderungsgeschichte "
            "im Elterncafé. "
            "Die Lehrkräfte erklären das Schulsystem, z. B. Zeugnisse und Elternsprechtage. "
            "Sprach- und Kulturmittlerinnen übersetzen, damit alle Eltern mitreden können.\n\n"
            "## Erfahrungen\n\nSeit dem 3. März 2023 kommen regelmäßig etwa 20 Eltern. Viele engagieren sich "
            "jetzt in der Schulpflegschaft bzw. bei Schulfesten.",
            doc_type="Praxisbericht",
            topics='["Eltern und Familien"]',
            audience='["Lehrkräfte", "Eltern"]',
            year=2023,
            language="de",
        ),
        encoding="utf-8",
    )
    (root / "wuppertal").mkdir(exist_ok=True)
    (root / "wuppertal" / "schwimmkurs.md").write_text(
        factories.markdown(
            "Schwimmkurse für Mädchen",
            "Wuppertal",
            "Im geschützten Raum lernen Mädchen schwimmen. Trainerinnen des Sportvereins leiten die Kurse. "
            "Nach zehn Terminen schaffen die meisten das Seepferdchen-Abzeichen.",
            doc_type="Praxisbericht",
            topics='["Sport"]',
            year=2022,
        ),
        encoding="utf-8",
    )
    (root / "hagen").mkdir(exist_ok=True)
    (root / "hagen" / "demenz.md").write_text(
        factories.markdown(
            "Demenz und Migration in der Altenpflege",
            "Hagen",
            "Ältere Menschen mit Demenz verlieren oft zuerst die später gelernte Sprache Deutsch. "
            "Pflegekräfte sollten biografische Informationen und die Herkunftssprache einbeziehen.",
            doc_type="Schulungsmaterial",
            topics='["Kultursensible Pflege und Gesundheit"]',
            year=2020,
        ),
        encoding="utf-8",
    )
    (root / "duisburg").mkdir(exist_ok=True)
    (root / "duisburg" / "seiteneinstieg.txt").write_bytes(
        "Schulplatzvergabe für Seiteneinsteiger\n\nNeu zugewanderte Kinder und Jugendliche werden im "
        "Kommunalen Integrationszentrum beraten. Danach vergibt das Schulamt einen Schulplatz in einer "
        "Seiteneinsteigerklasse. Die Erstförderung in Deutsch dauert in der Regel zwei Jahre.\n".encode("latin-1")
    )
    (root / "duisburg" / "seiteneinstieg.txt.meta.yaml").write_text(
        'title: "Schulplatzvergabe für Seiteneinsteiger"\ndistrict: "Duisburg"\ndoc_type: Konzeptpapier\n'
        "topics: [Seiteneinstieg und Neuzuwanderung]\nyear: 2021\n",
        encoding="utf-8",
    )
    (root / "essen").mkdir(exist_ok=True)
    factories.write_pdf(
        root / "essen" / "mathe.pdf",
        [
            [
                "Sprachsensibler Mathematikunterricht",
                "Textaufgaben sind Sprachaufgaben. Viele Kinder scheitern nicht am Rech-",
                "nen, sondern an der Sprache der Aufgabe. Sprach- und Kulturmittler helfen",
                "hier nicht; gefragt ist die Lehrkraft im DaZ-",
                "Kurs und im Fachunterricht.",
            ],
            [
                "Auf dieser Seite geht es um Wortschatzarbeit mit Fachbegriffen wie Bruch,",
                "Nenner und Zähler. Die Schülerinnen und Schüler legen ein Wortspeicher-",
                "heft an und üben Satzmuster für Begründungen.",
            ],
        ],
        header="Kommunales Integrationszentrum Essen · Handreichung",
        title="Sprachsensibler Mathematikunterricht",
    )
    (root / "essen" / "mathe.pdf.meta.yaml").write_text(
        'title: "Sprachsensibler Mathematikunterricht"\ndistrict: "Essen"\ndoc_type: Handreichung\n'
        "topics: [Durchgängige Sprachbildung]\naudience: [Lehrkräfte]\nyear: 2024\n",
        encoding="utf-8",
    )
    (root / "hamm").mkdir(exist_ok=True)
    factories.write_docx(
        root / "hamm" / "sprachbegleitung.docx",
        "Ehrenamtliche Sprachbegleitung",
        [
            ("Heading 1", "Ehrenamtliche Sprachbegleitung"),
            ("", "Freiwillige begleiten Geflüchtete beim Deutschlernen im Alltag, etwa beim Einkaufen."),
            ("Heading 2", "Qualifizierung"),
            ("", "Die Ehrenamtlichen besuchen vorher eine Basisschulung des Integrationszentrums."),
        ],
    )
    (root / "bonn").mkdir(exist_ok=True)
    (root / "bonn" / "bibliothek.html").write_text(
        "<html><head><title>Bibliothek</title><script>alert('x')</script></head><body>"
        "<nav>Startseite | Kontakt</nav><main><h1>Die Bibliothek als Begegnungsort</h1>"
        "<p>In der Stadtteilbibliothek gibt es Bücher in vielen Sprachen und Vorlesestunden für Familien.</p>"
        "</main><footer>Impressum</footer></body></html>",
        encoding="utf-8",
    )
    return root


def curated_installation(root: Path, embedder: Embedder, label: str = "Test") -> tuple[Settings, str]:
    """The small corpus ingested in ``root``, its own curation data, and a curator key (settings, key)."""
    from kb.curation.db import CurationDB
    from kb.curation.keys import create_key

    settings = Settings(
        corpus_dir=make_small_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data"
    )
    Ingestor(settings, embedder).run()
    db = CurationDB(settings.data_dir)
    key = create_key(db, "curator", label)[1]
    db.close()
    return settings, key


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_small_corpus(tmp_path_factory.mktemp("small") / "corpus")


@pytest.fixture(scope="session")
def small_settings(small_corpus: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of an index built once from the small corpus (tests must not change it)."""
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path_factory.mktemp("small-index"))
    report = Ingestor(settings, embedder).run()
    assert report.failed == [] and len(report.added) == 7
    return settings


@pytest.fixture(scope="session")
def corpus_settings(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of an index built once from the bundled corpus (the product's main job)."""
    settings = Settings(corpus_dir=REPO / "corpus", index_dir=tmp_path_factory.mktemp("corpus-index"))
    report = Ingestor(settings, embedder).run()
    assert report.failed == [], report.failed
    return settings


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app on a free loopback port, for as long as the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
