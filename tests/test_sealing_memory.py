"""A large value is held once while it is serialized and sealed, and once while it is read:
the copies that would double a 100 MB store's peak (benchmarks/ measures the whole process)
show in tracemalloc, which counts Python's allocations."""

from __future__ import annotations

import pickle
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from dash_database import DashDatabase, PickleSerializer, SerializationError, ValueTooLargeError

SIZE = 24 * 2**20
KEY = "sealing-memory-tests-secret-key"


def python_peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Return (the peak of Python's allocations during ``fn()``, its result)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        return tracemalloc.get_traced_memory()[1] - before, result
    finally:
        tracemalloc.stop()


def test_storing_a_large_value_holds_one_copy_of_it() -> None:
    value = bytearray(SIZE)
    with DashDatabase(":memory:", secret_key=KEY) as db:
        peak, _ = python_peak(lambda: db.store_user_value("alice", "big", value))
        assert peak < 1.3 * SIZE
        assert value == db.get_user_value("alice", "big")


def test_reading_a_large_value_holds_one_copy_of_it() -> None:
    with DashDatabase(":memory:", secret_key=KEY) as db:
        db.store_user_value("alice", "big", bytearray(SIZE))
        peak, got = python_peak(lambda: db.get_user_value("alice", "big"))
        assert SIZE == len(got)
        assert peak < 1.3 * SIZE


def test_a_value_sealed_while_serialized_fails_its_check_in_another_session() -> None:
    with DashDatabase(":memory:", secret_key=KEY) as db:
        sealed = db._seal_value("alice", "big", {"rows": [1, 2, 3]})
        assert {"rows": [1, 2, 3]} == db._loads("alice", "big", sealed)
        with pytest.raises(Exception, match="integrity check"):
            db._loads("bob", "big", sealed)


def test_a_value_that_cannot_be_pickled_writes_nothing() -> None:
    with DashDatabase(":memory:") as db:
        with pytest.raises(SerializationError, match="cannot be serialized"):
            db.store_user_value("alice", "lock", lambda: None)
        assert [] == db.list_stored_user_keys("alice")


def test_max_value_bytes_counts_the_serialized_value_only() -> None:
    limit = len(pickle.dumps(b"x" * 100, protocol=pickle.HIGHEST_PROTOCOL))
    with DashDatabase(":memory:", max_value_bytes=limit) as db:
        db.store_user_value("alice", "fits", b"x" * 100)
        with pytest.raises(ValueTooLargeError, match=f"{limit + 1} bytes serialized"):
            db.store_user_value("alice", "over", b"x" * 101)
        assert ["fits"] == db.list_stored_user_keys("alice")


class Tagged(PickleSerializer):
    """A user's pickle serializer with a dumps of its own (and the inherited loads)."""

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(("tagged", obj))


def test_a_subclass_with_its_own_dumps_is_used_to_serialize() -> None:
    with DashDatabase(":memory:", serializer=Tagged()) as db:
        db.store_user_value("alice", "k", 1)
        assert ("tagged", 1) == db.get_user_value("alice", "k")
