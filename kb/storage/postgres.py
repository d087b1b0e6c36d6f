"""The ``postgres`` storage engine: documents, chunks, vectors (pgvector) and BM25 postings in PostgreSQL.

Chosen by ``KB_DATABASE_URL=postgresql://…`` (:func:`kb.storage.open_storage`); searches may go to a streaming
replica (``KB_DATABASE_READ_URL``), writes always go to the primary. Any number of ``kb serve`` processes on any
machines serve the same database: each asks for the live version (:meth:`PostgresStorage.current_name`, one
indexed query) and opens a reader of a newer one when it was published.

Versions are row ranges (:mod:`kb.storage.pg_schema`): a writer is one transaction that adds rows stamped with
the next version and stamps the rows it removes; publishing inserts the version's row and commits. A write costs
what it changes (a metadata change is one row of ``kb_metadata``; an upload reads only the vocabulary entries and
documents it needs and regroups near-duplicates around the changed documents), not what the index holds, and a
reader of the next version takes over the one before and reads only the rows changed (:meth:`PgReader._advanced`).

Vectors live in ``kb_chunks.embedding`` at full precision; the approximate index is HNSW over ``halfvec`` of the
model's dimension (measurements in docs/deployment.md), and the scores returned are computed from the full
vectors. BM25: German analysis stays in Python (:mod:`kb.lexical`); the database holds each chunk's analysed
terms with their counts (``kb_postings``) and the vocabulary of the compound splitter (``kb_vocabulary``); a
reader fetches the postings of a query's terms once, keeps them, and scores them with the same formula and the
same float32 arithmetic as the local engine (:class:`PgLexical`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool
from scipy import sparse

from kb import duplicates
from kb.chunking import passage_text
from kb.documents import Chunk, Document, DocumentText, Metadata, PageHeading, PageText
from kb.errors import IndexMissingError, IndexUnavailableError, IngestLockedError
from kb.index import Manifest, check_model, owners_of
from kb.lexical import GERMAN, K1, Analyzer, B, CompoundSplitter, LexicalIndex, fold, vocabulary_counts, words
from kb.lru import LRU
from kb.storage.pg_schema import KEEP_VERSIONS, SCHEMA_VERSION, VISIBLE, migrate, schema_version
from kb.store import DocumentLocation, KnownDocument, StoredChunk, StoredDocument
from kb.visibility import visible_to

log = logging.getLogger(__name__)

#: What a reader or writer says when the database cannot be reached (the API answers 503 with it).
UNREACHABLE = (
    "Die Datenbank ist gerade nicht erreichbar; bitte gleich noch einmal versuchen. "
    "(The database {where} cannot be reached: {error}; the search recovers by itself once it is back.)"
)
#: The number of the writer's advisory lock (one writer per database, whatever machine it runs on).
WRITER_LOCK = 0x6B62_5752  # "kbWR"
#: Dense rows a search fetches at least: the depth hybrid ranking scales its scores over (kb.fusion's
#: ``NORMALISE_DEPTH``), so that a query's evidence (100 rows) and its ranking (200) are one scan.
DENSE_DEPTH = 200
#: HNSW candidates per search (pgvector's ``hnsw.ef_search``): the rows a search fetches (docs/deployment.md).
EF_SEARCH = DENSE_DEPTH
#: Dense searches a reader keeps the result of (one per query being answered at the same time suffices).
RECENT_SEARCHES = 16
#: Set once per reader connection (not per query: each ``SET`` is a round trip). ``relaxed_order``: HNSW scans
#: on until ``k`` rows pass the version filter.
_SEARCH_OPTIONS = f"-c hnsw.ef_search={EF_SEARCH} -c hnsw.iterative_scan=relaxed_order"
#: Postings a reader keeps in memory for scoring BM25 (12 bytes each: chunk id, term count, chunk length); the
#: least recently used terms leave first. A whole 100,000-chunk index has about 9 million (docs/deployment.md).
CACHED_POSTINGS = 10_000_000
#: A search adds its scores in an array over the range of its chunk ids up to this many times their number (else
#: over the distinct ids: a sort, but no array as large as every id ever given).
ID_RANGE_FACTOR = 8
#: Up to this many chunks added and removed since its version, a reader hands its kept postings to the next one.
CARRIED_CHANGES = 20_000
#: Databases this process brought to its schema (a writer migrates only the first time).
_MIGRATED: set[str] = set()
#: Up to this many words a writer looks up in the vocabulary for the chunks it added (beyond: it reads it all).
VOCABULARY_LOOKUPS = 200_000
_DOC_COLUMNS = (
    "d.id, d.key, d.path, d.content_hash, d.file_type, coalesce(m.metadata, d.metadata), d.pages, d.words, "
    "(SELECT count(*) FROM kb_chunks c WHERE c.doc_row = d.row_id), d.ingested_at"
)
#: Document rows with the metadata of version ``%(v)s`` (a curator's change is a row of ``kb_metadata`` laid
#: over the document row's metadata); the document rows' own visibility is :data:`_DOC_VISIBLE`.
_DOCS_OF_VERSION = (
    "kb_documents d LEFT JOIN kb_metadata m ON m.doc_row = d.row_id "
    "AND m.added <= %(v)s AND (m.removed IS NULL OR m.removed > %(v)s)"
)
_DOC_VISIBLE = "d.added <= %(v)s AND (d.removed IS NULL OR d.removed > %(v)s)"
#: The live document rows with their live metadata (a writer's view).
_LIVE_DOCS = "kb_documents d LEFT JOIN kb_metadata m ON m.doc_row = d.row_id AND m.removed IS NULL"
#: A reader takes over the one of an older version and reads only the rows changed since when it is at most this
#: many versions behind (rows removed longer ago may be deleted; see :meth:`PgReader._advanced`).
ADVANCE_VERSIONS = KEEP_VERSIONS - 1
_CHUNK_COLUMNS = "id, doc_id, ordinal, heading, page, page_end, text"


def _where(url: str) -> str:
    """The server part of a connection URL, without user and password (for messages)."""
    return url.rsplit("@", 1)[-1].split("?", 1)[0]


def _vector(values: np.ndarray) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(values, dtype=np.float32).ravel()) + "]"


def _document(row: Sequence[Any]) -> StoredDocument:
    return StoredDocument(
        id=row[0], key=row[1], path=row[2], content_hash=row[3], file_type=row[4],
        metadata=Metadata.from_dict(row[5]), pages=row[6], words=row[7], chunks=int(row[8]), ingested_at=row[9],
    )  # fmt: skip


def _version_name(version: int) -> str:
    return f"v{version:06d}"


class PostgresStorage:
    """The index in the PostgreSQL database ``url`` (searches through ``read_url`` when given)."""

    def __init__(self, url: str, read_url: str | None = None, *, pool_size: int = 4) -> None:
        self.url, self.read_url = url, read_url or url
        self._pool_size = pool_size
        self._pool: ConnectionPool[psycopg.Connection[TupleRow]] | None = None
        #: The reader opened last: the next version, when only metadata changed, takes its parts over.
        self._last: PgReader | None = None

    # -- connections ------------------------------------------------------------------------------------------
    def _reads(self) -> ConnectionPool[psycopg.Connection[TupleRow]]:
        if self._pool is None:
            self._pool = ConnectionPool(
                self.read_url,
                min_size=1,
                max_size=self._pool_size,
                kwargs={"autocommit": True, "connect_timeout": 5, "options": _SEARCH_OPTIONS},
                open=False,
                timeout=5,
                # While the server is away a request fails at once (503) instead of waiting for the pool's
                # background retries; each request tries anew. A connection broken by a restart fails one
                # request and is then dropped (checking each one before use would cost a round trip a query).
                reconnect_timeout=0,
            )
            self._pool.open(wait=False)
        return self._pool

    @contextmanager
    def read(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A connection of the reader pool; an unreachable server is :class:`IndexUnavailableError`."""
        try:
            with self._reads().connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as exc:
            raise IndexUnavailableError(UNREACHABLE.format(where=_where(self.read_url), error=exc)) from exc
        except Exception as exc:
            from psycopg_pool import PoolTimeout

            if isinstance(exc, PoolTimeout):
                raise IndexUnavailableError(UNREACHABLE.format(where=_where(self.read_url), error=exc)) from exc
            raise

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[TupleRow]:
        """A new connection to the primary (writers, the lock, migrations)."""
        try:
            return psycopg.connect(self.url, autocommit=autocommit, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise IndexUnavailableError(UNREACHABLE.format(where=_where(self.url), error=exc)) from exc

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def migrate(self) -> tuple[int, int]:
        """Bring the database's schema to this release's (``kb db migrate``)."""
        with self.connect(autocommit=True) as conn:
            return migrate(conn)

    def migrated(self) -> None:
        """:meth:`migrate`, once per process and database (a connection and a lock less per write)."""
        if self.url not in _MIGRATED:
            self.migrate()
            _MIGRATED.add(self.url)

    # -- the protocol -----------------------------------------------------------------------------------------
    def _live(self, conn: psycopg.Connection[TupleRow]) -> int | None:
        try:
            row = conn.execute("SELECT max(version) FROM kb_versions").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return None if row is None or row[0] is None else int(row[0])

    def current_name(self) -> str | None:
        with self.read() as conn:
            version = self._live(conn)
        return None if version is None else _version_name(version)

    def open_reader(self) -> PgReader:
        with self.read() as conn:
            version = self._live(conn)
            if version is None:
                raise IndexMissingError(
                    f"There is no index in the database {_where(self.read_url)} yet; run `kb ingest` to build it "
                    "(or `kb db import-local INDEX_DIR` to bring a local index)."
                )
            self._last = PgReader.load(self, conn, version, self._last)
            return self._last

    def lock(self, wait: float = 0) -> _WriterLock:
        return _WriterLock(self, wait)

    def open_writer(self, *, model: str, dimension: Callable[[], int], rebuild: bool = False) -> PgWriter:
        self.migrated()
        conn = self.connect()
        try:
            live = self._live(conn)
            base = None
            if live is not None:
                row = conn.execute("SELECT manifest FROM kb_versions WHERE version = %s", (live,)).fetchone()
                assert row is not None
                base = Manifest(**row[0])
                if not rebuild:
                    _check_model(self.url, base, model)
            expected = dimension()
            if base is not None and not rebuild and base.dimension != expected:
                raise IndexUnavailableError(
                    f"The index has vectors of dimension {base.dimension}, the model gives {expected}; "
                    "rebuild it with `kb ingest --rebuild`."
                )
            counts = (0, 0, 0, 0)
            if live is not None and not rebuild:
                row = conn.execute(
                    "SELECT manifest->>'documents', manifest->>'chunks', german_chunks, german_length "
                    "FROM kb_versions WHERE version = %s",
                    (live,),
                ).fetchone()
                assert row is not None
                counts = (int(row[0]), int(row[1]), int(row[2]), int(row[3]))
            writer = PgWriter(conn, (live or 0) + 1, None if rebuild else base, expected, counts)
            if rebuild:
                writer.remove_all()
            return writer
        except BaseException:
            conn.close()
            raise


class _WriterLock:
    """The one writer's lock: a session advisory lock on its own connection to the primary."""

    def __init__(self, storage: PostgresStorage, wait: float) -> None:
        self._conn = storage.connect(autocommit=True)
        deadline = time.monotonic() + wait
        while True:
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone()
            if row and row[0]:
                return
            if time.monotonic() >= deadline:
                self._conn.close()
                raise IngestLockedError(
                    f"Another ingestion is writing to the database {_where(storage.url)}; "
                    "wait until it has finished, then try again."
                )
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))

    def release(self) -> None:
        if not self._conn.closed:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,))
            finally:
                self._conn.close()  # closing releases the lock too

    def __enter__(self) -> _WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _check_model(where: str, manifest: Manifest, model: str, dimension: int | None = None) -> None:
    check_model(f"the database {_where(where)}", manifest, model, dimension)


