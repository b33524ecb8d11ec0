"""Sessions never see, overwrite or delete each other's keys, whatever their ids contain."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dash_database import DashDatabase

# Pairs that collide under 1.0's f"{user_id}_{key_name}" keys or its prefix listing.
HOSTILE_IDS = [
    "1",
    "11",
    "12",
    "1_2",
    "1_",
    "_",
    "",
    "a:b",
    "a",
    "a:",
    ":",
    "/",
    "a/b",
    "\x00",
    "a\x00b",
    "a\x00",
    "é",
    "e\u0301",
    "日本",
    "🙂",
    "1;",
    "x" * 1000,
    "0x1",
]

ids = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)


def test_underscore_ids_do_not_collide(db: DashDatabase) -> None:
    db.store_user_value("1", "2_z", "first")
    db.store_user_value("1_2", "z", "second")

    assert db.get_user_value("1", "2_z") == "first"
    assert db.get_user_value("1_2", "z") == "second"


def test_listing_returns_only_that_users_keys(db: DashDatabase) -> None:
    for user in ["1", "11", "12", "1_", "2"]:
        db.store_user_value(user, f"key-of-{user}", user)

    assert db.list_stored_user_keys(1) == ["key-of-1"]
    assert db.list_stored_user_keys(11) == ["key-of-11"]


def test_delete_all_touches_only_that_user(db: DashDatabase) -> None:
    for user in ["1", "11", "12", "1_2"]:
        db.store_user_value(user, "k", user)
        db.store_user_value(user, "other", user)

    assert db.delete_all_user_values(1) == 2
    assert db.list_stored_user_keys(1) == []
    for user in ["11", "12", "1_2"]:
        assert db.list_stored_user_keys(user) == ["k", "other"]
        assert user == db.get_user_value(user, "k")


def test_hostile_ids_are_isolated_from_each_other(db: DashDatabase) -> None:
    pairs = list(itertools.product(HOSTILE_IDS, repeat=2))
    for user, key in pairs:
        db.store_user_value(user, key, (user, key))

    for user, key in pairs:
        assert (user, key) == db.get_user_value(user, key)
    for user in HOSTILE_IDS:
        assert sorted(HOSTILE_IDS) == db.list_stored_user_keys(user)


@pytest.mark.parametrize("victim", ["", "\x00", "a", "a:"])
def test_delete_all_of_hostile_id_leaves_the_others(db: DashDatabase, victim: str) -> None:
    for user in HOSTILE_IDS:
        db.store_user_value(user, "k", user)

    assert db.delete_all_user_values(victim) == 1
    assert None is db.get_user_value(victim, "k")
    for user in HOSTILE_IDS:
        if user != victim:
            assert user == db.get_user_value(user, "k")


# No deadline: on a busy machine one example of a dozen value files (sqlite-files) can take
# longer than Hypothesis's default, which says nothing about correctness.
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pairs=st.lists(st.tuples(ids, ids), min_size=1, max_size=12, unique=True))
def test_generated_ids_never_collide(db: DashDatabase, pairs: list[tuple[str, str]]) -> None:
    users = {user for user, _ in pairs}
    for user in users:
        db.delete_all_user_values(user)
    for user, key in pairs:
        db.store_user_value(user, key, (user, key))

    for user, key in pairs:
        assert (user, key) == db.get_user_value(user, key)
    for user in users:
        assert sorted(k for u, k in pairs if u == user) == db.list_stored_user_keys(user)
