"""Search over HTTP: a uvicorn thread in this process, concurrent clients, and a real ``kb serve`` process."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import uvicorn

from bench.loopback import free_port
from bench.timing import process_status, timed
from kb.api.app import create_app
from kb.search import Searcher
from kb.settings import Settings


@contextmanager
def thread_server(settings: Settings, searcher: Searcher) -> Iterator[str]:
    """The app on ``searcher`` served by uvicorn on a thread of this process; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, searcher=searcher), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def concurrent(url: str, texts: list[str], clients: int = 8, per_client: int = 50) -> float:
    """Searches per second with ``clients`` clients each repeating the same few queries.

    The clients run in another process, so they do not compete with the server for this interpreter.
    """
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return float(pool.apply(_client_process, (url, texts, clients, per_client)))


def _client_process(url: str, texts: list[str], clients: int, per_client: int) -> float:
    def client_loop(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for j in range(per_client):
                client.get("/search", params={"q": texts[(n + j) % len(texts)], "k": 10}).raise_for_status()

    client_loop(0)  # warm the cache
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    return clients * per_client / (time.perf_counter() - started)


def wait_ready(client: httpx.Client, process: subprocess.Popen[bytes], name: str = "kb serve") -> None:
    """Until the server ``process`` behind ``client`` says ready on /health (a RuntimeError if it exits first)."""
    while True:
        try:
            if client.get("/health").json().get("status") == "ready":
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        time.sleep(0.2)


def kb_serve(settings: Settings, texts: list[str]) -> dict[str, float]:
    """A real ``kb serve`` process on the index: seconds until /health says ready, its memory (whole process:
    model, SQLite, BM25, vectors) after answering every query once, and its latency over HTTP.

    The query and result caches are off, so every search encodes its query and ranks, as in process. Latency
    is taken twice: the first pass over the questions (a just-started server: words of the shown passages
    analysed for the first time, pages of the mapped vectors read) and a second pass, the steady state of a
    running server. The server is a process of its own: the client does not share its interpreter (GIL)."""
    port = free_port()
    env = {
        **os.environ,
        "KB_INDEX_DIR": str(settings.index_dir),
        "KB_DATA_DIR": str(settings.data_dir),
        "KB_PORT": str(port),
        "KB_LOG_FORMAT": "json",
        "KB_QUERY_CACHE_SIZE": "0",
        "KB_RESULT_CACHE_SIZE": "0",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "kb", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            wait_ready(client, process)
            ready_s = time.perf_counter() - started
            status = process_status(process.pid)
            first_p50, first_p95 = searches_over_http(client, texts)
            after = process_status(process.pid)  # memory after answering every query once
            p50, p95 = searches_over_http(client, texts)
    finally:
        process.terminate()
        process.wait(30)
    return {
        "server_ready_s": ready_s,
        "server_rss_ready_mb": status["VmRSS"] / 1024,
        "server_rss_mb": after["VmRSS"] / 1024,
        "server_anon_mb": after["RssAnon"] / 1024,
        "server_file_mb": after["RssFile"] / 1024,
        "server_peak_mb": after["VmHWM"] / 1024,
        "server_http_p50": p50,
        "server_http_p95": p95,
        "server_first_p50": first_p50,
        "server_first_p95": first_p95,
    }


def searches_over_http(client: httpx.Client, texts: list[str]) -> tuple[float, float]:
    """p50 and p95 of one ``/search`` per text, in milliseconds."""
    it = iter(texts)
    return timed(lambda: client.get("/search", params={"q": next(it), "k": 10}).raise_for_status(), len(texts))
