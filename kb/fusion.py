"""How much lexical evidence to trust in hybrid search, per query, and how sure the search is of its results.

Every query gets a few signals (:class:`Evidence`), read from the two rankings before they are fused:

- ``language``: the share of the query's terms the German index knows (near 0 for Turkish, Arabic or English);
- ``similarity``: the dense cosine of the best passage: how sure the dense side is;
- ``matched``: the share of the query's weight that the best lexical hits hold, each term weighted by its best
  BM25 score in the index (rare words weigh more). A question that borrows its document's words scores near 1;
  a paraphrase whose only shared words are common ones scores low;
- ``agreement``: the share of the top ten documents that both rankings find;
- ``distinctness``: how far the best passage's dense similarity stands above the passages ranked 10 to 100 (a
  query with an answer has one passage that stands out; one without has a flat top).

The two rankings are fused as a convex combination of their scores, each scaled to 0..1 within its first
:data:`NORMALISE_DEPTH` passages (:func:`fuse`). The lexical share follows the evidence
(:func:`lexical_weight`): the language allows it, and it shrinks as the dense side grows sure of its best
passage: a paraphrase that the dense model matches confidently keeps the dense order, while a question the dense
model is unsure about (extractive questions about names and numbers, keywords) lets the words decide more. The
confidence and the "nothing fits" decision (:mod:`kb.confidence`) read the same signals. The constants were
chosen on the shared evaluation sets; docs/quality.md has the numbers and what did not help (``matched`` and
``agreement`` as weights among them: they are reported, not used for the weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kb.storage import LexicalSearch, StorageReader

#: Lexical weight 0 below this language coverage of the query by the German index, full weight from FULL_COVERAGE.
MIN_COVERAGE, FULL_COVERAGE = 0.35, 0.6
#: The best lexical hits whose terms count for ``matched``.
MATCHED_HITS = 3
#: Documents compared for ``agreement``.
AGREEMENT_DEPTH = 10
#: Lexical share of the fused score for a German query whose best passage has the dense similarity
#: ``WEIGHT_CENTRE``; it changes by ``WEIGHT_SLOPE`` per unit of similarity (less when dense is surer), within
#: 0..MAX_WEIGHT.
WEIGHT_AT_CENTRE, WEIGHT_CENTRE, WEIGHT_SLOPE, MAX_WEIGHT = 0.2, 0.87, 4.0, 0.6
#: Scores are scaled to 0..1 between the best and the one at this rank of each ranking.
NORMALISE_DEPTH = 200
#: Passages from this rank on are "the rest" that the best one must stand out from.
DISTINCT_FROM = 10


@dataclass(frozen=True)
class Evidence:
    language: float = 0.0
    matched: float = 0.0
    agreement: float = 0.0
    similarity: float = 0.0
    words: int = 0
    distinctness: float = 0.0
    ranked: int = 0  # passages the dense side ranked (at most the evidence depth)
    code: str = "de"  # the query's language as kb.confidence.query_language detects it
    coverage: float = 0.0  # the share of the query's own terms the index vocabulary has (kb.lexical coverage)
    gap: float = 0.0  # the best dense similarity minus the one at rank kb.confidence.GAP_RANK


def language_share(lexical: LexicalSearch, text: str) -> float:
    """The lexical weight the query's language allows: 0 (another language) to 1 (German)."""
    return share_of_coverage(lexical.coverage(text))


def share_of_coverage(coverage: float) -> float:
    """The lexical weight a query's coverage by the German index allows (:func:`language_share`)."""
    return float(np.clip((coverage - MIN_COVERAGE) / (FULL_COVERAGE - MIN_COVERAGE), 0.0, 1.0))


def matched_share(
    lexical: LexicalSearch, terms: dict[str, float], ranked: list[tuple[int, float]], allowed: np.ndarray | None
) -> float:
    """The share of the query's own terms' weight that the best of the first lexical hits holds.

    A term's weight is its best BM25 score anywhere (its rarity, with the length of the passage that has it); a
    term the index does not know weighs as much as the rarest known one: no passage has it, so none can match it.
    """
    own = [t for t, w in terms.items() if w >= 1.0]
    if not own or not ranked:
        return 0.0
    best = {t: (found[0][1] if (found := lexical.search({t: 1.0}, 1, allowed)) else 0.0) for t in own}
    known = [w for w in best.values() if w > 0]
    if not known:
        return 0.0
    total = sum(known) + (len(best) - len(known)) * max(known)
    top = np.asarray([chunk_id for chunk_id, _ in ranked[:MATCHED_HITS]], dtype=np.int64)
    held = dict.fromkeys((int(c) for c in top), 0.0)
    for t, weight in best.items():
        if weight > 0:
            for chunk_id, _ in lexical.search({t: 1.0}, len(top), top):
                held[chunk_id] += weight
    return max(held.values()) / total


def distinctness(dense: list[tuple[int, float]]) -> float:
    """The best dense similarity minus the mean of the ones from rank :data:`DISTINCT_FROM` on (0 with fewer)."""
    rest = [score for _, score in dense[DISTINCT_FROM - 1 :]]
    return float(dense[0][1] - sum(rest) / len(rest)) if rest and len(dense) > DISTINCT_FROM else 0.0


def agreement(index: StorageReader, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> float:
    """The share of the first :data:`AGREEMENT_DEPTH` documents of each ranking that the other one also has."""

    def documents(ranked: list[tuple[int, float]]) -> list[str]:
        doc_of = index.doc_of([c for c, _ in ranked])
        seen: dict[str, None] = {}
        for chunk_id, _ in ranked:
            doc = doc_of.get(chunk_id)
            if doc is not None:
                seen.setdefault(doc)
            if len(seen) == AGREEMENT_DEPTH:
                break
        return list(seen)

    first, second = documents(dense), documents(lexical)
    return len(set(first) & set(second)) / AGREEMENT_DEPTH if first and second else 0.0


def lexical_weight(evidence: Evidence) -> float:
    """The lexical share of the fused score: what the language allows, less as the dense side is surer."""
    share = WEIGHT_AT_CENTRE - WEIGHT_SLOPE * (evidence.similarity - WEIGHT_CENTRE)
    return float(evidence.language * np.clip(share, 0.0, MAX_WEIGHT))


def fuse(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]], weight: float
) -> list[tuple[int, float]]:
    """``(1 - weight) * dense + weight * lexical``, each score scaled to 0..1 between the ranking's best and its
    score at :data:`NORMALISE_DEPTH` (BM25: 0 when the ranking is shorter); best first."""
    scores: dict[int, float] = {}
    for ranked, share, floor_if_short in ((dense, 1.0 - weight, None), (lexical, weight, 0.0)):
        if not ranked or share <= 0:
            continue
        top = ranked[0][1]
        deep = len(ranked) >= NORMALISE_DEPTH
        floor = ranked[NORMALISE_DEPTH - 1][1] if deep else ranked[-1][1] if floor_if_short is None else 0.0
        span = max(top - floor, 1e-9)
        for chunk_id, score in ranked:
            scores[chunk_id] = scores.get(chunk_id, 0.0) + share * max(score - floor, 0.0) / span
    return sorted(scores.items(), key=lambda item: -item[1])
