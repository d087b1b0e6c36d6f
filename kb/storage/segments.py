"""Delta segments of the local engine: a write that changes chunks costs what it changes.

A version folder is its **base** (the files of a full version: store, vectors, BM25 arrays; hard links to the
base's files, never written again) and at most one **delta segment** beside it::

    delta.sqlite            the documents put since the base, with their chunks, page texts, headings and
                            signatures, and the near-duplicate groups of the whole version
    delta.faiss             their vectors (always exact: a delta is small)
    delta.npz               their BM25 term counts (rows: German chunk ids) and the base chunks removed
    delta.json              the delta's terms, its vocabulary change against the base, the base documents removed

A document removed from the base (purged, or replaced by a new upload) is a tombstone: its id and chunk ids are
listed in the delta and every reader method leaves them out. A write copies the delta (small), never the base; a
write that finds the delta larger than :data:`MERGE_FRACTION` of its base folds it into a new base first
(:mod:`kb.storage.local`), with the version protocol of every write (build folder, rename, atomic ``CURRENT``).

BM25 over base and delta uses the statistics of the whole version (chunk count, mean length, each term's
document frequency, all without the tombstones), so scores equal those of one index built over the same term
counts: the reader keeps the base's term counts (not its precomputed weights) and weighs the few columns a query
reads. Dense search asks both segments and merges by score.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from kb.documents import DocumentText
from kb.lexical import ANALYSIS, K1, LEXICAL_MATRIX, LEXICAL_TERMS, Analyzer, B, CompoundSplitter, LexicalIndex
from kb.store import ChunkText, DocumentLocation, KnownDocument, Store, StoredChunk, StoredDocument
from kb.vectors import Vectors, deleted_file

DELTA_STORE = "delta.sqlite"
DELTA_VECTORS = "delta.faiss"
DELTA_VECTORS_DELETED = deleted_file(Path(DELTA_VECTORS)).name
DELTA_ARRAYS = "delta.npz"
DELTA_INFO = "delta.json"
DELTA_FILES = (DELTA_STORE, DELTA_VECTORS, DELTA_VECTORS_DELETED, DELTA_ARRAYS, DELTA_INFO)
#: The base's near-duplicate band keys (document ids and one key per band), so that a write finds the candidates
#: of its documents without reading every signature; written with a base, or by the first delta on an older one.
BANDS_FILE = "bands.npz"
#: A base's files (:data:`kb.index.DATA_FILES`, repeated here below the index module).
BASE_FILES = ("store.sqlite", "vectors.faiss", "vectors.deleted.npy", LEXICAL_MATRIX, LEXICAL_TERMS)
#: A write folds the delta into a new base once its chunks and tombstones exceed this share of the base's chunks.
MERGE_FRACTION = 0.1
#: Bases smaller than this are rewritten by every write as before (a copy costs little there, and one format is
#: simpler to look at); tests lower it to exercise segments on a small corpus.
MIN_BASE_CHUNKS = 5_000
#: Postings whose BM25 weights a reader of base and delta keeps once computed (float32: 4 bytes each). A query's
#: terms are weighed when first asked for; the most asked-for terms stay (80 MB at most).
WEIGHTS_CACHED = 20_000_000
#: A delta's vectors are never an inverted file.
FLAT_ONLY = 2**62


def has_delta(files: Iterable[str]) -> bool:
    """Whether a version whose manifest lists ``files`` has a delta segment."""
    return DELTA_STORE in files


@dataclass
class DeltaLexical:
    """BM25 term counts of a delta's German chunks, and the delta's change of the vocabulary (the compound
    splitter's dictionary) against its base: added chunks' words counted, removed chunks' words taken off."""

    ids: np.ndarray
    tf: sparse.csr_matrix
    terms: dict[str, int]
    vocabulary: Counter[str]

    @classmethod
    def empty(cls) -> DeltaLexical:
        return cls(np.zeros(0, dtype=np.int64), sparse.csr_matrix((0, 0), dtype=np.float32), {}, Counter())

    def without(self, ids: Iterable[int]) -> DeltaLexical:
        keep = ~np.isin(self.ids, np.fromiter(ids, dtype=np.int64))
        return DeltaLexical(self.ids[keep], self.tf[keep], self.terms, self.vocabulary)

    def with_rows(self, ids: list[int], tf: sparse.csr_matrix) -> DeltaLexical:
        """Rows added (``tf``'s columns follow :attr:`terms`, which may have grown)."""
        old = self.tf.copy()
        old.resize((old.shape[0], len(self.terms)))
        new = tf.copy()
        new.resize((new.shape[0], len(self.terms)))
        all_ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        stacked = sparse.vstack([old, new], format="csr")
        order = np.argsort(all_ids, kind="stable")
        return DeltaLexical(all_ids[order], stacked[order].tocsr(), self.terms, self.vocabulary)


@dataclass
class Delta:
    """A delta segment's arrays and lists (its store and vectors are files of their own)."""

    lexical: DeltaLexical = field(default_factory=DeltaLexical.empty)
    removed_chunks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    removed_documents: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, folder: Path) -> Delta:
        info = json.loads((folder / DELTA_INFO).read_text(encoding="utf-8"))
        with np.load(folder / DELTA_ARRAYS) as arrays:
            shape = tuple(int(n) for n in arrays["tf_shape"])
            tf = sparse.csr_matrix(
                (arrays["tf_data"].astype(np.float32), arrays["tf_indices"], arrays["tf_indptr"]), shape=shape
            )
            ids, removed = arrays["lexical_ids"].astype(np.int64), arrays["removed_chunks"].astype(np.int64)
        terms = {term: i for i, term in enumerate(info["terms"])}
        lexical = DeltaLexical(ids, tf, terms, Counter(info["vocabulary"]))
        return cls(lexical, removed, set(info["removed_documents"]))

    def save(self, folder: Path) -> None:
        tf = self.lexical.tf
        np.savez(folder / DELTA_ARRAYS, tf_data=tf.data.astype(np.uint16), tf_indices=tf.indices,
                 tf_indptr=tf.indptr, tf_shape=np.asarray(tf.shape), lexical_ids=self.lexical.ids,
                 removed_chunks=self.removed_chunks)  # fmt: skip
        info = {
            "terms": list(self.lexical.terms),
            "vocabulary": {w: n for w, n in sorted(self.lexical.vocabulary.items()) if n},
            "removed_documents": sorted(self.removed_documents),
        }
        (folder / DELTA_INFO).write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")


