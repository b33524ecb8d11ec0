"""Memoize on the embedded stores: keys, arguments, errors, threads, processes and quotas."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from dash_database import (
    DashDatabase,
    InvalidArgumentError,
    MemoizeArgumentError,
    NoCurrentSessionError,
    QuotaExceededError,
    digest_arguments,
    use_session,
)
from dash_database._scopes import APP_SESSION, USER_PREFIX
from dash_database._signing import looks_signed
from tests.support import FakeClock


@pytest.fixture(params=["memory", "sqlite"])
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def counting(db: DashDatabase, **options: Any) -> tuple[Callable[..., Any], list[Any]]:
    calls: list[Any] = []

    def compute(x: Any, y: Any = 1, *rest: Any, **named: Any) -> Any:
        calls.append((x, y, rest, named))
        return [x, y, len(calls)]

    return db.memoize(**options)(compute), calls


def test_defaults_and_keyword_order_do_not_make_new_entries(db: DashDatabase) -> None:
    compute, calls = counting(db, scope="app")

    results = [compute(1), compute(1, 1), compute(x=1), compute(y=1, x=1)]

    assert [[1, 1, 1]] * 4 == results
    assert 1 == len(calls)


def test_distinct_arguments_and_types_are_distinct_entries(db: DashDatabase) -> None:
    compute, calls = counting(db, scope="app")

    for x in (1, 1.0, True, "1", b"1", (1,), [1], None):
        compute(x)

    assert 8 == len(calls)


def test_a_hit_is_the_entry_of_its_own_type_and_sign(db: DashDatabase) -> None:
    compute, calls = counting(db, scope="app")
    values = (1, True, 1.0, 0, False, 0.0, -0.0, "1", None)

    for _ in range(2):  # the second round is all hits
        results = [compute(v) for v in values] + [compute(y="named", x=v) for v in values]

    assert [repr(v) for v in values * 2] == [repr(result[0]) for result in results]
    assert list(range(1, 2 * len(values) + 1)) == [result[2] for result in results]
    assert 2 * len(values) == len(calls)


def test_set_and_dict_order_do_not_change_the_entry(db: DashDatabase) -> None:
    compute, calls = counting(db, scope="app")

    compute({"b", "a"}, {"y": 2, "x": 1})
    compute({"a", "b"}, {"x": 1, "y": 2})

    assert 1 == len(calls)


def test_two_functions_with_the_same_arguments_have_their_own_entries(db: DashDatabase) -> None:
    @db.memoize(scope="app")
    def first(x: int) -> tuple[str, int]:
        return ("first", x)

    @db.memoize(scope="app")
    def second(x: int) -> tuple[str, int]:
        return ("second", x)

    assert ("first", 1) == first(1)
    assert ("second", 1) == second(1)


def test_a_session_entry_belongs_to_its_session(db: DashDatabase) -> None:
    compute, calls = counting(db)
    alice, bob = db.session("alice"), db.session("bob")

    with use_session(alice):
        compute(1)
        compute(1)
    with use_session(bob):
        compute(1)

    assert 2 == len(calls)
    assert 1 == len(list(alice)) == len(list(bob))


def test_session_scope_outside_a_callback_or_block_says_what_to_do(db: DashDatabase) -> None:
    compute, calls = counting(db)

    with pytest.raises(NoCurrentSessionError, match="use_session"):
        compute(1)
    assert [] == calls


def test_an_argument_it_cannot_key_by_is_refused_before_the_call(db: DashDatabase) -> None:
    compute, calls = counting(db, scope="app")

    with pytest.raises(MemoizeArgumentError, match=r"argument 1, .*builtins.object"):
        compute(object())
    with pytest.raises(TypeError):
        compute([1, {2: object()}])
    assert [] == calls


def test_bad_options_and_coroutine_functions_are_refused(db: DashDatabase) -> None:
    async def fetch() -> int:
        return 1

    with pytest.raises(InvalidArgumentError, match="scope"):
        db.memoize(scope="user")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="ttl"):
        db.memoize(ttl=0)
    with pytest.raises(InvalidArgumentError, match="coroutine"):
        db.memoize(scope="app")(fetch)
    with pytest.raises(InvalidArgumentError, match="lambda"):
        db.memoize(scope="app")(lambda x: x)


def test_cache_clear_deletes_only_this_functions_entries(db: DashDatabase) -> None:
    compute, calls = counting(db, scope="app")

    @db.memoize(scope="app")
    def other(x: int) -> int:
        return x

    compute(1)
    compute(2)
    other(1)
    db.app_state["kept"] = True

    assert 2 == compute.cache_clear()  # type: ignore[attr-defined]
    compute(1)
    assert 3 == len(calls)
    assert 3 == len(list(db.app_state))


def test_threads_asking_for_one_missing_entry_compute_it_once(db: DashDatabase) -> None:
    calls: list[int] = []

    @db.memoize(scope="app")
    def slow(x: int) -> int:
        calls.append(x)
        time.sleep(0.2)
        return x + 1

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(1))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert [2] * 8 == results
    assert [1] == calls


def test_a_failed_computation_is_not_stored_and_the_next_caller_computes(db: DashDatabase) -> None:
    attempts: list[int] = []

    @db.memoize(scope="app")
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise OSError("the database behind it is down")
        return x

    with pytest.raises(OSError):
        flaky(1)
    assert [1, 1] == [flaky(1), flaky(1)]
    assert 2 == len(attempts)


def test_expired_entries_make_room_and_a_result_over_the_quota_is_refused(
    make_db: Callable[..., DashDatabase], clock: FakeClock
) -> None:
    db = make_db(max_session_bytes=2_000)

    @db.memoize(scope="app", ttl=5)
    def blob(n: int) -> str:
        return "x" * n

    blob(1)
    blob(2)
    blob(900)
    clock.advance(5)

    assert 1000 == len(blob(1000))  # fits once the three expired entries are dropped
    assert 1 == len(list(db.app_state))
    with pytest.raises(QuotaExceededError):
        blob(5_000)


def test_json_serialized_entries_work_too(make_db: Callable[..., DashDatabase]) -> None:
    db = make_db(serializer="json")
    compute, calls = counting(db, scope="app", ttl=60)

    assert compute(1) == compute(1)
    assert 1 == len(calls)


def test_the_digest_is_the_same_in_another_process() -> None:
    arguments = ({"b", "a", 3}, {"k": [1.5, None, b"\x00"]}, date(2024, 2, 29), "é")
    code = (
        "from datetime import date; "
        "from dash_database import digest_arguments; "
        "print(digest_arguments(({'b', 'a', 3}, {'k': [1.5, None, b'\\x00']}, "
        "date(2024, 2, 29), 'é')))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},  # sets of str iterate in another order there
    ).stdout.strip()

    assert digest_arguments(arguments) == other
    assert digest_arguments((Decimal("1.0"),)) != digest_arguments((Decimal("1.00"),))
    assert digest_arguments(("a", 1)) != digest_arguments(("a", "1"))


def test_scope_names_can_be_named_by_no_session_id(make_db: Callable[..., DashDatabase]) -> None:
    db = make_db(secret_key="k" * 32)
    signed = db.new_session_id()
    storage_name = db.session(signed).session_id

    assert looks_signed(APP_SESSION) and looks_signed(USER_PREFIX + "alice")
    assert len(storage_name) < len(APP_SESSION)
    with pytest.raises(ValueError):
        db.session(APP_SESSION)
    with pytest.raises(ValueError):
        db.session(USER_PREFIX + "alice")


def test_keys_stay_right_when_the_recent_keys_are_forgotten(
    db: DashDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dash_database._memoize._RECENT_KEYS", 2)
    compute, calls = counting(db, scope="app")

    first = [compute(x, y=x) for x in range(5)]
    again = [compute(x, x) for x in range(5)] + [compute(y=x, x=x) for x in range(5)]

    assert first + first == again
    assert 5 == len(calls)
