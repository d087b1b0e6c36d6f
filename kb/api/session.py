"""The web page's login session on the HTTP side: the cookie, the CSRF check and the login rate limit.

The cookie (``kb_session``) is HttpOnly, SameSite=Strict, Secure when the request came over TLS, and lives no
longer than the session (:mod:`kb.curation.sessions`). A request authenticated by the cookie that changes
anything (any method but GET, HEAD, OPTIONS) must send the session's CSRF token back, as the form field ``csrf``
or the header ``X-CSRF-Token``, and must not come from another origin; SameSite=Strict already keeps the cookie
off cross-site requests, the token covers browsers and proxies that do not honour it. Requests with
``Authorization: Bearer`` carry no cookie authority and need no token.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from typing import Final

from fastapi import Request, Response

from kb.curation.sessions import Session
from kb.errors import ForbiddenError

COOKIE: Final = "kb_session"
CSRF_HEADER: Final = "x-csrf-token"
CSRF_FIELD: Final = "csrf"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Failed logins are counted per client address over this many seconds.
LOGIN_WINDOW_S: Final = 15 * 60


def set_cookie(request: Request, response: Response, session: Session) -> None:
    seconds = max(int(session.expires_at.timestamp() - time.time()), 0)
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=seconds,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        path="/",
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, httponly=True, secure=request.url.scheme == "https", samesite="strict", path="/"
    )


def same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (or, without it, ``Referer``) is this server; neither sent: yes (the
    token decides)."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin:
        return origin == own
    referer = request.headers.get("referer")
    return not referer or referer == own or referer.startswith(own + "/")


def check_csrf(request: Request, session: Session, sent: str | None = None) -> None:
    """Refuse a cookie-authenticated change without the session's token, or from another origin (403)."""
    if request.method in SAFE_METHODS:
        return
    token = sent if sent is not None else request.headers.get(CSRF_HEADER, "")
    if not same_origin(request) or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise ForbiddenError(
            "This change came with the login cookie but without the page's CSRF token (or from another site); "
            f"send the token as '{CSRF_FIELD}' or the {CSRF_HEADER} header, or use 'Authorization: Bearer'."
        )


class LoginLimiter:
    """At most ``attempts`` failed logins per client address within :data:`LOGIN_WINDOW_S` seconds."""

    def __init__(self, attempts: int, window_s: float = LOGIN_WINDOW_S) -> None:
        self.attempts, self.window = attempts, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def wait_s(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(client, now)
            if len(failures) < self.attempts:
                return 0.0
            return failures[0] + self.window - now

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # forget quiet addresses rather than grow without end
                for quiet in [c for c, f in self._failures.items() if not f]:
                    del self._failures[quiet]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
