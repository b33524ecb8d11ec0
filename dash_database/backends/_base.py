"""The backend protocol: the whole seam between DashDatabase and a store.

A backend stores bytes under (session, key) pairs. It knows nothing of serializers, id
formats or time-to-live policies: DashDatabase validates ids, serializes values, computes
deadlines and reads the clock, then passes plain ``str`` ids, ``bytes`` values and ``now``
(seconds since the epoch, from the injected clock) to the backend.

Expiry model: a session may carry a *deadline*. A session whose deadline is ``<= now`` is
expired: every method behaves as if the session had no keys, and a write to it first discards
what it held. A session without a deadline never expires. Expired data stays on disk until
``purge_expired`` (or a write to that session) removes it.

Guarantees every backend gives (the contract suite in ``tests/contract`` checks them):

- Distinct (session, key) pairs never collide, whatever characters they contain (including
  NUL, separators and non-ASCII text; ids are always valid Unicode).
- Every method is safe to call from several threads at once, and from several processes
  sharing one store (where the backend can be shared at all).
- A write that returned is visible to every later read, in any thread or process.
- ``set_many`` is atomic: all items and the deadline are written, or nothing is.
- A failure of the underlying store raises :class:`~dash_database.BackendError` chained from
  the driver's exception, never returns a made-up result.
- ``close`` releases what the backend holds; it may be called more than once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    """What a store must provide to back a :class:`~dash_database.DashDatabase`."""

    def get(self, session: str, key: str, now: float) -> bytes | None:
        """Return the bytes stored under ``(session, key)``, or ``None`` when the key is
        missing or the session expired."""
        ...

    def set_many(
        self, session: str, items: Mapping[str, bytes], deadline: float | None, now: float
    ) -> None:
        """Store every item of ``items`` in ``session`` atomically and set the session's
        deadline.

        When the session expired, its old keys are discarded first. ``deadline`` replaces the
        session's deadline when it is ``None`` (the session no longer expires); otherwise the
        later of the two deadlines is kept.
        """
        ...

    def delete(self, session: str, key: str, now: float) -> bool:
        """Remove ``(session, key)``; return whether a live key was removed."""
        ...

    def keys(self, session: str, now: float) -> list[str]:
        """Return the key names of a live session, in any order; ``[]`` when it expired.

        Costs O(keys of that session), never a scan of every key in the store.
        """
        ...

    def clear(self, session: str, now: float) -> int:
        """Remove every key of ``session`` and its deadline; return how many live keys were
        removed (0 for an expired session, whose data is removed all the same)."""
        ...

    def touch(self, session: str, deadline: float, now: float) -> None:
        """Move the deadline of a live session that has one to ``deadline`` if that is later.

        A session without a deadline, an expired session or a missing one is left alone.
        """
        ...

    def purge_expired(self, now: float) -> int:
        """Remove every expired session and its data; return how many sessions were removed."""
        ...

    def close(self) -> None:
        """Release connections and files. Calling it twice is harmless."""
        ...
