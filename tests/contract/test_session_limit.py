"""max_sessions: the first write of a new session is refused when the store is full, never
by evicting a live session; and get_many, the one-round-trip read of several keys."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from dash_database import DashDatabase, SessionLimitError
from dash_database.backends import Backend
from tests.conftest import BACKENDS
from tests.support import FakeClock, join_processes


def test_a_new_session_beyond_the_limit_is_refused_and_nothing_is_written(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("a", {"k": b"1"}, None, clock.now, version=1, max_sessions=2)
    backend.set_many("b", {"k": b"2"}, None, clock.now, version=1, max_sessions=2)

    with pytest.raises(SessionLimitError) as raised:
        backend.set_many("c", {"k": b"3", "j": b"4"}, None, clock.now, version=1, max_sessions=2)

    assert 2 == raised.value.limit
    assert [] == backend.keys("c", clock.now)
    assert (b"1", b"2") == (backend.get("a", "k", clock.now), backend.get("b", "k", clock.now))
    assert 2 == backend.stats(clock.now).sessions


def test_a_session_that_holds_keys_can_always_write(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("a", {"k": b"1"}, None, clock.now, version=1, max_sessions=1)

    backend.set_many("a", {"k": b"2", "j": b"3"}, None, clock.now, version=2, max_sessions=1)
    assert backend.compare_and_set("a", "n", b"4", None, None, clock.now, version=3, max_sessions=1)

    assert [b"2", b"3", b"4"] == backend.get_many("a", ["k", "j", "n"], clock.now)


def test_expired_and_cleared_sessions_free_their_place(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("a", {"k": b"1"}, clock.now + 5, clock.now, version=1, max_sessions=2)
    backend.set_many("b", {"k": b"2"}, None, clock.now, version=1, max_sessions=2)
    clock.advance(5)  # "a" expired but is not purged

    backend.set_many("c", {"k": b"3"}, None, clock.now, version=1, max_sessions=2)
    backend.clear("b", clock.now)
    backend.set_many("d", {"k": b"4"}, None, clock.now, version=1, max_sessions=2)

    assert {"c", "d"} == {info.session for info in backend.sessions(clock.now)[0]}
    with pytest.raises(SessionLimitError):
        backend.set_many("a", {"k": b"5"}, None, clock.now, version=2, max_sessions=2)


def test_compare_and_set_of_a_new_session_beyond_the_limit_is_refused(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("a", {"k": b"1"}, None, clock.now, version=1)

    with pytest.raises(SessionLimitError):
        backend.compare_and_set("b", "k", b"2", None, None, clock.now, version=2, max_sessions=1)
    assert backend.get_versioned("b", "k", clock.now) is None
    # A compare-and-set that does not match reports False before any limit is checked.
    assert not backend.compare_and_set(
        "b", "k", b"2", 7, None, clock.now, version=2, max_sessions=1
    )


def test_max_sessions_refuses_a_new_user_with_a_message_that_shows_the_fix(make_db: Any) -> None:
    db: DashDatabase = make_db(max_sessions=3)
    for user in ("u1", "u2", "u3"):
        db.store_user_value(user, "k", user)

    with pytest.raises(SessionLimitError, match="max_sessions=3") as raised:
        db.update_user_value("u4", "count", lambda n: n + 1, default=0)

    assert isinstance(raised.value, ValueError)
    assert "purge" in str(raised.value)
    db.store_user_value("u1", "more", 1)  # a live session keeps working
    assert [None, "u1"] == [db.get_user_value("u4", "count"), db.get_user_value("u1", "k")]


def test_get_many_returns_values_in_order_and_none_for_missing_keys(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"1", "b": b"", "c": b"3" * 100_000}, None, clock.now, version=1)
    backend.set_many("t", {"a": b"other"}, clock.now + 5, clock.now, version=1)

    assert [b"3" * 100_000, None, b"1", b""] == backend.get_many(
        "s", ["c", "missing", "a", "b"], clock.now
    )
    assert [] == backend.get_many("s", [], clock.now)
    clock.advance(5)
    assert [None] == backend.get_many("t", ["a"], clock.now)


def _claim(blob: bytes, worker: int, count: int, results: Any) -> None:
    db = pickle.loads(blob)
    refused = 0
    for i in range(count):
        try:
            db.store_user_value(f"w{worker}-{i}", "k", i)
        except SessionLimitError:
            refused += 1
    results.put(refused)
    db.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", [name for name in BACKENDS if name != "memory"])
def test_processes_racing_for_the_last_places_never_exceed_the_limit(make_db: Any) -> None:
    db = make_db(max_sessions=25, clock=_wall_clock)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    blob = pickle.dumps(db)
    processes = [ctx.Process(target=_claim, args=(blob, w, 15, results)) for w in range(3)]
    for process in processes:
        process.start()
    refused = sum(results.get(timeout=120) for _ in processes)
    join_processes(processes)

    assert [0, 0, 0] == [p.exitcode for p in processes]
    assert (25, 45 - 25) == (db.stats().sessions, refused)


def _wall_clock() -> float:
    import time

    return time.time()
