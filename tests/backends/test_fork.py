"""The one fork rule (``backends/_process.py``): a fork's child never inherits a lock held by
another thread of its parent, so its first call works whatever those threads were doing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from dash_database import DashDatabase
from dash_database.backends._process import PerProcess
from tests.support import wait_child


def _in_child(check: object) -> int | None:
    """Fork; in the child call ``check()`` and exit 0 if it returns true; return the child's
    exit code (``None``: it hung and was killed)."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if check() else 1)  # type: ignore[operator]
        finally:
            os._exit(2)
    return wait_child(pid, timeout=20.0)


def test_a_holder_another_thread_is_filling_at_the_fork_works_in_the_child() -> None:
    parent, inside, release = os.getpid(), threading.Event(), threading.Event()

    def make() -> str:
        if os.getpid() != parent:
            return "the child's"
        inside.set()
        release.wait(30)  # holds the holder's lock while the parent forks
        return "the parent's"

    holder = PerProcess(make)
    filler = threading.Thread(target=holder.get)
    filler.start()
    assert inside.wait(10)
    try:
        code = _in_child(lambda: holder.get() == "the child's" and holder.take() == "the child's")
    finally:
        release.set()
        filler.join(10)

    assert 0 == code
    assert "the parent's" == holder.get()


def test_a_fork_while_threads_use_the_memory_store_and_metrics_makes_a_working_child(
    tmp_path: Path,
) -> None:
    from prometheus_client import CollectorRegistry

    from dash_database.metrics import MetricsBackend

    db = DashDatabase(MetricsBackend(":memory:", registry=CollectorRegistry()))
    stop = threading.Event()

    def use() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            db.store_user_value("u", f"k{n % 10}", n)
            db.get_user_value("u", "k1")

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()

    def child(i: int) -> bool:  # the child's own session, written and read back
        db.store_user_value("c", "k", i)
        return bool(db.get_user_value("c", "k") == i)

    try:
        codes = [_in_child(lambda i=i: child(i)) for i in range(100)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        db.close()

    assert [0] * 100 == codes  # None: the child hung and was killed
