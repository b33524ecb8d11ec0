"""Bad input gets a clear error, and nothing stored is lost."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

import dash_database as ddb
from dash_database import DashDatabase
from dash_database._sealing import MAC_OVERHEAD


@pytest.mark.parametrize("bad", [1.5, None, b"bytes", ("t",), True, False, object()])
def test_user_id_of_wrong_type_raises_type_error_naming_it(db: DashDatabase, bad: Any) -> None:
    with pytest.raises(TypeError, match="user_id must be a str or an int") as info:
        db.store_user_value(bad, "key", 1)

    assert isinstance(info.value, ddb.InvalidIdTypeError)


@pytest.mark.parametrize(
    "call",
    [
        lambda db: db.store_user_value("u", 1.5, 1),
        lambda db: db.get_user_value("u", None),
        lambda db: db.delete_user_value("u", b"k"),
    ],
)
def test_key_name_of_wrong_type_raises_type_error_naming_it(db: DashDatabase, call: Any) -> None:
    with pytest.raises(ddb.InvalidIdTypeError, match="key_name must be a str or an int"):
        call(db)


def test_every_method_checks_user_id(db: DashDatabase) -> None:
    for call in [
        lambda: db.get_user_value(None, "k"),  # type: ignore[arg-type]
        lambda: db.list_stored_user_keys(2.0),  # type: ignore[arg-type]
        lambda: db.delete_user_value([], "k"),  # type: ignore[arg-type]
        lambda: db.delete_all_user_values(True),
        lambda: db.session(None),  # type: ignore[arg-type]
    ]:
        with pytest.raises(ddb.InvalidIdTypeError):
            call()


def test_int_id_too_long_for_text_raises_invalid_id_error(db: DashDatabase) -> None:
    with pytest.raises(ddb.InvalidIdError, match="digits"):
        db.store_user_value(10**5000, "key", 1)


def test_lone_surrogate_id_raises_value_error(db: DashDatabase) -> None:
    with pytest.raises(ValueError, match="not valid Unicode") as info:
        db.store_user_value("\udc80", "key", 1)

    assert isinstance(info.value, ddb.InvalidIdError)


@pytest.mark.parametrize(
    "value", [lambda: 1, threading.Lock(), (x for x in [1])], ids=["lambda", "lock", "generator"]
)
def test_unpicklable_value_raises_and_keeps_the_previous_value(
    db: DashDatabase, value: Any
) -> None:
    db.store_user_value("user", "key", "previous")

    with pytest.raises(TypeError, match="key 'key'") as info:
        db.store_user_value("user", "key", value)

    assert isinstance(info.value, ddb.SerializationError)
    assert type(value).__name__ in str(info.value)
    assert db.get_user_value("user", "key") == "previous"
    db.store_user_value("user", "other", 2)
    assert db.list_stored_user_keys("user") == ["key", "other"]


def test_update_with_one_unpicklable_value_writes_nothing(db: DashDatabase) -> None:
    session = db.session("user")
    session["a"] = "previous"

    with pytest.raises(ddb.SerializationError, match="key 'bad'"):
        session.update({"a": "new", "b": 2, "bad": lambda: 0})

    assert dict(session) == {"a": "previous"}


def test_value_over_max_value_bytes_raises_and_writes_nothing(make_db: Any) -> None:
    db = make_db(max_value_bytes=1000)
    db.store_user_value("user", "key", "small")

    with pytest.raises(ValueError, match="max_value_bytes=1000") as info:
        db.store_user_value("user", "key", "x" * 2000)

    assert isinstance(info.value, ddb.ValueTooLargeError)
    assert db.get_user_value("user", "key") == "small"


def test_value_that_cannot_be_read_back_raises_naming_the_key(make_db: Any) -> None:
    # Written as JSON (sealed, so it passes the integrity check), read as a pickle.
    make_db(serializer="json").store_user_value("user", "key", "not a pickle")
    db = make_db()

    with pytest.raises(ddb.DeserializationError, match="key 'key'"):
        db.get_user_value("user", "key")


def test_json_serializer_refuses_values_that_would_change(make_db: Any) -> None:
    db = make_db(serializer="json")

    with pytest.raises(ddb.SerializationError):
        db.store_user_value("user", "key", {1: "int key"})
    with pytest.raises(ddb.SerializationError):
        db.store_user_value("user", "key", {"set"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 0}, "ttl must be a positive number"),
        ({"ttl": "60"}, "ttl must be a positive number"),
        ({"max_value_bytes": 0}, "max_value_bytes must be a positive int"),
        ({"serializer": "yaml"}, "Unknown serializer 'yaml'"),
        ({"serializer": object()}, "serializer must be"),
        ({"clock": 5}, "clock must be callable"),
    ],
)
def test_bad_options_raise_value_error(make_db: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match=message):
        make_db(**options)


def test_custom_serializer_is_used(make_db: Any) -> None:
    class Reversed:
        def dumps(self, obj: Any) -> bytes:
            return pickle.dumps(obj)[::-1]

        def loads(self, data: bytes) -> Any:
            return pickle.loads(data[::-1])

    db = make_db(serializer=Reversed())
    db.store_user_value("user", "key", [1, 2])

    assert db.get_user_value("user", "key") == [1, 2]
    stored = db.backend.get("user", "key", 0.0)
    assert stored is not None
    assert pickle.dumps([1, 2])[::-1] == stored[MAC_OVERHEAD:]
