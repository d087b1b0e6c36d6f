"""Word documents (.docx): paragraphs in order, heading styles as section context, tables row by row."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx as python_docx
from docx.document import Document as DocxDocument

from kb.documents import Document, Heading, Section
from kb.errors import LoaderError
from kb.loaders.headings import HeadingTrail
from kb.loaders.hyphens import repair_hyphens
from kb.loaders.metadata import build_metadata, read_sidecar

#: An archive that unpacks to more than this is refused (a "zip bomb" disguised as a Word file).
MAX_UNPACKED_BYTES = 200 * 1024 * 1024


def load(path: Path) -> Document:
    _check_archive(path)
    try:
        doc: DocxDocument = python_docx.Document(str(path))
    except Exception as exc:
        raise LoaderError(str(path), f"not a readable Word (.docx) file ({type(exc).__name__})") from exc
    sections: list[Section] = []
    trail = HeadingTrail()
    for para in doc.paragraphs:
        text = repair_hyphens(para.text)
        if not text:
            continue
        level = _heading_level(para.style.name if para.style is not None else "")
        if level:
            trail.enter(level, text)
            continue
        sections.append(Section(text=text, heading=trail.context))
    for table in doc.tables:
        for row in table.rows:
            cells = [repair_hyphens(c.text) for c in row.cells]
            line = " ; ".join(c for c in dict.fromkeys(cells) if c)
            if line:
                sections.append(Section(text=line, heading=trail.context))
    title = (doc.core_properties.title or "").strip() or trail.first or path.stem
    metadata = build_metadata(read_sidecar(path), path, fallback_title=title)
    headings = tuple(Heading(text) for text in trail.seen)
    return Document(path=path, file_type="docx", metadata=metadata, sections=tuple(sections), headings=headings)


def _heading_level(style: str) -> int:
    name = style.lower()
    if name == "title":
        return 1
    for prefix in ("heading ", "überschrift "):
        if name.startswith(prefix) and name[len(prefix) :].strip().isdigit():
            return int(name[len(prefix) :])
    return 0


def _check_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise LoaderError(
            str(path), "not a Word (.docx) file (not a zip archive; old .doc files are not supported)"
        ) from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise LoaderError(str(path), f"archive unpacks to {unpacked // 2**20} MB, refusing to open (zip bomb?)")
