"""Property-based requests generated from the OpenAPI schema (schemathesis): never a 5xx, every 4xx has a detail.

Run alone with ``pytest -m fuzz``. Operations are read from the schema, so routes added later are fuzzed too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.search import Searcher
from kb.settings import Settings

pytestmark = pytest.mark.fuzz
EXAMPLES = 30


@pytest.fixture(scope="module")
def started_app(small_settings: Settings, embedder: Embedder) -> Iterator[FastAPI]:
    app = create_app(small_settings, searcher=Searcher(small_settings, embedder))
    with TestClient(app):  # runs the lifespan once; the generated requests then reuse the started app
        yield app


# The schema only describes the routes (read without starting that app); requests go to the fixture's app.
_routes_only = create_app(Settings())
schema = schemathesis.openapi.from_dict(_routes_only.openapi())
schema.app = _routes_only


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case, started_app: FastAPI) -> None:
    response = case.call(app=started_app)
    assert response.status_code < 500, (case.as_curl_command(), response.status_code, response.text[:300])
    content_type = " ".join(response.headers.get("content-type") or [])
    if 400 <= response.status_code < 500 and content_type.startswith("application/json"):
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"], body


@pytest.fixture(scope="module")
def curator_app(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[tuple[FastAPI, str]]:
    """An app over its own index and curation data (generated writes must not touch shared fixtures)."""
    from tests.conftest import curated_installation

    settings, key = curated_installation(tmp_path_factory.mktemp("fuzz-writes"), embedder, "Fuzzer")
    app = create_app(settings, searcher=Searcher(settings, embedder))
    with TestClient(app):
        yield app, key


_WRITES = schema.include(path_regex="^/(documents|audit|review)")


@_WRITES.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_no_generated_write_with_a_curator_key_gets_a_server_error(
    case: schemathesis.Case, curator_app: tuple[FastAPI, str]
) -> None:
    app, key = curator_app
    response = case.call(app=app, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code < 500, (case.as_curl_command(), response.status_code, response.text[:300])
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"], body
