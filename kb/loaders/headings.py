"""The headings above a paragraph, as the section context a chunk carries ("Kapitel 2 › Ablauf")."""

from __future__ import annotations

#: Joins the headings of a trail, outermost first.
SEPARATOR = " › "


class HeadingTrail:
    """The open headings while a document is read top to bottom, and its first heading (a fallback title).

    A heading closes every heading of its own level or deeper: ``##`` after ``###`` replaces both.
    """

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []
        self.first = ""
        self.seen: list[str] = []  # every heading read, in order (the document's detected headings)

    def enter(self, level: int, text: str) -> None:
        """A heading of ``level`` (1 outermost) was read."""
        self.first = self.first or text
        if text:
            self.seen.append(text)
        self._open = [(lvl, t) for lvl, t in self._open if lvl < level] + [(level, text)]

    @property
    def context(self) -> str:
        """The open headings, outermost first: the section heading of the text that follows."""
        return SEPARATOR.join(text for _, text in self._open)
