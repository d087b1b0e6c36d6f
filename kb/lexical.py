"""German analysis and BM25 over chunks.

Analysis: case folding (``ß`` → ``ss``), Snowball German stemming with the umlauts of the word kept in its term
(Snowball folds ``ä`` to ``a``; kept, "Größe" and "Große", "schön" and "schon" stay distinct words), stop words
removed, and compound splitting with a dictionary built from the corpus's own vocabulary, so that
"Sprachbildung" also yields "Sprache" + "Bildung" and matches "Bildung der Sprache". Query terms are expanded with
an editable list of domain synonyms and acronyms (``kb/data/synonyms.txt``), and query words the index does not
know are corrected against its vocabulary (:mod:`kb.spelling`: typos, missing umlauts, split compounds). Only
German documents are indexed here; other languages are served by the dense path.

Versions written before umlauts were kept (:data:`ANALYSIS` 1) are read with the old analysis until the next full
build, so an existing index keeps working.

BM25 weights are precomputed into a sparse chunk × term matrix, so a query is a sum of a few matrix columns.

A version also stores the raw term counts (``tf``) beside the weights, for the next writer: a write that changes
a few documents analyses only their chunks and recomputes the weights from the counts
(:meth:`LexicalIndex.updated`), instead of analysing every chunk again. Chunks kept from earlier versions keep
the compound splits of the vocabulary they were analysed with; once the chunks changed this way since the last
full build exceed :data:`FULL_REBUILD_FRACTION` of the index, the writer builds the whole index again. Readers
never load the counts.
"""

from __future__ import annotations

import json
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import Stemmer
from scipy import sparse

from kb.spelling import Speller, corrected_words

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
_UMLAUT_BASE = {"ä": "a", "ö": "o", "ü": "u"}
_UMLAUT_OF = {"a": "ä", "o": "ö", "u": "ü"}
_VOWELS = frozenset("aeiouyäöü")
MIN_COMPOUND = 8
MIN_PART = 3
#: Share of chunks added or removed since the last full build from which a writer builds BM25 from scratch.
FULL_REBUILD_FRACTION = 0.2
#: Language codes whose documents get German lexical analysis (other languages are left to the dense path).
GERMAN = frozenset({"de", "de-de", "de-at", "de-ch", "deu", "ger"})
#: The analysis of a version's terms: 1 folded umlauts into terms, 2 keeps them (and its vocabulary keeps them).
ANALYSIS = 2


def fold(word: str) -> str:
    """Lower case with ß → ss and umlauts removed: the form compounds are looked up in."""
    return unicodedata.normalize("NFC", word).casefold().translate(_UMLAUTS)


def words(text: str) -> list[str]:
    """Case-folded word tokens (hyphenated compounds give their parts: "DaZ-Kurs" → "daz", "kurs")."""
    return [w.casefold() for w in _TOKEN.findall(unicodedata.normalize("NFC", text))]


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


@lru_cache(maxsize=200_000)
def term(word: str) -> str:
    """The stem of a case-folded word with its umlauts put back ("grösse" → "gröss", "grosse" → "gross").

    Snowball strips suffixes from the umlaut-folded word (it reads "ae", "oe", "ue" after a consonant as umlauts
    too, but not "ue" after "q"), so its stem is a prefix of that folded form; the same prefix with the umlauts
    of the word restored is the term. "Groesse" and "Größe" share a term, "Große" has another.
    """
    base = stem(word)
    folded: list[str] = []
    marked: list[bool] = []
    i = 0
    while i < len(word):
        char, previous = word[i], word[i - 1] if i else ""
        if char in _UMLAUT_BASE:
            folded.append(_UMLAUT_BASE[char])
            marked.append(True)
        elif (
            char in "aou"
            and word[i + 1 : i + 2] == "e"
            and previous not in _VOWELS
            and not (char == "u" and previous == "q")
        ):
            folded.append(char)
            marked.append(True)
            i += 1  # the "e" of the spelled-out umlaut
        else:
            folded.append(char)
            marked.append(False)
        i += 1
    if not any(marked[: len(base)]) or not "".join(folded).startswith(base):
        return base
    return "".join(_UMLAUT_OF[c] if m else c for c, m in zip(base, marked, strict=False))


