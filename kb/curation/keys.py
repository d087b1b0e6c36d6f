"""API keys and roles. A key is shown once when it is created; only its sha256 is stored.

Roles: anonymous **reader** (search and read, no key needed), district **editor** (adds and edits documents of
its own district), **curator** (everything, including purge, recommendations and the audit log).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from kb.curation.db import CurationDB
from kb.errors import AuthError, CurationError, ForbiddenError, NotFoundError

KEY_PREFIX = "kbk_"


class Role(StrEnum):
    READER = "reader"
    EDITOR = "editor"
    CURATOR = "curator"


@dataclass(frozen=True)
class Principal:
    """Who is asking: the role, the district of an editor, and the key's label (for the audit log)."""

    role: Role
    label: str = "anonymous"
    district: str = ""
    key_id: str = ""

    @property
    def actor(self) -> str:
        """How the audit log names this principal (never the key itself)."""
        return f"{self.label} ({self.key_id})" if self.key_id else self.label

    def require_writer(self) -> None:
        if self.role is Role.READER:
            raise AuthError(
                "This operation needs an API key of an editor or curator: send 'Authorization: Bearer <key>' "
                "(a curator creates keys with `kb keys create`)."
            )

    def require_curator(self, what: str) -> None:
        self.require_writer()
        if self.role is not Role.CURATOR:
            raise ForbiddenError(f"Only curators may {what}; the key '{self.label}' belongs to an editor.")

    def require_district(self, district: str) -> None:
        """Editors may only touch documents of their own district."""
        self.require_writer()
        if self.role is Role.EDITOR and district.casefold().strip() != self.district.casefold().strip():
            raise ForbiddenError(
                f"The key '{self.label}' may only change documents of {self.district!r}, "
                f"not of {district or '(no district)'!r}."
            )


ANONYMOUS = Principal(Role.READER)


#: The principal of curators working on the server with the CLI.
def cli_principal(user: str) -> Principal:
    return Principal(Role.CURATOR, label=f"cli:{user}")


@dataclass(frozen=True)
class ApiKey:
    id: str
    role: Role
    district: str
    label: str
    created_at: str
    revoked_at: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(db: CurationDB, role: str, label: str, district: str = "") -> tuple[ApiKey, str]:
    """A new key; returns its record and the secret, which is not stored and cannot be shown again."""
    try:
        chosen = Role(role)
    except ValueError:
        raise CurationError(f"The role must be 'curator' or 'editor', got {role!r}.") from None
    if chosen is Role.READER:
        raise CurationError("Readers need no key; create a key with role 'curator' or 'editor'.")
    if not label.strip():
        raise CurationError("A key needs a --label that says whose it is, e.g. 'LaKI Redaktion'.")
    if chosen is Role.EDITOR and not district.strip():
        raise CurationError("An editor key needs the --district it may edit, e.g. --district 'Kreis Unna'.")
    if chosen is Role.CURATOR and district.strip():
        raise CurationError("Curator keys cover every district; leave out --district.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = secrets.token_hex(4)
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO api_keys (id, hash, role, district, label) VALUES (?, ?, ?, ?, ?)",
            (key_id, _digest(secret), chosen.value, district.strip(), label.strip()),
        )
    return get_key(db, key_id), secret


def get_key(db: CurationDB, key_id: str) -> ApiKey:
    rows = db.query(
        "SELECT id, role, district, label, created_at, revoked_at FROM api_keys WHERE id = ?", (key_id,)
    )
    if not rows:
        raise NotFoundError(f"There is no API key with id {key_id!r}; `kb keys list` shows the ids.")
    return _key(rows[0])


def list_keys(db: CurationDB) -> list[ApiKey]:
    rows = db.query("SELECT id, role, district, label, created_at, revoked_at FROM api_keys ORDER BY created_at")
    return [_key(row) for row in rows]


def revoke_key(db: CurationDB, key_id: str) -> ApiKey:
    get_key(db, key_id)
    with db.transaction() as tx:
        tx.execute(
            "UPDATE api_keys SET revoked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
            "WHERE id = ? AND revoked_at IS NULL",
            (key_id,),
        )
    return get_key(db, key_id)


def authenticate(db: CurationDB, secret: str) -> Principal:
    """The principal of a key sent by a client; an unknown or revoked key is an :class:`AuthError`."""
    digest = _digest(secret.strip())
    rows = db.query("SELECT id, hash, role, district, label, revoked_at FROM api_keys WHERE hash = ?", (digest,))
    if not rows or not hmac.compare_digest(rows[0][1], digest):
        raise AuthError("The API key is not valid; check it or ask a curator for a new one.")
    key_id, _, role, district, label, revoked = rows[0]
    if revoked:
        raise AuthError(f"The API key '{label}' was revoked on {revoked}; ask a curator for a new one.")
    return Principal(Role(role), label=label, district=district, key_id=key_id)


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, role, district, label, created, revoked = row
    revoked_at = str(revoked) if revoked else None
    return ApiKey(str(key_id), Role(str(role)), str(district), str(label), str(created), revoked_at)
