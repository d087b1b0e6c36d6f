"""KI-Wissensbasis: semantic search over the materials of the Kommunale Integrationszentren in NRW.

The public API is small: settings, ingestion, search, curation and the errors.

>>> from kb import Settings, Ingestor, Searcher
>>> settings = Settings(corpus_dir="corpus", index_dir="index")
>>> Ingestor(settings).run()                                   # doctest: +SKIP
>>> Searcher(settings).search("Elterncafé an Grundschulen").hits   # doctest: +SKIP
"""

from kb.curation.service import Curator, UploadResult
from kb.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    CurationError,
    ForbiddenError,
    IndexMissingError,
    IndexUnavailableError,
    IngestLockedError,
    KBError,
    LoaderError,
    ModelError,
    NotFoundError,
    QueryError,
    UnsupportedFileError,
    UploadTooLargeError,
)
from kb.ingest import Ingestor, IngestReport
from kb.search import Hit, Searcher, SearchResult
from kb.settings import Settings, get_settings

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "CurationError",
    "Curator",
    "ForbiddenError",
    "Hit",
    "IndexMissingError",
    "IndexUnavailableError",
    "IngestLockedError",
    "IngestReport",
    "Ingestor",
    "KBError",
    "LoaderError",
    "ModelError",
    "NotFoundError",
    "QueryError",
    "SearchResult",
    "Searcher",
    "Settings",
    "UnsupportedFileError",
    "UploadResult",
    "UploadTooLargeError",
    "__version__",
    "get_settings",
]
