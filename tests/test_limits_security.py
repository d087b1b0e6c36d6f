"""Limits on queries, pages and bodies; unknown parameters; path traversal; CORS; headers; loopback binding."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kb.api.app import PAGE_CSP, create_app
from kb.embedder import Embedder
from kb.search import Searcher
from kb.settings import Settings

FOREIGN = "https://evil.example"


def _client(settings: Settings, embedder: Embedder) -> TestClient:
    return TestClient(create_app(settings, searcher=Searcher(settings, embedder)))


@pytest.fixture(scope="module")
def client(small_settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    limited = small_settings.model_copy(update={"max_body_kb": 4, "max_upload_mb": 1})
    with _client(limited, embedder) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"q": "Eltern " * 200}, "the limit is 1000"),
        ({"q": "Eltern", "k": 0}, "k must be between 1 and 100"),
        ({"q": "Eltern", "k": 101}, "k must be between 1 and 100"),
        ({"q": "Eltern", "k": "viele"}, "Parameter 'k'"),
        ({"q": ""}, "The query is empty"),
    ],
)
def test_search_limits_answer_422_with_a_detail(client: TestClient, params: dict[str, object], says: str) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422 and says in response.json()["detail"]


def test_page_size_is_limited(client: TestClient) -> None:
    response = client.get("/documents", params={"limit": 201})
    assert response.status_code == 422 and "Parameter 'limit'" in response.json()["detail"]
    assert client.get("/documents", params={"limit": 200}).status_code == 200


def test_unknown_parameters_are_ignored(client: TestClient) -> None:
    response = client.get("/search", params={"q": "Elterncafé", "k": 2, "foo": "bar", "__proto__": "x", "k2": "1"})
    assert response.status_code == 200 and len(response.json()["results"]) == 2
    assert client.post("/search", json={"q": "Elterncafé", "k": 2, "unknown": {"deep": [1]}}).status_code in (
        200,
        422,
    )


def test_request_body_over_the_limit_gets_413_with_a_detail(client: TestClient) -> None:
    response = client.post("/search", json={"q": "Eltern", "padding": "x" * 5000})
    assert response.status_code == 413 and "4 KB (KB_MAX_BODY_KB)" in response.json()["detail"]


def test_chunked_body_over_the_limit_gets_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"q": "Eltern", "padding": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "detail" in response.json()


def test_uploads_have_their_own_limit(client: TestClient) -> None:
    big = client.post("/documents", content=b"x" * (1024 * 1024 + 1), headers={"content-type": "text/plain"})
    assert big.status_code == 413 and "1 MB (KB_MAX_UPLOAD_MB)" in big.json()["detail"]
    small = client.post("/documents", content=b"x" * 10_000, headers={"content-type": "text/plain"})
    assert small.status_code != 413  # over the body limit, under the upload limit


@pytest.mark.parametrize(
    "doc_id",
    ["../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "....//....//etc"],
)
def test_path_traversal_on_file_download_finds_nothing(client: TestClient, doc_id: str) -> None:
    response = client.get(f"/documents/{doc_id}/file")
    assert response.status_code == 404 and "root:" not in response.text
    assert "detail" in response.json()


def test_file_replaced_by_a_link_out_of_the_corpus_is_not_served(
    small_settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    import shutil

    from kb.ingest import Ingestor

    corpus = Path(shutil.copytree(small_settings.corpus_dir, tmp_path / "corpus"))
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    Ingestor(settings, embedder).run()
    secret = tmp_path / "geheim.txt"
    secret.write_text("root:x:0:0", encoding="utf-8")
    target = corpus / "duisburg" / "seiteneinstieg.txt"
    target.unlink()
    target.symlink_to(secret)
    with _client(settings, embedder) as c:
        doc = next(d for d in c.get("/documents").json()["items"] if d["path"].endswith("seiteneinstieg.txt"))
        response = c.get(f"/documents/{doc['id']}/file")
    assert response.status_code == 404 and "root:x" not in response.text


def test_cors_is_closed_by_default(client: TestClient) -> None:
    response = client.get("/search", params={"q": "Eltern"}, headers={"Origin": FOREIGN})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/search", headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_configured_origins(small_settings: Settings, embedder: Embedder) -> None:
    settings = small_settings.model_copy(update={"cors_origins": "https://intranet.example"})
    with _client(settings, embedder) as c:
        allowed = c.get("/health", headers={"Origin": "https://intranet.example"})
        other = c.get("/health", headers={"Origin": FOREIGN})
    assert allowed.headers["access-control-allow-origin"] == "https://intranet.example"
    assert "access-control-allow-origin" not in other.headers


def test_the_page_has_security_headers(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    docs, api = client.get("/docs"), client.get("/health")
    assert docs.headers["content-type"].startswith("text/html") and "content-security-policy" not in docs.headers
    assert "content-security-policy" not in api.headers  # a JSON answer is no page
    assert docs.headers["x-content-type-options"] == api.headers["x-content-type-options"] == "nosniff"


def test_service_binds_to_loopback_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("KB_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env file
    assert Settings().host == "127.0.0.1"
    monkeypatch.setenv("KB_HOST", "0.0.0.0")
    assert Settings().host == "0.0.0.0"
