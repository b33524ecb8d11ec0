"""This process's writer: sqlitedict's writer thread, one request in flight, bounded waits.

sqlitedict keeps one error slot per connection, so a lock keeps one request in flight, and the
request's response object, called on the writer thread once its last statement ran, takes the
error (if any) for that request. After a success it also releases the lock there, so the next
request is queued while this caller wakes up. The caller waits with a bound and notices that
the thread stopped or hung. A writer whose thread stopped or hung, or whose statement failed
(its TEMP tables may hold the failed write's rows), is closed; the next request opens a new one.
A fork waits for the request in flight and for a thread told to stop (``_process.fork_lock``).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from sqlitedict import SqliteDict

from ...exceptions import BackendError
from .._process import fork_lock, inherited, stop

__all__ = ["Writer", "WriterLost"]

# How long past its busy timeout a caller waits for an answer (a large value takes time to
# write) before taking the thread for hung; and how often it checks that the thread runs.
_GRACE, _POLL = 10.0, 0.02


class WriterLost(BackendError):
    """The writer thread stopped or hung: whether the write was applied is unknown."""


class _Response:
    """Collects the rows the writer thread puts for one request, then its end marker."""

    __slots__ = ("__weakref__", "_done", "_lock", "_state", "_thread", "error", "released", "rows")

    def __init__(self, thread: Any, lock: threading.Lock) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.error: BaseException | None = None
        self.released: bool | None = False  # None: abandoned by the caller
        self._thread, self._lock = thread, lock
        self._state = threading.Lock()  # orders the end marker against abandon()
        self._done = threading.Lock()
        self._done.acquire()

    def put(self, item: Any) -> None:
        if isinstance(item, tuple):
            self.rows.append(item)
            return
        # The end marker, on the writer thread, while the caller holds the lock: no other
        # request can read or clear the error slot meanwhile.
        with self._state:
            if self.released is None:
                return
            if self._thread.exception is not None:
                self.error = self._thread.exception[1]
                self._thread.exception = None
            else:
                self._lock.release()
                self.released = True
            self._done.release()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._done.acquire(timeout=_POLL):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                return False
        return True

    def abandon(self) -> bool:
        """Stop listening; return whether the caller still holds the lock."""
        with self._state:
            released, self.released = self.released, None
            return not released


class Writer:
    """Write to the database file ``path`` through sqlitedict, opened on first use."""

    def __init__(self, path: str, timeout: float, setup: Sequence[str]) -> None:
        self.path, self.timeout, self.setup = path, timeout, setup
        self._pid = os.getpid()
        # Held from a request's start until its last statement ran (see _Response.put).
        self._lock = fork_lock()
        self._store: Any = None

    def run(self, *requests: tuple[str, Any]) -> list[tuple[Any, ...]]:
        """Run ``(sql, args)`` statements in order; return the rows the last one returned.

        Raises:
            sqlite3.Error: a statement failed (nothing of it was applied).
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
                # The table exists already: sqlitedict creates nothing. outer_stack=False:
                # no stack captured per statement.
                self._store = SqliteDict(
                    self.path, "dash_database_values", autocommit=True, journal_mode="WAL",
                    outer_stack=False,
                )  # fmt: skip
                # sqlitedict sets synchronous=OFF; NORMAL keeps the file consistent on power
                # loss and costs no sync per commit in WAL mode.
                pragmas = [f"PRAGMA busy_timeout = {int(self.timeout * 1000)}"]
                pragmas.append("PRAGMA synchronous = NORMAL")
                requests = (*((sql, None) for sql in (*pragmas, *self.setup)), *requests)
            thread = self._store.conn
            response = _Response(thread, self._lock)
            for sql, args in requests[:-1]:
                thread.execute(sql, args)
            thread.execute(*requests[-1], response)
            if response.wait(self.timeout + _GRACE):
                if response.error is None:
                    return response.rows  # the writer thread released the lock
                raise response.error
            why = "stopped" if not thread.is_alive() else f"did not answer in {self.timeout:g} s"
            raise WriterLost(
                f"Could not write to the SQLite database {self.path!r}: sqlitedict's writer "
                f"thread {why}, so this write may or may not have been applied. The next call "
                "opens a new writer; check the disk and the log, then try again."
            )
        except BaseException:
            if response is None or response.abandon():
                self._drop()
                self._lock.release()
            raise

    def _drop(self) -> threading.Thread | None:
        store, self._store = self._store, None
        if store is not None:
            thread: threading.Thread = store.conn
            # force: never waits for the thread, which closes its connection; a fork waits.
            stop(thread, functools.partial(store.close, do_log=False, force=True))
            return thread
        return None

    def __del__(self) -> None:
        # Freed without close() (its backend was never closed): stop the thread now, as
        # sqlitedict would, and let a fork wait for it.
        with suppress(Exception):
            if not inherited(self._pid, self._store):  # a fork's child leaves it alone
                self._drop()

    def close(self) -> None:
        """Stop the thread (waiting for it at most ``timeout``)."""
        if self._lock.acquire(timeout=self.timeout):
            try:
                thread = self._drop()
            finally:
                self._lock.release()
            if thread is not None:
                thread.join(self.timeout)
