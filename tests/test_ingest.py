import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from kb import lexical
from kb import vectors as vectors_module
from kb.chunking import passage_text
from kb.embedder import Embedder
from kb.errors import IndexUnavailableError, IngestLockedError
from kb.index import VECTORS_DELETED_FILE, IndexDir, open_current
from kb.ingest import EXIT_PARTIAL, Ingestor
from kb.lexical import GERMAN, LexicalIndex
from kb.search import Searcher
from kb.settings import Settings
from tests import factories
from tests.conftest import make_small_corpus


@pytest.fixture
def fresh(tmp_path: Path) -> Settings:
    """A private copy of the small corpus and an empty index, for tests that change them."""
    return Settings(corpus_dir=make_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")


def top_titles(settings: Settings, embedder: Embedder, query: str, k: int = 3) -> list[str]:
    return [hit.document.metadata.title for hit in Searcher(settings, embedder).search(query, k).hits]


def test_small_corpus_is_searchable_in_german_and_other_languages(
    small_settings: Settings, embedder: Embedder
) -> None:
    assert top_titles(small_settings, embedder, "Wie beziehe ich Eltern mit Zuwanderungsgeschichte ein?")[0] == (
        "Elterncafé an der Grundschule"
    )
    assert top_titles(small_settings, embedder, "Okulda göçmen anne babalarla düzenli buluşmalar nasıl yapılır?")[
        0
    ] == ("Elterncafé an der Grundschule")
    assert top_titles(small_settings, embedder, "Як допомогти літнім людям з деменцією?")[0] == (
        "Demenz und Migration in der Altenpflege"
    )
    assert top_titles(small_settings, embedder, "Textaufgaben in Mathe sprachlich unterstützen")[0] == (
        "Sprachsensibler Mathematikunterricht"
    )


def test_manifest_records_model_counts_and_chunking(small_settings: Settings) -> None:
    index = open_current(small_settings.index_dir)
    manifest = index.manifest
    assert manifest.model == "multilingual-e5-small" and manifest.dimension == 384
    assert manifest.documents == 7 and manifest.chunks == len(index.vectors) >= 7
    assert manifest.chunking["chunk_words"] == small_settings.chunk_words


def test_pdf_chunks_carry_their_page(small_settings: Settings, embedder: Embedder) -> None:
    hits = Searcher(small_settings, embedder).search("Wortspeicherheft Bruch Nenner Zähler", 1).hits
    assert hits[0].document.file_type == "pdf" and hits[0].chunk.page in (1, 2)


def test_incremental_add_change_delete(fresh: Settings, embedder: Embedder) -> None:
    ingestor = Ingestor(fresh, embedder)
    first = ingestor.run()
    assert len(first.added) == 7 and first.version == 1

    again = ingestor.run()
    assert len(again.unchanged) == 7 and not again.changed and again.version == 1

    corpus = fresh.corpus_dir
    (corpus / "wuppertal" / "schwimmkurs.md").write_text(
        factories.markdown("Radfahrkurse für Frauen", "Wuppertal", "Frauen lernen Fahrradfahren im Stadtteil."),
        encoding="utf-8",
    )
    (corpus / "hagen" / "demenz.md").unlink()
    (corpus / "koeln").mkdir()
    (corpus / "koeln" / "theater.md").write_text(
        factories.markdown("Theaterprojekt", "Köln", "Jugendliche spielen Theater in vielen Sprachen."),
        encoding="utf-8",
    )
    changed = ingestor.run()
    assert changed.added == ["koeln/theater.md"]
    assert changed.updated == ["wuppertal/schwimmkurs.md"]
    assert changed.removed == ["hagen/demenz.md"]
    assert changed.version == 2 and changed.documents == 7
    titles = {d.metadata.title for d in open_current(fresh.index_dir).store.documents()}
    assert "Radfahrkurse für Frauen" in titles and "Schwimmkurse für Mädchen" not in titles
    assert "Demenz und Migration in der Altenpflege" not in titles
    assert top_titles(fresh, embedder, "Fahrrad fahren lernen", 1) == ["Radfahrkurse für Frauen"]


def test_an_update_in_an_ann_index_leaves_tombstones_not_a_rebuilt_index(
    fresh: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = fresh.model_copy(update={"ann_threshold": 5})  # the small corpus (8+ chunks) as an inverted file
    monkeypatch.setattr(vectors_module, "COMPACT_FRACTION", 0.5)  # one chunk of 8 would be over the 10 %
    ingestor = Ingestor(settings, embedder)
    ingestor.run()
    before = open_current(settings.index_dir)
    assert before.vectors.is_ann
    key = "wuppertal/schwimmkurs.md"
    old_chunks = set(before.doc_chunks[next(d.id for d in before.store.documents() if d.key == key)].tolist())
    (settings.corpus_dir / key).write_text(
        factories.markdown("Radfahrkurse für Frauen", "Wuppertal", "Frauen lernen Fahrradfahren im Stadtteil."),
        encoding="utf-8",
    )
    report = ingestor.run()
    assert report.updated == [key]
    after = open_current(settings.index_dir)
    assert after.vectors.is_ann and len(after.vectors) == after.manifest.chunks
    tombstones = np.load(after.folder / VECTORS_DELETED_FILE)
    assert set(tombstones.tolist()) == old_chunks  # the inverted file kept them as tombstones: no rebuild
    hits = Searcher(settings, embedder).search("Fahrrad fahren lernen", 20).hits
    assert hits[0].document.metadata.title == "Radfahrkurse für Frauen"
    assert not old_chunks & {hit.chunk.id for hit in hits}


def test_an_update_analyses_only_the_changed_chunks_for_bm25(
    fresh: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lexical, "FULL_REBUILD_FRACTION", 1.0)  # the small corpus would otherwise be rebuilt
    ingestor = Ingestor(fresh, embedder)
    ingestor.run()
    built = []
    monkeypatch.setattr(LexicalIndex, "build", lambda chunks, _b=LexicalIndex.build: built.append(1) or _b(chunks))
    (fresh.corpus_dir / "wuppertal" / "schwimmkurs.md").write_text(
        factories.markdown("Radfahrkurse für Frauen", "Wuppertal", "Frauen lernen Fahrradfahren im Stadtteil."),
        encoding="utf-8",
    )
    assert ingestor.run().updated == ["wuppertal/schwimmkurs.md"]
    assert not built  # updated from the previous version's term counts, not built from all chunks
    index = open_current(fresh.index_dir)
    meta = {d: doc.metadata for d, doc in index.documents.items()}
    german = [
        (c, passage_text(meta[d].title, h, t))
        for c, d, h, t in index.store.chunk_texts()
        if meta[d].language in GERMAN
    ]
    full = LexicalIndex.build(german)
    assert index.lexical.chunk_ids.tolist() == full.chunk_ids.tolist()
    assert set(index.lexical.terms) == set(full.terms) and "schwimmkurs" not in index.lexical.terms
    for query in ("Fahrrad fahren lernen", "Schwimmkurse für Mädchen", "Eltern Zuwanderungsgeschichte"):
        got = index.lexical.search(index.lexical.query_terms(query), 5)
        assert [i for i, _ in got] == [i for i, _ in full.search(full.query_terms(query), 5)]
    assert top_titles(fresh, embedder, "Fahrradfahren im Stadtteil", 1) == ["Radfahrkurse für Frauen"]

    # Changed and purged in one run: the chunks this writer added are taken out again, and nothing falls back.
    (fresh.corpus_dir / "wuppertal" / "schwimmkurs.md").write_text(
        factories.markdown("Radfahrkurse für Seniorinnen", "Wuppertal", "Seniorinnen üben Radfahren im Park."),
        encoding="utf-8",
    )
    built.clear()  # (the comparison above built one)
    with caplog.at_level(logging.WARNING, logger="kb.ingest"):
        report = ingestor.run(purge=["wuppertal/schwimmkurs.md"])
    assert report.removed == ["wuppertal/schwimmkurs.md"] and not built and not caplog.records
    index = open_current(fresh.index_dir)
    assert "seniorin" not in index.lexical.terms and len(index.lexical.chunk_ids) == index.manifest.chunks
    full = LexicalIndex.build(
        [(c, passage_text(meta[d].title, h, t)) for c, d, h, t in index.store.chunk_texts() if d in meta]
    )
    assert index.lexical.chunk_ids.tolist() == full.chunk_ids.tolist()
    # Kept chunks keep the compound splits of the vocabulary they were analysed with (docs/performance.md):
    # a full build may split a word or two differently, nothing more.
    assert len(set(index.lexical.terms) ^ set(full.terms)) <= 0.02 * len(full.terms)


def test_sidecar_change_counts_as_a_change(fresh: Settings, embedder: Embedder) -> None:
    ingestor = Ingestor(fresh, embedder)
    ingestor.run()
    sidecar = fresh.corpus_dir / "essen" / "mathe.pdf.meta.yaml"
    sidecar.write_text(sidecar.read_text(encoding="utf-8").replace("Essen", "Bochum"), encoding="utf-8")
    report = ingestor.run()
    assert report.updated == ["essen/mathe.pdf"]
    districts = {d.metadata.district for d in open_current(fresh.index_dir).store.documents()}
    assert "Bochum" in districts and "Essen" not in districts


def test_bad_files_are_reported_and_the_rest_is_ingested(fresh: Settings, embedder: Embedder) -> None:
    bad = fresh.corpus_dir / "kaputt"
    bad.mkdir()
    (bad / "leer.md").write_bytes(b"")
    factories.write_image_only_pdf(bad / "scan.pdf")
    (bad / "abgeschnitten.pdf").write_bytes((fresh.corpus_dir / "essen" / "mathe.pdf").read_bytes()[:300])
    report = Ingestor(fresh, embedder).run()
    assert len(report.added) == 7
    reasons = {f.path: f.reason for f in report.failed}
    assert reasons["kaputt/leer.md"] == "empty file (0 bytes)"
    assert reasons["kaputt/scan.pdf"].startswith("no text layer (needs OCR)")
    assert reasons["kaputt/abgeschnitten.pdf"].startswith("corrupt or truncated PDF")
    assert report.exit_code == EXIT_PARTIAL


def test_a_changed_file_that_breaks_keeps_its_last_good_version(fresh: Settings, embedder: Embedder) -> None:
    ingestor = Ingestor(fresh, embedder)
    ingestor.run()
    (fresh.corpus_dir / "essen" / "mathe.pdf").write_bytes(b"%PDF-1.4 broken")
    report = ingestor.run()
    assert [f.path for f in report.failed] == ["essen/mathe.pdf"]
    assert "Sprachsensibler Mathematikunterricht" in {
        d.metadata.title for d in open_current(fresh.index_dir).store.documents()
    }


def test_second_ingestion_at_once_stops_with_a_clear_message(fresh: Settings, embedder: Embedder) -> None:
    lock = IndexDir(fresh.index_dir).acquire()
    try:
        with pytest.raises(IngestLockedError, match="Another ingestion is running"):
            Ingestor(fresh, embedder).run()
    finally:
        lock.release()


def test_index_built_with_another_model_is_refused_with_the_fix(fresh: Settings, embedder: Embedder) -> None:
    Ingestor(fresh, embedder).run()
    other = fresh.model_copy(update={"model": "/srv/models/other-model"})
    with pytest.raises(IndexUnavailableError, match="kb ingest --rebuild"):
        Searcher(other, embedder).search("Eltern", 3)


def test_truncated_vector_file_is_detected_at_load(fresh: Settings, embedder: Embedder) -> None:
    Ingestor(fresh, embedder).run()
    folder = IndexDir(fresh.index_dir).current()
    assert folder is not None
    vectors = folder / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:1000])
    with pytest.raises(IndexUnavailableError, match=r"damaged .*kb ingest --rebuild"):
        open_current(fresh.index_dir)


