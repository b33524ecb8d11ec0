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

Round trips: every operation is one SQL statement in autocommit mode, so it costs one round
trip, and PostgreSQL runs each statement atomically: ``set_many`` writes all its items and the
deadline, or nothing. Until the backend writes a deadline or meets a session row, ``set_many``
without a deadline and ``clear`` are first a plain upsert and a plain ``DELETE`` guarded by the
absence of the session row; when the row exists they change nothing and the full statement runs
as a second round trip (after that, the full statement runs at once). A ``set_many`` whose
values add up to 16 MiB or more is one transaction: ``COPY`` into a temporary table, then the
full statement reading from it (see ``_store_staged``). The full ``set_many`` and ``clear`` are
built of data-modifying CTEs (``WITH ... DELETE/INSERT``); PostgreSQL runs the parts of one
statement in no set order unless one part reads another, so each part waits for the one before
by reading it in an always-true condition (see ``after``).

Concurrency: ``set_many`` and ``clear`` first lock the session row (``SELECT ... FOR UPDATE``),
then touch value rows, ``set_many`` in key order, so two writers never wait on each other in a
cycle. The lock also returns the session row as the last writer committed it, although the
statement's snapshot may be older: a writer that finds the session expired discards its old
values, and the next writer, which waited for it, finds the session live. A deadlock or
serialization failure reported by the server is retried a few times. A statement's snapshot is
taken before it waits for a lock, so a statement that waited for a writer cannot see the rows
that writer added, although it follows the rows the writer changed. For ``clear`` on a session
with a session row, which every writer changes, the statement also reports whether the session
row it locked is newer than its snapshot (by the row's ``xmin``), and then runs again, so it
removes the whole write (else the keys the writer added would stay without a deadline, never to
expire). The plain paths (no session row) lock no session row: they touch only value rows, in
key order. A session row that a concurrent writer adds while a plain write runs stays, as if
that writer had come second. A plain ``clear`` that waits for a multi-key write which changes
some of the session's keys and adds others removes the changed ones and leaves the added ones
(without a deadline only in an app without ``ttl``, where no key has one); closing that would
cost every plain ``clear`` a check of each row it removes.

``delete`` leaves the session row when it removes the last value, so the session keeps its
deadline (and ``purge_expired`` counts it once it expires).

All SQL is built in :class:`_Statements` from a SQLAlchemy ``Table``, with every identifier
quoted and every value bound, and compiled once to the driver's SQL text. What is PostgreSQL's own
(the upsert, ``GREATEST``, ``count(*) FILTER``, the partial index, the advisory lock around table
creation) is in :class:`_PostgresStatements`; another SQLAlchemy dialect needs another subclass
registered in ``_DIALECTS``, and a driver whose connections offer psycopg's ``autocommit``,
``broken`` and ``cursor(binary=True)``.

Connections: the engine's pool lends psycopg connections, and the statements run on them
directly, with binary results, without SQLAlchemy's per-statement machinery (which costs more
than the round trip itself for small values, and fetches ``BYTEA`` as hex text). Engine events
such as ``before_cursor_execute`` therefore do not see these statements. A backend built from a
URL keeps up to the pool's size of connections checked out between calls, each with one binary
cursor, in autocommit mode (a passed-in engine's connections go back to its pool after each
call). A read of 64 KiB or more closes its cursor, so the result leaves memory at once. A
connection found lost
(the server restarted, or ended it) is dropped and the operation runs once more on another
connection; connections the pool held from before that loss are checked with a ping before their
next use. So no round trip is spent checking a connection in the common case, and the backend
reconnects after a server restart. One edge: when the connection is lost after the server
committed ``delete`` or ``clear`` but before their answer arrived, the second run finds nothing
left to remove and returns ``False`` or ``0``. After ``fork()`` the child drops the pool it
inherited without closing the parent's connections (``engine.dispose(close=False)``) and opens
its own.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..exceptions import BackendError, InvalidArgumentError
from . import redact_url

