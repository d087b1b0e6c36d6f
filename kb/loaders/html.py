"""HTML: the page's main content only, headings as context.

Web pages carry furniture around their article: navigation menus, cookie banners, "Zum Hauptinhalt springen"
links, share buttons, footers with the imprint. The page is cleaned of what is furniture by its tag or its class
(navigation, page header and footer, cookie and consent boxes, skip links, share bars), then its main content is
found by trafilatura, a maintained library made for exactly that (it scores blocks by text and link density);
its XML output keeps headings, paragraphs, lists and tables, so the heading trail works as for the other formats.
A page in which it finds no main content (a tiny page that is all content) is read whole from the cleaned page
instead, so that no page's text is dropped silently.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import trafilatura
from bs4 import BeautifulSoup, Tag

from kb.documents import Document, Heading, Section
from kb.loaders.headings import HeadingTrail
from kb.loaders.hyphens import repair_hyphens
from kb.loaders.metadata import build_metadata, read_sidecar
from kb.loaders.text import decode_text

#: A block of the main content: a heading level (1-6) or 0 for running text, and the text.
Block = tuple[int, str]

_DROP = ("script", "style", "noscript", "template", "nav", "aside", "form", "iframe", "svg", "button", "dialog")
#: Dropped unless inside the article: an ``<article>`` or ``<main>`` may have a header with its title.
_PAGE_FRAME = ("header", "footer")
_BLOCKS = ("p", "li", "td", "th", "dd", "dt", "blockquote", "pre", "figcaption")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
#: A class or id (the whole name) of page furniture that is no tag of its own: cookie and consent boxes, skip
#: links, share bars, breadcrumbs ("cookie-notice", "js-cookie-consent", "social-share"; not "social-work").
_FURNITURE = re.compile(
    r"(?:[\w-]*[-_])?(?:cookie|consent|gdpr|dsgvo|skip|share|sharing|social|breadcrumbs?)"
    r"(?:[-_]?(?:banner|notice|hint|bar|layer|box|container|wrapper|modal|overlay|popup|dialog|consent|link|links"
    r"|nav|navigation|to|content|main|buttons?|icons?|media|share|tools))*",
    re.I,
)
#: The text of a link to an anchor on the same page that only skips the navigation.
_SKIP_LINK = re.compile(r"springen|skip to|zum (?:haupt)?inhalt", re.I)
_HEADING_REND = re.compile(r"^h([1-6])$")
#: Below this many characters trafilatura has found no main content (its own threshold, ``MIN_EXTRACTED_SIZE``)
#: and rescues the page by flattening all its text into one paragraph, headings and all; such a page is small
#: and read whole instead, which keeps its structure.
MIN_MAIN_CHARS = 250


def load(path: Path) -> Document:
    soup = BeautifulSoup(decode_text(path.read_bytes(), path), "html.parser")
    title = page_title(soup)
    remove_furniture(soup)
    blocks = main_content(str(soup)) or whole_body(soup)
    sections: list[Section] = []
    trail = HeadingTrail()
    for level, text in blocks:
        if level:
            trail.enter(level, text)
        else:
            sections.append(Section(text=text, heading=trail.context))
    metadata = build_metadata(read_sidecar(path), path, fallback_title=trail.first or title or path.stem)
    headings = tuple(Heading(text) for text in trail.seen)
    return Document(path=path, file_type="html", metadata=metadata, sections=tuple(sections), headings=headings)


def page_title(soup: BeautifulSoup) -> str:
    """The page's ``<title>``, else its ``og:title``."""
    if soup.title is not None:
        title = " ".join(soup.title.get_text(" ", strip=True).split())
        if title:
            return title
    og = soup.find("meta", attrs={"property": "og:title"})
    content = og.get("content") if isinstance(og, Tag) else None
    return " ".join(content.split()) if isinstance(content, str) else ""


def main_content(source: str) -> list[Block]:
    """The blocks trafilatura finds as the page's main content; empty when it finds none (or too little)."""
    extracted = trafilatura.extract(
        source,
        output_format="xml",
        include_tables=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        with_metadata=False,
        deduplicate=False,
    )
    if not extracted:
        return []
    try:
        root = ET.fromstring(extracted)
    except ET.ParseError:
        return []
    main = root.find("main")
    blocks = [block for block in _xml_blocks(main if main is not None else root) if block[1]]
    return blocks if sum(len(text) for _, text in blocks) >= MIN_MAIN_CHARS else []


def _xml_blocks(parent: ET.Element) -> Iterator[Block]:
    for element in parent:
        if element.tag == "head":
            rend = _HEADING_REND.match(element.get("rend", ""))
            yield (int(rend.group(1)) if rend else 2), _text(element)
        elif element.tag == "list":
            for item in element.iter("item"):
                yield 0, _text(item, skip=("list",))
        elif element.tag == "table":
            for row in element.iter("row"):
                cells = [_text(cell) for cell in row.iter("cell")]
                yield 0, " ; ".join(cell for cell in dict.fromkeys(cells) if cell)
        elif element.tag == "div":
            yield from _xml_blocks(element)
        elif element.tag != "graphic":
            yield 0, _text(element)


def _text(element: ET.Element, skip: tuple[str, ...] = ()) -> str:
    """The element's text with its line breaks (``<lb/>``) as newlines; nested ``skip`` elements left out."""
    parts: list[str] = []

    def walk(node: ET.Element) -> None:
        parts.append(node.text or "")
        for child in node:
            if child.tag == "lb":
                parts.append("\n")
            elif child.tag not in skip:
                walk(child)
            parts.append(child.tail or "")

    walk(element)
    return repair_hyphens("".join(parts))


def remove_furniture(soup: BeautifulSoup) -> None:
    """Drop scripts, navigation, the page's header and footer, cookie and consent boxes, skip links, share bars."""
    for tag in soup(list(_DROP)):
        tag.decompose()
    for tag in soup(list(_PAGE_FRAME)):
        if tag.find_parent(("article", "main")) is None:
            tag.decompose()
    for tag in [t for t in soup.find_all(True) if _is_furniture(t)]:
        if not tag.decomposed:
            tag.decompose()


def whole_body(soup: BeautifulSoup) -> list[Block]:
    """Every heading and text block of a page cleaned by :func:`remove_furniture`; else its lines of text."""
    root = soup.find("main") or soup.find("article") or soup.body or soup
    if not isinstance(root, Tag):
        return []
    for br in root.find_all("br"):
        br.replace_with("\n")
    blocks: list[Block] = []
    for element in root.find_all([*_HEADINGS, *_BLOCKS]):
        if element.find_parent(_BLOCKS) is not None:
            continue  # text inside a nested block is taken with its outer block
        text = repair_hyphens(element.get_text(" "))
        if text:
            blocks.append((int(element.name[1]) if element.name in _HEADINGS else 0, text))
    if not blocks:  # text straight in <div>s or <body>: every line of it, never nothing
        lines = (repair_hyphens(line) for line in root.get_text("\n").split("\n"))
        blocks = [(0, line) for line in lines if line]
    return blocks


def _is_furniture(tag: Tag) -> bool:
    if tag.name in ("html", "body", "main", "article"):
        return False
    if tag.name == "a" and str(tag.get("href") or "").startswith("#") and _SKIP_LINK.search(tag.get_text(" ")):
        return True
    names = [*tag.get_attribute_list("class"), tag.get("id") or ""]
    return any(isinstance(name, str) and _FURNITURE.fullmatch(name) for name in names)
