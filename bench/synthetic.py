"""Synthetic indexes scaled up from real text, so that search can be timed at sizes no corpus here reaches.

The pool is real chunks with their real vectors (:func:`scale_pool`); :func:`synthetic_documents` cycles through
it with shuffled words and new words, and :class:`StubEncoder` gives every chunk a fresh vector mixed from real
ones, so no million passages are encoded. :func:`build_synthetic` writes such an index with the real index writer.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.paths import BUNDLED_QUERIES, SHARED
from kb.chunking import chunk_sections, passage_text
from kb.documents import Document, Metadata, Section, document_id
from kb.embedder import Embedder
from kb.evaluation import load_dataset
from kb.index import IndexDir, open_current
from kb.ingest import IndexWriter, Ingestor
from kb.settings import Settings

#: Chunks per synthetic document: the bundled corpus has 8.0 on average (706 chunks in 88 documents).
CHUNKS_PER_DOC = 8
#: New words per copied chunk, so that the vocabulary grows with the corpus as in real text (Heaps' law: about
#: 1-2M distinct word forms in 150M German tokens); without them BM25's vocabulary would stay that of the pool.
NEW_WORDS_PER_CHUNK = 2
#: The shared sets whose passages join the bundled corpus's chunks in the pool.
POOL_SETS = ("germanquad-test", "gesetze-headings", "xquad-de-de")


class StubEncoder:
    """Stands in for the model while writing synthetic indexes; every passage gets a fresh synthetic vector.

    ``mixed`` (the default): a random mix of two real passage vectors (weight 0.55-0.95 on the first) with a
    little noise, so that no two vectors are near-copies and neighbourhoods are spread out as in a real corpus.
    ``copies``: one real vector with noise (the pessimistic set: at 1M there are thousands of near-tied copies of
    each vector, which is where an approximate index loses most recall).
    """

    def __init__(self, vectors: np.ndarray, mode: str = "mixed") -> None:
        self.vectors, self.dimension, self.mode, self._next = vectors, int(vectors.shape[1]), mode, 0
        self._rng = np.random.default_rng(0)

    def encode_documents(
        self, passages: list[str], batch_size: int = 32, stop: threading.Event | None = None
    ) -> np.ndarray:
        n, pool = len(passages), len(self.vectors)
        rows = np.arange(self._next, self._next + n) % pool
        self._next += n
        if self.mode == "copies":
            out = self.vectors[rows] + self._rng.normal(0, 0.02, (n, self.dimension)).astype(np.float32)
        else:
            weight = self._rng.uniform(0.55, 0.95, (n, 1)).astype(np.float32)
            other = self.vectors[self._rng.integers(0, pool, n)]
            noise = self._rng.normal(0, 0.005, (n, self.dimension)).astype(np.float32)
            out = weight * self.vectors[rows] + (1 - weight) * other + noise
        return np.asarray(out / np.linalg.norm(out, axis=1, keepdims=True), dtype=np.float32)


def synthetic_documents(pool: list[tuple[str, str, str]], size: int) -> Iterator[tuple[str, Document]]:
    """``size`` chunks as documents of :data:`CHUNKS_PER_DOC` sections, one chunk each; texts cycled from
    ``pool`` (title, heading, text; 60-180 words, so the chunker keeps each as one chunk). Copies get their words
    shuffled (BM25 sees the same words, but copies are no near-duplicates of each other, as in a real
    collection) and :data:`NEW_WORDS_PER_CHUNK` new words; every section gets its own heading."""
    rng = random.Random(size)
    for start in range(0, size, CHUNKS_PER_DOC):
        sections = []
        for i in range(start, min(start + CHUNKS_PER_DOC, size)):
            _, heading, text = pool[i % len(pool)]
            if i >= len(pool):
                words = text.split()
                rng.shuffle(words)
                for _ in range(NEW_WORDS_PER_CHUNK):
                    at = rng.randrange(len(words))
                    words[at] = f"{words[at]}{_letters(i * NEW_WORDS_PER_CHUNK + at)}"
                text = " ".join(words)
            sections.append(Section(text, f"{heading} ({i - start + 1})"))
        key = f"s{start // CHUNKS_PER_DOC}"
        title = pool[start % len(pool)][0]
        yield (
            key,
            Document(path=Path(key), file_type="text", metadata=Metadata(title=title), sections=tuple(sections)),
        )


def _letters(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 26)
        out += "abcdefghijklmnopqrstuvwxyz"[r]
        if not n:
            return out


def build_synthetic(
    settings: Settings, pool: list[tuple[str, str, str]], vectors: np.ndarray, size: int, mode: str = "mixed"
) -> float:
    """An index of ``size`` chunks (see :func:`synthetic_documents`) written by the real index writer with a
    stub encoder (:class:`StubEncoder`); returns the build seconds."""
    stub: Any = StubEncoder(vectors, mode)
    started = time.perf_counter()
    index_dir = IndexDir(settings.index_dir)
    with index_dir.acquire():
        writer = IndexWriter.new(settings, stub)
        for n, (key, doc) in enumerate(synthetic_documents(pool, size)):
            writer.add(document_id(key), key, "", doc)
            if n and n % 20_000 == 0:
                seconds = time.perf_counter() - started
                print(f"  build {size:,}: {n * CHUNKS_PER_DOC:,} chunks after {seconds:.0f} s", flush=True)
        print(f"  build {size:,}: publishing after {time.perf_counter() - started:.0f} s", flush=True)
        writer.publish()
    return time.perf_counter() - started


def scale_pool(
    settings: Settings, embedder: Embedder, cache: Path
) -> tuple[list[tuple[str, str, str]], np.ndarray]:
    """Real chunks with their real vectors to scale up from: the bundled corpus's chunks and the passages of
    the German sets in ../shared/eval (chunked like any document), those of 60-180 words. Encoded once and
    cached in ``cache`` (the encoding takes a few minutes)."""
    cache.mkdir(parents=True, exist_ok=True)
    texts_file, vectors_file = cache / "pool.json", cache / "pool.npy"
    if texts_file.is_file() and vectors_file.is_file():
        pool = [(str(a), str(b), str(c)) for a, b, c in json.loads(texts_file.read_text(encoding="utf-8"))]
        return pool, np.load(vectors_file)
    Ingestor(settings, embedder).run()
    seed = open_current(settings.index_dir)
    pool = [(seed.documents[d].metadata.title, h, t) for _, d, h, t in seed.store.chunk_texts()]
    for name in POOL_SETS:
        if not (SHARED / name).is_dir():
            continue
        for title, passage in load_dataset(SHARED / name).corpus.values():
            pool += [(title, c.heading, c.text) for c in chunk_sections([Section(passage)])]
    pool = [row for row in pool if 60 <= len(row[2].split()) <= 180]
    print(f"  encoding the pool of {len(pool):,} real chunks", flush=True)
    vectors = embedder.encode_documents([passage_text(*row) for row in pool], batch_size=settings.batch_size)
    texts_file.write_text(json.dumps(pool, ensure_ascii=False), encoding="utf-8")
    np.save(vectors_file, vectors)
    return pool, vectors


def bundled_questions() -> list[str]:
    """The texts of ``eval/bundled``'s questions, in file order: the queries every search benchmark sends."""
    rows = [json.loads(line) for line in BUNDLED_QUERIES.read_text().splitlines()]
    return [row["text"] for row in rows]