class _Changed(Mapping[str, int]):
    """Counts of a dictionary with changes laid over it (a count of 0 or less is no entry): a changed vocabulary
    without a copy of the whole one (:meth:`CompoundSplitter.changed`)."""

    def __init__(self, base: Mapping[str, int], change: dict[str, int]) -> None:
        self._base, self._change = base, change

    def __getitem__(self, key: str) -> int:
        count = self._base.get(key, 0) + self._change.get(key, 0)
        if count <= 0:
            raise KeyError(key)
        return count

    def get(self, key: str, default: int = 0) -> int:  # type: ignore[override]
        count = self._base.get(key, 0) + self._change.get(key, 0)
        return count if count > 0 else default

    def __iter__(self) -> Iterator[str]:
        for key in self._base:
            if key not in self._change or self._base[key] + self._change[key] > 0:
                yield key
        for key, n in self._change.items():
            if key not in self._base and n > 0:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


class CompoundSplitter:
    """Splits German compounds into two known words of the corpus ("sprachbildung" → "sprach", "bildung")."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.vocabulary = vocabulary  # case-folded words (umlauts kept since ANALYSIS 2) → count
        folded: Counter[str] = Counter()
        for word, count in vocabulary.items():
            folded[fold(word)] += count
        self._folded = dict(folded)
        self._cache: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CompoundSplitter:
        return cls(dict(vocabulary_counts(texts)))

    def changed(self, change: Mapping[str, int]) -> CompoundSplitter:
        """A splitter of this vocabulary with word counts added (or, negative, taken off; words left with none
        dropped): equal to one built from the changed vocabulary, at the cost of the change alone (its
        dictionaries are views over this one's; a delta segment's vocabulary over its base's,
        :mod:`kb.storage.segments`)."""
        words: dict[str, int] = {}
        folded: Counter[str] = Counter()
        for word, n in change.items():
            old = self.vocabulary.get(word, 0)
            new = max(old + n, 0)
            if new != old:
                words[word] = new - old
                folded[fold(word)] += new - old
        splitter = CompoundSplitter({})
        splitter.vocabulary = _Changed(self.vocabulary, words)  # type: ignore[assignment]
        splitter._folded = _Changed(self._folded, dict(folded))  # type: ignore[assignment]
        return splitter

    def _known(self, part: str) -> int:
        vocabulary = self._folded
        return max(vocabulary.get(part, 0), vocabulary.get(part + "e", 0), vocabulary.get(part + "en", 0))

    @staticmethod
    def lookups(word: str) -> set[str]:
        """The umlaut-folded forms :meth:`split` looks up for ``word``: a writer that analyses a few chunks reads
        only the vocabulary entries that fold to one of these (kept in step with :meth:`split`)."""
        folded = unicodedata.normalize("NFC", word).casefold().translate(_UMLAUTS)
        keys: set[str] = set()
        if len(folded) < MIN_COMPOUND:
            return keys
        for i in range(MIN_PART, len(folded) - MIN_PART):
            head = folded[:i]
            keys.add(folded[i:])
            for candidate in (head, head[:-1] if head.endswith("s") else ""):
                if len(candidate) >= MIN_PART:
                    keys.update((candidate, candidate + "e", candidate + "en"))
        return keys

    def split(self, word: str) -> tuple[str, ...]:
        """The parts of a compound (empty if it is none); the head may drop a linking "s" ("Integrations-").

        Parts are looked up umlaut-folded but returned as they stand in ``word`` (case-folded), so that
        "Gruppengröße" gives "größe", not "grosse".
        """
        original = unicodedata.normalize("NFC", word).casefold()
        folded = original.translate(_UMLAUTS)  # the same length as ``original``
        if len(folded) < MIN_COMPOUND:
            return ()
        if original in self._cache:
            return self._cache[original]
        best: tuple[float, tuple[str, ...]] = (0.0, ())
        for i in range(MIN_PART, len(folded) - MIN_PART):
            head, tail = folded[:i], folded[i:]
            tail_count = self._folded.get(tail, 0)
            if len(tail) < 4 or not tail_count:
                continue
            for candidate in (head, head[:-1] if head.endswith("s") else ""):
                head_count = self._known(candidate) if len(candidate) >= MIN_PART else 0
                if head_count:
                    score = (head_count * tail_count) ** 0.5 * min(len(candidate), len(tail))
                    if score > best[0]:
                        best = (score, (original[: len(candidate)], original[i:]))
        self._cache[original] = best[1]
        return best[1]


def vocabulary_counts(texts: Iterable[str]) -> Counter[str]:
    """How often each word (case-folded, no stop words) occurs in ``texts``: the compound splitter's dictionary
    and the spelling corrector's."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in words(text) if len(w) >= MIN_PART and w not in STOPWORDS)
    return counts


