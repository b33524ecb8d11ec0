"""Fixtures shared by every test: a fake clock and backend factories for the contract suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dash_database import DashDatabase, MemoryBackend, SqliteBackend
from dash_database.backends import Backend
from tests.support import FakeClock

#: Every backend the contract suite runs against. A backend named ``x`` needs a fixture
#: ``x_backend_factory`` returning a callable that opens a new handle on one store private to
#: the test (several calls: several handles on the same data, as separate processes would have).
BACKENDS = ["memory", "sqlite"]


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


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_factory(
    backend_name: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Backend]]:
    factory: Callable[[], Backend] = request.getfixturevalue(f"{backend_name}_backend_factory")
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
        return DashDatabase(backend_factory(), **options)

    return make


@pytest.fixture
def db(make_db: Callable[..., DashDatabase]) -> DashDatabase:
    return make_db()
