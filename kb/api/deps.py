"""Dependencies shared by the routers: the searcher, the curator and the caller's principal (an API key sent as
``Authorization: Bearer``, or the web page's login cookie)."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from kb.api.session import COOKIE, check_csrf
from kb.curation.keys import ANONYMOUS, Principal, authenticate
from kb.curation.service import Curator
from kb.curation.sessions import Session, resume
from kb.curation.store import open_curation
from kb.errors import AuthError
from kb.search import Searcher

_curator_lock = threading.Lock()


def searcher_of(request: Request) -> Searcher:
    """The searcher, once start-up has loaded the model (waits for it a little, then 503 with the reason)."""
    startup = getattr(request.app.state, "startup", None)
    if startup is not None:
        startup.require()
    searcher: Searcher = request.app.state.searcher
    return searcher


async def get_searcher(request: Request) -> Searcher:
    """:func:`searcher_of` without a trip to the thread pool once start-up is over (every search asks)."""
    startup = getattr(request.app.state, "startup", None)
    if startup is not None and startup.state != "ready":
        return await run_in_threadpool(searcher_of, request)  # waits for the model off the event loop
    return searcher_of(request)  # start-up is over: nothing to wait for


def get_curator(request: Request) -> Curator:
    """The curator of this app, created on first use (it opens the curation data: ``KB_DATA_DIR/curation.sqlite``,
    or the PostgreSQL database of ``KB_DATABASE_URL``)."""
    state = request.app.state
    with _curator_lock:
        if getattr(state, "curator", None) is None:
            searcher = searcher_of(request)
            state.curator = Curator(searcher, open_curation(searcher.settings))
    curator: Curator = state.curator
    return curator


async def get_principal(request: Request) -> Principal:
    """The key's principal with ``Authorization: Bearer <key>``; else the principal of a valid login cookie
    (changes then need the session's CSRF token); else the anonymous reader."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise AuthError("The Authorization header must be 'Bearer <key>'.")
        return await run_in_threadpool(lambda: authenticate(get_curator(request).db, secret))
    session = await get_session(request)
    if session is None:
        return ANONYMOUS
    check_csrf(request, session)
    return session.principal


async def get_session(request: Request) -> Session | None:
    """The login session of the request's cookie, if it is valid (kept on ``request.state`` for the pages)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None  # most requests: no trip to the thread pool
    session = await run_in_threadpool(lambda: resume(get_curator(request).db, token))
    request.state.session = session
    return session


SearcherDep = Annotated[Searcher, Depends(get_searcher)]
CuratorDep = Annotated[Curator, Depends(get_curator)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