class Analyzer:
    """Text → index terms (stems of words and of compound parts)."""

    def __init__(self, splitter: CompoundSplitter, *, umlauts: bool = True) -> None:
        self.splitter = splitter
        #: Umlauts kept in terms (:data:`ANALYSIS` 2); False reads a version written with folded umlauts.
        self.umlauts = umlauts
        self._cache: dict[str, tuple[str, ...]] = {}
        self._tokens: dict[str, frozenset[str]] = {}

    def terms(self, text: str) -> list[str]:
        out: list[str] = []
        for word in words(text):
            out.extend(self.word_terms(word))
        return out

    def token_terms(self, token: str) -> frozenset[str]:
        """The terms of one whitespace-delimited token as it stands in a text ("Sprachbildung," with its comma).

        Cached, because snippets test the same tokens of the same chunks at every search that shows them.
        """
        cached = self._tokens.get(token)
        if cached is None:
            cached = frozenset(self.terms(token))
            if len(self._tokens) < 500_000:
                self._tokens[token] = cached
        return cached

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
                to_term = term if self.umlauts else stem
                cached = (to_term(word), *(to_term(part) for part in self.splitter.split(word)))
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
        self,
        chunk_ids: np.ndarray,
        matrix: sparse.csc_matrix,
        terms: dict[str, int],
        analyzer: Analyzer,
        counts: tuple[sparse.csr_matrix, int] | None = None,
    ):
        self.chunk_ids = chunk_ids
        self.matrix = matrix
        self.terms = terms
        self.analyzer = analyzer
        #: Writers only: the term counts (rows as ``chunk_ids``) and how many chunks were added or removed
        #: incrementally since the last full build.
        self.counts = counts
        self._synonyms: list[tuple[list[str], list[list[str]]]] = []
        self._speller: Speller | None = None

    @classmethod
    def build(cls, chunks: list[tuple[int, str]]) -> LexicalIndex:
        """Analyse every chunk (``(chunk id, passage text)``)."""
        chunks = sorted(chunks)
        analyzer = Analyzer(CompoundSplitter.from_texts(text for _, text in chunks))
        terms: dict[str, int] = {}
        tf = _term_counts(analyzer, [text for _, text in chunks], terms)
        ids = np.asarray([chunk_id for chunk_id, _ in chunks], dtype=np.int64)
        return cls._weighted(ids, tf, terms, analyzer, changed=0)

    @classmethod
    def updated(
        cls,
        folder: Path,
        removed: Iterable[int],
        removed_vocabulary: Counter[str],
        added: list[tuple[int, str]],
    ) -> LexicalIndex | None:
        """The index of the version in ``folder`` with the chunks ``removed`` taken out and ``added`` analysed
        in; ``removed_vocabulary`` holds the :func:`vocabulary_counts` of the removed chunks' texts.

        None when a full :meth:`build` is due: the version has no term counts (written by an older release) or
        too much changed since its last full build (:data:`FULL_REBUILD_FRACTION`).
        """
        try:
            with np.load(folder / LEXICAL_MATRIX) as arrays:
                if "tf_data" not in arrays:
                    return None
                old_ids = arrays["chunk_ids"]
                shape = tuple(int(n) for n in arrays["tf_shape"])
                tf = sparse.csr_matrix(
                    (arrays["tf_data"].astype(np.float32), arrays["tf_indices"], arrays["tf_indptr"]), shape=shape
                )
            payload = json.loads((folder / LEXICAL_TERMS).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError):
            return None  # unreadable: the caller builds from scratch
        if payload.get("analysis", 1) != ANALYSIS:
            return None  # terms of an older analysis: all chunks are analysed again
        keep = ~np.isin(old_ids, np.fromiter(removed, dtype=np.int64))
        changed = int(payload.get("changed", 0)) + int((~keep).sum()) + len(added)
        if changed > FULL_REBUILD_FRACTION * max(int(keep.sum()) + len(added), 1):
            return None
        vocabulary = Counter(payload["vocabulary"])
        vocabulary.subtract(removed_vocabulary)
        added = sorted(added)
        vocabulary.update(vocabulary_counts(text for _, text in added))
        analyzer = Analyzer(CompoundSplitter({w: n for w, n in vocabulary.items() if n > 0}))
        terms = {term: i for i, term in enumerate(payload["terms"])}
        new_tf = _term_counts(analyzer, [text for _, text in added], terms)
        tf.resize((tf.shape[0], len(terms)))
        ids = np.concatenate([old_ids[keep], np.asarray([i for i, _ in added], dtype=np.int64)])
        stacked = sparse.vstack([tf[keep], new_tf], format="csr")
        del tf
        if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):  # new chunk ids are larger: sorted as a rule
            order = np.argsort(ids, kind="stable")
            ids, stacked = ids[order], stacked[order]
        return cls._weighted(ids, stacked, terms, analyzer, changed)

    @classmethod
    def _weighted(
        cls, ids: np.ndarray, tf: sparse.csr_matrix, terms: dict[str, int], analyzer: Analyzer, changed: int
    ) -> LexicalIndex:
        """BM25 weights from term counts; terms that no chunk has any more are dropped (a purged document's
        words leave the index)."""
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        if len(terms) and not df.all():
            used = np.flatnonzero(df)
            tf = tf[:, used]
            df = df[used]
            names = list(terms)
            terms = {names[column]: i for i, column in enumerate(used)}
        rows = tf.shape[0]
        row_of = np.repeat(np.arange(rows, dtype=np.int32), np.diff(tf.indptr))  # the row of each posting
        lengths = np.bincount(row_of, weights=tf.data, minlength=rows).astype(np.float32)
        idf = np.log1p((rows - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = K1 * (1 - B + B * lengths / max(float(lengths.mean()) if rows else 1.0, 1e-6))
        data = (tf.data * (K1 + 1) / (tf.data + norm[row_of]) * idf[tf.indices]).astype(np.float32)
        del row_of
        matrix = sparse.csr_matrix((data, tf.indices, tf.indptr), shape=(rows, max(len(terms), 1))).tocsc()
        return cls(ids, matrix, terms, analyzer, (tf, changed))

    def save(self, folder: Path) -> None:
        m = self.matrix
        arrays = {"data": m.data, "indices": m.indices, "indptr": m.indptr, "shape": m.shape,
                  "chunk_ids": self.chunk_ids}  # fmt: skip
        changed = 0
        if self.counts is not None:
            tf, changed = self.counts
            arrays |= {"tf_data": tf.data.astype(np.uint16), "tf_indices": tf.indices, "tf_indptr": tf.indptr,
                       "tf_shape": np.asarray(tf.shape)}  # fmt: skip
        np.savez(folder / LEXICAL_MATRIX, **arrays)
        payload = {
            "terms": list(self.terms),
            "vocabulary": self.analyzer.splitter.vocabulary,
            "changed": changed,
            "analysis": ANALYSIS if self.analyzer.umlauts else 1,
        }
        (folder / LEXICAL_TERMS).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """The index for searching (the weights; the term counts stay on disk)."""
        with np.load(folder / LEXICAL_MATRIX) as arrays:
            matrix = sparse.csc_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
            )
            chunk_ids = arrays["chunk_ids"]
        payload = json.loads((folder / LEXICAL_TERMS).read_text(encoding="utf-8"))
        terms = {term: i for i, term in enumerate(payload["terms"])}
        umlauts = payload.get("analysis", 1) >= ANALYSIS
        return cls(chunk_ids, matrix, terms, Analyzer(CompoundSplitter(payload["vocabulary"]), umlauts=umlauts))

    def use_synonyms(self, groups: list[list[str]]) -> None:
        analysed = [[self.analyzer.stems(member) for member in group] for group in groups]
        self._synonyms = [(member, group) for group in analysed for member in group if member]

    @property
    def speller(self) -> Speller:
        """Built on first use from the version's vocabulary (a reader that never sees a typo never builds it)."""
        if self._speller is None:
            self._speller = Speller(self.analyzer.splitter.vocabulary)
        return self._speller

    def corrected(self, query: str) -> tuple[list[str], list[str]]:
        """The query's words with the ones the index does not know corrected (:mod:`kb.spelling`), and the
        words the corpus writes as one for neighbouring query words; unchanged for an index of the old analysis
        (its vocabulary has no umlauts)."""
        tokens = words(query)
        if not self.analyzer.umlauts:
            return tokens, []

        def known(word: str) -> bool:
            terms = self.analyzer.word_terms(word)
            return not terms or terms[0] in self.terms

        return corrected_words(tokens, known, self.speller)

    def query_terms(self, query: str) -> dict[str, float]:
        """The query's index terms with weights; synonyms of matched expressions are added at a lower weight.

        Unknown words are corrected first (:meth:`corrected`); words the corpus joins are added at the synonyms'
        weight. Synonyms are matched against whole words only: a compound part ("Zuwanderung" in
        "Zuwanderungsgeschichte") does not pull in the synonyms of the part.
        """
        tokens, joined = self.corrected(query)
        text = " ".join(tokens)
        weights = dict.fromkeys(self.analyzer.terms(text), 1.0)
        for word in joined:
            for term_ in self.analyzer.word_terms(word):
                weights.setdefault(term_, SYNONYM_WEIGHT)
        stems = self.analyzer.stems(text)
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
        candidates = np.flatnonzero(scores > 0)
        if allowed is not None:  # only the rows that scored are checked, not every chunk
            candidates = candidates[np.isin(self.chunk_ids[candidates], allowed)]
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(int(self.chunk_ids[row]), float(scores[row])) for row in order]


