"""Several threads on one database lose nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dash_database import DashDatabase

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
