"""Search in the PostgreSQL engine as the local engine searches (issue 16, search speed): BM25 scored in the reader
from postings fetched once per term (:class:`kb.storage.postgres.PgLexical`), the kept postings bounded, new
statistics after a write, and one dense scan answering a query's evidence and its ranking.

A real server (tests/pg.py) against the local engine's real parts; hand-made unit vectors, no model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kb.documents import Chunk, Document, Metadata, Section, document_id
from kb.storage import Storage, StorageReader, StorageWriter
from kb.storage import postgres as pg
from kb.storage.local import LocalStorage
from kb.storage.postgres import PostgresStorage

MODEL = "search-model"
DIMENSION = 16
CHUNKING = {"chunk_words": 180, "chunk_overlap": 40, "chunker_version": 2}

#: Words some passages share (frequent terms, compounds and their parts) and passages that repeat each other
#: (equal scores: the order of ties must be the same).
WORDS = [
    "Sprachförderung", "Kinder", "Zuwanderungsgeschichte", "Eltern", "Schule", "Sprache", "Förderung", "Kita",
    "Geschichte", "Zuwanderung", "Ausbildung", "Beruf", "Schwimmkurs", "Frauen", "Elterncafé", "Grundschule",
]  # fmt: skip


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(n)
    texts = []
    for i in range(3):
        picked = rng.choice(WORDS, size=int(rng.integers(3, 12)), replace=True)
        texts.append(" ".join(str(w) for w in picked) + f" Abschnitt{n % 5} Teil{i}.")
    return texts


DOCUMENTS = [(f"doc{n:02d}.md", f"Dokument {n % 7}", _texts(n % 17)) for n in range(40)]
QUERIES: list[dict[str, float]] = [
    {"sprach": 1.0},
    {"kind": 1.0, "sprach": 1.0, "förder": 1.0},
    {"zuwanderungsgeschicht": 1.0, "zuwander": 1.0, "geschicht": 1.0, "kind": 0.5},
    {"elterncafé": 1.0, "schul": 0.5, "unbekannt": 1.0},
    {"abschnitt3": 1.0, "teil1": 1.0},
    {"unbekannt": 1.0},
    {"abschnitt4": 1.0},  # only in documents the write of test_a_write_… leaves alone
]


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _put(writer: StorageWriter, n: int, key: str, title: str, texts: list[str]) -> None:
    metadata = Metadata(title=title, language="de", status="published", district="Essen")
    document = Document(path=Path("/corpus") / key, file_type="text", metadata=metadata,
                        sections=tuple(Section(t) for t in texts))  # fmt: skip
    ids = writer.put_document(document_id(key), key, f"hash-{key}", document,
                              [Chunk(ordinal=i, text=t) for i, t in enumerate(texts)])  # fmt: skip
    writer.add_vectors(ids, np.stack([_unit(n * 10 + i) for i in range(len(ids))]))


def _write(engine: Storage, put: list[int], remove: tuple[int, ...] = ()) -> None:
    with engine.lock():
        writer = engine.open_writer(model=MODEL, dimension=lambda: DIMENSION)
        for n in remove:
            writer.remove_document(document_id(DOCUMENTS[n][0]))
        for n in put:
            _put(writer, n, *DOCUMENTS[n])
        writer.publish(model=MODEL, chunking=CHUNKING, encoder=None)


@pytest.fixture
def engines(pg_url: str, tmp_path: Path) -> Iterator[tuple[Storage, PostgresStorage]]:
    local, remote = LocalStorage(tmp_path / "index"), PostgresStorage(pg_url)
    for engine in (local, remote):
        _write(engine, list(range(len(DOCUMENTS))))
    yield local, remote
    remote.close()


def _ranked(reader: StorageReader, weights: dict[str, float], k: int, allowed: np.ndarray | None = None
            ) -> list[tuple[str, float]]:  # fmt: skip
    """The lexical ranking by document and chunk ordinal (chunk ids are each engine's own)."""
    found = reader.lexical.search(weights, k, allowed)
    chunks = reader.chunks([c for c, _ in found])
    return [(f"{chunks[c].doc_id}/{chunks[c].ordinal}", score) for c, score in found]


def _same(local: list[tuple[str, float]], remote: list[tuple[str, float]]) -> None:
    assert [key for key, _ in remote] == [key for key, _ in local]
    assert [score for _, score in remote] == pytest.approx([score for _, score in local], rel=1e-6)


def _allowed(reader: StorageReader, keys: list[str]) -> np.ndarray:
    return np.concatenate([reader.doc_chunks[document_id(key)] for key in keys])


@pytest.mark.parametrize("id_range", [pg.ID_RANGE_FACTOR, 0], ids=["over-the-id-range", "over-distinct-ids"])
def test_bm25_in_the_reader_ranks_and_scores_as_the_local_engine(
    engines: tuple[Storage, PostgresStorage], id_range: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg, "ID_RANGE_FACTOR", id_range)  # 0: scores over the distinct ids, however dense
    local, remote = (engine.open_reader() for engine in engines)
    some = [key for key, _, _ in DOCUMENTS[::3]]
    for weights in QUERIES:
        for k in (1, 5, 200):
            _same(_ranked(local, weights, k), _ranked(remote, weights, k))
            _same(
                _ranked(local, weights, k, _allowed(local, some)),
                _ranked(remote, weights, k, _allowed(remote, some)),
            )
    assert len(_ranked(remote, QUERIES[1], 200)) > 40  # the frequent terms reach most chunks
    for query in ("Sprachförderung für Kinder", "Zuwanderungsgeschichte", "Schwimkurs"):  # a typo corrected
        assert remote.lexical.query_terms(query) == local.lexical.query_terms(query)
        assert remote.lexical.coverage(query) == local.lexical.coverage(query)


def test_kept_postings_are_bounded_and_change_no_ranking(
    engines: tuple[Storage, PostgresStorage], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, remote = (engine.open_reader() for engine in engines)
    expected = [_ranked(local, weights, 50) for weights in QUERIES]
    lexical = remote.lexical
    assert isinstance(lexical, pg.PgLexical)
    fetched: list[list[str]] = []
    fetch = lexical._fetch

    def counted(terms: list[str]) -> dict[str, pg._Postings]:
        fetched.append(terms)
        return fetch(terms)

    monkeypatch.setattr(lexical, "_fetch", counted)
    assert [_ranked(remote, weights, 50) for weights in QUERIES] == expected
    assert sorted(fetched[0]) == ["sprach"] and len(fetched) == 6  # one query per search with new terms
    [_ranked(remote, weights, 50) for weights in QUERIES]
    assert len(fetched) == 6  # all kept: no query again

    largest = max(sum(p.size for p in lexical.postings(list(w)).values()) for w in QUERIES)  # one query's
    monkeypatch.setattr(pg, "CACHED_POSTINGS", 20)
    small = engines[1].open_reader()  # the same version in a new reader: nothing kept yet
    small_lexical = small.lexical
    assert isinstance(small_lexical, pg.PgLexical)
    for _ in range(2):
        assert [_ranked(small, weights, 50) for weights in QUERIES] == expected
        assert small_lexical._cached <= max(20, largest)
        assert small_lexical._cached == sum(p.size for p in small_lexical._postings.values())


def test_a_write_gives_the_next_reader_new_statistics(engines: tuple[Storage, PostgresStorage]) -> None:
    local, remote = engines
    before = remote.open_reader()
    for weights in QUERIES:
        _ranked(before, weights, 20)  # postings of the first version kept by its reader
    for engine in engines:
        # replaced and removed documents: document frequencies, chunk count and mean length change
        _write(engine, put=[3, 5], remove=(0, 1, 2, 7))
    after_local, after_remote = local.open_reader(), remote.open_reader()
    assert after_remote.name != before.name
    kept = after_remote.lexical._postings
    assert "abschnitt4" in kept and kept["abschnitt4"] is before.lexical._postings["abschnitt4"]
    assert not {"sprach", "kind", "abschnitt3", "dokument"} & kept.keys()  # terms of chunks added or removed
    for weights in QUERIES:
        _same(_ranked(after_local, weights, 20), _ranked(after_remote, weights, 20))
    assert document_id(DOCUMENTS[0][0]) not in {
        key.split("/")[0] for key, _ in _ranked(after_remote, QUERIES[1], 200)
    }
    fresh = PostgresStorage(remote.url)  # a process that never saw the first version
    try:
        for weights in QUERIES:
            assert _ranked(fresh.open_reader(), weights, 20) == _ranked(after_remote, weights, 20)
    finally:
        fresh.close()


def test_one_dense_scan_answers_a_querys_evidence_and_its_ranking(
    engines: tuple[Storage, PostgresStorage], monkeypatch: pytest.MonkeyPatch
) -> None:
    local, remote = (engine.open_reader() for engine in engines)
    query = _unit(7)
    some = [key for key, _, _ in DOCUMENTS[::2]]
    for allowed in (None, _allowed(remote, some)):
        deep = remote.vectors.search(query, 60, allowed)
        monkeypatch.setattr(remote.vectors._storage, "read", _no_database)  # type: ignore[attr-defined]
        assert remote.vectors.search(query, 10, allowed) == deep[:10]  # kept: no query
        monkeypatch.undo()
        fresh = engines[1].open_reader()  # a new reader asks the database for exactly 10
        assert fresh.vectors.search(query, 10, allowed) == deep[:10]
    local_allowed = _allowed(local, some)
    expected = [(local.doc_of([c])[c], s) for c, s in local.vectors.search(query, 10, local_allowed)]
    got = [(remote.doc_of([c])[c], s) for c, s in remote.vectors.search(query, 10, _allowed(remote, some))]
    assert [d for d, _ in got] == [d for d, _ in expected]  # exact with allowed ids, as the local engine
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], rel=1e-5)


def _no_database() -> None:
    raise AssertionError("the database was asked again")
