"""The one fork rule (``backends/_process.py``): a fork's child never inherits a lock held by
another thread of its parent (SQLite's own included), so its first call works whatever those
threads were doing. Dash background callbacks fork a server whose threads serve requests."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from dash_database import DashDatabase
from dash_database.backends._process import PerProcess
from tests.support import wait_child


def _in_child(check: Callable[[], bool]) -> int | None:
    """Fork; in the child call ``check()`` and exit 0 if it returns true; return the child's
    exit code (``None``: it hung and was killed)."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if check() else 1)
        finally:
            os._exit(2)
    return wait_child(pid, timeout=20.0)


def _fork_while(
    uses: list[Callable[[int], object]], check: Callable[[int], bool], forks: int
) -> list[int | None]:
    """Fork ``forks`` times while each of ``uses`` runs in a loop on a thread of its own (given
    the round's number); child ``i`` runs ``check(i)``. Return the children's exit codes."""
    stop = threading.Event()

    def loop(use: Callable[[int], object]) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            use(n)

    threads = [threading.Thread(target=loop, args=(use,)) for use in uses]
    for thread in threads:
        thread.start()
    try:
        return [_in_child(lambda i=i: check(i)) for i in range(forks)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def _writes_and_reads_back(db: DashDatabase, i: int) -> bool:
    db.store_user_value("child", "k", i)
    return bool(db.get_user_value("child", "k") == i)


def test_a_fork_while_other_threads_use_sqlite_makes_a_child_that_works(tmp_path: Path) -> None:
    # Before the fork waited for them, about one fork in ten (threads writing) made a child
    # that hung at its first SQLite call: SQLite's process-wide locks were copied held.
    shared = DashDatabase(tmp_path / "shared.sqlite")

    def open_use_and_drop(n: int) -> None:  # its writer thread stops when it is freed
        other = DashDatabase(tmp_path / f"other{n % 3}.sqlite")
        other.store_user_value("u", "k", n)
        assert n == other.get_user_value("u", "k")

    def child(i: int) -> bool:  # a database of its own
        with DashDatabase(tmp_path / f"child{i}.sqlite") as db:
            return _writes_and_reads_back(db, i)

    uses = [
        lambda n: shared.store_user_value("u", f"k{n % 20}", n),
        lambda n: shared.get_user_value("u", "k1"),
        open_use_and_drop,
    ]
    codes = _fork_while(uses, child, 150)
    shared.close()

    assert [0] * 150 == codes  # None: the child hung and was killed


def test_a_fork_while_threads_use_the_memory_store_and_metrics_makes_a_working_child() -> None:
    from prometheus_client import CollectorRegistry

    from dash_database.metrics import MetricsBackend

    db = DashDatabase(MetricsBackend(":memory:", registry=CollectorRegistry()))
    use = [
        lambda n: db.store_user_value("u", f"k{n % 10}", n),
        lambda n: db.get_user_value("u", "k1"),
    ]
    codes = _fork_while(use, lambda i: _writes_and_reads_back(db, i), 100)
    db.close()

    assert [0] * 100 == codes


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
