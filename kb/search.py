"""The Searcher: validates a query, ranks chunks (dense, lexical or fused), filters, groups and builds hits.

Hybrid ranking fuses the dense (FAISS) and lexical (BM25) rankings by their scaled scores. The lexical side is
weighted per query by the evidence it has (:mod:`kb.fusion`): the query's language (how much of it the German
index knows: a Turkish, Arabic, Ukrainian or English query keeps the dense ranking) and how much of the query's
weight the best lexical hits hold. The same evidence gives each result list a confidence and the "nothing fits"
decision (:mod:`kb.confidence`). A document's translations follow it in the results, the one in the query's
language first (:mod:`kb.translations`).

The live index version is re-read when ``kb ingest`` publishes a new one, so a running server picks it up without
a restart; requests already running finish on the version they started with.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from kb import confidence, constraints, fusion, translations
from kb.constraints import Constraint
from kb.embedder import Embedder
from kb.errors import NotFoundError, QueryError
from kb.fields import MODES, Mode
from kb.filters import Filters, count_facets, filter_params
from kb.lexical import Analyzer, load_synonyms
from kb.lru import LRU
from kb.settings import Settings
from kb.storage import StorageReader, StoredChunk, StoredDocument, open_storage
from kb.storage.scoped import scoped
from kb.visibility import Viewer, visible_to

SNIPPET_WORDS = 40
#: Passages of each ranking read for the evidence of a query (:mod:`kb.fusion`).
EVIDENCE_DEPTH = 100
#: Grouped search looks at this many chunks per wanted document first (more if too few documents come back).
GROUP_POOL_FACTOR = 8
FACET_DOCUMENTS = 100
#: A LaKI recommendation moves a document up by at most this many places among the results (never further).
RECOMMENDED_LIFT = 2
_RECHECK_SECONDS = 0.5


class Ranked(NamedTuple):
    """A ranked chunk, with how many further chunks of its document were among the candidates."""

    chunk_id: int
    score: float
    more: int
    doc_id: str


@dataclass(frozen=True)
class Hit:
    score: float
    chunk_id: int
    document: StoredDocument
    chunk: StoredChunk
    snippet: str
    highlights: list[tuple[int, int]] = field(default_factory=list)
    more_chunks: int = 0  # further chunks of the same document among the candidates (grouped results)
    also_from: tuple[StoredDocument, ...] = ()  # near-duplicates of this document, shown as one result

    @property
    def page_end(self) -> int | None:
        """The page where the passage ends (its start page when it is on one page; None without pages)."""
        return self.chunk.page_end or self.chunk.page


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: Mode
    hits: list[Hit]
    took_ms: float
    index_version: int
    lexical_weight: float = 0.0
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    ranking: list[str] = field(default_factory=list)  # document ids, when only ranked (evaluation)
    confidence: float = 0.0  # how sure the search is that its best results fit (kb.confidence.score)
    nothing_fits: bool = False  # no result fits well: the page suggests a broader search
    constraints: tuple[Constraint, ...] = ()  # named in the query and preferred (kb.constraints)


class IndexHandle:
    """Holds a reader of the live index version and swaps in a newer one once the storage publishes it."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self._storage = open_storage(settings)
        self._settings = settings
        self._embedder = embedder
        self._loaded: StorageReader | None = None
        self._loaded_name: str | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Look at ``CURRENT`` again on the next request (after this process published a version)."""
        self._checked = 0.0

    def get(self) -> StorageReader:
        now = time.monotonic()
        if self._loaded is not None and now - self._checked < _RECHECK_SECONDS:
            return self._loaded
        with self._lock:
            name = self._storage.current_name()
            if self._loaded is None or name != self._loaded_name:
                index = self._storage.open_reader()
                index.check_model(self._settings.model, self._embedder.dimension)
                index.lexical.use_synonyms(load_synonyms(self._settings.synonyms_file))
                self._loaded, self._loaded_name = index, index.name
            self._checked = now
            return self._loaded


class Searcher:
    """Search and read access to the knowledge base, as the CLI and the API use it."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(settings)
        self.handle = IndexHandle(settings, self.embedder)
        #: Results of repeated identical searches; keyed by the index version too, so an older version's
        #: results are never served (they age out).
        self.results: LRU[Hashable, SearchResult] = LRU(settings.result_cache_size)
        #: Scoped readers of the live version, one per scope of viewers (their visible sets are computed once).
        self._scoped: LRU[tuple[str, str], StorageReader] = LRU(64)

    @property
    def index(self) -> StorageReader:
        """The live version, all of it (curation and the CLI on the server; callers of the web go through
        :meth:`reader`)."""
        return self.handle.get()

    def reader(self, viewer: Viewer | None = None) -> StorageReader:
        """The live version as ``viewer`` may see it (None: all of it); see :mod:`kb.storage.scoped`."""
        index = self.handle.get()
        if viewer is None or viewer.everything:
            return index
        key = (index.name, viewer.scope)
        found = self._scoped.get(key)
        if found is None:
            found = scoped(index, viewer)
            self._scoped.put(key, found)
        return found

    def validate(self, query: str, k: int, mode: str | None = None) -> str:
        text = " ".join(query.split())
        if not text:
            raise QueryError("The query is empty: type a question or a few words.")
        if len(text) > self.settings.max_query_chars:
            raise QueryError(
                f"The query has {len(text)} characters; the limit is {self.settings.max_query_chars}. Shorten it."
            )
        if not 1 <= k <= self.settings.max_k:
            raise QueryError(f"k must be between 1 and {self.settings.max_k}, got {k}.")
        if mode is not None and mode not in MODES:
            raise QueryError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
        return text

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str | None = None,
        group: bool = True,
        filters: Filters | None = None,
        facets: bool = False,
        viewer: Viewer | None = None,
        ignore_constraints: Iterable[str] = (),
    ) -> SearchResult:
        """The ``k`` best results: one per document (its best chunk) by default, or raw chunks; only documents
        ``viewer`` may see (None: all). A grade, language, district, year or document type the query names is
        preferred (:mod:`kb.constraints`) unless its field is in ``ignore_constraints``."""
        started = time.perf_counter()
        text = self.validate(query, k, mode)
        chosen: Mode = mode or self.settings.search_mode  # type: ignore[assignment]
        index = self.reader(viewer)  # a missing or incompatible index fails here, before the model is loaded
        filters = filters or None  # no restriction, however it is spelled
        ignore = constraints.ignored(ignore_constraints)
        key = (index.name, text, k, chosen, group, filters, facets, ignore)
        cached = self.results.get(key)
        if cached is not None:
            return replace(cached, took_ms=(time.perf_counter() - started) * 1000)
        vector = self.embedder.encode_queries([text])[0] if chosen != "lexical" else None
        result = self.search_encoded(
            text,
            vector,
            k,
            mode=chosen,
            group=group,
            filters=filters,
            facets=facets,
            started=started,
            index=index,
            ignore_constraints=ignore,
        )
        self.results.put(key, result)
        return result

    def search_encoded(
        self,
        text: str,
        vector: np.ndarray | None,
        k: int,
        *,
        mode: Mode = "hybrid",
        group: bool = True,
        filters: Filters | None = None,
        facets: bool = False,
        started: float | None = None,
        with_hits: bool = True,
        index: StorageReader | None = None,
        ignore_constraints: frozenset[str] = frozenset(),
    ) -> SearchResult:
        """Search with a query vector that is already encoded (evaluation encodes all queries in one batch).

        ``with_hits=False`` only ranks: the result's ``ranking`` holds document ids and no hits are built (the
        near-duplicates shown with a result follow it, as a reader sees them under "also from"). ``index`` is the
        version to search (default: the live one).
        """
        started = time.perf_counter() if started is None else started
        index = self.index if index is None else index
        allowed = allowed_chunks(index, filters) if filters else None
        terms = index.lexical.query_terms(text)  # analysed once, for ranking and for highlighting
        evidence = gather_evidence(index, text, terms, vector, mode, allowed)
        weight = fusion.lexical_weight(evidence) if mode == "hybrid" else float(mode == "lexical")
        sure = confidence.score(evidence, mode)
        nothing = confidence.nothing_fits(evidence, mode)
        named = recognised_constraints(text, filters, ignore_constraints) if group else ()  # raw chunks: none

        hidden = frozenset() if filters else index.hidden
        visible = filters.matches if filters else visible_to

        def candidates(pool: int) -> list[tuple[int, float]]:
            return rank(index, terms, vector, pool, mode, weight, allowed)

        also: dict[str, tuple[StoredDocument, ...]] = {}
        if group:
            wanted = k * 2 if index.near_duplicates else k
            ranked = grouped(index, candidates, wanted, hidden)
            ranked = prefer_constraints(index, named, ranked, lambda n: grouped(index, candidates, n, hidden))
            ranked = lift_recommended(index, ranked)
            ranked, also = collapse_near_duplicates(index, ranked, visible)
            ranked = follow_translations(index, ranked, wanted_language(named, evidence.code), visible, hidden)[:k]
        else:
            ranked = raw_chunks(index, candidates, k, hidden)
        if not with_hits:
            ranking = [d for item in ranked for d in (item.doc_id, *(o.id for o in also.get(item.doc_id, ())))]
            return SearchResult(
                text, mode, [], 0.0, index.manifest.version, weight, {}, ranking, sure, nothing, named
            )
        hits = self._hits(index, ranked, terms, also)
        facet_counts = {}
        if facets:
            documents = [
                index.documents[item.doc_id] for item in grouped(index, candidates, FACET_DOCUMENTS, hidden)
            ]
            facet_counts = count_facets(documents)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(
            text,
            mode,
            hits,
            took,
            index.manifest.version,
            weight,
            facet_counts,
            confidence=sure,
            nothing_fits=nothing,
            constraints=named,
        )

    def _hits(
        self,
        index: StorageReader,
        ranked: list[Ranked],
        terms: Mapping[str, float],
        also: dict[str, tuple[StoredDocument, ...]] | None = None,
    ) -> list[Hit]:
        chunks = index.chunks([item.chunk_id for item in ranked])
        hits = []
        for item in ranked:
            chunk = chunks.get(item.chunk_id)
            document = index.documents.get(chunk.doc_id) if chunk else None
            if chunk is None or document is None:
                continue
            snip, spans = snippet(chunk.text, terms, index.lexical.analyzer)
            others = (also or {}).get(document.id, ())
            hits.append(Hit(item.score, item.chunk_id, document, chunk, snip, spans, item.more, others))
        return hits

    def document(self, doc_id: str, viewer: Viewer | None = None) -> StoredDocument:
        document = self.reader(viewer).documents.get(doc_id)
        if document is None:
            raise NotFoundError(f"There is no document with id {doc_id!r}; search again to get current ids.")
        return document

    def similar(
        self, doc_id: str, k: int = 5, *, other_districts: bool = True, viewer: Viewer | None = None
    ) -> list[Hit]:
        """Documents most like this one (by the mean of its chunk vectors), one result per document; only
        documents ``viewer`` may see (None: all)."""
        if not 1 <= k <= self.settings.max_k:
            raise QueryError(f"k must be between 1 and {self.settings.max_k}, got {k}.")
        index = self.reader(viewer)
        source = self.document(doc_id, viewer)
        own = index.doc_chunks.get(doc_id, np.zeros(0, dtype=np.int64))
        if not len(own):
            return []
        centroid = np.mean([index.vectors.reconstruct(int(c)) for c in own], axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        district = source.metadata.district.casefold()
        others = [
            ids
            for other, ids in index.doc_chunks.items()
            if other != doc_id
            and other not in index.hidden
            and not (other_districts and index.documents[other].metadata.district.casefold() == district)
        ]
        if not others:
            return []
        allowed = np.concatenate(others)

        def candidates(pool: int) -> list[tuple[int, float]]:
            return index.vectors.search(centroid, pool, allowed)

        ranked = grouped(index, candidates, k)
        return self._hits(index, ranked, {})


def gather_evidence(
    index: StorageReader,
    text: str,
    terms: dict[str, float],
    vector: np.ndarray | None,
    mode: Mode,
    allowed: np.ndarray | None,
) -> fusion.Evidence:
    """The signals of :mod:`kb.fusion` for one query, from the first passages of each ranking."""
    coverage = index.lexical.coverage(text)
    language = fusion.share_of_coverage(coverage)
    dense = index.vectors.search(vector, EVIDENCE_DEPTH, allowed) if vector is not None else []
    lexical = index.lexical.search(terms, EVIDENCE_DEPTH, allowed) if language > 0 or mode == "lexical" else []
    return fusion.Evidence(
        language=language,
        matched=fusion.matched_share(index.lexical, terms, lexical, allowed),
        agreement=fusion.agreement(index, dense, lexical),
        similarity=dense[0][1] if dense else 0.0,
        words=len(text.split()),
        distinctness=fusion.distinctness(dense),
        ranked=len(dense),
        code=confidence.query_language(text),
        coverage=coverage,
        gap=confidence.gap(dense),
    )


def rank(
    index: StorageReader,
    terms: dict[str, float],
    vector: np.ndarray | None,
    pool: int,
    mode: Mode,
    weight: float,
    allowed: np.ndarray | None,
) -> list[tuple[int, float]]:
    """Up to ``pool`` chunk ids with scores, best first, restricted to ``allowed`` exactly."""
    if mode == "lexical":
        return index.lexical.search(terms, pool, allowed)
    if vector is None:
        raise ValueError("dense and hybrid ranking need a query vector")
    if mode == "dense" or weight <= 0:
        return index.vectors.search(vector, pool, allowed)
    depth = max(pool, fusion.NORMALISE_DEPTH)  # the same scaling whatever the pool
    dense = index.vectors.search(vector, depth, allowed)
    lexical = index.lexical.search(terms, depth, allowed)
    return fusion.fuse(dense, lexical, weight)[:pool]


def recognised_constraints(text: str, filters: Filters | None, ignore: frozenset[str]) -> tuple[Constraint, ...]:
    """The constraints the query names (:mod:`kb.constraints`), except those turned off and those whose field a
    filter already restricts."""
    known = filter_params()
    filtered = {known[param].key for param, _ in filters.items()} if filters else set()
    return constraints.recognise(text, ignore | filtered)


def prefer_constraints(
    index: StorageReader,
    named: tuple[Constraint, ...],
    ranked: list[Ranked],
    deeper: Callable[[int], list[Ranked]],
) -> list[Ranked]:
    """``ranked`` with the documents that satisfy the query's constraints moved up: the first
    :data:`kb.constraints.POOL` documents are re-scored (the rest follow) and as many as ``ranked`` holds kept.
    Unchanged when the query names none or no candidate satisfies one."""
    if not named or not ranked:
        return ranked
    pool = deeper(max(len(ranked), constraints.POOL))
    head = pool[: constraints.POOL]  # the same depth however many results are asked for
    documents = [index.documents.get(item.doc_id) for item in head]
    rescored = constraints.prefer(head, [item.score for item in head], documents, named)
    if rescored is None:
        return ranked
    return [*(item._replace(score=score) for item, score in rescored), *pool[constraints.POOL :]][: len(ranked)]


def allowed_chunks(index: StorageReader, filters: Filters) -> np.ndarray:
    ids = [
        index.doc_chunks[d] for d, doc in index.documents.items() if d in index.doc_chunks and filters.matches(doc)
    ]
    return np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)


