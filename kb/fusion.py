"""How much lexical evidence to trust in hybrid search, per query, and how sure the search is of its results.

Every query gets a few signals (:class:`Evidence`), read from the two rankings before they are fused:

- ``language``: the share of the query's terms the German index knows (near 0 for Turkish, Arabic or English);
- ``matched``: the share of the query's weight that the best lexical hits hold, each term weighted by its best
  BM25 score in the index (rare words weigh more). A question that borrows its document's words scores near 1;
  a paraphrase whose only shared words are common ones scores low, and BM25 then ranks by accident;
- ``agreement``: the share of the top ten documents that both rankings find;
- ``similarity``: the dense cosine of the best passage.

The lexical weight of reciprocal rank fusion follows the evidence (:func:`lexical_weight`); the confidence
(:func:`confidence`) and the "nothing fits" decision come from the same signals. The thresholds were chosen on
the shared evaluation sets (docs/quality.md has the numbers and the sets they were measured on).
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
#: Lexical weight for a German query whose best lexical hits hold none / all of its weight (linear between).
WEIGHT_AT_NO_MATCH, WEIGHT_AT_FULL_MATCH = 0.2, 1.0
#: Dense similarity of the best passage at confidence 0 and 1 (cosine of the multilingual-e5 model: unrelated
#: German text rarely scores below the first, and a passage that answers the query is mostly above the second).
SIMILARITY_NONE, SIMILARITY_FULL = 0.80, 0.90
#: "Nothing fits" below this confidence.
NOTHING_FITS_BELOW = 0.3


@dataclass(frozen=True)
class Evidence:
    language: float = 0.0
    matched: float = 0.0
    agreement: float = 0.0
    similarity: float = 0.0
    words: int = 0


def language_share(lexical: LexicalSearch, text: str) -> float:
    """The lexical weight the query's language allows: 0 (another language) to 1 (German)."""
    coverage = lexical.coverage(text)
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
    """The weight of the lexical ranking in the fusion: the language's share, scaled by how much of the query
    the lexical hits actually hold."""
    scale = WEIGHT_AT_NO_MATCH + (WEIGHT_AT_FULL_MATCH - WEIGHT_AT_NO_MATCH) * evidence.matched
    return float(evidence.language * scale)


def confidence(evidence: Evidence, mode: str = "hybrid") -> float:
    """How sure the search is that its best results fit, from 0 to 1: the best passage's dense similarity,
    placed between :data:`SIMILARITY_NONE` and :data:`SIMILARITY_FULL` (lexical mode: the share of the query the
    best lexical hits hold)."""
    if mode == "lexical":
        return float(evidence.matched)
    scaled = (evidence.similarity - SIMILARITY_NONE) / (SIMILARITY_FULL - SIMILARITY_NONE)
    return float(np.clip(scaled, 0.0, 1.0))


def nothing_fits(score: float) -> bool:
    return score < NOTHING_FITS_BELOW
