"""The draft rule: what readers find in lists, what anyone may open by id, what editors may ask for."""

from pathlib import Path

from kb.curation.keys import ANONYMOUS, Principal, Role
from kb.documents import Document, Metadata
from kb.fields import STATUSES
from kb.visibility import LINKED, visible_to


def _document(status: str) -> Document:
    return Document(Path("x.md"), "markdown", Metadata(title="X", status=status), ())


def test_lists_show_published_documents_unless_other_statuses_are_asked_for() -> None:
    assert [s for s in STATUSES if visible_to(_document(s))] == ["published"]
    assert [s for s in STATUSES if visible_to(_document(s), ("draft",))] == ["draft"]


def test_readers_open_archived_documents_by_id_but_no_drafts() -> None:
    assert [s for s in STATUSES if visible_to(_document(s), LINKED)] == ["published", "archived"]
    assert [s for s in STATUSES if visible_to(_document(s), ANONYMOUS.may_open)] == ["published", "archived"]
    editor = Principal(Role.EDITOR, "KI Hamm", "Hamm", "k1")
    assert all(visible_to(_document(s), editor.may_open) for s in STATUSES)
