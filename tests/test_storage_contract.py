"""The contract every storage engine (:mod:`kb.storage`) must pass, run against each engine in :data:`ENGINES`.

Small data with the real parts of each engine (for ``local``: SQLite, FAISS, BM25 arrays on disk); vectors are
hand-made unit vectors, since these tests are about storage, not the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kb.documents import Chunk, Document, Heading, Metadata, Section, document_id
from kb.errors import ConfigError, IndexMissingError, IndexUnavailableError
from kb.settings import Settings
from kb.storage import Storage, StorageReader, StorageWriter, open_storage
from kb.storage.local import LocalStorage
from kb.storage.scoped import scoped
from kb.visibility import Viewer

MODEL = "contract-model"
DIMENSION = 16
CHUNKING = {"chunk_words": 180, "chunk_overlap": 40, "chunker_version": 2}

#: How to make an empty engine in a folder. ``local-ann`` stores its vectors as an inverted file from the start.
ENGINES: dict[str, Callable[[Path], Storage]] = {
    "local": lambda folder: LocalStorage(folder / "index"),
    "local-ann": lambda folder: LocalStorage(folder / "index", ann_threshold=1),
}

#: (key, title, language, status, chunk texts): German passages with distinct words, one Turkish document.
DOCUMENTS = [
    ("kita.md", "Sprachförderung in der Kita", "de", "published",
     ["Die Kita fördert Sprache im Alltag.", "Erzieherinnen lesen täglich vor."]),
    ("schwimmen.md", "Schwimmkurs für Frauen", "de", "published",
     ["Der Schwimmkurs beginnt im Hallenbad.", "Anmeldung beim Stadtteilzentrum."]),
    ("eltern.md", "Elterncafé", "de", "draft", ["Das Elterncafé öffnet montags in der Grundschule."]),
    ("turkce.md", "Veli kahvesi", "tr", "published", ["Veli kahvesi pazartesi günleri açıktır."]),
]  # fmt: skip


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return ENGINES[request.param](tmp_path)


def _document(key: str, title: str, language: str, status: str, texts: list[str]) -> tuple[Document, list[Chunk]]:
    metadata = Metadata(title=title, language=language, status=status, district="Essen")
    document = Document(path=Path("/corpus") / key, file_type="text", metadata=metadata,
                        sections=tuple(Section(t) for t in texts))  # fmt: skip
    return document, [Chunk(ordinal=i, text=t) for i, t in enumerate(texts)]


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _put(writer: StorageWriter, key: str, title: str, language: str, status: str, texts: list[str],
         seed: int) -> tuple[list[int], np.ndarray]:  # fmt: skip
    """Store a document with one vector per chunk (seeded); returns the chunk ids and their vectors."""
    document, chunks = _document(key, title, language, status, texts)
    ids = writer.put_document(document_id(key), key, f"hash-{key}-{seed}", document, chunks)
    vectors = np.stack([_unit(seed * 100 + i) for i in range(len(ids))])
    writer.add_vectors(ids, vectors)
    return ids, vectors


def _writer(engine: Storage, rebuild: bool = False) -> StorageWriter:
    return engine.open_writer(model=MODEL, dimension=lambda: DIMENSION, rebuild=rebuild)


def _publish(writer: StorageWriter) -> None:
    writer.publish(model=MODEL, chunking=CHUNKING, encoder=None)


def _filled(engine: Storage) -> dict[str, tuple[list[int], np.ndarray]]:
    """Publish :data:`DOCUMENTS` as the first version; the chunk ids and vectors of each key."""
    with engine.lock():
        writer = _writer(engine)
        stored = {row[0]: _put(writer, *row, seed=n) for n, row in enumerate(DOCUMENTS)}
        _publish(writer)
    return stored


def _reader(engine: Storage) -> StorageReader:
    reader = engine.open_reader()
    reader.lexical.use_synonyms([])
    return reader


def test_a_new_storage_has_no_version(engine: Storage) -> None:
    assert engine.current_name() is None
    with pytest.raises(IndexMissingError, match="kb ingest"):
        engine.open_reader()


def test_published_documents_and_chunks_read_back(engine: Storage) -> None:
    stored = _filled(engine)
    reader = _reader(engine)
    assert reader.name == engine.current_name()
    assert reader.manifest.model == MODEL and reader.manifest.dimension == DIMENSION
    assert (reader.manifest.documents, reader.manifest.chunks) == (4, 6)
    assert [d.key for d in reader.documents.values()] == sorted(key for key, *_ in DOCUMENTS)
    for key, title, language, status, texts in DOCUMENTS:
        doc = reader.documents[document_id(key)]
        assert doc.metadata.title == title
        assert (doc.metadata.language, doc.metadata.status, doc.chunks) == (language, status, len(texts))
        assert doc.content_hash.startswith(f"hash-{key}")
        assert [c.text for c in reader.chunks_of(doc.id)] == texts
        ids = stored[key][0]
        assert reader.doc_chunks[doc.id].tolist() == ids
        assert {i: c.text for i, c in reader.chunks(ids).items()} == dict(zip(ids, texts, strict=True))
        assert reader.doc_of(ids) == dict.fromkeys(ids, doc.id)
    assert reader.hidden == {document_id("eltern.md")}  # the draft
    assert reader.chunks([10**9]) == {} and reader.doc_of([10**9]) == {}


def test_dense_search_returns_the_nearest_chunk(engine: Storage) -> None:
    stored = _filled(engine)
    reader = _reader(engine)
    assert len(reader.vectors) == 6 and reader.vectors.dimension == DIMENSION
    for ids, vectors in stored.values():
        for chunk_id, vector in zip(ids, vectors, strict=True):
            (best, score), *_ = reader.vectors.search(vector, 3)
            assert best == chunk_id and score == pytest.approx(1.0, abs=1e-5)
            assert np.allclose(reader.vectors.reconstruct(chunk_id), vector, atol=1e-6)


def test_lexical_search_finds_german_words_and_leaves_other_languages_to_dense(engine: Storage) -> None:
    stored = _filled(engine)
    reader = _reader(engine)
    hits = reader.lexical.search(reader.lexical.query_terms("Hallenbad"), 5)
    assert [chunk_id for chunk_id, _ in hits] == [stored["schwimmen.md"][0][0]]
    assert reader.lexical.coverage("Schwimmkurs im Hallenbad") > 0.5
    assert reader.lexical.search(reader.lexical.query_terms("pazartesi"), 5) == []  # Turkish: not in BM25
    assert reader.lexical.analyzer.terms("Schwimmkurse")


def test_allowed_ids_restrict_dense_and_lexical_search(engine: Storage) -> None:
    stored = _filled(engine)
    reader = _reader(engine)
    kita_ids, kita_vectors = stored["kita.md"]
    allowed = np.asarray(stored["schwimmen.md"][0], dtype=np.int64)
    dense = reader.vectors.search(kita_vectors[0], 5, allowed)
    assert dense and {c for c, _ in dense} <= set(allowed.tolist())
    assert kita_ids[0] not in {c for c, _ in dense}
    terms = reader.lexical.query_terms("Hallenbad Kita")
    assert {c for c, _ in reader.lexical.search(terms, 5, allowed)} == {int(allowed[0])}
    assert reader.vectors.search(kita_vectors[0], 5, np.zeros(0, dtype=np.int64)) == []


def test_a_writer_continues_the_live_version(engine: Storage) -> None:
    stored = _filled(engine)
    with engine.lock():
        writer = _writer(engine)
        assert writer.base is not None and writer.base.version == _reader(engine).manifest.version
        known = writer.known()
        assert {k: v.doc_id for k, v in known.items()} == {key: document_id(key) for key, *_ in DOCUMENTS}
        assert known["kita.md"].content_hash == "hash-kita.md-0"
        locations = writer.locations()
        assert [loc.key for loc in locations] == sorted(known)
        assert all(loc.path == str(Path("/corpus") / loc.key) for loc in locations)
        ids, vectors = stored["kita.md"]
        assert np.allclose(writer.vectors_of(ids), vectors, atol=1e-6)
        assert writer.vector_count == 6 and writer.dimension == DIMENSION
        document = writer.document(document_id("kita.md"))
        assert document is not None and document.metadata.title == "Sprachförderung in der Kita"
        assert [c.id for c in writer.chunks_of(document.id)] == ids
        writer.discard()


def test_a_removed_document_is_gone_everywhere(engine: Storage) -> None:
    stored = _filled(engine)
    gone = document_id("schwimmen.md")
    ids, vectors = stored["schwimmen.md"]
    with engine.lock():
        writer = _writer(engine)
        writer.remove_document(gone)
        assert writer.document(gone) is None and "schwimmen.md" not in writer.known()
        _publish(writer)
    reader = _reader(engine)
    assert gone not in reader.documents and gone not in reader.doc_chunks
    assert reader.chunks(ids) == {} and reader.doc_of(ids) == {} and reader.chunks_of(gone) == []
    assert len(reader.vectors) == 4 and reader.manifest.chunks == 4
    assert not {c for c, _ in reader.vectors.search(vectors[0], 6)} & set(ids)
    assert reader.lexical.search(reader.lexical.query_terms("Hallenbad"), 5) == []


def test_a_replaced_document_keeps_no_old_chunk(engine: Storage) -> None:
    stored = _filled(engine)
    old_ids = stored["kita.md"][0]
    with engine.lock():
        writer = _writer(engine)
        new_ids, vectors = _put(writer, "kita.md", "Kita", "de", "published", ["Neuer Text über Vorlesepaten."], 9)
        _publish(writer)
    reader = _reader(engine)
    assert reader.doc_chunks[document_id("kita.md")].tolist() == new_ids and not set(new_ids) & set(old_ids)
    assert reader.chunks(old_ids) == {} and len(reader.vectors) == 5
    assert reader.vectors.search(vectors[0], 1)[0][0] == new_ids[0]
    hits = reader.lexical.search(reader.lexical.query_terms("Vorlesepaten"), 5)
    assert [c for c, _ in hits] == new_ids
    assert reader.lexical.search(reader.lexical.query_terms("Erzieherinnen"), 5) == []


def test_a_reader_keeps_its_version_while_a_newer_one_is_published(engine: Storage) -> None:
    stored = _filled(engine)
    before = _reader(engine)
    with engine.lock():
        writer = _writer(engine)
        writer.remove_document(document_id("kita.md"))
        _put(writer, "neu.md", "Neu", "de", "published", ["Ein Lesefest im Stadtteil."], 7)
        assert engine.current_name() == before.name  # nothing visible before publishing
        assert set(_reader(engine).documents) == set(before.documents)
        _publish(writer)
    after = _reader(engine)
    assert after.name == engine.current_name() != before.name
    assert after.manifest.version > before.manifest.version
    assert document_id("kita.md") in before.documents and document_id("neu.md") not in before.documents
    ids, vectors = stored["kita.md"]
    assert [c.text for c in before.chunks(ids).values()] == DOCUMENTS[0][4]  # the old version still reads
    assert before.vectors.search(vectors[0], 1)[0][0] == ids[0]
    assert document_id("kita.md") not in after.documents and document_id("neu.md") in after.documents


def test_version_numbers_increase_with_each_publish(engine: Storage) -> None:
    versions = []
    for round_ in range(3):
        with engine.lock():
            writer = _writer(engine)
            _put(
                writer,
                f"d{round_}.md",
                f"Dokument {round_}",
                "de",
                "published",
                [f"Text Nummer {round_}."],
                round_,
            )
            _publish(writer)
        versions.append(_reader(engine).manifest.version)
    assert versions == sorted(set(versions))
    assert len(_reader(engine).documents) == 3


def test_a_discarded_writer_changes_nothing(engine: Storage) -> None:
    _filled(engine)
    before = _reader(engine)
    with engine.lock():
        writer = _writer(engine)
        writer.remove_document(document_id("kita.md"))
        _put(writer, "neu.md", "Neu", "de", "published", ["Ein Lesefest."], 7)
        writer.discard()
    after = _reader(engine)
    assert after.name == before.name and set(after.documents) == set(before.documents)


def test_a_rebuild_starts_from_nothing(engine: Storage) -> None:
    _filled(engine)
    with engine.lock():
        writer = _writer(engine, rebuild=True)
        assert writer.base is None and writer.known() == {} and writer.vector_count == 0
        _put(writer, "neu.md", "Neu", "de", "published", ["Ein Lesefest."], 7)
        _publish(writer)
    assert list(_reader(engine).documents) == [document_id("neu.md")]


def test_near_duplicates_are_found_between_documents(engine: Storage) -> None:
    text = " ".join(
        f"Satz {i} über die Sprachförderung im Stadtteil und die Arbeit der Lotsen." for i in range(12)
    )
    with engine.lock():
        writer = _writer(engine)
        _put(writer, "a.md", "A", "de", "published", [text], 1)
        _put(writer, "b.md", "B", "de", "published", [text + " Ende."], 2)
        _put(writer, "c.md", "C", "de", "published", ["Etwas ganz anderes."], 3)
        _publish(writer)
    reader = _reader(engine)
    assert [d.id for d in reader.near_duplicates_of(document_id("a.md"))] == [document_id("b.md")]
    assert reader.near_duplicates_of(document_id("c.md")) == []


def test_another_model_or_dimension_is_refused(engine: Storage) -> None:
    _filled(engine)
    with engine.lock():
        with pytest.raises(IndexUnavailableError, match="kb ingest --rebuild"):
            engine.open_writer(model="another-model", dimension=lambda: DIMENSION)
        with pytest.raises(IndexUnavailableError, match="dimension"):
            engine.open_writer(model=MODEL, dimension=lambda: DIMENSION * 2)
    with pytest.raises(IndexUnavailableError, match="another-model"):
        _reader(engine).check_model("another-model")
    _reader(engine).check_model(MODEL, DIMENSION)


def test_open_storage_chooses_the_engine_by_setting(tmp_path: Path) -> None:
    storage = open_storage(Settings(index_dir=tmp_path / "index"))
    assert isinstance(storage, LocalStorage) and storage.current_name() is None
    with pytest.raises(ConfigError, match=r"KB_STORAGE.*'local'"):
        open_storage(Settings(index_dir=tmp_path / "index", storage="postgres"))


def test_a_documents_text_by_page_and_headings_read_back(engine: Storage) -> None:
    _filled(engine)
    sections = (
        Section("Einleitung zur Sprachförderung.", "1. Einleitung", page=1),
        Section("Erster Schritt.", "2. Ablauf", page=2),
        Section("Zweiter Schritt, aus einem Bild gelesen.", "2. Ablauf", page=2, ocr=True),
    )
    headings = (Heading("1. Einleitung", 1), Heading("2. Ablauf", 2))
    paged = Document(Path("/corpus/leitfaden.pdf"), "pdf", Metadata(title="Leitfaden"), sections, 3, headings)
    with engine.lock():
        writer = _writer(engine)
        ids = writer.put_document(
            document_id("leitfaden.pdf"), "leitfaden.pdf", "h", paged, [Chunk(0, "Einleitung")]
        )
        writer.add_vectors(ids, np.stack([_unit(5)]))
        _publish(writer)
    reader = _reader(engine)
    text = reader.document_text(document_id("leitfaden.pdf"))
    assert text == paged.text_by_page()
    assert text is not None and [(p.page, p.ocr) for p in text.pages] == [(1, False), (2, True), (3, False)]
    assert text.pages[1].text == "Erster Schritt.\n\nZweiter Schritt, aus einem Bild gelesen."
    assert text.pages[2].text == ""  # a page without text is still a page
    assert [(h.text, h.page) for h in text.headings] == [("1. Einleitung", 1), ("2. Ablauf", 2)]
    kita = reader.document_text(document_id("kita.md"))  # a file without pages: one page, number 1
    assert kita is not None and kita.headings == ()
    assert [(p.page, p.text, p.ocr) for p in kita.pages] == [(1, "\n\n".join(DOCUMENTS[0][4]), False)]
    assert reader.document_text("0123456789abcdef") is None


def test_text_by_page_is_replaced_and_removed_with_its_document(engine: Storage) -> None:
    _filled(engine)
    before = _reader(engine)
    with engine.lock():
        writer = _writer(engine)
        writer.remove_document(document_id("schwimmen.md"))
        _put(writer, "kita.md", "Kita", "de", "published", ["Neuer Text über Vorlesepaten."], 9)
        _publish(writer)
    after = _reader(engine)
    assert after.document_text(document_id("schwimmen.md")) is None
    kita = after.document_text(document_id("kita.md"))
    assert kita is not None and [p.text for p in kita.pages] == ["Neuer Text über Vorlesepaten."]
    old = before.document_text(document_id("kita.md"))  # the old version still reads its own
    assert old is not None and [p.text for p in old.pages] == ["\n\n".join(DOCUMENTS[0][4])]


def test_a_scoped_reader_holds_only_what_the_viewer_may_see(engine: Storage) -> None:
    """Visibility is enforced by wrapping the engine's reader (kb/storage/scoped.py): every engine gets it."""
    stored = _filled(engine)
    with engine.lock():
        writer = _writer(engine)
        document, chunks = _document(*DOCUMENTS[1])
        meta = Metadata(**{**document.metadata.as_dict(), "visibility": "kommune"})
        kommune = Document(document.path, document.file_type, meta, document.sections)
        doc_id = document_id("schwimmen.md")
        ids = writer.put_document(doc_id, "schwimmen.md", "hash-kommune", kommune, chunks)
        writer.add_vectors(ids, stored["schwimmen.md"][1])
        _publish(writer)
    reader = _reader(engine)
    for viewer, sees in ((Viewer(), False), (Viewer("reader", "Hamm"), False), (Viewer("reader", "Essen"), True),
                         (Viewer("editor", "Essen"), True), (Viewer("curator"), True)):  # fmt: skip
        view = scoped(reader, viewer)
        assert (doc_id in view.documents) is sees and (doc_id in view.doc_chunks) is sees
        assert view.manifest.documents == (4 if sees else 3) and view.manifest.chunks == (6 if sees else 4)
        assert bool(view.chunks(ids)) is sees and bool(view.chunks_of(doc_id)) is sees
        assert bool(view.doc_of(ids)) is sees and (view.document_text(doc_id) is not None) is sees
        dense = {c for c, _ in view.vectors.search(stored["schwimmen.md"][1][0], 6)}
        assert (ids[0] in dense) is sees
        lexical = view.lexical.search(view.lexical.query_terms("Hallenbad"), 5)
        assert bool(lexical) is sees and (view.lexical.coverage("Hallenbad") > 0) is sees
        assert len(view.vectors) == (6 if sees else 4)
        if sees is False:
            assert view.name != reader.name  # caches keyed by the name are kept apart
