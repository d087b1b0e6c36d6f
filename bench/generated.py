"""Generated blocks inside hand-written Markdown: ``<!-- generated:NAME -->`` … ``<!-- /generated:NAME -->``.

A benchmark replaces the text between a block's two markers and nothing else. The prose around the blocks (what
was measured, how, what a figure means, the notes on a run) is written by hand and survives every rerun, while
the tables always hold the latest run's figures. A document without a block's markers is an error that names the
markers to add, never a silent append or a rewrite of the whole file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path


class MarkerError(ValueError):
    """A generated block's markers are missing, repeated or out of order."""


def markers(name: str) -> tuple[str, str]:
    """The opening and the closing marker of block ``name``."""
    return f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"


def replace_block(text: str, name: str, content: str, where: str = "the document") -> str:
    """``text`` with the content of block ``name`` replaced by ``content``; everything else stays as it is."""
    opening, closing = markers(name)
    found = (text.count(opening), text.count(closing))
    if found != (1, 1) or text.index(opening) > text.index(closing):
        raise MarkerError(
            f"{where} needs the markers {opening} and {closing} exactly once each, in this order "
            f"(found {found[0]} and {found[1]}): add them where the generated {name!r} block belongs."
        )
    head, rest = text.split(opening)
    tail = rest.split(closing)[1]
    return f"{head}{opening}\n{content.strip(chr(10))}\n{closing}{tail}"


def block(text: str, name: str) -> str:
    """The current content of block ``name`` in ``text`` (without the markers and their line breaks)."""
    opening, closing = markers(name)
    if opening not in text or closing not in text:
        raise MarkerError(f"no generated {name!r} block ({opening} … {closing})")
    return text.split(opening, 1)[1].split(closing, 1)[0].strip("\n")


def check(path: Path, names: Iterable[str]) -> None:
    """Fail now, not after a long run, when ``path`` lacks the markers of one of the blocks ``names``."""
    text = _read(path)
    for name in names:
        replace_block(text, name, "", where=str(path))


def _read(path: Path) -> str:
    if not path.is_file():
        raise MarkerError(f"{path} does not exist: the generated blocks are written into a hand-written document.")
    return path.read_text(encoding="utf-8")


def update(path: Path, blocks: Mapping[str, str]) -> None:
    """Replace ``blocks`` (name → content) in the Markdown file ``path``; nothing is written unless every block's
    markers are there."""
    text = _read(path)
    for name, content in blocks.items():
        text = replace_block(text, name, content, where=str(path))
    path.write_text(text, encoding="utf-8")
