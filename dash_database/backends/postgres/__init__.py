"""Sessions in two PostgreSQL tables, on psycopg 3 connections from a SQLAlchemy engine's pool.

Layout. ``<table>_sessions`` holds one row per session: the namespace, the SHA-256 digest of
the session id's UTF-8 (``sid_hash``), the id itself (``session_id``), its deadline, key count,
byte total and the time of its last write. ``<table>_values`` holds one row per key: the
namespace, the session's digest, the key's digest (``key_hash``), the key's UTF-8, the value and
its version. Both are keyed by digests, so ids and keys of any length fit in an index, and
stored as ``BYTEA``, so any text (NUL included) works; reads also compare the full id and key.
Several apps can share the tables, each in its own ``namespace``. The default table name is
``dash_database`` (tables ``dash_database_sessions`` and ``dash_database_values``); expiry is
compared with the caller's ``now``, never the server's clock.

Statements. Every operation is one SQL statement (``_sql.py``), run in autocommit mode: one
round trip, atomic, committed when the call returns. A write upserts the session row (its
counts, bytes and deadline, after the quota check) and the values in one statement built of
data-modifying CTEs. A statement that changes a session first locks the session row, and only
if the row is still the version its snapshot shows; otherwise it changes nothing and runs again
with a fresh snapshot (``_sql.py`` explains why that makes every read it did current). So byte
totals and compare-and-set are exact, and a delete-all that waited for a concurrent write
removes all of that write. ``purge_expired`` removes expired sessions in batches of
``_PURGE_BATCH``, one statement each. A write whose values add up to ``copy_threshold`` bytes
or more streams them with ``COPY`` first (``_copy.py``).

Connections. Each call borrows a connection from the engine's pool and returns it. A backend
built from a URL makes its engine with ``connect_timeout`` and a server-side
``statement_timeout`` (which also bounds lock waits), in autocommit mode; an engine you pass in
is used as you configured it (its connections are switched to autocommit for the call and
back). A call whose connection turns out lost (the server restarted) discards it and runs once
more on another, up to the pool's size; calls while the server is down raise ``BackendError``.
After ``fork()`` the child opens its own engine, or drops the passed-in engine's pooled
connections unclosed (``_process.py``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

try:
    import psycopg
    import sqlalchemy
    from psycopg import errors as pg_errors
    from sqlalchemy.engine import Engine, make_url
    from sqlalchemy.exc import DBAPIError
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the drivers
    raise ImportError(
        'The PostgreSQL backend needs SQLAlchemy and psycopg: pip install "dash-database[postgres]"'
    ) from exc

from ..._locations import DEFAULT_SECRET_FILE, redact_url
from ...exceptions import BackendError, InvalidArgumentError, QuotaExceededError
from .._base import KeyInfo, Page, SessionInfo, StoreStats
from .._errors import store_errors
from .._process import PerProcess
from . import _sql
from ._copy import stage

__all__ = ["DEFAULT_NAMESPACE", "DEFAULT_TABLE", "PostgresBackend"]

#: The table name used when none is given (tables ``<table>_sessions`` and ``<table>_values``).
DEFAULT_TABLE = "dash_database"
#: The namespace used when none is given.
DEFAULT_NAMESPACE = "default"

# Expired sessions removed per statement by purge_expired: small enough that a batch holds its
# locks briefly, large enough that a statement's round trip is spread over many sessions.
_PURGE_BATCH = 1000
# URL query parameters read by this backend rather than passed to the driver.
_OWN_QUERY = ("table", "schema", "namespace")
# PostgreSQL truncates longer identifiers, which could make two tables' names collide.
_MAX_IDENTIFIER = 63
# A concurrent writer committed what this statement waited for or could not see: run it again.
_CONFLICTS = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.UniqueViolation)

Connection = psycopg.Connection[Any]
T = TypeVar("T")


class PostgresBackend:
    """Store sessions in two PostgreSQL tables.

    Args:
        engine: a URL (``postgresql://user:password@host:port/dbname``; ``postgres://`` and
            ``postgresql://`` use psycopg 3, ``postgresql+psycopg://`` names it explicitly), or
            a ready SQLAlchemy ``Engine`` on psycopg 3. An engine passed in stays yours:
            :meth:`close` does not dispose of it, its timeouts are yours to set, and the
            backend cannot be pickled.
        table: the tables' name stem; a URL may give it as ``?table=...``.
        schema: the schema holding the tables (it must exist), or ``None`` for the search
            path; a URL may give it as ``?schema=...``.
        namespace: rows of other namespaces are never seen or touched, so several apps can
            share the tables; a URL may give it as ``?namespace=...``.
        create_table: create the tables and their index if they do not exist (safe when
            several processes start at once). Pass ``False`` when the database user may not
            create tables and they were created beforehand.
        connect_timeout: seconds to wait for a new connection (URL only; at least 2).
        statement_timeout: seconds a statement may run, waiting for locks included (the server
            cancels it; URL only); also how long a write retries while other writers keep
            changing its session.
        copy_threshold: a write whose values add up to this many bytes or more streams them
            with ``COPY`` (see ``_copy.py``), which keeps its memory near the values' size.
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
        copy_threshold: int = 16 * 1024 * 1024,
        **options: Any,
    ) -> None:
        self._url: str | None = None
        self._settings = {
            "connect_timeout": connect_timeout,
            "statement_timeout": statement_timeout,
            "copy_threshold": copy_threshold,
            **options,
        }
        if isinstance(engine, str):
            self._url, own = _split_url(engine)
            table = own.get("table", table)
            schema = own.get("schema", schema)
            namespace = own.get("namespace", namespace)
            given: Engine | None = None
        elif isinstance(engine, Engine):
            if options:
                raise InvalidArgumentError(
                    f"Options {sorted(options)!r} apply only to a URL; configure the engine "
                    "you pass in yourself."
                )
            given = engine
        else:
            raise InvalidArgumentError(
                "engine must be a postgresql:// URL or a SQLAlchemy Engine, got "
                f"{type(engine).__name__} {engine!r}."
            )
        for name, value in [
            ("connect_timeout", connect_timeout),
            ("statement_timeout", statement_timeout),
        ]:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgumentError(
                    f"{name} must be a positive number of seconds, got {value!r}."
                )
        if (
            isinstance(copy_threshold, bool)
            or not isinstance(copy_threshold, int)
            or copy_threshold < 0
        ):
            raise InvalidArgumentError(
                f"copy_threshold must be an int >= 0, got {copy_threshold!r}."
            )
        self.table_name = DEFAULT_TABLE if table is None else table
        self.schema = schema
        self.namespace = DEFAULT_NAMESPACE if namespace is None else namespace
        _check_names(self.table_name, self.schema, self.namespace)
        self.statement_timeout = float(statement_timeout)
        self.copy_threshold = copy_threshold
        #: Where a generated secret key is kept: a file in the working directory at creation.
        self.secret_file: str | None = os.path.abspath(DEFAULT_SECRET_FILE)
        prefix = "" if schema is None else _quote(schema) + "."
        #: The quoted, qualified names of the two tables.
        self.sessions_table = prefix + _quote(f"{self.table_name}_sessions")
        self.values_table = prefix + _quote(f"{self.table_name}_values")
        names = {
            "sessions": self.sessions_table,
            "values": self.values_table,
            "deadline_index": _quote(f"{self.table_name}_sessions_deadline"),
        }
        self._sql = {
            name: getattr(_sql, name).format(**names)
            for name in _sql.__all__
            if name not in ("COPY_ITEMS", "STAGE_ITEMS")
        }
        self._closed = False
        self._given = given
        self._adopted = False
        self._engines: PerProcess[Engine] = PerProcess(self._engine_for_this_process)
        url = self.engine.url
        self._store = (
            f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
        )
        driver = self.engine.dialect.driver + (" (asyncio)" if self.engine.dialect.is_async else "")
        if self.engine.dialect.name != "postgresql" or driver != "psycopg":
            name = f"{self.engine.dialect.name}+{driver}"
            raise InvalidArgumentError(
                f"The engine's database and driver are {name!r}; this backend runs on "
                "PostgreSQL through psycopg 3: use a postgresql+psycopg:// URL."
            )
        if create_table:
            try:
                self._create_tables()
            except BaseException:
                self.close()
                raise

    # -- connections, retries and errors --------------------------------------------------

    def _engine_for_this_process(self) -> Engine:
        """Return the engine for this process (``PerProcess`` calls it once per process)."""
        if self._given is None:
            assert self._url is not None
            return sqlalchemy.create_engine(self._url, **self._engine_options())
        if self._adopted:
            # A forked child: the pool holds the parent's connections; drop them unclosed.
            self._given.dispose(close=False)
        self._adopted = True
        return self._given

    def _engine_options(self) -> dict[str, Any]:
        options = {
            k: v
            for k, v in self._settings.items()
            if k not in ("connect_timeout", "statement_timeout", "copy_threshold")
        }
        connect_args = dict(options.pop("connect_args", {}))
        assert self._url is not None
        if "connect_timeout" not in make_url(self._url).query:
            connect_args.setdefault(
                "connect_timeout", max(2, round(self._settings["connect_timeout"]))
            )
        timeout = f"-c statement_timeout={round(self.statement_timeout * 1000)}"
        # Options given later on the server's command line win, so the caller's come last.
        connect_args["options"] = f"{timeout} {connect_args.get('options', '')}".strip()
        return {"isolation_level": "AUTOCOMMIT", **options, "connect_args": connect_args}

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine whose pool lends this backend its connections."""
        return self._engines.get()

    def _run(self, action: str, work: Callable[[Connection], T]) -> T:
        """Return ``work(connection)`` run on a pooled connection in autocommit mode, with
        driver errors raised as BackendError."""
        if self._closed:
            raise BackendError(f"The backend on {self._store} is closed; open a new one.")
        engine = self.engine
        pool_size = getattr(engine.pool, "size", None)
        reconnects = pool_size() if callable(pool_size) else 5
        with store_errors(self._store, action, (psycopg.Error,)):
            while True:
                try:
                    fairy = engine.raw_connection()
                except DBAPIError as exc:
                    # The driver's own error says what failed, without SQLAlchemy's wrapping.
                    raise (exc.orig or exc) from None
                conn = cast(Connection, fairy.driver_connection)
                try:
                    if conn.autocommit:
                        return work(conn)
                    conn.autocommit = True  # a passed-in engine's connection; free when idle
                    try:
                        return work(conn)
                    finally:
                        if not conn.broken:
                            conn.autocommit = False
                except psycopg.OperationalError as exc:
                    if not conn.broken:
                        raise
                    fairy.invalidate(exc)
                    if reconnects == 0:
                        raise
                    reconnects -= 1
                finally:
                    fairy.close()

    def _settle(
        self, conn: Connection, action: str, attempt: Callable[[], tuple[Any, ...]]
    ) -> tuple[Any, ...]:
        """Return the row of ``attempt()``, a statement that changes a session, running it
        again while it answers ``stale`` (its last column) or meets a concurrent writer."""
        give_up = time.monotonic() + self.statement_timeout
        while True:
            try:
                row = attempt()
                if not row[-1]:
                    return row
            except _CONFLICTS:
                if time.monotonic() > give_up:
                    raise
            if time.monotonic() > give_up:
                raise BackendError(
                    f"Could not {action} {self._store}: other writers kept changing the "
                    f"session for {self.statement_timeout:g} s. Try again, or write each "
                    "session from fewer places at once."
                )

    def _one(self, conn: Connection, name: str, params: dict[str, Any]) -> tuple[Any, ...]:
        with conn.cursor(binary=True) as cursor:
            cursor.execute(self._sql[name], params)
            row: tuple[Any, ...] | None = cursor.fetchone()
        assert row is not None
        return row

    def _rows(self, action: str, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        def work(conn: Connection) -> list[tuple[Any, ...]]:
            with conn.cursor(binary=True) as cursor:
                cursor.execute(self._sql[name], params)
                return cursor.fetchall()

        return self._run(action, work)

    def _change(self, action: str, name: str, params: dict[str, Any]) -> tuple[Any, ...]:
        return self._run(
            action, lambda conn: self._settle(conn, action, lambda: self._one(conn, name, params))
        )

    def _params(self, session: str, now: float, **more: Any) -> dict[str, Any]:
        sid = session.encode()
        return {"ns": self.namespace, "h": _digest(sid), "sid": sid, "now": now, **more}

    def _create_tables(self) -> None:
        def create(conn: Connection) -> None:
            exists = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                (self.sessions_table, self.values_table),
            ).fetchone()
            # Checking first lets a user without the CREATE privilege use existing tables.
            if exists is not None and exists[0]:
                return
            with conn.transaction():
                # CREATE ... IF NOT EXISTS can still fail when two sessions run it at once;
                # an advisory lock held until commit makes them take turns.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    (f"dash_database:{self.sessions_table}",),
                )
                conn.execute(self._sql["CREATE"])

        self._run("create the tables on", create)

    # -- the backend protocol -------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        found = self.get_versioned(session, key, now)
        return None if found is None else found[0]

    def get_versioned(self, session: str, key: str, now: float) -> tuple[bytes, int] | None:
        name = key.encode()
        rows = self._rows(
            "read from", "GET", self._params(session, now, kh=_digest(name), key=name)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def set_many(
        self,
        session: str,
        items: Mapping[str, bytes],
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
    ) -> None:
        self._write(session, items, None, deadline, now, version, max_bytes)

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
    ) -> bool:
        return self._write(
            session, {key: value}, expected, deadline, now, version, max_bytes, check=True
        )

    def _write(
        self,
        session: str,
        items: Mapping[str, bytes],
        expected: int | None,
        deadline: float | None,
        now: float,
        version: int,
        max_bytes: int | None,
        check: bool = False,
    ) -> bool:
        rows = [
            (_digest(name), name, value)
            for name, value in ((k.encode(), v) for k, v in items.items())
        ]
        params = self._params(
            session,
            now,
            deadline=deadline,
            version=version,
            max_bytes=max_bytes,
            check=check,
            expected=expected,
        )
        if sum(len(value) for _, _, value in rows) >= self.copy_threshold:
            work = self._staged(rows, params)
        else:
            params["key_hashes"] = [h for h, _, _ in rows]
            params["keys"] = [k for _, k, _ in rows]
            params["values"] = [v for _, _, v in rows]

            def work(conn: Connection) -> tuple[Any, ...]:
                return self._settle(conn, "write to", lambda: self._one(conn, "WRITE", params))

        written, matched, before, after, _ = self._run("write to", work)
        if written or not matched:
            return bool(written)
        assert max_bytes is not None  # not written, not stale, matched: the quota refused it
        raise QuotaExceededError.for_write(before, after, max_bytes)

    def _staged(
        self, rows: list[tuple[bytes, bytes, bytes]], params: dict[str, Any]
    ) -> Callable[[Connection], tuple[Any, ...]]:
        def attempt(conn: Connection) -> tuple[Any, ...]:
            with conn.transaction(), conn.cursor(binary=True) as cursor:
                stage(cursor, rows)
                cursor.execute(self._sql["WRITE_STAGED"], params)
                row: tuple[Any, ...] | None = cursor.fetchone()
            assert row is not None
            return row

        return lambda conn: self._settle(conn, "write to", lambda: attempt(conn))

    def delete(self, session: str, key: str, now: float) -> bool:
        name = key.encode()
        removed, _ = self._change(
            "delete from", "DELETE", self._params(session, now, kh=_digest(name))
        )
        return bool(removed)

    def keys(self, session: str, now: float) -> list[str]:
        rows = self._rows("read from", "KEYS", self._params(session, now))
        return [row[0].decode() for row in rows]

    def clear(self, session: str, now: float) -> int:
        removed, _ = self._change("delete from", "CLEAR", self._params(session, now))
        return int(removed)

    def touch(self, session: str, deadline: float, now: float) -> None:
        params = self._params(session, now, deadline=deadline)
        self._run("write to", lambda conn: conn.execute(self._sql["TOUCH"], params))

    def rename(self, session: str, new_session: str, now: float) -> int:
        if new_session == session:
            return len(self.keys(session, now))
        new_sid = new_session.encode()
        params = self._params(session, now, new_h=_digest(new_sid), new_sid=new_sid)
        moved, _ = self._change("write to", "RENAME", params)
        return int(moved)

    def session_bytes(self, session: str, now: float) -> int:
        rows = self._rows("read from", "SESSION_BYTES", self._params(session, now))
        return int(rows[0][0]) if rows else 0

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        params = {"ns": self.namespace, "now": now, "after": _after(cursor), "limit": limit + 1}
        rows = self._rows("read from", "SESSIONS", params)
        page = [
            SessionInfo(sid.decode(), int(keys), int(size), deadline, written)
            for _, sid, keys, size, deadline, written in rows[:limit]
        ]
        return page, _next(rows, limit)

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        params = self._params(session, now, after=_after(cursor), limit=limit + 1)
        rows = self._rows("read from", "SESSION_KEYS", params)
        page = [
            KeyInfo(key.decode(), int(size), int(version)) for _, key, size, version in rows[:limit]
        ]
        return page, _next(rows, limit)

    def stats(self, now: float) -> StoreStats:
        [(sessions, keys, size, expired)] = self._rows(
            "read from", "STATS", {"ns": self.namespace, "now": now}
        )
        return StoreStats(int(sessions), int(keys), int(size), int(expired))

    def purge_expired(self, now: float) -> int:
        params = {"ns": self.namespace, "now": now, "limit": _PURGE_BATCH}
        removed = 0
        while True:
            [(count,)] = self._rows("purge expired sessions from", "PURGE", params)
            removed += int(count)
            if count < _PURGE_BATCH:
                return removed

    def close(self) -> None:
        self._closed = True
        engine = self._engines.take()
        if engine is not None and self._given is None:
            engine.dispose()

    # -- pickling: the URL and options, never the connections ----------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        if self._url is None:
            raise TypeError(
                "A PostgresBackend built from an Engine cannot be pickled: the engine holds "
                "live connections. Build it from a URL (PostgresBackend('postgresql://...')) "
                "to pickle it."
            )
        options = {"table": self.table_name, "schema": self.schema, "namespace": self.namespace}
        # The original instance created the tables already.
        return (_reopen, (self._url, {**options, **self._settings, "create_table": False}))

    def __repr__(self) -> str:
        where = redact_url(self._url) if self._url is not None else self._store
        return (
            f"PostgresBackend({where!r}, table={self.table_name!r}, namespace={self.namespace!r})"
        )


def _reopen(url: str, options: dict[str, Any]) -> PostgresBackend:
    return PostgresBackend(url, **options)


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _after(cursor: str | None) -> bytes:
    """Return the digest a page starts after (an empty one sorts first)."""
    if cursor is None:
        return b""
    try:
        return bytes.fromhex(cursor)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{cursor!r} is not a cursor this backend returned; pass None to start over."
        ) from None


def _next(rows: list[tuple[Any, ...]], limit: int) -> str | None:
    """Return the cursor after a page, or ``None`` when no row follows it."""
    return rows[limit - 1][0].hex() if len(rows) > limit else None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_names(table: object, schema: object, namespace: object) -> None:
    for name, value in [("table", table), ("schema", schema)]:
        if value is not None and (not isinstance(value, str) or not value or "\0" in value):
            raise InvalidArgumentError(
                f"{name} must be a non-empty str without NUL characters, got {value!r}."
            )
    longest = f"{table}_sessions_deadline"
    if len(longest.encode()) > _MAX_IDENTIFIER:
        raise InvalidArgumentError(
            f"table {table!r} is too long: PostgreSQL cuts names at {_MAX_IDENTIFIER} bytes and "
            f"this backend adds up to {len(longest) - len(str(table))} to it. Use a shorter one."
        )
    if not isinstance(namespace, str) or "\0" in namespace:
        raise InvalidArgumentError(
            f"namespace must be a str without NUL characters, got {namespace!r}."
        )


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """Return ``url`` with psycopg 3 as its driver and without this backend's own query
    parameters, and those parameters."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidArgumentError(f"Cannot parse the PostgreSQL URL {redact_url(url)!r}.") from exc
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    own: dict[str, str] = {}
    for name in _OWN_QUERY:
        value = parsed.query.get(name)
        if value is not None:
            own[name] = value if isinstance(value, str) else value[-1]
    parsed = parsed.difference_update_query(_OWN_QUERY)
    return parsed.render_as_string(hide_password=False), own
