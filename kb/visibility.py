"""Who sees which documents: the draft rule, written once.

Search, lists and counts show published documents unless an editor or curator asks for other review statuses.
Opened by its id or link, an archived document stays readable (the page of a superseded document names its
successor); a draft is for editors and curators only, it is not public yet.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Protocol

from kb.documents import Metadata

#: What search, lists and counts show when no review status is asked for.
LISTED: Final = ("published",)
#: What anyone may open by its id or link.
LINKED: Final = ("published", "archived")


class Described(Protocol):
    @property
    def metadata(self) -> Metadata: ...


def visible_to(document: Described, statuses: Collection[str] = ()) -> bool:
    """Whether ``document`` is shown to a caller who may see ``statuses`` (none given: :data:`LISTED`)."""
    return document.metadata.status in (statuses or LISTED)
