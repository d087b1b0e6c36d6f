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
    ├── QueryError           a search request is not valid (empty, too long, k out of range)
    └── NotFoundError        a document id that does not exist
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


class QueryError(KBError):
    exit_code = 2
    status_code = 422


class NotFoundError(KBError):
    exit_code = 7
    status_code = 404
