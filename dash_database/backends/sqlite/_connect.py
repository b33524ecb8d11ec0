"""Opening the database file: its creation (schema, WAL) and the read connections.

A read connection is a plain ``sqlite3`` connection in autocommit, read-only (in WAL mode
readers never wait for the writer, and each read sees every committed write). A thread borrows
one from the process's idle ones (:class:`Readers`) for one call or one read transaction and
gives it back: not one per thread, since servers that run each request on a new thread (Dash
with async support under Flask, Flask's development server) would then open a connection, and
load the schema into it, for every request. Every call on a connection holds its ``lock``,
which a ``fork()`` takes first (``_process.fork_lock``): a child is never made while a thread
is inside SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from ...exceptions import BackendError, InvalidArgumentError
from .._process import fork_lock, inherited
from . import _sql

__all__ = ["Reader", "Readers", "connect", "create"]

# Idle read connections a process keeps per database file: enough for the threads of a busy
# server; the connections of a larger burst are closed when given back (each holds a file).
_MAX_IDLE = 32


def connect(path: str, timeout: float) -> sqlite3.Connection:
    """Open the database file ``path`` in autocommit mode, for one thread at a time (not always
    the one that opened it)."""
    return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)


def create(path: str, timeout: float) -> None:
    """Create the database file ``path`` (mode 0600) and its tables if missing; switch it to WAL.

    Raises:
        InvalidArgumentError: ``path`` is a directory, or its directory is missing.
        BackendError: this Python's SQLite is too old.
        sqlite3.Error, OSError: the file could not be opened or is not a SQLite database.
    """
    directory = os.path.dirname(path)
    if os.path.isdir(path):
        raise InvalidArgumentError(
            f"{path!r} is a directory; pass the path of a database file inside it, "
            f"for example {os.path.join(path, 'dash_database.sqlite')!r}."
        )
    if not os.path.isdir(directory):
        raise InvalidArgumentError(
            f"The directory {directory!r} of the database file {path!r} does not "
            "exist; create it first or choose another path."
        )
    if sqlite3.sqlite_version_info < (3, 38):
        raise BackendError(
            f"dash_database needs SQLite 3.38 or newer, not {sqlite3.sqlite_version}: "
            "upgrade Python or its SQLite library."
        )
    with suppress(FileExistsError):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # the umask may have taken bits away
        os.close(fd)
    with fork_lock():
        conn = connect(path, timeout)
        try:
            _enable_wal(conn, timeout)
            for ddl in _sql.SCHEMA:
                conn.execute(ddl)
        finally:
            conn.close()


def _enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite reports a conflict with
    # another process doing the same at once as "database is locked" without waiting for the
    # busy timeout: retry until the timeout ourselves.
    deadline = time.monotonic() + timeout
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


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
        # Freed unclosed (its backend was never closed): close here, holding the lock. In a
        # fork's child (which frees what the parent's other threads held) it stays open, unused.
        with suppress(Exception):
            if not inherited(self.pid, self.conn):
                self.close()


class Readers:
    """This process's idle read connections to ``path``: :meth:`take` one, :meth:`give` it back.

    Taking and giving back are one ``list.pop`` and one ``list.append``, atomic in CPython, so
    a read waits for no lock of the pool.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self.closed = False
        self._idle: list[Reader] = []

    def take(self) -> Reader:
        """Return an idle connection, or a new one.

        Raises:
            sqlite3.Error: a new connection could not be opened.
        """
        try:
            return self._idle.pop()
        except IndexError:
            return Reader(self.path, self.timeout)

    def read(self, sql: str, args: Any) -> list[Any]:
        """Run one statement on a lent connection; return its rows."""
        # What lend() does, without a context manager: every get comes here.
        reader = self.take()
        try:
            with reader.lock:
                rows: list[Any] = reader.cursor.execute(sql, args).fetchall()
        except BaseException:
            reader.close()
            raise
        self.give(reader)
        return rows

    @contextmanager
    def lend(self) -> Iterator[Reader]:
        """Lend a connection, its lock held, for several statements (a read transaction). One
        that fails is closed, not given back: it may be inside that transaction."""
        reader = self.take()
        try:
            with reader.lock:
                yield reader
        except BaseException:
            reader.close()
            raise
        self.give(reader)

    def give(self, reader: Reader) -> None:
        """Keep ``reader`` for the next :meth:`take` (closed instead, once the pool is)."""
        if self.closed or len(self._idle) >= _MAX_IDLE:
            reader.close()
        else:
            self._idle.append(reader)

    def close(self) -> None:
        """Close the idle connections; those in use close when given back."""
        self.closed = True
        while True:
            try:
                self._idle.pop().close()
            except IndexError:
                return
