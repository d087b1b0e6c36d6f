"""Near-duplicate documents (the same concept paper adapted by two districts), found by MinHash over word shingles.

Each document gets a MinHash signature of its 5-word shingles. Locality-sensitive hashing over bands of the
signature proposes candidate pairs; a pair whose estimated Jaccard similarity is at least :data:`THRESHOLD` is
linked, and linked documents form one group. Search shows one result per group ("also from: …").
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable

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


def band_keys(signatures: np.ndarray) -> np.ndarray:
    """One 64-bit key per band for each row of ``signatures`` (shape ``(n, NUM_PERM)``): ``(n, bands)`` uint64.

    Two documents are candidates when they share a key in the same band (column). Engines store these keys so that
    a write finds the candidates of a new document with an index lookup instead of reading every signature.
    """
    rows = np.atleast_2d(signatures).astype(np.uint64, copy=False)
    bands = rows[:, : (NUM_PERM // BAND_ROWS) * BAND_ROWS].reshape(len(rows), NUM_PERM // BAND_ROWS, BAND_ROWS)
    keys: np.ndarray = np.bitwise_xor.reduce(bands * _BAND_MIX, axis=2)
    return keys


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
        all_keys = band_keys(matrix)
        for band in range(all_keys.shape[1]):
            keys = all_keys[:, band]
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


def regroup(
    previous: list[list[str]],
    removed: set[str],
    added: dict[str, np.ndarray],
    signature_of: Callable[[set[str]], dict[str, np.ndarray]],
    sharing_band: Callable[[np.ndarray], set[str]],
) -> list[list[str]]:
    """The groups after a write, computed around the changed documents only, so a write costs what it changes.

    ``previous``: the groups before; ``removed``: documents gone or replaced; ``added``: the signatures of the
    documents added or replaced (a replaced document is in both; one too short for a signature only in
    ``removed``). The engine supplies ``sharing_band(keys)``, the kept documents sharing any band key with the rows
    of ``keys`` (:func:`band_keys`), and ``signature_of(ids)``. Only the groups that touch a changed document or a
    candidate of an added one are computed again, with :func:`groups` over their members, the candidates and the
    added documents; every other group is kept as it was.
    """
    changed = set(removed) | set(added)
    if not changed:
        return previous
    candidates = sharing_band(band_keys(np.stack(list(added.values())))) - changed if added else set()
    touched = changed | candidates
    affected = set(candidates)
    kept: list[list[str]] = []
    for group in previous:
        if touched.isdisjoint(group):
            kept.append(group)
        else:
            affected.update(group)
    affected -= changed
    signatures = signature_of(affected) if affected else {}
    signatures.update(added)
    return sorted(kept + groups(signatures), key=lambda g: g[0])