def read_vocabulary(folder: Path) -> tuple[dict[str, int], int]:
    """A base's vocabulary and the analysis its terms were made with."""
    payload = json.loads((folder / LEXICAL_TERMS).read_text(encoding="utf-8"))
    return dict(payload["vocabulary"]), int(payload.get("analysis", 1))


def base_key(folder: Path) -> tuple[tuple[int, ...], ...]:
    """What identifies a version's base files (the same inodes, sizes and times: the same base, hard links of one
    another; empty if one is missing)."""
    key = []
    for name in BASE_FILES:
        try:
            key.append(_file_key(folder / name))
        except OSError:
            return ()
    return tuple(key)


def _file_key(path: Path) -> tuple[int, ...]:
    """One file's identity: inode (what hard links share), size and modification time (an inode number freed by a
    deleted file and given to a new one is told apart)."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


#: The compound splitter of the base read last, by :func:`base_key` (a base never changes: one entry is kept, so
#: that the writer and the readers of one process build it once per base, not once per write).
_splitters: dict[tuple[tuple[int, ...], ...], tuple[CompoundSplitter, bool]] = {}


def base_lexicon(folder: Path) -> tuple[CompoundSplitter, bool]:
    """The compound splitter of a base's vocabulary, and whether its BM25 file holds the term counts of the
    current analysis (what a delta segment needs)."""
    key = base_key(folder)
    cached = _splitters.get(key)
    if cached is not None and key:
        return cached
    try:
        with np.load(folder / LEXICAL_MATRIX) as arrays:
            counted = "tf_data" in arrays
        vocabulary, analysis = read_vocabulary(folder)
    except (OSError, ValueError, KeyError):
        return CompoundSplitter({}), False
    _splitters.clear()
    _splitters[key] = CompoundSplitter(vocabulary), counted and analysis == ANALYSIS
    return _splitters[key]


def remember_splitter(folder: Path, splitter: CompoundSplitter) -> None:
    """Keep the compound splitter a reader built from a base's vocabulary for the writers of this process (a
    server's first write then builds none)."""
    key = base_key(folder)
    if not key or key in _splitters:
        return
    try:
        with np.load(folder / LEXICAL_MATRIX) as arrays:
            counted = "tf_data" in arrays
    except (OSError, ValueError):
        return
    _splitters.clear()
    _splitters[key] = splitter, counted


