"""A real uvicorn on loopback: the running service picks up a new index version without a restart."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import make_small_corpus, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[str, Settings]]:
    settings = Settings(corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    Ingestor(settings, embedder).run()
    with serving(create_app(settings, searcher=Searcher(settings, embedder))) as url:
        yield url, settings


def test_new_index_version_is_served_without_restart(served: tuple[str, Settings], embedder: Embedder) -> None:
    url, settings = served
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/health").json()["index_version"] == 1
        (settings.corpus_dir / "dortmund" / "zirkus.md").write_text(
            factories.markdown(
                "Zirkusprojekt", "Dortmund", "Kinder aus vielen Ländern üben Jonglieren im Zirkuszelt."
            ),
            encoding="utf-8",
        )
        Ingestor(settings, embedder).run()
        time.sleep(0.6)
        response = client.get("/search", params={"q": "Jonglieren im Zirkus", "k": 1})
        assert response.status_code == 200
        body = response.json()
        assert body["index_version"] == 2
        assert body["results"][0]["title"] == "Zirkusprojekt"
        assert client.get("/health").json()["documents"] == 8
