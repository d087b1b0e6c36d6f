"""Translation groups in search: a letter's translations follow it, the one in the query's language first."""

from __future__ import annotations

import shutil

import pytest

from kb import translations
from kb.embedder import Embedder
from kb.ingest import Ingestor
from kb.search import Searcher
from kb.settings import Settings
from tests.conftest import REPO, make_small_corpus

LETTER = "kreis-herford/elternbrief-elternsprechtag.md"
TURKISH = "kreis-herford/elternbrief-elternsprechtag-tr.md"


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Searcher:
    """The small corpus plus the Herford letter and its Turkish translation (``translation_of`` names it)."""
    corpus = make_small_corpus(tmp_path_factory.mktemp("translations") / "corpus")
    for name in (LETTER, TURKISH):
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "corpus" / name, corpus / name)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("translations-index"))
    report = Ingestor(settings, embedder).run()
    assert report.failed == []
    return Searcher(settings, embedder)


def keys(searcher: Searcher, query: str) -> list[str]:
    return [hit.document.key for hit in searcher.search(query, 5).hits]


def test_the_letter_and_its_translation_form_a_group(searcher: Searcher) -> None:
    index = searcher.index
    by_key = {doc.key: doc_id for doc_id, doc in index.documents.items()}
    groups = translations.groups(index)
    assert groups[by_key[TURKISH]] == groups[by_key[LETTER]] == (by_key[LETTER], by_key[TURKISH])
    assert len(groups) == 2  # the other documents are in no group


def test_a_german_query_finds_the_german_letter_first_and_its_turkish_version_next(searcher: Searcher) -> None:
    found = keys(searcher, "Einladung zum Elternsprechtag an der Grundschule")
    assert found[:2] == [LETTER, TURKISH]


def test_a_turkish_query_finds_the_turkish_letter_first(searcher: Searcher) -> None:
    found = keys(searcher, "Veli görüşme günü davet mektubu")
    assert found[:2] == [TURKISH, LETTER]


def test_the_member_in_the_wanted_language_takes_the_groups_place(searcher: Searcher) -> None:
    index = searcher.index
    by_key = {doc.key: doc_id for doc_id, doc in index.documents.items()}
    other = next(d for k, d in by_key.items() if k not in (LETTER, TURKISH))
    ranked = [other, by_key[LETTER]]
    assert translations.follow(index, ranked, "tr") == [other, by_key[TURKISH], by_key[LETTER]]
    assert translations.follow(index, ranked, "de") == [other, by_key[LETTER], by_key[TURKISH]]
    assert translations.follow(index, [other], "tr") == [other]  # no member found: nothing added
    hidden = translations.follow(index, ranked, "tr", lambda doc: doc.key != TURKISH)
    assert hidden == [other, by_key[LETTER]]  # a member the caller may not see is never added


def test_the_language_a_query_names_decides_which_translation_comes_first() -> None:
    from kb.constraints import recognise
    from kb.search import wanted_language

    assert wanted_language(recognise("Elternbrief Elternsprechtag arabisch"), "de") == "ar"
    assert wanted_language(recognise("zweisprachiger Elternbrief deutsch türkisch"), "de") == "tr"
    assert wanted_language(recognise("Elternbrief Elternsprechtag"), "tr") == "tr"
    # two named languages other than German: neither is preferred, the query's own language decides
    assert wanted_language(recognise("Elternbrief arabisch und türkisch"), "de") == "de"
