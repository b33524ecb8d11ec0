"""The one driver-error mapper: every failure of a store becomes a BackendError.

Each backend wraps its calls in :func:`store_errors`, naming the store (with any password
hidden) and the action, and the driver's exception classes it expects. Whatever the driver,
the caller gets a :class:`~dash_database.BackendError` whose message names the store, says what
failed and what to do, and whose ``__cause__`` is the original exception. Errors of the library
itself (``DashDatabaseError`` subclasses) pass through unchanged.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from ..exceptions import BackendError, DashDatabaseError, InvalidArgumentError

__all__ = ["backend_error", "bad_cursor", "store_errors"]

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def backend_error(store: str, action: str, exc: BaseException, hint: str = "") -> BackendError:
    """Return the BackendError for ``action`` on ``store`` failing with ``exc``."""
    detail = str(exc).strip().rstrip(".") or type(exc).__name__
    if not hint:
        hint = _hint(exc)
    return BackendError(f"Could not {action} {store}: {detail}. {hint}".rstrip())


def bad_cursor(cursor: object) -> InvalidArgumentError:
    """Return the error for an enumeration ``cursor`` that no call of this backend returned."""
    return InvalidArgumentError(
        f"{cursor!r} is not a cursor this backend returned; start again with None."
    )


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, MemoryError):
        return "The process ran out of memory; store smaller values."
    if (isinstance(exc, OSError) and exc.errno in _DISK_FULL) or "full" in text:
        return "The disk is full: free space; the data stored before is intact."
    if (isinstance(exc, OSError) and exc.errno in _READ_ONLY) or "readonly" in text:
        return (
            "The file or its directory cannot be written by this process: check their "
            "permissions and that the disk is not mounted read-only; the data stored before "
            "is intact."
        )
    if isinstance(exc, TimeoutError) or "timeout" in text or "timed out" in text:
        return "The store did not answer in time; check that it runs and is not overloaded."
    return "Check that the store is running and reachable, then try again."


@contextmanager
def store_errors(
    store: str, action: str, driver_errors: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Turn ``driver_errors``, ``OSError`` and ``MemoryError`` raised inside into a
    :class:`BackendError` about ``action`` on ``store``."""
    caught: tuple[type[BaseException], ...] = (*driver_errors, OSError, MemoryError)
    try:
        yield
    except DashDatabaseError:
        raise
    except caught as exc:
        raise backend_error(store, action, exc) from exc
