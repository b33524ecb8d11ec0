"""Await-able session operations: the sync API run in a worker thread of this process.

Every coroutine here calls the matching synchronous method of :class:`DashDatabase` or
:class:`Session` in a worker thread, so ids, serialization, quotas, expiry and atomic updates
follow the one implementation in ``_database.py``, and the event loop only waits on a future
while the store works.

Why threads and not the drivers' own asyncio clients: during a call's I/O the drivers
(sqlite3, redis-py, psycopg) release the GIL, so the loop keeps running; a native client would
need a second, async copy of every backend and of the core's retry loop, and it would
serialize and deserialize values on the event loop itself, where every large value stalls the
loop and many replies arriving at once add up. ``python benchmarks/async_stall.py`` measures
both on Redis (redis-py's asyncio client, pickling on the loop, against this module).

Why one thread per process, not the loop's default executor (``os.cpu_count() + 4``
threads): every thread that serializes a value or runs Python code competes with the event
loop for the GIL, and in the benchmark the loop's longest stall grew with the number of
threads; one thread kept it lowest. After each call the thread waits until the loop has taken
the result, so the loop gets the GIL between calls (``_call_and_hand_over``). The price: one
process's store calls run one at a time, as they do in a synchronous worker (the event loop
goes on meanwhile), and a process opens no more connections than a synchronous worker does.
Every wait of a backend is bounded, so the thread never stays stuck. It belongs to the process
that started it (``backends/_process.py``): after ``fork()`` the child starts its own.

Cancellation: cancelling an await whose call has not started yet (the thread was busy)
removes the call: nothing is read or written. A call already running cannot be interrupted;
it runs to its end in the background and its write is atomic as every write is (all keys or
none), so a cancelled write is either wholly done or not done at all, never half-written.
Await the operation again (or read the key) to learn which.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._keys import Id
from .backends._process import PerProcess
from .exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from ._database import DashDatabase
    from ._session import Session

__all__ = ["AsyncDatabase", "AsyncSession"]

T = TypeVar("T")

_worker = PerProcess(lambda: ThreadPoolExecutor(1, thread_name_prefix="dash_database.aio"))


#: How long the worker thread waits for the event loop to take a result before it goes on
#: with the next call: a loop that is busy with other work, or has stopped, takes it later.
_HANDOFF_TIMEOUT = 0.05


async def _in_thread(func: Callable[..., T], /, *args: Any) -> T:
    """Return ``func(*args)``, called in this process's worker thread with the caller's
    context variables, while the event loop goes on."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()
    call = _worker.get().submit(_call_and_hand_over, loop, future, context, func, args)
    # A cancelled await withdraws its call if the thread has not started it yet.
    future.add_done_callback(lambda done: call.cancel() if done.cancelled() else None)
    return await future


def _call_and_hand_over(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[T],
    context: contextvars.Context,
    func: Callable[..., T],
    args: tuple[Any, ...],
) -> None:
    """Run ``func(*args)`` in the worker thread, then hand the result to the event loop and
    wait, without the GIL, until the loop has taken it.

    Why wait: a thread that goes straight on to the next queued call keeps the GIL, and the
    event loop, woken by this result or by a timer, then gets the GIL only when the interpreter
    forces a switch (``sys.getswitchinterval()``); giving the GIL up for an instant does not
    help, as this thread takes it back before the woken loop thread runs. Waiting for the loop
    hands it the GIL on every call, so the loop waits for at most one call's Python code.
    """
    try:
        result: Any = context.run(func, *args)
        error: BaseException | None = None
    except BaseException as exc:  # handed to the awaiting coroutine, which raises it
        result, error = None, exc
    taken = threading.Lock()
    taken.acquire()
    try:
        loop.call_soon_threadsafe(_settle, future, result, error, taken)
    except RuntimeError:  # the loop is closed: nobody awaits this result any more
        return
    taken.acquire(timeout=_HANDOFF_TIMEOUT)


def _settle(
    future: asyncio.Future[Any], result: Any, error: BaseException | None, taken: threading.Lock
) -> None:
    """On the event loop: give the awaiting coroutine the result, then free the worker."""
    try:
        if future.done():  # cancelled while the call ran: the call is done, nobody awaits it
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    finally:
        taken.release()


def _check_plain(func: Callable[[Any], Any]) -> None:
    if inspect.iscoroutinefunction(func):
        raise InvalidArgumentError(
            f"func must be a plain function, got the coroutine function {func!r}: it runs in a "
            "worker thread, possibly several times, where nothing would await it. Do the "
            "awaiting first, then pass a function of the stored value."
        )