def test_leftover_build_of_a_dead_writer_is_cleaned_up(fresh: Settings, embedder: Embedder) -> None:
    Ingestor(fresh, embedder).run()
    stale = fresh.index_dir / "versions" / ".build-999-1"
    stale.mkdir()
    (stale / "store.sqlite").write_bytes(b"half")
    shutil.copy(fresh.corpus_dir / "hagen" / "demenz.md", fresh.corpus_dir / "hagen" / "kopie.md")
    Ingestor(fresh, embedder).run()
    assert not stale.exists()


def _chunk_rows(settings: Settings) -> tuple[list[int], list[str], np.ndarray]:
    """Chunk ids and passage texts of the live version, and the stored vector of each chunk."""
    index = open_current(settings.index_dir)
    rows = list(index.store.chunk_texts())
    texts = [passage_text(index.documents[doc].metadata.title, heading, text) for _, doc, heading, text in rows]
    vectors = np.stack([index.vectors.reconstruct(chunk_id) for chunk_id, *_ in rows])
    assert sorted(index.vectors.ids().tolist()) == sorted(chunk_id for chunk_id, *_ in rows)
    return [chunk_id for chunk_id, *_ in rows], texts, vectors


def test_groups_encoded_in_the_background_give_each_chunk_its_own_vector(
    fresh: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one passage per batch, groups go to the encoder thread while later files are still being read."""
    groups: list[int] = []
    encode = embedder.encode_documents
    monkeypatch.setattr(
        embedder,
        "encode_documents",
        lambda texts, batch_size=32, stop=None: groups.append(len(texts)) or encode(texts, 8),
    )
    settings = fresh.model_copy(update={"batch_size": 1})

    report = Ingestor(settings, embedder).run()

    assert len(groups) >= 2 and sum(groups) == report.chunks
    _, texts, stored = _chunk_rows(settings)
    similarity = stored @ encode(texts).T  # each stored vector is closest to its own passage's
    assert similarity.argmax(axis=1).tolist() == list(range(len(texts)))
    assert float(np.diag(similarity).min()) > 0.99


def test_a_document_removed_while_its_group_is_encoded_leaves_no_vector(
    tmp_path: Path, embedder: Embedder
) -> None:
    from kb.documents import Document, Metadata, Section, document_id
    from kb.ingest import IndexWriter

    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index")
    index_dir = IndexDir(settings.index_dir)
    subjects = ["Elterncafé in der Grundschule", "Sprachförderung in der Kita", "Lotsen für Neuzugewanderte"]
    with index_dir.acquire():
        writer = IndexWriter.new(settings, embedder)
        for subject in subjects:
            document = Document(
                path=Path(f"{subject}.md"),
                file_type="text",
                metadata=Metadata(title=subject),
                sections=(Section(subject),),
            )
            writer.add(document_id(subject), subject, "", document)
        writer.flush()  # the group is now being encoded in the background
        writer.remove(document_id(subjects[1]))
        writer.publish()

    index = open_current(settings.index_dir)
    assert sorted(d.metadata.title for d in index.documents.values()) == [subjects[0], subjects[2]]
    ids, texts, stored = _chunk_rows(settings)
    assert len(ids) == 2 and float((stored * embedder.encode_documents(texts)).sum(axis=1).min()) > 0.99


def test_an_encoder_failure_in_the_background_keeps_the_previous_version(
    fresh: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = fresh.model_copy(update={"batch_size": 1})
    assert Ingestor(settings, embedder).run().version == 1
    _add_lotsen_documents(settings.corpus_dir, 6)

    def broken(texts: list[str], batch_size: int = 32, stop: object = None) -> np.ndarray:
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(embedder, "encode_documents", broken)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        Ingestor(settings, embedder).run()

    assert open_current(settings.index_dir).manifest.version == 1
    assert not list((settings.index_dir / "versions").glob(".build-*"))


def _add_lotsen_documents(corpus: Path, count: int) -> None:
    for i in range(count):
        (corpus / f"lotsen-{i}.md").write_text(
            factories.markdown(f"Lotsen {i}", "Bochum", "Ehrenamtliche begleiten Familien zu Ämtern. " * 40),
            encoding="utf-8",
        )


def test_closing_a_writer_stops_its_encoder_after_the_current_batch(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an error or Ctrl-C during an ingestion does: the group in flight is not encoded to its end."""
    import threading

    import kb.ingest
    from kb.documents import Document, Metadata, Section, document_id
    from kb.ingest import IndexWriter
    from kb.onnx_encoder import EncodingStoppedError

    stopped: list[str] = []
    encode = embedder.encode_documents

    class AfterFirstBatch:
        """The writer's stop event, as the encoder sees it: after the first batch it waits until the writer
        sets it, so that close() always finds the group in flight (no race with a fast encoder)."""

        def __init__(self, stop: threading.Event) -> None:
            self.stop, self.checks = stop, 0

        def is_set(self) -> bool:
            self.checks += 1
            if self.checks > 1:
                self.stop.wait(timeout=60)
            return self.stop.is_set()

    def recording(texts: list[str], batch_size: int = 32, stop: threading.Event | None = None) -> np.ndarray:
        assert stop is not None
        try:
            return encode(texts, batch_size, AfterFirstBatch(stop))  # type: ignore[arg-type]
        except EncodingStoppedError as exc:
            stopped.append(str(exc))
            raise

    monkeypatch.setattr(embedder, "encode_documents", recording)
    monkeypatch.setattr(kb.ingest, "FIRST_BATCHES", 1000)  # one group of 40 batches, handed over by flush()
    monkeypatch.setattr(kb.ingest, "FLUSH_BATCHES", 1000)
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", batch_size=1)
    index_dir = IndexDir(settings.index_dir)
    with index_dir.acquire():
        writer = IndexWriter.new(settings, embedder)
        for i in range(40):
            text = f"Bericht {i} über Sprachförderung in der Kita."
            writer.add(document_id(str(i)), str(i), "", Document(path=Path(f"{i}.md"), file_type="text",
                       metadata=Metadata(title=f"Bericht {i}"), sections=(Section(text),)))  # fmt: skip
        writer.flush()
        writer.close()
    assert not [t for t in threading.enumerate() if t.name == "kb-encoder"]
    assert stopped == ["stopped after 1 of 40 passages"]  # between two batches of the group
