"""Sessions in one PostgreSQL table, through SQLAlchemy Core and psycopg 3.

The table (default ``dash_database``; the name and schema are options) has one row per stored
value and one *session row* per session that has a deadline::

    namespace   TEXT    NOT NULL  -- several apps (or tests) can share one table
    session_id  BYTEA   NOT NULL  -- UTF-8 of the session id
    key         BYTEA   NOT NULL  -- UTF-8 of the key; b'\\xff' marks the session row
    value       BYTEA   NOT NULL
    deadline    FLOAT8            -- set on the session row only
    PRIMARY KEY (namespace, session_id, key)
    INDEX <table>_deadline ON (namespace, deadline) WHERE deadline IS NOT NULL

Ids are stored as ``BYTEA`` because PostgreSQL ``TEXT`` cannot hold NUL characters, which ids
may contain. The byte ``0xff`` never occurs in UTF-8, so the session row's key can never be a
user's key.

Expiry is compared with the caller's ``now`` as a bound parameter, never the server's
``NOW()``: the injected clock decides what is expired.

Concurrency: ``set_many`` and ``delete`` read before they write; each runs in one transaction
that first locks the session row (``SELECT ... FOR UPDATE``), so writers of one session take
their turns, and ``set_many`` writes value rows in key order, so two writers never wait on each
other in a cycle. Reads, ``clear``, ``touch`` and ``purge_expired`` are single statements in
autocommit mode. A deadlock or serialization failure reported by the server is retried a few
times.

All SQL is built in :class:`_Statements` from a SQLAlchemy ``Table``, with every identifier
quoted and every value bound. What is PostgreSQL's own (the upsert, ``GREATEST``, the partial
index, the advisory lock around table creation) is in :class:`_PostgresStatements`; another
SQLAlchemy dialect needs only another subclass registered in ``_DIALECTS``.

Processes: the engine's pool checks a connection before handing it out (``pool_pre_ping``), so
the backend reconnects after a server restart. After ``fork()`` the child drops the pool it
inherited without closing the parent's connections (``engine.dispose(close=False)``) and opens
its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..exceptions import BackendError, InvalidArgumentError
from . import redact_url

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Table
    from sqlalchemy.sql import Executable

__all__ = ["DEFAULT_NAMESPACE", "DEFAULT_TABLE", "PostgresBackend"]

#: The table used when none is given.
DEFAULT_TABLE = "dash_database"
#: The namespace used when none is given.
DEFAULT_NAMESPACE = "default"

_SESSION_ROW = b"\xff"
_ATTEMPTS = 3
# URL query parameters read by this backend rather than passed to the driver.
_OWN_QUERY = ("table", "schema", "namespace")
_DRIVERLESS = {"postgres", "postgresql"}

T = TypeVar("T")


def _import_sqlalchemy() -> None:
    try:
        import psycopg  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "The PostgreSQL backend needs SQLAlchemy and psycopg: "
            'pip install "dash-database[postgres]"'
        ) from exc


class _Statements:
    """Every SQL statement of the backend, built once from one ``Table`` with SQLAlchemy Core.

    A subclass per database provides the few methods under "what a dialect provides".

    Statements take their values as bound parameters, by name: ``ns`` (namespace), ``sid``
    (session id bytes), ``key`` (key bytes), ``value``, ``deadline`` and ``now``.
    """

    def __init__(self, table_name: str, schema: str | None) -> None:
        from sqlalchemy import (
            Column,
            Float,
            Index,
            LargeBinary,
            MetaData,
            Table,
            Text,
            and_,
            bindparam,
            delete,
            exists,
            func,
            select,
            update,
        )
        from sqlalchemy.schema import CreateIndex, CreateTable
        from sqlalchemy.sql.elements import quoted_name

        # quote=True: every identifier is quoted in the SQL, whatever the names contain.
        self.metadata = MetaData(schema=schema, quote_schema=True)
        t = self.table = Table(
            table_name,
            self.metadata,
            Column("namespace", Text, primary_key=True, quote=True),
            Column("session_id", LargeBinary, primary_key=True, quote=True),
            Column("key", LargeBinary, primary_key=True, quote=True),
            Column("value", LargeBinary, nullable=False, quote=True),
            Column("deadline", Float(53), nullable=True, quote=True),
            quote=True,
        )
        index = Index(
            quoted_name(f"{table_name}_deadline", quote=True),
            t.c.namespace,
            t.c.deadline,
            **self.partial_index_options(t.c.deadline.is_not(None)),
        )
        #: Creates the table and its index unless they exist.
        self.create: list[Executable] = [
            CreateTable(t, if_not_exists=True),
            CreateIndex(index, if_not_exists=True),
        ]

        ns = bindparam("ns", type_=Text)
        sid = bindparam("sid", type_=LargeBinary)
        key = bindparam("key", type_=LargeBinary)
        value = bindparam("value", type_=LargeBinary)
        deadline = bindparam("deadline", type_=Float(53))
        now = bindparam("now", type_=Float(53))

        def in_session(table: Any) -> Any:
            return and_(table.c.namespace == ns, table.c.session_id == sid)

        session_row = t.alias("session_row")
        value_row = t.alias("value_row")
        expired = exists().where(
            in_session(session_row),
            session_row.c.key == _SESSION_ROW,
            session_row.c.deadline <= now,
        )
        has_values = exists().where(in_session(value_row), value_row.c.key != _SESSION_ROW)
        is_session_row = and_(in_session(t), t.c.key == _SESSION_ROW)

        #: The value of (sid, key) unless the session expired.
        self.get = select(t.c.value).where(in_session(t), t.c.key == key, ~expired)
        #: The keys of sid unless it expired.
        self.keys = select(t.c.key).where(in_session(t), t.c.key != _SESSION_ROW, ~expired)
        #: The deadline of sid, locking its session row until the transaction ends.
        self.lock_deadline = select(t.c.deadline).where(is_session_row).with_for_update()
        #: Every row of sid; returns the key and deadline of each row removed.
        self.delete_session = delete(t).where(in_session(t)).returning(t.c.key, t.c.deadline)
        #: The session row of sid.
        self.delete_deadline = delete(t).where(is_session_row)
        #: The session row of sid when no value of sid is left.
        self.delete_deadline_if_empty = delete(t).where(is_session_row, ~has_values)
        #: Sets the deadline of sid to the later of its deadline and ``deadline``.
        self.set_deadline = self.upsert(
            {
                "namespace": ns,
                "session_id": sid,
                # Named apart from the "key" and "value" parameters of the other statements.
                "key": bindparam("session_row_key", _SESSION_ROW, type_=LargeBinary),
                "value": bindparam("session_row_value", b"", type_=LargeBinary),
                "deadline": deadline,
            },
            {"deadline": self.greatest},
        )
        #: Stores (sid, key) = value; run with a list of parameter sets to store several.
        self.put = self.upsert(
            {"namespace": ns, "session_id": sid, "key": key, "value": value}, {"value": None}
        )
        #: The row of (sid, key); returns its key when it existed.
        self.delete_key = delete(t).where(in_session(t), t.c.key == key).returning(t.c.key)
        #: Moves the deadline of a live sid to ``deadline`` when that is later.
        self.touch = (
            update(t)
            .where(is_session_row, t.c.deadline > now, t.c.deadline < deadline)
            .values(deadline=deadline)
        )
        #: Removes every session of ``ns`` whose deadline is ``<= now``; returns their number.
        expired_sessions = (
            delete(t)
            .where(t.c.namespace == ns, t.c.key == _SESSION_ROW, t.c.deadline <= now)
            .returning(t.c.session_id)
            .cte("expired")
        )
        expired_values = (
            delete(t)
            .where(
                t.c.namespace == ns,
                t.c.key != _SESSION_ROW,
                t.c.session_id.in_(select(expired_sessions.c.session_id)),
            )
            .cte("expired_values")
        )
        self.purge = select(func.count()).select_from(expired_sessions).add_cte(expired_values)

    # -- what a dialect provides --------------------------------------------------------

    def partial_index_options(self, where: Any) -> dict[str, Any]:
        """Return the ``Index`` keyword that limits the index to rows matching ``where``."""
        raise NotImplementedError

    def create_lock(self, conn: Connection) -> None:
        """Serialize table creation between processes, inside the creating transaction."""
        raise NotImplementedError

    def upsert(self, values: dict[str, Any], update: dict[str, Any]) -> Executable:
        """Return an INSERT of ``values`` (column name to expression) that on a primary key
        conflict sets each column named in ``update`` to the new value (``None``) or to
        ``how(old value, new value)``."""
        raise NotImplementedError

    def greatest(self, a: Any, b: Any) -> Any:
        """Return the SQL expression of the larger of ``a`` and ``b``."""
        raise NotImplementedError


class _PostgresStatements(_Statements):
    def partial_index_options(self, where: Any) -> dict[str, Any]:
        return {"postgresql_where": where}

    def create_lock(self, conn: Connection) -> None:
        from sqlalchemy import func, select

        # CREATE TABLE IF NOT EXISTS can still fail when two sessions run it at once (both see
        # no table, one then violates a catalog unique index); an advisory lock held until
        # commit makes them take turns.
        name = f"dash_database:{self.table.fullname}"
        conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))

    def upsert(self, values: dict[str, Any], update: dict[str, Any]) -> Executable:
        from sqlalchemy.dialects.postgresql import insert

        upsert = insert(self.table).values(values)
        excluded = upsert.excluded
        return upsert.on_conflict_do_update(
            index_elements=list(self.table.primary_key.columns),
            set_={
                name: excluded[name] if how is None else how(self.table.c[name], excluded[name])
                for name, how in update.items()
            },
        )

    def greatest(self, a: Any, b: Any) -> Any:
        from sqlalchemy import func

        return func.greatest(a, b)


_DIALECTS: dict[str, Callable[[str, str | None], _Statements]] = {
    "postgresql": _PostgresStatements,
}


class PostgresBackend:
    """Store sessions in one PostgreSQL table.

    Args:
        engine: a URL (``postgresql://user:password@host:port/dbname``; ``postgres://`` and
            ``postgresql://`` use psycopg 3, ``postgresql+psycopg://`` names it explicitly), or a
            ready SQLAlchemy ``Engine``. An engine passed in stays yours: :meth:`close` does not
            dispose of it, and the backend cannot be pickled.
        table: the table's name; a URL may give it as ``?table=...``.
        schema: the schema holding the table (it must exist), or ``None`` for the search path;
            a URL may give it as ``?schema=...``.
        namespace: rows of other namespaces are never seen or touched, so several apps can
            share one table; a URL may give it as ``?namespace=...``.
        create_table: create the table and its index if they do not exist (safe when several
            processes start at once). Pass ``False`` when the database user may not create
            tables and the table was created beforehand.
        **options: keyword arguments for ``sqlalchemy.create_engine`` when ``engine`` is a URL
            (for example ``pool_size``, ``connect_args``).

    Raises:
        ImportError: SQLAlchemy or psycopg is not installed.
        InvalidArgumentError: an option or the engine's dialect cannot be used.
        BackendError: the server cannot be reached or the table cannot be created.
    """

    def __init__(
        self,
        engine: str | Engine,
        *,
        table: str | None = None,
        schema: str | None = None,
        namespace: str | None = None,
        create_table: bool = True,
        **options: Any,
    ) -> None:
        _import_sqlalchemy()
        from sqlalchemy import Engine, create_engine

        self._url: str | None = None
        self._options = dict(options)
        if isinstance(engine, str):
            url, query = _split_url(engine)
            table = query.get("table", table)
            schema = query.get("schema", schema)
            namespace = query.get("namespace", namespace)
            self._url = url
            self._engine = create_engine(url, **{"pool_pre_ping": True, **options})
        elif isinstance(engine, Engine):
            if options:
                raise InvalidArgumentError(
                    f"Options {sorted(options)!r} apply only to a URL; configure the engine "
                    "you pass in yourself."
                )
            self._engine = engine
        else:
            raise InvalidArgumentError(
                "engine must be a postgresql:// URL or a SQLAlchemy Engine, got "
                f"{type(engine).__name__} {engine!r}."
            )
        self.table_name = DEFAULT_TABLE if table is None else table
        self.schema = schema
        self.namespace = DEFAULT_NAMESPACE if namespace is None else namespace
        for name, value in [("table", self.table_name), ("schema", self.schema)]:
            if value is not None and (not isinstance(value, str) or not value or "\0" in value):
                raise InvalidArgumentError(
                    f"{name} must be a non-empty str without NUL characters, got {value!r}."
                )
        if not isinstance(self.namespace, str) or "\0" in self.namespace:
            raise InvalidArgumentError(
                f"namespace must be a str without NUL characters, got {self.namespace!r}."
            )
        dialect = self._engine.dialect.name
        if dialect not in _DIALECTS:
            raise InvalidArgumentError(
                f"The engine's database is {dialect!r}; this backend supports "
                f"{', '.join(sorted(_DIALECTS))}."
            )
        self._sql = _DIALECTS[dialect](self.table_name, self.schema)
        where = self._engine.url
        self._where = f"{where.host or 'localhost'}:{where.port or 5432}/{where.database or ''}"
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        if create_table:
            try:
                self._create_table()
            except BaseException:
                if self._url is not None:
                    self._engine.dispose()
                raise

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine this backend uses."""
        return self._engine

    @property
    def table(self) -> Table:
        """The SQLAlchemy ``Table`` this backend stores its rows in."""
        return self._sql.table

    def _create_table(self) -> None:
        from sqlalchemy import inspect

        def create(conn: Connection) -> None:
            # Checking first lets a user without the CREATE privilege use an existing table.
            if inspect(conn).has_table(self._sql.table.name, schema=self._sql.table.schema):
                return
            self._sql.create_lock(conn)
            for statement in self._sql.create:
                conn.execute(statement)

        self._transaction(create)

    # -- connections and errors ---------------------------------------------------------

    def _checked_engine(self) -> Engine:
        if self._closed:
            raise BackendError(f"The PostgreSQL backend on {self._where} is closed.")
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # The parent's connections are left open for the parent to use.
                    self._engine.dispose(close=False)
                    self._pid = os.getpid()
        return self._engine

    @contextmanager
    def _errors(self) -> Iterator[None]:
        from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

        try:
            yield
        except SQLAlchemyError as exc:
            # The driver's message, not SQLAlchemy's, which repeats the SQL and its parameters.
            detail = str(getattr(exc, "orig", None) or exc).strip()
            # A failed connection has no SQLSTATE; a lost one invalidates the connection.
            lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
            unreachable = isinstance(exc, OperationalError) and (
                getattr(exc.orig, "sqlstate", None) is None
            )
            if lost or unreachable:
                raise BackendError(
                    f"Could not reach PostgreSQL at {self._where}: {detail}. Check that the "
                    "server is running and reachable; the next call tries again."
                ) from exc
            raise BackendError(f"PostgreSQL at {self._where} failed: {detail}") from exc

    def _params(self, session: str, **more: Any) -> dict[str, Any]:
        return {"ns": self.namespace, "sid": _b(session), **more}

    def _autocommit(self, statement: Executable, params: dict[str, Any]) -> list[Any]:
        engine = self._checked_engine()
        with self._errors(), engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            result = conn.execute(statement, params)
            return list(result) if result.returns_rows else []

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        from sqlalchemy.exc import DBAPIError

        engine = self._checked_engine()
        with self._errors():
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    with engine.begin() as conn:
                        return work(conn)
                except DBAPIError as exc:
                    # 40P01 deadlock_detected, 40001 serialization_failure: safe to run again.
                    code = getattr(exc.orig, "sqlstate", None)
                    if code not in ("40P01", "40001") or attempt == _ATTEMPTS:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the backend protocol -------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        rows = self._autocommit(self._sql.get, self._params(session, key=_b(key), now=now))
        return bytes(rows[0][0]) if rows else None

    def set_many(
        self, session: str, items: Mapping[str, bytes], deadline: float | None, now: float
    ) -> None:
        sql, session_params = self._sql, self._params(session)
        # Key order: concurrent writers lock the rows of one session in the same order.
        rows = [
            {**session_params, "key": key, "value": bytes(value)}
            for key, value in sorted((_b(key), value) for key, value in items.items())
        ]

        def write(conn: Connection) -> None:
            current = conn.execute(sql.lock_deadline, session_params).scalar()
            if current is not None and current <= now:
                conn.execute(sql.delete_session, session_params)
                current = None
            if deadline is None:
                if current is not None:
                    conn.execute(sql.delete_deadline, session_params)
            else:
                conn.execute(sql.set_deadline, {**session_params, "deadline": deadline})
            if rows:
                conn.execute(sql.put, rows)

        self._transaction(write)

    def delete(self, session: str, key: str, now: float) -> bool:
        sql, params = self._sql, self._params(session, key=_b(key))

        def remove(conn: Connection) -> bool:
            current = conn.execute(sql.lock_deadline, params).scalar()
            if current is not None and current <= now:
                return False
            removed = conn.execute(sql.delete_key, params).first()
            if removed is not None and current is not None:
                conn.execute(sql.delete_deadline_if_empty, params)
            return removed is not None

        return self._transaction(remove)

    def keys(self, session: str, now: float) -> list[str]:
        rows = self._autocommit(self._sql.keys, self._params(session, now=now))
        return [bytes(row[0]).decode("utf-8") for row in rows]

    def clear(self, session: str, now: float) -> int:
        # One statement: the session row is removed with the values, and returns the deadline.
        removed = self._autocommit(self._sql.delete_session, self._params(session))
        values = 0
        for key, deadline in removed:
            if bytes(key) != _SESSION_ROW:
                values += 1
            elif deadline <= now:
                return 0
        return values

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._autocommit(self._sql.touch, self._params(session, deadline=deadline, now=now))

    def purge_expired(self, now: float) -> int:
        rows = self._autocommit(self._sql.purge, {"ns": self.namespace, "now": now})
        return int(rows[0][0])

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._url is None:
            return
        # In a forked child the connections are the parent's: drop them without closing.
        self._engine.dispose(close=self._pid == os.getpid())

    # -- pickling: the URL and options, never the connections ------------------------------

    def __getstate__(self) -> dict[str, Any]:
        if self._url is None:
            raise TypeError(
                "A PostgresBackend built from an Engine cannot be pickled: the engine holds "
                "live connections. Build it from a URL (PostgresBackend('postgresql://...')) "
                "to pickle it."
            )
        return {
            "url": self._url,
            "table": self.table_name,
            "schema": self.schema,
            "namespace": self.namespace,
            "options": self._options,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        # The original instance created the table already.
        self.__init__(  # type: ignore[misc]
            state["url"],
            table=state["table"],
            schema=state["schema"],
            namespace=state["namespace"],
            create_table=False,
            **state["options"],
        )

    def __repr__(self) -> str:
        where = redact_url(self._url) if self._url is not None else self._where
        return (
            f"PostgresBackend({where!r}, table={self._sql.table.fullname!r}, "
            f"namespace={self.namespace!r})"
        )


def _b(text: str) -> bytes:
    return text.encode("utf-8")


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """Return ``url`` with psycopg 3 as its driver and without this backend's own query
    parameters, and those parameters."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidArgumentError(f"Cannot parse the PostgreSQL URL {redact_url(url)!r}.") from exc
    if parsed.drivername in _DRIVERLESS:
        parsed = parsed.set(drivername="postgresql+psycopg")
    own: dict[str, str] = {}
    for name in _OWN_QUERY:
        value = parsed.query.get(name)
        if value is not None:
            own[name] = value if isinstance(value, str) else value[-1]
    parsed = parsed.difference_update_query(_OWN_QUERY)
    return parsed.render_as_string(hide_password=False), own
