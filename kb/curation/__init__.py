"""Curation by the coordinating office: API keys and roles, uploads, metadata changes, retirement, the audit log.

Everything here lives in ``KB_DATA_DIR`` (``curation.sqlite`` and ``files/``), or with ``KB_DATABASE_URL`` in
PostgreSQL (shared by every replica), apart from the index: the index can always be rebuilt from the corpus
folder plus this data; this data itself is never generated, so keep a backup of it (``kb backup``).

- :mod:`kb.curation.store` the :class:`~kb.curation.store.CurationStore` protocol and the choice of database;
  :mod:`kb.curation.db` the SQLite database and all SQL on it (keys, curated metadata, exclusions, the audit log),
  :mod:`kb.curation.pg_db` its PostgreSQL twin (and the uploaded files), :mod:`kb.curation.transfer` moving the
  data between them;
  :mod:`kb.curation.keys` keys, roles and principals; :mod:`kb.curation.uploads` file types and storage;
  :mod:`kb.curation.service` the :class:`~kb.curation.service.Curator` that ties them together.
"""
