"""Who sees which documents: the access rule and the draft rule, each written once.

**Access** (a document's ``visibility``, set by curators): ``oeffentlich`` documents are for everyone,
``netzwerk`` documents for anyone with a key of the network (readers, editors, curators), ``kommune`` documents for
the staff of the owning district and for curators. A :class:`Viewer` says who is asking; the storage layer
(:func:`kb.storage.scoped.scoped`) hands every read path a reader that holds only the documents the viewer may see,
so results, snippets, totals, facet counts, similar documents, near-duplicate hints, document pages, texts, files,
lists and caches all follow the same rule, and an invisible document is as unknown as one that never existed.

**Drafts**: search, lists and counts show published documents unless an editor or curator asks for other review
statuses. Opened by its id or link, an archived document stays readable (the page of a superseded document names
its successor); a draft is for editors and curators only, it is not public yet.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

from kb import districts
from kb.documents import Metadata
from kb.fields import VISIBILITIES, Visibility

#: What search, lists and counts show when no review status is asked for.
LISTED: Final = ("published",)
#: What anyone may open by its id or link.
LINKED: Final = ("published", "archived")

__all__ = [
    "ANONYMOUS",
    "EVERYONE",
    "LINKED",
    "LISTED",
    "PUBLIC",
    "VISIBILITIES",
    "Viewer",
    "Visibility",
    "visible_to",
]

PUBLIC: Final[Visibility] = "oeffentlich"

Role = Literal["anonymous", "reader", "editor", "curator"]


class Described(Protocol):
    @property
    def metadata(self) -> Metadata: ...


@dataclass(frozen=True)
class Viewer:
    """Who is asking, as far as seeing documents goes: anonymous, a reader or editor of a district, a curator."""

    role: Role = "anonymous"
    district: str = ""

    def __post_init__(self) -> None:
        if self.role not in get_args(Role):
            raise ValueError(f"unknown viewer role {self.role!r}; the roles are: {', '.join(get_args(Role))}")

    @property
    def everything(self) -> bool:
        """Sees every document (curators)."""
        return self.role == "curator"

    @property
    def scope(self) -> str:
        """What this viewer may see, as a key: viewers with the same scope see the same documents (cache keys)."""
        if self.role == "curator":
            return "all"
        if self.role == "anonymous":
            return PUBLIC
        return f"netzwerk+{_district(self.district)}"

    def may_see(self, document: Described) -> bool:
        """Whether the document's visibility lets this viewer see it (whatever its review status)."""
        meta = document.metadata
        visibility = meta.visibility
        if visibility == PUBLIC or self.role == "curator":
            return True
        if self.role == "anonymous":
            return False
        if visibility == "netzwerk":
            return True
        # kommune, or a value this release does not know: the owning district only (never an empty district)
        own = _district(self.district)
        return bool(own) and own == _district(meta.district)


ANONYMOUS: Final = Viewer()
EVERYONE: Final = Viewer("curator")


def visible_to(document: Described, statuses: Collection[str] = ()) -> bool:
    """Whether ``document`` is shown to a caller who may see ``statuses`` (none given: :data:`LISTED`)."""
    return document.metadata.status in (statuses or LISTED)


def _district(value: str) -> str:
    """A district's official name, case-folded (a key's "Unna" is the documents' "Kreis Unna")."""
    found = districts.find(value)
    return (found.name if found is not None else value).casefold().strip()
