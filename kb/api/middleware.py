"""ASGI middleware of the app: request ids, the request log and metrics; request body size limits.

Both are plain ASGI (no buffering of responses), and both work on route templates and paths only, so routes
added later (uploads, admin endpoints) are measured and limited without changes here.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb.logs import request_id
from kb.metrics import Metrics

log = logging.getLogger("kb.requests")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
REQUEST_ID_HEADER = b"x-request-id"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def route_template(scope: Scope) -> str:
    """``/documents/{doc_id}`` rather than the raw path (bounded label values); "unmatched" for 404s."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if str(scope.get("path", "")).startswith("/static/"):
        return "/static"
    return "unmatched"


class RequestObservation:
    """Gives every request an id (a sane ``X-Request-ID`` is kept), logs it and counts it in the metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, REQUEST_ID_HEADER)
        rid = given if given and _SANE_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, (REQUEST_ID_HEADER, rid.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route, method = route_template(scope), str(scope.get("method", ""))
            self.metrics.observe(method, route, status, seconds)
            log.log(
                logging.WARNING if status >= 500 else logging.INFO,
                "%s %s -> %d in %.1f ms",
                method,
                route,
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            request_id.reset(token)


#: Where files are uploaded (the API and the curation page's upload form): KB_MAX_UPLOAD_MB, not KB_MAX_BODY_KB.
UPLOAD_PATHS = frozenset({"/documents", "/kuratieren/neu"})


class BodyLimit:
    """Refuses request bodies over the limit with 413 and a ``detail`` (uploads to POST /documents: their own)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app, self.max_body, self.max_upload = app, max_body_bytes, max_upload_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if scope.get("method") == "POST" and str(scope.get("path", "")).rstrip("/") in UPLOAD_PATHS:
            return self.max_upload, f"{self.max_upload // (1024 * 1024)} MB (KB_MAX_UPLOAD_MB)"
        return self.max_body, f"{self.max_body // 1024} KB (KB_MAX_BODY_KB)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, described = self._limit(scope)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _too_large(send, described)
            return
        if length is not None:  # the server stops reading at Content-Length: the declared size is the size
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit first, then hand the body on.
        chunks: list[bytes] = []
        received, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            more = bool(message.get("more_body", False))
            if received > limit:
                await _too_large(send, described)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: str) -> None:
    body = json.dumps({"detail": f"The request body is larger than the limit of {limit}; send less."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """``nosniff`` on every response; on HTML pages (not under ``exempt``, the API docs, which load Swagger UI from
    its CDN) a Content-Security-Policy and a same-origin referrer policy. Headers a route set itself are kept."""

    def __init__(self, app: ASGIApp, csp: str, exempt: tuple[str, ...] = ()) -> None:
        self.app, self.csp, self.exempt = app, csp.encode("latin-1"), exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page_allowed = not str(scope.get("path", "")).startswith(self.exempt) if self.exempt else True

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {key.lower(): value for key, value in headers}
                wanted = [(b"x-content-type-options", b"nosniff")]
                if page_allowed and present.get(b"content-type", b"").startswith(b"text/html"):
                    wanted += [(b"content-security-policy", self.csp), (b"referrer-policy", b"same-origin")]
                missing = [(key, value) for key, value in wanted if key not in present]
                if missing:
                    message = {**message, "headers": [*headers, *missing]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
