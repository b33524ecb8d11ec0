"""An in-process backend: a dict guarded by a lock.

It is the reference implementation of the backend protocol, and handy in an application's own
tests. Its data lives in one process only: under gunicorn with several workers, each worker has
its own, so use the SQLite default (one host) or Redis/PostgreSQL (several hosts) there.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import NoReturn

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Keep sessions in a dict of dicts in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, bytes]] = {}
        self._deadlines: dict[str, float] = {}

    def _expired(self, session: str, now: float) -> bool:
        deadline = self._deadlines.get(session)
        return deadline is not None and deadline <= now

    def _live(self, session: str, now: float) -> dict[str, bytes]:
        if self._expired(session, now):
            return {}
        return self._data.get(session, {})

    def get(self, session: str, key: str, now: float) -> bytes | None:
        with self._lock:
            return self._live(session, now).get(key)

    def set_many(
        self, session: str, items: Mapping[str, bytes], deadline: float | None, now: float
    ) -> None:
        with self._lock:
            if self._expired(session, now):
                self._data.pop(session, None)
                del self._deadlines[session]
            if deadline is None:
                self._deadlines.pop(session, None)
            else:
                self._deadlines[session] = max(deadline, self._deadlines.get(session, deadline))
            self._data.setdefault(session, {}).update(items)

    def delete(self, session: str, key: str, now: float) -> bool:
        with self._lock:
            values = self._live(session, now)
            if key not in values:
                return False
            del values[key]
            if not values:
                self._forget(session)
            return True

    def keys(self, session: str, now: float) -> list[str]:
        with self._lock:
            return list(self._live(session, now))

    def clear(self, session: str, now: float) -> int:
        with self._lock:
            removed = len(self._live(session, now))
            self._forget(session)
            return removed

    def touch(self, session: str, deadline: float, now: float) -> None:
        with self._lock:
            current = self._deadlines.get(session)
            if current is not None and current > now:
                self._deadlines[session] = max(current, deadline)

    def purge_expired(self, now: float) -> int:
        with self._lock:
            expired = [s for s, deadline in self._deadlines.items() if deadline <= now]
            for session in expired:
                self._forget(session)
            return len(expired)

    def close(self) -> None:
        with self._lock:
            self._data.clear()
            self._deadlines.clear()

    def _forget(self, session: str) -> None:
        self._data.pop(session, None)
        self._deadlines.pop(session, None)

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "The in-memory backend cannot be pickled: its data lives in this process only. "
            "Use a SQLite file (DashDatabase('path.sqlite')) or Redis/PostgreSQL to share "
            "sessions between processes."
        )

    def __repr__(self) -> str:
        return "MemoryBackend()"
