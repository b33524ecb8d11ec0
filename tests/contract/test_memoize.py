"""Memoize and the app and user scopes on every backend: a hit, per-entry expiry, sharing
between handles (as between workers), and the app's session that never expires."""

from __future__ import annotations

from collections.abc import Callable

from dash_database import DashDatabase, use_session
from tests.support import FakeClock


def test_a_memoized_result_is_computed_once_and_read_back_by_another_handle(
    make_db: Callable[..., DashDatabase],
) -> None:
    first, second = make_db(secret_key="k" * 32), make_db(secret_key="k" * 32)
    calls: list[int] = []

    def square(x: int) -> int:
        calls.append(x)
        return x * x

    session_id = first.new_session_id()
    with use_session(first.session(session_id)):
        computed = first.memoize()(square)(7)
    with use_session(second.session(session_id)):
        read_back = second.memoize()(square)(7)

    assert (49, 49, [7]) == (computed, read_back, calls)


def test_an_entry_past_its_ttl_is_computed_again(
    make_db: Callable[..., DashDatabase], clock: FakeClock
) -> None:
    db = make_db()
    calls: list[int] = []

    @db.memoize(scope="app", ttl=10)
    def report(year: int) -> int:
        calls.append(year)
        return len(calls)

    assert [1, 1] == [report(2024), report(2024)]
    clock.advance(10)
    assert [2, 2] == [report(2024), report(2024)]


def test_app_state_outlives_the_ttl_and_user_state_does_not(
    make_db: Callable[..., DashDatabase], clock: FakeClock
) -> None:
    db = make_db(ttl=60)
    db.app_state["rates"] = {"EUR": 1.1}
    db.user_state("alice")["theme"] = "dark"
    clock.advance(30)
    assert ["rates"] == list(db.app_state)  # a read does not give it a deadline either

    clock.advance(3600)

    assert {"EUR": 1.1} == make_db(ttl=60).app_state.get("rates")
    assert None is db.user_state("alice").get("theme")


def test_user_state_is_private_to_each_user_and_to_no_session(
    make_db: Callable[..., DashDatabase],
) -> None:
    db = make_db(secret_key="k" * 32)
    db.user_state("alice")["notes"] = ["a"]
    db.user_state(7)["notes"] = ["7"]

    assert ["a"] == db.user_state("alice")["notes"]
    assert ["7"] == db.user_state("7")["notes"]
    assert None is db.user_state("bob").get("notes")
    assert None is db.session("alice").get("notes")
    assert [] == db.list_stored_user_keys(db.new_session_id())
    assert [] == list(db.app_state)
