"""KI-Wissensbasis: semantic search over the materials of the Kommunale Integrationszentren in NRW.

The public API is small: settings, ingestion, search, the app factory and the errors.

>>> from kb import Settings, Ingestor, Searcher
>>> settings = Settings(corpus_dir="corpus", index_dir="index")
>>> Ingestor(settings).run()                                   # doctest: +SKIP
>>> Searcher(settings).search("Elterncafé an Grundschulen").hits   # doctest: +SKIP
"""

from kb.errors import (
    ConfigError,
    IndexMissingError,
    IndexUnavailableError,
    IngestLockedError,
    KBError,
    LoaderError,
    ModelError,
    NotFoundError,
    QueryError,
)
from kb.ingest import Ingestor, IngestReport
from kb.search import Hit, Searcher, SearchResult
from kb.settings import Settings, get_settings

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
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
    "__version__",
    "get_settings",
]
