"""How sure a search is that its best results fit the query, and the "nothing fits" decision.

The query's language is detected first (:func:`query_language`: by its script, by letters and words only one of
the languages has). Queries in another language than the corpus's reach systematically different dense
similarities (an Arabic question on a German passage that answers it scores lower than a German one), so the
similarity is read against a reference per language. A small logistic model (:data:`FEATURES`,
:data:`COEFFICIENTS`) turns that, the distinctness of the best passage and the share of a German query's words
the best lexical hits hold into the probability that the corpus has no answer; "nothing fits" from
:data:`NO_ANSWER_FROM`. The constants come from tools/nothing_fits (off-topic questions of the shared sets and
half of the bundled set's answerable queries); docs/quality.md has the measurement on the other half.
"""

from __future__ import annotations

import math
import re

from kb.fusion import Evidence
from kb.lexical import ENGLISH_ONLY, STOPWORDS, words

#: The gap is the best dense similarity minus the one at this rank.
GAP_RANK = 10

_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_RUSSIAN = re.compile(r"[ыэъёЫЭЪЁ]")
_TURKISH = re.compile(r"[şğıİŞĞ]")
#: Turkish words that are no German or English words (queries without ş, ğ or ı: "Veli görüşme günü" has one).
TURKISH_ONLY = frozenset(
    "ve bir için nasıl nedir neden hangi kaç kim ne zaman nerede mi mı mu mü ile gibi daha çok olan veya hakkında "
    "türkçe almanca okul veli çocuk".split()
)
LANGUAGES = ("de", "en", "tr", "ar", "uk", "ru")


def query_language(text: str) -> str:
    """The query's language, one of :data:`LANGUAGES`: Arabic and Cyrillic by their script (Russian by the
    letters ы э ъ ё that Ukrainian lacks), Turkish by ş ğ ı or its function words, English by more English
    function words than German stop words; German otherwise."""
    if _ARABIC.search(text):
        return "ar"
    if _CYRILLIC.search(text):
        return "ru" if _RUSSIAN.search(text) else "uk"
    tokens = words(text)
    if _TURKISH.search(text) or sum(t in TURKISH_ONLY for t in tokens) >= 2:
        return "tr"
    if sum(t in ENGLISH_ONLY for t in tokens) > sum(t in STOPWORDS for t in tokens):
        return "en"
    return "de"


def gap(dense: list[tuple[int, float]]) -> float:
    """The best dense similarity minus the one at rank :data:`GAP_RANK` (0 with fewer passages)."""
    return float(dense[0][1] - dense[GAP_RANK - 1][1]) if len(dense) >= GAP_RANK else 0.0


#: The signals the decision weighs, in the order of :data:`COEFFICIENTS` (see :func:`features`).
FEATURES = ("similarity", "distinctness", "matched")
#: The median top dense similarity that queries of each language reach on a corpus that does not answer them
#: (the tuning set's off-topic questions): the reference a query's similarity is read against. Other languages
#: (Ukrainian, Russian: no tuning questions) use :data:`REFERENCE_OTHER`, the mean of the foreign ones.
REFERENCE = {"de": 0.819, "en": 0.745, "tr": 0.777, "ar": 0.776}
REFERENCE_OTHER = 0.766
#: Logistic model of "the corpus has no answer to this query" over :data:`FEATURES`, fitted by
#: tools/nothing_fits/fit.py on its tuning set (what it is, what else was tried and the measurement:
#: docs/quality.md, "Knowing when nothing fits").
COEFFICIENTS = (-78.3, -35.5, -2.67)
INTERCEPT = 5.48
#: "Nothing fits" from this probability of no answer on.
NO_ANSWER_FROM = 0.6
#: Lexical mode: "nothing fits" when the best lexical hits hold less than this share of the query's weight.
LEXICAL_NOTHING_BELOW = 0.3
#: Fewer passages than this ranked (a tiny index, a narrow filter): too few to tell a fit from the rest.
MIN_JUDGED = 20


def features(evidence: Evidence) -> tuple[float, ...]:
    """The decision's signals: the best passage's dense similarity above its language's reference, how far it
    stands above the passages ranked 10 to 100 (``distinctness``), and the share of a German query's weight that
    one of the best lexical hits holds (``matched``, times how German the query is)."""
    return (
        evidence.similarity - REFERENCE.get(evidence.code, REFERENCE_OTHER),
        evidence.distinctness,
        evidence.language * evidence.matched,
    )


def no_answer_probability(evidence: Evidence) -> float:
    """The model's probability that the corpus has no answer to the query."""
    z = INTERCEPT + sum(c * f for c, f in zip(COEFFICIENTS, features(evidence), strict=True))
    return float(1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0))))


def answer_probability(evidence: Evidence) -> float:
    return 1.0 - no_answer_probability(evidence)


def score(evidence: Evidence, mode: str = "hybrid") -> float:
    """How sure the search is that its best results fit, from 0 to 1: the probability that the corpus answers
    the query (lexical mode, without a dense side: the share of the query the best lexical hits hold)."""
    if mode == "lexical":
        return float(evidence.matched)
    return answer_probability(evidence)


def nothing_fits(evidence: Evidence, mode: str = "hybrid") -> bool:
    """No result fits well: the probability of no answer is at least :data:`NO_ANSWER_FROM`, and enough passages
    were ranked to judge by."""
    if evidence.ranked < MIN_JUDGED:
        return False
    if mode == "lexical":
        return evidence.matched < LEXICAL_NOTHING_BELOW
    return no_answer_probability(evidence) >= NO_ANSWER_FROM
