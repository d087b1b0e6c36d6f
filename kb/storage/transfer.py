"""Moving an installation's live version between storage engines without encoding anything again.

Every document is read from a :class:`kb.storage.StorageReader` (its metadata, its text by page and headings, its
chunks and their stored vectors) and put into a writer of another engine, which publishes it as one new version
(``kb db import-local`` and ``kb db export-local``). BM25 and near-duplicates are derived again by the target's
writer from the rows, as after any write. Chunk ids are the target's own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from kb.documents import Chunk, Document, Heading, Section
from kb.index import Manifest
from kb.storage import Storage, StorageReader, StoredDocument


def _document(stored: StoredDocument, source: StorageReader) -> Document:
    """The document as its loader gave it, rebuilt from its stored text by page (one section per page)."""
    text = source.document_text(stored.id)
    assert text is not None  # every document of a version has its text (or the version raised above)
    paged = stored.pages is not None
    return Document(
        path=Path(stored.path),
        file_type=stored.file_type,
        metadata=stored.metadata,
        sections=tuple(Section(p.text, page=p.page if paged else None, ocr=p.ocr) for p in text.pages),
        pages=stored.pages,
        headings=tuple(Heading(h.text, h.page if paged else None) for h in text.headings),
    )


def copy_version(
    source: StorageReader, target: Storage, *, progress: Callable[[int, int], None] | None = None
) -> Manifest:
    """Publish ``source``'s documents as the next version of ``target`` (which starts from nothing); the caller
    holds ``target``'s lock. ``progress(done, total)`` after each document."""
    manifest = source.manifest
    writer = target.open_writer(model=manifest.model, dimension=lambda: manifest.dimension, rebuild=True)
    try:
        total = len(source.documents)
        for done, stored in enumerate(source.documents.values(), 1):
            chunks = source.chunks_of(stored.id)
            ids = writer.put_document(
                stored.id,
                stored.key,
                stored.content_hash,
                _document(stored, source),
                [Chunk(c.ordinal, c.text, c.heading, c.page, c.page_end) for c in chunks],
            )
            if ids:
                vectors = np.stack([source.vectors.reconstruct(c.id) for c in chunks])
                writer.add_vectors(ids, vectors)
            if progress is not None:
                progress(done, total)
        return writer.publish(model=manifest.model, chunking=manifest.chunking, encoder=manifest.encoder)
    except BaseException:
        writer.discard()
        raise
