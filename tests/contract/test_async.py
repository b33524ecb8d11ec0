"""The async API (``db.aio``, ``session.aio``) keeps the contract on every backend."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import dash_database as ddb
from dash_database import DashDatabase

pytestmark = pytest.mark.anyio

TASKS = 50


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def on_one_worker_thread(scenario: Callable[[ThreadPoolExecutor], Awaitable[None]]) -> None:
    """Run ``scenario(pool)`` in a new event loop whose only worker thread is ``pool``'s, so
    the test decides what runs when."""

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            asyncio.get_running_loop().set_default_executor(pool)
            await scenario(pool)

    asyncio.run(main())


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


async def test_concurrent_update_value_tasks_lose_no_increment(db: DashDatabase) -> None:
    session = db.aio.session("shared")

    await asyncio.gather(
        *(session.update_value("count", lambda n: n + 1, 0) for _ in range(TASKS)),
        *(db.aio.update_user_value("shared", "count", lambda n: n + 1, 0) for _ in range(TASKS)),
    )

    assert 2 * TASKS == await session.get("count")


async def test_errors_are_dash_database_errors(make_db: Any) -> None:
    db = make_db(max_value_bytes=100, secret_key="k" * 32)
    await db.aio.store_user_value("alice", "key", "kept")

    with pytest.raises(ddb.InvalidIdTypeError):
        await db.aio.store_user_value(1.5, "key", 1)
    with pytest.raises(ddb.SerializationError):
        await db.aio.store_user_value("alice", "key", lambda: 0)
    with pytest.raises(ddb.ValueTooLargeError):
        await db.aio.session("alice").set("key", "x" * 1000)
    with pytest.raises(ddb.InvalidSessionIdError):
        db.aio.session(db.new_session_id()[:-1] + "x")
    assert "kept" == await db.aio.get_user_value("alice", "key")


async def test_a_coroutine_function_as_update_func_is_refused(db: DashDatabase) -> None:
    async def increment(n: int) -> int:
        return n + 1

    with pytest.raises(ddb.InvalidArgumentError, match="plain function"):
        await db.aio.update_user_value("alice", "n", increment, 0)
    with pytest.raises(ddb.InvalidArgumentError, match="plain function"):
        await db.aio.session("alice").update_value("n", increment, 0)
    assert [] == await db.aio.list_stored_user_keys("alice")


def test_a_cancelled_write_not_yet_started_writes_nothing(db: DashDatabase) -> None:
    async def scenario(pool: ThreadPoolExecutor) -> None:
        release = threading.Event()
        busy = pool.submit(release.wait, 10)  # the only worker thread is taken
        write = asyncio.ensure_future(db.aio.session("alice").update(a=1, b=2))
        await asyncio.sleep(0.05)
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        release.set()
        busy.result(timeout=10)

        assert [] == await db.aio.list_stored_user_keys("alice")

    on_one_worker_thread(scenario)


def test_a_cancelled_write_in_flight_completes_whole(db: DashDatabase) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_increment(n: int) -> int:
        started.set()
        release.wait(10)
        return n + 1

    async def scenario(pool: ThreadPoolExecutor) -> None:
        update = asyncio.ensure_future(db.aio.update_user_value("alice", "n", slow_increment, 0))
        while not started.is_set():
            await asyncio.sleep(0.005)
        update.cancel()
        with pytest.raises(asyncio.CancelledError):
            await update
        release.set()

        # The one worker thread runs the next call after the update has finished.
        assert 1 == await db.aio.get_user_value("alice", "n")
        assert ["n"] == await db.aio.list_stored_user_keys("alice")

    on_one_worker_thread(scenario)