if TYPE_CHECKING:
    from sqlalchemy import Connection, Dialect, Engine, PoolProxiedConnection, Table
    from sqlalchemy.sql import ClauseElement, Executable

__all__ = ["DEFAULT_NAMESPACE", "DEFAULT_TABLE", "PostgresBackend"]

#: The table used when none is given.
DEFAULT_TABLE = "dash_database"
#: The namespace used when none is given.
DEFAULT_NAMESPACE = "default"

_SESSION_ROW = b"\xff"
# A write whose values add up to at least this many bytes copies them into a temporary table
# first (see PostgresBackend._store_staged).
_COPY_BYTES = 16 * 1024 * 1024
_STAGED = "dash_database_staged"
# A value read of at least this many bytes closes its cursor instead of keeping it (see get).
_RELEASE_RESULT_BYTES = 64 * 1024
# PostgreSQL's binary COPY format: signature, flags, header extension length; then per row
# the number of fields and each field's length before its bytes; then -1.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_ROW = struct.Struct("!hi")
_COPY_LENGTH = struct.Struct("!i")
_COPY_TRAILER = struct.pack("!h", -1)
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
            'pip install "sqlalchemy>=2.0" "psycopg[binary]>=3.1" '
            '(from a clone: pip install "./dash_database[postgres]").'
        ) from exc


