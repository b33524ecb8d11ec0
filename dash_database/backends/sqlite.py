"""The embedded default: one SQLite file, written through sqlitedict.

Layout of the file:

- ``"dash_database"``: sqlitedict's own table (``key TEXT PRIMARY KEY, value BLOB``). The key
  is the prefix-free encoding of (session, key) from :mod:`dash_database._keys`; the value is
  the serialized bytes (sqlitedict is given identity encoders, so it never pickles or unpickles
  anything itself).
- ``"dash_database_sessions"``: one row per session that has a deadline.

How it is used, and why:

- Writes go through sqlitedict's writer thread (one per process) in autocommit mode, and every
  write is exactly one SQL statement, so it is atomic on its own and one queue round trip
  completes it (each extra request through sqlitedict's queue costs a thread hand-off, about as
  much as the commit). A write without a deadline to a session that has none is a plain
  upsert. A write that touches both tables inserts rows into a TEMP view whose ``INSTEAD OF``
  trigger does the work: the trigger runs inside the statement, so the whole write commits or
  fails as one. Errors come back through the same round trip and are raised.
- A value file that a write replaces is noted by a TEMP trigger in the same statement, which
  reports the count; only then does a second request collect the names, and the files are
  removed after the commit.
- A process-wide lock keeps one request at a time on the writer connection: sqlitedict has one
  error slot per connection, and with one request in flight an error belongs to its caller.
- Reads go through one plain ``sqlite3`` connection per thread, which skips the queue. In WAL
  mode readers never block the writer or each other, and each read is its own transaction, so
  it sees every committed write.
- WAL with ``synchronous=NORMAL``: a committed write survives the process being killed; the
  file stays consistent on power loss.
- Connections belong to the process that opened them. After ``fork()`` the child opens its
  own on first use and never touches the parent's.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from .. import _keys
from ..exceptions import BackendError, InvalidArgumentError
from . import _fork
from ._blobs import BlobFiles, DamagedBlobError

__all__ = ["SqliteBackend"]

_TABLE = "dash_database"
_SESSIONS = "dash_database_sessions"
_BUSY_TIMEOUT_MS = 15_000

# The data table is created with sqlitedict's own DDL so that sqlitedict finds it as its own.
_SCHEMA = (
    f'CREATE TABLE IF NOT EXISTS "{_TABLE}" (key TEXT PRIMARY KEY, value BLOB)',
    f'CREATE TABLE IF NOT EXISTS "{_SESSIONS}" '
    "(session TEXT PRIMARY KEY, deadline REAL NOT NULL) WITHOUT ROWID",
    f'CREATE INDEX IF NOT EXISTS "{_SESSIONS}_deadline" ON "{_SESSIONS}" (deadline)',
)

_EXPIRED = f'EXISTS (SELECT 1 FROM "{_SESSIONS}" WHERE session = ? AND deadline <= ?)'
_GET = f'SELECT value FROM "{_TABLE}" WHERE key = ? AND NOT {_EXPIRED}'
_KEYS = f'SELECT key FROM "{_TABLE}" WHERE key >= ? AND key < ? AND NOT {_EXPIRED}'
_DELETE = f'DELETE FROM "{_TABLE}" WHERE key = ? AND NOT {_EXPIRED} RETURNING value'
_DELETE_RANGE = (
    f'DELETE FROM "{_TABLE}" WHERE key >= ? AND key < ? '
    f'RETURNING value, (SELECT deadline FROM "{_SESSIONS}" WHERE session = ?)'
)
# Values are BLOBs; a TEXT value is a reference to a file (see _blobs.py).
_FILE_REFS_IN_RANGE = (
    f"SELECT value FROM \"{_TABLE}\" WHERE key >= ? AND key < ? AND typeof(value) = 'text'"
)
_ALL_FILE_REFS = f"SELECT value FROM \"{_TABLE}\" WHERE typeof(value) = 'text'"

_DROP_DEADLINE_IF_EMPTY = (
    f'DELETE FROM "{_SESSIONS}" WHERE session = ? '
    f'AND NOT EXISTS (SELECT 1 FROM "{_TABLE}" WHERE key >= ? AND key < ?)'
)
_TOUCH = f'UPDATE "{_SESSIONS}" SET deadline = max(deadline, ?) WHERE session = ? AND deadline > ?'
_EXPIRED_SESSIONS = f'SELECT session FROM "{_SESSIONS}" WHERE deadline <= ?'

# TEMP objects live in the writer connection only. Table names inside a trigger cannot be
# schema-qualified; they resolve to the main database since the temp schema has no such tables.
_PUT_VIEW = "dash_database_put"
_PURGE_VIEW = "dash_database_purge"
_STAGING = "dash_database_staging"
_DROPPED = "dash_database_dropped"
# Ends the statements that write values: the number of file references waiting in _DROPPED.
_COUNT_DROPPED = f"RETURNING (SELECT count(*) FROM {_DROPPED})"
_WRITER_SETUP = (
    f"CREATE TEMP TABLE {_STAGING} (session, low, high, key, value, deadline, now)",
    f"CREATE TEMP VIEW {_PUT_VIEW} (session, low, high, key, value, deadline, now) "
    "AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0",
    # File references of values that a write replaces or drops, for the writer to remove the
    # files once the write committed. The trigger is BEFORE UPDATE so that a RETURNING clause
    # of the same statement already counts its rows (RETURNING runs before AFTER triggers).
    f"CREATE TEMP TABLE {_DROPPED} (ref TEXT NOT NULL)",
    f"""CREATE TEMP TRIGGER {_DROPPED} BEFORE UPDATE OF value ON main."{_TABLE}"
        WHEN typeof(OLD.value) = 'text' BEGIN
        INSERT INTO {_DROPPED} VALUES (OLD.value);
    END""",
    f"""CREATE TEMP TRIGGER {_PUT_VIEW} INSTEAD OF INSERT ON {_PUT_VIEW} BEGIN
        INSERT INTO {_DROPPED} SELECT value FROM "{_TABLE}" WHERE key >= NEW.low
            AND key < NEW.high AND typeof(value) = 'text' AND EXISTS (SELECT 1 FROM
            "{_SESSIONS}" WHERE session = NEW.session AND deadline <= NEW.now);
        DELETE FROM "{_TABLE}" WHERE key >= NEW.low AND key < NEW.high AND EXISTS (
            SELECT 1 FROM "{_SESSIONS}" WHERE session = NEW.session AND deadline <= NEW.now);
        DELETE FROM "{_SESSIONS}" WHERE session = NEW.session
            AND (deadline <= NEW.now OR NEW.deadline IS NULL);
        INSERT INTO "{_SESSIONS}" (session, deadline)
            SELECT NEW.session, NEW.deadline WHERE NEW.deadline IS NOT NULL
            ON CONFLICT (session) DO UPDATE SET deadline = max(deadline, excluded.deadline);
        INSERT INTO "{_TABLE}" (key, value) VALUES (NEW.key, NEW.value)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value;
    END""",
    f"CREATE TEMP VIEW {_PURGE_VIEW} (session, low, high, now) "
    "AS SELECT NULL, NULL, NULL, NULL WHERE 0",
    # Both deletes re-check the deadline: another process may have renewed the session.
    f"""CREATE TEMP TRIGGER {_PURGE_VIEW} INSTEAD OF INSERT ON {_PURGE_VIEW} BEGIN
        DELETE FROM "{_TABLE}" WHERE key >= NEW.low AND key < NEW.high AND EXISTS (
            SELECT 1 FROM "{_SESSIONS}" WHERE session = NEW.session AND deadline <= NEW.now);
        DELETE FROM "{_SESSIONS}" WHERE session = NEW.session AND deadline <= NEW.now;
    END""",
)
#: Values of this many bytes or more are kept in files beside the database (see _blobs.py).
BLOB_THRESHOLD = 32 * 1024
# A value file no row references is removed by purge_expired once it is this old (seconds).
_ORPHAN_AGE = 3600.0
# How often a read retries when a concurrent writer replaced the row and removed its file.
_READ_RETRIES = 5

# Rows per multi-row INSERT: 7 bound values a row stays far below SQLite's 32766 limit.
_ROWS_PER_STATEMENT = 1000

# Connections inherited from a parent process are kept referenced, never closed or used: closing
# them in the child could release locks or unmap shared memory the parent still relies on.
_inherited: list[object] = []


class SqliteBackend:
    """Store sessions in one SQLite file through sqlitedict.

    Args:
        path: the database file. It is created when missing; its directory must exist.
        remove_on_close: delete the file (and its ``-wal``/``-shm`` companions) on
            :meth:`close`. Used for ``DashDatabase(None)``; only the creating process removes it.
        blob_threshold: values of this many bytes or more are kept as files in the folder
            ``<path>-blobs`` beside the database, which is faster and copies less memory.

    Raises:
        InvalidArgumentError: the directory does not exist, or the path is a directory.
        BackendError: the file exists but is not a SQLite database.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        remove_on_close: bool = False,
        blob_threshold: int = BLOB_THRESHOLD,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.blob_threshold = blob_threshold
        self._blobs = BlobFiles(self.path + "-blobs")
        self._remove_on_close = remove_on_close
        self._owner_pid = os.getpid()
        self._check_path()
        self._init_process_state()
        self._prepare_file()

    @classmethod
    def temporary(cls) -> SqliteBackend:
        """Return a backend on a new temporary file that :meth:`close` removes."""
        fd, path = tempfile.mkstemp(prefix="dash_database-", suffix=".sqlite")
        os.close(fd)
        return cls(path, remove_on_close=True)

    # -- process-local state ------------------------------------------------------------

    def _init_process_state(self) -> None:
        self._forks = _fork.count
        self._lock = threading.Lock()
        self._writer: Any = None
        self._response = _Response()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False

    def _ensure_process(self) -> None:
        if self._forks != _fork.count:
            _inherited.append((self._writer, self._readers))
            self._init_process_state()
        if self._closed:
            raise BackendError(f"The SQLite database {self.path!r} is closed.")

    def _check_path(self) -> None:
        if os.path.isdir(self.path):
            raise InvalidArgumentError(
                f"{self.path!r} is a directory; pass the path of a database file inside it, "
                f"for example {os.path.join(self.path, 'dash_database.sqlite')!r}."
            )
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise InvalidArgumentError(
                f"The directory {directory!r} of the database file {self.path!r} does not "
                "exist; create it first or choose another path."
            )

    def _prepare_file(self) -> None:
        with self._errors("open"):
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000)
            try:
                _enable_wal(conn)
                for ddl in _SCHEMA:
                    conn.execute(ddl)
                conn.commit()
            finally:
                conn.close()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise self._failure(action, exc) from exc

    def _failure(self, action: str, exc: sqlite3.DatabaseError) -> BackendError:
        """Return the BackendError to raise when ``action`` failed with ``exc``."""
        hint = (
            "It is not a SQLite database (or it is corrupted): move it away or choose another path."
            if "not a database" in str(exc) or "malformed" in str(exc)
            else "Check that the file and its directory are writable and the disk has room."
        )
        return BackendError(f"Could not {action} the SQLite database {self.path!r}: {exc}. {hint}")

    def _reader(self) -> sqlite3.Cursor:
        """Return this thread's cursor on its read connection, kept from read to read (a new
        cursor per read costs a few percent of a small read)."""
        cursor: sqlite3.Cursor | None = getattr(self._local, "cursor", None)
        # After fork() the thread-local still holds the parent's connection.
        if cursor is not None and self._forks == _fork.count and not self._closed:
            return cursor
        return self._open_reader()

    def _open_reader(self) -> sqlite3.Cursor:
        self._ensure_process()
        with self._errors("open"):
            conn = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA query_only=ON")
        cursor = self._local.cursor = conn.cursor()
        with self._lock:
            self._readers.append(conn)
        return cursor

    def _writer_conn(self) -> Any:
        # Called with self._lock held.
        if self._writer is None:
            from sqlitedict import SqliteDict

            with self._errors("open"):
                writer = SqliteDict(
                    self.path,
                    tablename=_TABLE,
                    journal_mode="WAL",
                    encode=_identity,
                    decode=_identity,
                    autocommit=True,
                    outer_stack=False,
                )
                # sqlitedict sets synchronous=OFF; NORMAL keeps the file consistent on power loss
                # and costs nothing per commit in WAL mode.
                writer.conn.execute("PRAGMA synchronous=NORMAL")
                writer.conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
                for ddl in _WRITER_SETUP:
                    writer.conn.execute(ddl)
                writer.conn.select_one("SELECT 1")
            self._writer = writer
        return self._writer.conn

    # -- statements ------------------------------------------------------------------------

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """Run one writing statement through sqlitedict (atomic: autocommit); return its rows."""
        self._ensure_process()
        # try/except rather than the _errors() context manager: this is the hot path of writes.
        try:
            with self._lock:
                return self._request(self._writer_conn(), sql, args)
        except sqlite3.DatabaseError as exc:
            raise self._failure("write to", exc) from exc

    def _request(self, writer: Any, sql: str, args: tuple[Any, ...]) -> list[Any]:
        # Called with self._lock held: one request in flight, so one response object serves.
        response = self._response
        try:
            writer.execute(sql, args, response)
            rows = response.wait()
        except BaseException:
            # Interrupted while waiting: the writer may still answer into that response.
            self._response = _Response()
            raise
        writer.check_raise_error()
        return rows

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        cursor = self._reader()
        # try/except rather than the _errors() context manager: this is the hot path of reads.
        # fetchall() steps the statement to its end, which ends its read transaction.
        try:
            return cursor.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._failure("read from", exc) from exc

    # -- the backend protocol -------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        args = (_keys.encode(session, key), session, now)
        for _ in range(_READ_RETRIES):
            rows = self._read(_GET, args)
            if not rows:
                return None
            value = rows[0][0]
            if isinstance(value, bytes):
                return value
            try:
                return self._read_file(value)
            except FileNotFoundError:
                continue  # a writer replaced the row and removed the file: read the row again
        raise BackendError(
            f"Could not read key {key!r} of session {session!r} from {self.path!r}: its value "
            "was replaced at every one of several attempts. Try again."
        )

    def _read_file(self, reference: str) -> bytes:
        try:
            return self._blobs.read(reference)
        except DamagedBlobError as exc:
            raise BackendError(f"{exc} Delete the key or store it again.") from exc

    def set_many(
        self, session: str, items: Mapping[str, bytes], deadline: float | None, now: float
    ) -> None:
        encoded = [_keys.encode(session, k) for k in items]
        written: list[str] = []
        try:
            values: list[bytes | str] = []
            for value in items.values():
                if len(value) >= self.blob_threshold:
                    written.append(self._blobs.write(value))
                    values.append(written[-1])
                else:
                    values.append(value)
            rows = self._put(session, list(zip(encoded, values)), deadline, now)
        except BaseException:
            self._blobs.remove(written)
            raise
        if any(row[0] for row in rows):
            self._remove_dropped_files()

    def _put(
        self, session: str, pairs: list[tuple[str, bytes | str]], deadline: float | None, now: float
    ) -> list[Any]:
        """Write ``pairs`` in one atomic statement; return its rows (see _COUNT_DROPPED)."""
        if deadline is None and len(pairs) <= _ROWS_PER_STATEMENT:
            # While the session has no deadline there is none to change: a plain upsert, much
            # cheaper than the trigger. It writes nothing (and returns no row) when the session
            # has a deadline row; the trigger then does the whole work.
            rows = self._write(*_upsert(session, pairs))
            if rows:
                return rows
        low, high = _keys.session_range(session)
        rows_in = [(session, low, high, k, v, deadline, now) for k, v in pairs]
        if len(rows_in) <= _ROWS_PER_STATEMENT:
            sql, args = _insert(_PUT_VIEW, rows_in)
            return self._write(f"{sql} {_COUNT_DROPPED}", args)
        # Too many rows for one statement: stage them in a TEMP table (private to the writer
        # connection, held under the lock), then apply them in one atomic statement.
        self._ensure_process()
        with self._lock, self._errors("write to"):
            conn = self._writer_conn()
            try:
                for start in range(0, len(rows_in), _ROWS_PER_STATEMENT):
                    # Each request waits, so a failed chunk raises before anything is applied.
                    chunk = rows_in[start : start + _ROWS_PER_STATEMENT]
                    self._request(conn, *_insert(_STAGING, chunk))
                return self._request(
                    conn,
                    f"INSERT INTO {_PUT_VIEW} SELECT * FROM {_STAGING} ORDER BY rowid "
                    + _COUNT_DROPPED,
                    (),
                )
            finally:
                self._request(conn, f"DELETE FROM {_STAGING}", ())

    def _remove_dropped_files(self) -> None:
        self._blobs.remove(row[0] for row in self._write(f"DELETE FROM {_DROPPED} RETURNING ref"))

    def delete(self, session: str, key: str, now: float) -> bool:
        deleted = self._write(_DELETE, (_keys.encode(session, key), session, now))
        self._blobs.remove(row[0] for row in deleted if isinstance(row[0], str))
        return bool(deleted)

    def keys(self, session: str, now: float) -> list[str]:
        low, high = _keys.session_range(session)
        cut = len(low)
        return [row[0][cut:] for row in self._read(_KEYS, (low, high, session, now))]

    def clear(self, session: str, now: float) -> int:
        low, high = _keys.session_range(session)
        deleted = self._write(_DELETE_RANGE, (low, high, session))
        self._blobs.remove(row[0] for row in deleted if isinstance(row[0], str))
        # A concurrent write may have refilled the session since; its deadline then stays.
        self._write(_DROP_DEADLINE_IF_EMPTY, (session, low, high))
        deadline = deleted[0][1] if deleted else None
        return 0 if deadline is not None and deadline <= now else len(deleted)

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._write(_TOUCH, (deadline, session, now))

    def purge_expired(self, now: float) -> int:
        expired = [row[0] for row in self._read(_EXPIRED_SESSIONS, (now,))]
        has_files = os.path.isdir(self._blobs.directory)
        candidates: set[str] = set()
        for start in range(0, len(expired), _ROWS_PER_STATEMENT):
            chunk = expired[start : start + _ROWS_PER_STATEMENT]
            if has_files:
                for session in chunk:
                    rows = self._read(_FILE_REFS_IN_RANGE, _keys.session_range(session))
                    candidates.update(row[0] for row in rows)
            rows = [(session, *_keys.session_range(session), now) for session in chunk]
            self._write(*_insert(_PURGE_VIEW, rows))
        if has_files:
            # A renewed session kept its rows, and so its files: remove only what no row names.
            referenced = {row[0] for row in self._read(_ALL_FILE_REFS, ())}
            self._blobs.remove(candidates - referenced)
            # Files of values dropped by a write to an expired session, or of a writer that died
            # before committing. The age guard spares files whose rows are being committed now.
            self._blobs.sweep(referenced, older_than=_ORPHAN_AGE)
        return len(expired)

    def close(self) -> None:
        if self._forks != _fork.count:
            _inherited.append((self._writer, self._readers))
            self._init_process_state()
            self._closed = True
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writer, self._writer = self._writer, None
            readers, self._readers = self._readers, []
        if writer is not None:
            writer.close()
        for conn in readers:
            conn.close()
        if self._remove_on_close and os.getpid() == self._owner_pid:
            for suffix in ("", "-wal", "-shm"):
                with suppress(FileNotFoundError):
                    os.remove(self.path + suffix)
            self._blobs.remove_all()

    # -- pickling: a handle that reopens the same file in another process -----------------

    def __getstate__(self) -> dict[str, Any]:
        # A copy is another handle on the same file; only the original removes a temporary one.
        return {"path": self.path, "blob_threshold": self.blob_threshold}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.blob_threshold = state["blob_threshold"]
        self._blobs = BlobFiles(self.path + "-blobs")
        self._remove_on_close = False
        self._owner_pid = os.getpid()
        self._init_process_state()

    @property
    def secret_file(self) -> str | None:
        # A temporary file belongs to one process, like memory.
        return None if self._remove_on_close else self.path + ".secret"

    def __repr__(self) -> str:
        return f"SqliteBackend({self.path!r})"


