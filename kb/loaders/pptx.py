"""PowerPoint presentations (.pptx): a slide is a page, read with the standard library.

Slides come in the order of the presentation (``ppt/presentation.xml``), not of the part names. A slide's title
(its title placeholder) is the heading of its text, as a Word heading is; its other text boxes, tables (a row per
section, cells joined with " ; " as in Word files) and grouped shapes follow in the slide's order. Slide numbers,
dates and footers are left out, like the running lines of a PDF.

Speaker notes are read as text of their slide, after the slide's own text and under the same heading: presenters
write there what the bullet points only hint at, and a hit in them should lead to that slide.

An empty slide stays a page without text, so that page numbers are the slide numbers people see.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

from kb.documents import Document, Heading, Section
from kb.errors import LoaderError
from kb.loaders.metadata import build_metadata, read_sidecar
from kb.loaders.package import Package, clean

KIND = "PowerPoint (.pptx)"
PRESENTATION = "ppt/presentation.xml"
_TITLES = frozenset({"title", "ctrTitle"})
#: Placeholders whose text repeats on every slide or says nothing about it.
_SKIPPED_PLACEHOLDERS = frozenset({"sldNum", "dt", "ftr", "hdr", "sldImg"})
#: Titles PowerPoint writes into a new file's properties; they say nothing about this one.
_DEFAULT_TITLES = frozenset({"powerpoint presentation", "powerpoint-präsentation", "powerpoint-presentation"})
_NOTES_SLIDE = "/notesSlide"


def load(path: Path) -> Document:
    with Package(path, KIND) as package:
        slides = _slide_parts(package)
        core_title = _core_title(package.xml("docProps/core.xml")) if package.has("docProps/core.xml") else ""
        sections: list[Section] = []
        headings: list[Heading] = []
        for number, part in enumerate(slides, start=1):
            title, texts = _slide_text(package, part)
            if title:
                headings.append(Heading(title, number))
            sections.extend(Section(text=text, heading=title, page=number) for text in texts)
    if core_title.lower() in _DEFAULT_TITLES:
        core_title = ""
    title = core_title or (headings[0].text if headings else "") or path.stem
    metadata = build_metadata(read_sidecar(path), path, fallback_title=title)
    return Document(
        path=path,
        file_type="pptx",
        metadata=metadata,
        sections=tuple(sections),
        pages=len(slides),
        headings=tuple(headings),
    )


def _local(tag: str) -> str:
    """The name of an element or attribute without its namespace (Transitional and Strict files differ there)."""
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (child for child in element if _local(child.tag) == name)


def _relationships(package: Package, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id → (type, target part) of ``part``, from its ``_rels/*.rels``."""
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", f"{name}.rels")
    if not package.has(rels):
        return {}
    out: dict[str, tuple[str, str]] = {}
    for rel in package.xml(rels):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External" or not target:
            continue
        resolved = (
            target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        )
        out[rel.get("Id", "")] = (rel.get("Type", ""), resolved)
    return out


def _slide_parts(package: Package) -> list[str]:
    """The slide parts in the order of the presentation's slide list."""
    presentation = package.xml(PRESENTATION)
    rels = _relationships(package, PRESENTATION)
    parts: list[str] = []
    for slide_list in _children(presentation, "sldIdLst"):
        for slide in _children(slide_list, "sldId"):
            rid = next((v for k, v in slide.attrib.items() if _local(k) == "id" and k.startswith("{")), "")
            if rid not in rels:
                raise LoaderError(str(package.path), f"damaged {KIND} file: slide {rid or '?'} has no part")
            parts.append(rels[rid][1])
    return parts


def _core_title(core: ET.Element) -> str:
    return next((clean(el.text or "") for el in core if _local(el.tag) == "title"), "")


def _slide_text(package: Package, part: str) -> tuple[str, list[str]]:
    """The slide's title and its texts (paragraphs and table rows, then the speaker notes)."""
    title_parts: list[str] = []
    texts: list[str] = []
    for kind, text in _shapes(package.xml(part)):
        (title_parts if kind in _TITLES else texts).append(text)
    notes = next(
        (t for rel_type, t in _relationships(package, part).values() if rel_type.endswith(_NOTES_SLIDE)), ""
    )
    if notes and package.has(notes):
        texts += [text for kind, text in _shapes(package.xml(notes)) if kind == "body"]
    return " ".join(title_parts), texts


def _shapes(element: ET.Element) -> Iterator[tuple[str, str]]:
    """(placeholder type, text) of each paragraph and table row, in the order of the shape tree; a text box
    that is no placeholder counts as a body text."""
    for child in element:
        name = _local(child.tag)
        if name == "sp":
            kind = _placeholder(child)
            if kind in _SKIPPED_PLACEHOLDERS:
                continue
            for body in _children(child, "txBody"):
                for paragraph in _children(body, "p"):
                    text = _paragraph(paragraph)
                    if text:
                        yield kind, text
        elif name == "tbl":
            for row in _children(child, "tr"):
                cells = [" ".join(_paragraph(p) for p in cell.iter() if _local(p.tag) == "p") for cell in row]
                line = " ; ".join(c for c in dict.fromkeys(clean(c) for c in cells) if c)
                if line:
                    yield "body", line
        elif name == "AlternateContent":  # the same content for newer and older readers: read it once
            yield from _shapes(next(iter(child), child))
        else:  # the slide, its shape tree, groups, graphic frames and their graphic data
            yield from _shapes(child)


def _placeholder(shape: ET.Element) -> str:
    """The placeholder type of a shape ("body" for a placeholder without one, or for a free text box)."""
    for properties in _children(shape, "nvSpPr"):
        for non_visual in _children(properties, "nvPr"):
            for placeholder in _children(non_visual, "ph"):
                return placeholder.get("type", "body")
    return "body"


def _paragraph(paragraph: ET.Element) -> str:
    """The text of a DrawingML paragraph: its runs and fields joined, a line break as a space."""
    parts: list[str] = []
    for element in paragraph.iter():
        name = _local(element.tag)
        if name == "t":
            parts.append(element.text or "")
        elif name == "br":
            parts.append(" ")
    return clean("".join(parts))
