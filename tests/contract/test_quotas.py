"""Session sizes and max_session_bytes: a write over the quota is refused whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dash_database import DashDatabase, QuotaExceededError
from dash_database.backends import Backend
from tests.support import FakeClock


def test_a_session_size_counts_key_and_value_bytes(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"ab": b"123", "é": b"\x00" * 10}, None, clock.now, version=1)

    assert (2 + 3) + (2 + 10) == backend.session_bytes("s", clock.now)
    assert 0 == backend.session_bytes("other", clock.now)


def test_replacing_and_deleting_values_update_the_size(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"x" * 10, "b": b"y"}, None, clock.now, version=1)
    backend.set_many("s", {"a": b"x" * 4}, None, clock.now, version=2)
    assert (1 + 4) + (1 + 1) == backend.session_bytes("s", clock.now)

    backend.delete("s", "b", clock.now)
    assert 1 + 4 == backend.session_bytes("s", clock.now)
    backend.clear("s", clock.now)
    assert 0 == backend.session_bytes("s", clock.now)


def test_an_expired_session_has_no_size(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"x" * 10}, clock.now + 5, clock.now, version=1)
    clock.advance(5)

    assert 0 == backend.session_bytes("s", clock.now)
    backend.set_many("s", {"b": b"y"}, None, clock.now, version=2)
    assert 1 + 1 == backend.session_bytes("s", clock.now)


def test_a_write_over_the_limit_raises_and_writes_nothing(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"x" * 10}, None, clock.now, version=1, max_bytes=20)

    with pytest.raises(QuotaExceededError) as raised:
        backend.set_many(
            "s", {"a": b"z" * 5, "b": b"y" * 15}, clock.now + 9, clock.now, version=2, max_bytes=20
        )

    assert (11, 6 + 16, 20) == (
        raised.value.session_bytes,
        raised.value.needed_bytes,
        raised.value.limit,
    )
    assert (b"x" * 10, 1) == backend.get_versioned("s", "a", clock.now)
    assert ["a"] == backend.keys("s", clock.now)
    assert 11 == backend.session_bytes("s", clock.now)
    clock.advance(10)
    assert ["a"] == backend.keys("s", clock.now)  # the refused write set no deadline either


def test_replacing_a_value_counts_only_the_difference(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"x" * 19}, None, clock.now, version=1, max_bytes=20)
    backend.set_many("s", {"a": b"y" * 19}, None, clock.now, version=2, max_bytes=20)

    assert b"y" * 19 == backend.get("s", "a", clock.now)


def test_compare_and_set_respects_the_limit(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    backend.set_many("s", {"a": b"x"}, None, clock.now, version=1)

    with pytest.raises(QuotaExceededError):
        backend.compare_and_set("s", "a", b"x" * 50, 1, None, clock.now, version=2, max_bytes=20)
    assert (b"x", 1) == backend.get_versioned("s", "a", clock.now)


def test_max_session_bytes_refuses_a_store_with_a_clear_message(make_db: Any) -> None:
    db: DashDatabase = make_db(max_session_bytes=1000)
    db.store_user_value("user", "small", "x")

    with pytest.raises(QuotaExceededError, match="max_session_bytes=1,000") as raised:
        db.store_user_value("user", "big", "x" * 2000)

    assert isinstance(raised.value, ValueError)
    assert ["small"] == db.list_stored_user_keys("user")


def test_the_quota_is_per_session(make_db: Any) -> None:
    db: DashDatabase = make_db(max_session_bytes=1000)
    for user in range(5):
        db.store_user_value(f"user{user}", "value", "x" * 900)

    assert 5 == db.stats().sessions


def test_an_update_of_many_keys_over_the_quota_writes_none(make_db: Any) -> None:
    db: DashDatabase = make_db(max_session_bytes=1000)
    session = db.session("user")

    with pytest.raises(QuotaExceededError):
        session.update({f"k{i}": "x" * 100 for i in range(20)})
    assert [] == list(session)


def test_update_user_value_respects_the_quota(make_db: Any) -> None:
    db: DashDatabase = make_db(max_session_bytes=1000)

    with pytest.raises(QuotaExceededError):
        db.update_user_value("user", "log", lambda log: log + "x" * 2000, default="")
    assert db.get_user_value("user", "log") is None
