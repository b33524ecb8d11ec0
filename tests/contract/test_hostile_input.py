"""Hostile ids, keys and session ids, on every backend: nothing collides, nothing leaks.

What ``test_isolation.py`` and ``test_errors.py`` do not already fuzz: ids and keys built
from the characters each store treats specially (Redis glob and hash-tag characters, SQL
quoting and LIKE wildcards, NUL and separators), lone surrogates anywhere in a str, and the
text of every error raised about a signed session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dash_database as ddb
from dash_database import DashDatabase

SECRET = "hostile-input-secret-0123456789"

#: Redis glob and hash tags, SQL quotes, comments and LIKE wildcards, NUL and separators.
SPECIAL = "*?[]{}:'\";-%_\\/\x00|.\n é"
hostile = st.text(alphabet=st.sampled_from(SPECIAL) | st.sampled_from("ab1"), max_size=10)
with_surrogate = st.builds(
    lambda before, surrogate, after: before + surrogate + after,
    st.text(max_size=5, alphabet=st.characters(exclude_categories=("Cs",))),
    st.characters(categories=("Cs",)),
    st.text(max_size=5, alphabet=st.characters(exclude_categories=("Cs",))),
)
fuzz = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fuzz
@given(users=st.lists(hostile, min_size=2, max_size=5, unique=True), key=hostile)
def test_special_characters_never_reach_another_session(
    db: DashDatabase, users: list[str], key: str
) -> None:
    for user in users:
        db.delete_all_user_values(user)
        db.store_user_value(user, key, user)
        db.store_user_value(user, key + "*", user)

    victim, *others = users
    assert 2 == db.delete_all_user_values(victim)
    assert 1 == db.update_user_value(victim, key, lambda n: n + 1, default=0)
    assert [key] == db.list_stored_user_keys(victim)
    for user in others:
        assert user == db.get_user_value(user, key)
        assert sorted([key, key + "*"]) == db.list_stored_user_keys(user)
        db.delete_all_user_values(user)
    db.delete_all_user_values(victim)


CALLS: list[Callable[[DashDatabase, str, str], Any]] = [
    lambda db, user, key: db.store_user_value(user, key, 1),
    lambda db, user, key: db.get_user_value(user, key),
    lambda db, user, key: db.delete_user_value(user, key),
    lambda db, user, key: db.update_user_value(user, key, lambda n: 1),
    lambda db, user, key: db.session(user).update({key: 1}),
]


@fuzz
@given(bad=with_surrogate, call=st.sampled_from(CALLS), in_user=st.booleans())
def test_a_lone_surrogate_anywhere_is_refused_and_writes_nothing(
    db: DashDatabase, bad: str, call: Callable[[DashDatabase, str, str], Any], in_user: bool
) -> None:
    user, key = (bad, "key") if in_user else ("user", bad)

    with pytest.raises(ddb.InvalidIdError, match="not valid Unicode"):
        call(db, user, key)

    assert 0 == db.stats().keys


def test_megabyte_ids_of_special_characters_stay_apart(db: DashDatabase) -> None:
    big = (SPECIAL * (1_000_000 // len(SPECIAL)))[:1_000_000]
    db.store_user_value(big, big, "whole")
    db.store_user_value(big[:-1], big, "shorter id")
    db.store_user_value("*", "*", "star")

    assert ("whole", "shorter id") == (
        db.get_user_value(big, big),
        db.get_user_value(big[:-1], big),
    )
    assert 1 == db.delete_all_user_values("*")
    assert [big] == db.list_stored_user_keys(big)


def test_errors_about_a_signed_session_never_show_its_id_or_the_secret(
    make_db: Callable[..., DashDatabase],
) -> None:
    db = make_db(secret_key=SECRET, max_session_bytes=200, update_attempts=1)
    session_id = db.new_session_id()
    token = session_id[len("dds1.") : len("dds1.") + 43]
    db.store_user_value(session_id, "counter", 0)
    db.backend.set_many(
        db.session(session_id).session_id, {"bad": b"not a pickle"}, None, 0.0, version=1
    )
    failing: list[Callable[[], Any]] = [
        lambda: db.session(session_id)["missing"],
        lambda: db.delete_user_value(session_id, "missing", if_not_exists="raise"),
        lambda: db.get_user_value(session_id, "bad"),
        lambda: db.store_user_value(session_id, "big", "x" * 1000),
        lambda: db.store_user_value(session_id[:-3] + "AAA", "k", 1),
        lambda: db.update_user_value(session_id, "counter", _write_meanwhile(db, session_id)),
    ]
    messages = []
    for call in failing:
        with pytest.raises(ddb.DashDatabaseError) as info:
            call()
        messages.append(repr(info.value) + str(info.value))

    assert len(failing) == len(messages)
    for message in messages:
        assert SECRET not in message
        assert token not in message, message


def _write_meanwhile(db: DashDatabase, session_id: str) -> Callable[[Any], Any]:
    def add_one(n: Any) -> Any:
        db.store_user_value(session_id, "counter", n + 10)  # another writer, every time
        return n + 1

    return add_one