def grouped(
    index: StorageReader,
    candidates: Callable[[int], list[tuple[int, float]]],
    k: int,
    hidden: frozenset[str] = frozenset(),
) -> list[Ranked]:
    """``(chunk id, score, further chunks of its document, document id)`` for the best ``k`` documents.

    Documents in ``hidden`` (not published, when no status filter asks for them) are skipped.
    """
    total = len(index.vectors)
    pool = min(total, max(k * GROUP_POOL_FACTOR, 50))
    while True:
        ranked = candidates(pool)
        doc_of = index.doc_of([chunk_id for chunk_id, _ in ranked])
        best: dict[str, tuple[int, float]] = {}
        counts: Counter[str] = Counter()
        for chunk_id, score in ranked:
            doc = doc_of.get(chunk_id)
            if doc is not None and doc not in hidden:
                counts[doc] += 1
                best.setdefault(doc, (chunk_id, score))
        if len(best) >= k or pool >= total or len(ranked) < pool:
            break
        pool = min(total, pool * 4)
    return [Ranked(chunk_id, score, counts[doc] - 1, doc) for doc, (chunk_id, score) in list(best.items())[:k]]


def raw_chunks(
    index: StorageReader,
    candidates: Callable[[int], list[tuple[int, float]]],
    k: int,
    hidden: frozenset[str] = frozenset(),
) -> list[Ranked]:
    """The best ``k`` chunks (not grouped), skipping chunks of hidden documents."""
    pool = k
    while True:
        ranked = candidates(pool)
        doc_of = index.doc_of([chunk_id for chunk_id, _ in ranked]) if hidden else {}
        kept = [Ranked(c, s, 0, doc_of.get(c, "")) for c, s in ranked if doc_of.get(c) not in hidden]
        if len(kept) >= k or len(ranked) < pool or pool >= len(index.vectors):
            return kept[:k]
        pool = min(len(index.vectors), pool * 4)


