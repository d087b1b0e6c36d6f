"""The benchmarks write only their generated blocks: the hand-written prose around them survives every rerun."""

from __future__ import annotations

import importlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench import generated, load, quality, report
from bench.paths import PERFORMANCE_DOC, QUALITY_DOC, REPO
from kb.evaluation import Metrics

PROSE_BEFORE = "# Title\n\nWhat the table measures, written by hand.\n\n"
PROSE_AFTER = "\n\nNotes on the run, written by hand: 12.3 ms was measured on a quiet machine.\n"


def _doc(*blocks: tuple[str, str]) -> str:
    parts = [PROSE_BEFORE]
    for name, content in blocks:
        opening, closing = generated.markers(name)
        parts.append(f"{opening}\n{content}\n{closing}\n\nProse between the blocks.\n\n")
    return "".join(parts).rstrip("\n") + PROSE_AFTER


def _outside(text: str, names: list[str]) -> str:
    """``text`` with the content of each named block taken out (what a rerun must leave as it is)."""
    for name in names:
        text = generated.replace_block(text, name, "")
    return text


def test_replacing_a_block_keeps_the_prose_and_replaces_only_its_table() -> None:
    old_table, other_table = "| a |\n|---|\n| 1 |", "| b |\n|---|\n| 2 |"
    text = _doc(("scale", old_table), ("other", other_table))
    new_table = "| a |\n|---|\n| 3 |\n| 4 |"

    updated = generated.replace_block(text, "scale", new_table)

    assert generated.block(updated, "scale") == new_table
    assert generated.block(updated, "other") == other_table
    assert old_table not in updated
    assert updated.startswith(PROSE_BEFORE) and updated.endswith(PROSE_AFTER)
    assert _outside(updated, ["scale"]) == _outside(text, ["scale"])


def test_replacing_a_block_twice_gives_the_same_document() -> None:
    text = _doc(("t", "| x |"))
    once = generated.replace_block(text, "t", "| y |\n")
    assert generated.replace_block(once, "t", "| y |") == once


@pytest.mark.parametrize(
    "text",
    [
        _doc(("other", "| x |")),  # no markers for the block at all
        PROSE_BEFORE + generated.markers("t")[0] + "\n| x |\n" + PROSE_AFTER,  # closing marker missing
        _doc(("t", "| x |"), ("t", "| y |")),  # the block twice
        PROSE_BEFORE + generated.markers("t")[1] + "\n| x |\n" + generated.markers("t")[0] + PROSE_AFTER,
    ],
    ids=["missing", "unclosed", "twice", "reversed"],
)
def test_a_missing_or_broken_marker_is_an_error_naming_the_markers(text: str) -> None:
    with pytest.raises(generated.MarkerError, match=r"<!-- generated:t --> and <!-- /generated:t -->"):
        generated.replace_block(text, "t", "| new |")


