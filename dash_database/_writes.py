"""Reads and writes of :class:`~dash_database.DashDatabase` values: atomic writes of sealed
values with the session's deadline and limits, reads that renew the session, and atomic
updates (compare-and-set, retried with jittered pauses).

A mixin of the database class, on top of its codec and expiry bookkeeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ._codec import Codec
from ._expiry import Expiry
from .exceptions import UpdateConflictError

__all__ = ["UPDATE_ATTEMPTS", "Writes", "new_version"]

T = TypeVar("T")

#: An atomic update gives up after this many attempts that met a concurrent write.
UPDATE_ATTEMPTS = 100
# The longest pause between two attempts, in seconds (the pause doubles from 1 ms, jittered).
_UPDATE_MAX_PAUSE = 0.05


def new_version() -> int:
    """Return a version for one write: random, so a key written again after a delete never
    gets a version a reader saw before (``random`` reseeds itself in a forked child)."""
    return random.getrandbits(62) + 1


class Writes(Codec, Expiry):
    """Write and read sealed values through the backend."""

    max_session_bytes: int | None
    max_sessions: int | None
    update_attempts: int

    def _put(self, session: str, values: Mapping[str, Any]) -> int:
        """Serialize and write ``values`` atomically (all or none); return their version."""
        return self._write_sealed(
            session, {key: self._seal_value(session, key, value) for key, value in values.items()}
        )

    def _write(self, session: str, items: Mapping[str, bytes]) -> int:
        """Write the serialized ``items`` (from :meth:`_dumps`) atomically; return the version
        they were written with."""
        return self._write_sealed(
            session, {key: self._sealer.seal(session, key, data) for key, data in items.items()}
        )

    def _write_sealed(self, session: str, sealed: Mapping[str, bytes]) -> int:
        now = self._clock()
        deadline = self._deadline(session, now)
        version = new_version()
        self._backend.set_many(
            session,
            sealed,
            deadline,
            now,
            version=version,
            max_bytes=self.max_session_bytes,
            max_sessions=self.max_sessions,
        )
        self._after_write(session, now)
        return version

    def _get(self, session: str, key: str, default: T) -> Any | T:
        now = self._clock()
        data = self._backend.get(session, key, now)
        if data is None:
            return default
        if self.ttl:  # skip a call on the hot path when sessions never expire
            self._renew(session, now)
        return self._loads(session, key, data)

    def _get_versioned(self, session: str, key: str) -> tuple[Any, int] | None:
        """Return the value of ``key`` and the version it was written with, or ``None``."""
        now = self._clock()
        found = self._backend.get_versioned(session, key, now)
        if found is None:
            return None
        self._renew(session, now)
        return self._loads(session, key, found[0]), found[1]

    def _update(self, session: str, key: str, func: Callable[[Any], Any], default: Any) -> Any:
        pause = 0.001
        for _ in range(self.update_attempts):
            now = self._clock()
            found = self._backend.get_versioned(session, key, now)
            old, expected = (
                (default, None)
                if found is None
                else (self._loads(session, key, found[0]), found[1])
            )
            new = func(old)
            data = self._seal_value(session, key, new)
            deadline = self._deadline(session, now)
            if self._backend.compare_and_set(
                session,
                key,
                data,
                expected,
                deadline,
                now,
                version=new_version(),
                max_bytes=self.max_session_bytes,
                max_sessions=self.max_sessions,
            ):
                self._after_write(session, now)
                return new
            # Jittered, growing pauses let competing writers through one at a time.
            time.sleep(random.uniform(0, pause))
            pause = min(pause * 2, _UPDATE_MAX_PAUSE)
        raise UpdateConflictError(
            f"Could not update key {key!r}: another writer changed it at each of "
            f"{self.update_attempts} attempts. Nothing was written by the last one; try again "
            "later, or write this key from fewer places at once."
        )