def has_counts(folder: Path) -> bool:
    """Whether a base's BM25 file holds the term counts of the current analysis (what a delta needs)."""
    return base_lexicon(folder)[1]


# -- reading: one view over base and delta ------------------------------------------------------------------


class LayeredStore:
    """The documents and chunks of a version: the base's (without tombstones) and the delta's."""

    def __init__(
        self,
        base: Store,
        delta: Store | None,
        removed: set[str],
        removed_chunks: int = 0,
        base_counts: tuple[int, int] | None = None,
    ) -> None:
        """``base_counts``: the base's documents and chunks when known (a writer knows them from the manifest;
        counting a million rows costs a second)."""
        self.base, self.delta, self.removed = base, delta, removed
        self.base_counts = base_counts
        #: How many base chunks the tombstones hold (for :meth:`counts`).
        self.removed_chunks = removed_chunks
        self.overlay = base.overlay
        if delta is not None:
            delta.overlay = self.overlay

    def close(self) -> None:
        self.base.close()
        if self.delta is not None:
            self.delta.close()

    def _in_base(self, doc_id: str) -> bool:
        return doc_id not in self.removed

    def _in_delta(self, doc_id: str) -> bool:
        return self.delta is not None and self.delta.has_document(doc_id)

    def documents(self) -> list[StoredDocument]:
        docs = [d for d in self.base.documents() if d.id not in self.removed]
        if self.delta is not None:
            docs += self.delta.documents()
            docs.sort(key=lambda d: d.key)
        return docs

    def document(self, doc_id: str) -> StoredDocument | None:
        if self.delta is not None and (doc := self.delta.document(doc_id)) is not None:
            return doc
        return self.base.document(doc_id) if self._in_base(doc_id) else None

    def has_document(self, doc_id: str) -> bool:
        return self._in_delta(doc_id) or (self._in_base(doc_id) and self.base.has_document(doc_id))

    def hashes(self) -> dict[str, KnownDocument]:
        known = {k: v for k, v in _base_hashes(self.base).items() if v.doc_id not in self.removed}
        if self.delta is not None:
            known.update(self.delta.hashes())
        return known

    def locations(self) -> list[DocumentLocation]:
        rows = [r for r in _base_locations(self.base) if r.doc_id not in self.removed]
        if self.delta is not None:
            rows = sorted(rows + self.delta.locations(), key=lambda r: r.key)
        return rows

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        found = self.delta.chunks(ids) if self.delta is not None else {}
        rest = [i for i in ids if i not in found]
        found.update((i, c) for i, c in self.base.chunks(rest).items() if c.doc_id not in self.removed)
        return found

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        if self._in_delta(doc_id):
            assert self.delta is not None
            return self.delta.chunks_of(doc_id)
        return self.base.chunks_of(doc_id) if self._in_base(doc_id) else []

    def document_text(self, doc_id: str) -> DocumentText | None:
        if self._in_delta(doc_id):
            assert self.delta is not None
            return self.delta.document_text(doc_id)
        return self.base.document_text(doc_id) if self._in_base(doc_id) else None

    def chunk_ids_by_document(self) -> dict[str, list[int]]:
        result = {d: ids for d, ids in self.base.chunk_ids_by_document().items() if d not in self.removed}
        if self.delta is not None:
            result.update(self.delta.chunk_ids_by_document())
        return result

    def chunk_texts(self, *, unsigned_only: bool = False) -> list[ChunkText]:
        rows = [r for r in self.base.chunk_texts(unsigned_only=unsigned_only) if r.doc_id not in self.removed]
        if self.delta is not None:
            rows += self.delta.chunk_texts(unsigned_only=unsigned_only)
            rows.sort(key=lambda r: r.chunk_id)
        return rows

    def near_duplicate_groups(self) -> list[list[str]]:
        return (self.delta or self.base).near_duplicate_groups()

    def near_duplicates(self) -> dict[str, tuple[str, ...]]:
        return (self.delta or self.base).near_duplicates()

    def signatures_of(self, ids: Iterable[str]) -> dict[str, bytes]:
        wanted = set(ids)
        found = self.delta.signatures_of(wanted) if self.delta is not None else {}
        found.update(self.base.signatures_of(d for d in wanted - set(found) if d not in self.removed))
        return found

    def counts(self) -> tuple[int, int]:
        docs, chunks = self.base_counts or self.base.counts()
        docs, chunks = docs - len(self.removed), chunks - self.removed_chunks
        if self.delta is not None:
            more_docs, more_chunks = self.delta.counts()
            docs, chunks = docs + more_docs, chunks + more_chunks
        return docs, chunks


