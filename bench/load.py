"""Load test: N concurrent clients against a real uvicorn on loopback, for a bounded time → docs/performance.md.

    python -m bench.load                       # 1, 8 and 32 clients, 20 s each, on the bundled corpus
    python -m bench.load --url http://127.0.0.1:8000 --clients 8 --seconds 60 --no-write

Without ``--url`` the script builds the bundled corpus's index (in a temporary folder, unless ``--index-dir``
holds one) and starts ``kb serve`` in a subprocess on a free loopback port. Each client sends ``GET /search`` in a
loop: half of the queries repeat a few common questions, half are distinct (no two alike). Reported per level:
requests, throughput, p50/p95/p99 latency and errors (any status other than 200, or a failed connection).
Only the generated ``load`` block of docs/performance.md is replaced (:mod:`bench.generated`); the prose around it
is hand-written.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import generated, machine
from bench.loopback import free_port
from bench.paths import PERFORMANCE_DOC, REPO

REPEATED = [
    "Wie beziehe ich Eltern mit Zuwanderungsgeschichte ein?",
    "Sprachförderung in der Kita",
    "Seiteneinsteiger Schulplatz",
    "interkulturelle Öffnung der Verwaltung",
    "Ehrenamt Geflüchtete Begleitung",
]
WORDS = (
    "Eltern Schule Kita Sprache Integration Beratung Jugendliche Arbeit Ausbildung Gesundheit Pflege Sport "
    "Ehrenamt Familie Quartier Migration Demokratie Rassismus Frauen Mädchen Netzwerk Kommune Bildung"
).split()


@dataclass
class Level:
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    @property
    def throughput(self) -> float:
        return (len(self.latencies) + self.errors) / self.seconds


def queries(seed: int) -> Iterator[str]:
    """Half repeated questions, half distinct ones (a counter makes each of them unique)."""
    rng = random.Random(seed)
    for n in itertools.count():
        if rng.random() < 0.5:
            yield rng.choice(REPEATED)
        else:
            yield " ".join(rng.sample(WORDS, 3)) + f" {seed}-{n}"


def run_level(url: str, clients: int, seconds: float) -> Level:
    level = Level(clients, seconds)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(seed: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for q in queries(seed):
                if time.monotonic() >= deadline:
                    return
                started = time.perf_counter()
                try:
                    response = http.get("/search", params={"q": q, "k": 10})
                    kind = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    if kind is None:
                        level.latencies.append(elapsed)
                    else:
                        level.errors += 1
                        level.error_kinds[kind] = level.error_kinds.get(kind, 0) + 1

    threads = [threading.Thread(target=client, args=(clients * 1000 + i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return level


@contextmanager
def served(index_dir: Path | None) -> Iterator[str]:
    """`kb serve` on the bundled corpus's index, on a free loopback port."""
    with tempfile.TemporaryDirectory(prefix="kb-load-") as tmp:
        env = {**os.environ, "KB_CORPUS_DIR": str(REPO / "corpus"), "PYTHONPATH": str(REPO)}
        env["KB_INDEX_DIR"] = str(index_dir or Path(tmp) / "index")
        if index_dir is None or not (index_dir / "CURRENT").exists():
            print("building the bundled corpus's index ...", file=sys.stderr)
            subprocess.run(
                [sys.executable, "-m", "kb", "ingest"], env=env, check=True, cwd=REPO, stdout=sys.stderr
            )
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "kb", "serve", "--port", str(port)],
            env={**env, "KB_LOG_FORMAT": "json"},
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, server)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"kb serve ended with exit code {server.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=5).json().get("status") == "ready":
                httpx.get(f"{url}/search", params={"q": "Aufwärmen"}, timeout=60)  # first search warms up
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("kb serve did not become ready within 180 s")


def report(levels: list[Level], url: str, note: str) -> str:
    """The generated ``load`` block: when, where and against which server, then one row per level."""
    lines = [
        f"Table generated by `make load` on {datetime.now(UTC):%Y-%m-%d} against `kb serve` at "
        f"{url.split('//')[1]}: {machine.with_load()}. {note}".rstrip(),
        "",
        "| clients | seconds | requests | throughput (req/s) | p50 ms | p95 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in levels:
        errors = f"{lv.errors}" + (
            f" ({', '.join(f'{k}: {v}' for k, v in lv.error_kinds.items())})" if lv.errors else ""
        )
        lines.append(
            f"| {lv.clients} | {lv.seconds:.0f} | {len(lv.latencies) + lv.errors} | {lv.throughput:.1f} | "
            f"{lv.quantile(0.5):.0f} | {lv.quantile(0.95):.0f} | {lv.quantile(0.99):.0f} | {errors} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="A running service (default: start `kb serve` on the bundled corpus).")
    parser.add_argument("--index-dir", type=Path, help="Use (or build) the index here instead of a temporary one.")
    parser.add_argument("--clients", default="1,8,32", help="Comma-separated numbers of concurrent clients.")
    parser.add_argument("--seconds", type=float, default=20.0, help="How long each level runs.")
    parser.add_argument("--note", default="", help="A remark for the report (e.g. other load on the machine).")
    parser.add_argument("--no-write", action="store_true", help="Print the report, do not update the doc.")
    parser.add_argument(
        "--out", type=Path, default=PERFORMANCE_DOC, help="The document whose load block is replaced."
    )
    args = parser.parse_args()
    if not args.no_write:
        generated.check(args.out, ["load"])
    counts = [int(c) for c in args.clients.split(",")]

    @contextmanager
    def given(url: str) -> Iterator[str]:
        yield url

    with given(args.url) if args.url else served(args.index_dir) as url:
        levels = []
        for clients in counts:
            level = run_level(url, clients, args.seconds)
            print(
                f"{clients:3} clients: {level.throughput:6.1f} req/s, p50 {level.quantile(0.5):.0f} ms, "
                f"p95 {level.quantile(0.95):.0f} ms, p99 {level.quantile(0.99):.0f} ms, errors {level.errors}",
                file=sys.stderr,
            )
            levels.append(level)
    section = report(levels, url, args.note)
    print(section)
    if not args.no_write:
        generated.update(args.out, {"load": section})


if __name__ == "__main__":
    main()
