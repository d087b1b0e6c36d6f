"""HTML: the main text only (scripts, navigation, headers and footers removed), headings as context."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup, Tag

from kb.documents import Document, Heading, Section
from kb.loaders.headings import HeadingTrail
from kb.loaders.metadata import build_metadata, read_sidecar
from kb.loaders.text import decode_text

_DROP = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe", "svg")
_BLOCKS = ("p", "li", "td", "th", "dd", "dt", "blockquote", "pre", "figcaption")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")


def load(path: Path) -> Document:
    soup = BeautifulSoup(decode_text(path.read_bytes(), path), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(list(_DROP)):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    sections: list[Section] = []
    trail = HeadingTrail()
    for element in root.find_all([*_HEADINGS, *_BLOCKS]) if isinstance(root, Tag) else []:
        if element.find_parent(_BLOCKS) is not None:
            continue  # text inside a nested block is taken with its outer block
        text = " ".join(element.get_text(" ", strip=True).split())
        if not text:
            continue
        if element.name in _HEADINGS:
            trail.enter(int(element.name[1]), text)
        else:
            sections.append(Section(text=text, heading=trail.context))
    metadata = build_metadata(read_sidecar(path), path, fallback_title=trail.first or title or path.stem)
    headings = tuple(Heading(text) for text in trail.seen)
    return Document(path=path, file_type="html", metadata=metadata, sections=tuple(sections), headings=headings)
