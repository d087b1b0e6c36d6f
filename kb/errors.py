"""The errors of KI-Wissensbasis, in one tree.

Every message names the value that was wrong and says what to do about it. The edges convert them once:
the CLI prints one line and exits with the error's ``exit_code``; the API answers with ``status_code`` and the
message as ``detail``.

::

    KBError
    ├── ConfigError          a setting has a value that cannot work
    ├── ModelError           the embedding model cannot be prepared or loaded
    ├── StartingError        the service is still loading the model (try again shortly)
    ├── IndexUnavailableError          the index is missing, unreadable, or built with another model
    │   └── IndexMissingError    no index yet: run ``kb ingest``
    ├── IngestLockedError    another ingestion is running
    ├── LoaderError          one file cannot be read (reported per file; the batch goes on)
    ├── OcrError             an image cannot be read by OCR (too large, a timeout); the loader reports the page
    │   └── OcrUnavailableError  Tesseract or a language's data is not installed
    ├── QueryError           a search request is not valid (empty, too long, k out of range)
    ├── NotFoundError        a document id that does not exist
    ├── AuthError            no valid API key for a write (401)
    │   └── ForbiddenError       a valid key whose role or district does not allow this (403)
    ├── CurationError        an upload or metadata change that cannot be accepted (422)
    │   ├── UploadTooLargeError  the file is larger than KB_MAX_UPLOAD_MB (413)
    │   ├── UnsupportedFileError the content is not a format we read, or not what its name says (415)
    │   └── ConflictError        the same file is already stored (409)
    └── CurationUnavailableError  the curation data's PostgreSQL database cannot be reached (503)
    BackupError              a backup that cannot be taken or restored (damaged, unfinished, occupied target)
"""

from __future__ import annotations


class KBError(Exception):
    """Base of all errors this package raises on purpose."""

    exit_code: int = 1
    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(KBError):
    exit_code = 2
    status_code = 500


class ModelError(KBError):
    exit_code = 3
    status_code = 503


class StartingError(KBError):
    exit_code = 3
    status_code = 503


class IndexUnavailableError(KBError):
    exit_code = 4
    status_code = 503


class IndexMissingError(IndexUnavailableError):
    pass


class IngestLockedError(KBError):
    exit_code = 5
    status_code = 409


class LoaderError(KBError):
    """A file that cannot be turned into a document; ``reason`` is the short, user-facing cause."""

    exit_code = 6
    status_code = 422

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class OcrError(KBError):
    """An image that OCR cannot read (too large, a timeout, Tesseract failing on it)."""

    exit_code = 6
    status_code = 422


class OcrUnavailableError(OcrError):
    """Tesseract or the data of a language is missing; the message names it and the package to install."""

    exit_code = 2
    status_code = 503


class QueryError(KBError):
    exit_code = 2
    status_code = 422


class NotFoundError(KBError):
    exit_code = 7
    status_code = 404


class AuthError(KBError):
    """A write without a valid API key (``Authorization: Bearer <key>``)."""

    exit_code = 10
    status_code = 401


class ForbiddenError(AuthError):
    """A valid key whose role or district does not allow the operation."""

    status_code = 403


class CurationError(KBError):
    """An upload or metadata change that cannot be accepted; the message names the field or the file."""

    exit_code = 2
    status_code = 422


class UploadTooLargeError(CurationError):
    status_code = 413


class UnsupportedFileError(CurationError):
    status_code = 415


class ConflictError(CurationError):
    exit_code = 9
    status_code = 409


class CurationUnavailableError(KBError):
    """The database holding the curation data (``KB_DATABASE_URL``) cannot be reached; keys and sessions cannot
    be checked, so the request is answered 503, not 401."""

    exit_code = 4
    status_code = 503


class BackupError(KBError):
    """A backup that cannot be taken or restored: damaged, unfinished, or a target that is not empty."""

    exit_code = 11
    status_code = 500