def lift_recommended(index: StorageReader, ranked: list[Ranked]) -> list[Ranked]:
    """Move each recommended document up by at most :data:`RECOMMENDED_LIFT` places (past unrecommended ones)."""
    result = list(ranked)
    for position in range(len(result)):
        doc = index.documents.get(result[position].doc_id)
        if doc is None or not doc.metadata.recommended:
            continue
        target = position
        while target > 0 and position - target < RECOMMENDED_LIFT:
            above = index.documents.get(result[target - 1].doc_id)
            if above is not None and above.metadata.recommended:
                break
            target -= 1
        result.insert(target, result.pop(position))
    return result


def collapse_near_duplicates(
    index: StorageReader, ranked: list[Ranked], visible: Callable[[StoredDocument], bool]
) -> tuple[list[Ranked], dict[str, tuple[StoredDocument, ...]]]:
    """One result per group of near-duplicates (the best ranked), with the group's other visible documents."""
    if not index.near_duplicates:
        return ranked, {}
    kept: list[Ranked] = []
    shown: set[str] = set()
    also: dict[str, tuple[StoredDocument, ...]] = {}
    for item in ranked:
        doc_id = item.doc_id
        if doc_id in shown:
            continue
        kept.append(item)
        shown.add(doc_id)
        others = index.near_duplicates_of(doc_id)
        others = [d for d in others if visible(d)]
        if others:
            also[doc_id] = tuple(others)
            shown.update(d.id for d in others)
    return kept, also


