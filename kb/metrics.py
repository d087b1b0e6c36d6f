"""Prometheus metrics of one app: requests, latency, errors, the live index and ingestion outcomes.

Each app gets its own registry (tests create many apps). Routes are labelled by their template
(``/documents/{doc_id}``), never by the raw path, so new routes are picked up without growing the label set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from kb.ingest import LAST_INGEST_FILE
from kb.storage import StorageReader

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("added", "updated", "removed", "unchanged", "failed")


class Metrics:
    def __init__(self, index: Callable[[], StorageReader], index_dir: Path) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kb_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kb_http_request_duration_seconds",
            "Time to answer a request.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "kb_http_errors",
            "Requests answered with a 5xx status or an unhandled exception.",
            ["route"],
            registry=self.registry,
        )
        self._index, self._index_dir = index, index_dir
        for name, doc, read in (
            ("kb_index_version", "Version of the live index.", lambda i: i.manifest.version),
            ("kb_index_documents", "Documents in the live index.", lambda i: i.manifest.documents),
            ("kb_index_chunks", "Chunks (passages) in the live index.", lambda i: i.manifest.chunks),
        ):
            Gauge(name, doc, registry=self.registry).set_function(self._from_index(read))
        last = Gauge(
            "kb_last_ingestion_files",
            "Files per outcome in the last ingestion.",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            last.labels(outcome).set_function(self._from_last_ingest(outcome))
        Gauge(
            "kb_last_ingestion_timestamp_seconds",
            "When the last ingestion finished (Unix time).",
            registry=self.registry,
        ).set_function(self._from_last_ingest("finished_at"))

    def _from_index(self, read: Callable[[StorageReader], int]) -> Callable[[], float]:
        def value() -> float:
            try:
                return float(read(self._index()))
            except Exception:  # no index yet, or a damaged one: /health says why
                return math.nan

        return value

    def _from_last_ingest(self, key: str) -> Callable[[], float]:
        def value() -> float:
            try:
                data = json.loads((self._index_dir / LAST_INGEST_FILE).read_text(encoding="utf-8"))
                return float(data[key])
            except (OSError, ValueError, KeyError, TypeError):
                return math.nan

        return value

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status >= 500:
            self.errors.labels(route).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
