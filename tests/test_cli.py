"""The dash-database command line, run through its real entry point in a subprocess, against
every store it can reach (a memory store lives in one process, so the tool cannot see one)."""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dash_database import DashDatabase
from dash_database._sealing import MAC_OVERHEAD
from dash_database.cli import EXIT_BAD_URL, EXIT_FAILED, EXIT_UNKNOWN_SESSION, EXIT_UNREACHABLE
from tests.cli_stores import CLI_KINDS, Store, contents, kind_params, make_store, run_cli

__all__ = ["make_store"]  # the fixture, imported so that pytest finds it here

LONG_ID = "dds1." + "A" * 43


@pytest.fixture(params=kind_params(CLI_KINDS))
def store(
    request: pytest.FixtureRequest,
    make_store: Callable[[str], Store],
    monkeypatch: pytest.MonkeyPatch,
) -> Store:
    """A store of each kind holding three live sessions and two expired ones."""
    # The app's secret, which the tool finds as the app does (values are sealed with it).
    monkeypatch.setenv("DASH_DATABASE_SECRET", "cli-test-secret-0123456789")
    store = make_store(str(request.param))
    db = DashDatabase(store.backend, ttl=3600)
    db.session(LONG_ID + "xyz").update(frame={"rows": [1, 2, 3]}, step=2)
    db.store_user_value("small", "answer", 42)
    db.store_user_value("big", "blob", b"x" * 100_000)
    now = time.time()
    for name in ("old1", "old2"):
        store.backend.set_many(name, {"k": b"v"}, now - 100, now - 200, version=1)
    return store


def cli_json(*args: str) -> object:
    result = run_cli(*args, "--json")
    assert 0 == result.returncode, result.stderr.decode()
    return json.loads(result.stdout)


def test_info_shows_the_store_and_its_figures(store: Store) -> None:
    data = cli_json("info", "--url", store.url)

    assert isinstance(data, dict)
    assert (3, 4, 2) == (data["sessions"], data["keys"], data["expired"])
    assert data["bytes"] > 100_000
    human = run_cli("info", "--url", store.url).stdout.decode()
    assert "sessions   3\n" in human
    assert "dash-database purge" in human


def test_sessions_lists_abbreviated_ids_unless_full(store: Store) -> None:
    short = run_cli("sessions", "--url", store.url).stdout.decode()
    full = run_cli("sessions", "--url", store.url, "--full").stdout.decode()

    assert LONG_ID[:15] + "…" in short and LONG_ID not in short
    assert LONG_ID + "xyz" in full
    assert "old1" not in full
    assert 4 == len(full.splitlines())  # the header and three sessions


def test_sessions_sorts_and_limits(store: Store) -> None:
    data = cli_json("sessions", "--url", store.url, "--sort", "bytes", "--limit", "2")

    assert isinstance(data, list)
    assert ["big", LONG_ID + "xyz"] == [s["session"] for s in data]
    assert data[0]["keys"] == 1 and data[0]["deadline"] > time.time()


def test_keys_lists_a_sessions_keys_with_sizes(store: Store) -> None:
    data = cli_json("keys", "--url", store.url, LONG_ID + "xyz")

    assert isinstance(data, list)
    assert ["frame", "step"] == [k["key"] for k in data]
    assert MAC_OVERHEAD + len(pickle.dumps(2, protocol=pickle.HIGHEST_PROTOCOL)) == data[1]["bytes"]


def test_show_gives_type_size_and_repr(store: Store) -> None:
    data = cli_json("show", "--url", store.url, LONG_ID + "xyz", "frame")

    assert isinstance(data, dict)
    assert ("dict", "{'rows': [1, 2, 3]}") == (data["type"], data["repr"])
    human = run_cli("show", "--url", store.url, "big", "blob").stdout.decode()
    assert "type     bytes\n" in human and "…" in human


def test_show_raw_writes_the_stored_bytes(store: Store) -> None:
    result = run_cli("show", "--url", store.url, "small", "answer", "--raw")

    assert 42 == pickle.loads(result.stdout[MAC_OVERHEAD:])


