from kb.chunking import chunk_sections, split_sentences
from kb.documents import Section


def test_abbreviations_ordinals_and_dates_do_not_end_sentences() -> None:
    text = (
        "Das gilt z. B. für DaZ bzw. DaF, vgl. S. 12 im Heft Nr. 3. Am 3. März 2023 begann die 5. Klasse. "
        "Siehe § 3 Abs. 2 SchulG NRW. Dr. Yilmaz u. a. kamen ca. 20 Min. später! Warum? Darum."
    )
    assert split_sentences(text) == [
        "Das gilt z. B. für DaZ bzw. DaF, vgl. S. 12 im Heft Nr. 3.",
        "Am 3. März 2023 begann die 5. Klasse.",
        "Siehe § 3 Abs. 2 SchulG NRW.",
        "Dr. Yilmaz u. a. kamen ca. 20 Min. später!",
        "Warum?",
        "Darum.",
    ]


def test_lowercase_continuation_is_not_a_boundary() -> None:
    assert split_sentences("Das Ende des Jahres 2023. und weiter geht es.") == [
        "Das Ende des Jahres 2023. und weiter geht es."
    ]


def test_chunks_respect_size_overlap_and_keep_sentences_whole() -> None:
    sentence = "Eltern werden früh und mehrsprachig in das Schulleben eingebunden."  # 9 words
    sections = [Section(" ".join([sentence] * 30), heading="Elternarbeit")]
    chunks = chunk_sections(sections, chunk_words=60, overlap=20)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk.text.split()) <= 60
        assert chunk.text.startswith("Eltern") and chunk.text.endswith("eingebunden.")
        assert chunk.heading == "Elternarbeit"
    first, second = chunks[0].text.split(), chunks[1].text.split()
    assert first[-18:] == second[:18]  # two whole sentences carried over


def test_chunks_know_their_pages_across_a_page_break() -> None:
    sections = [
        Section("Erster Satz auf Seite eins. Ein Satz, der auf Seite eins beginnt und", page=1),
        Section("auf Seite zwei endet. Dann folgt noch ein Satz.", page=2),
    ]
    chunks = chunk_sections(sections, chunk_words=12, overlap=0)
    # the second passage starts on page 1 and ends on page 2: a result counts for both
    assert [(c.page, c.page_end) for c in chunks] == [(1, 1), (1, 2), (2, 2)]
    assert chunks[1].text == "Ein Satz, der auf Seite eins beginnt und auf Seite zwei endet."


def test_a_long_list_over_a_page_break_gives_its_parts_the_pages_they_stand_on() -> None:
    """A list without periods is one "sentence" longer than a chunk; its parts on the next page are on that page
    (a scanned judgment lists 17 items over pages 2 and 3)."""
    first = " ".join(f"{n}) Protokoll zu Punkt {n}: Sprachnachweis," for n in range(1, 21))  # 100 words
    second = " ".join(f"{n}) Protokoll zu Punkt {n}: Ehegattennachzug," for n in range(21, 41))
    sections = [Section("Beantragt wurden: " + first, page=2), Section(second + " und mehr.", page=3)]
    chunks = chunk_sections(sections, chunk_words=60, overlap=0)
    assert [(c.page, c.page_end) for c in chunks] == [(2, 2), (2, 2), (2, 3), (3, 3), (3, 3)]
    assert "Ehegattennachzug" not in chunks[1].text and "Sprachnachweis" not in chunks[3].text
    assert "20: Sprachnachweis, 21) Protokoll" in chunks[2].text  # the part that runs over the page break


def test_headings_start_new_chunks_unless_the_text_is_tiny() -> None:
    long_text = "Ein ganz normaler Satz mit einigen Wörtern darin. " * 6
    sections = [
        Section("Nur ein Satz.", heading="Einleitung"),
        Section(long_text, heading="Ziele"),
        Section(long_text, heading="Methoden"),
    ]
    chunks = chunk_sections(sections, chunk_words=100, overlap=10)
    assert [c.heading for c in chunks] == ["Einleitung", "Methoden"]
    assert chunks[0].text.startswith("Nur ein Satz. Ein ganz normaler Satz")


def test_overlong_sentence_is_split_at_word_boundaries() -> None:
    chunks = chunk_sections([Section(" ".join(["Wort"] * 250))], chunk_words=100, overlap=0)
    assert [len(c.text.split()) for c in chunks] == [100, 100, 50]
