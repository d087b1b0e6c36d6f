"""Timers, percentiles and the memory of a process (from ``/proc``), as every benchmark measures them."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``samples`` (p95: the sample at 95 % of the sorted list)."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def timed(fn: Callable[[], object], items: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``items`` calls of ``fn``."""
    samples = []
    for _ in range(items):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def rss_mb() -> float:
    """Resident set of this process in MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def process_status(pid: int) -> dict[str, int]:
    """The kB fields of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM`` the peak, ``RssAnon``, ``RssFile`` ...)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in lines) if v.strip().endswith("kB")}


def reset_peak() -> None:
    """Reset this process's peak resident size (``VmHWM``) to its current size, where the kernel allows it."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
