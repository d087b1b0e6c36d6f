"""Moving the curation data between a local installation (``KB_DATA_DIR``: ``curation.sqlite`` and ``files/``) and
PostgreSQL, with ``kb db import-local --data-dir`` and ``kb db export-local --data-dir`` (the index itself moves
through :mod:`kb.storage.transfer`). Every row moves as it is (key hashes, sessions, the audit log with its ids
and times), and the target's curation data is replaced, as the index is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from kb.curation.db import DB_FILE, CurationDB
from kb.curation.store import CurationStore
from kb.errors import ConfigError
from kb.files import write_atomic

#: The name of a stored upload: the sha256 of its bytes and the suffix its type was detected as.
_STORED_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z]{1,8}$")


@dataclass(frozen=True)
class Moved:
    """How much curation data was moved."""

    keys: int
    records: int
    excluded: int
    audit: int
    files: int

    def line(self) -> str:
        return (
            f"curation data: {self.keys} API key(s), {self.records} curated document(s), {self.excluded} "
            f"exclusion(s), {self.audit} audit entries, {self.files} uploaded file(s)"
        )


def import_local(data_dir: Path, target: CurationStore) -> Moved:
    """Replace ``target``'s curation data by the local installation's in ``data_dir`` (files included)."""
    source = CurationDB.open_existing(data_dir)
    if source is None:
        raise ConfigError(
            f"There is no curation database {data_dir / DB_FILE}; name the KB_DATA_DIR of the local installation "
            "with --data-dir (the folder holding curation.sqlite and files/)."
        )
    shared = target.shared_files()
    if shared is None:
        raise ConfigError("The target keeps its uploaded files locally; import into the PostgreSQL database.")
    try:
        data = source.dump()
    finally:
        source.close()
    target.load(data)
    files = 0
    folder = data_dir / "files"
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not _STORED_NAME.match(path.name) or not path.is_file():
            continue
        content = path.read_bytes()
        if path.name.startswith(hashlib.sha256(content).hexdigest()):  # a damaged copy is not spread further
            shared.put_file(path.name, content)
            files += 1
    return Moved(len(data.keys), len(data.records), len(data.excluded), len(data.audit), files)


def export_local(source: CurationStore, data_dir: Path) -> Moved:
    """Write ``source``'s curation data into ``data_dir`` as a local installation's (``curation.sqlite``,
    replaced, and ``files/``)."""
    data = source.dump()
    target = CurationDB(data_dir)
    try:
        target.load(data)
    finally:
        target.close()
    files = 0
    shared = source.shared_files()
    if shared is not None:
        folder = data_dir / "files"
        folder.mkdir(parents=True, exist_ok=True)
        for name in shared.file_names():
            content = shared.file(name)
            if content is not None and _STORED_NAME.match(name):
                write_atomic(folder / name, content)
                files += 1
    return Moved(len(data.keys), len(data.records), len(data.excluded), len(data.audit), files)
