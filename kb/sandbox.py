"""Files are read in a separate worker process with a time and a memory limit.

A hostile or broken file (a PDF that makes the parser loop, a decompression bomb, a parser crash) then costs one
per-file failure, never the whole ingestion: the worker runs with ``RLIMIT_AS`` set to what it needs after its
imports plus ``KB_FILE_MEMORY_MB``; a file that takes longer than ``KB_FILE_TIMEOUT_S`` gets its worker killed
and a fresh one is started for the next file. Files larger than ``KB_MAX_FILE_MB`` are refused before they are
read at all.

The worker is reused for all files of a run and reads one file ahead: while the main process chunks and embeds
file *n*, the worker already parses file *n + 1*. It is a plain ``python -c`` process importing only
:mod:`kb.loaders`, so it starts several times faster than a multiprocessing ``spawn`` child, which imports the
caller's ``__main__`` and with it the whole program.

OCR (:mod:`kb.ocr`) runs Tesseract as a child of the worker: it inherits the worker's ``RLIMIT_AS`` cap (an
absolute address-space size per process, far above the 100 MB or so Tesseract needs for a page at 300 dpi, as long
as its OpenMP threads are limited to one), and the worker tells the parent when each page starts, so the time
limit applies to each page read by OCR rather than to a whole scanned file of many pages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Generic, TypeVar

from kb.documents import Document
from kb.errors import LoaderError

log = logging.getLogger(__name__)
T = TypeVar("T")
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    memory_mb: int
    max_file_mb: int


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """The outcome for one file: its document, or the reason it could not be read."""

    item: T
    path: Path
    document: Document | None = None
    reason: str = ""


def size_problem(path: Path, limits: Limits) -> str | None:
    """Why ``path`` is refused before it is read (too large), or None."""
    size = path.stat().st_size
    if size > limits.max_file_mb * 1024 * 1024:
        return (
            f"too large ({size / 1024 / 1024:.0f} MB; the limit is {limits.max_file_mb} MB): split the file or "
            "raise KB_MAX_FILE_MB"
        )
    return None


def _set_memory_limit(memory_mb: int) -> None:
    import resource

    with open("/proc/self/status", encoding="ascii") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    baseline = int(fields["VmSize"].split()[0]) * 1024
    limit = baseline + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker(conn: Connection, memory_mb: int) -> None:  # pragma: no cover - runs in the child process
    """Load each path received and send back ``("ok", Document)`` or ``("fail", reason)``."""
    from kb import loaders, ocr

    logging.disable(logging.ERROR)  # parsers' complaints about broken files: the reason is reported instead
    warnings.simplefilter("ignore")
    with contextlib.suppress(OSError, ValueError, KeyError):  # no /proc or no RLIMIT_AS: run without the limit
        _set_memory_limit(memory_mb)
    ocr.on_each_page(lambda: conn.send(("page", time.monotonic())))
    conn.send(("ready", None))
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        try:
            conn.send(("ok", loaders.load(Path(path))))
        except LoaderError as exc:
            if isinstance(exc.__context__, MemoryError):
                conn.send(("fail", f"needed more than {memory_mb} MB of memory to read (KB_FILE_MEMORY_MB)"))
            else:
                conn.send(("fail", exc.reason))
        except MemoryError:
            conn.send(("fail", f"needed more than {memory_mb} MB of memory to read (KB_FILE_MEMORY_MB)"))


def _serve(fd: int, memory_mb: int) -> None:  # pragma: no cover - runs in the child process
    """The file reader process: serve the parent on the socket ``fd`` until it closes it or goes away."""
    with contextlib.suppress(OSError, EOFError, KeyboardInterrupt):  # the parent is gone: nobody to answer
        _worker(Connection(fd), memory_mb)


_WORKER_MAIN = "import sys; from kb.sandbox import _serve; _serve(int(sys.argv[1]), int(sys.argv[2]))"


class WorkerStartError(RuntimeError):
    """The worker process cannot be started (no Python executable to run, or the loaders fail to import)."""


class LoaderWorker:
    """One worker process; restarted after a timeout or a crash."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self.restarts = 0

    def _start(self) -> Connection:
        """A fresh ``python -c`` process that imports only the loaders (not the caller's ``__main__``, as
        multiprocessing's spawn would), connected by a socket pair."""
        parent, child = socket.socketpair()
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        }
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN, str(child.fileno()), str(self.limits.memory_mb)],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            parent.close()
            raise WorkerStartError(f"the file reader process did not start ({exc})") from None
        finally:
            child.close()
        conn = Connection(parent.detach())
        try:
            if not conn.poll(_START_TIMEOUT_S):
                raise EOFError
            conn.recv()
        except (EOFError, OSError):
            process.kill()
            conn.close()
            raise WorkerStartError(f"the file reader process did not start (exit code {process.wait()})") from None
        self._process, self._conn = process, conn
        return conn

    def send(self, path: Path) -> float:
        """Hand ``path`` to the worker; returns when it was sent (the start of its time limit)."""
        conn = self._conn or self._start()
        try:
            conn.send(str(path))
        except OSError:  # it died while idle (killed from outside): a fresh one reads this file
            self._kill()
            conn = self._start()
            conn.send(str(path))
        return time.monotonic()

    def receive(self, sent: float) -> tuple[Document | None, str]:
        """The document sent at ``sent`` (by :meth:`send`), or ``(None, reason)``; kills a worker that overruns."""
        assert self._conn is not None
        deadline = sent + self.limits.timeout_s
        try:
            while self._conn.poll(max(deadline - time.monotonic(), 0.0)):
                status, value = self._conn.recv()
                if status == "page":  # a page read by OCR starts: the time limit applies to it afresh
                    deadline = max(deadline, float(value) + self.limits.timeout_s)
                    continue
                return (value, "") if status == "ok" else (None, str(value))
            reason = f"took longer than {self.limits.timeout_s:g} s to read (KB_FILE_TIMEOUT_S); skipped"
        except (EOFError, OSError):
            code = self._exit_code()
            reason = (
                f"stopped the file reader (exit code {code}); the file is probably damaged, or it needed more "
                f"than {self.limits.memory_mb} MB of memory (KB_FILE_MEMORY_MB)"
            )
        self._kill()
        return None, reason

    def _exit_code(self) -> int | None:
        """The exit code of a worker that closed its end (waiting briefly: it may still be exiting)."""
        if self._process is None:
            return None
        try:
            return self._process.wait(1)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
            self.restarts += 1
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        if self._conn is not None and self._process is not None:
            with contextlib.suppress(OSError):
                self._conn.send(None)
            try:
                self._process.wait(2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(2)
            self._conn.close()
        self._process, self._conn = None, None


def load_isolated(items: Iterable[tuple[T, Path]], limits: Limits) -> Iterator[Loaded[T]]:
    """Load each ``(item, path)`` in the worker, in the given order, one file ahead of the caller.

    The next file is handed to the worker before the current result is yielded, so the worker reads it while
    the caller chunks and embeds; its time limit starts then, when the worker starts on it.
    """
    worker = LoaderWorker(limits)
    pending: tuple[T, Path, float] | None = None
    isolated = True
    try:
        for item, path in items:
            try:
                problem = size_problem(path, limits)
            except OSError as exc:
                problem = f"cannot be read ({exc.strerror or exc})"
            if problem is not None:
                if pending is not None:  # keep the order: the file in flight comes first
                    yield _finish(worker, *pending)
                    pending = None
                yield Loaded(item, path, reason=problem)
                continue
            if not isolated:
                yield _load_here(item, path)
                continue
            done = _finish(worker, *pending) if pending is not None else None
            try:
                pending = (item, path, worker.send(path))
            except WorkerStartError as exc:  # still ingest, without the limits, and say so once
                log.warning("%s; reading files in this process, without time and memory limits", exc)
                isolated, pending = False, None
                if done is not None:
                    yield done
                yield _load_here(item, path)
                continue
            if done is not None:
                yield done
        if pending is not None:
            yield _finish(worker, *pending)
    finally:
        worker.close()


def _load_here(item: T, path: Path) -> Loaded[T]:
    from kb import loaders

    try:
        return Loaded(item, path, loaders.load(path))
    except LoaderError as exc:
        return Loaded(item, path, reason=exc.reason)


def _finish(worker: LoaderWorker, item: T, path: Path, sent: float) -> Loaded[T]:
    document, reason = worker.receive(sent)
    return Loaded(item, path, document, reason)
