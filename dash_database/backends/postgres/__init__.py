"""Sessions in two PostgreSQL tables, on psycopg 3 connections from a SQLAlchemy engine's pool.

``<table>_sessions`` holds a row per session (its figures), ``<table>_values`` one per key.
Both are keyed by SHA-256 digests, so ids and keys of any length are indexable; reads also
compare the full id and key. ``namespace`` keeps apps sharing the tables apart. Every operation
is one statement of ``_sql.py`` in autocommit mode, on a connection borrowed from the engine's
pool (a user's engine's connections switch to autocommit for the call, and back). A write of
``copy_threshold`` bytes of values or more streams them with ``COPY`` first (``_copy.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from ..._locations import DEFAULT_SECRET_FILE, redact_url
from ...exceptions import BackendError, InvalidArgumentError, QuotaExceededError, SessionLimitError
from .._base import KeyInfo, Page, SessionData, SessionInfo, StoreStats
from .._errors import bad_cursor
from .._process import PerProcess
from . import _bulk, _connect, _sql
from ._connect import CONFLICTS, Connection, Engine, digest
from ._copy import stage

__all__ = ["DEFAULT_NAMESPACE", "DEFAULT_TABLE", "PostgresBackend"]

#: The table name and namespace used when none is given.
DEFAULT_TABLE, DEFAULT_NAMESPACE = "dash_database", "default"

# Expired sessions removed per statement by purge_expired: few enough that a batch holds its
# locks briefly, enough that the round trips are spread over many sessions.
_PURGE_BATCH = 1000
Row = tuple[Any, ...]
Item = tuple[bytes, bytes, bytes]  # key digest, key, value
T = TypeVar("T")


class PostgresBackend:
    """Store sessions in two PostgreSQL tables.

    Args:
        engine: a URL (``postgresql://user:password@host:port/dbname``; ``postgres://`` and
            ``postgresql+psycopg://`` work too), or a SQLAlchemy ``Engine`` on psycopg 3. An
            engine passed in stays yours: :meth:`close` leaves it open, its timeouts are yours
            to set, and the backend cannot be pickled.
        table: the tables' name stem; a URL may give it as ``?table=...``.
        schema: the schema holding the tables (it must exist), or ``None`` for the search
            path; a URL may give it as ``?schema=...``.
        namespace: rows of other namespaces are never seen or touched, so several apps can
            share the tables; a URL may give it as ``?namespace=...``.
        create_table: create the tables unless they exist (safe from several processes at once;
            if the server is away, the first call that reaches it does); ``False`` when the
            user may not create tables and they exist.
        connect_timeout: seconds to wait for a new connection (URL only; at least 2).
        statement_timeout: seconds the server lets a statement run, lock waits included (URL
            only); also how long a write retries while other writers keep changing its session.
        copy_threshold: a write whose values add up to this many bytes or more streams them
            with ``COPY``, which keeps its memory near the values' size.
        **options: keyword arguments for ``sqlalchemy.create_engine`` when ``engine`` is a URL
            (for example ``pool_size``, ``connect_args``).

    Raises:
        ImportError: SQLAlchemy or psycopg is not installed.
        InvalidArgumentError: an option or the engine's driver cannot be used.
        BackendError: the server cannot be reached or the tables cannot be created.
    """

    def __init__(
        self,
        engine: str | Engine,
        *,
        table: str | None = None,
        schema: str | None = None,
        namespace: str | None = None,
        create_table: bool = True,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        copy_threshold: int = 4 * 1024 * 1024,
        **options: Any,
    ) -> None:
        self._url: str | None = None
        self._given: Engine | None = None
        if isinstance(engine, str):
            self._url, own = _connect.split_url(engine)
            table, schema = own.get("table", table), own.get("schema", schema)
            namespace = own.get("namespace", namespace)
        elif isinstance(engine, Engine) and options:
            raise InvalidArgumentError(
                f"Options {sorted(options)!r} apply only to a URL; configure the engine you "
                "pass in yourself."
            )
        elif isinstance(engine, Engine):
            self._given = engine
        else:
            raise InvalidArgumentError(
                "engine must be a postgresql:// URL or a SQLAlchemy Engine, got "
                f"{type(engine).__name__} {engine!r}."
            )
        table = DEFAULT_TABLE if table is None else table
        namespace = DEFAULT_NAMESPACE if namespace is None else namespace
        timeouts = (connect_timeout, statement_timeout)
        _connect.check_options(table, schema, namespace, copy_threshold, *timeouts)
        self.table_name, self.namespace, self.copy_threshold = table, namespace, copy_threshold
        self.statement_timeout, self._timeouts, self._options = statement_timeout, timeouts, options
        # What pickling keeps: the URL and options, never the connections.
        self._kwargs = dict(options, table=table, schema=schema, namespace=namespace)
        self._kwargs.update(create_table=create_table, connect_timeout=connect_timeout)
        self._kwargs.update(statement_timeout=statement_timeout, copy_threshold=copy_threshold)
        #: Where a generated secret key is kept: a file in the working directory at creation.
        self.secret_file: str | None = os.path.abspath(DEFAULT_SECRET_FILE)
        prefix = "" if schema is None else _connect.quote(schema) + "."
        #: The quoted, qualified names of the two tables.
        self.sessions_table = prefix + _connect.quote(f"{table}_sessions")
        self.values_table = prefix + _connect.quote(f"{table}_values")
        index = _connect.quote(f"{table}_sessions_deadline")
        self._sql = _sql.compiled(self.sessions_table, self.values_table, index)
        # Creators of the tables, and writes that start a session under max_sessions, take
        # turns on this advisory lock.
        lock = digest(f"dash_database:{self.sessions_table}".encode())
        self._lock = int.from_bytes(lock[:8], "big", signed=True)
        self._closed = self._adopted = False
        self._engines = PerProcess(self._engine_for_this_process)
        self._store, self._tables_ready = _connect.where(self.engine), not create_table
        if create_table:
            # A server that is away leaves it to the first call that reaches the server: a
            # worker that starts during an outage must start, and recover with the server.
            with suppress(BackendError):
                self._run("create the tables on", lambda conn: None)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine whose pool lends this backend its connections."""
        return self._engines.get()

    def _engine_for_this_process(self) -> Engine:
        # PerProcess calls this once in each process that uses the backend.
        if self._given is None:
            assert self._url is not None
            return _connect.open_engine(self._url, *self._timeouts, **self._options)
        if self._adopted:
            # A forked child: the pool holds the parent's connections; drop them unclosed.
            self._given.dispose(close=False)
        self._adopted = True
        return self._given

    def _create_tables(self, conn: Connection) -> None:
        # A catalog query first: opening needs no DDL (nor CREATE privilege) once they exist.
        query = "SELECT to_regclass(%s) IS NULL OR to_regclass(%s) IS NULL"
        if conn.execute(query, (self.sessions_table, self.values_table)).fetchall()[0][0]:
            with conn.transaction():
                # Concurrent CREATE ... IF NOT EXISTS can still collide: take turns.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock,))
                conn.execute(self._sql["CREATE"])

    def _run(self, action: str, work: Callable[[Connection], T]) -> T:
        if self._closed:
            raise BackendError(f"The backend on {self._store} is closed; open a new one.")
        if not self._tables_ready:
            _connect.run(self.engine, self._store, "create the tables on", self._create_tables)
            self._tables_ready = True  # once per instance and process; tables are not dropped
        return _connect.run(self.engine, self._store, action, work)

    def _rows(self, action: str, name: str, params: dict[str, Any]) -> list[Row]:
        # Every read, and writes that cannot meet a stale snapshot (single-row statements).
        return self._run(action, lambda conn: _execute(conn, self._sql[name], params))

    def _change(
        self, action: str, name: str, params: dict[str, Any], staged: list[Item] | None = None
    ) -> Row:
        """Return the row of a statement that changes a session, run again while it answers
        ``stale`` (its last column) or meets a concurrent writer. A write to an ``expired``
        session, one with ``locked`` set or one with ``staged`` items runs in a transaction
        after dropping the session, counting the live sessions under the table's lock or
        copying the items."""
        sql, expired = self._sql[name], False

        def attempt(conn: Connection) -> Row:
            if not params.get("locked") and not expired and staged is None:
                return _execute(conn, sql, params)[0]
            with conn.transaction():
                if params.get("locked"):
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock,))
                    [(count, *_)] = _execute(conn, self._sql["STATS"], params)
                    if count >= params["max_sessions"]:
                        raise SessionLimitError.for_write(params["max_sessions"])
                if expired:
                    _execute(conn, self._sql["CLEAR"], {**params, "expired_only": True})
                if staged is not None:
                    stage(conn, staged)
                return _execute(conn, sql, params)[0]

        def work(conn: Connection) -> Row:
            nonlocal expired
            give_up = time.monotonic() + self.statement_timeout
            while True:
                try:
                    row = attempt(conn)
                    expired = name.startswith("WRITE") and row[5]
                    if not expired and not row[-1]:
                        return row
                except CONFLICTS:
                    if time.monotonic() > give_up:
                        raise
                if time.monotonic() > give_up:
                    raise BackendError(
                        f"Could not {action} {self._store}: other writers kept changing the "
                        f"session for {self.statement_timeout:g} s. Try again, or write each "
                        "session from fewer places at once."
                    )

        return self._run(action, work)

    def _params(self, session: str, now: float, **more: Any) -> dict[str, Any]:
        sid = session.encode()
        return {"ns": self.namespace, "h": digest(sid), "sid": sid, "now": now, **more}

    # -- the backend protocol -------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        return self.get_many(session, [key], now)[0]

    def get_versioned(self, session: str, key: str, now: float) -> tuple[bytes, int] | None:
        params = self._params(session, now, key_hashes=[digest(key.encode())])
        rows = self._rows("read from", "GET", params)
        return next(((v, n) for k, v, n in rows if k == key.encode()), None)

    def get_many(self, session: str, keys: Sequence[str], now: float) -> list[bytes | None]:
        params = self._params(session, now, key_hashes=[digest(k.encode()) for k in keys])
        found = {k: v for k, v, _ in self._rows("read from", "GET", params)} if keys else {}
        return [found.get(key.encode()) for key in keys]

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
        self._write(session, items, now, deadline, version, max_bytes, max_sessions, None, False)

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
        figures = (deadline, version, max_bytes, max_sessions, expected, True)
        return self._write(session, {key: value}, now, *figures)

    def _write(self, session: str, items: Mapping[str, bytes], now: float, *figures: Any) -> bool:
        """Store ``items`` with ``figures``: deadline, version, max_bytes, max_sessions,
        expected, check."""
        names = ("deadline", "version", "max_bytes", "max_sessions", "expected", "check")
        params = self._params(session, now, locked=False, **dict(zip(names, figures)))
        keys, values = [key.encode() for key in items], list(items.values())
        hashes, size = [digest(k) for k in keys], sum(map(len, values))
        params.update(count=len(keys), added=size + sum(map(len, keys)))
        name, staged = "WRITE_MANY", None
        if size >= self.copy_threshold:
            name, staged = "WRITE_STAGED", list(zip(hashes, keys, values))
        elif len(keys) == 1:
            name = "WRITE"
            params.update(kh=hashes[0], key=keys[0], value=values[0])
        else:
            params.update(kh=hashes, key=keys, value=values)
        row = self._change("write to", name, params, staged)
        # Only a write that would start a session under max_sessions counts the live sessions
        # (a scan), holding the table's lock so that two never both take the last place.
        if row[1] and row[2]:  # matched, and refused for want of the count
            params["locked"] = True
            row = self._change("write to", name, params, staged)
        written, matched, _, before, after, *_ = row
        if written or not matched:
            return bool(written)
        raise QuotaExceededError.for_write(before, after, params["max_bytes"])

    def delete(self, session: str, key: str, now: float) -> bool:
        params = self._params(session, now, kh=digest(key.encode()))
        return bool(self._change("delete from", "DELETE", params)[0])

    def keys(self, session: str, now: float) -> list[str]:
        return [
            key.decode() for (key,) in self._rows("read from", "KEYS", self._params(session, now))
        ]

    def clear(self, session: str, now: float) -> int:
        params = self._params(session, now, expired_only=False)
        return int(self._change("delete from", "CLEAR", params)[0])

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._rows("write to", "TOUCH", self._params(session, now, deadline=deadline))

    def rename(self, session: str, new_session: str, now: float) -> int:
        if new_session == session:
            return len(self.keys(session, now))
        new_sid = new_session.encode()
        params = self._params(session, now, new_h=digest(new_sid), new_sid=new_sid)
        return int(self._change("write to", "RENAME", params)[0])

    def session_bytes(self, session: str, now: float) -> int:
        rows = self._rows("read from", "SESSION_BYTES", self._params(session, now))
        return int(rows[0][0]) if rows else 0

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        params = {"ns": self.namespace, "now": now, "cursor": cursor, "limit": limit}
        rows, after = _page(self, "SESSIONS", params)
        return [SessionInfo(sid.decode(), *figures) for _, sid, *figures in rows], after

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        params = self._params(session, now, cursor=cursor, limit=limit)
        rows, after = _page(self, "SESSION_KEYS", params)
        return [KeyInfo(key.decode(), *figures) for _, key, *figures in rows], after

    def stats(self, now: float) -> StoreStats:
        [row] = self._rows("read from", "STATS", {"ns": self.namespace, "now": now})
        return StoreStats(*map(int, row))

    def purge_expired(self, now: float, progress: Callable[[int], object] | None = None) -> int:
        params = {"ns": self.namespace, "now": now, "limit": _PURGE_BATCH}
        counts = [_PURGE_BATCH]
        while counts[-1] == _PURGE_BATCH:
            counts += self._rows("purge expired sessions from", "PURGE", params)[0]
            if progress is not None and counts[-1]:
                progress(counts[-1])
        return sum(counts) - _PURGE_BATCH

    def close(self) -> None:
        self._closed = True
        engine = self._engines.take()
        if engine is not None and self._given is None:
            engine.dispose()

    def __reduce__(self) -> tuple[Any, ...]:
        if self._url is None:
            raise TypeError(
                "A PostgresBackend built from an Engine cannot be pickled: the engine holds "
                "live connections. Build it from a URL (PostgresBackend('postgresql://...')) "
                "to pickle it."
            )
        return (_reopen, (self._url, self._kwargs))

    def __repr__(self) -> str:
        where = self._store if self._url is None else redact_url(self._url)
        return (
            f"PostgresBackend({where!r}, table={self.table_name!r}, namespace={self.namespace!r})"
        )

    # -- bulk transfer (``_bulk.py``) ------------------------------------------------------

    def read_sessions(
        self, now: float, cursor: str | None = None, *, limit: int = 100, max_bytes: int = 1 << 23
    ) -> tuple[list[SessionData], str | None]:
        return _bulk.read_sessions(self, now, cursor, limit, max_bytes)

    def write_sessions(
        self, batch: Sequence[SessionData], now: float, *, version: int, replace: bool = False
    ) -> list[bool]:
        return _bulk.write_sessions(self, batch, now, version, replace)


def _execute(conn: Connection, sql: str, params: dict[str, Any]) -> list[Row]:
    with conn.cursor(binary=True) as cursor:
        return cursor.execute(sql, params).fetchall()


def _reopen(url: str, options: dict[str, Any]) -> PostgresBackend:
    return PostgresBackend(url, **options)


def _page(
    backend: PostgresBackend, name: str, params: dict[str, Any]
) -> tuple[list[Row], str | None]:
    """Return a page of rows after the digest ``cursor`` (hex), and the next page's cursor."""
    cursor, limit = params.pop("cursor"), params["limit"]
    try:
        params.update(after=b"" if cursor is None else bytes.fromhex(cursor), limit=limit + 1)
    except (TypeError, ValueError):
        raise bad_cursor(cursor) from None
    rows = backend._rows("read from", name, params)
    return rows[:limit], rows[limit - 1][0].hex() if len(rows) > limit else None
