"""KI-Wissensbasis: semantic search over the materials of the Kommunale Integrationszentren in NRW.

The public API is small: settings, ingestion, search, curation and the errors.

>>> from kb import Settings, Ingestor, Searcher
>>> settings = Settings(corpus_dir="corpus", index_dir="index")
>>> Ingestor(settings).run()                                   # doctest: +SKIP
>>> Searcher(settings).search("Elterncafé an Grundschulen").hits   # doctest: +SKIP

``Ingestor(settings)`` ingests the files as they are. On an installation with curation data, pass the curated
metadata and purges as ``kb ingest`` does, or a purged file would be ingested again:
``Ingestor(settings, curation=CurationDB.open_existing(settings.data_dir))`` (``kb.curation.db``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name lives. They are imported on first use, so that importing one module of the package
#: (the file reader process imports only ``kb.loaders``) does not import all of it.
_HOMES = {
    "Curator": "kb.curation.service",
    "UploadResult": "kb.curation.service",
    "Ingestor": "kb.ingest",
    "IngestReport": "kb.ingest",
    "Hit": "kb.search",
    "Searcher": "kb.search",
    "SearchResult": "kb.search",
    "Settings": "kb.settings",
    "get_settings": "kb.settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name) or ("kb.errors" if name.endswith("Error") and name in __all__ else None)
    if home is None:
        raise AttributeError(f"module 'kb' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


#: The one place the version is written (pyproject.toml reads it; CHANGELOG.md says what each version holds).
__version__ = "0.2.0"

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
