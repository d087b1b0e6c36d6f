from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kb.api.app import create_app
from kb.embedder import Embedder
from kb.search import Searcher
from kb.settings import Settings

PARENTS = "Eltern und Familien"


@pytest.fixture(scope="module")
def client(corpus_settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    app = create_app(corpus_settings, searcher=Searcher(corpus_settings, embedder))
    with TestClient(app) as test_client:
        yield test_client


def test_parents_question_finds_documents_about_parents(client: TestClient) -> None:
    response = client.get(
        "/search", params={"q": "Wie beziehe ich Eltern mit Zuwanderungsgeschichte in die Schule ein"}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 10 and len({r["document_id"] for r in results}) == 10  # one per document
    # What the user reads is the passage under its heading: the best three are about parents (a concept paper
    # on newly arrived children may answer with its section "8. Zusammenarbeit mit Eltern und Familien").
    assert all("Eltern" in r["heading"] + " " + r["text"] for r in results[:3])
    assert sum(PARENTS in r["topics"] for r in results[:5]) >= 2
    first = results[0]
    for field in (
        "score",
        "document_id",
        "title",
        "district",
        "doc_type",
        "topics",
        "year",
        "page",
        "snippet",
        "text",
    ):
        assert field in first


@pytest.mark.parametrize(
    "query",
    [
        "Göçmen kökenli velileri okula nasıl dahil edebilirim?",  # Turkish
        "Як залучити батьків-мігрантів до шкільного життя?",  # Ukrainian
        "كيف أشرك أولياء الأمور المهاجرين في المدرسة؟",  # Arabic
        "How do I involve immigrant parents in school life?",  # English
    ],
)
def test_questions_in_other_languages_find_the_same_kind_of_documents(client: TestClient, query: str) -> None:
    results = client.get("/search", params={"q": query, "k": 5}).json()["results"]
    assert sum(PARENTS in r["topics"] for r in results) >= 3


def test_raw_chunks_on_request(client: TestClient) -> None:
    results = client.get("/search", params={"q": "Elterncafé", "k": 20, "group": "false"}).json()["results"]
    assert len(results) == 20 and len({r["document_id"] for r in results}) < 20


def test_pdf_results_link_to_their_page(client: TestClient) -> None:
    results = client.get("/search", params={"q": "Sprachförderung im Fachunterricht Materialien", "k": 20}).json()
    pdf_hits = [r for r in results["results"] if r["file_url"].count("#page=")]
    assert pdf_hits, "expected at least one PDF among 20 results"
    hit = pdf_hits[0]
    assert hit["file_url"].endswith(f"#page={hit['page']}")
    response = client.get(hit["file_url"].split("#")[0])
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


def test_documents_are_paginated_and_described(client: TestClient) -> None:
    first = client.get("/documents", params={"limit": 5}).json()
    second = client.get("/documents", params={"limit": 5, "offset": 5}).json()
    assert first["total"] >= 60 and len(first["items"]) == 5
    assert {d["id"] for d in first["items"]}.isdisjoint(d["id"] for d in second["items"])
    doc = client.get(f"/documents/{first['items'][0]['id']}").json()
    assert doc["chunks"] >= 1 and doc["title"] and doc["district"]


def test_health_reports_model_version_and_counts(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ready" and health["model"] == "multilingual-e5-small"
    assert health["index_version"] == 1 and health["documents"] >= 60 and health["chunks"] > health["documents"]


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"q": ""}, 422, "The query is empty"),
        ({"q": "   "}, 422, "The query is empty"),
        ({"q": "x" * 1001}, 422, "the limit is 1000"),
        ({"q": "Eltern", "k": 0}, 422, "k must be between 1 and 100, got 0"),
        ({"q": "Eltern", "k": 101}, 422, "k must be between 1 and 100, got 101"),
        ({"q": "Eltern", "k": "viele"}, 422, "Parameter 'k'"),
    ],
)
def test_bad_search_requests_say_what_is_wrong(client: TestClient, params: dict, status: int, detail: str) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == status
    assert detail in response.json()["detail"]


def test_unknown_document_is_a_404_with_a_sentence(client: TestClient) -> None:
    for path in ("/documents/0000000000000000", "/documents/0000000000000000/file"):
        response = client.get(path)
        assert response.status_code == 404
        assert "There is no document with id" in response.json()["detail"]


def test_file_path_traversal_is_not_possible(client: TestClient) -> None:
    for path in ("/documents/..%2F..%2Fetc%2Fpasswd/file", "/documents/../../etc/passwd/file"):
        response = client.get(path)
        assert response.status_code == 404
        assert "root:" not in response.text


def test_missing_index_says_run_kb_ingest(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "no-index")
    with TestClient(create_app(settings, searcher=Searcher(settings, embedder))) as empty:
        response = empty.get("/search", params={"q": "Eltern"})
        assert response.status_code == 503 and "run `kb ingest`" in response.json()["detail"]
        health = empty.get("/health").json()
        assert health["status"] == "degraded" and "kb ingest" in health["detail"]


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/search" in client.get("/openapi.json").json()["paths"]


def test_search_page_in_german(client: TestClient) -> None:
    page = client.get("/", params={"q": "Elterncafé"})
    assert page.status_code == 200 and 'lang="de"' in page.text and "Treffer" in page.text


def test_filters_facets_and_mode_over_http(client: TestClient) -> None:
    params = {"q": "Sprachförderung im Fachunterricht", "k": 3, "district": "Kreis Soest", "facets": "true"}
    body = client.get("/search", params=params).json()
    assert [r["district"] for r in body["results"]] == ["Kreis Soest"]
    assert body["facets"]["district"] == {"Kreis Soest": 1} and body["mode"] == "hybrid"
    post = client.post(
        "/search", json={"q": "Elterncafé", "k": 4, "mode": "lexical", "filters": {"doc_type": ["Handreichung"]}}
    ).json()
    assert post["mode"] == "lexical" and post["results"]
    assert all(r["doc_type"] == "Handreichung" for r in post["results"])


def test_post_search_rejects_unknown_fields_with_a_sentence(client: TestClient) -> None:
    response = client.post("/search", json={"q": "Eltern", "filters": {"bezirk": ["Köln"]}})
    assert response.status_code == 422 and "filters.bezirk" in response.json()["detail"]


def test_similar_approaches_from_other_districts(client: TestClient) -> None:
    doc = client.get("/search", params={"q": "Elterncafé an Grundschulen aufbauen", "k": 1}).json()["results"][0]
    body = client.get(f"/documents/{doc['document_id']}/similar", params={"k": 5}).json()
    assert len(body["results"]) == 5 and body["other_districts"] is True
    assert all(r["district"] != doc["district"] for r in body["results"])
    assert sum(PARENTS in r["topics"] for r in body["results"]) >= 3
