"""/metrics in Prometheus format, request ids, JSON log lines, and no secrets in any log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.logs import JsonFormatter, RedactingFilter, redact
from kb.search import Searcher
from kb.settings import Settings


@pytest.fixture
def client(small_settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    with TestClient(create_app(small_settings, searcher=Searcher(small_settings, embedder))) as test_client:
        yield test_client


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged while the test runs, as the JSON lines `KB_LOG_FORMAT=json` writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_metrics_count_requests_by_route_template_status_and_latency(client: TestClient) -> None:
    assert client.get("/search", params={"q": "Elterncafé"}).status_code == 200
    assert client.get("/documents/does-not-exist").status_code == 404
    assert client.get("/no/such/page").status_code == 404

    response = client.get("/metrics")

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'kb_http_requests_total{method="GET",route="/search",status="200"} 1.0' in text
    assert 'kb_http_requests_total{method="GET",route="/documents/{doc_id}",status="404"} 1.0' in text
    assert 'route="unmatched",status="404"' in text and "/no/such/page" not in text
    assert 'kb_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/search"} 1.0' in text
    assert "kb_index_version 1.0" in text and "kb_index_documents 7.0" in text
    assert 'kb_last_ingestion_files{outcome="added"} 7.0' in text
    assert "kb_http_errors_total" in text


def test_server_errors_are_counted_as_errors(small_settings: Settings, embedder: Embedder) -> None:
    class Broken(Searcher):
        def search(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            raise RuntimeError("bug")

    with TestClient(
        create_app(small_settings, searcher=Broken(small_settings, embedder)), raise_server_exceptions=False
    ) as c:
        assert c.get("/search", params={"q": "x"}).status_code == 500
        assert 'kb_http_errors_total{route="/search"} 1.0' in c.get("/metrics").text


def test_a_sane_request_id_is_echoed_and_others_are_replaced(client: TestClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123.x"}).headers["x-request-id"] == "abc-123.x"
    for bad in ("", "with space", "x" * 100, "<script>", "a/b"):
        generated = client.get("/health", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert generated != bad and len(generated) == 32
    assert len(client.get("/health").headers["x-request-id"]) == 32


def test_log_lines_are_json_with_the_request_id(client: TestClient, json_log: io.StringIO) -> None:
    client.get("/search", params={"q": "Elterncafé"}, headers={"X-Request-ID": "req-42"})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    request_lines = [line for line in lines if line["logger"] == "kb.requests"]
    assert request_lines and request_lines[-1]["request_id"] == "req-42"
    assert request_lines[-1]["route"] == "/search" and request_lines[-1]["status"] == 200
    assert "duration_ms" in request_lines[-1]


def test_bearer_tokens_and_api_keys_never_reach_the_log(client: TestClient, json_log: io.StringIO) -> None:
    secrets = {"Authorization": "Bearer s3cr3t-bearer-token", "X-API-Key": "k3y-in-header"}
    client.get("/search", params={"q": "Eltern", "api_key": "k3y-in-query"}, headers=secrets)
    client.get("/documents/nope", headers=secrets)
    client.post("/search", json={"q": "", "api_key": "k3y-in-body"}, headers=secrets)
    logging.getLogger("kb.test").warning("client sent Authorization: Bearer s3cr3t-bearer-token and api_key=k3y")
    output = json_log.getvalue()
    assert output  # something was logged
    for secret in ("s3cr3t-bearer-token", "k3y-in-header", "k3y-in-query", "k3y-in-body", "api_key=k3y"):
        assert secret not in output


def test_redact_masks_tokens_keys_and_passwords() -> None:
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert redact("GET /x?api_key=123&q=Eltern") == "GET /x?api_key=***&q=Eltern"
    assert redact('{"password": "geheim"}') == '{"password": "***"}'
    assert redact("Elterncafé in Dortmund") == "Elterncafé in Dortmund"