# -- reading ------------------------------------------------------------------------------------------------------
class PgVectors:
    """Dense search over one version's vectors (HNSW over ``halfvec``; exact when ``allowed`` is given)."""

    def __init__(self, storage: PostgresStorage, version: int, dimension: int, count: int) -> None:
        self._storage, self._version, self._dimension, self._count = storage, version, dimension, count
        #: The last searches (query vector, allowed ids → depth, result): a query asks for its evidence and then
        #: for its ranking, deeper; both are answered by one scan of :data:`DENSE_DEPTH` rows.
        self._recent: LRU[tuple[bytes, bytes | None], tuple[int, list[tuple[int, float]]]] = LRU(RECENT_SEARCHES)

    @property
    def dimension(self) -> int:
        return self._dimension

    def __len__(self) -> int:
        return self._count

    def search(
        self, query: np.ndarray, k: int, allowed: Sequence[int] | np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        vector = np.asarray(query, dtype=np.float32).ravel()
        ids = None if allowed is None else np.asarray(allowed, dtype=np.int64).ravel()
        key = (vector.tobytes(), None if ids is None else hashlib.blake2b(ids.tobytes(), digest_size=16).digest())
        kept = self._recent.get(key)
        if kept is not None and (len(kept[1]) >= k or len(kept[1]) < kept[0]):  # deep enough, or all there is
            return kept[1][:k]
        depth = max(k, DENSE_DEPTH)
        scored = self._search(vector, depth, ids)
        self._recent.put(key, (depth, scored))
        return scored[:k]

    def _search(self, vector: np.ndarray, k: int, ids: np.ndarray | None) -> list[tuple[int, float]]:
        params: dict[str, Any] = {"v": self._version, "q": _vector(vector), "k": int(k)}
        dim = int(self._dimension)
        with self._storage.read() as conn:
            if ids is None:
                sql = (
                    f"SELECT id, embedding <#> %(q)s::vector FROM kb_chunks WHERE {VISIBLE} "
                    f"AND embedding IS NOT NULL ORDER BY embedding::halfvec({dim}) <#> %(q)s::halfvec({dim}) "
                    "LIMIT %(k)s"
                )
                if k > EF_SEARCH:  # HNSW never returns more than ef_search rows per scan step
                    with conn.pipeline():  # the three statements in one round trip
                        conn.execute(f"SET hnsw.ef_search = {int(k)}")
                        cursor = conn.execute(sql, params)
                        conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
                    rows = cursor.fetchall()
                else:
                    rows = conn.execute(sql, params).fetchall()
            else:  # exact: the subquery (OFFSET 0 keeps the planner from the approximate index)
                params["ids"] = ids.tolist()
                rows = conn.execute(
                    "SELECT id, d FROM (SELECT id, embedding <#> %(q)s::vector AS d FROM kb_chunks "
                    f"WHERE id = ANY(%(ids)s) AND {VISIBLE} AND embedding IS NOT NULL OFFSET 0) s "
                    "ORDER BY d, id LIMIT %(k)s",
                    params,
                ).fetchall()
        scored = [(int(chunk_id), -float(distance)) for chunk_id, distance in rows]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))  # HNSW's relaxed order, put right by the full vectors
        return scored

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        with self._storage.read() as conn:
            row = conn.execute("SELECT embedding::real[] FROM kb_chunks WHERE id = %s", (chunk_id,)).fetchone()
        if row is None or row[0] is None:
            raise KeyError(chunk_id)
        return np.asarray(row[0], dtype=np.float32)

    def many(self, chunk_ids: list[int]) -> dict[int, np.ndarray]:
        """The stored vectors of many chunks in one query (export)."""
        with self._storage.read() as conn:
            rows = conn.execute(
                "SELECT id, embedding::real[] FROM kb_chunks WHERE id = ANY(%s)", (chunk_ids,)
            ).fetchall()
        return {int(i): np.asarray(v, dtype=np.float32) for i, v in rows}


