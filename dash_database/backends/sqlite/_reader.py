"""One thread's read connection: a plain ``sqlite3`` connection in autocommit, read-only.

Each thread reads through its own (in WAL mode readers never wait for the writer, and each read
sees every committed write). Every call on it holds its ``lock``, which a ``fork()`` takes
first (``_process.fork_lock``): a child is never made while this thread is inside SQLite.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import suppress

from .._process import fork_lock, inherited

__all__ = ["Reader", "connect"]


def connect(path: str, timeout: float) -> sqlite3.Connection:
    """Open the database file ``path`` in autocommit mode."""
    return sqlite3.connect(path, timeout=timeout, isolation_level=None)


class Reader:
    """A read-only connection to ``path`` and the lock its calls hold."""

    __slots__ = ("conn", "cursor", "lock", "pid")

    def __init__(self, path: str, timeout: float) -> None:
        self.pid = os.getpid()
        self.lock = fork_lock()
        with self.lock:
            conn = connect(path, timeout)
            try:
                conn.execute("PRAGMA query_only = ON")
            except BaseException:
                conn.close()
                raise
        self.conn, self.cursor = conn, conn.cursor()

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def __del__(self) -> None:
        # Freed when its thread ends: close here, holding the lock, not later unguarded. In a
        # fork's child (which frees the parent's other threads' readers) it stays open, unused.
        with suppress(Exception):
            if not inherited(self.pid, self.conn):
                self.close()
