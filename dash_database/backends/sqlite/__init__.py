"""The embedded default: one SQLite file, written through sqlitedict.

Layout. ``dash_database_sessions`` holds one row per session (name, deadline, key count, size,
last write), so sizes, quotas, stats and enumeration never read values.
``dash_database_values`` holds one row per key: the session's integer id (a long id is stored
once; a rename changes one row), the key, the value (a BLOB, or as TEXT the name of a value
file in ``<database>-blobs``, ``_files.py``, for values of ``file_threshold`` bytes or more),
the write's version and the value's length.

Writes. A write is one statement (``_sql.py``) on sqlitedict's writer thread (one per process,
autocommit, ``_writer.py``): it commits or fails as a whole and costs O(keys written); the
caller then reads its figures from the same thread, so it waits for one hand-off. Every wait
is bounded; a full disk or a dead thread gives :class:`~dash_database.BackendError` at once
and the next call works.

Reads. A read borrows one of the process's plain ``sqlite3`` read connections (``_connect.py``)
and gives it back: in WAL mode readers never wait for the writer, and each read sees every
committed write.
``synchronous=NORMAL``: a committed write survives the process being killed and the file stays
consistent on power loss. The database and its ``-wal``/``-shm`` files are 0600. Connections
and the writer belong to the process that made them (``_process.PerProcess``), and a fork waits
for their calls in progress; a pickled backend reopens the same file.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any

from ...exceptions import (
    BackendError,
    InvalidArgumentError,
    QuotaExceededError,
    SessionLimitError,
)
from .._base import KeyInfo, Page, SessionData, SessionInfo, StoreStats
from .._errors import backend_error, bad_cursor
from .._process import PerProcess
from . import _bulk, _sql
from ._connect import Reader, Readers, create
from ._files import READ_ATTEMPTS, ValueFiles
from ._writer import Writer, WriterLost

__all__ = ["FILE_THRESHOLD", "SqliteBackend"]

#: By default, values of this many bytes or more are kept in files (see ``_files.py``).
FILE_THRESHOLD = 32 * 1024
# Expired sessions removed per transaction by purge_expired: a live write waits for one batch
# at most, and each batch's fixed costs (a hand-off, a commit, a wait for a live writer's lock)
# are shared by enough sessions (see docs/benchmarks/scale-sqlite-2026-12-07.md).
_PURGE_BATCH = 500
# A value file no row names is removed by purge_expired once it is this old (seconds).
_ORPHAN_AGE = 3600.0
# Keys per statement of get_many: 2 more parameters stay below SQLite's oldest cap of 999.
_READ_CHUNK = 997


class SqliteBackend:
    """Store sessions in one SQLite file through sqlitedict.

    Args:
        path: the database file, created (mode 0600) when missing; its directory must exist.
        remove_on_close: delete the file and its value files on :meth:`close` (for
            ``DashDatabase(None)``); only the process that created the backend does.
        timeout: seconds a call waits for another process's write lock or another thread's
            write; a write fails with ``BackendError`` after at most ``2 * timeout + 10``.
        file_threshold: values of this many bytes or more are kept as files in the folder
            ``<path>-blobs`` (``None``: never), which saves copies in memory and a write.

    Raises:
        InvalidArgumentError: the directory does not exist, the path is a directory, or an
            option is out of range.
        BackendError: the file exists but is not a SQLite database, or cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        remove_on_close: bool = False,
        timeout: float = 5.0,
        file_threshold: int | None = FILE_THRESHOLD,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidArgumentError(f"timeout must be a positive number, got {timeout!r}.")
        if file_threshold is not None and (
            isinstance(file_threshold, bool) or not isinstance(file_threshold, int)
        ):
            raise InvalidArgumentError(
                f"file_threshold must be an int or None, got {file_threshold!r}."
            )
        self.path = os.path.abspath(os.fspath(path))
        self.remove_on_close = remove_on_close
        self.timeout = float(timeout)
        self.file_threshold = file_threshold
        # A temporary file belongs to one process: its secret stays in memory, like memory's.
        self.secret_file = None if remove_on_close else self.path + ".secret"
        self._files = ValueFiles(self.path + "-blobs")
        self._store = f"the SQLite database {self.path!r}"
        self._closed = False
        # No reference back to self: a backend nobody closed is freed (and its writer thread
        # stopped) when its last reference goes, not by a later garbage collection that may
        # fall just before a fork(), whose child would inherit SQLite's locks mid-call.
        self._writer = PerProcess(
            functools.partial(Writer, self.path, self.timeout, _sql.WRITER_SETUP)
        )
        self._readers = PerProcess(functools.partial(Readers, self.path, self.timeout))
        # Made here: a forked child or a pickled copy never removes a temporary file.
        self._owner = PerProcess(object)
        self._owner.get()
        self._prepare()

    @classmethod
    def temporary(cls, **options: Any) -> SqliteBackend:
        """Return a backend on a new temporary file (mode 0600) that :meth:`close` removes."""
        fd, path = tempfile.mkstemp(prefix="dash_database-", suffix=".sqlite")
        os.close(fd)
        return cls(path, remove_on_close=True, **options)

    def _prepare(self) -> None:
        try:
            create(self.path, self.timeout)
        except (sqlite3.Error, OSError) as exc:
            raise self._error("open", exc) from exc

    def _error(self, action: str, exc: BaseException) -> BackendError:
        if "not a database" in str(exc) or "malformed" in str(exc):
            hint = (
                "It is not a SQLite database (or it is damaged): move it away or use another path."
            )
            return backend_error(self._store, action, exc, hint)
        return backend_error(self._store, action, exc)

    def _reader(self) -> AbstractContextManager[Reader]:
        """Lend a read connection for several statements (the caller maps sqlite3.Error)."""
        if self._closed:
            raise BackendError(f"The SQLite database {self.path!r} is closed.")
        return self._readers.get().lend()

    def _read(self, sql: str, args: Any) -> list[Any]:
        if self._closed:
            raise BackendError(f"The SQLite database {self.path!r} is closed.")
        try:
            return self._readers.get().read(sql, args)
        except sqlite3.Error as exc:
            raise self._error("read from", exc) from exc

    def _write(self, *requests: tuple[str, Any]) -> list[tuple[Any, ...]]:
        if self._closed:
            raise BackendError(f"The SQLite database {self.path!r} is closed.")
        try:
            return self._writer.get().run(*requests)
        except sqlite3.Error as exc:
            raise self._error("write to", exc) from exc

    def _apply(self, rows: list[tuple[Any, ...]]) -> int:
        """Remove the value files a committed write dropped; return its count."""
        self._files.remove(name for _, files in rows if files for name in files.split())
        return sum(count for count, _ in rows)

    # -- the protocol (documented in _base.py) ---------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        rows = self._read(_sql.GET, (key, session, now))
        if rows and isinstance(rows[0][0], bytes):  # the value itself, not its file's name
            return rows[0][0]
        found = self.get_versioned(session, key, now) if rows else None
        return None if found is None else found[0]

    def get_versioned(self, session: str, key: str, now: float) -> tuple[bytes, int] | None:
        for _ in range(READ_ATTEMPTS):
            rows = self._read(_sql.GET, (key, session, now))
            if not rows:
                return None
            value, version, length = rows[0]
            if isinstance(value, bytes):  # the value itself, not the name of its file
                return value, version
            data = self._load(session, key, now, value, version, length)
            if data is not None:
                return data, version
        raise self._files.replaced(self.path)

    def get_many(self, session: str, keys: Sequence[str], now: float) -> list[bytes | None]:
        chunks = [keys[i : i + _READ_CHUNK] for i in range(0, len(keys), _READ_CHUNK)]
        for _ in range(READ_ATTEMPTS):
            rows: list[Any] = []
            try:
                with self._reader() as reader:
                    if len(chunks) > 1:
                        reader.conn.execute("BEGIN")  # one snapshot for every chunk
                    for chunk in chunks:
                        sql = _sql.GET_MANY.format(keys=", ".join(["?"] * len(chunk)))
                        rows += reader.cursor.execute(sql, (session, now, *chunk)).fetchall()
                    if len(chunks) > 1:
                        reader.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._error("read from", exc) from exc
            found: dict[str, bytes | None] = {}
            for key, value, version, length in rows:
                if not isinstance(value, bytes):
                    value = self._load(session, key, now, value, version, length)
                    if value is None:
                        break  # a write replaced it since the snapshot: take a new one
                found[key] = value
            else:
                return [found.get(key) for key in keys]
        raise self._files.replaced(self.path)

    def _load(
        self, session: str, key: str, now: float, name: str, version: int, length: int
    ) -> bytes | None:
        """Return the value in the value file ``name``, read after the snapshot that named it
        ended; ``None`` when a write replaced that row (and removed the file) meanwhile: the
        caller takes a new snapshot, so that what it returns is one moment of the session.

        Raises:
            BackendError: the file is missing and the row still names it.
        """
        try:
            data = self._files.read(name, version, length)
        except OSError as exc:
            raise self._error("read a value file of", exc) from exc
        if data is None and self._read(_sql.GET, (key, session, now))[:1] == [
            (name, version, length)
        ]:
            raise self._files.missing(name, key)
        return data

    def set_many(
        self,
        session: str,
        items: Mapping[str, bytes],
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
        max_sessions: int | None = None,
    ) -> None:
        self._put(session, items, deadline, now, version, (max_bytes, max_sessions), (False, None))

    def compare_and_set(
        self,
        session: str,
        key: str,
        value: bytes,
        expected: int | None,
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
        max_sessions: int | None = None,
    ) -> bool:
        limits = (max_bytes, max_sessions)
        return self._put(session, {key: value}, deadline, now, version, limits, (True, expected))

    def _put(
        self,
        session: str,
        items: Mapping[str, bytes],
        deadline: float | None,
        now: float,
        version: int,
        limits: tuple[int | None, int | None],
        check: tuple[bool, int | None],
    ) -> bool:
        limit = self.file_threshold
        big = [] if limit is None else [k for k, v in items.items() if len(v) >= limit]
        names: dict[str, str] = {}
        if big:
            try:
                names = dict(zip(big, self._files.write([(items[k], version) for k in big])))
            except OSError as exc:
                raise self._error("write a value file of", exc) from exc
        rows = [(k, names.get(k, v), len(v)) for k, v in items.items()]
        write = (session, len(items), deadline, now, version, *limits, *check)
        requests = _sql.put(rows, write)
        max_bytes, max_sessions = limits
        written = False
        try:
            figures = self._write(*requests)[-1][0]
            matched, full, before, after, written, files = json.loads(figures)
            if written and files:
                self._files.remove(files.split())  # the value files this write replaced
        except WriterLost:
            written = True  # perhaps: its files stay until purge_expired sweeps them
            raise
        finally:
            if not written:
                self._files.remove(names.values())
        if matched and full:
            raise SessionLimitError.for_write(max_sessions or 0)
        if matched and not written:
            raise QuotaExceededError.for_write(before, after, max_bytes or 0)
        return bool(written)

    def delete(self, session: str, key: str, now: float) -> bool:
        args = {"session": session, "key": key, "now": now}
        return self._apply(self._write((_sql.DELETE, args))) > 0

    def keys(self, session: str, now: float) -> list[str]:
        return [row[0] for row in self._read(_sql.KEYS, {"session": session, "now": now})]

    def clear(self, session: str, now: float) -> int:
        return self._apply(self._write((_sql.CLEAR, {"session": session, "now": now})))

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._write((_sql.TOUCH, {"session": session, "deadline": deadline, "now": now}))

    def rename(self, session: str, new_session: str, now: float) -> int:
        args = {"session": session, "new": new_session, "now": now}
        return self._apply(self._write((_sql.RENAME, args)))

    def session_bytes(self, session: str, now: float) -> int:
        rows = self._read(_sql.SESSION_BYTES, {"session": session, "now": now})
        return int(rows[0][0]) if rows else 0

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        try:
            after = 0 if cursor is None else int(cursor)
        except ValueError:
            raise bad_cursor(cursor) from None
        rows = self._read(_sql.SESSIONS, {"after": after, "now": now, "limit": limit})
        page = [SessionInfo(*row[1:]) for row in rows]
        return page, (str(rows[-1][0]) if len(rows) == limit else None)

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        # The smallest key after `cursor` is `cursor` followed by NUL.
        start = "" if cursor is None else cursor + "\0"
        args = {"session": session, "now": now, "start": start, "limit": limit}
        page = [KeyInfo(*row) for row in self._read(_sql.SESSION_KEYS, args)]
        return page, (page[-1].key if len(page) == limit else None)

    def stats(self, now: float) -> StoreStats:
        return StoreStats(*self._read(_sql.STATS, {"now": now})[0])

    def purge_expired(self, now: float, progress: Callable[[int], object] | None = None) -> int:
        purged = 0
        while True:
            removed = self._apply(self._write((_sql.PURGE, {"now": now, "limit": _PURGE_BATCH})))
            purged += removed
            if progress is not None and removed:
                progress(removed)
            if removed < _PURGE_BATCH:
                break
        old = self._files.old_names(_ORPHAN_AGE)
        if old:
            named = {row[0] for row in self._read(_sql.FILE_VALUES, {})}
            self._files.remove(name for name in old if name not in named)
        return purged

    def close(self) -> None:
        self._closed = True
        writer = self._writer.take()
        if writer is not None:
            writer.close()
        readers = self._readers.take()
        if readers is not None:
            readers.close()
        if self.remove_on_close and self._owner.take() is not None:
            for suffix in ("", "-wal", "-shm"):
                with suppress(FileNotFoundError):
                    os.remove(self.path + suffix)
            self._files.remove_all()

    def __reduce__(self) -> tuple[Any, ...]:
        # Another handle on the same file; only the original removes a temporary one.
        return (_reopen, (self.path, self.timeout, self.file_threshold))

    def __repr__(self) -> str:
        return f"SqliteBackend({self.path!r})"

    # -- bulk transfer (``_bulk.py``) ------------------------------------------------------

    def read_sessions(
        self, now: float, cursor: str | None = None, *, limit: int = 100, max_bytes: int = 1 << 23
    ) -> tuple[list[SessionData], str | None]:
        return _bulk.read_sessions(self, now, cursor, limit, max_bytes)

    def write_sessions(
        self, batch: Sequence[SessionData], now: float, *, version: int, replace: bool = False
    ) -> list[bool]:
        return _bulk.write_sessions(self, batch, now, version, replace)


def _reopen(path: str, timeout: float, file_threshold: int | None) -> SqliteBackend:
    return SqliteBackend(path, timeout=timeout, file_threshold=file_threshold)