def wanted_language(named: Sequence[Constraint], written_in: str | None) -> str | None:
    """The language whose version of a translated document comes first: the one the query names ("Elternbrief
    arabisch"), if it names exactly one other than German, else the language the query is written in."""
    codes = {c.value for c in named if c.field == "languages" and c.value != "de"}
    return codes.pop() if len(codes) == 1 else written_in


def follow_translations(
    index: StorageReader,
    ranked: list[Ranked],
    language: str | None,
    visible: Callable[[StoredDocument], bool],
    hidden: frozenset[str] = frozenset(),
) -> list[Ranked]:
    """Each translation group together, the member in ``language`` first (:func:`kb.translations.follow`); a
    member search did not rank shows its first passage, at the score of the group's first result."""
    known = {item.doc_id: item for item in ranked}
    order = translations.follow(
        index, [item.doc_id for item in ranked], language, lambda d: d.id not in hidden and visible(d)
    )
    if len(order) == len(ranked) and all(a == b.doc_id for a, b in zip(order, ranked, strict=True)):
        return ranked
    result: list[Ranked] = []
    for doc_id in order:
        item = known.get(doc_id)
        if item is None:
            chunks = index.doc_chunks.get(doc_id)
            if chunks is None or not len(chunks):
                continue
            score = result[-1].score if result else 0.0
            item = Ranked(int(chunks[0]), score, 0, doc_id)
        result.append(item)
    return result