class AsyncDatabase:
    """The session operations of a :class:`DashDatabase` as coroutines, from ``db.aio``.

    Each method takes the arguments and gives the result and errors of the synchronous method
    of the same name, and never blocks the event loop::

        await db.aio.store_user_value(session_id, "frame", frame)
        frame = await db.aio.get_user_value(session_id, "frame")
    """

    def __init__(self, db: DashDatabase) -> None:
        self.db = db

    async def store_user_value(self, user_id: Id, key_name: Id, value: Any) -> None:
        """Store ``value`` under ``key_name`` for ``user_id`` (see the sync method)."""
        await _in_thread(self.db.store_user_value, user_id, key_name, value)

    async def get_user_value(self, user_id: Id, key_name: Id, default: Any = None) -> Any:
        """Return the value under ``key_name`` for ``user_id``, or ``default``."""
        return await _in_thread(self.db.get_user_value, user_id, key_name, default)

    async def list_stored_user_keys(self, user_id: Id) -> list[str]:
        """Return the sorted key names stored for ``user_id``."""
        return await _in_thread(self.db.list_stored_user_keys, user_id)

    async def delete_user_value(
        self,
        user_id: Id,
        key_name: Id,
        if_not_exists: Literal["ignore", "raise"] = "ignore",
    ) -> None:
        """Delete the value under ``key_name`` for ``user_id``."""
        await _in_thread(self.db.delete_user_value, user_id, key_name, if_not_exists)

    async def delete_all_user_values(self, user_id: Id) -> int:
        """Delete every value of ``user_id``; return how many keys were removed."""
        return await _in_thread(self.db.delete_all_user_values, user_id)

    async def update_user_value(
        self, user_id: Id, key_name: Id, func: Callable[[Any], Any], default: Any = None
    ) -> Any:
        """Replace the value under ``key_name`` by ``func(value)`` atomically; return it.

        ``func`` runs in the worker thread, possibly more than once (keep it quick and free
        of side effects; it must not be a coroutine function).
        """
        _check_plain(func)
        return await _in_thread(self.db.update_user_value, user_id, key_name, func, default)

    def session(self, user_id: Id) -> AsyncSession:
        """Return the await-able view of one session (verifying a signed id at once, which
        needs no I/O).

        Raises:
            InvalidSessionIdError: ``user_id`` is a signed id whose signature is not valid.
        """
        return AsyncSession(self.db.session(user_id))

    def __repr__(self) -> str:
        return f"<AsyncDatabase of {self.db!r}>"


class AsyncSession:
    """One session's values, with coroutines for the :class:`Session` mapping operations.

    Get one with ``db.aio.session(session_id)`` or, in a Dash callback,
    ``current_session(db).aio``. ``sync`` is the synchronous :class:`Session` it wraps.
    """

    def __init__(self, session: Session) -> None:
        self.sync = session
        self.session_id = session.session_id

    async def get(self, key: Id, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is missing."""
        return await _in_thread(self.sync.get, key, default)

    async def set(self, key: Id, value: Any) -> None:
        """Store ``value`` under ``key`` (``session[key] = value``)."""
        await _in_thread(self.sync.__setitem__, key, value)

    async def delete(self, key: Id) -> None:
        """Delete ``key`` (``del session[key]``).

        Raises:
            MissingKeyError: the session has no such key (a ``KeyError``).
        """
        await _in_thread(self.sync.__delitem__, key)

    async def contains(self, key: Id) -> bool:
        """Return whether the session holds ``key`` (``key in session``)."""
        return await _in_thread(self.sync.__contains__, key)

    async def keys(self) -> list[str]:
        """Return the session's key names, sorted (``list(session)``)."""
        return await _in_thread(list, self.sync)

    async def clear(self) -> None:
        """Remove every key of the session."""
        await _in_thread(self.sync.clear)

    async def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store every item of ``other`` and ``kwargs`` in one atomic write: all or none."""
        await _in_thread(functools.partial(self.sync.update, other, **kwargs))

    async def update_value(self, key: Id, func: Callable[[Any], Any], default: Any = None) -> Any:
        """Replace the value of ``key`` by ``func(value)`` atomically and return it, as
        :meth:`AsyncDatabase.update_user_value` does."""
        _check_plain(func)
        return await _in_thread(self.sync.update_value, key, func, default)

    def __repr__(self) -> str:
        return f"<AsyncSession {self.session_id!r} of {self.sync._db!r}>"
