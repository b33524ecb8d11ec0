"""Store statistics stay exact through every kind of change (backends may keep running totals)."""

from __future__ import annotations

from collections.abc import Callable

from dash_database.backends import Backend, SessionData, StoreStats
from tests.support import FakeClock


def _recount(backend: Backend, now: float, expired: int) -> StoreStats:
    """The statistics summed from an enumeration of the live sessions."""
    sessions = keys = size = 0
    cursor = None
    while True:
        page, cursor = backend.sessions(now, cursor, 100)
        for info in page:
            sessions, keys, size = sessions + 1, keys + info.keys, size + info.bytes
        if cursor is None:
            return StoreStats(sessions, keys, size, expired)


def test_stats_stay_exact_after_replace_delete_expiry_rename_clear_and_purge(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()

    def check(expected: StoreStats) -> None:
        assert expected == backend.stats(clock.now)
        assert expected == _recount(backend, clock.now, expected.expired)

    t = clock.now
    backend.set_many("a", {"k": b"12", "l": b"345"}, t + 100, t, version=1)
    backend.set_many("b", {"k": b"1"}, t + 5, t, version=1)
    backend.set_many("c", {"x": b"1234"}, None, t, version=1)
    backend.set_many("d", {"k": b"1", "m": b"22"}, t + 5, t, version=1)
    check(StoreStats(4, 6, 3 + 4 + 2 + 5 + 2 + 3, 0))

    backend.set_many("a", {"k": b"123456"}, t + 100, t, version=2)  # 4 bytes more
    assert backend.delete("a", "l", t)
    check(StoreStats(4, 5, 7 + 2 + 5 + 5, 0))

    clock.advance(10)  # b and d expire, unpurged
    check(StoreStats(2, 2, 7 + 5, 2))
    backend.set_many("b", {"n": b"12"}, clock.now + 100, clock.now, version=3)  # a fresh start
    check(StoreStats(3, 3, 7 + 5 + 3, 1))

    assert 1 == backend.rename("c", "a", clock.now)  # what a held is discarded
    assert 0 == backend.rename("c", "e", clock.now)
    check(StoreStats(2, 2, 5 + 3, 1))

    assert 0 == backend.clear("d", clock.now)  # expired: removed, but no live key
    backend.set_many("f", {"k": b"1"}, clock.now + 5, clock.now, version=4)
    assert backend.delete("f", "k", clock.now)  # keeps its deadline, holds nothing
    check(StoreStats(2, 2, 5 + 3, 0))

    clock.advance(10)
    assert 1 == backend.purge_expired(clock.now)  # f
    check(StoreStats(2, 2, 5 + 3, 0))
    assert 1 == backend.clear("a", clock.now)
    assert 1 == backend.clear("b", clock.now)
    check(StoreStats(0, 0, 0, 0))

    # Bulk writes (an import): new sessions, one kept, one replaced.
    now = clock.now
    backend.set_many("g", {"k": b"1"}, None, now, version=5)
    batch = [
        SessionData("g", None, {"a": b"1234"}),  # holds keys: kept
        SessionData("h", now + 50, {"k": b"12", "l": b"3"}),
    ]
    assert [False, True] == backend.write_sessions(batch, now, version=6)
    check(StoreStats(2, 3, 2 + 3 + 2, 0))
    replacing = [SessionData("h", None, {"z": b"123456"})]
    assert [True] == backend.write_sessions(replacing, now, version=7, replace=True)
    check(StoreStats(2, 2, 2 + 7, 0))
    backend.close()
