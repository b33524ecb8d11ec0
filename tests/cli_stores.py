"""Stores for the operator-tool tests: several private stores of one kind in one test, each with
the URL that names it, and a way to run the real ``dash-database`` entry point on them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import dash_database
from dash_database import MemoryBackend, SqliteBackend
from dash_database.backends import Backend, KeyInfo, SessionInfo
from tests.conftest import POSTGRES_TEST_TABLE, SERVER_BACKENDS

#: The directory holding the dash_database package the tests import; the subprocesses run it.
SOURCE_ROOT = str(Path(dash_database.__file__).resolve().parent.parent)

#: Kinds of store the command line can reach (a memory store lives in one process only).
CLI_KINDS = ["sqlite", "redis", "postgres"]
ALL_KINDS = ["memory", *CLI_KINDS]


def kind_params(kinds: list[str]) -> list[Any]:
    """Return pytest params for ``kinds``, marking those that start a server as slow."""
    return [pytest.param(k, marks=pytest.mark.slow) if k in SERVER_BACKENDS else k for k in kinds]


@dataclass
class Store:
    """One store private to a test: a backend on it and the URL that names it."""

    kind: str
    url: str
    backend: Backend

    def empty(self) -> None:
        """Remove every session of this store, through the backend protocol only (the store
        is this test's own prefix or namespace: nothing else on the server is touched)."""
        far = time.time() + 100 * 365 * 86400
        self.backend.purge_expired(far)
        for info in all_sessions(self.backend, far):
            self.backend.clear(info.session, far)


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    """Return a factory of new private stores of a kind; each is emptied of what it got."""
    made: list[Store] = []

    def make(kind: str) -> Store:
        from tests.servers import unique_name

        name = unique_name("cli")
        if kind == "memory":
            store = Store(kind, "memory://", MemoryBackend())
        elif kind == "sqlite":
            path = tmp_path / f"{name}.sqlite"
            store = Store(kind, f"sqlite:///{path}", SqliteBackend(path))
        elif kind == "redis":
            from dash_database.backends.redis import RedisBackend

            url = f"{request.getfixturevalue('redis_url')}?prefix={name}"
            store = Store(kind, url, RedisBackend(url))
        elif kind == "postgres":
            from dash_database.backends.postgres import PostgresBackend

            base = request.getfixturevalue("postgres_url")
            url = f"{base}?table={POSTGRES_TEST_TABLE}&namespace={name}"
            store = Store(kind, url, PostgresBackend(url))
        else:
            raise ValueError(kind)
        made.append(store)
        return store

    yield make
    for store in made:
        if store.kind in SERVER_BACKENDS:
            store.empty()
        store.backend.close()


def run_cli(
    *args: str, input: bytes | None = None, env: dict[str, str] | None = None, cwd: Any = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m dash_database ARGS`` in a subprocess, on the package under test."""
    environment = {**os.environ, "PYTHONPATH": SOURCE_ROOT}
    environment.pop("DASH_DATABASE_URL", None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dash_database", *args],
        input=input,
        capture_output=True,
        env=environment,
        cwd=cwd,
        timeout=120,
    )


def all_sessions(backend: Backend, now: float) -> list[SessionInfo]:
    found: list[SessionInfo] = []
    cursor = None
    while True:
        page, cursor = backend.sessions(now, cursor, 100)
        found.extend(page)
        if cursor is None:
            return sorted(found, key=lambda s: s.session)


def all_keys(backend: Backend, session: str, now: float) -> list[KeyInfo]:
    found: list[KeyInfo] = []
    cursor = None
    while True:
        page, cursor = backend.session_keys(session, now, cursor, 100)
        found.extend(page)
        if cursor is None:
            return sorted(found, key=lambda k: k.key)


def contents(backend: Backend, now: float) -> dict[str, tuple[float | None, dict[str, bytes]]]:
    """Return every live session of ``backend``: its deadline and its values."""
    result = {}
    for info in all_sessions(backend, now):
        values = {}
        for key in all_keys(backend, info.session, now):
            value = backend.get(info.session, key.key, now)
            assert value is not None
            values[key.key] = value
        result[info.session] = (info.deadline, values)
    return result
