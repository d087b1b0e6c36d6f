"""German analysis and BM25 over chunks.

Analysis: case folding (``ß`` → ``ss``), Snowball German stemming (which also folds ``ä``/``ae`` to ``a``), stop
words removed, and compound splitting with a dictionary built from the corpus's own vocabulary, so that
"Sprachbildung" also yields "Sprache" + "Bildung" and matches "Bildung der Sprache". Query terms are expanded with
an editable list of domain synonyms and acronyms (``kb/data/synonyms.txt``). Only German documents are indexed
here; other languages are served by the dense path.

BM25 weights are precomputed into a sparse chunk × term matrix, so a query is a sum of a few matrix columns.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import Stemmer
from scipy import sparse

LEXICAL_MATRIX = "lexical.npz"
LEXICAL_TERMS = "lexical.json"
K1, B = 1.2, 0.75
SYNONYM_WEIGHT = 0.5
DEFAULT_SYNONYMS = Path(__file__).parent / "data" / "synonyms.txt"

STOPWORDS = frozenset(
    word
    for line in (Path(__file__).parent / "data" / "stopwords_de.txt").read_text(encoding="utf-8").splitlines()
    if not line.startswith("#")
    for word in line.split()
)
#: Function words of English that are not German words: a query made of them is not German, whatever names and
#: numbers it shares with the German index ("When did the Normans conquer England in 1066?").
ENGLISH_ONLY = frozenset(
    "the a of to for with from by at on and or is are was were be been has have had what which who whom whose "
    "when where why how did does do this that these those it its their there they can could would should my your "
    "our not any some about".split()
)
_TOKEN = re.compile(r"[^\W_]+")
_STEMMER = Stemmer.Stemmer("german")
_UMLAUTS = str.maketrans({"ä": "a", "ö": "o", "ü": "u"})
MIN_COMPOUND = 8
MIN_PART = 3


def fold(word: str) -> str:
    """Lower case with ß → ss and umlauts removed: the form compounds are looked up in."""
    return unicodedata.normalize("NFC", word).casefold().translate(_UMLAUTS)


def words(text: str) -> list[str]:
    """Case-folded word tokens (hyphenated compounds give their parts: "DaZ-Kurs" → "daz", "kurs")."""
    return [w.casefold() for w in _TOKEN.findall(unicodedata.normalize("NFC", text))]


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


class CompoundSplitter:
    """Splits German compounds into two known words of the corpus ("sprachbildung" → "sprach", "bildung")."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.vocabulary = vocabulary
        self._cache: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CompoundSplitter:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(fold(w) for w in words(text) if len(w) >= MIN_PART and w not in STOPWORDS)
        return cls(dict(counts))

    def _known(self, part: str) -> int:
        return max(
            self.vocabulary.get(part, 0), self.vocabulary.get(part + "e", 0), self.vocabulary.get(part + "en", 0)
        )

    def split(self, word: str) -> tuple[str, ...]:
        """The parts of a compound (empty if it is none); the head may drop a linking "s" ("Integrations-")."""
        folded = fold(word)
        if len(folded) < MIN_COMPOUND:
            return ()
        if folded in self._cache:
            return self._cache[folded]
        best: tuple[float, tuple[str, ...]] = (0.0, ())
        for i in range(MIN_PART, len(folded) - MIN_PART):
            head, tail = folded[:i], folded[i:]
            tail_count = self.vocabulary.get(tail, 0)
            if len(tail) < 4 or not tail_count:
                continue
            for candidate in (head, head[:-1] if head.endswith("s") else ""):
                head_count = self._known(candidate) if len(candidate) >= MIN_PART else 0
                if head_count:
                    score = (head_count * tail_count) ** 0.5 * min(len(candidate), len(tail))
                    if score > best[0]:
                        best = (score, (candidate, tail))
        self._cache[folded] = best[1]
        return best[1]


class Analyzer:
    """Text → index terms (stems of words and of compound parts)."""

    def __init__(self, splitter: CompoundSplitter) -> None:
        self.splitter = splitter
        self._cache: dict[str, tuple[str, ...]] = {}

    def terms(self, text: str) -> list[str]:
        out: list[str] = []
        for word in words(text):
            out.extend(self.word_terms(word))
        return out

    def stems(self, text: str) -> list[str]:
        """The stems of the words alone, without compound parts (what synonyms are matched against)."""
        return [terms[0] for word in words(text) if (terms := self.word_terms(word))]

    def word_terms(self, word: str) -> tuple[str, ...]:
        """The terms of one case-folded word: its stem and the stems of its compound parts."""
        cached = self._cache.get(word)
        if cached is None:
            if word in STOPWORDS or len(word) < 2:
                cached = ()
            else:
                cached = (stem(word), *(stem(part) for part in self.splitter.split(word)))
            if len(self._cache) < 500_000:
                self._cache[word] = cached
        return cached


def load_synonyms(path: Path | None) -> list[list[str]]:
    """Groups of equivalent expressions, one group per line, comma-separated; ``#`` starts a comment."""
    source = path or DEFAULT_SYNONYMS
    groups = []
    for line in source.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        members = [m.strip() for m in line.split(",") if m.strip()]
        if len(members) >= 2:
            groups.append(members)
    return groups


