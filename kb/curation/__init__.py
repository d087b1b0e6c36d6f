"""Curation by the coordinating office: API keys and roles, uploads, metadata changes, retirement, the audit log.

Everything here lives in ``KB_DATA_DIR`` (``curation.sqlite`` and ``files/``), apart from the index: the index
can always be rebuilt from the corpus folder plus this data; this data itself is never generated, so keep a
backup of ``KB_DATA_DIR``.

- :mod:`kb.curation.db` the database and all SQL on it (keys, curated metadata, exclusions, the audit log);
  :mod:`kb.curation.keys` keys, roles and principals; :mod:`kb.curation.uploads` file types and storage;
  :mod:`kb.curation.service` the :class:`~kb.curation.service.Curator` that ties them together.
"""
