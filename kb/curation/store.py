"""Where the curation data lives, chosen in this one place: SQLite in ``KB_DATA_DIR`` (:mod:`kb.curation.db`), or
PostgreSQL when ``KB_DATABASE_URL`` is set (:mod:`kb.curation.pg_db`), so that every replica on that database
shares the keys, login sessions, curated metadata, exclusions, the audit log and the uploaded files.

Both satisfy :class:`CurationStore` (and their transactions :class:`CurationChanges`); keys, sessions, the
Curator and the CLI speak only to these protocols.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from kb.curation.db import ApiKey, AuditEntry, CurationData, CurationDB
from kb.settings import Settings


class CurationChanges(Protocol):
    """The changes that can be made inside one :meth:`CurationStore.transaction` (all or none of them)."""

    def add_key(self, key_id: str, digest: str, role: str, district: str, label: str) -> None: ...
    def revoke_key(self, key_id: str) -> None: ...
    def add_session(self, digest: str, key_id: str, csrf: str, expires_at: str) -> None: ...
    def end_session(self, digest: str) -> None: ...
    def end_sessions(self, *, expired_before: str = "", key_id: str = "") -> None: ...
    def add_upload(self, key: str, doc_id: str, metadata: dict[str, Any], actor: str) -> None: ...
    def curated(self, doc_id: str) -> dict[str, Any]: ...
    def set_curated(self, key: str, doc_id: str, metadata: dict[str, Any], actor: str) -> None: ...
    def forget(self, key: str) -> None: ...
    def exclude(self, key: str, doc_id: str, actor: str) -> None: ...
    def audit(
        self,
        actor: str,
        action: str,
        doc_id: str = "",
        title: str = "",
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        note: str = "",
    ) -> None: ...
    def unaudit_last(self, doc_id: str, action: str) -> None: ...


class SharedFiles(Protocol):
    """Uploaded files kept where every replica finds them (``<sha256><suffix>`` → bytes)."""

    def put_file(self, name: str, data: bytes) -> None: ...
    def file(self, name: str) -> bytes | None: ...
    def delete_file(self, name: str) -> None: ...
    def file_names(self) -> list[str]: ...


class CurationStore(Protocol):
    """The curation data: read methods, one transaction for changes, and the uploaded files if they are shared.

    It is also the ingestion's :class:`~kb.ingest.CuratedOverrides` (:meth:`overrides`, :meth:`excluded`)."""

    def close(self) -> None: ...
    def transaction(self) -> AbstractContextManager[CurationChanges]: ...
    def overrides(self) -> dict[str, dict[str, Any]]: ...
    def record(self, doc_id: str) -> tuple[str, dict[str, Any], bool] | None: ...
    def excluded(self) -> set[str]: ...
    def key(self, key_id: str) -> ApiKey | None: ...
    def keys(self) -> list[ApiKey]: ...
    def key_by_hash(self, digest: str) -> tuple[str, ApiKey] | None: ...
    def session(self, digest: str) -> tuple[str, str, str] | None: ...
    def audit(self, doc_id: str | None = None, limit: int = 100, offset: int = 0) -> list[AuditEntry]: ...
    def shared_files(self) -> SharedFiles | None: ...
    def dump(self) -> CurationData: ...
    def load(self, data: CurationData) -> None: ...


def open_curation(settings: Settings) -> CurationStore:
    """The curation data of this installation: PostgreSQL with ``KB_DATABASE_URL`` (shared by every replica),
    else ``KB_DATA_DIR/curation.sqlite`` (created on first use)."""
    if settings.database_url:
        from kb.curation.pg_db import PgCurationDB

        return PgCurationDB(settings.database_url)
    return CurationDB(settings.data_dir)


def open_existing_curation(settings: Settings) -> CurationStore | None:
    """As :func:`open_curation`, but None for a local installation that never created its database (ingestion
    without curation data must not create one)."""
    if settings.database_url:
        return open_curation(settings)
    return CurationDB.open_existing(settings.data_dir)


def prepare_ingestion(settings: Settings) -> CurationStore | None:
    """The curation data for ``kb ingest``, with every shared uploaded file this machine lacks written to
    ``KB_DATA_DIR/files`` first: uploads through another replica are ingested (and never taken for gone)."""
    from kb.curation.uploads import UploadFiles

    curation = open_existing_curation(settings)
    if curation is not None:
        UploadFiles(settings.uploads_dir, curation.shared_files()).sync()
    return curation
