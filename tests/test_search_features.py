"""Hybrid search, filters, facets, similar documents and highlighted snippets on the small corpus."""

import pytest

from kb.embedder import Embedder
from kb.errors import NotFoundError, QueryError
from kb.lexical import Analyzer, CompoundSplitter
from kb.search import Filters, Searcher, snippet
from kb.settings import Settings


@pytest.fixture(scope="module")
def searcher(small_settings: Settings, embedder: Embedder) -> Searcher:
    return Searcher(small_settings, embedder)


def titles(result) -> list[str]:
    return [hit.document.metadata.title for hit in result.hits]


def test_compound_splitting_matches_paraphrases() -> None:
    analyzer = Analyzer(CompoundSplitter.from_texts(["Sprache und Bildung. Arbeit mit Eltern in der Schule."]))
    assert set(analyzer.terms("Bildung der Sprache")) <= set(analyzer.terms("Sprachbildung"))
    assert set(analyzer.terms("Arbeit mit Eltern")) <= set(analyzer.terms("Elternarbeit"))
    assert analyzer.terms("Mädchen") == analyzer.terms("MAEDCHEN") and analyzer.terms("Straße") == analyzer.terms(
        "strasse"
    )


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_mode_finds_the_obvious_document(searcher: Searcher, mode: str) -> None:
    result = searcher.search("Schwimmkurse für Mädchen", 3, mode=mode)
    assert result.mode == mode
    assert titles(result)[0] == "Schwimmkurse für Mädchen"


def test_lexical_weight_is_high_for_german_and_zero_for_other_languages(searcher: Searcher) -> None:
    german = searcher.search("Wie finden Seiteneinsteiger einen Schulplatz?", 3)
    turkish = searcher.search("Yeni gelen çocuklar için okul yeri nasıl bulunur?", 3)
    ukrainian = searcher.search("Як знайти місце в школі для дитини?", 3)
    assert german.lexical_weight > 0
    assert turkish.lexical_weight == 0.0 and ukrainian.lexical_weight == 0.0
    assert titles(turkish)[0] == titles(ukrainian)[0] == "Schulplatzvergabe für Seiteneinsteiger"


def test_synonyms_expand_acronyms(searcher: Searcher) -> None:
    terms = searcher.index.lexical.query_terms("DaZ im Fachunterricht")
    assert {"deutsch", "zweitsprach"} <= set(terms) and terms["daz"] == 1.0 and terms["zweitsprach"] < 1.0


def test_filter_returns_k_results_from_the_filtered_set(searcher: Searcher) -> None:
    result = searcher.search("Eltern", 2, filters=Filters(district=("Wuppertal", "Hagen")))
    assert sorted(h.document.metadata.district for h in result.hits) == ["Hagen", "Wuppertal"]
    only = searcher.search("Eltern", 5, filters=Filters(topic=("Sport",)), mode="lexical")
    assert [h.document.metadata.district for h in only.hits] in ([], ["Wuppertal"])
    years = searcher.search("Eltern", 10, filters=Filters(year_from=2022, year_to=2023))
    assert {h.document.metadata.year for h in years.hits} == {2022, 2023}


def test_filter_matching_nothing_gives_no_results(searcher: Searcher) -> None:
    assert searcher.search("Eltern", 5, filters=Filters(district=("Atlantis",))).hits == []


def test_facets_count_the_matching_documents(searcher: Searcher) -> None:
    result = searcher.search("Schule", 3, facets=True)
    assert result.facets["district"]["Dortmund"] == 1
    assert result.facets["language"] == {"de": 7}  # all documents of the small corpus (two have no district)
    filtered = searcher.search("Schule", 3, facets=True, filters=Filters(doc_type=("Praxisbericht",)))
    assert filtered.facets["doc_type"] == {"Praxisbericht": 2}


