"""Sliding session expiry, driven by the injected clock (no test sleeps)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash_database.backends import Backend
from tests.support import FakeClock

TTL = 100.0


def test_session_expires_after_ttl_of_inactivity(make_db: Any, clock: FakeClock) -> None:
    db = make_db(ttl=TTL)
    db.store_user_value("user", "key", "value")

    clock.advance(TTL - 1)
    assert db.backend.keys("user", clock.now) == ["key"]
    clock.advance(1)

    assert db.get_user_value("user", "key") is None
    assert db.list_stored_user_keys("user") == []
    assert "key" not in db.session("user")
    assert len(db.session("user")) == 0


def test_every_read_renews_the_session(make_db: Any, clock: FakeClock) -> None:
    db = make_db(ttl=TTL)
    db.store_user_value("user", "key", "value")

    for _ in range(5):
        clock.advance(TTL * 0.9)
        assert db.get_user_value("user", "key") == "value"

    clock.advance(TTL * 0.9)
    assert db.list_stored_user_keys("user") == ["key"]


def test_listing_renews_the_session(make_db: Any, clock: FakeClock) -> None:
    db = make_db(ttl=TTL)
    db.store_user_value("user", "key", "value")
    clock.advance(TTL * 0.9)
    db.list_stored_user_keys("user")
    clock.advance(TTL * 0.9)

    assert db.get_user_value("user", "key") == "value"


def test_a_write_renews_every_key_of_the_session(make_db: Any, clock: FakeClock) -> None:
    db = make_db(ttl=TTL)
    db.store_user_value("user", "old", 1)
    clock.advance(TTL * 0.9)
    db.store_user_value("user", "new", 2)
    clock.advance(TTL * 0.9)

    assert db.get_user_value("user", "old") == 1


def test_renewal_by_another_instance_counts(make_db: Any, clock: FakeClock) -> None:
    writer, reader = make_db(ttl=TTL), make_db(ttl=TTL)
    writer.store_user_value("user", "key", 1)
    clock.advance(TTL * 0.9)
    assert reader.get_user_value("user", "key") == 1
    clock.advance(TTL * 0.9)

    assert writer.get_user_value("user", "key") == 1


def test_expiry_is_per_session(make_db: Any, clock: FakeClock) -> None:
    db = make_db(ttl=TTL)
    db.store_user_value("idle", "key", 1)
    clock.advance(TTL / 2)
    db.store_user_value("active", "key", 2)
    clock.advance(TTL / 2)

    assert db.get_user_value("idle", "key") is None
    assert db.get_user_value("active", "key") == 2


def test_writing_to_an_expired_session_does_not_resurrect_old_keys(
    make_db: Any, clock: FakeClock
) -> None:
    db = make_db(ttl=TTL)
    db.session("user").update(a=1, b=2)
    clock.advance(TTL)
    db.store_user_value("user", "c", 3)

    assert db.list_stored_user_keys("user") == ["c"]
    assert db.get_user_value("user", "a") is None


def test_deleting_in_an_expired_session_finds_nothing(make_db: Any, clock: FakeClock) -> None:
    db = make_db(ttl=TTL)
    db.session("user").update(a=1, b=2)
    clock.advance(TTL)

    assert db.delete_all_user_values("user") == 0
    assert not db.backend.delete("user", "a", clock.now)


def test_purge_expired_reclaims_expired_sessions_only(make_db: Any, clock: FakeClock) -> None:
    db = make_db(ttl=TTL)
    for user in ["a", "b", "c"]:
        db.store_user_value(user, "key", user)
    clock.advance(TTL / 2)
    db.store_user_value("c", "key", "renewed")
    clock.advance(TTL / 2)

    assert db.purge_expired() == 2
    # Asking the backend about the past shows what is still stored, expired or not.
    assert db.backend.keys("a", 0.0) == []
    assert db.backend.keys("b", 0.0) == []
    assert db.get_user_value("c", "key") == "renewed"
    assert db.purge_expired() == 0


def test_expired_data_is_reclaimed_without_calling_purge(make_db: Any, clock: FakeClock) -> None:
    db = make_db(ttl=TTL)
    db.store_user_value("gone", "key", 1)
    clock.advance(TTL * 2)
    db.store_user_value("someone else", "key", 2)

    assert db.backend.keys("gone", 0.0) == []


def test_sessions_without_ttl_never_expire(make_db: Any, clock: FakeClock) -> None:
    db = make_db()
    db.store_user_value("user", "key", 1)
    clock.advance(10 * 365 * 24 * 3600)

    assert db.get_user_value("user", "key") == 1
    assert db.purge_expired() == 0


def test_expired_sessions_are_invisible_to_an_instance_without_ttl(
    make_db: Any, clock: FakeClock
) -> None:
    with_ttl, without_ttl = make_db(ttl=TTL), make_db()
    with_ttl.store_user_value("user", "key", 1)
    clock.advance(TTL)

    assert without_ttl.get_user_value("user", "key") is None
    assert without_ttl.list_stored_user_keys("user") == []
    assert without_ttl.list_stored_user_keys("user") == []  # and once it knows of deadlines


def test_a_write_without_ttl_makes_a_live_session_permanent(make_db: Any, clock: FakeClock) -> None:
    with_ttl, without_ttl = make_db(ttl=TTL), make_db()
    with_ttl.store_user_value("user", "a", 1)
    without_ttl.store_user_value("user", "b", 2)
    clock.advance(10 * TTL)

    assert without_ttl.get_user_value("user", "a") == 1
    assert without_ttl.get_user_value("user", "b") == 2
    assert with_ttl.purge_expired() == 0


def test_a_write_without_ttl_to_an_expired_session_starts_it_afresh(
    make_db: Any, clock: FakeClock
) -> None:
    with_ttl, without_ttl = make_db(ttl=TTL), make_db()
    with_ttl.session("user").update(a=1, b=2)
    clock.advance(TTL)
    without_ttl.session("user").update(b=3, c=4)
    clock.advance(10 * TTL)

    assert without_ttl.list_stored_user_keys("user") == ["b", "c"]
    assert without_ttl.get_user_value("user", "b") == 3


def test_purge_reports_its_progress_batch_by_batch(
    backend_factory: Callable[[], Backend], clock: FakeClock
) -> None:
    backend = backend_factory()
    for i in range(1200):
        backend.set_many(f"s{i}", {"k": b"v"}, clock.now + 5, clock.now, version=1)
    backend.set_many("live", {"k": b"v"}, None, clock.now, version=1)
    clock.advance(5)
    batches: list[int] = []

    removed = backend.purge_expired(clock.now, batches.append)

    assert (1200, 1200) == (removed, sum(batches))
    assert all(batch > 0 for batch in batches)
    assert ["k"] == backend.keys("live", clock.now)