#: The content hashes of the base read last, by its store file's inode (what every write asks first; a base never
#: changes, so one write per base and process reads them).
_hashes: dict[tuple[int, ...], dict[str, KnownDocument]] = {}


_locations: dict[tuple[int, ...], list[DocumentLocation]] = {}


def _base_hashes(store: Store) -> dict[str, KnownDocument]:
    key = _file_key(store.path)
    if key not in _hashes:
        _hashes.clear()
        _hashes[key] = store.hashes()
    return _hashes[key]


def _base_locations(store: Store) -> list[DocumentLocation]:
    """The base's document locations (what ingestion checks for files gone), read once per base and process."""
    key = _file_key(store.path)
    if key not in _locations:
        _locations.clear()
        _locations[key] = store.locations()
    return _locations[key]


_bands: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}


def read_bands(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A base's near-duplicate band keys (:data:`BANDS_FILE`): document ids and one row of keys per band (each
    band's keys contiguous, as a lookup reads them), read once per base and process."""
    key = _file_key(path)
    if key not in _bands:
        with np.load(path) as arrays:
            _bands.clear()
            _bands[key] = arrays["ids"], np.ascontiguousarray(arrays["keys"].T)
    return _bands[key]


class LayeredVectors:
    """Dense search over a base's vectors (tombstones left out) and a delta's, merged by score."""

    def __init__(self, base: Vectors, delta: Vectors, removed: np.ndarray) -> None:
        self.base = base.without(removed) if len(removed) else base
        self.delta = delta
        self._delta_ids = np.sort(delta.ids())

    @property
    def dimension(self) -> int:
        return self.base.dimension

    def __len__(self) -> int:
        return len(self.base) + len(self.delta)

    @property
    def is_ann(self) -> bool:
        return self.base.is_ann

    @property
    def kind(self) -> str:
        return self.base.kind

    def ids(self) -> np.ndarray:
        return np.concatenate([self.base.ids(), self.delta.ids()])

    def search(
        self, query: np.ndarray, k: int, allowed: Sequence[int] | np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        if allowed is None:
            hits = self.base.search(query, k) + self.delta.search(query, k)
        else:
            wanted = np.asarray(allowed, dtype=np.int64)
            in_delta = np.isin(wanted, self._delta_ids)
            hits = self.base.search(query, k, wanted[~in_delta]) + self.delta.search(query, k, wanted[in_delta])
        return sorted(hits, key=lambda hit: -hit[1])[:k]

    def search_exact(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        hits = self.base.search_exact(query, k) + self.delta.search(query, k)
        return sorted(hits, key=lambda hit: -hit[1])[:k]

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        if np.isin(chunk_id, self._delta_ids):
            return self.delta.reconstruct(chunk_id)
        return self.base.reconstruct(chunk_id)


@dataclass
class BaseCounts:
    """A base's BM25 term counts for weighing with a version's statistics: columns (terms) of counts, each row's
    length and each term's document frequency, the vocabulary."""

    ids: np.ndarray
    tf: sparse.csc_matrix
    terms: dict[str, int]
    lengths: np.ndarray
    splitter: CompoundSplitter

    @classmethod
    def load(cls, folder: Path) -> BaseCounts:
        with np.load(folder / LEXICAL_MATRIX) as arrays:
            shape = tuple(int(n) for n in arrays["tf_shape"])
            csr = sparse.csr_matrix(
                (arrays["tf_data"].astype(np.float32), arrays["tf_indices"], arrays["tf_indptr"]), shape=shape
            )
            ids = arrays["chunk_ids"].astype(np.int64)
        payload = json.loads((folder / LEXICAL_TERMS).read_text(encoding="utf-8"))
        terms = {term: i for i, term in enumerate(payload["terms"])}
        return cls(ids, csr.tocsc(), terms, _row_lengths(csr), base_lexicon(folder)[0])


def _row_lengths(tf: sparse.csr_matrix) -> np.ndarray:
    """Each row's length (sum of its term counts), as a full build computes it."""
    row_of = np.repeat(np.arange(tf.shape[0], dtype=np.int32), np.diff(tf.indptr))
    return np.bincount(row_of, weights=tf.data, minlength=tf.shape[0]).astype(np.float32)


class _LiveTerms(Mapping[str, int]):
    """The terms some live chunk of the version has (a term only tombstones held is unknown)."""

    def __init__(self, lexical: LayeredLexical) -> None:
        self._lexical = lexical

    def __getitem__(self, term: str) -> int:
        if term not in self:
            raise KeyError(term)
        return 0

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self._lexical.document_frequency(term) > 0

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for term in [*self._lexical.base.terms, *self._lexical.delta.terms]:
            if term not in seen and term in self:
                seen.add(term)
                yield term

    def __len__(self) -> int:
        return sum(1 for _ in self)


class LayeredLexical(LexicalIndex):
    """BM25 over a base's German chunks (tombstones left out) and a delta's, weighted with the statistics of the
    whole version at query time (the few columns a query reads)."""

    def __init__(self, base: BaseCounts, delta: DeltaLexical, removed: np.ndarray) -> None:
        self.base, self.delta = base, delta
        live = ~np.isin(base.ids, removed) if len(removed) else np.ones(len(base.ids), dtype=bool)
        df = np.diff(base.tf.indptr).astype(np.int64)
        if not live.all():  # the tombstoned rows' postings taken off each term's frequency
            dead = ~live
            positions = np.flatnonzero(dead[base.tf.indices])
            columns = np.searchsorted(base.tf.indptr, positions, side="right") - 1
            df -= np.bincount(columns, minlength=len(df))
        self._delta_tf = delta.tf.tocsc()
        delta_df = np.diff(self._delta_tf.indptr).astype(np.int64)
        self._delta_in_base = np.asarray([base.terms.get(t, -1) for t in delta.terms], dtype=np.int64)
        shared = self._delta_in_base >= 0
        np.add.at(df, self._delta_in_base[shared], delta_df[shared])
        delta_global = delta_df.copy()
        delta_global[shared] = df[self._delta_in_base[shared]]
        self._df, self._delta_global_df = df, delta_global
        delta_lengths = _row_lengths(delta.tf) if delta.tf.shape[0] else np.zeros(0, dtype=np.float32)
        lengths = np.concatenate([base.lengths[live], delta_lengths])
        rows = len(lengths)
        self._idf = np.log1p((rows - df + 0.5) / (df + 0.5)).astype(np.float32)
        self._delta_idf = np.log1p((rows - delta_global + 0.5) / (delta_global + 0.5)).astype(np.float32)
        mean = max(float(lengths.mean()) if rows else 1.0, 1e-6)
        self._norm = K1 * (1 - B + B * base.lengths / mean)
        self._norm[~live] = np.inf  # a tombstoned row scores nothing
        self._delta_norm = K1 * (1 - B + B * delta_lengths / mean)
        chunk_ids = np.concatenate([base.ids[live], delta.ids])
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        self._cached = 0
        super().__init__(chunk_ids, sparse.csc_matrix((0, 0), dtype=np.float32),
                         _LiveTerms(self), Analyzer(base.splitter.changed(delta.vocabulary)))  # type: ignore[arg-type]  # fmt: skip

    def _weights(self, segment: int, column: int) -> np.ndarray:
        """The BM25 weights of one term column of the base (0) or the delta (1) with the version's statistics: what
        a full build precomputes (:meth:`kb.lexical.LexicalIndex._weighted`), computed for the columns queries
        read and kept (up to :data:`WEIGHTS_CACHED` postings), so a term's second query costs what it costs in
        one index."""
        cached = self._cache.get((segment, column))
        if cached is not None:
            return cached
        tf, idf, norm = (self.base.tf, self._idf, self._norm) if segment == 0 else \
            (self._delta_tf, self._delta_idf, self._delta_norm)  # fmt: skip
        start, end = tf.indptr[column], tf.indptr[column + 1]
        counts = tf.data[start:end]
        data: np.ndarray = (counts * (K1 + 1) / (counts + norm[tf.indices[start:end]]) * idf[column]).astype(
            np.float32
        )
        if self._cached + len(data) <= WEIGHTS_CACHED:
            self._cache[(segment, column)] = data
            self._cached += len(data)
        return data

    def document_frequency(self, term: str) -> int:
        """In how many live chunks of the version ``term`` occurs."""
        column = self.base.terms.get(term)
        if column is not None:
            return int(self._df[column])
        column = self.delta.terms.get(term)
        return int(self._delta_global_df[column]) if column is not None else 0

    def search(
        self, weights: dict[str, float], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        found_ids, found_scores = [], []
        for segment, ids, tf, terms in (
            (0, self.base.ids, self.base.tf, self.base.terms),
            (1, self.delta.ids, self._delta_tf, self.delta.terms),
        ):
            scores: np.ndarray | None = None
            for term, weight in weights.items():
                column = terms.get(term)
                if column is None:
                    continue
                start, end = tf.indptr[column], tf.indptr[column + 1]
                if scores is None:
                    scores = np.zeros(len(ids), dtype=np.float32)
                scores[tf.indices[start:end]] += weight * self._weights(segment, column)
            if scores is not None:
                rows = np.flatnonzero(scores > 0)
                found_ids.append(ids[rows])
                found_scores.append(scores[rows])
        if not found_ids:
            return []
        # Delta chunk ids are above all base ids: the concatenation is in chunk id order, as one index's rows.
        chunk_ids, scores = np.concatenate(found_ids), np.concatenate(found_scores)
        if allowed is not None:
            keep = np.isin(chunk_ids, allowed)
            chunk_ids, scores = chunk_ids[keep], scores[keep]
        candidates = np.arange(len(scores))
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores, k - 1)[:k]]
            candidates.sort()
        best = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(int(chunk_ids[i]), float(scores[i])) for i in best]
