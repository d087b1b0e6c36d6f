"""Sizing of a local installation: a real ``kb serve`` on an existing index, first on its live version alone, then
after one upload (a 10-page PDF) and one purge, with the delta segment they write.

Usage: ``python -m bench.sizing INDEX_DIR --workdir W [--out FILE]``. The index is never written: the server runs
on a hard-linked copy in ``W``. Prints and writes one JSON object (readiness, memory, HTTP p50/p95 of each state,
the seconds of the write); the numbers go to docs/deployment.md ("Sizing").
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from bench.server import kb_serve
from bench.synthetic import bundled_questions
from bench.writes import linked_copy, ten_pages
from kb.embedder import Embedder
from kb.index import open_current
from kb.ingest import Ingestor
from kb.settings import Settings


def measure(index: Path, work: Path) -> dict[str, Any]:
    copy = linked_copy(index, work / "sizing-index")
    corpus, data = work / "sizing-corpus", work / "sizing-data"
    for folder in (corpus, data):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    settings = Settings(index_dir=copy, data_dir=data, corpus_dir=corpus)
    texts = bundled_questions()
    out: dict[str, Any] = {"chunks": open_current(copy).manifest.chunks, "base": kb_serve(settings, texts)}
    print("base", out["base"], flush=True)
    (corpus / "bericht.pdf").write_bytes(ten_pages(0))
    victim = next(iter(open_current(copy).documents.values())).key
    started = time.perf_counter()
    Ingestor(settings, Embedder(settings)).run([corpus / "bericht.pdf"], purge=[victim])
    out["write_s"] = round(time.perf_counter() - started, 2)
    out["with_delta"] = kb_serve(settings, texts)
    print("with a delta", out["with_delta"], flush=True)
    shutil.rmtree(copy, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("index", type=Path)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = measure(args.index, args.workdir)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
