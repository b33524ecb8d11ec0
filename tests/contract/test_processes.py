"""Several processes on one store: separate instances, fork, and pickled handles.

The in-process memory backend is left out: its data lives in one process by design.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from typing import Any

import pytest

from tests.conftest import BACKENDS
from tests.support import join_processes, wait_child

SHARED = [name for name in BACKENDS if name != "memory"]
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend_name", SHARED)]


def _worker(blob: bytes, worker: int, count: int) -> None:
    db = pickle.loads(blob)
    for i in range(count):
        db.store_user_value(f"w{worker}", f"k{i}", i)
        db.store_user_value("shared", f"w{worker}-k{i}", i)
        assert i == db.get_user_value(f"w{worker}", f"k{i}")
    db.close()


def test_processes_sharing_one_store_lose_no_write(make_db: Any) -> None:
    db = make_db(clock=_wall_clock)
    workers, count = 3, 40
    ctx = multiprocessing.get_context("spawn")
    blob = pickle.dumps(db)
    processes = [ctx.Process(target=_worker, args=(blob, w, count)) for w in range(workers)]
    for process in processes:
        process.start()
    join_processes(processes)

    assert [0] * workers == [p.exitcode for p in processes]
    for w in range(workers):
        assert {f"k{i}": i for i in range(count)} == dict(db.session(f"w{w}"))
    assert workers * count == len(db.session("shared"))


def _write_from_pickled(blob: bytes) -> None:
    db = pickle.loads(blob)
    db.store_user_value("user", "from", "the other process")
    db.close()


def test_pickled_database_reopens_the_same_store_in_another_process(make_db: Any) -> None:
    db = make_db(ttl=3600, clock=_wall_clock)
    blob = pickle.dumps(db)
    process = multiprocessing.get_context("spawn").Process(target=_write_from_pickled, args=(blob,))
    process.start()
    join_processes([process])

    assert 0 == process.exitcode
    assert "the other process" == db.get_user_value("user", "from")
    copy = pickle.loads(blob)
    assert 3600 == copy.ttl
    assert "the other process" == copy.get_user_value("user", "from")
    copy.close()


def test_instance_created_before_fork_works_in_child_and_parent(make_db: Any) -> None:
    db = make_db()
    db.store_user_value("parent", "before", 1)
    assert 1 == db.get_user_value("parent", "before")  # opens the parent's connections

    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        ok = False
        try:
            ok = db.get_user_value("parent", "before") == 1
            db.store_user_value("child", "k", "from child")
            ok = ok and db.get_user_value("child", "k") == "from child"
            db.close()
        finally:
            os._exit(0 if ok else 1)
    assert 0 == wait_child(pid)
    assert "from child" == db.get_user_value("child", "k")
    db.store_user_value("parent", "after", 2)
    assert ["after", "before"] == db.list_stored_user_keys("parent")


def _wall_clock() -> float:
    # A module-level function pickles by reference into the spawned process, unlike the
    # test's fake clock; Redis's native expiry runs on real time anyway.
    import time

    return time.time()
