"""The server launcher that the tests and the benchmarks share (tests/launcher.py)."""

from __future__ import annotations

import importlib.util
import os
import socket

import pytest

from tests import launcher
from tests.launcher import PostgresServer, find_postgres_bindir
from tests.servers import new_redis_server
from tests.support import require

pytestmark = pytest.mark.slow


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_redis_server_stops_and_starts_again_on_its_port() -> None:
    server = new_redis_server()
    try:
        server.start()
        port = server.port
        server.stop()
        stopped = answers(port)
        server.start()

        assert (False, port, True) == (stopped, server.port, answers(port))
    finally:
        server.remove()
    assert not os.path.exists(server.dir)


def test_a_server_that_cannot_start_says_why_and_is_not_left_running() -> None:
    server = new_redis_server()
    try:
        with pytest.raises(RuntimeError, match=r"exited with status 1 at startup; its log ends"):
            server.start("--no-such-option", "yes")
        assert server.process is None
    finally:
        server.remove()


def test_postgres_binaries_of_the_newest_version_are_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    versions = ["/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin"]
    versions.append("/usr/lib/postgresql/10/bin")
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)
    monkeypatch.setattr(launcher.glob, "glob", lambda pattern: versions)
    monkeypatch.setattr(launcher.os, "access", lambda path, mode: True)

    assert "/usr/lib/postgresql/15/bin" == find_postgres_bindir()


def test_postgres_server_runs_with_the_settings_given() -> None:
    require(find_postgres_bindir() is not None, "PostgreSQL server not found")
    require(importlib.util.find_spec("psycopg") is not None, "psycopg not installed")
    import psycopg

    server = PostgresServer(settings={"max_connections": "42"})
    try:
        server.start()
        with psycopg.connect(server.url, connect_timeout=10) as conn:
            row = conn.execute("SHOW max_connections").fetchone()

        assert ("42",) == row
    finally:
        server.remove()
    assert not os.path.exists(server.dir)
