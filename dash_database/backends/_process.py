"""The one fork rule: what a backend holds belongs to the process that opened it.

A backend keeps its connections in a :class:`PerProcess` holder. After ``fork()`` (gunicorn
``--preload``, multiprocessing, Dash background callbacks) the child gets a fresh value on
first use and never touches the parent's: using a copied connection would interleave two
processes' traffic on one socket, and closing it could release locks or shared memory the
parent still relies on, so the parent's copy is kept referenced, never closed or used.

And a fork is made between calls into SQLite, never during one (:func:`fork_lock`).
"""

from __future__ import annotations

import gc
import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerProcess", "fork_lock", "inherited", "stop"]

T = TypeVar("T")

_forks = 0
# Values inherited from a parent process: kept alive, never used or closed (see above).
_inherited: list[object] = []
# Orders a child's first uses of its holders (see PerProcess._adopt); made anew in each child.
_adopting = threading.Lock()


def inherited(pid: int, *values: object) -> bool:
    """Return whether this process is a fork's child of process ``pid``; if so, keep
    ``values`` (made there) referenced, so that they are never closed here."""
    if pid == os.getpid():
        return False
    _inherited.extend(values)
    return True


class PerProcess(Generic[T]):
    """Hold one value per process, made by ``make`` on first use in that process.

    ``get`` costs one comparison of a counter that ``os.register_at_fork`` keeps, not a
    system call.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._value: T | None = None
        self._forks = _forks

    def get(self) -> T:
        """Return this process's value, making it on first use."""
        value = self._value
        if value is not None and self._forks == _forks:
            return value
        if self._forks != _forks:
            self._adopt()
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value

    def take(self) -> T | None:
        """Remove and return this process's value (``None`` if none was made here), for the
        caller to close; a value inherited from a parent is never returned."""
        if self._forks != _forks:
            self._adopt()
        with self._lock:
            value, self._value = self._value, None
            return value

    def _adopt(self) -> None:
        # First use in a fork's child: keep the parent's value, unused, and take a new lock:
        # another thread of the parent may have held the old one (making a value) at the fork.
        with _adopting:
            if self._forks != _forks:
                if self._value is not None:
                    _inherited.append(self._value)
                self._value, self._lock, self._forks = None, threading.Lock(), _forks


# -- fork() while another thread is inside SQLite ---------------------------------------------
# SQLite keeps process-wide locks (its allocator's, its file layer's). A fork() while another
# thread holds one copies it held into the child, whose first SQLite call then waits forever
# (Dash background callbacks fork the server while its threads serve requests). So each thread
# holds a fork_lock() while it calls SQLite, and a fork first takes every such lock: the child
# is made between calls. A thread told to stop may be closing its connection: a fork waits for
# it too. From the start of a fork to its end no lock is made and no thread told to stop, so
# none escapes it. The waits are bounded: one call stuck for longer must not hang the parent.
_FORK_WAIT = 10.0
# Reentrant: a collection inside stop() may free another writer, which calls stop() again.
_registry = threading.RLock()
_forker: list[int] = []  # the thread whose fork holds _registry
_fork_locks: weakref.WeakSet[threading.Lock] = weakref.WeakSet()
_stopping: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_held: list[threading.Lock | threading.RLock] = []
_gc_enabled: list[bool] = []


def fork_lock() -> threading.Lock:
    """Return a new lock that a ``fork()`` in this process takes before it makes the child."""
    with _registry:
        lock = threading.Lock()
        _fork_locks.add(lock)
    return lock


def stop(thread: threading.Thread, tell: Callable[[], object]) -> None:
    """Call ``tell`` to make ``thread`` end; the next ``fork()`` waits for it to end."""
    with _registry:
        tell()
        if _forker == [threading.get_ident()]:  # freed by the forking thread itself
            thread.join(_FORK_WAIT)
        else:
            _stopping.add(thread)


def _before_fork() -> None:
    # No automatic collection from here to the child: it could free a backend on this thread,
    # whose close would wait for a lock this thread now holds.
    enabled = gc.isenabled()
    gc.disable()
    _gc_enabled[:] = [enabled]
    if not _registry.acquire(timeout=_FORK_WAIT):
        return
    _held.append(_registry)
    _forker[:] = [threading.get_ident()]
    for thread in list(_stopping):
        _stopping.discard(thread)
        if thread is not threading.current_thread():
            thread.join(_FORK_WAIT)
    for lock in list(_fork_locks):
        if lock.acquire(timeout=_FORK_WAIT):
            _held.append(lock)


def _after_fork() -> None:
    _forker.clear()
    while _held:
        _held.pop().release()
    if _gc_enabled == [True]:
        gc.enable()


def _after_fork_in_child() -> None:
    global _forks, _adopting
    _forks += 1
    _adopting = threading.Lock()
    _after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork_in_child
    )
