"""What only the embedded SQLite backend has: files, processes, fork, crashes."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dash_database as ddb
from dash_database import DashDatabase, SqliteBackend

pytestmark = pytest.mark.slow


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- where the data lives ---------------------------------------------------------------------


def test_default_location_is_a_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ddb.ENV_URL, raising=False)
    monkeypatch.chdir(tmp_path)
    with DashDatabase() as db:
        db.store_user_value("u", "k", 1)
        assert isinstance(db.backend, SqliteBackend)
        assert str(tmp_path / "dash_database.sqlite") == db.backend.path
    assert (tmp_path / "dash_database.sqlite").exists()


def test_default_location_is_shared_between_processes(tmp_path: Path) -> None:
    env = {"DASH_DATABASE_URL": ""}
    writer = run_python(
        "from dash_database import DashDatabase; DashDatabase().store_user_value(1, 'k', 'v')",
        tmp_path,
        **env,
    )
    assert writer.returncode == 0, writer.stderr
    reader = run_python(
        "from dash_database import DashDatabase; print(DashDatabase().get_user_value(1, 'k'))",
        tmp_path,
        **env,
    )

    assert reader.stdout.strip() == "v", reader.stderr


@pytest.mark.parametrize(
    ("url", "kind"),
    [("memory://", ddb.MemoryBackend), ("sqlite:///from_env.sqlite", SqliteBackend)],
)
def test_environment_variable_chooses_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, kind: type
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ddb.ENV_URL, url)

    with DashDatabase() as db:
        assert isinstance(db.backend, kind)


def test_path_argument_positional_keyword_and_pathlike(tmp_path: Path) -> None:
    for location in [str(tmp_path / "a.sqlite"), tmp_path / "b.sqlite"]:
        with DashDatabase(location) as first, DashDatabase(db_location=location) as second:
            first.store_user_value("u", "k", str(location))
            assert str(location) == second.get_user_value("u", "k")


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with DashDatabase.from_url("sqlite:///relative.sqlite") as db:
        assert str(tmp_path / "relative.sqlite") == db.backend.path  # type: ignore[attr-defined]
    with DashDatabase.from_url(f"sqlite:///{tmp_path}/absolute.sqlite") as db:
        assert str(tmp_path / "absolute.sqlite") == db.backend.path  # type: ignore[attr-defined]
    with DashDatabase(f"sqlite:///{tmp_path}/positional.sqlite") as db:
        assert isinstance(db.backend, SqliteBackend)
    assert isinstance(DashDatabase.from_url("memory://").backend, ddb.MemoryBackend)
    assert isinstance(DashDatabase(":memory:").backend, ddb.MemoryBackend)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "mysql://host/db", "nope://x"])
def test_bad_urls_raise_value_error(url: str) -> None:
    with pytest.raises(ddb.InvalidArgumentError):
        DashDatabase.from_url(url)


def test_url_password_never_appears_in_errors() -> None:
    with pytest.raises(ddb.InvalidArgumentError) as info:
        DashDatabase.from_url("nosuch://user:s3cret@host/db")

    assert "s3cret" not in str(info.value)
    assert "***" in str(info.value)


def test_none_uses_a_temporary_file_removed_on_close() -> None:
    db = DashDatabase(None)
    path = db.backend.path  # type: ignore[attr-defined]
    db.store_user_value("u", "k", 1)
    assert os.path.exists(path)

    db.close()

    assert not os.path.exists(path)
    assert not os.path.exists(path + "-wal")


def test_missing_directory_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="does not exist; create it"):
        DashDatabase(tmp_path / "no" / "such" / "dir" / "db.sqlite")


def test_directory_path_raises_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="is a directory"):
        DashDatabase(tmp_path)


def test_file_that_is_not_sqlite_raises_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    garbage = os.urandom(4096)
    path.write_bytes(garbage)

    with pytest.raises(ddb.BackendError, match="not a SQLite database") as info:
        DashDatabase(path)

    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert garbage == path.read_bytes()


def test_text_file_is_not_taken_for_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 100)

    with pytest.raises(ddb.BackendError, match=r"notes\.txt"):
        DashDatabase(path)


def test_closed_database_raises_instead_of_hanging(tmp_path: Path) -> None:
    db = DashDatabase(tmp_path / "db.sqlite")
    db.store_user_value("u", "k", 1)
    db.close()
    db.close()

    with pytest.raises(ddb.BackendError, match="closed"):
        db.get_user_value("u", "k")


# -- how it is stored ---------------------------------------------------------------------------


def test_file_is_a_sqlitedict_table_of_raw_serialized_bytes(tmp_path: Path) -> None:
    from sqlitedict import SqliteDict

    path = tmp_path / "db.sqlite"
    with DashDatabase(path) as db:
        db.store_user_value("user", "key", {"a": 1})

    with SqliteDict(str(path), tablename="dash_database", decode=bytes, journal_mode="WAL") as raw:
        assert {"4:user:key": pickle.dumps({"a": 1}, protocol=5)} == dict(raw)


def test_file_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with DashDatabase(path) as db:
        db.store_user_value("user", "key", 1)
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]

    assert mode == "wal"


@pytest.mark.parametrize(
    "query",
    ["keys", "purge"],
)
def test_listing_and_purging_use_an_index_not_a_scan(tmp_path: Path, query: str) -> None:
    from dash_database.backends import sqlite as module

    path = tmp_path / "db.sqlite"
    SqliteBackend(path).close()
    sql, args = {
        "keys": (module._KEYS, ("a", "b", "s", 0.0)),
        "purge": (module._EXPIRED_SESSIONS, (0.0,)),
    }[query]
    plan = sqlite3.connect(path).execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
    details = " | ".join(row[-1] for row in plan)

    assert "SCAN" not in details, details
    assert "SEARCH" in details, details


def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"a": b"old"}, None, 0.0)

    with pytest.raises(ddb.BackendError):
        # The second value cannot be bound by SQLite: the whole statement fails.
        backend.set_many("s", {"a": b"new", "b": [1]}, None, 0.0)  # type: ignore[dict-item]

    assert backend.get("s", "a", 0.0) == b"old"
    assert backend.keys("s", 0.0) == ["a"]
    backend.set_many("s", {"c": b"after"}, None, 0.0)
    assert backend.get("s", "c", 0.0) == b"after"
    backend.close()


# -- processes, fork, pickling, crashes -------------------------------------------------------


def _worker(path: str, worker: int, count: int) -> None:
    db = DashDatabase(path)
    for i in range(count):
        db.store_user_value(f"w{worker}", f"k{i}", i)
        db.store_user_value("shared", f"w{worker}-k{i}", i)
        assert i == db.get_user_value(f"w{worker}", f"k{i}")
    db.close()


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_processes_on_one_file_lose_no_write(tmp_path: Path, start_method: str) -> None:
    path = str(tmp_path / "db.sqlite")
    workers, count = 4, 150
    ctx = multiprocessing.get_context(start_method)
    processes = [ctx.Process(target=_worker, args=(path, w, count)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)

    assert [0] * workers == [p.exitcode for p in processes]
    with DashDatabase(path) as db:
        for w in range(workers):
            assert {f"k{i}": i for i in range(count)} == dict(db.session(f"w{w}"))
        assert workers * count == len(db.session("shared"))


def test_pickling_a_temporary_database_does_not_let_the_copy_remove_it() -> None:
    db = DashDatabase(None)
    copy = pickle.loads(pickle.dumps(db))
    copy.store_user_value("u", "k", 1)
    copy.close()

    assert db.get_user_value("u", "k") == 1
    db.close()


def test_memory_database_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(DashDatabase(":memory:"))


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    script = textwrap.dedent(f"""
        from dash_database import DashDatabase
        db = DashDatabase({str(path)!r})
        for i in range(100000):
            db.store_user_value("user", f"k{{i}}", i)
            print(i, flush=True)
    """)
    acknowledged = -1
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            acknowledged = int(line)
            if acknowledged >= 300:
                break
        child.send_signal(signal.SIGKILL)
        child.wait(30)

    assert acknowledged >= 300
    with DashDatabase(path) as db:
        for i in range(acknowledged + 1):
            assert i == db.get_user_value("user", f"k{i}")
        db.store_user_value("user", "after", "crash")
        assert db.get_user_value("user", "after") == "crash"


def test_busy_writers_in_many_processes_never_see_database_is_locked(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    ctx = multiprocessing.get_context("fork")
    processes = [ctx.Process(target=_hammer, args=(path, w)) for w in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)

    assert [p.exitcode for p in processes] == [0] * 6


def _hammer(path: str, worker: int) -> None:
    db = DashDatabase(path, ttl=60)
    for i in range(200):
        db.session(f"w{worker}").update({"a": i, "b": i})
        db.list_stored_user_keys(f"w{worker}")
        if i % 50 == 0:
            db.purge_expired()
            db.delete_all_user_values(f"w{worker}")
    db.close()


# -- large values kept as files -----------------------------------------------------------------

BIG = b"x" * (64 * 1024)


def blob_files(backend: SqliteBackend) -> list[str]:
    directory = backend.path + "-blobs"
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def test_large_values_live_in_files_and_small_ones_in_the_row(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"big": BIG, "small": b"tiny"}, None, 0.0)

    assert 1 == len(blob_files(backend))
    assert BIG == backend.get("s", "big", 0.0)
    assert b"tiny" == backend.get("s", "small", 0.0)
    backend.close()


@pytest.mark.parametrize(
    "how",
    [
        "overwrite big",
        "overwrite small",
        "overwrite small, session with a deadline",
        "overwrite small from another handle",
        "delete",
        "clear",
    ],
)
def test_replaced_or_deleted_large_values_leave_no_file(tmp_path: Path, how: str) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    deadline = 100.0 if "deadline" in how else None
    backend.set_many("s", {"k": BIG}, deadline, 0.0)
    first = blob_files(backend)

    if how.startswith("overwrite small"):
        writer = SqliteBackend(backend.path) if "another" in how else backend
        writer.set_many("s", {"k": b"small"}, deadline, 0.0)
        assert b"small" == backend.get("s", "k", 0.0)
        assert [] == blob_files(backend)
        writer.close()
    elif how == "overwrite big":
        backend.set_many("s", {"k": BIG + b"!"}, None, 0.0)
        assert BIG + b"!" == backend.get("s", "k", 0.0)
        assert 1 == len(blob_files(backend))
        assert first != blob_files(backend)
    elif how == "delete":
        assert backend.delete("s", "k", 0.0)
        assert [] == blob_files(backend)
    else:
        assert 1 == backend.clear("s", 0.0)
        assert [] == blob_files(backend)
    backend.close()


def test_purge_removes_the_files_of_expired_sessions(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("gone", {"k": BIG}, 10.0, 0.0)
    backend.set_many("kept", {"k": BIG}, 100.0, 0.0)

    assert 1 == backend.purge_expired(50.0)

    assert 1 == len(blob_files(backend))
    assert BIG == backend.get("kept", "k", 50.0)
    backend.close()


def test_a_write_to_an_expired_session_removes_the_files_of_its_old_values(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"old": BIG, "kept small": b"x"}, 10.0, 0.0)
    backend.set_many("other", {"k": BIG}, None, 0.0)

    backend.set_many("s", {"new": b"y"}, None, 50.0)

    assert ["new"] == backend.keys("s", 50.0)
    assert 1 == len(blob_files(backend))  # the other session's file only
    assert BIG == backend.get("other", "k", 50.0)
    backend.close()


def test_purge_sweeps_old_files_no_row_references(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"k": BIG}, None, 0.0)
    directory = backend.path + "-blobs"
    old_orphan, new_orphan = os.path.join(directory, "old"), os.path.join(directory, "new")
    for orphan in (old_orphan, new_orphan):
        Path(orphan).write_bytes(b"left by a crashed writer")
    os.utime(old_orphan, (0, 0))

    backend.purge_expired(0.0)

    assert not os.path.exists(old_orphan)
    assert os.path.exists(new_orphan)  # may belong to a write being committed right now
    assert BIG == backend.get("s", "k", 0.0)
    backend.close()


def test_damaged_value_file_raises_naming_it(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"k": BIG}, None, 0.0)
    (name,) = blob_files(backend)
    Path(backend.path + "-blobs", name).write_bytes(b"truncated")

    with pytest.raises(ddb.BackendError, match=name):
        backend.get("s", "k", 0.0)
    backend.set_many("s", {"k": b"fixed"}, None, 0.0)
    assert b"fixed" == backend.get("s", "k", 0.0)
    backend.close()


def test_failed_write_of_a_large_value_leaves_no_file(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")

    with pytest.raises(ddb.BackendError):
        backend.set_many("s", {"big": BIG, "bad": [1]}, None, 0.0)  # type: ignore[dict-item]

    assert [] == blob_files(backend)
    assert [] == backend.keys("s", 0.0)
    backend.close()


def test_readers_never_see_a_missing_file_while_writers_replace_it(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    backend = SqliteBackend(tmp_path / "db.sqlite")
    values = [bytes([i]) * len(BIG) for i in range(20)]
    backend.set_many("s", {"k": values[0]}, None, 0.0)

    def write() -> None:
        for value in values:
            backend.set_many("s", {"k": value}, None, 0.0)

    def read() -> set[bytes]:
        seen = set()
        for _ in range(200):
            value = backend.get("s", "k", 0.0)
            assert value is not None
            seen.add(value)
        return seen

    with ThreadPoolExecutor(3) as pool:
        writer = pool.submit(write)
        readers = [pool.submit(read) for _ in range(2)]
        writer.result()
        seen = set().union(*(r.result() for r in readers))

    assert seen <= set(values)
    assert 1 == len(blob_files(backend))
    backend.close()


def test_temporary_database_removes_its_value_files() -> None:
    db = DashDatabase(None)
    db.store_user_value("u", "k", BIG)
    directory = db.backend.path + "-blobs"  # type: ignore[attr-defined]
    assert os.path.isdir(directory)

    db.close()

    assert not os.path.exists(directory)
