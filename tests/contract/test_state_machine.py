"""A Hypothesis state machine drives a database and a plain-dict model side by side."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from dash_database import DashDatabase
from tests.support import FakeClock

TTL = 10.0
users = st.sampled_from(["1", "11", "1_", "", "\x00", "é", "a:b", "12"])
keys = st.sampled_from(["k", "k_", "", "_k", "1", "\x00", "ü"])
values = st.integers() | st.text(max_size=5) | st.none() | st.lists(st.integers(), max_size=3)


class Model:
    """What the database should hold: live sessions and the time each was last used."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self.last_used: dict[str, float] = {}

    def live(self, user: str, now: float) -> dict[str, Any]:
        if user in self.last_used and now - self.last_used[user] >= TTL:
            self.data.pop(user, None)
            self.last_used.pop(user, None)
        return self.data.get(user, {})


def run_machine(make_db: Any, clock: FakeClock) -> None:
    class DatabaseMachine(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.db: DashDatabase = make_db(ttl=TTL)
            for user in ["1", "11", "1_", "", "\x00", "é", "a:b", "12"]:
                self.db.delete_all_user_values(user)
            self.model = Model()

        def used(self, user: str) -> None:
            self.model.last_used[user] = clock.now

        @rule(user=users, key=keys, value=values)
        def store(self, user: str, key: str, value: Any) -> None:
            self.db.store_user_value(user, key, value)
            self.model.live(user, clock.now)[key] = value
            self.model.data.setdefault(user, {})[key] = value
            self.used(user)

        @rule(user=users, items=st.dictionaries(keys, values, max_size=3))
        def update(self, user: str, items: dict[str, Any]) -> None:
            self.db.session(user).update(items)
            if items:
                self.model.live(user, clock.now)
                self.model.data.setdefault(user, {}).update(items)
                self.used(user)

        @rule(user=users, key=keys)
        def update_value(self, user: str, key: str) -> None:
            live = self.model.live(user, clock.now)
            new = self.db.session(user).update_value(key, lambda old: [old], default="none")
            assert [live.get(key, "none")] == new
            self.model.data.setdefault(user, {})[key] = new
            self.used(user)

        @rule(user=users, key=keys)
        def get(self, user: str, key: str) -> None:
            live = self.model.live(user, clock.now)
            missing = object()
            assert live.get(key, missing) == self.db.get_user_value(user, key, missing)
            if key in live:
                self.used(user)

        @rule(user=users)
        def list_keys(self, user: str) -> None:
            live = self.model.live(user, clock.now)
            assert sorted(live) == self.db.list_stored_user_keys(user)
            if live:
                self.used(user)

        @rule(user=users, key=keys)
        def delete(self, user: str, key: str) -> None:
            live = self.model.live(user, clock.now)
            self.db.delete_user_value(user, key)
            live.pop(key, None)

        @rule(user=users)
        def delete_all(self, user: str) -> None:
            live = self.model.live(user, clock.now)
            assert len(live) == self.db.delete_all_user_values(user)
            self.model.data.pop(user, None)
            self.model.last_used.pop(user, None)

        @rule(seconds=st.sampled_from([0.5, 3.0, 9.9, 10.0, 25.0]))
        def wait(self, seconds: float) -> None:
            clock.advance(seconds)

        @rule()
        def purge(self) -> None:
            self.db.purge_expired()

        @invariant()
        def sessions_match(self) -> None:
            if not hasattr(self, "model"):
                return
            backend, now = self.db.backend, clock.now
            total = 0
            for user in list(self.model.data):
                live = self.model.live(user, clock.now)
                # Read through the backend so the check does not renew the session.
                assert sorted(live) == sorted(backend.keys(user, now))
                infos, _ = backend.session_keys(user, now, None, 100)
                assert sorted(live) == sorted(info.key for info in infos)
                sizes = sum(len(info.key.encode()) + info.bytes for info in infos)
                assert sizes == backend.session_bytes(user, now)
                total += sizes
            nonempty = {user for user in self.model.data if self.model.live(user, now)}
            listed, _ = backend.sessions(now, None, 100)
            assert nonempty == {info.session for info in listed}
            stats = backend.stats(now)
            expected = (
                len(nonempty),
                sum(len(self.model.data[u]) for u in nonempty),
                total,
            )
            assert expected == (stats.sessions, stats.keys, stats.bytes)

    DatabaseMachine.TestCase.settings = settings(
        max_examples=25, stateful_step_count=30, deadline=None
    )
    DatabaseMachine.TestCase().runTest()


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_database_behaves_like_a_dict_model(make_db: Any, clock: FakeClock) -> None:
    run_machine(make_db, clock)
