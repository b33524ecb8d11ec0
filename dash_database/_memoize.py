"""Memoize: a function's results kept in the store, per session or for the whole app.

An entry lives in a session under the key ``dash_database.memoize:<module>.<qualname>:<digest>``
(keys starting ``dash_database.`` are reserved for the library). Its value is the pair
``(expires_at, result)``: the seam knows only per-session deadlines, so an entry's own ``ttl``
is kept with it, and an entry past it is treated as missing and overwritten.

The digest (``_digest.py``) covers the bound arguments, defaults applied, so ``f(1)`` and
``f(x=1)`` share an entry; it is the same in every process and on every host. Two memoized
functions must not share a qualified name (lambdas are refused for that reason).

This module does not import Dash: the Dash integration registers how to find the current
session with :func:`add_session_finder`.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from ._digest import SCALARS, binder, digest_arguments
from ._scopes import APP_SESSION
from ._session import Session
from .exceptions import (
    InvalidArgumentError,
    NoCurrentSessionError,
    QuotaExceededError,
)

if TYPE_CHECKING:
    from ._database import DashDatabase

__all__ = [
    "KEY_PREFIX",
    "Scope",
    "add_session_finder",
    "memoize",
    "use_session",
]

F = TypeVar("F", bound=Callable[..., Any])
Scope = Literal["session", "app"]

#: Every memoize entry's key starts with this.
KEY_PREFIX = "dash_database.memoize:"

_MISSING: Any = object()
# How many argument texts each memoized function remembers the key of.
_RECENT_KEYS = 1024
# Argument types whose equal values are the same value (unlike 0.0 and -0.0, or 1 and True).
_EXACT = frozenset((str, int, type(None)))
_current: ContextVar[Session | None] = ContextVar("dash_database_current_session", default=None)
_finders: list[Callable[[DashDatabase], Session | None]] = []


class use_session:  # used like a function: with use_session(session): ...
    """Make ``session`` the current session for ``memoize(scope="session")`` in a ``with``
    block.

    Dash callbacks do not need it (the current browser's or tab's session is found); use it
    in plain code, scripts and tests::

        with use_session(db.session(user_id)):
            report(2024)
    """

    __slots__ = ("_session", "_token")

    def __init__(self, session: Session) -> None:
        self._session = session

    def __enter__(self) -> Session:
        self._token = _current.set(self._session)
        return self._session

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


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
        bind = binder(func)
        prefix = f"{KEY_PREFIX}{func.__module__}.{func.__qualname__}:"

        def session() -> Session:
            return db.app_state if scope == "app" else current_session_of(db)

        # The keys of recent calls with plain arguments, so that a hit skips binding and
        # hashing: an accelerator only, emptied when full; other calls bind and hash their
        # arguments each time. A call is remembered by its arguments themselves when they are
        # str, int or None (equal there means the same value), else by their text (floats
        # and bools: 0.0 == -0.0 and 1 == True, but their reprs differ).
        recent: dict[object, str] = {}

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            call: object = None
            if _EXACT.issuperset(map(type, args)) and (
                not kwargs or _EXACT.issuperset(map(type, kwargs.values()))
            ):
                call = (args, *kwargs.items()) if kwargs else args
            elif SCALARS.issuperset(map(type, args)) and SCALARS.issuperset(
                map(type, kwargs.values())
            ):
                call = repr(args) + repr(kwargs)
            key = None if call is None else recent.get(call)
            if key is None:
                key = prefix + digest_arguments(bind(args, kwargs))
                if call is not None:
                    if len(recent) >= _RECENT_KEYS:
                        recent.clear()
                    recent[call] = key
            if scope == "app":
                name = APP_SESSION
            else:
                current = _current.get()
                if current is None or current._db is not db:
                    current = current_session_of(db)
                name = current.session_id
            # The key is the library's own ASCII text: no need to check it as a user's key.
            entry = db._get(name, key, _MISSING)
            if entry is not _MISSING and (entry[0] is None or db._clock() < entry[0]):
                return entry[1]
            with _LOCKS.hold((name, key)):
                # Another thread of this process may have computed it while this one waited.
                entry = db._get(name, key, _MISSING)
                if entry is not _MISSING and _fresh(entry, db._clock()):
                    return entry[1]
                result = func(*args, **kwargs)
                expires = None if ttl is None else db._clock() + ttl
                _store(Session(db, name), key, [expires, result])
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
