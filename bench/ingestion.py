"""Ingestion speed against the raw encoder on the very same passages (the ratio to push towards 1)."""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.paths import GESETZE
from kb.chunking import passage_text
from kb.embedder import Embedder
from kb.evaluation import build_index, load_dataset
from kb.index import open_current
from kb.ingest import Ingestor
from kb.settings import Settings


def ingest_bundled(settings: Settings, embedder: Embedder, rounds: int) -> dict[str, Any]:
    """The bundled corpus through the real pipeline (``kb ingest``'s), then the raw encoder on its passages."""

    def pipeline(folder: Path) -> None:
        Ingestor(settings.model_copy(update={"index_dir": folder}), embedder).run()

    return interleaved_rounds(settings, embedder, pipeline, rounds)


def ingest_gesetze(settings: Settings, embedder: Embedder, rounds: int) -> dict[str, Any]:
    """The law passages (text only, as SOURCE.txt asks) as documents through the real index writer."""
    dataset = load_dataset(GESETZE)
    dataset = type(dataset)(dataset.name, {k: ("", t) for k, (_, t) in dataset.corpus.items()}, {}, {})

    def pipeline(folder: Path) -> None:
        build_index(dataset, settings.model_copy(update={"index_dir": folder}), embedder)

    return interleaved_rounds(settings, embedder, pipeline, rounds)


def interleaved_rounds(
    settings: Settings, embedder: Embedder, pipeline: Callable[[Path], None], rounds: int
) -> dict[str, Any]:
    """``rounds`` pairs of (pipeline into a fresh index, raw encoder on the passages it embedded), interleaved so
    that drift of the machine's speed hits both alike; the ratio is of the medians.

    The model is loaded and warmed up (one batch of full-length passages) first, for both alike. Inside the
    pipeline, the time the encoder is busy is measured too: ``encoder_busy_share`` is the part of the pipeline's
    wall time during which the encoder runs (1.0: it never waits for reading, chunking or writing).
    """
    embedder.encode_documents(["Sprachbildung " * 600] * settings.batch_size, batch_size=settings.batch_size)
    encode = embedder.encode_documents
    busy: list[float] = []

    def timed_encode(passages: list[str], batch_size: int = 32, stop: threading.Event | None = None) -> np.ndarray:
        started = time.perf_counter()
        try:
            return encode(passages, batch_size, stop)
        finally:
            busy.append(time.perf_counter() - started)

    ingest_s, raw_s, shares, texts = [], [], [], []
    for n in range(rounds):
        folder = settings.index_dir / f"round-{n}"
        busy.clear()
        embedder.encode_documents = timed_encode  # type: ignore[method-assign]
        try:
            started = time.perf_counter()
            pipeline(folder)
            ingest_s.append(time.perf_counter() - started)
        finally:
            del embedder.encode_documents
        shares.append(sum(busy) / ingest_s[-1])
        index = open_current(folder)
        texts = [
            passage_text(index.documents[doc_id].metadata.title, heading, text)
            for _, doc_id, heading, text in index.store.chunk_texts()
        ]
        index.store.close()
        started = time.perf_counter()
        embedder.encode_documents(texts, batch_size=settings.batch_size)
        raw_s.append(time.perf_counter() - started)
        print(f"  round {n + 1}: pipeline {ingest_s[-1]:.1f} s, raw {raw_s[-1]:.1f} s", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    ingest, raw = statistics.median(ingest_s), statistics.median(raw_s)
    return {
        "chunks": len(texts),
        "rounds": rounds,
        "ingest_seconds": ingest,
        "ingest_chunks_per_s": len(texts) / ingest,
        "raw_chunks_per_s": len(texts) / raw,
        "ratio": raw / ingest,
        "round_ratios": [r / i for r, i in zip(raw_s, ingest_s, strict=True)],
        "encoder_busy_share": statistics.median(shares),
    }
