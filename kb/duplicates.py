"""Near-duplicate documents (the same concept paper adapted by two districts), found by MinHash over word shingles.

Each document gets a MinHash signature of its 5-word shingles. Locality-sensitive hashing over bands of the
signature proposes candidate pairs; a pair whose estimated Jaccard similarity is at least :data:`THRESHOLD` is
linked, and linked documents form one group. Search shows one result per group ("also from: …").
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

SHINGLE_WORDS = 5
NUM_PERM = 126
BAND_ROWS = 3  # 42 bands of 3 rows: a pair with Jaccard 0.5 becomes a candidate with probability 0.996
#: Estimated Jaccard similarity of the shingle sets from which two documents count as near-duplicates.
THRESHOLD = 0.5
#: Documents with fewer shingles than this are too short to judge and never grouped.
MIN_SHINGLES = 20

_WORD = re.compile(r"\w+")
_rng = np.random.default_rng(20261125)
_SEEDS = _rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64)
_MULTIPLIERS = _rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
_BAND_MIX = _rng.integers(1, 2**63, size=BAND_ROWS, dtype=np.uint64) | np.uint64(1)  # a band's rows → one key


def signature(texts: Iterable[str]) -> np.ndarray | None:
    """The MinHash signature (``NUM_PERM`` uint64) of a document's text, or None when it is too short."""
    words = [w for text in texts for w in _WORD.findall(text.casefold())]
    shingles = {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(max(len(words) - SHINGLE_WORDS + 1, 0))}
    if len(shingles) < MIN_SHINGLES:
        return None
    hashed = np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in shingles),
        dtype=np.uint64,
        count=len(shingles),
    )
    mins = np.empty(NUM_PERM, dtype=np.uint64)
    for start in range(0, NUM_PERM, 16):  # bounded memory for long documents
        block = (hashed[None, :] ^ _SEEDS[start : start + 16, None]) * _MULTIPLIERS[start : start + 16, None]
        mins[start : start + 16] = block.min(axis=1)
    return mins


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two documents' shingle sets."""
    return float(np.mean(a == b))


def groups(signatures: dict[str, np.ndarray]) -> list[list[str]]:
    """Groups (of two or more document ids) of near-duplicates, each sorted, in a stable order.

    Vectorised over the bands (one 64-bit key per band and document, sorted per band), so that only documents
    sharing a band cost Python work (timings in docs/performance.md).
    """
    ids = list(signatures)
    parent = list(range(len(ids)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    if len(ids) > 1:
        matrix = np.stack([signatures[d] for d in ids])
        for band in range(NUM_PERM // BAND_ROWS):
            rows = matrix[:, band * BAND_ROWS : (band + 1) * BAND_ROWS]
            keys = np.bitwise_xor.reduce(rows * _BAND_MIX, axis=1)
            order = np.argsort(keys, kind="stable")
            ordered = keys[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            ends = np.r_[starts[1:], len(ordered)]
            for start, end in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
                # Each member is compared with the bucket's first one only: linear in the bucket's size even
                # when many documents are copies of each other; pairs missed here are joined through another band.
                first = int(order[start])
                for other in order[start + 1 : end].tolist():
                    if root(other) != root(first) and similarity(matrix[first], matrix[other]) >= THRESHOLD:
                        parent[root(other)] = root(first)
    grouped: dict[int, list[str]] = defaultdict(list)
    for i, doc_id in enumerate(ids):
        grouped[root(i)].append(doc_id)
    return sorted((sorted(g) for g in grouped.values() if len(g) > 1), key=lambda g: g[0])
