"""The ONNX int8 encoder against the torch one, the KB_ENCODER setting, the export and the query cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kb.embedder import Embedder
from kb.onnx_encoder import MODEL_FILE, onnx_folder, prepare_onnx_model
from kb.settings import Settings

SENTENCES = [
    "Wie beantrage ich Kindergeld für mein Kind?",
    "Çocuk parası için nasıl başvurabilirim?",
    "كيف أتقدم بطلب للحصول على إعانة الأطفال؟",
    "Як подати заяву на допомогу на дітей?",
    "Ältere Menschen mit Demenz verlieren oft zuerst die später gelernte Sprache Deutsch.",
]


@pytest.fixture(scope="module")
def torch_embedder(model_dir: Path) -> Embedder:
    return Embedder(Settings(encoder="torch", query_cache_size=0))


@pytest.fixture(scope="module")
def onnx_embedder(model_dir: Path) -> Embedder:
    return Embedder(Settings(encoder="onnx-int8", query_cache_size=0))


def test_onnx_int8_vectors_agree_with_torch(torch_embedder: Embedder, onnx_embedder: Embedder) -> None:
    for encode in ("encode_queries", "encode_documents"):
        reference = getattr(torch_embedder, encode)(SENTENCES)
        fast = getattr(onnx_embedder, encode)(SENTENCES)
        assert fast.shape == reference.shape == (len(SENTENCES), 384)
        assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
        assert (fast * reference).sum(axis=1).min() >= 0.98


def test_onnx_keeps_input_order_when_batching_by_length(onnx_embedder: Embedder) -> None:
    texts = ["kurz", SENTENCES[4] * 3, "mittel lang hier", SENTENCES[0]]
    batched = onnx_embedder.encode_documents(texts, batch_size=2)
    for i, text in enumerate(texts):
        alone = onnx_embedder.encode_documents([text])[0]
        assert float(batched[i] @ alone) > 0.99


def test_setting_selects_the_encoder(model_dir: Path) -> None:
    assert Embedder(Settings(encoder="torch")).encoder == "torch"
    embedder = Embedder(Settings(encoder="onnx-int8"))
    assert embedder.dimension == 384
    assert embedder._onnx is not None and embedder._model is None  # the torch model was never loaded


def test_export_is_reused_and_in_a_separate_folder(model_dir: Path, onnx_embedder: Embedder) -> None:
    _ = onnx_embedder.dimension
    folder = onnx_folder(model_dir)
    assert folder != model_dir and (folder / MODEL_FILE).is_file()
    mtime = os.stat(folder / MODEL_FILE).st_mtime_ns
    assert prepare_onnx_model(model_dir) == folder
    assert os.stat(folder / MODEL_FILE).st_mtime_ns == mtime
    assert not list(folder.parent.glob(f".{folder.name}.tmp-*"))  # no half-written export left behind


def test_repeated_queries_come_from_the_cache(model_dir: Path) -> None:
    embedder = Embedder(Settings(query_cache_size=2))
    first = embedder.encode_queries(["Kindergeld beantragen"])
    embedder._encode_queries = None  # type: ignore[assignment,method-assign]  # any model call would fail now
    again = embedder.encode_queries(["Kindergeld beantragen"])
    assert np.array_equal(first, again)
    again[0, 0] = 42.0  # callers get a copy
    assert embedder.encode_queries(["Kindergeld beantragen"])[0, 0] != 42.0


def test_query_cache_is_bounded(model_dir: Path) -> None:
    embedder = Embedder(Settings(query_cache_size=2))
    embedder.encode_queries(["eins", "zwei", "drei"])
    assert list(embedder._cache) == ["zwei", "drei"]
