"""The web page at ``/``: a German search page, rendered on the server (works without JavaScript)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from kb.api.deps import SearcherDep
from kb.api.schemas import SearchHitOut
from kb.errors import KBError

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@router.get("/", response_class=HTMLResponse)
def search_page(
    request: Request, searcher: SearcherDep, q: Annotated[str, Query(max_length=2000)] = ""
) -> HTMLResponse:
    context: dict[str, object] = {"q": q, "results": None, "error": None, "took_ms": None}
    if q.strip():
        try:
            result = searcher.search(q, 10)
            context["results"] = [SearchHitOut.of(hit) for hit in result.hits]
            context["took_ms"] = round(result.took_ms)
        except KBError as exc:
            context["error"] = german_error(exc)
    return templates.TemplateResponse(request, "search.html", context)


def german_error(exc: KBError) -> str:
    from kb.errors import IndexMissingError, QueryError

    if isinstance(exc, IndexMissingError):
        return "Es gibt noch keinen Suchindex. Bitte zuerst „kb ingest“ ausführen."
    if isinstance(exc, QueryError):
        return "Die Suchanfrage ist zu lang oder leer. Bitte eine kürzere Frage eingeben."
    return "Die Suche ist gerade nicht verfügbar. Bitte später noch einmal versuchen."
