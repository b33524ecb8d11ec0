"""Real Redis and PostgreSQL servers for the tests, started on free 127.0.0.1 ports.

``TEST_REDIS_URL`` / ``TEST_POSTGRES_URL`` point the tests at servers you run yourself instead.
Tests on such a server use their own key prefix or namespace and remove only what they wrote.
When a server binary is missing, the tests that need it skip (and fail on CI).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import require

__all__ = [
    "PostgresServer",
    "RedisServer",
    "free_port",
    "postgres_server",
    "postgres_url",
    "redis_server",
    "redis_url",
    "unique_name",
]

_READY_TIMEOUT = 30.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(stem: str) -> str:
    """Return ``stem`` followed by a random suffix, for a prefix or namespace of one test."""
    return f"{stem}_{uuid.uuid4().hex[:12]}"


def _wait(ready: Any, what: str, process: subprocess.Popen[bytes]) -> None:
    """Return once ``ready()`` succeeds; raise if ``process`` exits or the time runs out."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} at startup.")
        try:
            ready()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class RedisServer:
    """A ``redis-server`` process without persistence; stop and start it again on one port."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="dash_database-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--dir", self.dir,
                *extra,
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait(self._ping, f"redis-server on port {self.port}", self.process)
        except BaseException:
            self.stop()
            raise

    def _ping(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            # A server started with --requirepass answers NOAUTH, which also means it is up.
            if not sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                raise ConnectionError("redis-server is not ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def new_redis_server() -> RedisServer:
    """Return a RedisServer, not started, on a free port. Without ``redis-server`` the test is
    skipped, or fails on CI."""
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server not found: apt-get install redis-server")
    assert binary is not None
    return RedisServer(binary)


def _postgres_bin() -> str | None:
    found = shutil.which("postgres")
    if found:
        return os.path.dirname(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return os.path.dirname(candidates[-1]) if candidates else None


class PostgresServer:
    """A throwaway PostgreSQL cluster (``initdb``, ``fsync=off``) run as the postgres user when
    the tests run as root, since PostgreSQL refuses to run as root."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="dash_database-postgres-")
        self.process: subprocess.Popen[bytes] | None = None
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            import grp
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, grp.getgrnam("postgres").gr_gid)
            # cwd: the postgres user may not be allowed into the tests' working directory.
            self._user = {
                "user": "postgres",
                "group": "postgres",
                "extra_groups": [],
                "cwd": self.dir,
            }
        initdb = subprocess.run(
            [
                os.path.join(bindir, "initdb"),
                "-D", os.path.join(self.dir, "data"),
                "-U", "postgres",
                "-A", "trust",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            **self._user,
        )  # fmt: skip
        if initdb.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError(f"initdb failed ({initdb.returncode}): {initdb.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                os.path.join(self.bindir, "postgres"),
                "-D", os.path.join(self.dir, "data"),
                "-p", str(self.port),
                "-h", "127.0.0.1",
                "-k", self.dir,
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self._user,
        )  # fmt: skip
        try:
            _wait(self._connect, f"PostgreSQL on port {self.port}", self.process)
        except BaseException:
            self.stop()
            raise

    def _connect(self) -> None:
        import psycopg

        psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=2
        ).close()

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients and exits cleanly.
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)
            self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A redis-server started for this test session, or ``None`` under ``TEST_REDIS_URL``."""
    if os.environ.get("TEST_REDIS_URL"):
        yield None
        return
    server = new_redis_server()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | None) -> str:
    return redis_server.url if redis_server is not None else os.environ["TEST_REDIS_URL"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """A PostgreSQL cluster started for this test session, or ``None`` under
    ``TEST_POSTGRES_URL``."""
    if os.environ.get("TEST_POSTGRES_URL"):
        yield None
        return
    bindir = _postgres_bin()
    require(bindir is not None, "PostgreSQL server not found: apt-get install postgresql")
    require(
        importlib.util.find_spec("psycopg") is not None,
        'psycopg not installed: pip install "dash-database[postgres]"',
    )
    assert bindir is not None
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            require(False, "tests run as root need a 'postgres' OS user to run PostgreSQL")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer | None) -> str:
    return postgres_server.url if postgres_server is not None else os.environ["TEST_POSTGRES_URL"]
