"""The one fork rule: what a backend holds belongs to the process that opened it.

A backend keeps its connections in a :class:`PerProcess` holder. After ``fork()`` (gunicorn
``--preload``, multiprocessing, Dash background callbacks) the child gets a fresh value on
first use and never touches the parent's: using a copied connection would interleave two
processes' traffic on one socket, and closing it could release locks or shared memory the
parent still relies on, so the parent's copy is kept referenced, never closed or used.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerProcess"]

T = TypeVar("T")

_forks = 0
# Values inherited from a parent process: kept alive, never used or closed (see above).
_inherited: list[object] = []


def _count_fork() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(after_in_child=_count_fork)


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
        with self._lock:
            if self._forks != _forks:
                if self._value is not None:
                    _inherited.append(self._value)
                self._value = None
                self._forks = _forks
            if self._value is None:
                self._value = self._make()
            return self._value

    def take(self) -> T | None:
        """Remove and return this process's value (``None`` if none was made here), for the
        caller to close; a value inherited from a parent is never returned."""
        with self._lock:
            value, self._value = self._value, None
            if self._forks != _forks:
                if value is not None:
                    _inherited.append(value)
                self._forks = _forks
                return None
            return value