def _contains(terms: list[str], member: list[str]) -> bool:
    n = len(member)
    return any(terms[i : i + n] == member for i in range(len(terms) - n + 1))


def term_counts(analyzer: Analyzer, texts: list[str], terms: dict[str, int]) -> sparse.csr_matrix:
    """Rows of term counts for ``texts``; new terms are added to ``terms`` (a delta segment's rows,
    :mod:`kb.storage.segments`)."""
    return _term_counts(analyzer, texts, terms)


def _term_counts(analyzer: Analyzer, texts: list[str], terms: dict[str, int]) -> sparse.csr_matrix:
    """Rows of term counts for ``texts``; new terms are added to ``terms`` (the column of each term)."""
    # Typed arrays, not lists: a large index has tens of millions of (row, term) pairs, too many for Python lists.
    rows, cols, tfs = array("i"), array("i"), array("f")
    for row, text in enumerate(texts):
        for term, tf in Counter(analyzer.terms(text)).items():
            rows.append(row)
            cols.append(terms.setdefault(term, len(terms)))
            tfs.append(tf)
    return sparse.csr_matrix(
        (
            np.frombuffer(tfs, dtype=np.float32),
            (np.frombuffer(rows, dtype=np.int32), np.frombuffer(cols, dtype=np.int32)),
        ),
        shape=(len(texts), len(terms)),
    )