class _KnownTerms(Mapping[str, int]):
    """The index's terms as :class:`LexicalIndex` asks for them (``term in terms``): a term is known when the
    version has postings of it (fetched once and kept, :meth:`PgLexical.df`)."""

    def __init__(self, lexical: PgLexical) -> None:
        self._lexical = lexical

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self._lexical.df([term])[term] > 0

    def __getitem__(self, term: str) -> int:
        if term not in self:
            raise KeyError(term)
        return 0

    def __iter__(self) -> Iterator[str]:
        return iter(())  # never listed: a million terms stay in the database

    def __len__(self) -> int:
        return 0


class _Postings(NamedTuple):
    """A term's postings: chunk ids, term counts and chunk lengths (what its BM25 weights are computed from)."""

    ids: np.ndarray
    tf: np.ndarray
    lengths: np.ndarray

    @property
    def size(self) -> int:
        return max(len(self.ids), 1)  # an unknown term still takes a place in the cache


def _array(data: bytes, width: int) -> np.ndarray:
    """The elements of a one-dimensional integer array in PostgreSQL's binary form (``array_send``): a header of
    five int32 (dimensions, null flag, element type, length, lower bound), then a length and a big-endian value
    per element."""
    kind = np.dtype([("length", ">i4"), ("value", f">i{width}")])
    return np.frombuffer(data, dtype=kind, offset=20)["value"] if len(data) > 20 else np.zeros(0, dtype=np.int64)


_NONE = _Postings(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32))


class PgLexical(LexicalIndex):
    """BM25 over one version's German chunks: the analysis and query expansion of :class:`LexicalIndex`, the
    postings in the database. A term's postings are fetched once (one query for all the terms of a query not
    seen before) and kept, as the local engine keeps its matrix, up to :data:`CACHED_POSTINGS`; a query is
    scored here with numpy in the local engine's float32 arithmetic, so both engines give the same scores and
    the same order. The weights are computed at each search from the version's statistics (chunks, mean
    length, a term's document frequency: the length of its postings), so the reader of the next version keeps
    the postings of every term a write did not touch (:meth:`following`)."""

    def __init__(self, storage: PostgresStorage, version: int, rows: int, total_length: int,
                 vocabulary: dict[str, int]) -> None:  # fmt: skip
        empty = sparse.csc_matrix((0, 1), dtype=np.float32)
        super().__init__(np.zeros(0, dtype=np.int64), empty, {}, Analyzer(CompoundSplitter(vocabulary)))
        self.terms = _KnownTerms(self)  # type: ignore[assignment]
        self._storage, self._version = storage, version
        self._statistics(rows, total_length)
        #: Postings by term, the least recently used first.
        self._postings: OrderedDict[str, _Postings] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    def _statistics(self, rows: int, total_length: int) -> None:
        self._rows = rows
        #: The mean chunk length as the local engine divides by it (a float32).
        self._mean_length = float(np.float32(max(total_length / rows if rows else 1.0, 1e-6)))

    def following(
        self, version: int, rows: int, total_length: int, changed: Iterable[str], analyzer: Analyzer | None = None
    ) -> PgLexical:
        """The lexical search of a newer ``version`` with ``rows`` German chunks of ``total_length`` terms in
        all, whose postings differ from this version's only in the terms ``changed`` (the terms of the chunks
        added and removed since, :func:`changed_terms`): the postings of every other term are kept (shared,
        never copied). ``analyzer``: the newer version's (its vocabulary); None keeps this one's."""
        following = copy.copy(self)
        following._version = version
        if analyzer is not None:
            following.analyzer, following._speller = analyzer, None
        following._statistics(rows, total_length)
        following.terms = _KnownTerms(following)  # type: ignore[assignment]
        gone = set(changed)
        with self._lock:
            following._postings = OrderedDict((t, p) for t, p in self._postings.items() if t not in gone)
        following._cached = sum(p.size for p in following._postings.values())
        following._lock = threading.Lock()
        return following

    def postings(self, terms: list[str]) -> dict[str, _Postings]:
        """The postings of ``terms`` (empty for a term the version lacks); one query for those not kept."""
        kept = self._postings
        found: dict[str, _Postings] = {}
        missing: list[str] = []
        with self._lock:
            for term in dict.fromkeys(terms):
                got = kept.get(term)
                if got is None:
                    missing.append(term)
                else:
                    kept.move_to_end(term)
                    found[term] = got
        if missing:
            fetched = self._fetch(missing)
            with self._lock:
                for term, got in fetched.items():
                    if term not in kept:
                        kept[term] = got
                        self._cached += got.size
                while self._cached > CACHED_POSTINGS and len(kept) > len(fetched):
                    self._cached -= kept.popitem(last=False)[1].size
            found.update(fetched)
        return found

    def _fetch(self, terms: list[str]) -> dict[str, _Postings]:
        """The postings of ``terms`` from the database (term counts and lengths as float32, as the local engine
        computes with them)."""
        with self._storage.read() as conn:
            rows = (
                conn.cursor(binary=True)
                .execute(
                    "SELECT term, array_send(array_agg(chunk_id)), array_send(array_agg(tf)), "
                    f"array_send(array_agg(length)) FROM kb_postings WHERE term = ANY(%(t)s) AND {VISIBLE} "
                    "GROUP BY term",
                    {"t": terms, "v": self._version},
                )
                .fetchall()
            )
        fetched = dict.fromkeys(terms, _NONE)
        for term, ids_data, tf_data, length_data in rows:
            ids = _array(bytes(ids_data), 8)
            ids = ids.astype(np.int32) if ids.max() < 2**31 else ids.astype(np.int64)
            tf = _array(bytes(tf_data), 4).astype(np.float32)
            fetched[str(term)] = _Postings(ids, tf, _array(bytes(length_data), 4).astype(np.float32))
        return fetched

    def _weights(self, postings: _Postings) -> np.ndarray:
        """A term's BM25 weights in this version, as :meth:`LexicalIndex._weighted` computes them (idf in double,
        then float32; the rest in float32)."""
        df = len(postings.ids)
        idf = np.float32(np.log1p((self._rows - df + 0.5) / (df + 0.5)))
        norm = K1 * (1 - B + B * postings.lengths / self._mean_length)
        return (postings.tf * (K1 + 1) / (postings.tf + norm) * idf).astype(np.float32)

    def df(self, terms: list[str]) -> dict[str, int]:
        """How many chunks of the version have each term."""
        found = self.postings(terms)
        return {t: len(found[t].ids) for t in terms}

    def query_terms(self, query: str) -> dict[str, float]:
        self.postings(self.analyzer.terms(query))  # one query for the words the spelling check looks up
        return super().query_terms(query)

    def coverage(self, query: str) -> float:
        self.postings(self.analyzer.terms(query))  # one query for all of them
        return super().coverage(query)

    def search(
        self, weights: dict[str, float], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """What :meth:`LexicalIndex.search` computes, over the chunk ids themselves: scores are added up in an
        array in the order of the ids (:func:`_slots`), term after term in the order of the query's terms, and
        ties keep the order of the ids (the local engine's rows are in the order of the ids)."""
        if k <= 0 or not weights:
            return []
        found = self.postings(list(weights))
        columns = [(found[t], w) for t, w in weights.items() if len(found[t].ids)]
        if not columns:
            return []
        slots, chunk_of = _slots([postings.ids for postings, _ in columns])
        scores = np.zeros(len(chunk_of), dtype=np.float32)
        for (postings, weight), slot in zip(columns, slots, strict=True):
            scores[slot] += weight * self._weights(postings)
        candidates = np.flatnonzero(scores > 0)
        if allowed is not None:
            candidates = candidates[np.isin(chunk_of[candidates], np.asarray(allowed, dtype=np.int64))]
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(int(chunk_of[slot]), float(scores[slot])) for slot in order]


