"""What only the embedded SQLite backend has: files, processes, fork, crashes."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlitedict import SqliteMultithread

import dash_database as ddb
from dash_database import DashDatabase, SqliteBackend
from dash_database._sealing import MAC_OVERHEAD
from tests.support import dump_stacks_if_hung, join_processes

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


def test_values_are_stored_raw_in_the_documented_tables(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with DashDatabase(path) as db:
        db.store_user_value("user", "key", {"a": 1})

    conn = sqlite3.connect(path)
    rows = conn.execute(
        "SELECT s.name, v.key, v.value, v.length, s.keys, s.bytes FROM dash_database_sessions s"
        " JOIN dash_database_values v ON v.session = s.id"
    ).fetchall()
    conn.close()
    # The stored bytes are the sealed value: the MAC's envelope, then the pickle.
    value = pickle.dumps({"a": 1}, protocol=5)
    [(name, key, stored, length, keys, size)] = rows
    assert ("user", "key", value) == (name, key, stored[MAC_OVERHEAD:])
    assert (MAC_OVERHEAD + len(value), 1, 3 + MAC_OVERHEAD + len(value)) == (length, keys, size)


def test_file_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with DashDatabase(path) as db:
        db.store_user_value("user", "key", 1)
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]

    assert mode == "wal"


@pytest.mark.parametrize(
    "query", ["GET", "KEYS", "SESSION_KEYS", "SESSION_BYTES", "PURGE_BATCH", "PURGE_FILES"]
)
def test_reads_and_purges_use_an_index_not_a_scan(tmp_path: Path, query: str) -> None:
    from dash_database.backends.sqlite import _sql

    path = tmp_path / "db.sqlite"
    SqliteBackend(path).close()
    conn = sqlite3.connect(path)
    for statement in _sql.WRITER_SETUP:  # the TEMP views the purge writes through
        conn.execute(statement)
    named = {"session": "s", "key": "k", "now": 0.0, "start": "", "limit": 10}
    args = ("k", "s", 0.0) if query == "GET" else named  # GET: key, session, now
    plan = conn.execute("EXPLAIN QUERY PLAN " + getattr(_sql, query), args).fetchall()
    conn.close()
    details = " | ".join(row[-1] for row in plan)

    assert "SCAN" not in details.replace("SCAN CONSTANT ROW", ""), details
    assert "SEARCH" in details, details


def _writer_thread(path: Path) -> SqliteMultithread:
    """Return sqlitedict's writer thread on ``path`` in this process."""
    (thread,) = [
        t
        for t in threading.enumerate()
        if isinstance(t, SqliteMultithread) and t.filename == str(path)
    ]
    return thread


