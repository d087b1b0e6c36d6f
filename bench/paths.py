"""Where the benchmarks find the repository, the shared evaluation sets and the documents they write."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The shared evaluation sets (BEIR folders), read in place and never copied into the repository.
SHARED = REPO.parent / "shared" / "eval"
GESETZE = SHARED / "gesetze-headings"
#: The labelled queries of the bundled corpus (307 since eval/bundled version 2): the benchmark's search queries.
BUNDLED_QUERIES = REPO / "eval" / "bundled" / "queries.jsonl"
PERFORMANCE_DOC = REPO / "docs" / "performance.md"
QUALITY_DOC = REPO / "docs" / "quality.md"