class _Query:
    """A statement compiled once for one dialect: the driver's SQL text, and the values of the
    parameters the statement fixes itself (such as the session row's key)."""

    __slots__ = ("constants", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        from sqlalchemy import ARRAY, LargeBinary
        from sqlalchemy.sql.compiler import SQLCompiler

        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        sql = compiled.string
        # Bytes go to the server in binary format (psycopg's %b placeholder): as text, bytea
        # is sent hex-escaped, which doubles the bytes to copy and the memory a large value
        # needs on its way out.
        for name, bind in compiled.binds.items():
            kind = bind.type.item_type if isinstance(bind.type, ARRAY) else bind.type
            if isinstance(kind, LargeBinary):
                sql = sql.replace(f"%({name})s", f"%({name})b")
        self.sql: str = sql
        self.constants: dict[str, Any] = {
            name: value for name, value in compiled.params.items() if value is not None
        }

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Return ``values`` with the statement's constant parameters added."""
        return {**self.constants, **values} if self.constants else values


class _Statements:
    """Every SQL statement of the backend, built once from one ``Table`` with SQLAlchemy Core
    and compiled for ``dialect``.

    A subclass per database provides the few methods under "what a dialect provides".

    Statements take their values as bound parameters, by name: ``ns`` (namespace), ``sid``
    (session id bytes), ``key`` (key bytes), ``value``, ``keys`` and ``values`` (lists of
    bytes), ``deadline`` and ``now``; :attr:`_Query.constants` holds the rest.
    """

    def __init__(self, table_name: str, schema: str | None, dialect: Dialect) -> None:
        from sqlalchemy import (
            ARRAY,
            Column,
            Float,
            Index,
            LargeBinary,
            MetaData,
            Table,
            Text,
            all_,
            and_,
            bindparam,
            case,
            delete,
            exists,
            func,
            literal_column,
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

        def compiled(statement: Any) -> _Query:
            return _Query(statement, dialect)

        ns = bindparam("ns", type_=Text)
        sid = bindparam("sid", type_=LargeBinary)
        key = bindparam("key", type_=LargeBinary)
        deadline = bindparam("deadline", type_=Float(53))
        now = bindparam("now", type_=Float(53))
        # A named constant, so that the compiled SQL text needs no generated parameter names.
        session_row_key = bindparam("session_row_key", _SESSION_ROW, type_=LargeBinary)

        def in_session(table: Any) -> Any:
            return and_(table.c.namespace == ns, table.c.session_id == sid)

        def is_session_row(table: Any) -> Any:
            return and_(in_session(table), table.c.key == session_row_key)

        session_row = t.alias("session_row")
        expired = exists().where(is_session_row(session_row), session_row.c.deadline <= now)

        #: The value of (sid, key) unless the session expired.
        self.get = compiled(select(t.c.value).where(in_session(t), t.c.key == key, ~expired))
        #: The keys of sid unless it expired.
        self.keys = compiled(
            select(t.c.key).where(in_session(t), t.c.key != session_row_key, ~expired)
        )
        # Writers of a session lock its session row before any other row they write, and value
        # rows in key order, so two writers never wait on each other in a cycle. A row's xmin
        # names the transaction that wrote its current version (see clear below).
        xmin: Any = literal_column("xmin").label("xmin")
        locked = select(t.c.deadline, xmin).where(is_session_row(t)).with_for_update().cte("locked")

        def after(cte: Any) -> Any:
            # Always true; PostgreSQL evaluates this uncorrelated subquery once, running ``cte``
            # to its end, before the statement it filters touches a row. That orders the parts
            # of one statement, which PostgreSQL otherwise runs in no set order.
            return select(func.count()).select_from(cte).scalar_subquery() >= literal_column("0")

        keys = bindparam("keys", type_=ARRAY(LargeBinary))
        values = bindparam("values", type_=ARRAY(LargeBinary))
        value = bindparam("value", type_=LargeBinary)

        #: A temporary table that large values are copied into before a statement stores them.
        staged = Table(
            _STAGED,
            MetaData(),
            Column("key", LargeBinary, nullable=False),
            Column("value", LargeBinary, nullable=False),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DELETE ROWS",
        )
        self.create_staged_sql = str(
            CreateTable(staged, if_not_exists=True).compile(dialect=dialect)
        )
        self.copy_staged_sql = (
            f"COPY {dialect.identifier_preparer.quote(_STAGED)} (key, value) "
            "FROM STDIN (FORMAT BINARY)"
        )

        def items_of(many: bool | None) -> tuple[Any, Any]:
            """Return the rows to store (``key``, ``value``), and the condition that a value
            row of the table is not one of them: from the staged table (``many`` is None),
            from the arrays ``keys``/``values``, or from ``key``/``value``."""
            items: Any
            if many is None:
                items = select(staged.c.key, staged.c.value).order_by(staged.c.key)
                return items.subquery("items"), t.c.key.not_in(
                    select(staged.c.key).scalar_subquery()
                )
            if many:
                items = func.unnest(keys, values).table_valued("key", "value")
                return items.render_derived("items"), t.c.key != all_(keys)
            # Arrays cost the driver more than two plain parameters.
            items = select(key.label("key"), value.label("value"))
            return items.subquery("items"), t.c.key != key

        def store(many: bool | None, with_deadline: bool) -> _Query:
            items, written = items_of(many)
            # FOR UPDATE returns the session row as the last writer committed it, after waiting
            # for that writer, although the statement's snapshot may be older.
            discarded = (
                delete(t)
                .where(
                    in_session(t),
                    t.c.key != session_row_key,
                    # Written keys are overwritten below: a row must not be changed twice.
                    written,
                    exists().where(locked.c.deadline <= now),
                )
                .returning(t.c.key)
                .cte("discarded")
            )
            if with_deadline:
                deadline_step = self.upsert(
                    ["namespace", "session_id", "key", "value", "deadline"],
                    select(
                        ns,
                        sid,
                        session_row_key,
                        bindparam("session_row_value", b"", type_=LargeBinary),
                        deadline,
                    ).where(after(discarded)),
                    # An expired deadline is replaced, a live one kept if later.
                    {
                        "deadline": lambda old, new: case(
                            (old <= now, new), else_=self.greatest(old, new)
                        )
                    },
                ).returning(t.c.key)
            else:
                deadline_step = (
                    delete(t).where(is_session_row(t), after(discarded)).returning(t.c.key)
                )
            step = deadline_step.cte("deadline_step")
            statement = self.upsert(
                ["namespace", "session_id", "key", "value"],
                select(ns, sid, items.c.key, items.c.value).where(after(step)),
                {"value": None},
            )
            return compiled(statement.add_cte(locked, discarded, step))

        no_session_row = ~exists().where(is_session_row(session_row))

        def store_plain(many: bool) -> _Query:
            items, _ = items_of(many)
            statement = self.upsert(
                ["namespace", "session_id", "key", "value"],
                select(ns, sid, items.c.key, items.c.value).where(no_session_row),
                {"value": None},
            )
            return compiled(statement)

        #: Store ``key`` = ``value`` (or ``keys[i]`` = ``values[i]``) unless sid has a session
        #: row (its row count: the rows written, 0 when it has one). Without a deadline to set
        #: or drop, this plain upsert does the whole write, for much less than the statements
        #: below.
        self.store_one_plain = store_plain(many=False)
        self.store_many_plain = store_plain(many=True)
        #: Discard the values of sid when it expired, set the deadline of sid to the later of
        #: its deadline and ``deadline`` (or drop it), and store ``key`` = ``value``, or
        #: ``keys[i]`` = ``values[i]`` for every i with ``keys`` in ascending order.
        self.store_one = store(many=False, with_deadline=True)
        self.store_one_without_deadline = store(many=False, with_deadline=False)
        self.store_many = store(many=True, with_deadline=True)
        self.store_many_without_deadline = store(many=True, with_deadline=False)
        self.store_staged = store(many=None, with_deadline=True)
        self.store_staged_without_deadline = store(many=None, with_deadline=False)
        #: Removes (sid, key) unless sid expired; returns the key when it removed it.
        self.delete_key = compiled(
            delete(t).where(in_session(t), t.c.key == key, ~expired).returning(t.c.key)
        )
        #: Removes every row of sid unless it has a session row (its row count: 0 when sid
        #: was empty, or has a session row and nothing was removed).
        self.clear_plain = compiled(delete(t).where(in_session(t), no_session_row))
        # The session row as the statement's snapshot shows it, and as locked: newer when a
        # writer changed or removed it and committed after the snapshot was taken (FOR UPDATE
        # waited for it).
        seen_row = select(xmin).where(is_session_row(t)).cte("seen_row")
        #: Removes every row of sid; returns the number of values removed, whether sid had
        #: expired, and whether its session row changed after the statement's snapshot: then
        #: the writer that changed it may have added rows the snapshot cannot show, and the
        #: statement must run again.
        cleared = (
            delete(t)
            .where(in_session(t), after(locked))
            .returning(t.c.key, t.c.deadline)
            .cte("cleared")
        )
        self.clear = compiled(
            select(
                self.count_where(cleared.c.key != session_row_key),
                func.coalesce(
                    func.bool_or(and_(cleared.c.key == session_row_key, cleared.c.deadline <= now)),
                    literal_column("false"),
                ),
                select(locked.c.xmin)
                .scalar_subquery()
                .is_distinct_from(select(seen_row.c.xmin).scalar_subquery()),
            ).add_cte(seen_row)
        )
        #: Moves the deadline of a live sid to ``deadline`` when that is later.
        self.touch = compiled(
            update(t)
            .where(is_session_row(t), t.c.deadline > now, t.c.deadline < deadline)
            .values(deadline=deadline)
        )
        #: Removes every session of ``ns`` whose deadline is ``<= now``; returns their number.
        expired_sessions = (
            delete(t)
            .where(t.c.namespace == ns, t.c.key == session_row_key, t.c.deadline <= now)
            .returning(t.c.session_id)
            .cte("expired")
        )
        expired_values = (
            delete(t)
            .where(
                t.c.namespace == ns,
                t.c.key != session_row_key,
                t.c.session_id.in_(select(expired_sessions.c.session_id)),
            )
            .cte("expired_values")
        )
        self.purge = compiled(
            select(func.count()).select_from(expired_sessions).add_cte(expired_values)
        )

    # -- what a dialect provides --------------------------------------------------------

    def partial_index_options(self, where: Any) -> dict[str, Any]:
        """Return the ``Index`` keyword that limits the index to rows matching ``where``."""
        raise NotImplementedError

    def create_lock(self, conn: Connection) -> None:
        """Serialize table creation between processes, inside the creating transaction."""
        raise NotImplementedError

    def upsert(self, columns: list[str], rows: Any, update: dict[str, Any]) -> Any:
        """Return an INSERT of the rows of the SELECT ``rows`` into ``columns`` that on a primary
        key conflict sets each column named in ``update`` to the new value (``None``) or to
        ``how(old value, new value)``."""
        raise NotImplementedError

    def greatest(self, a: Any, b: Any) -> Any:
        """Return the SQL expression of the larger of ``a`` and ``b``."""
        raise NotImplementedError

    def count_where(self, condition: Any) -> Any:
        """Return the SQL aggregate counting the rows that match ``condition``."""
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

    def upsert(self, columns: list[str], rows: Any, update: dict[str, Any]) -> Any:
        from sqlalchemy.dialects.postgresql import insert

        upsert = insert(self.table).from_select(columns, rows)
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

    def count_where(self, condition: Any) -> Any:
        from sqlalchemy import func

        return func.count().filter(condition)


_DIALECTS: dict[str, Callable[[str, str | None, Dialect], _Statements]] = {
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
        from sqlalchemy.exc import SQLAlchemyError

        self._url: str | None = None
        self._options = dict(options)
        if isinstance(engine, str):
            url, query = _split_url(engine)
            table = query.get("table", table)
            schema = query.get("schema", schema)
            namespace = query.get("namespace", namespace)
            self._url = url
            # Checking a connection in costs no ROLLBACK: this backend returns connections
            # outside any transaction, and a SQLAlchemy Connection rolls back its own
            # transaction when it closes.
            self._engine = create_engine(url, **{"pool_reset_on_return": None, **options})
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
        driver = self._engine.dialect.driver
        if self._engine.dialect.is_async:
            driver += " (asyncio)"
        if driver != "psycopg":
            raise InvalidArgumentError(
                f"The engine's driver is {driver!r}; this backend runs its statements on psycopg 3 "
                "connections: use a postgresql+psycopg:// URL."
            )
        self._sql = _DIALECTS[dialect](self.table_name, self.schema, self._engine.dialect)
        where = self._engine.url
        self._where = f"{where.host or 'localhost'}:{where.port or 5432}/{where.database or ''}"
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        # Connections this backend keeps checked out between calls, in autocommit mode (see
        # _checkout). Only for an engine it created: a passed-in engine's pool stays its owner's.
        self._idle: list[PoolProxiedConnection] = []
        self._keep_idle = _pool_size(self._engine) if self._url is not None else 0
        self._cursor_key = object()
        # Whether this backend has written a deadline or met a session row. Until then writes
        # without a deadline and delete-all try their plain statement first (see set_many).
        self._deadlines_seen = False
        # Counts the lost connections this backend found; a pooled connection records in its
        # info, under this backend's own key, the count when it was last known to work.
        self._generation = 0
        self._generation_key = object()
        self._dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        self._sqlalchemy_error = SQLAlchemyError
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

        with self._errors(), self._checked_engine().begin() as conn:
            create(conn)

    # -- connections and errors ---------------------------------------------------------

    def _checked_engine(self) -> Engine:
        if self._closed:
            raise BackendError(f"The PostgreSQL backend on {self._where} is closed.")
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # The parent's connections are left open for the parent to use, and kept
                    # referenced so that no finalizer closes them here.
                    _inherited.append(self._idle)
                    self._idle = []
                    self._engine.dispose(close=False)
                    self._pid = os.getpid()
        return self._engine

    @contextmanager
    def _errors(self) -> Iterator[None]:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            yield
        except SQLAlchemyError as exc:
            raise self._backend_error(exc) from exc

    def _backend_error(self, exc: Exception) -> BackendError:
        """Return the BackendError to raise for the SQLAlchemy exception ``exc``."""
        from sqlalchemy.exc import DBAPIError, OperationalError

        # The driver's message, not SQLAlchemy's, which repeats the SQL and its parameters.
        detail = str(getattr(exc, "orig", None) or exc).strip()
        # A failed connection has no SQLSTATE; a lost one invalidates the connection.
        lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
        unreachable = isinstance(exc, OperationalError) and (
            getattr(exc.orig, "sqlstate", None) is None
        )
        if lost or unreachable:
            return BackendError(
                f"Could not reach PostgreSQL at {self._where}: {detail}. Check that the "
                "server is running and reachable; the next call tries again."
            )
        return BackendError(f"PostgreSQL at {self._where} failed: {detail}")

    def _params(self, session: str, **more: Any) -> dict[str, Any]:
        return {"ns": self.namespace, "sid": _b(session), **more}

    def _checkout(self, engine: Engine) -> PoolProxiedConnection:
        """Return a connection, first pinging one held from before the last connection this
        backend found lost, since the server may have dropped it too.

        A connection this backend kept from an earlier call is taken first: checking one out
        of SQLAlchemy's pool and back in costs more than a small statement's round trip."""
        while True:
            try:
                fairy = self._idle.pop()
            except IndexError:
                fairy = engine.raw_connection()
            generation = self._generation
            # A connection this backend has not used yet may predate a loss too, unless no
            # loss has happened.
            seen = fairy.info.get(self._generation_key, -1 if generation else 0)
            if seen >= generation:
                fairy.info[self._generation_key] = generation
                return fairy
            connection: Any = fairy.dbapi_connection
            try:
                engine.dialect.do_ping(connection)
            except self._dbapi_error as exc:
                if self._drop(fairy, exc):
                    continue
                raise
            except BaseException as exc:
                fairy.invalidate(exc)
                fairy.close()
                raise
            fairy.info[self._generation_key] = generation
            return fairy

    def _drop(self, fairy: PoolProxiedConnection, exc: Any) -> bool:
        """Release ``fairy`` after ``exc``; return whether ``exc`` means the connection is lost,
        in which case the pool discards it."""
        lost = bool(self._engine.dialect.is_disconnect(exc, fairy.dbapi_connection, None))
        if lost:
            # Every connection the pool holds now is older than this loss.
            seen = fairy.info.get(self._generation_key, self._generation)
            self._generation = max(self._generation, seen + 1)
            fairy.invalidate(exc)
        fairy.close()
        return lost

    def _run(self, work: Callable[[Any], T]) -> T:
        """Return ``work(cursor)``, run on a binary cursor of a pooled psycopg connection in
        autocommit mode.

        A lost connection is dropped and ``work`` runs once more on another; a deadlock or
        serialization failure runs it again up to ``_ATTEMPTS`` times in all. Errors are raised
        as BackendError, chained from what SQLAlchemy raises for the driver's error.
        """
        engine = self._checked_engine()
        reconnected, attempt = False, 1
        while True:
            try:
                fairy = self._checkout(engine)
            except self._dbapi_error as exc:
                error = self._wrap(exc, False)
                raise self._backend_error(error) from error
            except self._sqlalchemy_error as exc:
                raise self._backend_error(exc) from exc
            conn: Any = fairy.driver_connection
            try:
                cursor = self._cursor(fairy)
                if conn.autocommit:
                    result = work(cursor)
                else:
                    # With psycopg, neither change costs a round trip.
                    conn.autocommit = True
                    try:
                        result = work(cursor)
                    finally:
                        if not conn.broken and len(self._idle) >= self._keep_idle:
                            # Back to the pool as it came, for the engine's other users.
                            conn.autocommit = False
            except self._dbapi_error as exc:
                lost = self._drop(fairy, exc)
                if lost and not reconnected:
                    reconnected = True
                    continue
                # 40P01 deadlock_detected, 40001 serialization_failure: safe to run again.
                if getattr(exc, "sqlstate", None) in ("40P01", "40001") and attempt < _ATTEMPTS:
                    attempt += 1
                    continue
                error = self._wrap(exc, lost)
                raise self._backend_error(error) from error
            except BaseException as exc:
                # Interrupted (KeyboardInterrupt, say), the connection may be mid-statement.
                fairy.invalidate(exc)
                fairy.close()
                raise
            if cursor.closed:
                # ``work`` let go of a large result: so does the connection.
                fairy.info.pop(self._cursor_key, None)
            if conn.autocommit and len(self._idle) < self._keep_idle:
                with self._lock:
                    if not self._closed:
                        self._idle.append(fairy)
                        return result
            fairy.close()
            return result

    def _cursor(self, fairy: PoolProxiedConnection) -> Any:
        """Return the binary cursor kept with ``fairy``'s connection (one per connection)."""
        conn: Any = fairy.driver_connection
        cursor = fairy.info.get(self._cursor_key)
        if cursor is None or cursor.closed or cursor.connection is not conn:
            cursor = fairy.info[self._cursor_key] = conn.cursor(binary=True)
        return cursor

    def _wrap(self, exc: Exception, lost: bool) -> Exception:
        """Return what SQLAlchemy raises for the driver's error ``exc`` when it runs a statement
        itself, chained from ``exc``."""
        from sqlalchemy.exc import DBAPIError

        error = DBAPIError.instance(
            None,
            None,
            exc,
            self._dbapi_error,
            connection_invalidated=lost,
            dialect=self._engine.dialect,
        )
        error.__cause__ = exc
        return error

    def _statement(self, query: _Query, params: dict[str, Any], take: Callable[[Any], T]) -> T:
        """Run one statement in one round trip; return ``take(cursor)`` after it ran."""

        def run(cursor: Any) -> T:
            cursor.execute(query.sql, query.params(params))
            return take(cursor)

        return self._run(run)

    def _one(
        self, query: _Query, params: dict[str, Any], rows: bool = True
    ) -> list[tuple[Any, ...]]:
        """Run one statement in one round trip; return its rows when ``rows``."""
        return self._statement(query, params, _all_rows if rows else _no_rows)

    def _count(self, query: _Query, params: dict[str, Any]) -> int:
        """Run one statement in one round trip; return the number of rows it changed (the
        server reports it with the statement's completion, so no row is sent back)."""
        return self._statement(query, params, _row_count)

    # -- the backend protocol -------------------------------------------------------------

    def get(self, session: str, key: str, now: float) -> bytes | None:
        params = self._params(session, key=_b(key), now=now)
        return self._statement(self._sql.get, params, _value)

    def set_many(
        self, session: str, items: Mapping[str, bytes], deadline: float | None, now: float
    ) -> None:
        sql = self._sql
        if sum(len(value) for value in items.values()) >= _COPY_BYTES:
            self._run(lambda cursor: self._store_staged(cursor, session, items, deadline, now))
            return
        if len(items) == 1:
            [(key, value)] = items.items()
            params = self._params(session, key=_b(key), value=bytes(value), now=now)
            query = sql.store_one_without_deadline if deadline is None else sql.store_one
        else:
            # Key order: concurrent writers lock the rows of one session in the same order.
            pairs = sorted((_b(key), bytes(value)) for key, value in items.items())
            params = self._params(
                session,
                keys=[key for key, _ in pairs],
                values=[value for _, value in pairs],
                now=now,
            )
            query = sql.store_many_without_deadline if deadline is None else sql.store_many
        if deadline is None:
            if not self._deadlines_seen:
                # While the session has no session row there is no deadline to drop: the plain
                # upsert does it all. It writes nothing when the row exists, and the full
                # statement runs. A session row that another writer adds meanwhile stays, as if
                # that write had come after this one.
                plain = sql.store_one_plain if len(items) == 1 else sql.store_many_plain
                if self._count(plain, params):
                    return
                self._deadlines_seen = True
        else:
            self._deadlines_seen = True
            params["deadline"] = deadline
        self._one(query, params, rows=False)

    def _store_staged(
        self,
        cursor: Any,
        session: str,
        items: Mapping[str, bytes],
        deadline: float | None,
        now: float,
    ) -> None:
        """Copy ``items`` into the staged table and store them from there, in one transaction.

        COPY streams each value to the server in small pieces straight from its buffer: a
        statement parameter is copied whole twice on the way (by psycopg, then into libpq's
        output buffer), so storing a 100 MB value would need 300 MB.
        """
        sql = self._sql
        query = sql.store_staged_without_deadline if deadline is None else sql.store_staged
        params = self._params(session, now=now)
        if deadline is not None:
            params["deadline"] = deadline
        with cursor.connection.transaction():
            cursor.execute(sql.create_staged_sql)
            with cursor.copy(sql.copy_staged_sql) as copy:
                copy.write(_COPY_SIGNATURE)
                for key, value in items.items():
                    name = _b(key)
                    # A row: two fields, each its length and its bytes.
                    copy.write(_COPY_ROW.pack(2, len(name)) + name + _COPY_LENGTH.pack(len(value)))
                    copy.write(memoryview(value))
                copy.write(_COPY_TRAILER)
            cursor.execute(query.sql, query.params(params))

    def delete(self, session: str, key: str, now: float) -> bool:
        # The session row stays when the last value goes: the session keeps its deadline.
        return bool(self._one(self._sql.delete_key, self._params(session, key=_b(key), now=now)))

    def keys(self, session: str, now: float) -> list[str]:
        rows = self._one(self._sql.keys, self._params(session, now=now))
        return [row[0].decode("utf-8") for row in rows]

    def clear(self, session: str, now: float) -> int:
        params = self._params(session, now=now)
        if not self._deadlines_seen:
            # Without a session row there is no deadline to check and no row to lock first.
            removed = self._count(self._sql.clear_plain, params)
            if removed:
                return removed
        # A writer that committed while the statement waited for the session row may have
        # added rows the statement could not see: run again, with a newer snapshot.
        removed = 0
        for _ in range(_ATTEMPTS):
            [(values, expired, stale)] = self._one(self._sql.clear, params)
            removed += 0 if expired else int(values)
            if not stale:
                break
        return removed

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._one(self._sql.touch, self._params(session, deadline=deadline, now=now), rows=False)

    def purge_expired(self, now: float) -> int:
        rows = self._one(self._sql.purge, {"ns": self.namespace, "now": now})
        return int(rows[0][0])

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._pid == os.getpid():
            while self._idle:
                self._idle.pop().close()
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


# Connections inherited from a parent process are kept referenced, never used or closed.
_inherited: list[object] = []


def _all_rows(cursor: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def _no_rows(cursor: Any) -> list[tuple[Any, ...]]:
    return []


def _row_count(cursor: Any) -> int:
    return int(cursor.rowcount)


def _value(cursor: Any) -> bytes | None:
    """Return the value a ``get`` statement found, or None."""
    row = cursor.fetchone()
    if row is None:
        return None
    value: bytes = row[0]
    if len(value) >= _RELEASE_RESULT_BYTES:
        # A kept cursor holds its last result until its next statement: let a large one go now
        # (see PostgresBackend._run), not after the next call on this connection.
        cursor.close()
    return value


def _pool_size(engine: Engine) -> int:
    """Return how many connections the engine's pool keeps open (5 when it does not say)."""
    size = getattr(engine.pool, "size", None)
    return size() if callable(size) else 5


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