def test_a_full_disk_raises_keeps_the_data_and_the_next_write_works(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    backend = SqliteBackend(path, file_threshold=None)
    backend.set_many("s", {"a": b"old"}, None, 0.0, version=1)
    writer = _writer_thread(path)
    pages = writer.select_one("PRAGMA page_count")[0]
    writer.select_one(f"PRAGMA max_page_count = {pages}")  # the file cannot grow: a full disk

    with pytest.raises(ddb.BackendError, match="full"):
        backend.set_many("s", {"a": b"new", "b": b"x" * 100_000}, 5.0, 0.0, version=2)

    assert (b"old", 1) == backend.get_versioned("s", "a", 0.0)
    assert ["a"] == backend.keys("s", 0.0)
    # The failed writer was replaced by a new one (without the page limit: space was freed).
    writer.join(10)
    assert not writer.is_alive()
    backend.set_many("s", {"b": b"x" * 100_000}, None, 0.0, version=3)
    assert (1 + 3) + (1 + 100_000) == backend.session_bytes("s", 0.0)
    backend.close()


def test_a_dead_writer_thread_raises_at_once_and_the_next_call_opens_a_new_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite"
    backend = SqliteBackend(path, timeout=20.0)
    backend.set_many("s", {"a": b"1"}, None, 0.0, version=1)
    _writer_thread(path).close()  # the thread ends, as a crash would end it
    started = time.monotonic()

    with pytest.raises(ddb.BackendError, match="writer thread stopped"):
        backend.set_many("s", {"b": b"2"}, None, 0.0, version=2)

    assert time.monotonic() - started < 20.0  # noticed while waiting, not after the timeout
    backend.set_many("s", {"c": b"3"}, None, 0.0, version=3)
    assert ["a", "c"] == sorted(backend.keys("s", 0.0))
    backend.close()


@pytest.mark.parametrize("file_threshold", [None, 32 * 1024], ids=["in the row", "in a file"])
def test_a_disk_that_fills_while_writing_raises_and_the_next_write_works(
    tmp_path: Path, file_threshold: int | None
) -> None:
    # RLIMIT_FSIZE makes every write past the limit fail, as a full disk does; in a child
    # process, so that the limit binds no other test.
    script = f"""
        import resource, signal
        from dash_database import BackendError, DashDatabase, SqliteBackend
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        path = {str(tmp_path / "db.sqlite")!r}
        db = DashDatabase(SqliteBackend(path, file_threshold={file_threshold!r}))
        db.store_user_value("u", "kept", "before")
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        try:
            db.store_user_value("u", "big", "x" * 1_000_000)
        except BackendError as exc:
            print("refused:", exc)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        print(db.get_user_value("u", "kept"), db.get_user_value("u", "big"))
        db.store_user_value("u", "after", "works")
        print(db.get_user_value("u", "after"))
    """
    done = run_python(script, tmp_path, PYTHONPATH=os.getcwd())

    assert 0 == done.returncode, done.stderr
    refused, values, after = done.stdout.splitlines()
    assert refused.startswith("refused: Could not "), refused
    assert ("before None", "works") == (values, after)


def test_an_update_of_more_keys_than_sqlite_takes_parameters_is_one_write(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    items = {f"k{i}": b"v%d" % i for i in range(40_000)}

    backend.set_many("s", items, None, 0.0, version=1, max_bytes=10**6)

    assert 40_000 == len(backend.keys("s", 0.0))
    assert (b"v39999", 1) == backend.get_versioned("s", "k39999", 0.0)
    with pytest.raises(ddb.QuotaExceededError):
        backend.set_many("t", items, None, 0.0, version=2, max_bytes=1000)
    assert [] == backend.keys("t", 0.0)
    # A read of more keys than one statement takes: several statements, in order.
    wanted = [f"k{i}" for i in range(2_500, -1, -1)] + ["missing"]
    assert [b"v%d" % i for i in range(2_500, -1, -1)] + [None] == backend.get_many("s", wanted, 0.0)
    backend.close()


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_files_and_folders_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "db.sqlite"
    old = os.umask(umask)
    try:
        backend = SqliteBackend(path)
        backend.set_many("s", {"big": BIG, "small": b"x"}, None, 0.0, version=1)
    finally:
        os.umask(old)
    modes = {name: stat.S_IMODE(os.stat(f"{path}{name}").st_mode) for name in ("", "-wal", "-shm")}
    modes["-blobs"] = stat.S_IMODE(os.stat(f"{path}-blobs").st_mode)
    (name,) = blob_files(backend)
    modes["value file"] = stat.S_IMODE(os.stat(f"{path}-blobs/{name}").st_mode)
    backend.close()

    expected = {"": 0o600, "-wal": 0o600, "-shm": 0o600, "-blobs": 0o700, "value file": 0o600}
    assert expected == modes


# -- processes, fork, pickling, crashes -------------------------------------------------------


def _worker(path: str, worker: int, count: int) -> None:
    dump_stacks_if_hung()
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
    join_processes(processes)

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


def test_a_database_nobody_closed_is_freed_with_its_last_reference(tmp_path: Path) -> None:
    # Not left to a later garbage collection, which may run just before a fork(): the writer
    # thread would then be inside SQLite while the child is made, and the child would hang.
    import gc
    import weakref

    db = DashDatabase(tmp_path / "db.sqlite")
    db.store_user_value("u", "k", 1)
    backend = weakref.ref(db.backend)
    gc.disable()
    try:
        del db
        assert backend() is None
    finally:
        gc.enable()


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
    # Spawned, not forked: a fork while another thread of this test process is inside SQLite
    # copies SQLite's locked allocator mutex into the child, which then never runs.
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=_hammer, args=(path, w)) for w in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    for process in processes:
        if process.exitcode is None:
            process.kill()

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
    backend.set_many("s", {"big": BIG, "small": b"tiny"}, None, 0.0, version=1)

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
    backend.set_many("s", {"k": BIG}, deadline, 0.0, version=1)
    first = blob_files(backend)

    if how.startswith("overwrite small"):
        writer = SqliteBackend(backend.path) if "another" in how else backend
        writer.set_many("s", {"k": b"small"}, deadline, 0.0, version=1)
        assert b"small" == backend.get("s", "k", 0.0)
        assert [] == blob_files(backend)
        writer.close()
    elif how == "overwrite big":
        backend.set_many("s", {"k": BIG + b"!"}, None, 0.0, version=1)
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
    backend.set_many("gone", {"k": BIG}, 10.0, 0.0, version=1)
    backend.set_many("gone too", {"a": BIG, "b": BIG, "small": b"x"}, 20.0, 0.0, version=1)
    backend.set_many("kept", {"k": BIG}, 100.0, 0.0, version=1)

    assert 2 == backend.purge_expired(50.0)

    assert 1 == len(blob_files(backend))
    assert BIG == backend.get("kept", "k", 50.0)
    backend.close()


def test_a_write_to_an_expired_session_removes_the_files_of_its_old_values(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"old": BIG, "kept small": b"x"}, 10.0, 0.0, version=1)
    backend.set_many("other", {"k": BIG}, None, 0.0, version=1)

    backend.set_many("s", {"new": b"y"}, None, 50.0, version=1)

    assert ["new"] == backend.keys("s", 50.0)
    assert 1 == len(blob_files(backend))  # the other session's file only
    assert BIG == backend.get("other", "k", 50.0)
    backend.close()


