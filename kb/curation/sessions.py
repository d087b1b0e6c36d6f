"""Logins of the web page: a key given once through the login form becomes a session, kept server-side.

Sessions live in the curation database (table ``sessions``), not in signed cookies: logging out ends a session
for good, revoking a key ends its sessions at once (every request looks the key up again), and there is no
signing secret to keep and rotate. The cookie holds a random token; only its sha256 is stored, so a copy of the
database opens no session. A session ends after ``KB_SESSION_HOURS``, whatever happens in between.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from kb.curation.keys import Principal, authenticate, principal_of
from kb.curation.store import CurationStore
from kb.errors import AuthError


@dataclass(frozen=True)
class Session:
    """A login: who it is, the token the cookie holds, the token changes must send back, and when it ends."""

    principal: Principal
    token: str
    csrf: str
    expires_at: dt.datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def login(db: CurationStore, secret: str, hours: float) -> Session:
    """A new session for the key ``secret`` (an :class:`AuthError` when it is unknown or revoked)."""
    principal = authenticate(db, secret)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = _now()
    expires = now + dt.timedelta(hours=hours)
    with db.transaction() as tx:
        tx.end_sessions(expired_before=now.isoformat())
        tx.add_session(_digest(token), principal.key_id, csrf, expires.isoformat())
    return Session(principal, token, csrf, expires)


def resume(db: CurationStore, token: str) -> Session | None:
    """The session of a cookie's token, if it exists, has not expired and its key is still valid."""
    if not token:
        return None
    found = db.session(_digest(token))  # looked up by the hash of a random token: no secret to time
    if found is None:
        return None
    key_id, csrf, expires_at = found
    expires = dt.datetime.fromisoformat(expires_at)
    key = db.key(key_id)
    if expires <= _now() or key is None or key.revoked_at:
        logout(db, token)
        return None
    try:
        principal = principal_of(key)
    except AuthError:
        return None
    return Session(principal, token, csrf, expires)


def logout(db: CurationStore, token: str) -> None:
    """End the session of this token (an unknown token is ignored)."""
    with db.transaction() as tx:
        tx.end_session(_digest(token))
