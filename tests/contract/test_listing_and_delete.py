"""Listing and deleting keys, with the 1.0 method signatures."""

from __future__ import annotations

import pytest

from dash_database import DashDatabase, InvalidArgumentError, MissingKeyError


def test_listing_is_sorted(db: DashDatabase) -> None:
    for key in ["favorite_animal", "account_id", "b", "A", "é"]:
        db.store_user_value(123, key, 1)

    assert db.list_stored_user_keys(123) == ["A", "account_id", "b", "favorite_animal", "é"]


def test_listing_of_unknown_user_is_empty(db: DashDatabase) -> None:
    assert db.list_stored_user_keys("nobody") == []


def test_delete_removes_one_key(db: DashDatabase) -> None:
    db.store_user_value(1, "a", 1)
    db.store_user_value(1, "b", 2)

    db.delete_user_value(1, "a")

    assert db.list_stored_user_keys(1) == ["b"]
    assert db.get_user_value(1, "a") is None


def test_delete_of_missing_key_is_ignored_by_default(db: DashDatabase) -> None:
    db.delete_user_value(1, "missing")
    db.delete_user_value(1, "missing", if_not_exists="ignore")

    assert db.list_stored_user_keys(1) == []


def test_delete_of_missing_key_raises_when_asked(db: DashDatabase) -> None:
    with pytest.raises(KeyError) as info:
        db.delete_user_value(1, "missing", if_not_exists="raise")

    assert isinstance(info.value, MissingKeyError)
    assert str(info.value) == "User '1' has no key 'missing'."


def test_delete_with_unknown_mode_raises_value_error_and_deletes_nothing(
    db: DashDatabase,
) -> None:
    db.store_user_value(1, "a", 1)

    with pytest.raises(ValueError, match="'ignore' or 'raise'") as info:
        db.delete_user_value(1, "a", if_not_exists="skip")  # type: ignore[arg-type]

    assert isinstance(info.value, InvalidArgumentError)
    assert db.get_user_value(1, "a") == 1


def test_delete_all_returns_the_number_of_keys_removed(db: DashDatabase) -> None:
    for key in "abc":
        db.store_user_value(7, key, key)

    assert db.delete_all_user_values(7) == 3
    assert db.delete_all_user_values(7) == 0
    assert db.list_stored_user_keys(7) == []


def test_a_deleted_session_can_be_written_again(db: DashDatabase) -> None:
    db.store_user_value(7, "a", 1)
    db.delete_all_user_values(7)
    db.store_user_value(7, "b", 2)

    assert db.list_stored_user_keys(7) == ["b"]
