"""Values go in and come back equal, through every method, on every backend."""

from __future__ import annotations

import datetime
import decimal
import math
import os
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dash_database import DashDatabase, MissingKeyError

VALUES: list[Any] = [
    0,
    -(2**80),
    3.5,
    "monkey",
    "",
    b"\x00\xff",
    None,
    [1, [2, [3]]],
    {"nested": {"a": (1, 2), "b": {3, 4}}},
    OrderedDict(z=1, a=2),
    datetime.datetime(2026, 11, 23, 2, 3, 4),
    decimal.Decimal("1.10"),
    frozenset({"x"}),
    "x" * 100_000,
    bytes(range(256)) * 1000,
]

picklable = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.binary()
    | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children) | st.dictionaries(st.text(), children) | st.tuples(children, children)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_stored_value_is_returned_equal(db: DashDatabase, value: Any) -> None:
    db.store_user_value("user", "key", value)

    assert value == db.get_user_value("user", "key")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=picklable)
def test_any_picklable_value_round_trips(db: DashDatabase, value: Any) -> None:
    db.store_user_value("user", "key", value)

    assert value == db.get_user_value("user", "key")


def test_numpy_and_pandas_values_round_trip(db: DashDatabase) -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": np.arange(1000), "y": np.linspace(0, 1, 1000)})
    db.store_user_value("user", "frame", frame)
    db.store_user_value("user", "array", frame["y"].to_numpy())

    pd.testing.assert_frame_equal(frame, db.get_user_value("user", "frame"))
    np.testing.assert_array_equal(frame["y"].to_numpy(), db.get_user_value("user", "array"))


def test_nan_round_trips(db: DashDatabase) -> None:
    db.store_user_value("user", "nan", float("nan"))

    assert math.isnan(db.get_user_value("user", "nan"))


def test_store_replaces_the_previous_value(db: DashDatabase) -> None:
    db.store_user_value("user", "key", "first")
    db.store_user_value("user", "key", "second")

    assert db.get_user_value("user", "key") == "second"


def test_missing_key_returns_none_or_the_default(db: DashDatabase) -> None:
    assert db.get_user_value("user", "missing") is None
    assert db.get_user_value("user", "missing", default="fallback") == "fallback"


def test_int_and_decimal_string_name_the_same_ids(db: DashDatabase) -> None:
    db.store_user_value(123, 7, "seven")

    assert db.get_user_value("123", "7") == "seven"
    assert db.list_stored_user_keys(123) == ["7"]


def test_stored_none_differs_from_missing_through_session(db: DashDatabase) -> None:
    session = db.session("user")
    session["none"] = None

    assert "none" in session
    assert "missing" not in session
    assert session["none"] is None
    with pytest.raises(KeyError):
        session["missing"]


def test_session_mapping_operations(db: DashDatabase) -> None:
    session = db.session("user")
    session["b"] = 2
    session["a"] = 1
    session[3] = "three"

    assert list(session) == ["3", "a", "b"]
    assert len(session) == 3
    assert dict(session) == {"3": "three", "a": 1, "b": 2}
    assert session.get("a") == 1
    assert session.get("zz", "d") == "d"
    del session["a"]
    assert list(session) == ["3", "b"]
    session.clear()
    assert len(session) == 0


def test_session_del_of_missing_key_raises_key_error(db: DashDatabase) -> None:
    with pytest.raises(MissingKeyError, match="no key 'nope'"):
        del db.session("user")["nope"]


def test_session_update_writes_every_item(db: DashDatabase) -> None:
    db.session("user").update({"a": 1, "b": [2]}, c=3)
    db.session("user").update([("d", 4)])

    assert dict(db.session("user")) == {"a": 1, "b": [2], "c": 3, "d": 4}


def test_session_update_of_more_keys_than_one_statement_holds(db: DashDatabase) -> None:
    items = {f"k{i}": i for i in range(2500)}
    db.session("user").update(items)

    assert items == dict(db.session("user"))


def test_two_instances_on_one_store_see_each_others_writes(make_db: Any) -> None:
    first, second = make_db(), make_db()
    first.store_user_value("user", "key", "from first")

    assert second.get_user_value("user", "key") == "from first"


def test_json_serializer_round_trips_json_values(make_db: Any) -> None:
    db = make_db(serializer="json")
    db.store_user_value("user", "key", {"a": [1, 2.5, "x", None, True]})

    assert db.get_user_value("user", "key") == {"a": [1, 2.5, "x", None, True]}


def test_context_manager_closes(make_db: Any) -> None:
    with make_db() as db:
        db.store_user_value("user", "key", 1)
        assert db.get_user_value("user", "key") == 1


@pytest.mark.parametrize("codec", ["zlib", "zstd", "lz4"])
def test_compressed_values_round_trip(make_db: Any, codec: str) -> None:
    import pandas as pd

    db = make_db(compression=codec)
    frame = pd.DataFrame({"city": ["Oslo", "Lima"] * 5_000, "n": range(10_000)})
    values = {"small": 1, "frame": frame, "text": "x" * 100_000, "noise": os.urandom(50_000)}
    db.session("user").update(values)

    assert 1 == db.get_user_value("user", "small")
    pd.testing.assert_frame_equal(frame, db.get_user_value("user", "frame"))
    assert "x" * 100_000 == db.get_user_value("user", "text")
    assert values["noise"] == db.get_user_value("user", "noise")