_SPACE = re.compile(r"\S+")
#: A word that ends a sentence: it ends in . ! ? or … and is no abbreviation of one or two letters ("z.", "Nr.").
_SENTENCE_END = re.compile(r"(?:[^\W\d]{3,}|\d{1,}|[)\"“»])[.!?…][)\"“»]?$|[!?…][)\"“»]?$")


def snippet(
    text: str, terms: Mapping[str, float] | set[str], analyzer: Analyzer, size: int = SNIPPET_WORDS
) -> tuple[str, list[tuple[int, int]]]:
    """A window of ``size`` words that opens with the sentence answering the query best, and the matched words'
    character spans.

    The best sentence is the one holding the most query weight in *distinct* terms (stems, compound parts,
    spelling corrections and synonyms, each at its query weight): a sentence that names "Anmeldung" and
    "Gruppengröße" once beats a run that repeats "Anmeldung" three times. A sentence longer than the window
    shows its densest part. Each distinct word is analysed once (a chunk repeats many), and character offsets
    are found for the chosen window only: this runs for every hit of every search.
    """
    weights = terms if isinstance(terms, Mapping) else dict.fromkeys(terms, 1.0)
    positions = list(_SPACE.finditer(text))
    words_ = [m.group() for m in positions]
    found: dict[str, frozenset[str]] = {}
    if weights:
        token_terms = analyzer.token_terms
        for w in set(words_):
            shared = frozenset(weights).intersection(token_terms(w))
            if shared:
                found[w] = shared
    matched = [w in found for w in words_] if found else []
    best = 0
    if len(words_) > size and matched:
        first, last = _best_sentence(text, positions, words_, found, weights)
        if last - first >= size:  # the sentence is longer than the window: its densest part
            best = first + _densest(matched[first:last], size)
        else:  # the whole sentence, from its start (or the last full window of the chunk)
            best = min(first, len(words_) - size)
    chosen = [(m.start(), m.end()) for m in positions[best : best + size]]
    if not chosen:
        return "", []
    prefix = "… " if best > 0 else ""
    suffix = " …" if best + size < len(words_) else ""
    offset = chosen[0][0] - len(prefix)
    body = text[chosen[0][0] : chosen[-1][1]]
    spans = []
    for position, (a, b) in enumerate(chosen, start=best):
        if matched and matched[position]:
            word = text[a:b]
            lead = len(word) - len(word.lstrip("„“\"'(«»["))
            trail = len(word) - len(word.rstrip(".,;:!?…)“\"'»«]"))
            spans.append((a - offset + lead, b - offset - trail))
    return prefix + body + suffix, spans