def test_update_writes_nothing_when_one_block_has_no_markers(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    text = _doc(("a", "| old |"))
    doc.write_text(text, encoding="utf-8")

    with pytest.raises(generated.MarkerError, match="missing"):
        generated.update(doc, {"a": "| new |", "missing": "| new |"})
    with pytest.raises(generated.MarkerError, match="missing"):
        generated.check(doc, ["a", "missing"])

    assert doc.read_text(encoding="utf-8") == text


def test_update_of_a_document_that_does_not_exist_says_so(tmp_path: Path) -> None:
    with pytest.raises(generated.MarkerError, match="does not exist"):
        generated.update(tmp_path / "nowhere.md", {"a": "| x |"})


def test_the_docs_have_the_markers_of_every_generated_block() -> None:
    generated.check(PERFORMANCE_DOC, [*report.BLOCKS, "load"])
    generated.check(QUALITY_DOC, quality.BLOCKS)


def test_a_rerun_from_recorded_results_replaces_only_the_tables(tmp_path: Path) -> None:
    recorded = sorted((REPO / "docs" / "bench").glob("performance-*.json"))[-1]
    results = json.loads(recorded.read_text(encoding="utf-8"))
    doc = tmp_path / "performance.md"
    doc.write_text(PERFORMANCE_DOC.read_text(encoding="utf-8"), encoding="utf-8")
    blocks = report.blocks(results)

    generated.update(doc, blocks)

    after = doc.read_text(encoding="utf-8")
    assert set(blocks) <= set(report.BLOCKS)
    for name, content in blocks.items():
        assert generated.block(after, name) == content
    before = PERFORMANCE_DOC.read_text(encoding="utf-8")
    assert _outside(after, list(blocks)) == _outside(before, list(blocks))
    assert generated.block(after, "load") == generated.block(before, "load")


def test_a_partial_run_leaves_the_tables_it_did_not_measure(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(PERFORMANCE_DOC.read_text(encoding="utf-8"), encoding="utf-8")
    ingestion = {"chunks": 10, "ingest_seconds": 2.0, "ingest_chunks_per_s": 5.0, "raw_chunks_per_s": 5.5}
    results = {"date": "today", "machine": "this one", "ingest/bundled/onnx-int8": {**ingestion, "ratio": 0.9}}

    blocks = report.blocks(results)
    generated.update(doc, blocks)

    assert {"run", "targets", "ingestion"} <= set(blocks)
    assert not {"scale", "scale-parts", "writes", "vectors", "encoders"} & set(blocks)
    before, after = PERFORMANCE_DOC.read_text(encoding="utf-8"), doc.read_text(encoding="utf-8")
    for name in ("scale", "scale-parts", "writes", "vectors", "encoders", "load"):
        assert generated.block(after, name) == generated.block(before, name)
    assert "| bundled | onnx-int8 | 10 |" in generated.block(after, "ingestion")


def _metrics(value: float, queries: int, by_language: dict[str, Metrics] | None = None) -> Metrics:
    return Metrics(value, value, value, value, queries, 1, by_language or {})


def test_quality_tables_have_a_row_per_set_and_per_set_and_language(tmp_path: Path) -> None:
    languages = {"de": _metrics(0.9, 3), "tr": _metrics(0.5, 2)}
    results = {
        "one": {mode: _metrics(0.8, 5) for mode in quality.COLUMNS},
        "two": {mode: _metrics(0.7, 5, languages) for mode in quality.COLUMNS},
    }
    doc = tmp_path / "quality.md"
    doc.write_text(QUALITY_DOC.read_text(encoding="utf-8"), encoding="utf-8")

    generated.update(doc, quality.blocks(results, {"one": 1.0, "two": 2.0}, "run line"))

    after = doc.read_text(encoding="utf-8")
    modes = generated.block(after, "modes").splitlines()[2:]
    assert [row.split(" | ")[0] for row in modes] == ["| one", "| two"]
    rows = generated.block(after, "languages").splitlines()[2:]
    assert [row.split(" | ")[:2] for row in rows] == [["| two", "de"], ["| two", "tr"]]
    assert generated.block(after, "run") == "run line"
    before = QUALITY_DOC.read_text(encoding="utf-8")
    assert _outside(after, list(quality.BLOCKS)) == _outside(before, list(quality.BLOCKS))


def test_the_load_report_is_a_run_line_and_one_row_per_level() -> None:
    levels = [load.Level(1, 2.0, [0.01, 0.02]), load.Level(8, 2.0, [0.05], errors=1, error_kinds={"HTTP 503": 1})]

    section = load.report(levels, "http://127.0.0.1:8000", "a note").splitlines()

    assert "127.0.0.1:8000" in section[0] and section[0].endswith("a note")
    assert [row.split(" | ")[0] for row in section[4:]] == ["| 1", "| 8"]
    assert "HTTP 503: 1" in section[-1]


@pytest.mark.parametrize("path", sorted((REPO / "bench").glob("*.py")), ids=lambda p: p.stem)
def test_every_bench_module_imports(path: Path) -> None:
    importlib.import_module(f"bench.{path.stem}" if path.stem != "__init__" else "bench")


def test_quality_tables_have_a_row_per_set_and_kind_and_the_nothing_fits_decision(tmp_path: Path) -> None:
    from kb.evaluation import NothingFits

    kinds = {"keyword": _metrics(0.6, 2), "question": _metrics(0.9, 3)}
    decision = NothingFits(no_answer=4, answerable=5, caught=2, false_alarms=1)
    with_kinds = {
        mode: replace(_metrics(0.7, 5), by_kind=kinds, nothing_fits=decision) for mode in quality.COLUMNS
    }
    results = {"one": {mode: _metrics(0.8, 5) for mode in quality.COLUMNS}, "two": with_kinds}
    doc = tmp_path / "quality.md"
    doc.write_text(QUALITY_DOC.read_text(encoding="utf-8"), encoding="utf-8")

    generated.update(doc, quality.blocks(results, {"one": 1.0, "two": 2.0}, "run line"))

    after = doc.read_text(encoding="utf-8")
    rows = generated.block(after, "kinds").splitlines()[2:]
    assert [row.split(" | ")[:3] for row in rows] == [["| two", "keyword", "2"], ["| two", "question", "3"]]
    decisions = generated.block(after, "nothing-fits").splitlines()[2:]
    assert len(decisions) == 1 and decisions[0].startswith("| two | 4 | 5 | P 0.67 / R 0.50")