def test_raw_chunks_and_grouped_documents(searcher: Searcher) -> None:
    grouped = searcher.search("Elterncafé Schulpflegschaft", 5)
    assert len({h.document.id for h in grouped.hits}) == len(grouped.hits) == 5
    raw = searcher.search("Elterncafé Schulpflegschaft", 5, group=False)
    assert len(raw.hits) == 5


def test_snippet_highlights_stem_and_umlaut_variants(searcher: Searcher) -> None:
    hit = searcher.search("Muetter und Vaeter im Elterncafe", 1).hits[0]
    marked = [hit.snippet[a:b] for a, b in hit.highlights]
    assert "Mütter" in marked and "Väter" in marked
    assert all(hit.snippet[a:b].strip() == hit.snippet[a:b] and b > a for a, b in hit.highlights)


def test_snippet_is_the_window_with_most_matches_and_marks_each_matched_word() -> None:
    analyzer = Analyzer(CompoundSplitter.from_texts(["Sprache und Bildung in der Kita."]))
    filler = " ".join(f"Wort{i}" for i in range(60))
    text = f"{filler}  Die Sprachbildung\u00a0beginnt „früh“, in der Kita.\n{filler}"
    terms = set(analyzer.terms("Bildung in der Kita"))

    body, spans = snippet(text, terms, analyzer, size=10)

    assert body.startswith("… ") and body.endswith(" …")
    assert [body[a:b] for a, b in spans] == ["Sprachbildung", "Kita"]
    assert snippet(" ".join(["Wort"] * 5), terms, analyzer, size=10) == (" ".join(["Wort"] * 5), [])
    assert snippet("  ", terms, analyzer) == ("", [])


def test_similar_documents_from_other_districts(searcher: Searcher) -> None:
    source = searcher.search("Elterncafé", 1).hits[0].document
    similar = searcher.similar(source.id, 3)
    assert len(similar) == 3 and source.id not in {h.document.id for h in similar}
    assert all(h.document.metadata.district != source.metadata.district for h in similar)
    with pytest.raises(NotFoundError):
        searcher.similar("nope", 3)


def test_unknown_mode_is_a_clear_error(searcher: Searcher) -> None:
    with pytest.raises(QueryError, match="mode must be one of hybrid, dense, lexical"):
        searcher.search("Eltern", 3, mode="semantic")


def test_snippet_opens_with_the_sentence_holding_most_distinct_query_terms() -> None:
    """Issue 15: a sentence naming two query terms once beats a run repeating one term, and the window starts at
    that sentence instead of cutting into it."""
    corpus = "Anmeldung Anmeldungen Gruppengröße Gruppe Größe Schülerinnen Schüler HSU"
    analyzer = Analyzer(CompoundSplitter.from_texts([corpus]))
    repeated = "Die Anmeldung läuft über die Schule, Anmeldung bitte früh, eine Anmeldung genügt. "
    filler = "Dazwischen stehen viele Sätze über andere Dinge des Schullebens und der Elternarbeit. " * 3
    answer = "Für eine HSU-Gruppe ist eine Gruppengröße von mindestens 15 Schülerinnen und Schülern nötig. "
    text = repeated + filler + answer + filler
    terms = dict.fromkeys(analyzer.terms("HSU Gruppengröße Anmeldung"), 1.0)

    body, spans = snippet(text, terms, analyzer, size=20)

    assert body.startswith("… Für eine HSU-Gruppe ist eine Gruppengröße"), body
    assert "mindestens 15 Schülerinnen" in body
    assert any("Gruppengröße" in body[a:b] for a, b in spans)
    # A plain set of terms still works (each at weight 1), and a long sentence shows its densest part.
    long_sentence = " ".join(["Wort"] * 30 + ["Gruppengröße", "und", "HSU"] + ["Wort"] * 30) + "."
    body, _ = snippet(long_sentence, set(terms), analyzer, size=10)
    assert "Gruppengröße" in body and "HSU" in body
