"""Logging in and out of the web page: ``GET``/``POST /anmelden`` and ``POST /abmelden``.

The key is given once; the page then keeps a session cookie (:mod:`kb.api.session`, :mod:`kb.curation.sessions`).
Failed logins are limited per client address (``KB_LOGIN_ATTEMPTS`` within 15 minutes), the key is compared by
its hash in constant time (:func:`kb.curation.keys.authenticate`), and a login posted from another site is refused.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from kb.api.deps import get_curator, get_session
from kb.api.page import render
from kb.api.session import LoginLimiter, check_csrf, clear_cookie, same_origin, set_cookie
from kb.curation.sessions import login, logout
from kb.errors import AuthError, ForbiddenError

router = APIRouter(include_in_schema=False)

WRONG_KEY = (
    "Dieser Schlüssel ist nicht gültig oder wurde widerrufen. "
    "Bitte prüfen Sie ihn oder fragen Sie die Koordinierungsstelle."
)
OTHER_SITE = (
    "Die Anmeldung kam von einer anderen Seite und wurde abgelehnt. Bitte melden Sie sich auf dieser Seite an."
)


def _limiter(request: Request) -> LoginLimiter:
    state = request.app.state
    if getattr(state, "login_limiter", None) is None:
        state.login_limiter = LoginLimiter(request.app.state.searcher.settings.login_attempts)
    limiter: LoginLimiter = state.login_limiter
    return limiter


def _next(raw: str) -> str:
    """Where to go after logging in: a path of this site only (never another host)."""
    return raw if raw.startswith("/") and not raw.startswith("//") and "\\" not in raw else "/"


def _page(request: Request, next_url: str = "/", error: str = "", status: int = 200) -> HTMLResponse:
    hours = request.app.state.searcher.settings.session_hours
    shown = f"{hours:g}".replace(".", ",")
    return render(request, "login.html", {"error": error, "next_url": _next(next_url), "hours": shown}, status)


@router.get("/anmelden", response_class=HTMLResponse)
async def login_form(request: Request, weiter: str = "/") -> HTMLResponse:
    await get_session(request)
    return _page(request, weiter)


@router.post("/anmelden", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    schluessel: Annotated[str, Form(max_length=200)] = "",
    weiter: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    if not same_origin(request):
        return _page(request, weiter, OTHER_SITE, 403)
    client = request.client.host if request.client else "unknown"
    limiter = _limiter(request)
    wait = limiter.wait_s(client)
    if wait > 0:
        minutes = max(math.ceil(wait / 60), 1)
        message = f"Zu viele fehlgeschlagene Anmeldungen. Bitte versuchen Sie es in {minutes} Minuten noch einmal."
        response = _page(request, weiter, message, 429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    curator = await run_in_threadpool(get_curator, request)
    hours = curator.settings.session_hours
    try:
        session = await run_in_threadpool(login, curator.db, schluessel, hours)
    except AuthError:
        limiter.failed(client)
        return _page(request, weiter, WRONG_KEY, 401)
    limiter.succeeded(client)
    redirect = RedirectResponse(_next(weiter), status_code=303)
    set_cookie(request, redirect, session)
    return redirect


@router.post("/abmelden")
async def logout_submit(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    session = await get_session(request)
    if session is not None:
        try:
            check_csrf(request, session, csrf)
        except ForbiddenError:
            return _page(request, "/", "Die Abmeldung kam ohne gültiges Formular und wurde abgelehnt.", 403)
        db = (await run_in_threadpool(get_curator, request)).db
        await run_in_threadpool(logout, db, session.token)
    response = RedirectResponse("/", status_code=303)
    clear_cookie(request, response)
    return response