def _enable_wal(conn: sqlite3.Connection) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite reports a conflict with
    # another process doing the same at once as "database is locked" without waiting for the
    # busy timeout: retry until the timeout ourselves.
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _insert(table: str, rows: list[tuple[Any, ...]]) -> tuple[str, tuple[Any, ...]]:
    """Return one multi-row ``INSERT`` of ``rows`` into ``table`` and its arguments."""
    row = "(" + ", ".join("?" * len(rows[0])) + ")"
    return (
        f"INSERT INTO {table} VALUES {', '.join([row] * len(rows))}",
        tuple(value for values in rows for value in values),
    )


def _upsert(session: str, pairs: list[tuple[str, bytes | str]]) -> tuple[str, tuple[Any, ...]]:
    """Return one statement that inserts or replaces the (encoded key, value) ``pairs`` unless
    ``session`` has a deadline row, and its arguments."""
    values = ", ".join(["(?, ?)"] * len(pairs))
    return (
        f'INSERT INTO "{_TABLE}" (key, value) SELECT column1, column2 FROM (VALUES {values}) '
        f'WHERE NOT EXISTS (SELECT 1 FROM "{_SESSIONS}" WHERE session = ?) '
        f"ON CONFLICT (key) DO UPDATE SET value = excluded.value {_COUNT_DROPPED}",
        (*(value for pair in pairs for value in pair), session),
    )


class _Response:
    """Receives the rows of one request from sqlitedict's writer thread, then its end marker.

    sqlitedict's ``execute(sql, args, res)`` puts each row (a tuple), then an end marker (a
    str), into ``res``. sqlitedict's own ``select()`` waits on a new ``queue.Queue`` per call
    and wakes up at every row; this wakes its caller once, at the end marker, which saves a
    thread switch per row and the queue's construction.
    """

    __slots__ = ("__weakref__", "_done", "_rows")

    def __init__(self) -> None:
        self._rows: list[Any] = []
        self._done = threading.Lock()
        self._done.acquire()

    def put(self, item: Any) -> None:
        if isinstance(item, tuple):
            self._rows.append(item)
        else:
            self._done.release()

    def wait(self) -> list[Any]:
        self._done.acquire()
        rows, self._rows = self._rows, []
        return rows


def _identity(value: Any) -> Any:
    return value
