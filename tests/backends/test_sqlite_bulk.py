"""What only the SQLite backend's bulk writes do: value files of skipped or replaced sessions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dash_database import SqliteBackend
from dash_database.backends import SessionData
from dash_database.backends.sqlite import _bulk
from tests.support import FakeClock


def _files(path: Path) -> set[str]:
    return set(os.listdir(f"{path}-blobs"))


def test_bulk_writes_leave_no_value_file_behind(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "bulk.sqlite"
    backend = SqliteBackend(path, file_threshold=0)  # every value in a file
    backend.set_many("taken", {"a": b"old", "b": b"old"}, None, clock.now, version=1)
    before = _files(path)
    batch = [SessionData("taken", None, {"a": b"new"})]

    assert [False] == backend.write_sessions(batch, clock.now, version=2)
    assert before == _files(path)  # the skipped session's new file is gone

    assert [True] == backend.write_sessions(batch, clock.now, version=3, replace=True)
    assert 1 == len(_files(path))  # the replaced session's two files are gone
    assert before.isdisjoint(_files(path))
    assert b"new" == backend.get("taken", "a", clock.now)
    backend.close()


def test_a_batch_larger_than_one_statement_is_written_whole(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cap of 20 parameters: a session's rows (3 per key, 5 for the session) span statements.
    monkeypatch.setattr(_bulk, "_max_params", lambda: 20)
    backend = SqliteBackend(tmp_path / "bulk.sqlite")
    batch = [
        SessionData(f"s{i}", clock.now + i, {f"k{j}": b"%d" % j for j in range(i)})
        for i in range(1, 12)
    ]

    assert [True] * 11 == backend.write_sessions(batch, clock.now, version=4)

    for data in batch:
        assert list(data.items.values()) == backend.get_many(
            data.session, list(data.items), clock.now
        )
    assert sum(len(data.items) for data in batch) == backend.stats(clock.now).keys
    backend.close()