def test_purge_sweeps_old_files_no_row_references(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"k": BIG}, None, 0.0, version=1)
    directory = backend.path + "-blobs"
    old_orphan, new_orphan = (os.path.join(directory, c * 32) for c in "ab")
    for orphan in (old_orphan, new_orphan):
        Path(orphan).write_bytes(b"left by a crashed writer")
    os.utime(old_orphan, (0, 0))
    os.utime(os.path.join(directory, blob_files(backend)[0]), (0, 0))  # old but named by a row

    backend.purge_expired(0.0)

    assert not os.path.exists(old_orphan)
    assert os.path.exists(new_orphan)  # may belong to a write being committed right now
    assert BIG == backend.get("s", "k", 0.0)
    backend.close()


def test_damaged_value_file_raises_naming_it(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"k": BIG}, None, 0.0, version=1)
    (name,) = blob_files(backend)
    Path(backend.path + "-blobs", name).write_bytes(b"truncated")

    with pytest.raises(ddb.BackendError, match=name):
        backend.get("s", "k", 0.0)
    backend.set_many("s", {"k": b"fixed"}, None, 0.0, version=1)
    assert b"fixed" == backend.get("s", "k", 0.0)
    backend.close()


def test_refused_write_of_a_large_value_leaves_no_file(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")

    with pytest.raises(ddb.QuotaExceededError):
        backend.set_many("s", {"big": BIG}, None, 0.0, version=1, max_bytes=1000)
    assert not backend.compare_and_set("s", "big", BIG, 99, None, 0.0, version=2)

    assert [] == blob_files(backend)
    assert [] == backend.keys("s", 0.0)
    backend.close()


def test_a_value_file_copied_over_another_is_refused(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("alice", {"k": BIG}, None, 0.0, version=1)
    (alice,) = blob_files(backend)
    backend.set_many("bob", {"k": b"b" * len(BIG)}, None, 0.0, version=1)
    (bob,) = set(blob_files(backend)) - {alice}
    directory = Path(backend.path + "-blobs")
    (directory / bob).write_bytes((directory / alice).read_bytes())

    with pytest.raises(ddb.BackendError, match="does not belong to the key"):
        backend.get("bob", "k", 0.0)
    assert BIG == backend.get("alice", "k", 0.0)
    backend.close()


def test_a_row_edited_to_name_another_keys_file_is_refused(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("alice", {"k": BIG}, None, 0.0, version=1)
    backend.set_many("bob", {"k": BIG}, None, 0.0, version=2)
    conn = sqlite3.connect(backend.path)
    with conn:
        conn.execute(
            "UPDATE dash_database_values SET value = (SELECT value FROM dash_database_values"
            " WHERE version = 1) WHERE version = 2"
        )
    conn.close()

    with pytest.raises(ddb.BackendError, match="does not belong to the key"):
        backend.get("bob", "k", 0.0)
    backend.close()


def test_a_link_planted_as_a_value_file_is_not_followed(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"k": BIG}, None, 0.0, version=1)
    (name,) = blob_files(backend)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    link = Path(backend.path + "-blobs", name)
    link.unlink()
    link.symlink_to(secret)

    with pytest.raises(ddb.BackendError, match="cannot be opened safely"):
        backend.get("s", "k", 0.0)
    backend.set_many("s", {"k": b"replaced"}, None, 0.0, version=2)
    assert "not yours" == secret.read_text()
    backend.close()


@pytest.mark.parametrize("reference", ["../victim", "/tmp/../victim", ""])
def test_a_reference_edited_to_a_path_never_makes_an_overwrite_delete_it(
    tmp_path: Path, reference: str
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"k": BIG}, None, 0.0, version=1)
    conn = sqlite3.connect(backend.path)
    with conn:
        conn.execute("UPDATE dash_database_values SET value = ?", (reference,))
    conn.close()

    with pytest.raises(ddb.BackendError, match="not a value file name"):
        backend.get("s", "k", 0.0)
    backend.set_many("s", {"k": BIG}, None, 0.0, version=2)
    backend.delete("s", "k", 0.0)

    assert "keep me" == victim.read_text()
    backend.close()


def test_a_missing_value_file_raises_a_clear_error(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"k": BIG}, None, 0.0, version=1)
    (name,) = blob_files(backend)
    os.remove(os.path.join(backend.path + "-blobs", name))

    with pytest.raises(ddb.BackendError, match="is missing: it was removed outside"):
        backend.get("s", "k", 0.0)
    backend.set_many("s", {"k": b"fixed"}, None, 0.0, version=2)
    assert b"fixed" == backend.get("s", "k", 0.0)
    backend.close()