def test_unknown_session_or_key_has_its_own_status(store: Store) -> None:
    for args in (("keys", "nobody"), ("show", "nobody", "k"), ("show", "small", "nokey")):
        result = run_cli(*args, "--url", store.url)
        assert EXIT_UNKNOWN_SESSION == result.returncode
        assert result.stderr.decode().startswith("Error: ")
    assert EXIT_UNKNOWN_SESSION == run_cli("delete", "old1", "--yes", "--url", store.url).returncode


def test_delete_removes_one_session_and_asks_first(store: Store) -> None:
    refused = run_cli("delete", "small", "--url", store.url)
    assert EXIT_FAILED == refused.returncode
    assert "--yes" in refused.stderr.decode()
    assert "small" in contents(store.backend, time.time())

    deleted = run_cli("delete", "small", "--yes", "--url", store.url)

    assert 0 == deleted.returncode, deleted.stderr.decode()
    assert "1 key." in deleted.stdout.decode()
    assert {"big", LONG_ID + "xyz"} == set(contents(store.backend, time.time()))


def test_purge_removes_expired_sessions_and_prints_the_count(store: Store) -> None:
    assert {"purged": 2} == cli_json("purge", "--url", store.url)
    quiet = run_cli("purge", "--quiet", "--url", store.url)
    assert (0, b"") == (quiet.returncode, quiet.stdout)
    assert 0 == store.backend.stats(time.time()).expired


def test_export_then_import_through_files_and_pipes(
    store: Store, make_store: Callable[[str], Store], tmp_path: Path
) -> None:
    dump = tmp_path / "all.dump"
    exported = run_cli("export", str(dump), "--url", store.url)
    assert 0 == exported.returncode, exported.stderr.decode()
    assert "Exported 3 sessions, 4 keys" in exported.stdout.decode()
    assert EXIT_FAILED == run_cli("export", str(dump), "--url", store.url).returncode

    for kind in CLI_KINDS if store.kind == "sqlite" else ["sqlite"]:
        target = make_store(kind)
        imported = run_cli("import", str(dump), "--url", target.url)
        assert 0 == imported.returncode, imported.stderr.decode()
        assert contents(store.backend, time.time()) == contents(target.backend, time.time())

    piped = make_store("sqlite")
    stream = run_cli("export", "-", "--url", store.url).stdout
    assert 0 == run_cli("import", "-", "--url", piped.url, input=stream).returncode
    assert contents(store.backend, time.time()) == contents(piped.backend, time.time())


def test_default_store_comes_from_the_environment(store: Store, tmp_path: Path) -> None:
    result = run_cli("info", "--json", env={"DASH_DATABASE_URL": store.url}, cwd=tmp_path)

    assert 3 == json.loads(result.stdout)["sessions"]


# -- errors that need no store -------------------------------------------------------------


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    result = run_cli("info", "--url", str(tmp_path / "typo.sqlite"))

    assert EXIT_BAD_URL == result.returncode
    assert "There is no store at" in result.stderr.decode()
    assert [] == os.listdir(tmp_path)


def test_the_default_store_is_the_file_in_the_working_directory(tmp_path: Path) -> None:
    result = run_cli("sessions", cwd=tmp_path)

    assert EXIT_BAD_URL == result.returncode
    assert str(tmp_path / "dash_database.sqlite") in result.stderr.decode()


def test_an_unknown_scheme_is_a_bad_url() -> None:
    result = run_cli("info", "--url", "mysql://user:hunter2@host/db")

    assert EXIT_BAD_URL == result.returncode
    assert "hunter2" not in result.stderr.decode()


@pytest.mark.slow
def test_an_unreachable_server_has_its_own_status_and_hides_the_password() -> None:
    from tests.servers import free_port

    result = run_cli("info", "--url", f"redis://:hunter2@127.0.0.1:{free_port()}/0")

    assert EXIT_UNREACHABLE == result.returncode, result.stderr.decode()
    assert "hunter2" not in result.stderr.decode() + result.stdout.decode()


def test_importing_a_file_that_is_not_an_export_fails_cleanly(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.dump"
    bogus.write_bytes(b"hello\n")

    result = run_cli("import", str(bogus), "--url", str(tmp_path / "new.sqlite"))

    assert EXIT_FAILED == result.returncode
    assert "is not a complete dash-database export" in result.stderr.decode()
