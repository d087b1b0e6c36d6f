"""OpenDocument text (.odt, LibreOffice Writer): paragraphs and list items in order, headings (with their outline
level) as section context, tables row by row, read from ``content.xml`` with the standard library.

Like the Word loader: a heading is the context of the text below it, not text of its own; a table row is one
section, its cells joined with " ; " (a cell spanning columns counts once). Tracked deletions, the table of
contents and other generated indexes are skipped: their words are elsewhere in the document or no longer in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

from kb.documents import Document, Heading, Section
from kb.loaders.headings import HeadingTrail
from kb.loaders.metadata import build_metadata, read_sidecar
from kb.loaders.package import Package, clean, qualified

KIND = "OpenDocument text (.odt)"
NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def _q(name: str) -> str:
    return qualified(NS, name)


_H, _P, _TABLE, _ROW, _CELL = (
    _q(n) for n in ("text:h", "text:p", "table:table", "table:table-row", "table:table-cell")
)
_SPACE, _TAB, _BREAK = _q("text:s"), _q("text:tab"), _q("text:line-break")
_NOTE_CITATION = _q("text:note-citation")
#: Containers whose text is not the document's own: deleted text kept for change tracking, generated indexes,
#: declarations and forms.
_SKIPPED = frozenset(
    _q(n)
    for n in (
        "text:tracked-changes",
        "text:table-of-content",
        "text:illustration-index",
        "text:table-index",
        "text:object-index",
        "text:user-index",
        "text:alphabetical-index",
        "text:bibliography",
        "office:forms",
        "text:sequence-decls",
        "text:variable-decls",
        "text:user-field-decls",
        "table:table-header-columns",
        "table:table-columns",
        "table:table-column",
    )
)


def load(path: Path) -> Document:
    with Package(path, KIND) as package:
        content = package.xml("content.xml")
        meta_title = _meta_title(package.xml("meta.xml")) if package.has("meta.xml") else ""
    body = content.find(f"{_q('office:body')}/{_q('office:text')}")
    sections: list[Section] = []
    trail = HeadingTrail()
    for level, text in _blocks(body if body is not None else content):
        if level:
            trail.enter(level, text)
        else:
            sections.append(Section(text=text, heading=trail.context))
    title = meta_title or trail.first or path.stem
    metadata = build_metadata(read_sidecar(path), path, fallback_title=title)
    headings = tuple(Heading(text) for text in trail.seen)
    return Document(path=path, file_type="odt", metadata=metadata, sections=tuple(sections), headings=headings)


def _meta_title(meta: ET.Element) -> str:
    title = meta.find(f"{_q('office:meta')}/{_q('dc:title')}")
    return clean(title.text or "") if title is not None else ""


def _blocks(element: ET.Element) -> Iterator[tuple[int, str]]:
    """(outline level, text) of each heading and (0, text) of each paragraph or table row, in reading order."""
    for child in element:
        if child.tag in _SKIPPED:
            continue
        if child.tag == _H:
            text = _inline(child)
            if text:
                yield _level(child), text
        elif child.tag == _P:
            text = _inline(child)
            if text:
                yield 0, text
        elif child.tag == _TABLE:
            for row in _rows(child):
                cells = [" ".join(text for _, text in _blocks(cell)) for cell in row if cell.tag == _CELL]
                line = " ; ".join(c for c in dict.fromkeys(cells) if c)
                if line:
                    yield 0, line
        else:  # lists, list items, sections, frames: their paragraphs in order
            yield from _blocks(child)


def _level(heading: ET.Element) -> int:
    raw = heading.get(_q("text:outline-level"), "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def _rows(table: ET.Element) -> Iterator[ET.Element]:
    """The rows of ``table`` (also inside header rows and row groups), not those of tables nested in its cells."""
    for child in table:
        if child.tag == _ROW:
            yield child
        elif child.tag != _CELL and child.tag not in _SKIPPED:
            yield from _rows(child)


def _inline(element: ET.Element) -> str:
    """The text of a paragraph or heading: spans and links read through, ``text:s`` as spaces, tabs and line
    breaks as one space, soft hyphens removed; a footnote's text stays where its mark is, the mark does not."""
    parts: list[str] = []
    _collect(element, parts)
    return clean("".join(parts))


def _collect(element: ET.Element, parts: list[str]) -> None:
    parts.append(element.text or "")
    for child in element:
        if child.tag == _SPACE:
            count = child.get(_q("text:c"), "1")
            parts.append(" " * (int(count) if count.isdigit() else 1))
        elif child.tag in (_TAB, _BREAK):
            parts.append(" ")
        elif child.tag not in _SKIPPED and child.tag != _NOTE_CITATION:
            parts.append(" " if child.tag in (_P, _H) else "")  # paragraphs of a note or a text box
            _collect(child, parts)
        parts.append(child.tail or "")
