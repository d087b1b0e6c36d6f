"""API keys and roles. A key is shown once when it is created; only its sha256 is stored.

Roles: **reader** (search and read; without a key only public documents, with a reader key of a district also the
network's documents and those of its district), district **editor** (adds and edits documents of its own district,
sees what a reader of it sees), **curator** (everything, including purge, recommendations, visibility and the audit
log). What a principal may see is its :attr:`Principal.viewer` (:mod:`kb.visibility`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from kb import districts
from kb.curation.db import ApiKey
from kb.errors import AuthError, CurationError, ForbiddenError, NotFoundError
from kb.fields import STATUSES
from kb.visibility import ANONYMOUS as ANONYMOUS_VIEWER
from kb.visibility import LINKED, Viewer

if TYPE_CHECKING:
    from kb.curation.store import CurationStore

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
    def may_open(self) -> tuple[str, ...]:
        """The review statuses of the documents this principal may open by id (readers: no drafts)."""
        return LINKED if self.role is Role.READER else STATUSES

    @property
    def anonymous(self) -> bool:
        return self.role is Role.READER and not self.key_id

    @property
    def viewer(self) -> Viewer:
        """What this principal may see (document visibility)."""
        if self.anonymous:
            return ANONYMOUS_VIEWER
        return Viewer(self.role.value, self.district)

    @property
    def actor(self) -> str:
        """How the audit log names this principal (never the key itself)."""
        return f"{self.label} ({self.key_id})" if self.key_id else self.label

    def require_writer(self) -> None:
        if self.role is Role.READER and self.key_id:
            raise ForbiddenError(f"The key '{self.label}' is a reader's key: it may search and read, not change.")
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
        if self.role is Role.EDITOR and _district_key(district) != _district_key(self.district):
            raise ForbiddenError(
                f"The key '{self.label}' may only change documents of {self.district!r}, "
                f"not of {district or '(no district)'!r}."
            )


ANONYMOUS = Principal(Role.READER)


#: The principal of curators working on the server with the CLI.
def cli_principal(user: str) -> Principal:
    return Principal(Role.CURATOR, label=f"cli:{user}")


def _district_key(value: str) -> str:
    found = districts.find(value)
    return (found.name if found is not None else value).casefold().strip()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(db: CurationStore, role: str, label: str, district: str = "") -> tuple[ApiKey, str]:
    """A new key; returns its record and the secret, which is not stored and cannot be shown again."""
    try:
        chosen = Role(role)
    except ValueError:
        raise CurationError(f"The role must be 'curator', 'editor' or 'reader', got {role!r}.") from None
    if not label.strip():
        raise CurationError("A key needs a --label that says whose it is, e.g. 'LaKI Redaktion'.")
    if chosen is Role.EDITOR and not district.strip():
        raise CurationError("An editor key needs the --district it may edit, e.g. --district 'Kreis Unna'.")
    if chosen is Role.READER and not district.strip():
        raise CurationError(
            "A reader key needs the --district whose documents it may read, e.g. --district 'Hamm' "
            "(public documents need no key at all)."
        )
    if chosen is Role.CURATOR and district.strip():
        raise CurationError("Curator keys cover every district; leave out --district.")
    try:
        district = districts.canonical(district)
    except ValueError as exc:
        raise CurationError(f"The --district is not valid: {exc}") from None
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = secrets.token_hex(4)
    with db.transaction() as tx:
        tx.add_key(key_id, _digest(secret), chosen.value, district, label.strip())
    return get_key(db, key_id), secret


def get_key(db: CurationStore, key_id: str) -> ApiKey:
    key = db.key(key_id)
    if key is None:
        raise NotFoundError(f"There is no API key with id {key_id!r}; `kb keys list` shows the ids.")
    return key


def list_keys(db: CurationStore) -> list[ApiKey]:
    return db.keys()


def revoke_key(db: CurationStore, key_id: str) -> ApiKey:
    get_key(db, key_id)
    with db.transaction() as tx:
        tx.revoke_key(key_id)
        tx.end_sessions(key_id=key_id)
    return get_key(db, key_id)


def authenticate(db: CurationStore, secret: str) -> Principal:
    """The principal of a key sent by a client; an unknown or revoked key is an :class:`AuthError`."""
    digest = _digest(secret.strip())
    found = db.key_by_hash(digest)
    if found is None or not hmac.compare_digest(found[0], digest):
        raise AuthError("The API key is not valid; check it or ask a curator for a new one.")
    return principal_of(found[1])


def principal_of(key: ApiKey) -> Principal:
    """The principal of a stored key (an :class:`AuthError` when it was revoked)."""
    if key.revoked_at:
        raise AuthError(f"The API key '{key.label}' was revoked on {key.revoked_at}; ask a curator for a new one.")
    return Principal(Role(key.role), label=key.label, district=key.district, key_id=key.id)
