"""Memoize: a function's results kept in the store, per session or for the whole app.

An entry lives in a session under the key ``dash_database.memoize:<module>.<qualname>:<digest>``
(keys starting ``dash_database.`` are reserved for the library). Its value is the pair
``(expires_at, result)``: the seam knows only per-session deadlines, so an entry's own ``ttl``
is kept with it, and an entry past it is treated as missing and overwritten.

The digest is a SHA-256 of a canonical encoding of the bound arguments (defaults applied, so
``f(1)`` and ``f(x=1)`` share an entry), the same in every process and on every host: not
``hash()``, which is salted per process, and not ``pickle``, whose bytes for a set follow
that salt. See :func:`digest_arguments` for the types it accepts. Two memoized functions must
not share a qualified name (lambdas are refused for that reason).

This module does not import Dash: the Dash integration registers how to find the current
session with :func:`add_session_finder`.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import hashlib
import inspect
import os
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from .exceptions import (
    InvalidArgumentError,
    MemoizeArgumentError,
    NoCurrentSessionError,
    QuotaExceededError,
)

if TYPE_CHECKING:
    from ._database import DashDatabase
    from ._session import Session

__all__ = [
    "KEY_PREFIX",
    "Scope",
    "add_session_finder",
    "digest_arguments",
    "memoize",
    "use_session",
]

F = TypeVar("F", bound=Callable[..., Any])
Scope = Literal["session", "app"]

#: Every memoize entry's key starts with this.
KEY_PREFIX = "dash_database.memoize:"

_MISSING: Any = object()
_current: ContextVar[Session | None] = ContextVar("dash_database_current_session", default=None)
_finders: list[Callable[[DashDatabase], Session | None]] = []


@contextmanager
def use_session(session: Session) -> Iterator[Session]:
    """Make ``session`` the current session for ``memoize(scope="session")`` in this block.

    Dash callbacks do not need it (the current browser's or tab's session is found); use it
    in plain code, scripts and tests::

        with use_session(db.session(user_id)):
            report(2024)
    """
    token = _current.set(session)
    try:
        yield session
    finally:
        _current.reset(token)


def add_session_finder(finder: Callable[[DashDatabase], Session | None]) -> None:
    """Register ``finder(db)``, which returns the current session or ``None`` (not in a
    request it knows). The Dash integration registers one on import."""
    if finder not in _finders:
        _finders.append(finder)


def current_session_of(db: DashDatabase) -> Session:
    """Return the session that ``memoize(scope="session")`` uses now.

    Raises:
        NoCurrentSessionError: no ``use_session`` block and no Dash callback is running.
    """
    session = _current.get()
    if session is not None and session._db is db:
        return session
    for finder in _finders:
        session = finder(db)
        if session is not None:
            return session
    raise NoCurrentSessionError(
        "memoize(scope='session') needs the current session, and there is none here: call the "
        "function from a Dash callback (with enable_browser_sessions or enable_tab_sessions), "
        "or inside 'with use_session(db.session(session_id)):', or memoize it with "
        "scope='app'."
    )


# -- the digest of the arguments ------------------------------------------------------------

_SIMPLE: dict[type, bytes] = {type(None): b"N", bool: b"B", int: b"I", str: b"S", bytes: b"Y"}


def _encode(value: Any, out: list[bytes], path: str) -> None:
    kind = type(value)
    if kind is str:
        data = value.encode("utf-8", "surrogatepass")
    elif kind is int or kind is bool:
        data = str(int(value)).encode("ascii")
    elif kind is bytes:
        data = value
    elif value is None:
        data = b""
    elif kind is float:
        out.append(b"F" + struct.pack(">d", value))
        return
    elif kind in (tuple, list):
        out.append((b"T" if kind is tuple else b"L") + struct.pack(">Q", len(value)))
        for i, item in enumerate(value):
            _encode(item, out, f"{path}[{i}]")
        return
    elif kind in (set, frozenset, dict):
        # Sorted by their encodings: the order of a set (or of a dict's insertion) does not
        # change the digest.
        items = value.items() if kind is dict else ((item, None) for item in value)
        encoded = []
        for key, item in items:
            part: list[bytes] = []
            _encode(key, part, f"{path} key")
            if kind is dict:
                _encode(item, part, f"{path}[{key!r}]")
            encoded.append(b"".join(part))
        out.append((b"D" if kind is dict else b"E") + struct.pack(">Q", len(encoded)))
        out.extend(sorted(encoded))
        return
    elif kind in _TEXT_TYPES:
        data = _TEXT_TYPES[kind](value).encode("utf-8")
    else:
        raise MemoizeArgumentError(
            f"memoize cannot key its cache by {path}, a {kind.__module__}.{kind.__qualname__}: "
            "it accepts None, bool, int, float, str, bytes, tuples, lists, dicts and sets of "
            "them, dates, times, Decimal and UUID. Pass plain values (an id or a file name "
            "instead of a DataFrame or a connection), or do not memoize this function."
        )
    tag = _SIMPLE.get(kind) or b"X" + kind.__name__.encode("ascii") + b":"
    out.append(tag + struct.pack(">Q", len(data)) + data)


_TEXT_TYPES: dict[type, Callable[[Any], str]] = {
    datetime.datetime: datetime.datetime.isoformat,
    datetime.date: datetime.date.isoformat,
    datetime.time: datetime.time.isoformat,
    datetime.timedelta: lambda value: repr(value.total_seconds()),
    decimal.Decimal: str,
    uuid.UUID: str,
}


def digest_arguments(arguments: dict[str, Any]) -> str:
    """Return a digest of ``arguments`` (parameter name -> value) that is the same in every
    process and on every host.

    Accepted values: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``tuple``,
    ``list``, ``dict``, ``set`` and ``frozenset`` of them, ``datetime`` (date, time, datetime,
    timedelta), ``Decimal`` and ``UUID``; types are part of the digest (``1``, ``1.0`` and
    ``True`` are three entries; so are a tuple and a list).

    Raises:
        MemoizeArgumentError: a value of another type (a ``TypeError``).
    """
    out: list[bytes] = []
    for name, value in arguments.items():
        _encode(name, out, "a parameter name")
        _encode(value, out, f"argument {name!r}")
    return hashlib.sha256(b"".join(out)).hexdigest()


# -- one computation per entry per process --------------------------------------------------


class _EntryLocks:
    """A lock per entry, held by the thread computing it; dropped when nobody holds it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], list[Any]] = {}

    @contextmanager
    def hold(self, entry: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            slot = self._locks.get(entry)
            if slot is None:
                slot = self._locks[entry] = [threading.Lock(), 0]
            slot[1] += 1
        try:
            with slot[0]:
                yield
        finally:
            with self._guard:
                slot[1] -= 1
                if slot[1] == 0:
                    del self._locks[entry]

    def reset(self) -> None:
        # A child forked while a parent thread computed must not inherit its held lock.
        self._guard = threading.Lock()
        self._locks = {}


_LOCKS = _EntryLocks()
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(after_in_child=_LOCKS.reset)


# -- the decorator --------------------------------------------------------------------------


def memoize(
    db: DashDatabase, scope: Scope = "session", ttl: float | None = None
) -> Callable[[F], F]:
    """Return the decorator behind :meth:`DashDatabase.memoize`."""
    if scope not in ("session", "app"):
        raise InvalidArgumentError(f"scope must be 'session' or 'app', got {scope!r}.")
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0
    ):
        raise InvalidArgumentError(
            f"ttl must be a positive number of seconds or None, got {ttl!r}."
        )

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):
            raise InvalidArgumentError(
                f"memoize cannot cache the coroutine function {func.__qualname__}: its result "
                "is a coroutine, which cannot be stored. Memoize a plain function it calls."
            )
        if func.__qualname__.rpartition(".")[2] == "<lambda>":
            raise InvalidArgumentError(
                f"memoize keys its entries by the function's qualified name, and every lambda "
                f"is named {func.__qualname__!r}: two lambdas would share entries. Define the "
                "function with def and a name of its own."
            )
        signature = inspect.signature(func)
        prefix = f"{KEY_PREFIX}{func.__module__}.{func.__qualname__}:"

        def session() -> Session:
            return db.app_state if scope == "app" else current_session_of(db)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = prefix + digest_arguments(bound.arguments)
            where = session()
            entry = where.get(key, _MISSING)
            if entry is not _MISSING and _fresh(entry, db._clock()):
                return entry[1]
            with _LOCKS.hold((where.session_id, key)):
                # Another thread of this process may have computed it while this one waited.
                entry = where.get(key, _MISSING)
                if entry is not _MISSING and _fresh(entry, db._clock()):
                    return entry[1]
                result = func(*args, **kwargs)
                expires = None if ttl is None else db._clock() + ttl
                _store(where, key, [expires, result])
                return result

        def cache_clear() -> int:
            """Delete this function's entries in the current scope; return how many."""
            where = session()
            keys = [key for key in where if key.startswith(prefix)]
            for key in keys:
                where.pop(key, None)
            return len(keys)

        wrapper.cache_clear = cache_clear  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def _fresh(entry: Any, now: float) -> bool:
    expires = entry[0]
    return expires is None or now < expires


def _store(session: Session, key: str, entry: list[Any]) -> None:
    try:
        session[key] = entry
    except QuotaExceededError:
        # Entries past their ttl count as missing but still take room: drop them, try again.
        # A second refusal reaches the caller: a session's quota is never exceeded, and live
        # data is never evicted to make room.
        if not _drop_expired(session):
            raise
        session[key] = entry


def _drop_expired(session: Session) -> int:
    now = session._db._clock()
    dropped = 0
    for key in [key for key in session if key.startswith(KEY_PREFIX)]:
        entry = session.get(key, _MISSING)
        if entry is not _MISSING and not _fresh(entry, now):
            session.pop(key, None)
            dropped += 1
    return dropped
