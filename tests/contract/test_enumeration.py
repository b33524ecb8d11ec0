"""Paged enumeration of sessions and keys, store statistics, and rename."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash_database import DashDatabase, InvalidArgumentError
from dash_database.backends import Backend, KeyInfo, SessionInfo
from tests.support import FakeClock


def _all_sessions(backend: Backend, now: float, limit: int) -> list[SessionInfo]:
    found: list[SessionInfo] = []
    cursor = None
    for _ in range(1000):
        page, cursor = backend.sessions(now, cursor, limit)
        assert len(page) <= limit
        found.extend(page)
        if cursor is None:
            return found
    raise AssertionError("the enumeration did not end")


def _all_keys(backend: Backend, session: str, now: float, limit: int) -> list[KeyInfo]:
    found: list[KeyInfo] = []
    cursor = None
    for _ in range(1000):
        page, cursor = backend.session_keys(session, now, cursor, limit)
        found.extend(page)
        if cursor is None:
            return found
    raise AssertionError("the enumeration did not end")


def test_sessions_lists_every_live_session_once_with_its_figures(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    names = [f"s{i}" for i in range(23)] + ["", "é\x00:*{x}", "s1:"]
    for i, name in enumerate(names):
        backend.set_many(name, {"a": b"x" * i, "bb": b""}, None, clock.now + i, version=1)
    backend.set_many("gone", {"a": b"x"}, clock.now + 1, clock.now, version=1)
    clock.advance(1000)

    listed = _all_sessions(backend, clock.now, limit=5)

    assert sorted(names) == sorted(info.session for info in listed)
    by_name = {info.session: info for info in listed}
    for i, name in enumerate(names):
        expected = SessionInfo(name, 2, (1 + i) + 2, None, clock.now - 1000 + i)
        assert expected == by_name[name]


def test_sessions_reports_the_deadline(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"1"}, clock.now + 60, clock.now, version=1)

    page, cursor = backend.sessions(clock.now)

    assert ([SessionInfo("s", 1, 2, clock.now + 60, clock.now)], None) == (page, cursor)


def test_an_empty_store_lists_nothing(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    assert ([], None) == backend_factory().sessions(clock.now)


def test_session_keys_pages_through_keys_with_sizes_and_versions(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    keys = {f"k{i:02}": b"v" * i for i in range(17)}
    backend.set_many("s", keys, None, clock.now, version=3)
    backend.set_many("s", {"k05": b"new"}, None, clock.now, version=4)
    backend.set_many("other", {"x": b"1"}, None, clock.now, version=5)

    listed = _all_keys(backend, "s", clock.now, limit=4)

    expected = {KeyInfo(k, len(v), 3) for k, v in keys.items() if k != "k05"}
    assert expected | {KeyInfo("k05", 3, 4)} == set(listed)
    assert len(keys) == len(listed)
    assert ([], None) == backend.session_keys("missing", clock.now)


def test_session_keys_lists_every_key_kept_while_others_come_and_go(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    # On Redis, a small hash is one HSCAN batch: every kept key exactly once. A hash table that
    # Redis is still rehashing (it grows one bucket per command) may return a key twice, never
    # lose one: every kept key at least once.
    assert [1] == _list_while_keys_come_and_go(backend, clock, "small", b"v")
    assert 1 <= min(_list_while_keys_come_and_go(backend, clock, "table", b"v" * 100))


def _list_while_keys_come_and_go(backend: Backend, clock: FakeClock, s: str, v: bytes) -> list[int]:
    """List session ``s``'s keys in pages while keys come and go; return how many times each
    key kept throughout was listed (distinct counts, sorted)."""
    backend.set_many(s, {f"k{i:02}": v for i in range(20)}, None, clock.now, version=1)
    first, cursor = backend.session_keys(s, clock.now, None, 5)
    listed = [info.key for info in first]
    # Between pages, two listed keys go, and keys that sort before and after the others come.
    for gone in listed[:2]:
        backend.delete(s, gone, clock.now)
    backend.set_many(s, {"a-new": v, "z-new": v}, None, clock.now, version=2)
    while cursor is not None:
        page, cursor = backend.session_keys(s, clock.now, cursor, 5)
        assert len(page) <= 5
        listed += [info.key for info in page]

    kept = {f"k{i:02}" for i in range(20)} - set(listed[:2])
    assert len(kept) == 18
    return sorted({listed.count(key) for key in kept})


def test_a_cursor_no_call_returned_is_refused_or_read_as_a_position(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    # A cursor is opaque: one that was never returned (a typo, a forged request to an admin
    # page) is an InvalidArgumentError, or a store whose cursors are positions (a session or
    # key name) reads it as one. Never a store error, never another session's data.
    backend = backend_factory()
    backend.set_many("s", {"k": b"v"}, None, clock.now, version=1)
    for cursor in ("not a cursor", "zz:zz", "-1", "12:", "\x00", "[1, 2, 3]"):
        for call, args in (
            (backend.sessions, (clock.now, cursor, 10)),
            (backend.session_keys, ("s", clock.now, cursor, 10)),
        ):
            try:
                page, _ = call(*args)  # type: ignore[operator]
            except InvalidArgumentError as exc:
                assert "not a cursor" in str(exc)
            else:
                assert {getattr(i, "session", "s") for i in page} <= {"s"}
                assert {getattr(i, "key", "k") for i in page} <= {"k"}


def test_stats_count_live_sessions_and_expired_ones_waiting_for_a_purge(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("a", {"k": b"12", "l": b""}, None, clock.now, version=1)
    backend.set_many("b", {"k": b"1"}, clock.now + 200, clock.now, version=1)
    backend.set_many("c", {"k": b"1"}, clock.now + 5, clock.now, version=1)
    clock.advance(10)

    stats = backend.stats(clock.now)

    assert (2, 3, (1 + 2) + (1 + 0) + (1 + 1), 1) == (
        stats.sessions,
        stats.keys,
        stats.bytes,
        stats.expired,
    )
    assert 1 == backend.purge_expired(clock.now)
    assert 0 == backend.stats(clock.now).expired


def test_rename_moves_values_versions_and_deadline(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("old", {"a": b"1", "b": b"2"}, clock.now + 50, clock.now, version=9)
    backend.set_many("new", {"stale": b"x"}, None, clock.now, version=1)

    assert 2 == backend.rename("old", "new", clock.now)

    assert [] == backend.keys("old", clock.now)
    assert ["a", "b"] == sorted(backend.keys("new", clock.now))
    assert (b"1", 9) == backend.get_versioned("new", "a", clock.now)
    assert 4 == backend.session_bytes("new", clock.now)
    clock.advance(50)
    assert [] == backend.keys("new", clock.now)


def test_rename_of_an_expired_session_moves_nothing(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("old", {"a": b"1"}, clock.now + 5, clock.now, version=1)
    clock.advance(5)

    assert 0 == backend.rename("old", "new", clock.now)
    assert [] == backend.keys("new", clock.now)


def test_a_rename_run_twice_loses_nothing(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("old", {"a": b"1"}, None, clock.now, version=1)

    assert 1 == backend.rename("old", "new", clock.now)
    assert 0 == backend.rename("old", "new", clock.now)  # resent after a lost reply
    assert (b"1", 1) == backend.get_versioned("new", "a", clock.now)


def test_rotate_session_moves_the_data_to_a_fresh_signed_id(make_db: Any) -> None:
    db: DashDatabase = make_db(secret_key="k" * 32)
    old = db.new_session_id()
    db.store_user_value(old, "cart", ["apple"])

    new = db.rotate_session(old)

    assert new != old
    assert ["apple"] == db.get_user_value(new, "cart")
    assert db.get_user_value(old, "cart") is None


def test_ids_and_keys_of_a_megabyte_work(make_db: Any) -> None:
    db: DashDatabase = make_db()
    big_id, big_key = "i" * 1_000_000, "k" * 999_999 + "é"
    db.store_user_value(big_id, big_key, 1)
    db.store_user_value(big_id[:-1], big_key, 2)
    db.store_user_value(big_id, big_key[:-1], 3)

    assert 1 == db.get_user_value(big_id, big_key)
    assert 2 == db.get_user_value(big_id[:-1], big_key)
    assert sorted([big_key, big_key[:-1]]) == db.list_stored_user_keys(big_id)
    assert 2 == db.delete_all_user_values(big_id)
    assert 2 == db.get_user_value(big_id[:-1], big_key)


def test_stats_of_the_database(db: DashDatabase) -> None:
    db.store_user_value("user", "k", "v")

    assert (1, 1) == (db.stats().sessions, db.stats().keys)
