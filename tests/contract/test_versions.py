"""Versions and compare-and-set: the atomic read-modify-write, on every backend."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Callable
from typing import Any

import pytest

from dash_database import DashDatabase, UpdateConflictError
from dash_database.backends import Backend
from tests.conftest import BACKENDS
from tests.support import FakeClock, join_processes


def test_a_missing_key_has_no_version(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()

    assert backend.get_versioned("s", "k", clock.now) is None


def test_a_write_stores_its_version(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"1", "b": b"2"}, None, clock.now, version=7)

    assert (b"1", 7) == backend.get_versioned("s", "a", clock.now)
    assert (b"2", 7) == backend.get_versioned("s", "b", clock.now)


def test_compare_and_set_writes_only_over_the_expected_version(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"k": b"old"}, None, clock.now, version=1)

    stale = backend.compare_and_set("s", "k", b"lost", 99, None, clock.now, version=2)
    assert not stale
    assert (b"old", 1) == backend.get_versioned("s", "k", clock.now)

    fresh = backend.compare_and_set("s", "k", b"new", 1, None, clock.now, version=3)
    assert fresh
    assert (b"new", 3) == backend.get_versioned("s", "k", clock.now)


def test_compare_and_set_expecting_none_creates_only_a_missing_key(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()

    assert backend.compare_and_set("s", "k", b"first", None, None, clock.now, version=1)
    assert not backend.compare_and_set("s", "k", b"second", None, None, clock.now, version=2)
    assert (b"first", 1) == backend.get_versioned("s", "k", clock.now)


def test_compare_and_set_takes_an_expired_session_as_empty(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"k": b"old", "other": b"x"}, clock.now + 10, clock.now, version=1)
    clock.advance(10)

    assert not backend.compare_and_set("s", "k", b"no", 1, None, clock.now, version=2)
    assert backend.compare_and_set("s", "k", b"new", None, clock.now + 10, clock.now, version=3)
    assert ["k"] == backend.keys("s", clock.now)
    assert (b"new", 3) == backend.get_versioned("s", "k", clock.now)


def test_compare_and_set_sets_the_deadline_as_a_write_does(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"1"}, clock.now + 100, clock.now, version=1)

    assert backend.compare_and_set("s", "b", b"2", None, clock.now + 50, clock.now, version=2)
    clock.advance(99)
    assert ["a", "b"] == sorted(backend.keys("s", clock.now))
    clock.advance(1)
    assert [] == backend.keys("s", clock.now)


def test_a_deleted_and_rewritten_key_does_not_match_its_old_version(make_db: Any) -> None:
    db: DashDatabase = make_db()
    db.store_user_value("s", "k", 1)
    _, seen = db.backend.get_versioned("s", "k", 0.0) or (b"", 0)
    db.delete_user_value("s", "k")
    db.store_user_value("s", "k", 1)

    assert not db.backend.compare_and_set("s", "k", b"x", seen, None, 0.0, version=5)


def test_update_user_value_starts_from_the_default(db: DashDatabase) -> None:
    assert 1 == db.update_user_value("user", "count", lambda n: n + 1, default=0)
    assert 2 == db.update_user_value("user", "count", lambda n: n + 1, default=0)
    assert 2 == db.get_user_value("user", "count")


def test_session_update_value_is_the_same_operation(db: DashDatabase) -> None:
    session = db.session("user")

    assert ["a"] == session.update_value("items", lambda items: [*items, "a"], default=[])
    assert ["a", "b"] == session.update_value("items", lambda items: [*items, "b"], default=[])


def test_threads_incrementing_one_key_lose_no_increment(db: DashDatabase) -> None:
    threads, increments = 6, 40

    def work() -> None:
        for _ in range(increments):
            db.update_user_value("shared", "counter", lambda n: n + 1, default=0)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)

    assert threads * increments == db.get_user_value("shared", "counter")


def test_an_update_that_always_meets_a_concurrent_write_gives_up(make_db: Any) -> None:
    db: DashDatabase = make_db(update_attempts=3)
    other: DashDatabase = make_db()
    db.store_user_value("s", "k", 0)
    calls = []

    def meddle(value: int) -> int:
        calls.append(value)
        other.store_user_value("s", "k", 100 + len(calls))  # a writer that always comes first
        return value + 1

    with pytest.raises(UpdateConflictError, match="3 attempts"):
        db.update_user_value("s", "k", meddle)

    assert 3 == len(calls)
    assert 103 == db.get_user_value("s", "k")


def _increment(blob: bytes, count: int) -> None:
    db = pickle.loads(blob)
    for _ in range(count):
        db.update_user_value("shared", "counter", lambda n: n + 1, default=0)
    db.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", [name for name in BACKENDS if name != "memory"])
def test_processes_incrementing_one_key_lose_no_increment(make_db: Any) -> None:
    db: DashDatabase = make_db(clock=_wall_clock)
    processes, increments = 3, 60
    ctx = multiprocessing.get_context("spawn")
    blob = pickle.dumps(db)
    workers = [ctx.Process(target=_increment, args=(blob, increments)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    join_processes(workers, 180)

    assert [0] * processes == [worker.exitcode for worker in workers]
    assert processes * increments == db.get_user_value("shared", "counter")


def _wall_clock() -> float:
    import time

    return time.time()
