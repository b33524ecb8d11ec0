"""The bulk operations an export and an import use: read_sessions and write_sessions."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from dash_database import InvalidArgumentError
from dash_database.backends import Backend, SessionData, SessionInfo
from tests.support import FakeClock

Contents = dict[str, tuple[float | None, dict[str, bytes]]]


def read_all(
    backend: Backend, now: float, limit: int = 100, max_bytes: int = 1 << 23
) -> tuple[Contents, list[list[SessionData]]]:
    """Read every page; return the sessions (continued parts joined) and the pages."""
    found: Contents = {}
    pages: list[list[SessionData]] = []
    cursor: str | None = None
    going_on: str | None = None
    for _ in range(1000):
        page, cursor = backend.read_sessions(now, cursor, limit=limit, max_bytes=max_bytes)
        pages.append(page)
        for data in page:
            if data.session == going_on:
                found[data.session][1].update(data.items)
            else:
                assert data.session not in found, f"{data.session!r} came twice"
                found[data.session] = (data.deadline, dict(data.items))
            going_on = None if data.complete else data.session
        if cursor is None:
            assert going_on is None
            return found, pages
    raise AssertionError("the enumeration did not end")


def test_written_sessions_read_back_with_values_and_deadlines(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    batch = [
        SessionData("plain", None, {"a": b"1", "": b"", "é\x00:*": b"\x00" * 3}),
        SessionData("later", clock.now + 60.25, {"k": b"v"}),
        SessionData("é\x00:*{x}", clock.now + 1e6, {"x": b"y" * 100}),
    ]

    assert [True, True, True] == backend.write_sessions(batch, clock.now, version=7)

    found, _ = read_all(backend, clock.now)
    assert {d.session: (d.deadline, d.items) for d in batch} == found
    assert (b"1", 7) == backend.get_versioned("plain", "a", clock.now)
    assert 1 + 1 + 0 + len("é\x00:*".encode()) + 3 == backend.session_bytes("plain", clock.now)
    listed = {info.session: info for info in backend.sessions(clock.now)[0]}
    assert SessionInfo("later", 1, 2, clock.now + 60.25, clock.now) == listed["later"]


def test_expired_sessions_are_not_read_and_are_written_over(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("old", {"stale": b"1"}, clock.now + 5, clock.now, version=1)
    backend.set_many("live", {"k": b"1"}, clock.now + 500, clock.now, version=1)
    clock.advance(10)

    assert {"live"} == set(read_all(backend, clock.now)[0])
    written = backend.write_sessions(
        [SessionData("old", clock.now + 60, {"fresh": b"2"})], clock.now, version=2
    )

    assert [True] == written
    assert {"old": (clock.now + 60, {"fresh": b"2"})} == {
        k: v for k, v in read_all(backend, clock.now)[0].items() if k == "old"
    }
    assert 2 == backend.stats(clock.now).sessions


def test_a_session_holding_keys_is_kept_unless_replace(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("taken", {"k": b"old", "other": b"kept"}, None, clock.now, version=1)
    batch = [SessionData("taken", None, {"k": b"new"}), SessionData("free", None, {"k": b"1"})]

    assert [False, True] == backend.write_sessions(batch, clock.now, version=2)
    assert [b"old", b"kept"] == backend.get_many("taken", ["k", "other"], clock.now)

    assert [True] == backend.write_sessions(batch[:1], clock.now, version=3, replace=True)
    assert [b"new", None] == backend.get_many("taken", ["k", "other"], clock.now)
    assert len("k") + 3 == backend.session_bytes("taken", clock.now)


def test_pages_keep_to_their_bounds_and_split_large_sessions(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    batch = [
        SessionData(f"s{i}", clock.now + i + 1, {f"k{j}": bytes([i, j]) * 50 for j in range(i)})
        for i in range(1, 9)
    ]
    backend.write_sessions(batch, clock.now, version=1)

    found, pages = read_all(backend, clock.now, limit=3, max_bytes=250)

    assert {d.session: (d.deadline, d.items) for d in batch} == found
    for page in pages:
        values = [len(v) for data in page for v in data.items.values()]
        assert len(page) <= 3
        assert sum(values[:-1]) < 250  # stops once the bound is reached: one value over at most
        assert page == [] or values
    assert any(not data.complete for page in pages for data in page)


def test_a_large_value_travels_whole(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    big = bytes(range(256)) * 4096  # 1 MiB
    batch = [
        SessionData("big", None, {"frame": big, "small": b"s"}),
        SessionData("x", None, {"k": b"1"}),
    ]

    assert [True, True] == backend.write_sessions(batch, clock.now, version=3)

    found, _ = read_all(backend, clock.now, max_bytes=1024)
    assert {"big": (None, {"frame": big, "small": b"s"}), "x": (None, {"k": b"1"})} == found
    assert big == backend.get("big", "frame", clock.now)


def test_a_cursor_from_elsewhere_is_refused(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    with pytest.raises(InvalidArgumentError, match="not a cursor"):
        backend.read_sessions(clock.now, "not a cursor")


def test_pages_read_during_writes_show_each_session_at_one_moment(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    reader, writer = backend_factory(), backend_factory()
    writer.set_many("hot", {"a": b"0", "b": b"0"}, None, clock.now, version=1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for n in range(1, 10_000):
                if stop.is_set():
                    return
                value = b"%d" % n
                writer.set_many("hot", {"a": value, "b": value}, None, clock.now, version=n)
                if n <= 200:
                    batch = [SessionData(f"new{n}", None, {"k": value})]
                    writer.write_sessions(batch, clock.now, version=n)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(20):
            found, _ = read_all(reader, clock.now, limit=7)
            a, b = found["hot"][1]["a"], found["hot"][1]["b"]
            assert a == b
    finally:
        stop.set()
        thread.join(30)
    assert [] == errors
    found, _ = read_all(reader, clock.now)
    written = [name for name in found if name.startswith("new")]
    assert all(found[name][1] == {"k": name[3:].encode()} for name in written)
    assert len(written) == max(int(name[3:]) for name in written)
