"""The stores the proof runs on: a SQLite file, and Redis and PostgreSQL servers.

From a clone of the repository the proof starts its own servers with the tests' launcher
(``tests/launcher.py``), which lets it stop and restart them during the load. Given a server
by URL (``--redis-url``, ``--postgres-url``) it works under a prefix or table of its own,
removes only that afterwards, and leaves the server running (so it skips the outage).
"""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import dash_database
from dash_database import DashDatabase

__all__ = ["Store", "launcher", "remove_named_store"]

# Redis keeps acknowledged writes across a restart only with the append-only file on.
REDIS_DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def launcher() -> ModuleType | None:
    """Return ``tests.launcher`` of the clone this package runs from, or ``None``."""
    root = Path(dash_database.__file__).resolve().parent.parent
    if not (root / "tests" / "launcher.py").is_file():
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("tests.launcher")


class Store:
    """One store of the proof: its URL, and the server the proof started for it, if any.

    Raises:
        RuntimeError: a server store was neither given by URL nor can be started (not run
            from a clone, or its binary is missing); the message says which.
    """

    def __init__(self, kind: str, workdir: Path, given_url: str | None = None) -> None:
        self.kind = kind
        self.server: Any = None
        self.restart_args: tuple[str, ...] = ()
        name = f"proof_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'proof.sqlite'}"
            self.path: Path | None = workdir / "proof.sqlite"
            return
        self.path = None
        base = given_url
        if base is None:
            found = launcher()
            if found is None:
                raise RuntimeError(
                    f"No {kind} server: pass --{kind}-url, or run the proof from a clone of "
                    "the repository, where it starts its own."
                )
            if kind == "redis":
                self.server, self.restart_args = found.RedisServer(), REDIS_DURABLE
            else:
                self.server = found.PostgresServer()
            self.server.start(*self.restart_args)
            base = str(self.server.url)
        option = "prefix" if kind == "redis" else "table"
        self.url = f"{base}{'&' if '?' in base else '?'}{option}={name}"
        self._name = name

    def stop_server(self) -> None:
        self.server.stop()

    def start_server(self) -> None:
        self.server.start(*self.restart_args)

    def open(self, secret: str) -> DashDatabase:
        return DashDatabase.from_url(self.url, secret_key=secret)

    def remove(self) -> None:
        """Remove what the proof wrote: the server it started, or its prefix or tables."""
        if self.server is not None:
            self.server.remove()
            return
        if self.kind == "sqlite":
            return
        remove_named_store(self.kind, self.url, self._name)


def remove_named_store(kind: str, url: str, name: str) -> None:
    """Remove a store made on a shared server under its own name: the keys of Redis prefix
    ``name``, or the tables of the PostgreSQL store at ``url``."""
    with DashDatabase.from_url(url) as db:
        backend: Any = db.backend
        if kind == "redis":
            keys = list(backend.client.scan_iter(match=f"{name}:*", count=1000))
            if keys:
                backend.client.delete(*keys)
        else:
            with backend.engine.begin() as conn:
                tables = f"{backend.sessions_table}, {backend.values_table}"
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {tables}")
