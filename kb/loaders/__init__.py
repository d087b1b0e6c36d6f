"""Loaders turn one file into a :class:`~kb.documents.Document`; one module per format behind :func:`load`.

A file that cannot be read raises :class:`~kb.errors.LoaderError` with the path and a short reason a person
understands ("encrypted PDF", "no text layer (needs OCR)"); ingestion reports it and goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kb.documents import Document
from kb.errors import LoaderError
from kb.loaders import docx, html, image, markdown, odt, pdf, pptx, text

Loader = Callable[[Path], Document]

LOADERS: dict[str, Loader] = {
    ".pdf": pdf.load,
    ".md": markdown.load,
    ".markdown": markdown.load,
    ".txt": text.load,
    ".text": text.load,
    ".docx": docx.load,
    ".odt": odt.load,
    ".pptx": pptx.load,
    ".html": html.load,
    ".htm": html.load,
    **dict.fromkeys(image.FORMATS, image.load),
}
SUPPORTED_SUFFIXES = tuple(sorted(LOADERS))


def load(path: Path) -> Document:
    """Load ``path`` with the loader for its type; every failure becomes a :class:`LoaderError`."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoaderError(
            str(path),
            f"unsupported file type '{path.suffix or '(none)'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})",
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoaderError(str(path), f"cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise LoaderError(str(path), "empty file (0 bytes)")
    try:
        document = loader(path)
    except LoaderError:
        raise
    except MemoryError:
        raise LoaderError(str(path), "too large to read into memory") from None
    except Exception as exc:  # a third-party parser failing in an unforeseen way must not stop the batch
        raise LoaderError(str(path), f"cannot be read: {type(exc).__name__}: {exc}") from exc
    if document.word_count == 0:
        raise LoaderError(str(path), "contains no text")
    return document


__all__ = ["SUPPORTED_SUFFIXES", "load"]
