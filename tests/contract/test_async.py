"""The async API (``db.aio``, ``session.aio``) keeps the contract on every backend."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import dash_database as ddb
from dash_database import DashDatabase, _async
from tests.support import wait_child

pytestmark = pytest.mark.anyio

TASKS = 30


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_five_methods_round_trip(db: DashDatabase) -> None:
    await db.aio.store_user_value("alice", "frame", {"rows": [1, 2, 3]})
    await db.aio.store_user_value("alice", 7, "seven")

    assert {"rows": [1, 2, 3]} == await db.aio.get_user_value("alice", "frame")
    assert ["7", "frame"] == await db.aio.list_stored_user_keys("alice")
    await db.aio.delete_user_value("alice", 7)
    assert ["frame"] == await db.aio.list_stored_user_keys("alice")
    assert 1 == await db.aio.delete_all_user_values("alice")
    assert [] == await db.aio.list_stored_user_keys("alice")


async def test_async_writes_are_read_by_the_sync_api_and_back(db: DashDatabase) -> None:
    await db.aio.session("alice").set("a", 1)
    db.store_user_value("alice", "b", 2)

    assert 1 == db.get_user_value("alice", "a")
    assert 2 == await db.aio.get_user_value("alice", "b")


async def test_sessions_are_isolated(db: DashDatabase) -> None:
    alice, bob = db.aio.session("alice"), db.aio.session("bob")
    await alice.set("key", "alice's")
    await bob.set("key", "bob's")

    assert ("alice's", "bob's") == (await alice.get("key"), await bob.get("key"))
    await alice.clear()
    assert [] == await alice.keys()
    assert ["key"] == await bob.keys()


async def test_missing_keys_give_the_default_or_key_error(db: DashDatabase) -> None:
    session = db.aio.session("alice")

    assert await db.aio.get_user_value("alice", "nothing") is None
    assert "fallback" == await session.get("nothing", "fallback")
    assert not await session.contains("nothing")
    await db.aio.delete_user_value("alice", "nothing")  # "ignore" by default
    with pytest.raises(ddb.MissingKeyError):
        await db.aio.delete_user_value("alice", "nothing", if_not_exists="raise")
    with pytest.raises(KeyError):
        await session.delete("nothing")


async def test_session_mapping_operations(db: DashDatabase) -> None:
    session = db.session("alice").aio
    await session.update({"a": 1}, b=2)
    await session.delete("a")

    assert await session.contains("b")
    assert ["b"] == await session.keys()
    assert {"b": 2} == dict(session.sync)
    assert session.session_id == db.aio.session("alice").session_id


def plus_one(n: int) -> int:
    return n + 1


async def test_concurrent_update_value_tasks_lose_no_increment(db: DashDatabase) -> None:
    session = db.aio.session("shared")

    def sync_writer() -> None:  # another thread updates the same key meanwhile
        for _ in range(TASKS):
            db.update_user_value("shared", "count", plus_one, 0)

    with ThreadPoolExecutor(1) as other:
        await asyncio.gather(
            asyncio.get_running_loop().run_in_executor(other, sync_writer),
            *(session.update_value("count", plus_one, 0) for _ in range(TASKS)),
            *(
                db.aio.update_user_value("shared", "count", lambda n: n + 1, 0)
                for _ in range(TASKS)
            ),
        )

    assert 3 * TASKS == await session.get("count")


async def test_errors_are_dash_database_errors(make_db: Any) -> None:
    db = make_db(max_value_bytes=100, secret_key="k" * 32)
    await db.aio.store_user_value("alice", "key", "kept")

    with pytest.raises(ddb.InvalidIdTypeError):
        await db.aio.store_user_value(1.5, "key", 1)
    with pytest.raises(ddb.SerializationError):
        await db.aio.store_user_value("alice", "key", lambda: 0)
    with pytest.raises(ddb.ValueTooLargeError):
        await db.aio.session("alice").set("key", "x" * 1000)
    signed = db.new_session_id()
    # A character inside the signature: the last one also holds padding bits, which a
    # change may leave out of the decoded signature.
    i = len(signed) - 10
    with pytest.raises(ddb.InvalidSessionIdError):
        db.aio.session(signed[:i] + ("x" if signed[i] != "x" else "y") + signed[i + 1 :])
    assert "kept" == await db.aio.get_user_value("alice", "key")


async def test_a_coroutine_function_as_update_func_is_refused(db: DashDatabase) -> None:
    async def increment(n: int) -> int:
        return n + 1

    with pytest.raises(ddb.InvalidArgumentError, match="plain function"):
        await db.aio.update_user_value("alice", "n", increment, 0)
    with pytest.raises(ddb.InvalidArgumentError, match="plain function"):
        await db.aio.session("alice").update_value("n", increment, 0)
    assert [] == await db.aio.list_stored_user_keys("alice")


async def hold_the_worker_thread(db: DashDatabase, release: threading.Event) -> asyncio.Future[Any]:
    """Occupy the async API's one worker thread until ``release`` is set; return the call."""
    started = threading.Event()

    def wait(n: int) -> int:
        started.set()
        release.wait(10)
        return n + 1

    call = asyncio.ensure_future(db.aio.update_user_value("holder", "n", wait, 0))
    while not started.is_set():
        await asyncio.sleep(0.005)
    return call