def _slots(ids: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Where each posting's score is added (per term), and the chunk id of each place, in the order of the ids:
    the range of the query's chunk ids when it is at most :data:`ID_RANGE_FACTOR` times their number (chunk ids
    are mostly dense), else the distinct ids (a range that years of writes spread out)."""
    low = min(int(part.min()) for part in ids)
    high = max(int(part.max()) for part in ids)
    total = sum(len(part) for part in ids)
    if high - low < ID_RANGE_FACTOR * total:
        return [part - low for part in ids], np.arange(low, high + 1, dtype=np.int64)
    chunk_of, inverse = np.unique(np.concatenate(ids), return_inverse=True)
    bounds = np.cumsum([len(part) for part in ids])[:-1]
    return list(np.split(inverse, bounds)), chunk_of.astype(np.int64)


def changed_terms(conn: psycopg.Connection[TupleRow], chunk_ids: Sequence[int] | np.ndarray) -> list[str]:
    """The terms of the chunks ``chunk_ids`` (those added and removed between two versions): the terms whose
    postings differ between them (:meth:`PgLexical.following`). Removed postings are kept until
    :data:`KEEP_VERSIONS` versions later, so the chunks removed since a reader at most that many versions old
    still have theirs."""
    if not len(chunk_ids):
        return []
    rows = conn.execute(
        "SELECT DISTINCT term FROM kb_postings WHERE chunk_id = ANY(%s)", ([int(c) for c in chunk_ids],)
    ).fetchall()
    return [str(t) for (t,) in rows]


class PgReader:
    """One published version; document metadata and each document's chunk ids kept in memory, the rest read
    from the database on demand."""

    def __init__(self, storage: PostgresStorage, version: int, manifest: Manifest,
                 documents: dict[str, StoredDocument], doc_chunks: dict[str, np.ndarray],
                 near_duplicates: dict[str, tuple[str, ...]], lexical: PgLexical) -> None:  # fmt: skip
        self._storage, self._version, self._manifest = storage, version, manifest
        self.documents = documents
        self.doc_chunks = doc_chunks
        self.near_duplicates = near_duplicates
        self.hidden = frozenset(d for d, doc in documents.items() if not visible_to(doc))
        self.vectors = PgVectors(storage, version, manifest.dimension, manifest.chunks)
        self.lexical = lexical
        owners = list(doc_chunks)
        self._owners = owners
        if owners:
            ids = np.concatenate([doc_chunks[d] for d in owners])
            own = np.concatenate([np.full(len(doc_chunks[d]), i, dtype=np.int32) for i, d in enumerate(owners)])
            order = np.argsort(ids, kind="stable")
            self._chunk_order, self._chunk_owner = ids[order], own[order]
        else:
            self._chunk_order = np.zeros(0, dtype=np.int64)
            self._chunk_owner = np.zeros(0, dtype=np.int32)

    @classmethod
    def load(
        cls, storage: PostgresStorage, conn: psycopg.Connection[TupleRow], version: int,
        previous: PgReader | None = None,
    ) -> PgReader:  # fmt: skip
        """``previous``: the reader this process opened last; when it is of a version at most
        :data:`ADVANCE_VERSIONS` older, it is taken over and only the rows changed since are read
        (:meth:`_advanced`)."""
        if schema_version(conn) != SCHEMA_VERSION:
            raise IndexUnavailableError(
                f"The database {_where(storage.read_url)} has schema version {schema_version(conn)}, this release "
                f"needs {SCHEMA_VERSION}; run `kb db migrate`."
            )
        v = {"v": version}
        row = conn.execute(
            "SELECT manifest, german_chunks, german_length, near_duplicates FROM kb_versions WHERE version = %s",
            (version,),
        ).fetchone()
        assert row is not None
        manifest = Manifest(**row[0])
        if previous is not None and 0 < version - previous._version <= ADVANCE_VERSIONS:
            advanced = previous._advanced(conn, version, manifest, row)
            if advanced is not None:
                return advanced
        docs = conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM {_DOCS_OF_VERSION} WHERE {_DOC_VISIBLE} ORDER BY d.key", v
        )
        documents = {doc.id: doc for doc in map(_document, docs.fetchall())}
        chunk_rows = conn.execute(
            f"SELECT doc_id, id FROM kb_chunks WHERE {VISIBLE} ORDER BY doc_id, ordinal", v
        ).fetchall()
        grouped: dict[str, list[int]] = defaultdict(list)
        for doc_id, chunk_id in chunk_rows:
            grouped[doc_id].append(chunk_id)
        doc_chunks = {d: np.asarray(ids, dtype=np.int64) for d, ids in grouped.items()}
        vocabulary: dict[str, int] = dict(
            conn.execute(f"SELECT word, count FROM kb_vocabulary WHERE {VISIBLE}", v).fetchall()
        )
        lexical = PgLexical(storage, version, int(row[1]), int(row[2]), vocabulary)
        near = {d: tuple(o) for d, o in row[3].items()}
        reader = cls(storage, version, manifest, documents, doc_chunks, near, lexical)
        if previous is not None and 0 < version - previous._version < KEEP_VERSIONS:
            reader.lexical = previous._postings_carried(conn, reader, int(row[1]), int(row[2]))
        return reader

    def _postings_carried(
        self, conn: psycopg.Connection[TupleRow], newer: PgReader, rows: int, total_length: int
    ) -> PgLexical:
        """``newer``'s lexical search with the postings this reader kept of the terms no chunk added or removed
        since has (what a write did not touch; :meth:`PgLexical.following`)."""
        changed = np.setxor1d(self._chunk_order, newer._chunk_order, assume_unique=True)
        if len(changed) > CARRIED_CHANGES:
            return newer.lexical
        terms = changed_terms(conn, changed)
        newest = conn.execute("SELECT max(version) FROM kb_versions").fetchone()
        if newest is None or newest[0] is None or int(newest[0]) - KEEP_VERSIONS + 1 > self._version:
            return newer.lexical  # a writer may have deleted postings removed since this version
        return self.lexical.following(newer._version, rows, total_length, terms, newer.lexical.analyzer)

    def _advanced(
        self, conn: psycopg.Connection[TupleRow], version: int, manifest: Manifest, row: Sequence[Any]
    ) -> PgReader | None:
        """The newer ``version`` built from this reader and the rows added or removed since (documents, their
        metadata and chunk ids, vocabulary entries): what a write changed, not what the index holds. None when
        rows removed since may already be deleted (a writer deletes rows removed :data:`KEEP_VERSIONS` - 1
        versions before the one it publishes): the caller loads the version whole."""
        span = {"p": self._version, "v": version}
        changed_rows = "(added > %(p)s AND added <= %(v)s) OR (removed > %(p)s AND removed <= %(v)s)"
        touched = conn.execute(f"SELECT id FROM kb_documents WHERE {changed_rows}", span).fetchall()
        structural = {str(d) for (d,) in touched}
        touched = conn.execute(
            "SELECT d.id FROM kb_metadata m JOIN kb_documents d ON d.row_id = m.doc_row "
            "WHERE (m.added > %(p)s AND m.added <= %(v)s) OR (m.removed > %(p)s AND m.removed <= %(v)s)",
            span,
        ).fetchall()
        ids = structural | {str(d) for (d,) in touched}
        rows = conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM {_DOCS_OF_VERSION} WHERE d.id = ANY(%(ids)s) AND {_DOC_VISIBLE}",
            {"ids": sorted(ids), "v": version},
        ).fetchall()
        changed = {doc.id: doc for doc in map(_document, rows)}
        chunk_rows = conn.execute(
            f"SELECT doc_id, id FROM kb_chunks WHERE doc_id = ANY(%(ids)s) AND {VISIBLE} ORDER BY doc_id, ordinal",
            {"ids": sorted(structural), "v": version},
        ).fetchall()
        words = conn.execute(
            f"SELECT word, count, added <= %(v)s AND (removed IS NULL OR removed > %(v)s) FROM kb_vocabulary "
            f"WHERE {changed_rows}",
            span,
        ).fetchall()
        newest = conn.execute("SELECT max(version) FROM kb_versions").fetchone()
        if newest is None or newest[0] is None or int(newest[0]) - KEEP_VERSIONS + 1 > self._version:
            return None  # a writer may have deleted rows removed after this reader's version: read it whole
        documents = dict(self.documents)
        for doc_id in ids - changed.keys():
            documents.pop(doc_id, None)
        new = any(doc_id not in documents for doc_id in changed)
        documents.update(changed)
        if new:  # in the order of their keys, as a reader loaded whole has them
            documents = dict(sorted(documents.items(), key=lambda item: item[1].key))
        hidden = (self.hidden - ids) | {d for d, doc in changed.items() if not visible_to(doc)}
        reader = copy.copy(self)
        reader._version, reader._manifest, reader.documents, reader.hidden = version, manifest, documents, hidden
        reader.vectors = PgVectors(self._storage, version, manifest.dimension, manifest.chunks)
        reader.near_duplicates = {d: tuple(o) for d, o in row[3].items()}
        if structural:
            reader._chunks_changed(structural, chunk_rows)
        vocabulary = self.lexical.analyzer.splitter.vocabulary
        updates: dict[str, int] = {}
        for word, count, visible in words:
            if visible:
                updates[str(word)] = int(count)
            else:
                updates.setdefault(str(word), 0)
        updates = {w: n for w, n in updates.items() if n != vocabulary.get(w, 0)}
        if updates or structural:
            analyzer = Analyzer(_splitter_updated(self.lexical.analyzer.splitter, updates))
            # The postings kept of every term the write did not touch go on to the newer version: the terms of
            # the chunks removed (this reader's chunks of the changed documents) and added (``chunk_rows``).
            touched_ids = [self.doc_chunks[d] for d in structural if d in self.doc_chunks]
            touched_ids.append(np.asarray([int(c) for _, c in chunk_rows], dtype=np.int64))
            changed_ids = np.concatenate(touched_ids)
            if len(changed_ids) <= CARRIED_CHANGES:
                terms = changed_terms(conn, changed_ids)
                lexical = self.lexical.following(version, int(row[1]), int(row[2]), terms, analyzer)
            else:
                lexical = PgLexical(self._storage, version, int(row[1]), int(row[2]), {})
                lexical.analyzer = analyzer
        else:  # metadata alone: the same postings, the analyzer and the kept document frequencies are shared
            lexical = copy.copy(self.lexical)
            lexical._version = version
            lexical.terms = _KnownTerms(lexical)  # type: ignore[assignment]
        reader.lexical = lexical
        return reader

    def _chunks_changed(self, doc_ids: set[str], rows: list[tuple[Any, ...]]) -> None:
        """Replace the chunk ids of ``doc_ids`` by ``rows`` (``doc_id, chunk id`` of the new version, in order)."""
        grouped: dict[str, list[int]] = defaultdict(list)
        for doc_id, chunk_id in rows:
            grouped[str(doc_id)].append(int(chunk_id))
        doc_chunks = dict(self.doc_chunks)
        gone = [doc_chunks.pop(d) for d in doc_ids if d in doc_chunks]
        order, owner = self._chunk_order, self._chunk_owner
        if gone:
            keep = ~np.isin(order, np.concatenate(gone))
            order, owner = order[keep], owner[keep]
        owners = list(self._owners)
        new_ids: list[np.ndarray] = []
        new_owners: list[np.ndarray] = []
        for doc_id, ids in grouped.items():
            doc_chunks[doc_id] = np.asarray(ids, dtype=np.int64)
            new_ids.append(doc_chunks[doc_id])
            new_owners.append(np.full(len(ids), len(owners), dtype=np.int32))
            owners.append(doc_id)  # the list only grows: a removed document's entry is never pointed at again
        if new_ids:
            ids_added, owned = np.concatenate(new_ids), np.concatenate(new_owners)
            sort = np.argsort(ids_added, kind="stable")
            ids_added, owned = ids_added[sort], owned[sort]
            at = np.searchsorted(order, ids_added)  # new chunk ids come from a sequence: mostly appended
            order, owner = np.insert(order, at, ids_added), np.insert(owner, at, owned)
        self.doc_chunks, self._chunk_order, self._chunk_owner, self._owners = doc_chunks, order, owner, owners

    @property
    def name(self) -> str:
        return _version_name(self._version)

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    def near_duplicates_of(self, doc_id: str) -> list[StoredDocument]:
        return [self.documents[d] for d in self.near_duplicates.get(doc_id, ()) if d in self.documents]

    def doc_of(self, chunk_ids: list[int]) -> dict[int, str]:
        return owners_of(chunk_ids, self._chunk_order, self._chunk_owner, self._owners)

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        with self._storage.read() as conn:
            rows = conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM kb_chunks WHERE id = ANY(%(ids)s) AND {VISIBLE}",
                {"ids": [int(i) for i in ids], "v": self._version},
            ).fetchall()
        return {int(r[0]): StoredChunk(*r) for r in rows}

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        with self._storage.read() as conn:
            rows = conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM kb_chunks WHERE doc_id = %(d)s AND {VISIBLE} ORDER BY ordinal",
                {"d": doc_id, "v": self._version},
            ).fetchall()
        return [StoredChunk(*r) for r in rows]

    def document_text(self, doc_id: str) -> DocumentText | None:
        with self._storage.read() as conn:
            row = conn.execute(
                f"SELECT row_id FROM kb_documents WHERE id = %(d)s AND {VISIBLE}",
                {"d": doc_id, "v": self._version},
            ).fetchone()
            if row is None:
                return None
            return _document_text(conn, int(row[0]))

    def check_model(self, model: str, dimension: int | None = None) -> None:
        _check_model(self._storage.read_url, self._manifest, model, dimension)


def _splitter_updated(splitter: CompoundSplitter, counts: dict[str, int]) -> CompoundSplitter:
    """``splitter`` with the vocabulary counts of ``counts`` (0: the word is gone), without folding the whole
    vocabulary again (what :class:`CompoundSplitter` does when built)."""
    vocabulary = dict(splitter.vocabulary)
    folded = dict(splitter._folded)
    for word, count in counts.items():
        key = fold(word)
        total = folded.get(key, 0) - vocabulary.pop(word, 0) + count
        if count > 0:
            vocabulary[word] = count
        if total > 0:
            folded[key] = total
        else:
            folded.pop(key, None)
    updated = copy.copy(splitter)
    updated.vocabulary, updated._folded, updated._cache = vocabulary, folded, {}
    return updated


def _document_text(conn: psycopg.Connection[TupleRow], doc_row: int) -> DocumentText:
    pages = conn.execute(
        "SELECT page, text, ocr FROM kb_page_texts WHERE doc_row = %s ORDER BY page", (doc_row,)
    ).fetchall()
    headings = conn.execute(
        "SELECT text, page FROM kb_headings WHERE doc_row = %s ORDER BY ordinal", (doc_row,)
    ).fetchall()
    return DocumentText(
        pages=tuple(PageText(int(n), str(t), bool(o)) for n, t, o in pages),
        headings=tuple(PageHeading(str(t), int(n)) for t, n in headings),
    )


# -- writing ------------------------------------------------------------------------------------------------------
def live_documents(
    conn: psycopg.Connection[TupleRow], keys: Sequence[str] = (), under: Sequence[str] = ()
) -> list[tuple[str, str, str, str]]:
    """``(id, key, path, content hash)`` of the live documents keyed ``keys`` or whose path is one of ``under``
    or lies below one of them (indexed: ``kb_documents_live``, ``kb_documents_live_path``)."""
    clauses = ["key = ANY(%s)"]
    params: list[Any] = [list(keys)]
    for root in under:
        prefix = root.rstrip("/") + "/"
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("path = %s OR path LIKE %s")
        params.extend([root, escaped + "%"])
    rows = conn.execute(
        f"SELECT id, key, path, content_hash FROM kb_documents WHERE removed IS NULL AND ({' OR '.join(clauses)}) "
        "ORDER BY key",
        params,
    ).fetchall()
    return [(str(d), str(k), str(p), str(h)) for d, k, p, h in rows]


class PgWriter:
    """Version ``version`` being written in one transaction on its own connection (rolled back by
    :meth:`discard` or when the process dies; nothing of it is visible before :meth:`publish` commits)."""

    def __init__(self, conn: psycopg.Connection[TupleRow], version: int, base: Manifest | None,
                 dimension: int, counts: tuple[int, int, int, int] = (0, 0, 0, 0)) -> None:  # fmt: skip
        """``counts``: documents, chunks, German chunks and their total BM25 length in the version continued;
        the writer keeps them current with each change, so publishing counts nothing again."""
        self._conn, self._version, self._base, self._dimension = conn, version, base, dimension
        self._documents, self._chunks, self._german, self._german_length = counts
        #: The total BM25 length of the German chunks this writer added (set by :meth:`finish_rows`).
        self._added_length = 0
        self._p = {"p": version}
        #: German chunks this writer added (id → passage text): analysed for BM25 in :meth:`finish_rows`.
        self._added: dict[int, str] = {}
        #: Vocabulary counts of the German chunks this writer removed from earlier versions.
        self._removed_vocabulary: Counter[str] = Counter()
        #: Documents this writer removed or replaced, and the document rows it signed (near-duplicates).
        self._removed_ids: set[str] = set()
        self._signed: set[int] = set()
        self._rows_finished = False
        self._rebuild = False
        #: A document or chunk was put or removed (else only metadata changed: nothing is analysed or grouped).
        self._structural = False
        self._metadata_changed: set[str] = set()
        self._analysed = False  # finish_rows ran (and wrote postings and vocabulary rows of this version)
        self._done = False
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS kb_chunks_hnsw_{int(dimension)} ON kb_chunks "
            f"USING hnsw ((embedding::halfvec({int(dimension)})) halfvec_ip_ops)"
        )

    @property
    def base(self) -> Manifest | None:
        return self._base

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def vector_count(self) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM kb_chunks WHERE removed IS NULL AND embedding IS NOT NULL"
        ).fetchone()
        return int(row[0]) if row else 0

    def known(self) -> dict[str, KnownDocument]:
        rows = self._conn.execute(
            "SELECT id, key, content_hash FROM kb_documents WHERE removed IS NULL"
        ).fetchall()
        return {str(key): KnownDocument(str(doc_id), str(h)) for doc_id, key, h in rows}

    def locations(self) -> list[DocumentLocation]:
        rows = self._conn.execute("SELECT id, key, path FROM kb_documents WHERE removed IS NULL ORDER BY key")
        return [DocumentLocation(str(d), str(k), str(p)) for d, k, p in rows.fetchall()]

    def locations_of(self, keys: Sequence[str] = (), under: Sequence[str] = ()) -> list[DocumentLocation]:
        """The live documents keyed ``keys`` or stored from a path under one of the folders (or files)
        ``under``: what a write of a few files needs instead of every document (:func:`live_documents`)."""
        return [DocumentLocation(d, k, p) for d, k, p, _ in live_documents(self._conn, keys, under)]

    def document(self, doc_id: str) -> StoredDocument | None:
        row = self._conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM {_LIVE_DOCS} WHERE d.id = %s AND d.removed IS NULL", (doc_id,)
        ).fetchone()
        return _document(row) if row else None

    def chunks_of(self, doc_id: str) -> list[StoredChunk]:
        rows = self._conn.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM kb_chunks WHERE doc_id = %s AND removed IS NULL ORDER BY ordinal",
            (doc_id,),
        ).fetchall()
        return [StoredChunk(*r) for r in rows]

    def vectors_of(self, chunk_ids: list[int]) -> np.ndarray:
        if not chunk_ids:
            return np.zeros((0, self._dimension), dtype=np.float32)
        rows: dict[int, list[float]] = dict(
            self._conn.execute(
                "SELECT id, embedding::real[] FROM kb_chunks WHERE id = ANY(%s)", ([int(c) for c in chunk_ids],)
            ).fetchall()
        )
        return np.asarray([rows[c] for c in chunk_ids], dtype=np.float32)

    def put_document(
        self, doc_id: str, key: str, content_hash: str, document: Document, chunks: list[Chunk],
        *, ingested_at: str | None = None,
    ) -> list[int]:  # fmt: skip
        self.remove_document(doc_id)
        self._structural = True
        german = document.metadata.language in GERMAN
        text = document.text_by_page()
        row = self._conn.execute(
            "INSERT INTO kb_documents (id, key, path, content_hash, file_type, metadata, pages, words, "
            "ingested_at, german, added) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING row_id",
            (
                doc_id, key, str(document.path), content_hash, document.file_type,
                json.dumps(document.metadata.as_dict(), ensure_ascii=False), document.pages, document.word_count,
                ingested_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), german, self._version,
            ),
        ).fetchone()  # fmt: skip
        assert row is not None
        doc_row = int(row[0])
        ids: list[int] = []
        if chunks:
            got = self._conn.execute(
                "SELECT nextval('kb_chunk_ids') FROM generate_series(1, %s)", (len(chunks),)
            ).fetchall()
            ids = [int(r[0]) for r in got]
        with self._conn.cursor() as cur:
            with cur.copy(
                "COPY kb_chunks (id, doc_row, doc_id, ordinal, heading, page, page_end, text, added) FROM STDIN"
            ) as copy:
                for chunk_id, chunk in zip(ids, chunks, strict=True):
                    copy.write_row((chunk_id, doc_row, doc_id, chunk.ordinal, chunk.heading, chunk.page,
                                    chunk.page_end, chunk.text, self._version))  # fmt: skip
            cur.executemany(
                "INSERT INTO kb_page_texts (doc_row, page, ocr, text) VALUES (%s, %s, %s, %s)",
                [(doc_row, p.page, p.ocr, p.text) for p in text.pages],
            )
            cur.executemany(
                "INSERT INTO kb_headings (doc_row, ordinal, page, text) VALUES (%s, %s, %s, %s)",
                [(doc_row, n, h.page, h.text) for n, h in enumerate(text.headings)],
            )
        self._documents += 1
        self._chunks += len(ids)
        if german:
            self._german += len(ids)
            title = document.metadata.title
            self._added.update(
                (i, passage_text(title, c.heading, c.text)) for i, c in zip(ids, chunks, strict=True)
            )
        self._rows_finished = False
        return ids

    def add_vectors(self, chunk_ids: list[int], vectors: np.ndarray) -> None:
        if not chunk_ids:
            return
        self._conn.execute(
            "UPDATE kb_chunks c SET embedding = v.e::vector FROM unnest(%s::bigint[], %s::text[]) AS v(id, e) "
            "WHERE c.id = v.id",
            ([int(c) for c in chunk_ids], [_vector(row) for row in np.asarray(vectors)]),
        )

    def remove_document(self, doc_id: str) -> None:
        rows = self._conn.execute(
            "SELECT row_id, added, german, metadata FROM kb_documents WHERE id = %s AND removed IS NULL", (doc_id,)
        ).fetchall()
        for doc_row, added, german, metadata in rows:
            self._rows_finished = False
            self._structural = True
            chunks = self._conn.execute(
                "SELECT id, heading, text FROM kb_chunks WHERE doc_row = %s", (doc_row,)
            ).fetchall()
            self._documents -= 1
            self._removed_ids.add(doc_id)
            self._chunks -= len(chunks)
            self._german -= len(chunks) if german else 0
            if added == self._version:  # written by this writer: no earlier version has it
                for chunk_id, *_ in chunks:
                    self._added.pop(int(chunk_id), None)
                self._conn.execute("DELETE FROM kb_documents WHERE row_id = %s", (doc_row,))
                continue
            if german:
                lengths = self._conn.execute(
                    "SELECT coalesce(sum(length), 0) FROM (SELECT DISTINCT chunk_id, length FROM kb_postings "
                    "WHERE chunk_id = ANY(%s) AND removed IS NULL) s",
                    ([int(c) for c, *_ in chunks],),
                ).fetchone()
                self._german_length -= int(lengths[0]) if lengths else 0
                title = Metadata.from_dict(metadata).title
                self._removed_vocabulary.update(vocabulary_counts(passage_text(title, h, t) for _, h, t in chunks))
            params = {"p": self._version, "r": doc_row}
            self._conn.execute(
                "UPDATE kb_postings SET removed = %(p)s WHERE chunk_id IN "
                "(SELECT id FROM kb_chunks WHERE doc_row = %(r)s) AND removed IS NULL",
                params,
            )
            self._conn.execute("UPDATE kb_chunks SET removed = %(p)s WHERE doc_row = %(r)s", params)
            self._conn.execute("UPDATE kb_documents SET removed = %(p)s WHERE row_id = %(r)s", params)

    def remove_all(self) -> None:
        """Start from nothing (``kb ingest --rebuild``): every live row is removed in this version."""
        for table in ("kb_postings", "kb_chunks", "kb_documents"):
            self._conn.execute(f"UPDATE {table} SET removed = %(p)s WHERE removed IS NULL", self._p)
        self._added.clear()
        self._removed_vocabulary.clear()
        self._documents = self._chunks = self._german = self._german_length = 0
        self._rebuild = True  # the vocabulary starts from nothing (finish_rows)
        self._structural = True

    def set_metadata(self, doc_id: str, metadata: Metadata) -> None:
        """Replace a live document's metadata, keeping chunks, vectors and postings (the caller makes sure title
        and language, part of what is searched, did not change): a row of ``kb_metadata`` of this version laid
        over the document row's metadata, the one before it stamped removed, so that a reader of an earlier
        version keeps reading that version's metadata."""
        row = self._conn.execute(
            "SELECT row_id FROM kb_documents WHERE id = %s AND removed IS NULL", (doc_id,)
        ).fetchone()
        if row is None:
            raise KeyError(doc_id)
        params = {"r": int(row[0]), "p": self._version, "m": json.dumps(metadata.as_dict(), ensure_ascii=False)}
        self._conn.execute(
            "WITH mine AS (DELETE FROM kb_metadata WHERE doc_row = %(r)s AND added = %(p)s), "
            "earlier AS (UPDATE kb_metadata SET removed = %(p)s WHERE doc_row = %(r)s AND removed IS NULL "
            "AND added < %(p)s) "
            "INSERT INTO kb_metadata (doc_row, metadata, added) VALUES (%(r)s, %(m)s, %(p)s)",
            params,
        )
        self._metadata_changed.add(doc_id)

    def finish_rows(self) -> None:
        """BM25 postings of the chunks this writer added, analysed with the vocabulary of the new version (what
        :meth:`kb.lexical.LexicalIndex.updated` does for the local engine), then the near-duplicate groups."""
        if self._rows_finished or not self._structural:  # metadata alone: no postings, no groups change
            return
        conn, p = self._conn, self._p
        if self._analysed:  # idempotent: what an earlier call wrote is written again from the full change
            conn.execute("DELETE FROM kb_postings WHERE added = %(p)s", p)
            conn.execute("DELETE FROM kb_vocabulary WHERE added = %(p)s", p)
            conn.execute("UPDATE kb_vocabulary SET removed = NULL WHERE removed = %(p)s", p)
        self._analysed = True
        if self._rebuild:
            conn.execute("UPDATE kb_vocabulary SET removed = %(p)s WHERE removed IS NULL", p)
        delta = vocabulary_counts(self._added.values())
        delta.subtract(self._removed_vocabulary)
        changed = {w: n for w, n in delta.items() if n}
        # Only the vocabulary this write needs: the counts of the words it changes, and the entries the compound
        # splitter looks up for the words of the added chunks (stored words are case-folded, so folding them is
        # translating their umlauts); the splits equal those with the whole vocabulary.
        lookups: set[str] = set()
        for text in self._added.values():
            for word in set(words(text)):
                lookups.update(CompoundSplitter.lookups(word))
        if self._rebuild:
            rows: list[tuple[Any, ...]] = []  # every word of earlier versions was just removed
        elif len(lookups) + len(changed) > VOCABULARY_LOOKUPS:  # a large write: the whole vocabulary is cheaper
            rows = conn.execute("SELECT word, count FROM kb_vocabulary WHERE removed IS NULL").fetchall()
        else:
            rows = conn.execute(
                "SELECT word, count FROM kb_vocabulary WHERE removed IS NULL "
                "AND (word = ANY(%(w)s) OR translate(word, 'äöü', 'aou') = ANY(%(k)s))",
                {"w": list(changed), "k": sorted(lookups)},
            ).fetchall()
        base: dict[str, int] = {str(w): int(n) for w, n in rows}
        vocabulary = Counter(base)
        vocabulary.update(changed)
        if changed:
            conn.execute(
                "UPDATE kb_vocabulary SET removed = %(p)s WHERE word = ANY(%(w)s) AND removed IS NULL",
                {"p": self._version, "w": list(changed)},
            )
            with conn.cursor().copy("COPY kb_vocabulary (word, count, added) FROM STDIN") as copy:
                for word in changed:
                    if vocabulary[word] > 0:
                        copy.write_row((word, vocabulary[word], self._version))
        analyzer = Analyzer(CompoundSplitter({w: n for w, n in vocabulary.items() if n > 0}))
        self._added_length = 0
        with conn.cursor().copy("COPY kb_postings (term, chunk_id, tf, length, added) FROM STDIN") as copy:
            for chunk_id, text in self._added.items():
                counts = Counter(analyzer.terms(text))
                length = sum(counts.values())
                self._added_length += length
                for term, tf in counts.items():
                    copy.write_row((term, chunk_id, tf, length, self._version))
        self._near_duplicates()
        self._rows_finished = True

    def _near_duplicates(self) -> None:
        """Sign the document rows without a signature (the ones this writer added) and store their band keys."""
        conn = self._conn
        unsigned = conn.execute(
            "SELECT d.row_id, c.text FROM kb_documents d JOIN kb_chunks c ON c.doc_row = d.row_id "
            "WHERE d.signature IS NULL AND d.removed IS NULL ORDER BY d.row_id, c.id"
        ).fetchall()
        texts: dict[int, list[str]] = defaultdict(list)
        for doc_row, text in unsigned:
            texts[int(doc_row)].append(str(text))
        empty = conn.execute("SELECT row_id FROM kb_documents WHERE removed IS NULL AND signature IS NULL")
        for (doc_row,) in empty.fetchall():  # documents without chunks have no text to sign
            texts.setdefault(int(doc_row), [])
        signed: list[tuple[int, np.ndarray]] = []
        for doc_row, parts in texts.items():
            sig = duplicates.signature(parts)
            conn.execute(
                "UPDATE kb_documents SET signature = %s WHERE row_id = %s",
                (b"" if sig is None else sig.tobytes(), doc_row),
            )
            self._signed.add(doc_row)
            if sig is not None:
                signed.append((doc_row, sig))
        if signed:
            keys = duplicates.band_keys(np.stack([sig for _, sig in signed])).view(np.int64).tolist()
            with conn.cursor().copy("COPY kb_bands (doc_row, band, key) FROM STDIN") as copy:
                for (doc_row, _), row in zip(signed, keys, strict=True):
                    for band, key in enumerate(row):
                        copy.write_row((doc_row, band, key))

    def _groups(self) -> dict[str, list[str]]:
        """The near-duplicate groups of the new version: those of the version before, computed again around the
        documents this writer changed only (:func:`kb.duplicates.regroup`; the candidates sharing a band with an
        added document come from ``kb_bands`` in one indexed query)."""
        conn = self._conn
        previous: list[list[str]] = []
        if not self._rebuild and self._base is not None:
            row = conn.execute(
                "SELECT near_duplicates FROM kb_versions WHERE version = %s", (self._version - 1,)
            ).fetchone()
            seen: set[tuple[str, ...]] = set()
            for doc_id, others in (row[0] if row else {}).items():
                seen.add(tuple(sorted({doc_id, *others})))
            previous = sorted((list(group) for group in seen), key=lambda g: g[0])
        rows = conn.execute(
            "SELECT id, signature FROM kb_documents WHERE removed IS NULL AND length(signature) > 0 "
            "AND (added = %(p)s OR row_id = ANY(%(signed)s))",
            {"p": self._version, "signed": sorted(self._signed)},
        ).fetchall()
        added = {str(d): np.frombuffer(bytes(s), dtype=np.uint64) for d, s in rows}

        def signature_of(ids: set[str]) -> dict[str, np.ndarray]:
            found = conn.execute(
                "SELECT id, signature FROM kb_documents WHERE removed IS NULL AND length(signature) > 0 "
                "AND id = ANY(%s)",
                (sorted(ids),),
            ).fetchall()
            return {str(d): np.frombuffer(bytes(s), dtype=np.uint64) for d, s in found}

        def sharing_band(keys: np.ndarray) -> set[str]:
            bands = np.broadcast_to(np.arange(keys.shape[1], dtype=np.int16), keys.shape)
            found = conn.execute(
                "SELECT DISTINCT d.id FROM unnest(%s::smallint[], %s::bigint[]) AS q(band, key) "
                "JOIN kb_bands b ON b.band = q.band AND b.key = q.key "
                "JOIN kb_documents d ON d.row_id = b.doc_row AND d.removed IS NULL",
                (bands.ravel().tolist(), np.ascontiguousarray(keys).view(np.int64).ravel().tolist()),
            ).fetchall()
            return {str(d) for (d,) in found}

        if self._rebuild or self._base is None:  # every document is new: grouped at once
            groups = duplicates.groups(added)
        else:
            groups = duplicates.regroup(previous, set(self._removed_ids), added, signature_of, sharing_band)
        return {d: sorted(o for o in group if o != d) for group in groups for d in group}

    def publish(self, *, model: str, chunking: dict[str, Any], encoder: str | None) -> Manifest:
        self.finish_rows()
        conn = self._conn
        docs, chunks, german_chunks = self._documents, self._chunks, self._german
        german_length = self._german_length + self._added_length
        manifest = Manifest(
            version=self._version, model=model, dimension=self._dimension, chunking=chunking, documents=int(docs),
            chunks=int(chunks), built_at=datetime.now(UTC).isoformat(timespec="seconds"), encoder=encoder,
            metadata_changed=None if self._structural or self._base is None else sorted(self._metadata_changed),
        )  # fmt: skip
        if self._structural or self._base is None:
            conn.execute(
                "INSERT INTO kb_versions (version, manifest, german_chunks, german_length, near_duplicates) "
                "VALUES (%s, %s, %s, %s, %s)",
                (self._version, json.dumps(manifest.__dict__), german_chunks, int(german_length),
                 json.dumps(self._groups())),
            )  # fmt: skip
        else:  # the groups of the version continued (signatures are of the text, which did not change)
            conn.execute(
                "INSERT INTO kb_versions (version, manifest, german_chunks, german_length, near_duplicates) "
                "SELECT %s, %s, %s, %s, near_duplicates FROM kb_versions WHERE version = %s",
                (self._version, json.dumps(manifest.__dict__), german_chunks, int(german_length),
                 self._version - 1),
            )  # fmt: skip
        gone = {"old": self._version - KEEP_VERSIONS + 1}  # no reader of a kept version sees these rows
        conn.execute("DELETE FROM kb_documents WHERE removed <= %(old)s", gone)
        conn.execute("DELETE FROM kb_vocabulary WHERE removed <= %(old)s", gone)
        conn.execute("DELETE FROM kb_postings WHERE removed <= %(old)s", gone)
        conn.execute("DELETE FROM kb_metadata WHERE removed <= %(old)s", gone)
        conn.commit()
        conn.close()
        self._done = True
        return manifest

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._conn.rollback()
        finally:
            self._conn.close()