def test_readers_never_see_a_missing_file_while_writers_replace_it(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    backend = SqliteBackend(tmp_path / "db.sqlite")
    values = [bytes([i]) * len(BIG) for i in range(20)]
    backend.set_many("s", {"k": values[0]}, None, 0.0, version=1)

    def write() -> None:
        for value in values:
            backend.set_many("s", {"k": value}, None, 0.0, version=1)

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


# -- read connections -------------------------------------------------------------------------


def test_a_new_thread_per_request_reuses_the_read_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dash with async support under Flask runs each callback on a new thread, as Flask's
    # development server does each request: a connection per thread would be opened, and
    # the schema loaded into it, for every request.
    from dash_database.backends.sqlite import _connect

    opened: list[object] = []
    original = _connect.Reader.__init__

    def counting(self: _connect.Reader, path: str, timeout: float) -> None:
        opened.append(self)
        original(self, path, timeout)

    monkeypatch.setattr(_connect.Reader, "__init__", counting)
    backend = SqliteBackend(tmp_path / "db.sqlite")
    backend.set_many("s", {"k": b"v", "big": b"x" * 100_000}, None, 0.0, version=1)
    read: list[object] = []

    def request() -> None:
        read.append(backend.get("s", "k", 0.0))
        read.append(backend.get_many("s", ["big", "k"], 0.0))
        read.append(backend.read_sessions(0.0)[0][0].items["big"][:1])

    for _ in range(20):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()

    assert read == [b"v", [b"x" * 100_000, b"v"], b"x"] * 20
    assert len(opened) == 1

    # Threads reading at once each get a connection of their own, kept for later requests.
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def concurrent() -> None:
        try:
            barrier.wait(10)
            for _ in range(200):
                assert backend.get_many("s", ["k", "big"], 0.0) == [b"v", b"x" * 100_000]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=concurrent) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert 1 < len(opened) <= 5
    backend.close()
    with pytest.raises(ddb.BackendError, match="closed"):
        backend.get("s", "k", 0.0)
