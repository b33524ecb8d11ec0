"""The backend protocol: the whole seam between DashDatabase and a store.

A backend stores bytes under (session, key) pairs. It knows nothing of serializers, id
formats, signing or time-to-live policies: DashDatabase validates ids, serializes values,
computes deadlines, reads the clock and draws versions, then passes plain ``str`` ids,
``bytes`` values, ``now`` (seconds since the epoch, from the injected clock) and ``int``
versions to the backend. The contract suite in ``tests/contract`` runs every rule below
against every backend and every variant of one (``sqlite-files``, ...).

Expiry. A session may carry a *deadline*. A session whose deadline is ``<= now`` is expired:
every method behaves as if the session held no keys, and a write to it first discards what it
held. A session without a deadline never expires. Expired data stays in the store until
``purge_expired`` (or a write to that session) removes it. A write's ``deadline`` replaces the
session's deadline when it is ``None`` (the session no longer expires); otherwise the later of
the two is kept.

Versions. Every write stores, with each key it writes, the ``version`` the caller passes (a
positive int the core draws at random for each write, so a key deleted and written again never
gets its old version back). ``get_versioned`` returns it and ``compare_and_set`` writes only
while it is unchanged: that is the atomic read-modify-write the core builds on.

Byte totals. A session's *size* is the sum, over its live keys, of the UTF-8 length of the key
plus the length of the value. Backends keep it (and the key count and the time of the last
write) with the session, so that ``session_bytes``, ``sessions`` and a quota check never read
values. A write given ``max_bytes`` raises :class:`~dash_database.QuotaExceededError` (built
with :meth:`~dash_database.QuotaExceededError.for_write`) and writes nothing when the session's
size after the write would exceed it; replacing a value counts the difference. Nothing is ever
evicted to make room.

Session count. A write given ``max_sessions`` that would give a session with no live keys its
first key raises :class:`~dash_database.SessionLimitError` (built with
:meth:`~dash_database.SessionLimitError.for_write`) and writes nothing when the store already
holds ``max_sessions`` live sessions (sessions with at least one key whose deadline has not
passed; expired ones do not count, whether purged or not). Writes to a session that already
holds live keys are never refused for this reason, and no live session is ever evicted.

Ids. Session ids and keys are any valid Unicode text (NUL, separators, glob and SQL
metacharacters, up to megabytes long); distinct (session, key) pairs never collide.

Guarantees every backend gives:

- Every method is safe to call from several threads at once, and from several processes
  (or hosts) sharing one store (where the store can be shared at all).
- A write that returned is visible to every later read, in any thread or process.
- ``set_many``, ``compare_and_set``, ``clear`` and ``rename`` are atomic: all of it or nothing,
  also against concurrent writers in other processes.
- Writes cost O(keys written), never O(keys in the session) per key; ``keys``, ``clear`` and
  ``rename`` cost O(keys of that session); enumeration costs O(page), never loads values.
- ``purge_expired`` works in bounded batches: it never holds one giant transaction or script,
  so live requests wait at most for one batch.
- Every wait is bounded. A failure of the store (a driver error, a full disk, a server that
  went away or froze, a damaged file) raises :class:`~dash_database.BackendError` chained from
  the cause, and leaves the stored data as it was before the failed call.
- ``close`` releases what the backend holds; it may be called more than once. After
  ``fork()`` the child never uses the parent's connections (``_process.py`` has the one rule).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

__all__ = ["Backend", "KeyInfo", "Page", "SessionData", "SessionInfo", "StoreStats"]


@dataclass(frozen=True)
class SessionInfo:
    """One live session, as :meth:`Backend.sessions` lists it."""

    session: str
    #: How many keys it holds.
    keys: int
    #: Its size: UTF-8 length of each key plus the length of each value.
    bytes: int
    #: When it expires (seconds since the epoch), or ``None``.
    deadline: float | None
    #: The ``now`` of the last call that changed its keys.
    written: float


@dataclass(frozen=True)
class KeyInfo:
    """One key of a session, as :meth:`Backend.session_keys` lists it."""

    key: str
    #: The length of the stored value.
    bytes: int
    #: The version the last write of this key stored.
    version: int


@dataclass(frozen=True)
class StoreStats:
    """What a store holds, from :meth:`Backend.stats`."""

    #: Live sessions (with at least one key).
    sessions: int
    #: Keys of live sessions.
    keys: int
    #: Total size of live sessions (see :class:`SessionInfo`).
    bytes: int
    #: Sessions that expired and are still in the store until ``purge_expired``.
    expired: int


@dataclass(frozen=True)
class SessionData:
    """A session's keys and stored values, as :meth:`Backend.read_sessions` pages them and
    :meth:`Backend.write_sessions` takes them."""

    session: str
    #: When it expires (seconds since the epoch), or ``None``.
    deadline: float | None
    #: Its keys and their stored bytes (of one page, when ``complete`` is false).
    items: dict[str, bytes]
    #: ``False`` when more of its keys follow, at the start of the next page.
    complete: bool = True


#: A page of an enumeration and the cursor of the next page (``None``: this was the last).
Page = tuple[list[SessionInfo], Optional[str]]


@runtime_checkable
class Backend(Protocol):
    """What a store must provide to back a :class:`~dash_database.DashDatabase`."""

    @property
    def secret_file(self) -> str | None:
        """Where a secret key generated for an app on this store is kept: a file path, or
        ``None`` to keep it in this process's memory (a store that lives in one process)."""
        ...

    def get(self, session: str, key: str, now: float) -> bytes | None:
        """Return the bytes stored under ``(session, key)``, or ``None`` when the key is
        missing or the session expired."""
        ...

    def get_versioned(self, session: str, key: str, now: float) -> tuple[bytes, int] | None:
        """Return the bytes stored under ``(session, key)`` and their version, or ``None``."""
        ...

    def get_many(self, session: str, keys: Sequence[str], now: float) -> list[bytes | None]:
        """Return the bytes stored under each of ``keys`` of ``session``, in order, ``None``
        for a missing key (all ``None`` when the session expired), in one round trip."""
        ...

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
        """Store every item of ``items`` in ``session`` with ``version``, atomically, and set
        the session's deadline.

        Raises:
            QuotaExceededError: ``max_bytes`` is given and the session's size after the write
                would exceed it; nothing was written.
            SessionLimitError: ``max_sessions`` is given, the session holds no live key and
                the store already holds that many live sessions; nothing was written.
        """
        ...

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
        """Store ``value`` under ``(session, key)`` with ``version`` and set the deadline, as
        :meth:`set_many` does, only if the key's current version is ``expected`` (``None``:
        only if the key is missing or its session expired). Return whether it wrote.

        The check and the write are one atomic step against every other writer.

        Raises:
            QuotaExceededError: as :meth:`set_many` (only when the versions matched).
            SessionLimitError: as :meth:`set_many` (only when the versions matched).
        """
        ...

    def delete(self, session: str, key: str, now: float) -> bool:
        """Remove ``(session, key)``; return whether a live key was removed.

        A session left without keys keeps its deadline until it expires or is cleared.
        """
        ...

    def keys(self, session: str, now: float) -> list[str]:
        """Return the key names of a live session, in any order; ``[]`` when it expired."""
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

    def rename(self, session: str, new_session: str, now: float) -> int:
        """Move every key of live ``session`` (values, versions, deadline) to ``new_session``
        in one atomic step and return how many keys moved; ``session`` is left empty.

        Whatever ``new_session`` held before is discarded. An expired or missing ``session``
        moves nothing, returns 0 and leaves ``new_session`` as it was (its own expired data is
        discarded), so a rename sent twice after a lost reply loses nothing.
        """
        ...

    def session_bytes(self, session: str, now: float) -> int:
        """Return the size of a live session (see :class:`SessionInfo`); 0 when it is
        missing or expired."""
        ...

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        """Return a page of at most ``limit`` live sessions, and the cursor of the next page.

        Start with ``cursor=None``; pass each returned cursor back until it is ``None``. A
        session that exists, unchanged, during the whole enumeration is listed exactly once; a
        page may be shorter than ``limit`` before the last. The cursor is an opaque string: one
        that no call returned raises :class:`~dash_database.InvalidArgumentError`, or, where
        cursors are positions (a name), starts after that position.
        """
        ...

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        """Return a page of at most ``limit`` keys of a live session with their sizes and
        versions, and the cursor of the next page, as :meth:`sessions` does, with one
        exception: a store whose own scan may repeat an entry (Redis's ``HSCAN`` while it
        rehashes a large hash) may list a key twice, in different pages; never skips one."""
        ...

    def stats(self, now: float) -> StoreStats:
        """Return how many live sessions, keys and bytes the store holds, and how many expired
        sessions wait for ``purge_expired``. Never reads values."""
        ...

    def purge_expired(self, now: float, progress: Callable[[int], object] | None = None) -> int:
        """Remove every expired session and its data, in bounded batches; return how many
        sessions were removed. A session renewed meanwhile by another process is kept.

        ``progress``, when given, is called after each batch with the number of sessions that
        batch removed (so an operator's tool can show how far it got).
        """
        ...

    def read_sessions(
        self, now: float, cursor: str | None = None, *, limit: int = 100, max_bytes: int = 1 << 23
    ) -> tuple[list[SessionData], str | None]:
        """Return a page of live sessions with every key and its stored bytes, and the cursor
        of the next page, as :meth:`sessions` does (an export reads a store with it).

        A page holds at most ``limit`` sessions and stops taking keys once their values add
        up to ``max_bytes`` or more, so it holds at most ``max_bytes`` plus one value, and at
        least one key. A session whose keys do not all fit ends the page with ``complete``
        false and goes on at the start of the next page (one or more). Each page is read in
        one round trip (one transaction, script or statement) and is consistent: a session
        whole in one page shows one moment of it. A session that exists, unchanged, during the
        whole enumeration comes exactly once with all its keys; sessions without live keys
        never come.
        """
        ...

    def write_sessions(
        self, batch: Sequence[SessionData], now: float, *, version: int, replace: bool = False
    ) -> list[bool]:
        """Write each session of ``batch`` (distinct names) whole, as :meth:`set_many` would
        into a session that held nothing: its items with ``version``, and its deadline.
        Return, for each, whether it was written (an import writes a store with it).

        A session that already holds live keys is kept as it is (``False``), unless
        ``replace``: then what it held is discarded first. Each session's check and write are
        one atomic step; the batch costs one round trip or transaction (a few when it outgrows
        one statement), so a batch that fails part way may have written its first sessions.
        No quota applies. Where the store has a threshold for large values (value files,
        ``COPY``), those rules hold as for ``set_many``.
        """
        ...

    def close(self) -> None:
        """Release connections and files. Calling it twice is harmless."""
        ...
