"""URLs, options, engines and connections of the PostgreSQL backend (and its drivers' import)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar, cast

try:
    import psycopg
    import sqlalchemy
    from sqlalchemy.engine import Engine, make_url
    from sqlalchemy.exc import DBAPIError
except ImportError as exc:
    raise ImportError(
        "The PostgreSQL backend needs SQLAlchemy and psycopg: "
        'pip install "sqlalchemy>=2.0" "psycopg[binary]>=3.1" '
        '(from a clone: pip install "./dash_database[postgres]").'
    ) from exc

from ..._locations import redact_url
from ...exceptions import InvalidArgumentError
from .._errors import store_errors

__all__ = ["CONFLICTS", "Connection", "Engine", "digest", "psycopg"]

Connection = psycopg.Connection[Any]
# A concurrent writer committed what a statement waited for or could not see: run it again.
CONFLICTS = (
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.UniqueViolation,
)
T = TypeVar("T")


def digest(data: bytes) -> bytes:
    """The fixed-size digest by which ids and keys of any length are indexed."""
    return hashlib.sha256(data).digest()


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Return ``url`` with psycopg 3 as its driver and without the backend's own query
    parameters (``table``, ``schema``, ``namespace``), and those parameters."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidArgumentError(f"Cannot parse the PostgreSQL URL {redact_url(url)!r}.") from exc
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    own = {k: v if isinstance(v, str) else v[-1] for k, v in parsed.query.items()}
    own = {k: v for k, v in own.items() if k in ("table", "schema", "namespace")}
    parsed = parsed.difference_update_query(own)
    return parsed.render_as_string(hide_password=False), own


def open_engine(
    url: str, connect_timeout: float, statement_timeout: float, **options: Any
) -> Engine:
    """Return an engine on ``url`` in autocommit mode (so a returned connection needs no
    ROLLBACK) that gives up connecting after ``connect_timeout`` and has the server cancel a
    statement (lock waits included) after ``statement_timeout`` seconds."""
    args = dict(options.pop("connect_args", {}))
    if "connect_timeout" not in make_url(url).query:
        args.setdefault("connect_timeout", max(2, round(connect_timeout)))
    # Of two settings of one parameter the server keeps the last: the caller's come last.
    timeout = f"-c statement_timeout={round(statement_timeout * 1000)}"
    args["options"] = f"{timeout} {args.get('options', '')}".strip()
    options = {"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None, **options}
    return sqlalchemy.create_engine(url, connect_args=args, **options)


def where(engine: Engine) -> str:
    """Name the server and database of ``engine`` for messages (never with a password).

    Raises:
        InvalidArgumentError: the engine does not run psycopg 3 in sync mode.
    """
    dialect, url = engine.dialect, engine.url
    if dialect.driver != "psycopg" or dialect.is_async:
        raise InvalidArgumentError(
            f"The engine runs {dialect.name}+{dialect.driver}"
            f"{' (asyncio)' if dialect.is_async else ''}; this backend runs on PostgreSQL "
            "through psycopg 3 in sync mode: use a postgresql+psycopg:// URL."
        )
    return f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def run(engine: Engine, store: str, action: str, work: Callable[[Connection], T]) -> T:
    """Return ``work(connection)`` on a connection of ``engine``'s pool in autocommit mode;
    raise driver errors as BackendError about ``action`` on ``store``.

    A connection found lost is discarded and ``work`` runs again on another, at most as many
    times as the pool keeps connections, so the first call after a server restart does not
    fail on each stale one in turn. ``work`` must be safe to run again: the server may have
    committed before the answer was lost.
    """
    size = getattr(engine.pool, "size", None)
    reconnects = size() if callable(size) else 5
    with store_errors(store, action, (psycopg.Error,)):
        while True:
            try:
                fairy = engine.raw_connection()
            except DBAPIError as exc:
                raise (exc.orig or exc) from None  # the driver's own error says what failed
            conn = cast(Connection, fairy.driver_connection)
            # A passed-in engine's connection switches (with no round trip) only when it must:
            # setting the attribute costs a call on the hot path.
            given = not conn.autocommit
            try:
                if given:
                    conn.autocommit = True
                return work(conn)
            except psycopg.OperationalError as exc:
                if not conn.broken or reconnects == 0:
                    raise
                fairy.invalidate(exc)
                reconnects -= 1
            finally:
                if given and not conn.broken:
                    conn.autocommit = False
                fairy.close()


def quote(name: str) -> str:
    """Return ``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def check_options(
    table: object, schema: object, namespace: object, copy_threshold: object, *timeouts: Any
) -> None:
    """Raise InvalidArgumentError unless the names, threshold and timeouts can be used."""
    for name, value in [("table", table), ("schema", schema)]:
        if value is not None and (not isinstance(value, str) or not value or "\0" in value):
            raise InvalidArgumentError(
                f"{name} must be a non-empty str without NUL characters, got {value!r}."
            )
    if not isinstance(namespace, str) or "\0" in namespace:
        raise InvalidArgumentError(f"namespace must be a str without NUL, got {namespace!r}.")
    if len(f"{table}_sessions_deadline".encode()) > 63:
        raise InvalidArgumentError(
            f"table {table!r} is too long: PostgreSQL cuts names at 63 bytes, and this backend "
            "adds up to 18 to it. Use a shorter one."
        )
    if type(copy_threshold) is not int or copy_threshold < 0:
        raise InvalidArgumentError(f"copy_threshold must be an int >= 0, got {copy_threshold!r}.")
    if any(type(value) not in (int, float) or not value > 0 for value in timeouts):
        raise InvalidArgumentError(
            "connect_timeout and statement_timeout must be positive numbers of seconds, got "
            f"{timeouts!r}."
        )
