"""Ingestion speed, search latency, index memory and quality per encoder on this machine → docs/performance.md.

`make bench` runs `python -m bench.performance`. Measures:
- ingestion in chunks/s on the bundled corpus and on ../shared/eval/gesetze-headings, per encoder, next to the
  raw encoder throughput on the very same passages (:mod:`bench.ingestion`);
- search latency p50/p95 in process and over HTTP (a real uvicorn on loopback), one client, at synthetic sizes
  (1k/10k/100k chunks; 1M with --sizes) scaled up from real text (:mod:`bench.synthetic`, :mod:`bench.scale`);
  ``--workdir`` keeps the built indexes for later runs;
- index load time at each size, Recall@10 of the approximate index against exact search, and a real ``kb serve``
  process on each index: seconds until ready and its whole resident memory (:mod:`bench.server`);
- throughput at 8 concurrent HTTP clients with repeated queries (result cache, and query-vector cache alone);
- the vector index alone against exact search (:mod:`bench.ann`);
- quality (nDCG@10) per encoder on germanquad-test, xquad-de-de and xquad-tr-de (:mod:`bench.encoders`);
- the local and the PostgreSQL engine side by side, and shared ingestion by 1 and 2 workers
  (:mod:`bench.postgres_compare`).
- a curator's writes per kind (upload, metadata changes, retire, purge) in both engines (:mod:`bench.writes`).
- PDF pages per second: text pages and pages read by OCR (:mod:`bench.ocr`).
Only the generated blocks of the document are replaced (:mod:`bench.report`, :mod:`bench.generated`); a block
the run has no data for (a ``--skip``ped part) keeps its earlier table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import generated, machine, ocr, postgres_compare, report, writes
from bench.ann import measure_ann
from bench.encoders import ENCODERS, encoder_quality
from bench.ingestion import ingest_bundled, ingest_gesetze
from bench.paths import PERFORMANCE_DOC, REPO
from bench.scale import measure_scale
from bench.synthetic import scale_pool
from kb.embedder import Embedder
from kb.settings import Settings

PARTS = ("ingest", "scale", "quality", "ann", "postgres", "writes", "pdf")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.performance", description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=PERFORMANCE_DOC, help="The document whose tables are replaced."
    )
    parser.add_argument("--results", type=Path, default=None, help="Also write the raw numbers as JSON here.")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--serve-sizes", type=int, nargs="*", default=None, help="Sizes also measured as a kb serve process (all)."
    )
    parser.add_argument(
        "--write-sizes", type=int, nargs="*", default=None, help="Sizes at which writes are timed (all)."
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="Keep the synthetic indexes here and reuse them in later runs."
    )
    parser.add_argument("--ann-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument(
        "--postgres-sizes", type=int, nargs="*", default=[100_000], help="Sizes of the engine comparison."
    )
    parser.add_argument(
        "--postgres-ingest-folders", type=int, default=0, help="Folders of corpus/ for 1, 2 ingest workers (all)."
    )
    parser.add_argument("--encoders", nargs="*", default=list(ENCODERS))
    parser.add_argument("--gesetze-encoders", nargs="*", default=None, help="Encoders for gesetze (default all).")
    parser.add_argument(
        "--ingest-rounds", type=int, default=3, help="Interleaved pipeline/raw pairs per corpus (median; 3)."
    )
    parser.add_argument("--quality-queries", type=int, default=None, help="Judged queries per set (default all).")
    parser.add_argument("--write-kind-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--write-engines", nargs="*", default=["local", "postgres"], choices=["local", "postgres"])
    parser.add_argument("--ocr-pages", type=int, default=4, help="Pages of the synthetic scan OCR reads (4).")
    parser.add_argument("--merge", type=Path, default=None, help="Results JSON of an earlier run to start from.")
    parser.add_argument("--skip", nargs="*", default=[], choices=list(PARTS))
    return parser


def main() -> None:
    args = parser().parse_args()
    # Fail before hours of measuring, not after, when the document lacks a block's markers.
    generated.check(args.out, (*report.BLOCKS, ocr.BLOCK))
    results: dict[str, Any] = json.loads(args.merge.read_text(encoding="utf-8")) if args.merge else {}
    results.update({"machine": machine.describe(), "date": f"{datetime.now(UTC):%Y-%m-%d}"})

    def checkpoint() -> None:
        if args.results:
            args.results.write_text(json.dumps(results, indent=1), encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        if "ingest" not in args.skip:
            for encoder in args.encoders:
                settings = Settings(
                    corpus_dir=REPO / "corpus",
                    index_dir=Path(tmp) / f"b-{encoder}",
                    data_dir=Path(tmp) / "data",
                    encoder=encoder,
                )
                embedder = Embedder(settings)
                results[f"ingest/bundled/{encoder}"] = ingest_bundled(settings, embedder, args.ingest_rounds)
                print(encoder, results[f"ingest/bundled/{encoder}"], flush=True)
                checkpoint()
                if encoder in (args.gesetze_encoders or args.encoders):
                    settings = settings.model_copy(update={"index_dir": Path(tmp) / f"g-{encoder}"})
                    results[f"ingest/gesetze/{encoder}"] = ingest_gesetze(settings, embedder, args.ingest_rounds)
                    print(encoder, results[f"ingest/gesetze/{encoder}"], flush=True)
                    checkpoint()
        if "quality" not in args.skip:
            for encoder in args.encoders:
                results[f"quality/{encoder}"] = encoder_quality(encoder, args.quality_queries)
                checkpoint()
        if "scale" not in args.skip:
            serve_sizes = args.sizes if args.serve_sizes is None else args.serve_sizes
            write_sizes = args.sizes if args.write_sizes is None else args.write_sizes
            results["scale"] = measure_scale(args.workdir or Path(tmp), args.sizes, serve_sizes, write_sizes)
            checkpoint()
        if "ann" not in args.skip:
            results["ann"] = measure_ann(Path(tmp), args.ann_sizes, args.workdir or Path(tmp))
            checkpoint()
        if "postgres" not in args.skip:
            pool_dir = (args.workdir or Path(tmp)) / "pool"
            if not (pool_dir / "pool.json").exists():
                scale_pool(Settings(), Embedder(Settings()), pool_dir)
            results["postgres"] = [postgres_compare.compare(size, pool_dir) for size in args.postgres_sizes]
            checkpoint()
            files = args.postgres_ingest_folders
            results["postgres_ingest"] = postgres_compare.shared_ingestion(REPO / "corpus", files)
            checkpoint()
        if "writes" not in args.skip:
            work = args.workdir or Path(tmp)
            results["write_kinds"] = writes.run(work, args.write_kind_sizes, args.write_engines, rounds=3)
            checkpoint()
        if "pdf" not in args.skip:
            results["pdf"] = ocr.measure_pdf(args.ocr_pages)
            checkpoint()
    blocks = report.blocks(results)
    if "pdf" in results:
        blocks[ocr.BLOCK] = ocr.table(results["pdf"])
    generated.update(args.out, blocks)
    print(f"wrote the blocks {', '.join(blocks)} of {args.out}")


if __name__ == "__main__":
    main()
