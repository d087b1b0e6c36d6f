"""Plain text: the encoding is detected, never guessed silently; binary data is refused."""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

from kb.documents import Document, Section
from kb.errors import LoaderError
from kb.loaders.hyphens import repair_hyphens
from kb.loaders.metadata import build_metadata, read_sidecar

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, path: Path) -> str:
    """Decode bytes of a text file: BOM, then UTF-8, then detection; binary data raises :class:`LoaderError`."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:4096] and not _looks_like_utf16(data):
        raise LoaderError(str(path), "binary data, not text")
    best = from_bytes(data).best()
    if best is None or best.chaos > 0.3:
        raise LoaderError(str(path), "unreadable text encoding (save it as UTF-8 and ingest again)")
    return str(best)


def _looks_like_utf16(data: bytes) -> bool:
    head = data[:4096]
    return head[1::2].count(0) > len(head) * 0.4 or head[0::2].count(0) > len(head) * 0.4


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs with inner whitespace folded and words broken at line ends joined."""
    blocks = text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n")
    return [repair_hyphens(b) for b in blocks if b.strip()]


def load(path: Path) -> Document:
    content = decode_text(path.read_bytes(), path)
    paras = paragraphs(content)
    first = paras[0] if paras and len(paras[0].split()) <= 15 else ""
    metadata = build_metadata(read_sidecar(path), path, fallback_title=first or path.stem)
    return Document(path=path, file_type="text", metadata=metadata, sections=tuple(Section(text=p) for p in paras))