class LexicalIndex:
    """BM25 over the chunks of German documents; rows are chunk ids in ascending order."""

    def __init__(
        self, chunk_ids: np.ndarray, matrix: sparse.csc_matrix, terms: dict[str, int], analyzer: Analyzer
    ):
        self.chunk_ids = chunk_ids
        self.matrix = matrix
        self.terms = terms
        self.analyzer = analyzer
        self._synonyms: list[tuple[list[str], list[list[str]]]] = []

    @classmethod
    def build(cls, chunks: list[tuple[int, str]]) -> LexicalIndex:
        chunks = sorted(chunks)
        analyzer = Analyzer(CompoundSplitter.from_texts(text for _, text in chunks))
        terms: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(chunks), dtype=np.float32)
        for row, (_, text) in enumerate(chunks):
            counts = Counter(analyzer.terms(text))
            lengths[row] = sum(counts.values())
            for term, tf in counts.items():
                rows.append(row)
                cols.append(terms.setdefault(term, len(terms)))
                tfs.append(tf)
        tf = sparse.csr_matrix(
            (np.asarray(tfs, dtype=np.float32), (rows, cols)), shape=(len(chunks), max(len(terms), 1))
        )
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=tf.shape[1]).astype(np.float32)
        idf = np.log1p((len(chunks) - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = K1 * (1 - B + B * lengths / max(float(lengths.mean()) if len(chunks) else 1.0, 1e-6))
        weights = tf.tocoo()
        data = weights.data * (K1 + 1) / (weights.data + norm[weights.row]) * idf[weights.col]
        matrix = sparse.csc_matrix((data.astype(np.float32), (weights.row, weights.col)), shape=tf.shape)
        ids = np.asarray([chunk_id for chunk_id, _ in chunks], dtype=np.int64)
        return cls(ids, matrix, terms, analyzer)

    def save(self, folder: Path) -> None:
        m = self.matrix
        np.savez(folder / LEXICAL_MATRIX, data=m.data, indices=m.indices, indptr=m.indptr, shape=m.shape,
                 chunk_ids=self.chunk_ids)  # fmt: skip
        payload = {"terms": list(self.terms), "vocabulary": self.analyzer.splitter.vocabulary}
        (folder / LEXICAL_TERMS).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        with np.load(folder / LEXICAL_MATRIX) as arrays:
            matrix = sparse.csc_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
            )
            chunk_ids = arrays["chunk_ids"]
        payload = json.loads((folder / LEXICAL_TERMS).read_text(encoding="utf-8"))
        terms = {term: i for i, term in enumerate(payload["terms"])}
        return cls(chunk_ids, matrix, terms, Analyzer(CompoundSplitter(payload["vocabulary"])))

    def use_synonyms(self, groups: list[list[str]]) -> None:
        analysed = [[self.analyzer.stems(member) for member in group] for group in groups]
        self._synonyms = [(member, group) for group in analysed for member in group if member]

    def query_terms(self, query: str) -> dict[str, float]:
        """The query's index terms with weights; synonyms of matched expressions are added at a lower weight.

        Synonyms are matched against whole words only: a compound part ("Zuwanderung" in
        "Zuwanderungsgeschichte") does not pull in the synonyms of the part.
        """
        weights = dict.fromkeys(self.analyzer.terms(query), 1.0)
        stems = self.analyzer.stems(query)
        for member, group in self._synonyms:
            if _contains(stems, member):
                for other in group:
                    for term in other:
                        weights.setdefault(term, SYNONYM_WEIGHT)
        return weights

    def coverage(self, query: str) -> float:
        """Share of the query's own terms (not synonyms) that occur in the index: near 0 for other languages.

        A query with more English function words than German stop words counts as not German (coverage 0).
        """
        tokens = words(query)
        if sum(t in ENGLISH_ONLY for t in tokens) > sum(t in STOPWORDS for t in tokens):
            return 0.0
        terms = self.analyzer.terms(query)
        return sum(term in self.terms for term in terms) / len(terms) if terms else 0.0

    def search(
        self, weights: dict[str, float], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best chunk ids by BM25 for weighted query terms (see :meth:`query_terms`); ``allowed``
        (chunk ids) restricts the search exactly."""
        columns = [(self.terms[t], w) for t, w in weights.items() if t in self.terms]
        if not columns or k <= 0:
            return []
        scores = np.zeros(len(self.chunk_ids), dtype=np.float32)
        for column, weight in columns:
            start, end = self.matrix.indptr[column], self.matrix.indptr[column + 1]
            scores[self.matrix.indices[start:end]] += weight * self.matrix.data[start:end]
        if allowed is not None:
            mask = np.isin(self.chunk_ids, allowed, assume_unique=False)
            scores[~mask] = 0.0
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(int(self.chunk_ids[row]), float(scores[row])) for row in order]


def _contains(terms: list[str], member: list[str]) -> bool:
    n = len(member)
    return any(terms[i : i + n] == member for i in range(len(terms) - n + 1))
