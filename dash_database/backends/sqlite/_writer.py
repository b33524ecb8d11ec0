"""This process's writer: sqlitedict's writer thread, one request in flight, bounded waits.

sqlitedict keeps one error slot per connection, raised in whichever thread calls next: a lock
keeps one request in flight. The request's response, called on the writer thread right after
its statement, takes the error if any or else releases the lock there, so the next request is
queued while this caller wakes up. The caller's wait is bounded and notices at once that the
thread stopped. A writer that stopped, hung or failed is closed; the next request opens one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlitedict import SqliteDict

from ...exceptions import BackendError

__all__ = ["Writer", "WriterLost"]

# How long past its busy timeout a caller waits for an answer (a large value takes time to
# write) before taking the thread for hung; and how often it checks that the thread runs.
_GRACE, _POLL = 10.0, 0.02


class WriterLost(BackendError):
    """The writer thread stopped or hung: whether the write was applied is unknown."""


class _Response:
    """The rows of one request, then its end marker, as the writer thread puts them."""

    def __init__(self, thread: Any, lock: threading.Lock) -> None:
        self.rows: list[Any] = []
        self.error: BaseException | None = None
        self.released: bool | None = False  # None: abandoned by the caller
        self.thread, self.lock, self.state, self.done = (
            thread,
            lock,
            threading.Lock(),
            threading.Lock(),
        )
        self.done.acquire()

    def put(self, item: Any) -> None:
        if isinstance(item, tuple):
            return self.rows.append(item)
        with self.state:  # the end marker: ordered against abandon()
            if self.released is None:
                return None
            if self.thread.exception is not None:
                self.error, self.thread.exception = self.thread.exception[1], None
            else:
                self.lock.release()
                self.released = True
            return self.done.release()

    def abandon(self) -> bool:
        """Stop listening; return whether the caller still holds the lock."""
        with self.state:
            released, self.released = self.released, None
            return not released


class Writer:
    """Write to the database file ``path`` through sqlitedict, opened on first use."""

    def __init__(self, path: str, timeout: float, setup: Sequence[str]) -> None:
        self.path, self.timeout, self.setup = path, timeout, setup
        self._lock = threading.Lock()
        self._store: Any = None

    def run(self, sql: str, args: Any) -> list[Any]:
        """Run one statement; return its rows.

        Raises:
            sqlite3.Error: the statement failed (nothing of it was applied).
            WriterLost: the thread stopped or did not answer in time.
            BackendError: another thread's request held the writer for over ``timeout``.
        """
        if not self._lock.acquire(timeout=self.timeout):
            raise BackendError(
                f"Could not write to the SQLite database {self.path!r}: another thread's write "
                f"held it for over {self.timeout:g} s. The disk may be stalled or the app "
                "overloaded; try again."
            )
        response = None
        try:
            if self._store is None:
                # The tables exist: sqlitedict creates nothing. outer_stack=False: no stack
                # captured per statement. sqlitedict sets synchronous=OFF; NORMAL keeps the
                # file consistent on power loss and costs no sync per commit in WAL mode.
                self._store = SqliteDict(
                    self.path, "dash_database_values", autocommit=True, journal_mode="WAL",
                    outer_stack=False,
                )  # fmt: skip
                pragmas = (f"PRAGMA busy_timeout = {int(self.timeout * 1000)}",)
                for statement in (*pragmas, "PRAGMA synchronous = NORMAL", *self.setup):
                    self._store.conn.execute(statement)  # a failure raises at the next call
            thread = self._store.conn
            response = _Response(thread, self._lock)
            thread.execute(sql, args, response)
            deadline = time.monotonic() + self.timeout + _GRACE
            while not response.done.acquire(timeout=_POLL):
                if not thread.is_alive() or time.monotonic() > deadline:
                    why = "stopped" if not thread.is_alive() else "did not answer in time"
                    raise WriterLost(
                        f"Could not write to the SQLite database {self.path!r}: sqlitedict's "
                        f"writer thread {why}, so this write may or may not have been applied. "
                        "The next call opens a new writer; check the disk and the log, then "
                        "try again."
                    )
            if response.error is not None:
                raise response.error
            return response.rows  # the writer thread released the lock
        except BaseException:
            if response is None or response.abandon():
                self.close(locked=True)
            raise

    def close(self, locked: bool = False) -> None:
        """Stop the thread (waiting for it at most ``timeout`` unless ``locked``: after a
        failure, with the lock held); a later request opens a new one."""
        if locked or self._lock.acquire(timeout=self.timeout):
            store, self._store = self._store, None
            thread = None if store is None else store.conn
            if store is not None:
                store.close(do_log=False, force=True)  # force: never waits for the thread
            self._lock.release()
            if thread is not None and not locked:
                thread.join(self.timeout)
