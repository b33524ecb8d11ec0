"""Several threads on one database lose nothing."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dash_database import DashDatabase
from dash_database.backends import Backend
from tests.support import FakeClock

THREADS = 8
OPS = 150


def test_threads_on_their_own_sessions_lose_no_write(db: DashDatabase) -> None:
    def work(thread: int) -> list[str]:
        errors = []
        for i in range(OPS):
            db.store_user_value(f"t{thread}", f"k{i % 10}", (thread, i))
            got = db.get_user_value(f"t{thread}", f"k{i % 10}")
            if got != (thread, i):
                errors.append(f"thread {thread} op {i} read {got!r}")
        return errors

    with ThreadPoolExecutor(THREADS) as pool:
        errors = [e for result in pool.map(work, range(THREADS)) for e in result]

    assert errors == []
    for thread in range(THREADS):
        assert [f"k{i}" for i in range(10)] == db.list_stored_user_keys(f"t{thread}")


def test_threads_writing_distinct_keys_of_one_session_lose_none(db: DashDatabase) -> None:
    def work(thread: int) -> None:
        for i in range(OPS // 3):
            db.store_user_value("shared", f"{thread}-{i}", i)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))

    expected = sorted(f"{t}-{i}" for t in range(THREADS) for i in range(OPS // 3))
    assert expected == db.list_stored_user_keys("shared")


def test_concurrent_updates_leave_one_whole_update(make_db: Any) -> None:
    db = make_db()

    def work(thread: int) -> None:
        for i in range(30):
            db.session("shared").update({key: (thread, i) for key in "abcde"})

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))

    final = dict(db.session("shared"))
    assert set("abcde") == set(final)
    assert len(set(final.values())) == 1, final


def test_get_many_during_writes_sees_one_write_whole(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    # set_many is atomic for readers too: a get_many of the keys written together sees them
    # all from one write, even where values live in files that writers replace.
    reader, writer = backend_factory(), backend_factory()
    writer.set_many("hot", {"a": b"0", "b": b"0", "c": b"0"}, None, clock.now, version=1)
    stop, errors = threading.Event(), list[BaseException]()

    def write() -> None:
        try:
            for n in itertools.count(1):
                if stop.is_set():
                    return
                value = b"%d" % n
                items = {"a": value, "b": value, "c": value}
                writer.set_many("hot", items, None, clock.now, version=n + 1)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    seen: list[list[bytes | None]] = []
    try:
        until = time.monotonic() + 0.3  # many of the interpreter's switches between threads
        while len(seen) < 300 or time.monotonic() < until:
            seen.append(reader.get_many("hot", ["a", "b", "c"], clock.now))
    finally:
        stop.set()
        thread.join(30)
    assert [] == errors
    assert [] == [values for values in seen if len(set(values)) != 1]
    assert len({values[0] for values in seen}) > 1  # the reads overlapped the writes
