"""Delta segments of the local engine (:mod:`kb.storage.segments`): writes that change chunks of a large index
write a small delta beside the base, readers search both, and a merge folds them into a new base.

The corpus here is small, so the size from which an index gets segments is lowered to nothing; every engine
contract of ``tests/test_storage_contract.py`` is run once more on such an engine.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kb.backup import backup, restore
from kb.chunking import passage_text
from kb.doctor import check_index
from kb.documents import Metadata, document_id
from kb.index import (
    DATA_FILES,
    LoadedIndex,
    chunk_map,
    open_current,
    owners_of,
)
from kb.lexical import CompoundSplitter, LexicalIndex
from kb.settings import Settings
from kb.storage import Storage, segments
from kb.storage.local import LocalStorage
from kb.storage.segments import DELTA_FILES, DELTA_STORE, LayeredLexical
from tests.test_storage_contract import *  # noqa: F403  (the contract, run again on an engine with segments)
from tests.test_storage_contract import DOCUMENTS, MODEL, _filled, _publish, _put, _reader, _unit, _writer


@pytest.fixture(params=["segments", "segments-ann"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    monkeypatch.setattr(segments, "MIN_BASE_CHUNKS", 0)
    monkeypatch.setattr(segments, "MERGE_FRACTION", 1000.0)  # the deltas stay: every write after the first one
    yield LocalStorage(tmp_path / "index", ann_threshold=1 if request.param == "segments-ann" else 10_000)


# -- focused tests on one engine with segments -------------------------------------------------------------------


#: Base documents besides :data:`DOCUMENTS`: enough German text for BM25 statistics worth comparing.
MORE = [
    (f"bericht-{n}.md", f"Bericht {n} über Integration", "de", "published",
     [f"Der Bericht {n} beschreibt Sprachkurse, Elternarbeit und Beratung im Quartier {n}.",
      f"Lotsen begleiten Familien zu Ämtern; im Jahr {n} kamen viele Kinder in die Kita."])
    for n in range(8)
]  # fmt: skip
NEAR = " ".join(f"Satz {i} über die Sprachförderung im Stadtteil und die Arbeit der Lotsen." for i in range(12))
QUERIES = ("Kita Sprache", "Sprachkurse Eltern", "Lotsen Familien Ämter", "Schwimmkurs Hallenbad", "Bericht 3")


@pytest.fixture
def segmented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStorage:
    """An engine with a base of :data:`DOCUMENTS` and :data:`MORE` (and a near-duplicate candidate), whose
    later writes are delta segments."""
    engine = LocalStorage(tmp_path / "index")
    with engine.lock():
        writer = _writer(engine)
        rows = [*DOCUMENTS, *MORE, ("nah-a.md", "Nah A", "de", "published", [NEAR])]
        for n, row in enumerate(rows):
            _put(writer, *row, seed=n)
        _publish(writer)
    monkeypatch.setattr(segments, "MIN_BASE_CHUNKS", 0)
    monkeypatch.setattr(segments, "MERGE_FRACTION", 1000.0)
    return engine


def _rebuilt(reader: LoadedIndex) -> LexicalIndex:
    """BM25 built from scratch over the German passages of the version ``reader`` reads."""
    german = [
        (row.chunk_id, passage_text(reader.documents[row.doc_id].metadata.title, row.heading, row.text))
        for row in reader.store.chunk_texts()
        if reader.documents[row.doc_id].metadata.language == "de"
    ]
    return LexicalIndex.build(german)


def _assert_bm25_equals_a_rebuild(reader: LoadedIndex) -> None:
    """Same chunks, same scores: the version's statistics over base and delta are those of one index. (The texts
    here add no word that would split a base chunk's compound differently; such splits stay as analysed, as in
    every incremental update, docs/performance.md.)"""
    full = _rebuilt(reader)
    full.use_synonyms([])
    assert sorted(reader.lexical.chunk_ids.tolist()) == full.chunk_ids.tolist()
    for query in QUERIES:
        weights = full.query_terms(query)
        got = dict(reader.lexical.search(weights, 1000))
        want = dict(full.search(weights, 1000))
        assert got.keys() == want.keys(), query
        for chunk_id, score in want.items():
            assert got[chunk_id] == pytest.approx(score, rel=1e-5), (query, chunk_id)


def _delta_write(engine: LocalStorage) -> dict[str, tuple[list[int], np.ndarray]]:
    """Upload two documents (one German with words the base has, one a near-duplicate of ``nah-a.md``)."""
    with engine.lock():
        writer = _writer(engine)
        stored = {
            "neu.md": _put(writer, "neu.md", "Neue Sprachkurse", "de", "published",
                           ["Sprachkurse und Beratung im Quartier durch Lotsen.", "Die Kita liest vor."], 50),
            "nah-b.md": _put(writer, "nah-b.md", "Nah B", "de", "published", [NEAR + " Ende."], 51),
        }  # fmt: skip
        _publish(writer)
    return stored


def test_an_upload_is_a_delta_segment_searched_with_the_base(segmented: LocalStorage) -> None:
    base = _reader(segmented)
    assert not any((base.folder / name).exists() for name in DELTA_FILES)
    stored = _delta_write(segmented)
    reader = _reader(segmented)
    assert all((reader.folder / name).exists() for name in DELTA_FILES)
    assert isinstance(reader.lexical, LayeredLexical)
    for name in ("store.sqlite", "vectors.faiss", "lexical.npz"):  # the base is linked, not copied
        assert (reader.folder / name).stat().st_ino == (base.folder / name).stat().st_ino
    assert reader.manifest.documents == base.manifest.documents + 2
    assert reader.manifest.chunks == base.manifest.chunks + 3 == len(reader.vectors)
    ids, vectors = stored["neu.md"]
    for chunk_id, vector in zip(ids, vectors, strict=True):
        (best, score), *_ = reader.vectors.search(vector, 3)
        assert best == chunk_id and score == pytest.approx(1.0, abs=1e-5)
        assert reader.vectors.search(vector, 1, allowed=[ids[1 - ids.index(chunk_id)]])[0][0] != chunk_id
    kita = base.doc_chunks[document_id("kita.md")].tolist()
    assert reader.vectors.search(stored_vector(base, kita[0]), 1)[0][0] == kita[0]  # the base still searched
    hits = reader.lexical.search(reader.lexical.query_terms("Sprachkurse Beratung Quartier"), 3)
    assert hits[0][0] == ids[0]
    assert reader.doc_of(ids) == dict.fromkeys(ids, document_id("neu.md"))
    assert [c.text for c in reader.chunks_of(document_id("neu.md"))][1] == "Die Kita liest vor."
    assert reader.document_text(document_id("neu.md")) is not None
    near = [d.id for d in reader.near_duplicates_of(document_id("nah-b.md"))]
    assert near == [document_id("nah-a.md")]  # grouped with a base document, around the changed ones only
    _assert_bm25_equals_a_rebuild(reader)


def stored_vector(reader: LoadedIndex, chunk_id: int) -> np.ndarray:
    return np.asarray(reader.vectors.reconstruct(chunk_id))


def test_a_purge_leaves_a_tombstone_that_no_reader_method_returns(segmented: LocalStorage) -> None:
    _delta_write(segmented)
    before = _reader(segmented)
    gone = document_id("schwimmen.md")
    old = before.doc_chunks[gone].tolist()
    vectors = [stored_vector(before, c) for c in old]
    with segmented.lock():
        writer = _writer(segmented)
        writer.remove_document(gone)
        writer.remove_document(document_id("nah-b.md"))  # a document of the delta itself
        _publish(writer)
    reader = _reader(segmented)
    assert (reader.folder / "store.sqlite").stat().st_ino == (before.folder / "store.sqlite").stat().st_ino
    for doc_id in (gone, document_id("nah-b.md")):
        assert doc_id not in reader.documents and doc_id not in reader.doc_chunks
        assert reader.chunks_of(doc_id) == [] and reader.document_text(doc_id) is None
        assert reader.store.document(doc_id) is None
    assert reader.chunks(old) == {} and reader.doc_of(old) == {}
    assert reader.near_duplicates_of(document_id("nah-a.md")) == []
    everything = reader.vectors.ids().tolist()
    for vector in vectors:
        assert not {c for c, _ in reader.vectors.search(vector, 100)} & set(old)
        assert reader.vectors.search(vector, 5, allowed=old) == []
        assert not {c for c, _ in reader.vectors.search(vector, 100, allowed=[*old, *everything])} & set(old)
    weights = reader.lexical.query_terms("Schwimmkurs Hallenbad")
    assert not {c for c, _ in reader.lexical.search(weights, 100)} & set(old)
    assert reader.lexical.search(weights, 100, allowed=np.asarray(old)) == []
    assert "hallenbad" not in reader.lexical.terms  # a word only the purged document had
    assert reader.manifest.documents == len(reader.documents) == len(reader.store.documents())
    assert reader.manifest.chunks == len(reader.vectors) == sum(len(c) for c in reader.doc_chunks.values())
    _assert_bm25_equals_a_rebuild(reader)


def test_replacing_a_base_document_puts_the_new_one_in_the_delta(segmented: LocalStorage) -> None:
    before = _reader(segmented)
    doc_id = document_id("kita.md")
    old = before.doc_chunks[doc_id].tolist()
    with segmented.lock():
        writer = _writer(segmented)
        texts = ["Die Kita singt jeden Morgen.", "Erzieherinnen lesen täglich vor."]
        new_ids, new_vectors = _put(writer, "kita.md", "Sprachförderung in der Kita", "de", "published", texts, 77)
        _publish(writer)
    reader = _reader(segmented)
    assert reader.doc_chunks[doc_id].tolist() == new_ids and not set(new_ids) & set(old)
    assert [c.text for c in reader.chunks_of(doc_id)] == texts
    assert reader.documents[doc_id].chunks == 2 and reader.chunks(old) == {}
    assert reader.vectors.search(new_vectors[0], 1)[0][0] == new_ids[0]
    assert reader.store.base.has_document(doc_id)  # type: ignore[union-attr]  # the base row stays, tombstoned
    _assert_bm25_equals_a_rebuild(reader)


def test_a_merge_folds_the_delta_into_a_new_base_equal_to_a_rebuild(
    segmented: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _delta_write(segmented)
    with segmented.lock():
        writer = _writer(segmented)
        writer.remove_document(document_id("schwimmen.md"))
        _publish(writer)
    layered = _reader(segmented)
    monkeypatch.setattr(segments, "MERGE_FRACTION", 0.01)
    with segmented.lock():
        writer = _writer(segmented)
        _put(writer, "letzte.md", "Letzter Bericht", "de", "published", ["Ein Lesefest in der Bibliothek."], 90)
        _publish(writer)
    merged = _reader(segmented)
    assert not any((merged.folder / name).exists() for name in DELTA_FILES)
    assert (merged.folder / "store.sqlite").stat().st_ino != (layered.folder / "store.sqlite").stat().st_ino
    assert set(merged.documents) == set(layered.documents) | {document_id("letzte.md")}
    assert {d: c.tolist() for d, c in merged.doc_chunks.items() if d != document_id("letzte.md")} == {
        d: c.tolist() for d, c in layered.doc_chunks.items()
    }
    assert merged.manifest.chunks == len(merged.vectors) == layered.manifest.chunks + 1
    ids, vectors = stored["neu.md"]
    assert np.allclose(stored_vector(merged, ids[0]), vectors[0], atol=1e-6)
    assert merged.near_duplicates_of(document_id("nah-b.md"))[0].id == document_id("nah-a.md")
    _assert_bm25_equals_a_rebuild(merged)
    assert max(merged.vectors.ids()) > max(layered.vectors.ids())  # chunk ids never reused after a merge


def test_a_reader_of_the_version_before_is_taken_over(segmented: LocalStorage) -> None:
    first = segmented.open_reader()
    _delta_write(segmented)
    second = segmented.open_reader()
    assert second.base is first.base  # the base's vectors, documents and chunk maps are shared, not loaded again
    assert second.vectors.base._index is first.vectors._index  # type: ignore[union-attr]
    with segmented.lock():
        writer = _writer(segmented)
        writer.remove_document(document_id("kita.md"))
        _publish(writer)
    third = segmented.open_reader()
    assert third.base is first.base and document_id("kita.md") not in third.documents
    assert isinstance(third.lexical, LayeredLexical) and isinstance(second.lexical, LayeredLexical)
    assert third.lexical.base is second.lexical.base  # the base's term counts are read once
    fresh = LoadedIndex.open(third.folder)
    assert list(fresh.documents) == list(third.documents)
    every_id = [int(i) for ids in first.doc_chunks.values() for i in ids] + [
        int(i) for ids in third.doc_chunks.values() for i in ids
    ]
    whole = owners_of(every_id, *chunk_map(third.doc_chunks))  # the map built from every document's chunks
    assert third.doc_of(every_id) == fresh.doc_of(every_id) == whole
    assert set(whole.values()) == set(third.documents)
    assert {d: list(ids) for d, ids in third.doc_chunks.items()} == {
        d: list(ids) for d, ids in fresh.doc_chunks.items()
    }
    assert fresh.lexical.search(fresh.lexical.query_terms("Lotsen"), 5) == third.lexical.search(
        third.lexical.query_terms("Lotsen"), 5
    )


def test_a_metadata_change_after_a_delta_links_the_delta(segmented: LocalStorage) -> None:
    _delta_write(segmented)
    before = segmented.open_reader()
    doc = before.documents[document_id("neu.md")]
    with segmented.lock():
        writer = _writer(segmented)
        writer.set_metadata(doc.id, Metadata.from_dict({**doc.metadata.as_dict(), "district": "Bochum"}))
        _publish(writer)
    after = segmented.open_reader()
    assert after.documents[doc.id].metadata.district == "Bochum"
    assert after.store.document(doc.id).metadata.district == "Bochum"  # type: ignore[union-attr]
    assert (after.folder / DELTA_STORE).stat().st_ino == (before.folder / DELTA_STORE).stat().st_ino
    assert after.vectors is before.vectors


def test_an_index_of_the_format_before_segments_opens_and_gets_a_delta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = LocalStorage(tmp_path / "index")
    _filled(engine)  # written as before: no bands file, no delta
    folder = _reader(engine).folder
    assert not (folder / segments.BANDS_FILE).exists()
    monkeypatch.setattr(segments, "MIN_BASE_CHUNKS", 0)
    stored = _delta_write(engine)
    reader = _reader(engine)
    assert (reader.folder / segments.BANDS_FILE).exists() and (reader.folder / DELTA_STORE).exists()
    assert reader.vectors.search(stored["neu.md"][1][0], 1)[0][0] == stored["neu.md"][0][0]
    assert set(reader.documents) == {document_id(k) for k, *_ in DOCUMENTS} | {
        document_id("neu.md"),
        document_id("nah-b.md"),
    }


def _crashing_write(root: str, stage: str, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """A writer in a child process that stops for good in ``stage`` (killed there by the parent)."""
    from kb.storage import local

    segments.MIN_BASE_CHUNKS = 0
    segments.MERGE_FRACTION = 0.01 if stage == "merge" else 1000.0
    engine = LocalStorage(Path(root))

    def hang(*_args: object, **_kwargs: object) -> None:
        ready.set()
        time.sleep(600)

    if stage == "merge":
        local.Vectors.save = hang  # type: ignore[method-assign]  # the merged base's vectors, being written
    else:
        local.Delta.save = hang  # type: ignore[method-assign]
    with engine.lock():
        writer = _writer(engine)
        _put(writer, "kind.md", "Kind", "de", "published", ["Ein Text, der nie erscheint."], 99)
        _publish(writer)


@pytest.mark.parametrize("stage", ["delta", "merge"])
def test_a_writer_killed_during_a_delta_write_or_a_merge_leaves_the_last_version(
    segmented: LocalStorage, stage: str
) -> None:
    _delta_write(segmented)
    before = _reader(segmented)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(target=_crashing_write, args=(str(segmented.root), stage, ready))
    child.start()
    assert ready.wait(120), "the child writer never reached the stage"
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join()
    assert segmented.current_name() == before.name
    reader = LoadedIndex.open(before.folder.parent / before.name)
    assert document_id("kind.md") not in reader.documents
    assert reader.vectors.search(_unit(5000), 1)  # searchable
    with segmented.lock():  # the next writer cleans up and writes
        writer = _writer(segmented)
        writer.remove_document(document_id("neu.md"))
        _publish(writer)
    assert not list((segmented.root / "versions").glob(".build-*"))
    assert document_id("neu.md") not in _reader(segmented).documents


def test_an_exception_during_a_delta_write_publishes_nothing(
    segmented: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = segmented.current_name()

    def broken(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(segments.Delta, "save", broken)
    with segmented.lock(), pytest.raises(OSError, match="disk full"):
        writer = _writer(segmented)
        try:
            _put(writer, "neu.md", "Neu", "de", "published", ["Ein Lesefest."], 7)
            _publish(writer)
        finally:
            writer.discard()
    assert segmented.current_name() == before
    assert not list((segmented.root / "versions").glob(".build-*"))
    assert document_id("neu.md") not in _reader(segmented).documents


def test_a_splitter_with_a_vocabulary_change_equals_one_built_from_the_changed_vocabulary() -> None:
    base = {"sprache": 3, "bildung": 2, "größe": 1, "grosse": 1, "kurse": 4}
    change = {"sprache": -3, "größe": 2, "eltern": 5, "kurse": -1, "fehlt": -2}
    changed = CompoundSplitter(base).changed(change)
    built = CompoundSplitter({"bildung": 2, "größe": 3, "grosse": 1, "kurse": 3, "eltern": 5})
    assert dict(changed.vocabulary) == built.vocabulary and dict(changed._folded) == built._folded
    assert CompoundSplitter(base).vocabulary == base  # the base's own splitter is not changed
    for word in ("sprachbildung", "elternkurse", "gruppengröße"):
        assert changed.split(word) == built.split(word)
    assert DATA_FILES == segments.BASE_FILES


def test_backup_restore_and_doctor_know_a_version_with_a_delta_segment(
    segmented: LocalStorage, tmp_path: Path
) -> None:
    _delta_write(segmented)
    live = _reader(segmented)
    settings = Settings(index_dir=segmented.root, data_dir=tmp_path / "data", model=MODEL)
    check = check_index(settings)
    assert check.status == "OK" and "delta segment of 3 chunks and 0 removed documents" in check.message
    backup(settings, tmp_path / "backup")
    restored = Settings(index_dir=tmp_path / "restored", data_dir=tmp_path / "data2", model=MODEL)
    restore(restored, tmp_path / "backup")
    reader = open_current(restored.index_dir)
    assert all((reader.folder / name).exists() for name in DELTA_FILES)
    assert list(reader.documents) == list(live.documents)
    vector = stored_vector(live, live.doc_chunks[document_id("neu.md")][0])
    assert reader.vectors.search(vector, 1) == live.vectors.search(vector, 1)
    (live.folder / DELTA_STORE).write_bytes(b"damaged")  # a damaged delta is found like any damaged file
    broken = check_index(settings)
    assert broken.status == "FAIL" and DELTA_STORE in broken.message
