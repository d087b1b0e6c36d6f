"""Uploaded files: the type is decided by the content (not the name), and files are kept under the sha256 of
their bytes in ``KB_DATA_DIR/files`` (written to a hidden temporary name, fsynced, then renamed).

With PostgreSQL (``KB_DATABASE_URL``) the files are also kept in the database (:class:`UploadFiles` over the
store's :class:`~kb.curation.store.SharedFiles`), and ``KB_DATA_DIR/files`` is each replica's local copy, written
from the database whenever a replica needs a file it lacks (to ingest it again, or before ``kb ingest``).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from kb.errors import CurationError, UnsupportedFileError, UploadTooLargeError
from kb.files import write_atomic

if TYPE_CHECKING:
    from kb.curation.store import SharedFiles

_NAMED = {".pdf": "PDF", ".docx": "Word (.docx)", ".md": "Markdown", ".markdown": "Markdown"}
_NAMED |= {".odt": "OpenDocument text (.odt)", ".pptx": "PowerPoint (.pptx)"}
_NAMED |= {".txt": "text", ".text": "text", ".html": "HTML", ".htm": "HTML"}
_NAMED |= {".png": "PNG image", ".jpg": "JPEG image", ".jpeg": "JPEG image", ".tif": "TIFF image"}
_NAMED |= {".tiff": "TIFF image"}
#: Images (read by OCR) by their first bytes.
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)
_SAME_TYPE = {".jpeg": ".jpg", ".tiff": ".tif"}
_TEXT_SUFFIXES = {".md": ".md", ".markdown": ".md", ".txt": ".txt", ".text": ".txt", ".html": ".html"}
_TEXT_SUFFIXES[".htm"] = ".html"
SUPPORTED = (
    "PDF, Word (.docx), OpenDocument text (.odt), PowerPoint (.pptx), Markdown, text, HTML or an image "
    "(PNG, JPEG, TIFF)"
)
#: Office files are zip archives; a part only that format has tells them apart (a .docx renamed .odt is a .docx).
_ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"
_BINARY_SUFFIXES = (".pdf", ".docx", ".odt", ".pptx", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class StoredUpload:
    path: Path
    sha256: str
    suffix: str


def display_name(filename: str) -> str:
    """The last part of a client-sent file name, without folders (``../../x.pdf`` → ``x.pdf``)."""
    name = PurePath(filename.replace("\\", "/")).name.strip()
    return "".join(ch for ch in name if ch.isprintable())[:200] or "upload"


def check_size(data: bytes, filename: str, max_mb: int) -> None:
    if len(data) > max_mb * 1024 * 1024:
        raise UploadTooLargeError(
            f"The file {filename!r} is larger than {max_mb} MB (KB_MAX_UPLOAD_MB); split it or ask the "
            "administrator to raise the limit."
        )
    if not data:
        raise CurationError(f"The file {filename!r} is empty (0 bytes).")


def detect_suffix(data: bytes, filename: str) -> str:
    """The suffix our loaders need for this content; the name's own suffix only chooses among text formats."""
    suffix = PurePath(filename).suffix.lower()
    claimed = _NAMED.get(suffix)
    head = data[:1024]
    if b"%PDF-" in head:
        found = ".pdf"
    elif data.startswith(b"PK\x03\x04") and (office := _office_suffix(data)):
        found = office
    elif image := next((s for magic, s in _IMAGE_MAGIC if data.startswith(magic)), ""):
        found = image
    elif data.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnsupportedFileError(
            f"The file {filename!r} is an old Word (.doc) or Office file; save it as .docx or PDF and upload that."
        )
    elif _looks_like_text(data):
        lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if lowered.startswith((b"<!doctype html", b"<html")):
            found = ".html"
        else:
            found = _TEXT_SUFFIXES.get(suffix, ".txt")
    else:
        raise UnsupportedFileError(
            f"The file {filename!r} is not a {SUPPORTED} file (its content is binary data of another kind)."
        )
    if suffix in _BINARY_SUFFIXES and found != _SAME_TYPE.get(suffix, suffix):
        article = "an" if str(claimed)[:1] in "AEIOU" else "a"
        raise UnsupportedFileError(
            f"The file {filename!r} is named like {article} {claimed} file, but its content is not {article} "
            f"{claimed} ({'text' if found in ('.txt', '.md', '.html') else _NAMED[found]}); upload the real file."
        )
    return found


def _office_suffix(data: bytes) -> str:
    """ ".docx", ".odt" or ".pptx" when the zip archive ``data`` is one of them, else ""."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names:
                return ".docx"
            if "ppt/presentation.xml" in names:
                return ".pptx"
            mimetype = archive.getinfo("mimetype") if "mimetype" in names else None
            if mimetype and mimetype.file_size < 256 and archive.read(mimetype).strip() == _ODT_MIMETYPE:
                return ".odt"
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, RuntimeError):
        pass
    return ""


def _looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark
        return True
    if b"\x00" in sample:
        return False
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls <= len(sample) // 100


def store(data: bytes, folder: Path, suffix: str) -> StoredUpload:
    """Write ``data`` as ``<sha256><suffix>`` in ``folder`` (atomically; an existing copy is kept)."""
    digest = hashlib.sha256(data).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}{suffix}"
    if not path.is_file():
        write_atomic(path, data)
    return StoredUpload(path, digest, suffix)


def content_key(data: bytes, suffix: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}{suffix}"


class UploadFiles:
    """The uploaded files of an installation: ``folder`` (``KB_DATA_DIR/files``) on this machine, and ``shared``
    where every replica finds them (None: this machine's folder is the only copy)."""

    def __init__(self, folder: Path, shared: SharedFiles | None = None) -> None:
        self.folder, self.shared = folder, shared

    def store(self, data: bytes, suffix: str) -> StoredUpload:
        """Keep ``data`` here and, when shared, in the shared place (first: a replica may ingest it at once)."""
        stored_name = content_key(data, suffix)
        if self.shared is not None:
            self.shared.put_file(stored_name, data)
        return store(data, self.folder, suffix)

    def local(self, name: str) -> Path | None:
        """The file ``name`` on this machine, written from the shared place if it is only there; None if it is
        nowhere (or the shared copy does not match its hash)."""
        path = self.folder / name
        if path.is_file():
            return path
        if self.shared is None or not _safe_name(name):
            return None
        data = self.shared.file(name)
        if data is None or not name.startswith(hashlib.sha256(data).hexdigest()):
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        return path

    def remove(self, name: str) -> None:
        """Delete the file here and in the shared place (a purge, or an upload that could not be ingested)."""
        if _safe_name(name):
            (self.folder / name).unlink(missing_ok=True)
        if self.shared is not None:
            self.shared.delete_file(name)

    def sync(self) -> int:
        """Write every shared file this machine lacks into ``folder``; returns how many were written."""
        if self.shared is None:
            return 0
        missing = [n for n in self.shared.file_names() if _safe_name(n) and not (self.folder / n).is_file()]
        return sum(self.local(name) is not None for name in missing)


def _safe_name(name: str) -> bool:
    """A stored file's name, never a path (the names come from the database)."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")