def _best_sentence(
    text: str,
    positions: list[re.Match[str]],
    words_: list[str],
    found: dict[str, frozenset[str]],
    weights: Mapping[str, float],
) -> tuple[int, int]:
    """The word range [first, last) of the sentence with the most query weight in distinct terms (the first
    such sentence on a tie). A sentence ends after a word like "Kita." or at a line break."""
    best_range, best_score = (0, len(words_)), -1.0
    first = 0
    for i in range(len(words_) + 1):
        ends = i == len(words_) or (
            i > first
            and (
                _SENTENCE_END.search(words_[i - 1]) is not None
                or "\n" in text[positions[i - 1].end() : positions[i].start()]
            )
        )
        if not ends:
            continue
        held: set[str] = set()
        for w in words_[first:i]:
            held.update(found.get(w, ()))
        score = sum(weights[t] for t in held)
        if score > best_score:
            best_range, best_score = (first, i), score
        first = i
    return best_range


def _densest(matched: list[bool], size: int) -> int:
    """The start of the ``size``-word window with the most matched words (the first on a tie)."""
    window = sum(matched[:size])
    best, best_score = 0, window
    for start in range(1, len(matched) - size + 1):
        window += matched[start + size - 1] - matched[start - 1]
        if window > best_score:
            best, best_score = start, window
    return best
