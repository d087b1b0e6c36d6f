"""Writes that cost what they change: a metadata change copies no vectors, postings or chunks (local: a version
that links the live one's data files plus a metadata overlay; PostgreSQL: an UPDATE of the document row), stays
crash-safe, keeps readers on their version, and ranks exactly as a freshly built index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from kb.curation.keys import Principal, Role
from kb.curation.service import Curator
from kb.embedder import Embedder
from kb.index import DATA_FILES, KEEP_VERSIONS, OVERLAY_FILE, IndexDir, LoadedIndex, open_current, verify_files
from kb.ingest import Ingestor
from kb.lexical import CompoundSplitter, fold, vocabulary_counts, words
from kb.search import Searcher
from kb.settings import Settings
from kb.storage import StorageReader, open_storage
from kb.storage.local import LocalStorage
from kb.storage.transfer import copy_version
from tests import factories
from tests.conftest import REPO, make_small_corpus

QUERIES = ("Sprachförderung in der Kita", "Elternarbeit mit Dolmetschern", "Ehrenamt Lotsen")
CURATOR = Principal(Role.CURATOR, "test")
Ranking = dict[tuple[str, str], list[tuple[str, float]]]


def _ranking(settings: Settings, embedder: Embedder) -> Ranking:
    searcher = Searcher(settings.model_copy(update={"result_cache_size": 0}), embedder)
    return {
        (query, mode): [(hit.document.id, hit.score) for hit in searcher.search(query, 10, mode=mode).hits]
        for query in QUERIES
        for mode in ("hybrid", "lexical", "dense")
    }


def _assert_same_ranking(a: Ranking, b: Ranking) -> None:
    assert a.keys() == b.keys()
    bad = [key for key in a if [round(x, 6) for _, x in a[key]] != [round(y, 6) for _, y in b[key]]]
    for key in a:
        assert [d for d, _ in a[key]] == [d for d, _ in b[key]], key
        for (_, x), (_, y) in zip(a[key], b[key], strict=True):
            assert abs(x - y) <= 1e-6, (key, x, y, bad)


def _installation(root: Path, embedder: Embedder, database_url: str | None = None) -> Settings:
    settings = Settings(
        corpus_dir=make_small_corpus(root / "corpus"), index_dir=root / "index", data_dir=root / "data",
        database_url=database_url or "", result_cache_size=0,
    )  # fmt: skip
    Ingestor(settings, embedder).run()
    return settings


def _inode(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def test_a_local_metadata_change_links_the_data_files_and_keeps_readers_on_their_version(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = _installation(tmp_path, embedder)
    searcher = Searcher(settings, embedder)
    curator = Curator(searcher)
    before: StorageReader = searcher.index
    doc_id = next(d for d, doc in before.documents.items() if not doc.metadata.recommended)
    ranking_before = _ranking(settings, embedder)
    old_folder = IndexDir(settings.index_dir).current()
    assert old_folder is not None

    curator.update(CURATOR, doc_id, {"contact": "Büro für Integration"})
    _assert_same_ranking(ranking_before, _ranking(settings, embedder))  # a field search does not weigh
    changed = curator.update(CURATOR, doc_id, {"recommended": True})

    assert changed.metadata.recommended and changed.metadata.contact == "Büro für Integration"
    new_folder = IndexDir(settings.index_dir).current()
    assert new_folder is not None and new_folder != old_folder
    for name in DATA_FILES:  # the same files: nothing was copied
        assert _inode(new_folder / name) == _inode(old_folder / name), name
    assert (new_folder / OVERLAY_FILE).is_file()
    after = searcher.index
    assert after.manifest.metadata_changed == [doc_id]
    assert after.documents[doc_id].metadata.recommended
    assert not before.documents[doc_id].metadata.recommended  # the earlier reader keeps its version
    assert before.documents[doc_id].metadata.contact is None or before.documents[doc_id].metadata.contact == ""
    opened = open_current(settings.index_dir)  # and a process opening the version afresh reads the overlay
    assert opened.documents[doc_id].metadata.contact == "Büro für Integration"
    assert opened.store.document(doc_id) == opened.documents[doc_id]


def test_local_overlays_survive_pruning_and_fold_into_the_next_full_write(
    tmp_path: Path, embedder: Embedder
) -> None:
    """More metadata changes than versions are kept, then an upload (a full write): every version loads, the
    overlay is folded into the store, and the ranking equals an index built from scratch with the same metadata
    (BM25 statistics included)."""
    settings = _installation(tmp_path, embedder)
    curator = Curator(Searcher(settings, embedder))
    ids = sorted(curator.searcher.index.documents)
    for n in range(KEEP_VERSIONS + 2):
        curator.update(CURATOR, ids[n % len(ids)], {"contact": f"Stelle {n}", "review_by": f"2027-0{n + 1}-01"})
    versions = sorted(p.name for p in IndexDir(settings.index_dir).versions.glob("v*"))
    assert len(versions) == KEEP_VERSIONS
    live = IndexDir(settings.index_dir).current()
    assert live is not None
    index = LoadedIndex.open(live)  # every file still there after pruning the versions that linked it first
    verify_files(live, index.manifest)
    contacts = {d: index.documents[d].metadata.contact for d in ids}
    assert contacts[ids[0]] == f"Stelle {len(ids)}" if len(ids) <= KEEP_VERSIONS + 1 else "Stelle 0"

    upload = factories.markdown("Neues Lotsenprojekt", "Herne", "Ehrenamtliche Lotsen begleiten Familien. " * 40)
    curator.upload(CURATOR, "lotsen.md", upload.encode(), {"title": "Neues Lotsenprojekt", "district": "Herne"})
    folded = IndexDir(settings.index_dir).current()
    assert folded is not None and not (folded / OVERLAY_FILE).exists()
    reopened = open_current(settings.index_dir)
    assert {d: reopened.documents[d].metadata.contact for d in ids} == contacts
    assert reopened.manifest.metadata_changed is None

    # built from nothing with the same rows and vectors (encoding again would move dense scores by batching)
    fresh = settings.model_copy(update={"index_dir": tmp_path / "fresh"})
    target = LocalStorage(fresh.index_dir)
    with target.lock():
        copy_version(open_current(settings.index_dir), target)
    rebuilt = open_current(fresh.index_dir)
    assert {d: rebuilt.documents[d].metadata.contact for d in ids} == contacts
    _assert_same_ranking(_ranking(settings, embedder), _ranking(fresh, embedder))


_KILL_AT = {
    # after the data files are linked and the overlay written, before the manifest
    "overlay": "import kb.index as m; real = m.write_overlay\n"
    "def hook(*a):\n    real(*a); os.kill(os.getpid(), signal.SIGKILL)\nm.write_overlay = hook\n",
    # the folder is complete and renamed, CURRENT not yet switched
    "switch": "import kb.index as m; real = m.write_atomic\n"
    "def hook(path, *a):\n    (os.kill(os.getpid(), signal.SIGKILL) if path.name == 'CURRENT' else None)\n"
    "    return real(path, *a)\nm.write_atomic = hook\n",
}


@pytest.mark.parametrize("point", sorted(_KILL_AT))
def test_a_metadata_write_killed_midway_leaves_the_live_version(
    tmp_path: Path, embedder: Embedder, point: str
) -> None:
    settings = _installation(tmp_path, embedder)
    live = open_current(settings.index_dir)
    doc_id = sorted(live.documents)[0]
    script = (
        "import os, signal, sys\n" + _KILL_AT[point] + "from kb.documents import Metadata\n"
        "from kb.index import open_current\nfrom kb.ingest import Ingestor\nfrom kb.settings import Settings\n"
        f"settings = Settings(index_dir={str(settings.index_dir)!r}, data_dir={str(settings.data_dir)!r})\n"
        f"doc = open_current(settings.index_dir).documents[{doc_id!r}]\n"
        "meta = Metadata.from_dict({**doc.metadata.as_dict(), 'contact': 'nie veröffentlicht'})\n"
        f"Ingestor(settings).update_metadata({doc_id!r}, meta)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    after = open_current(settings.index_dir)
    assert after.manifest.version == live.manifest.version
    assert after.documents[doc_id].metadata.contact == live.documents[doc_id].metadata.contact
    verify_files(after.folder, after.manifest)
    assert Searcher(settings, embedder).search("Sprachförderung", 5).hits
    # the next writer clears what the killed one left and publishes
    meta = after.documents[doc_id].metadata.as_dict() | {"contact": "jetzt"}
    from kb.documents import Metadata

    published = Ingestor(settings, embedder).update_metadata(doc_id, Metadata.from_dict(meta))
    assert published is not None and published.version > live.manifest.version
    assert not list(IndexDir(settings.index_dir).versions.glob(".build-*"))
    assert open_current(settings.index_dir).documents[doc_id].metadata.contact == "jetzt"


def test_a_postgres_metadata_change_is_one_row_update(tmp_path: Path, embedder: Embedder, pg_url: str) -> None:
    settings = _installation(tmp_path, embedder, pg_url)
    searcher = Searcher(settings, embedder)
    curator = Curator(searcher)
    before = searcher.index
    doc_id = next(d for d, doc in before.documents.items() if not doc.metadata.recommended)
    ranking_before = _ranking(settings, embedder)

    def counts() -> tuple[int, ...]:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM kb_documents), (SELECT count(*) FROM kb_chunks), "
                "(SELECT count(*) FROM kb_postings), (SELECT count(*) FROM kb_vocabulary), "
                "(SELECT count(*) FROM kb_page_texts)"
            ).fetchone()
        assert row is not None
        return tuple(int(n) for n in row)

    rows = counts()
    curator.update(CURATOR, doc_id, {"contact": "Büro für Integration"})
    _assert_same_ranking(ranking_before, _ranking(settings, embedder))
    before = searcher.index
    curator.update(CURATOR, doc_id, {"recommended": True})
    assert counts() == rows  # no row added or removed anywhere: one UPDATE of the document row
    after = searcher.index
    assert after.manifest.version == before.manifest.version + 1
    assert after.manifest.metadata_changed == [doc_id]
    assert after.documents[doc_id].metadata.recommended
    assert not before.documents[doc_id].metadata.recommended
    assert open_storage(settings).open_reader().documents[doc_id].metadata.recommended
    assert after.near_duplicates == before.near_duplicates


def test_the_vocabulary_a_writer_looks_up_splits_as_the_whole_vocabulary(small_corpus: Path) -> None:
    """The PostgreSQL writer reads only the entries :meth:`CompoundSplitter.lookups` names for the new chunks:
    every word of them splits exactly as with the whole vocabulary."""
    texts = [path.read_text(encoding="utf-8") for path in sorted(small_corpus.rglob("*.md"))]
    assert len(texts) >= 3
    whole = dict(vocabulary_counts(texts))
    full = CompoundSplitter(whole)
    new = max(texts, key=lambda text: sum(bool(full.split(w)) for w in set(words(text))))  # the most compounds
    keys = set().union(*(CompoundSplitter.lookups(w) for w in set(words(new))))
    looked_up = {w: n for w, n in whole.items() if fold(w) in keys or w in vocabulary_counts([new])}
    assert len(looked_up) < len(whole)
    partial = CompoundSplitter(looked_up)
    splits = {w: full.split(w) for w in set(words(new))}
    assert any(splits.values())  # the text has compounds
    assert {w: partial.split(w) for w in splits} == splits
