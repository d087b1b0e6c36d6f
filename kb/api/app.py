"""The FastAPI application: ``create_app(settings)`` loads the model and the index once, at start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb import __version__
from kb.api import curation, curation_page, login, page, routes
from kb.api.middleware import BodyLimit, RequestObservation, SecurityHeaders
from kb.api.startup import Startup
from kb.embedder import Embedder
from kb.errors import AuthError, KBError, StartingError
from kb.metrics import Metrics
from kb.search import Searcher
from kb.settings import Settings, get_settings
from kb.storage import StorageReader
from kb.visibility import ANONYMOUS

log = logging.getLogger(__name__)
#: Our pages load nothing but their own stylesheet and script (no inline code, no CDN, no fonts).
PAGE_CSP = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"


def create_app(settings: Settings | None = None, searcher: Searcher | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.startup = Startup()
        if searcher is None:  # the model is loaded in the background: the server answers at once
            app.state.searcher = Searcher(settings, Embedder(settings))
            app.state.startup.begin(app.state.searcher)
        else:
            app.state.searcher = searcher
            app.state.startup.run(searcher)
        yield

    app = FastAPI(
        title="KI-Wissensbasis",
        description="Semantic search over the materials of the Kommunale Integrationszentren in NRW.",
        version=__version__,
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    app.include_router(curation.router)
    app.include_router(page.router)
    app.include_router(login.router)
    app.include_router(curation_page.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    _install_error_handlers(app)
    _install_security_headers(app)
    _install_operations(app, settings)
    return app


def _install_operations(app: FastAPI, settings: Settings) -> None:
    """Body limits, CORS (closed unless KB_CORS_ORIGINS names origins), request ids, logs and /metrics."""

    def live_index() -> StorageReader:
        if app.state.startup.state != "ready":
            raise StartingError("The service is starting.")
        # /metrics is open to anyone who reaches the server: it counts the public documents only.
        index: StorageReader = app.state.searcher.reader(ANONYMOUS)
        return index

    metrics = Metrics(live_index, settings.index_dir)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.max_body_kb * 1024,
        max_upload_bytes=settings.max_upload_mb * 1024 * 1024,
    )
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(RequestObservation, metrics=metrics)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KBError)
    async def kb_error(request: Request, exc: KBError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) and exc.status_code == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_validation(exc)}, status_code=422)

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_validation(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else "No such page or endpoint."
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "Something went wrong on the server; the error is logged. Please try again later."},
            status_code=500,
        )


def _install_security_headers(app: FastAPI) -> None:
    """CSP, nosniff and a same-origin referrer on HTML pages (not on /docs: Swagger UI needs its CDN)."""
    own_docs = tuple(url for url in (app.docs_url, app.redoc_url) if url)
    app.add_middleware(SecurityHeaders, csp=PAGE_CSP, exempt=own_docs)


def describe_validation(exc: RequestValidationError | ValidationError) -> str:
    """One sentence per invalid parameter, naming it and the value that was sent."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body")]
        name = ".".join(loc) or "request"
        value = error.get("input")
        shown = f" (got {value!r})" if value is not None and not isinstance(value, dict | list) else ""
        parts.append(f"Parameter '{name}': {error.get('msg', 'invalid value')}{shown}.")
    return " ".join(parts) or "The request is not valid."
