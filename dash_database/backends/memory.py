"""An in-process backend: dicts guarded by a lock.

It is the reference implementation of the backend protocol (``_base.py``): every other backend
must behave as this one does. It is also handy in an application's own tests. Its data lives
in one process only: under gunicorn with several workers, each worker has its own, so use the
SQLite default (one host) or Redis/PostgreSQL (several hosts) there.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from ..exceptions import QuotaExceededError, SessionLimitError
from ._base import KeyInfo, Page, SessionData, SessionInfo, StoreStats
from ._errors import bad_cursor
from ._process import fork_lock

__all__ = ["MemoryBackend"]


@dataclass
class _Session:
    values: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    deadline: float | None = None
    bytes: int = 0
    written: float = 0.0

    def expired(self, now: float) -> bool:
        return self.deadline is not None and self.deadline <= now


def _size(key: str, value: bytes) -> int:
    return len(key.encode()) + len(value)


class MemoryBackend:
    """Keep sessions in a dict in this process."""

    def __init__(self) -> None:
        self.secret_file: str | None = None
        self._lock = fork_lock()  # a fork's child never inherits it held
        self._sessions: dict[str, _Session] = {}

    def _live(self, session: str, now: float) -> _Session | None:
        found = self._sessions.get(session)
        return None if found is None or found.expired(now) else found

    def get(self, session: str, key: str, now: float) -> bytes | None:
        found = self.get_versioned(session, key, now)
        return None if found is None else found[0]

    def get_versioned(self, session: str, key: str, now: float) -> tuple[bytes, int] | None:
        with self._lock:
            live = self._live(session, now)
            return None if live is None else live.values.get(key)

    def get_many(self, session: str, keys: Sequence[str], now: float) -> list[bytes | None]:
        with self._lock:
            live = self._live(session, now)
            values = {} if live is None else live.values
            return [values[key][0] if key in values else None for key in keys]

    def set_many(
        self,
        session: str,
        items: Mapping[str, bytes],
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
        max_sessions: int | None = None,
    ) -> None:
        with self._lock:
            self._write(session, items, deadline, now, version, max_bytes, max_sessions)

    def compare_and_set(
        self,
        session: str,
        key: str,
        value: bytes,
        expected: int | None,
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
        max_sessions: int | None = None,
    ) -> bool:
        with self._lock:
            live = self._live(session, now)
            current = None if live is None else live.values.get(key)
            if (None if current is None else current[1]) != expected:
                return False
            self._write(session, {key: value}, deadline, now, version, max_bytes, max_sessions)
            return True

    def _write(
        self,
        session: str,
        items: Mapping[str, bytes],
        deadline: float | None,
        now: float,
        version: int,
        max_bytes: int | None,
        max_sessions: int | None,
    ) -> None:
        # Called with the lock held. Checks the limits before changing anything.
        live = self._live(session, now)
        starts_session = bool(items) and (live is None or not live.values)
        if starts_session and max_sessions is not None and self._count_live(now) >= max_sessions:
            raise SessionLimitError.for_write(max_sessions)
        old = live.values if live is not None else {}
        size = live.bytes if live is not None else 0
        new_size = size
        for key, value in items.items():
            new_size += _size(key, value)
            if key in old:
                new_size -= _size(key, old[key][0])
        if max_bytes is not None and new_size > max_bytes:
            raise QuotaExceededError.for_write(size, new_size, max_bytes)
        if live is None:
            live = self._sessions[session] = _Session()
        for key, value in items.items():
            live.values[key] = (value, version)
        live.bytes = new_size
        live.written = now
        if deadline is None or live.deadline is None:
            live.deadline = deadline
        else:
            live.deadline = max(live.deadline, deadline)

    def _count_live(self, now: float) -> int:
        return sum(1 for s in self._sessions.values() if s.values and not s.expired(now))

    def delete(self, session: str, key: str, now: float) -> bool:
        with self._lock:
            live = self._live(session, now)
            if live is None or key not in live.values:
                return False
            value, _ = live.values.pop(key)
            live.bytes -= _size(key, value)
            live.written = now
            if not live.values and live.deadline is None:
                del self._sessions[session]
            return True

    def keys(self, session: str, now: float) -> list[str]:
        with self._lock:
            live = self._live(session, now)
            return [] if live is None else list(live.values)

    def clear(self, session: str, now: float) -> int:
        with self._lock:
            found = self._sessions.pop(session, None)
            return 0 if found is None or found.expired(now) else len(found.values)

    def touch(self, session: str, deadline: float, now: float) -> None:
        with self._lock:
            live = self._live(session, now)
            if live is not None and live.deadline is not None:
                live.deadline = max(live.deadline, deadline)

    def rename(self, session: str, new_session: str, now: float) -> int:
        with self._lock:
            found = self._sessions.pop(session, None)
            if found is None or found.expired(now):
                return 0
            self._sessions[new_session] = found
            return len(found.values)

    def session_bytes(self, session: str, now: float) -> int:
        with self._lock:
            live = self._live(session, now)
            return 0 if live is None else live.bytes

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        with self._lock:
            names = sorted(self._sessions)
            start = 0 if cursor is None else bisect.bisect_right(names, cursor)
            page: list[SessionInfo] = []
            for name in names[start:]:
                if len(page) == limit:
                    return page, page[-1].session
                live = self._live(name, now)
                if live is not None and live.values:
                    page.append(_info(name, live))
            return page, None

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        with self._lock:
            live = self._live(session, now)
            if live is None:
                return [], None
            names = sorted(live.values)
            start = 0 if cursor is None else bisect.bisect_right(names, cursor)
            chosen = names[start : start + limit]
            page = [KeyInfo(k, len(live.values[k][0]), live.values[k][1]) for k in chosen]
            more = start + limit < len(names)
            return page, (chosen[-1] if more else None)

    def stats(self, now: float) -> StoreStats:
        with self._lock:
            live = [s for s in self._sessions.values() if not s.expired(now) and s.values]
            expired = sum(1 for s in self._sessions.values() if s.expired(now))
            return StoreStats(
                sessions=len(live),
                keys=sum(len(s.values) for s in live),
                bytes=sum(s.bytes for s in live),
                expired=expired,
            )

    def purge_expired(self, now: float, progress: Callable[[int], object] | None = None) -> int:
        with self._lock:
            expired = [name for name, s in self._sessions.items() if s.expired(now)]
            for name in expired:
                del self._sessions[name]
        if progress is not None and expired:
            progress(len(expired))
        return len(expired)

    def close(self) -> None:
        with self._lock:
            self._sessions.clear()

    def read_sessions(
        self, now: float, cursor: str | None = None, *, limit: int = 100, max_bytes: int = 1 << 23
    ) -> tuple[list[SessionData], str | None]:
        # The cursor is [session] (go on after it) or [session, key] (go on inside it).
        after = [] if cursor is None else _cursor(cursor)
        first = after[0] if after else None
        page: list[SessionData] = []
        size = 0
        with self._lock:
            names = sorted(self._sessions)
            start = 0 if first is None else bisect.bisect_left(names, first)
            for name in names[start:]:
                live = self._live(name, now)
                if (name == first and len(after) == 1) or live is None or not live.values:
                    continue
                if page and (len(page) == limit or size >= max_bytes):
                    return page, json.dumps([page[-1].session])
                keys = sorted(live.values)
                if name == first and len(after) == 2:
                    keys = keys[bisect.bisect_right(keys, after[1]) :]
                items: dict[str, bytes] = {}
                for key in keys:
                    if items and size >= max_bytes:
                        page.append(SessionData(name, live.deadline, items, complete=False))
                        return page, json.dumps([name, next(reversed(items))])
                    items[key] = live.values[key][0]
                    size += len(items[key])
                if items:
                    page.append(SessionData(name, live.deadline, items))
            return page, None

    def write_sessions(
        self, batch: Sequence[SessionData], now: float, *, version: int, replace: bool = False
    ) -> list[bool]:
        written: list[bool] = []
        with self._lock:
            for data in batch:
                live = self._live(data.session, now)
                if live is not None and live.values and not replace:
                    written.append(False)
                    continue
                self._sessions.pop(data.session, None)
                self._write(data.session, data.items, data.deadline, now, version, None, None)
                written.append(True)
        return written

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "The in-memory backend cannot be pickled: its data lives in this process only. "
            "Use a SQLite file (DashDatabase('path.sqlite')) or Redis/PostgreSQL to share "
            "sessions between processes."
        )

    def __repr__(self) -> str:
        return "MemoryBackend()"


def _cursor(cursor: str) -> list[str]:
    try:
        after = json.loads(cursor)
    except ValueError:
        after = None
    if not (
        isinstance(after, list)
        and 1 <= len(after) <= 2
        and all(isinstance(part, str) for part in after)
    ):
        raise bad_cursor(cursor)
    return after


def _info(name: str, live: _Session) -> SessionInfo:
    return SessionInfo(name, len(live.values), live.bytes, live.deadline, live.written)