async def test_the_event_loop_runs_on_while_a_call_waits_for_the_store(db: DashDatabase) -> None:
    release = threading.Event()
    call = await hold_the_worker_thread(db, release)
    other = asyncio.ensure_future(asyncio.sleep(0.01, result="ran"))

    assert "ran" == await other
    assert not call.done()
    release.set()
    assert 1 == await call


async def test_a_cancelled_write_not_yet_started_writes_nothing(db: DashDatabase) -> None:
    release = threading.Event()
    holder = await hold_the_worker_thread(db, release)
    write = asyncio.ensure_future(db.aio.session("alice").update(a=1, b=2))
    await asyncio.sleep(0.01)

    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    release.set()
    await holder

    assert [] == await db.aio.list_stored_user_keys("alice")


async def test_a_cancelled_write_in_flight_completes_whole(db: DashDatabase) -> None:
    release = threading.Event()
    update = await hold_the_worker_thread(db, release)

    update.cancel()
    with pytest.raises(asyncio.CancelledError):
        await update
    release.set()

    # The worker thread runs the next call after the cancelled update has finished.
    assert 1 == await db.aio.get_user_value("holder", "n")
    assert ["n"] == await db.aio.list_stored_user_keys("holder")


async def test_the_worker_thread_starts_the_next_call_once_the_loop_took_the_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker thread that went straight on to the next call would keep the GIL from the loop.
    monkeypatch.setattr(_async, "_HANDOFF_TIMEOUT", 10.0)
    db = DashDatabase(":memory:")
    first_ran, second_ran = threading.Event(), threading.Event()

    def first(n: int) -> int:
        first_ran.set()
        return 1

    def second(n: int) -> int:
        second_ran.set()
        return 2

    calls = [
        asyncio.ensure_future(db.aio.update_user_value("user", "a", first, 0)),
        asyncio.ensure_future(db.aio.update_user_value("user", "b", second, 0)),
    ]
    await asyncio.sleep(0)  # both calls are queued for the worker thread
    # The loop's thread waits here without running the loop, as a busy loop would.
    assert first_ran.wait(10)
    assert not second_ran.wait(0.2)

    assert [1, 2] == await asyncio.gather(*calls)
    db.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="this platform has no fork()")
def test_a_forked_child_runs_the_async_api_on_a_thread_of_its_own(tmp_path: Path) -> None:
    db = DashDatabase(tmp_path / "fork.sqlite")
    asyncio.run(db.aio.store_user_value("user", "key", "parent"))  # the parent's thread runs

    pid = os.fork()
    if pid == 0:  # the child: the parent's worker thread does not exist here
        try:
            read = asyncio.wait_for(db.aio.get_user_value("user", "key"), 10)
            ok = asyncio.run(read) == "parent"
            asyncio.run(asyncio.wait_for(db.aio.store_user_value("user", "child", "yes"), 10))
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    assert 0 == wait_child(pid)
    assert "yes" == db.get_user_value("user", "child")
    db.close()
