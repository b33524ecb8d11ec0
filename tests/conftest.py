"""Fixtures shared by every test: a fake clock and backend factories for the contract suite."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from dash_database import DashDatabase, MemoryBackend, SqliteBackend
from dash_database.backends import Backend
from tests.support import FakeClock

# The session fixtures that start Redis and PostgreSQL for the tests.
pytest_plugins = ["tests.servers"]

# Property tests check behaviour, not speed (speed lives in benchmarks/): on a busy CI machine
# one example of a round trip through a server can take longer than Hypothesis's 200 ms.
settings.register_profile(
    "dash_database", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("dash_database")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Kill any child process a test left running: multiprocessing waits for its children when
    the interpreter exits, so one hung child would otherwise keep the run from ever ending."""
    for child in multiprocessing.active_children():
        print(f"\nkilling {child.name} (pid {child.pid}), left running by a test")
        child.kill()
        child.join(10)


#: Every backend the contract suite runs against. A backend named ``x`` needs a fixture
#: ``x_backend_factory`` returning a callable that opens a new handle on one store private to
#: the test (several calls: several handles on the same data, as separate processes would have).
BACKENDS = [
    "memory",
    "sqlite",
    "sqlite-files",
    "redis",
    "redis-large",
    "postgres",
    "postgres-copy",
]

#: The backends whose tests start a server (or use the one named by TEST_*_URL).
SERVER_BACKENDS = {"redis", "redis-large", "postgres", "postgres-copy"}

#: The secret key of the databases ``make_db`` makes.
CONTRACT_SECRET = "contract-suite-secret-key"

#: The table the PostgreSQL tests use; each test works in its own namespace of it.
POSTGRES_TEST_TABLE = "dash_database_tests"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory_backend_factory() -> Callable[[], Backend]:
    backend = MemoryBackend()
    return lambda: backend


@pytest.fixture
def sqlite_backend_factory(tmp_path: Path) -> Callable[[], Backend]:
    path = tmp_path / "contract.sqlite"
    return lambda: SqliteBackend(path)


@pytest.fixture
def sqlite_files_backend_factory(tmp_path: Path) -> Callable[[], Backend]:
    # Every value, even an empty one, goes to a value file.
    path = tmp_path / "contract.sqlite"
    return lambda: SqliteBackend(path, file_threshold=0)


@pytest.fixture
def redis_backend_factory(redis_url: str) -> Iterator[Callable[[], Backend]]:
    yield from _redis_factory(redis_url)


@pytest.fixture
def redis_large_backend_factory(redis_url: str) -> Iterator[Callable[[], Backend]]:
    """Redis with every write of a value taking the large-value path (MULTI/EXEC)."""
    yield from _redis_factory(redis_url, large_write_bytes=0)


def _redis_factory(redis_url: str, **options: Any) -> Iterator[Callable[[], Backend]]:
    from dash_database.backends.redis import RedisBackend
    from tests.servers import unique_name

    prefix = unique_name("dash_database_test")
    yield lambda: RedisBackend(redis_url, prefix=prefix, **options)
    # Remove only this test's keys; other data on the server is never touched.
    cleaner = RedisBackend(redis_url, prefix=prefix)
    keys = list(cleaner.client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        cleaner.client.delete(*keys)
    cleaner.close()


def _postgres_factory(postgres_url: str, **options: Any) -> Iterator[Callable[[], Backend]]:
    from dash_database.backends.postgres import PostgresBackend
    from tests.servers import unique_name

    namespace = unique_name("test")
    options.update(table=POSTGRES_TEST_TABLE, namespace=namespace)
    yield lambda: PostgresBackend(postgres_url, **options)
    # Remove only this test's rows; the tables may hold other tests' or a developer's data.
    cleaner = PostgresBackend(postgres_url, **options)
    with cleaner.engine.begin() as conn:
        for table in (cleaner.sessions_table, cleaner.values_table):
            conn.exec_driver_sql(f"DELETE FROM {table} WHERE namespace = %(ns)s", {"ns": namespace})
    cleaner.close()


@pytest.fixture
def postgres_backend_factory(postgres_url: str) -> Iterator[Callable[[], Backend]]:
    yield from _postgres_factory(postgres_url)


@pytest.fixture
def postgres_copy_backend_factory(postgres_url: str) -> Iterator[Callable[[], Backend]]:
    # Every write takes the COPY path.
    yield from _postgres_factory(postgres_url, copy_threshold=0)


@pytest.fixture(
    params=[
        # Backends that need a server start one: deselect them with -m "not slow".
        pytest.param(name, marks=pytest.mark.slow) if name in SERVER_BACKENDS else name
        for name in BACKENDS
    ]
)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_factory(
    backend_name: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Backend]]:
    fixture = f"{backend_name.replace('-', '_')}_backend_factory"
    factory: Callable[[], Backend] = request.getfixturevalue(fixture)
    opened: list[Backend] = []

    def open_backend() -> Backend:
        backend = factory()
        opened.append(backend)
        return backend

    yield open_backend
    for backend in opened:
        backend.close()


@pytest.fixture
def make_db(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> Callable[..., DashDatabase]:
    """Return a factory of DashDatabase instances on the test's store, with the fake clock."""

    def make(**options: Any) -> DashDatabase:
        options.setdefault("clock", clock)
        # Values are sealed with the secret: a given one keeps a generated secret file out of
        # the working directory (where stores on servers would keep it).
        options.setdefault("secret_key", CONTRACT_SECRET)
        return DashDatabase(backend_factory(), **options)

    return make


@pytest.fixture
def db(make_db: Callable[..., DashDatabase]) -> DashDatabase:
    return make_db()
