"""The pytest fixtures that give tests a real Redis and PostgreSQL (a plugin of conftest.py).

The servers come from ``tests/launcher.py``, the launcher the benchmarks use too, on free
127.0.0.1 ports, once per test session. ``TEST_REDIS_URL`` / ``TEST_POSTGRES_URL`` point the
tests at servers you run yourself instead; tests on such a server use their own key prefix or
namespace and remove only what they wrote. When a server binary is missing, the tests that
need it skip (and fail on CI).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.launcher import (
    PostgresServer,
    RedisServer,
    find_postgres_bindir,
    free_port,
    unique_name,
)
from tests.support import require

__all__ = [
    "PostgresServer",
    "RedisServer",
    "free_port",
    "new_redis_server",
    "postgres_server",
    "postgres_url",
    "redis_server",
    "redis_url",
    "unique_name",
]


def new_redis_server() -> RedisServer:
    """Return a RedisServer, not started, on a free port. Without ``redis-server`` the test is
    skipped, or fails on CI."""
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server not found: apt-get install redis-server")
    return RedisServer(binary)


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
    bindir = find_postgres_bindir()
    require(bindir is not None, "PostgreSQL server not found: apt-get install postgresql")
    require(
        importlib.util.find_spec("psycopg") is not None,
        'psycopg not installed: pip install "dash-database[postgres]"',
    )
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
