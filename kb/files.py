"""Files written so that a crash leaves either the old or the new content, never a mix; and file hashes.

An atomic write goes to a hidden temporary name beside the target, is flushed to disk (``fsync``), renamed over
the target (``os.replace``, atomic on POSIX) and then the folder itself is flushed, so that the rename survives a
power cut too. Every part of the program that replaces a file in place writes it this way.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

#: How a caller that cannot hand over bytes writes the file itself (e.g. ``faiss.write_index``): it gets the
#: temporary path to write to.
Writer = Callable[[Path], None]


def write_atomic(path: Path, content: str | bytes | Writer) -> None:
    """Replace ``path`` with ``content`` (text as UTF-8, bytes, or a :data:`Writer`) atomically and durably."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if callable(content):
            content(tmp)
        else:
            with open(tmp, "wb") as handle:
                handle.write(content.encode("utf-8") if isinstance(content, str) else content)
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's content (for a folder: its entries, i.e. renames into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex; read in blocks, so a large file costs no memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
