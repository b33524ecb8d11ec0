"""Integrity beyond the contract suite: values tampered with directly in each real store, the
secret file's checks, the operator tool and export/import with sealed values, and the
encryption extra."""

from __future__ import annotations

import io
import os
import pickle
import sqlite3
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dash_database import (
    DashDatabase,
    IntegrityError,
    InvalidArgumentError,
    MemoryBackend,
    SqliteBackend,
)
from dash_database._export import export_store, import_store
from dash_database._signing import read_or_create_secret_file
from dash_database.cli import EXIT_FAILED
from tests.cli_stores import run_cli
from tests.contract.test_integrity import Planted
from tests.servers import unique_name
from tests.support import FakeClock, join_processes

KEY = "integrity-tests-secret-key"


@pytest.fixture
def evil(tmp_path: Path) -> tuple[bytes, Path]:
    path = tmp_path / "pwned"
    return pickle.dumps(Planted(path)), path


# -- values replaced in the stores themselves ---------------------------------------------------


def test_a_pickle_planted_in_the_sqlite_file_is_refused(
    tmp_path: Path, evil: tuple[bytes, Path]
) -> None:
    payload, planted = evil
    path = tmp_path / "app.sqlite"
    with DashDatabase(path, secret_key=KEY) as db:
        db.store_user_value("user", "k", "fine")
    with sqlite3.connect(path) as conn:
        assert 1 == conn.execute("UPDATE dash_database_values SET value = ?", (payload,)).rowcount

    with DashDatabase(path, secret_key=KEY) as db, pytest.raises(IntegrityError):
        db.get_user_value("user", "k")
    assert not planted.exists()


@pytest.mark.slow
def test_a_pickle_planted_with_hset_in_redis_is_refused(
    redis_url: str, evil: tuple[bytes, Path]
) -> None:
    from dash_database.backends.redis import RedisBackend

    payload, planted = evil
    prefix = unique_name("integrity")
    backend = RedisBackend(redis_url, prefix=prefix)
    with DashDatabase(backend, secret_key=KEY) as db:
        db.store_user_value("user", "k", "fine")
        client = backend.client
        try:
            (hash_key,) = client.scan_iter(match=f"{prefix}:*:s:*")
            assert 0 == client.hset(hash_key, "v:k", payload)  # replaced, not added

            with pytest.raises(IntegrityError):
                db.get_user_value("user", "k")
        finally:
            client.delete(*client.scan_iter(match=f"{prefix}:*"))
    assert not planted.exists()


@pytest.mark.slow
def test_a_pickle_planted_with_update_in_postgres_is_refused(
    postgres_url: str, evil: tuple[bytes, Path]
) -> None:
    from dash_database.backends.postgres import PostgresBackend
    from tests.conftest import POSTGRES_TEST_TABLE

    payload, planted = evil
    namespace = unique_name("integrity")
    backend = PostgresBackend(postgres_url, table=POSTGRES_TEST_TABLE, namespace=namespace)
    with DashDatabase(backend, secret_key=KEY) as db:
        db.store_user_value("user", "k", "fine")
        try:
            with backend.engine.begin() as conn:
                changed = conn.exec_driver_sql(
                    f"UPDATE {backend.values_table} SET value = %(v)s WHERE namespace = %(ns)s",
                    {"v": payload, "ns": namespace},
                ).rowcount
            assert 1 == changed

            with pytest.raises(IntegrityError):
                db.get_user_value("user", "k")
        finally:
            with backend.engine.begin() as conn:
                for table in (backend.sessions_table, backend.values_table):
                    conn.exec_driver_sql(
                        f"DELETE FROM {table} WHERE namespace = %(ns)s", {"ns": namespace}
                    )
    assert not planted.exists()


# -- the secret file ------------------------------------------------------------------------


def secret_file(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "app.secret"
    path.write_text("a-secret-key-of-enough-bytes")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640, 0o620, 0o602, 0o666])
def test_a_secret_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path, mode)

    with pytest.raises(InvalidArgumentError, match=f"chmod 600 {path}") as raised:
        read_or_create_secret_file(str(path))
    assert "a-secret-key" not in str(raised.value)


def test_a_secret_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = secret_file(tmp_path, 0o600)
    if os.getuid() == 0:
        os.chown(path, 4242, -1)
    else:
        pytest.skip("only root can give a file to another user")

    with pytest.raises(InvalidArgumentError, match="belongs to another user"):
        read_or_create_secret_file(str(path))


def test_an_app_refuses_a_loose_secret_file_before_reading_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASH_DATABASE_SECRET", raising=False)
    with DashDatabase(tmp_path / "app.sqlite") as db:
        db.store_user_value("user", "k", 1)
    (tmp_path / "app.sqlite.secret").chmod(0o644)

    with DashDatabase(tmp_path / "app.sqlite") as db, pytest.raises(InvalidArgumentError):
        db.get_user_value("user", "k")


@pytest.fixture
def umask() -> Iterator[Any]:
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
def test_a_generated_secret_file_is_0600_whatever_the_umask(
    tmp_path: Path, umask: Any, mask: int
) -> None:
    umask(mask)
    path = tmp_path / "new.secret"

    key = read_or_create_secret_file(str(path))

    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    assert key == read_or_create_secret_file(str(path))
    assert [path.name] == os.listdir(tmp_path)  # no temporary file left behind


def test_no_secret_and_nowhere_to_keep_one_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASH_DATABASE_SECRET", raising=False)
    if os.getuid() == 0:
        folder = Path("/proc/dash_database_tests")  # nobody, root included, creates files here
    else:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
    backend = MemoryBackend()
    backend.secret_file = str(folder / "dash_database.secret")
    db = DashDatabase(backend)

    with pytest.raises(InvalidArgumentError, match="DASH_DATABASE_SECRET") as raised:
        db.store_user_value("user", "k", 1)
    assert isinstance(raised.value.__cause__, OSError)
    assert [] == db.list_stored_user_keys("user")


# -- the operator tool, export and import ------------------------------------------------------


@pytest.fixture
def app_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite store written by an app without a configured secret (a generated one)."""
    monkeypatch.delenv("DASH_DATABASE_SECRET", raising=False)
    path = tmp_path / "app.sqlite"
    with DashDatabase(path) as db:
        db.store_user_value("user", "answer", 42)
    return path


def test_show_checks_values_with_the_secret_file_beside_the_store(app_store: Path) -> None:
    result = run_cli("show", "--url", str(app_store), "user", "answer")

    assert 0 == result.returncode, result.stderr.decode()
    assert "value    42" in result.stdout.decode()


def test_show_without_the_secret_refuses_to_deserialize(app_store: Path) -> None:
    Path(f"{app_store}.secret").unlink()

    result = run_cli("show", "--url", str(app_store), "user", "answer")

    assert EXIT_FAILED == result.returncode
    assert "DASH_DATABASE_SECRET" in result.stderr.decode()
    raw = run_cli("show", "--url", str(app_store), "user", "answer", "--raw")
    assert 0 == raw.returncode and raw.stdout.endswith(pickle.dumps(42, pickle.HIGHEST_PROTOCOL))


def test_show_refuses_a_tampered_value_without_running_it(
    app_store: Path, evil: tuple[bytes, Path]
) -> None:
    payload, planted = evil
    with sqlite3.connect(app_store) as conn:
        conn.execute("UPDATE dash_database_values SET value = ?", (payload,))

    result = run_cli("show", "--url", str(app_store), "user", "answer")

    assert EXIT_FAILED == result.returncode
    assert "integrity check" in result.stderr.decode()
    assert not planted.exists()


def test_an_export_imported_where_the_app_has_the_same_secret_verifies(
    tmp_path: Path, clock: FakeClock
) -> None:
    source = DashDatabase(MemoryBackend(), secret_key=KEY, clock=clock)
    source.session("user").update(a=1, b={"c": [2]})
    out = io.BytesIO()
    export_store(source.backend, out, clock)
    target = SqliteBackend(tmp_path / "copy.sqlite")
    import_store(target, io.BytesIO(out.getvalue()), clock)

    copy = DashDatabase(target, secret_key=KEY, clock=clock)
    other = DashDatabase(target, secret_key="not-the-app-secret-key", clock=clock)

    assert {"a": 1, "b": {"c": [2]}} == dict(copy.session("user"))
    with pytest.raises(IntegrityError, match="secret key this app does not have"):
        other.get_user_value("user", "a")
    target.close()


def test_an_export_to_a_file_that_cannot_be_written_is_a_clear_error(app_store: Path) -> None:
    result = run_cli("export", "--url", str(app_store), "/proc/dash_database_tests/out.dump")

    assert EXIT_FAILED == result.returncode
    assert result.stderr.decode().startswith("Error: Cannot use the file /proc/")
    assert "Traceback" not in result.stderr.decode()


# -- the encryption extra -------------------------------------------------------------------


def test_encrypt_without_cryptography_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)

    with pytest.raises(InvalidArgumentError, match=r"dash_database\[encryption\]"):
        DashDatabase(":memory:", secret_key=KEY, encrypt=True)


def test_reading_an_encrypted_value_without_cryptography_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = MemoryBackend()
    DashDatabase(backend, secret_key=KEY, encrypt=True).store_user_value("user", "k", 1)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)

    with pytest.raises(InvalidArgumentError, match=r"dash_database\[encryption\]"):
        DashDatabase(backend, secret_key=KEY).get_user_value("user", "k")


@pytest.mark.parametrize("value", [1, "yes", None])
def test_encrypt_must_be_a_bool(value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="encrypt must be True or False"):
        DashDatabase(":memory:", encrypt=value)


def test_a_pickled_database_without_a_secret_reads_its_values(tmp_path: Path) -> None:
    with DashDatabase(None) as db:  # a temporary file, its key made in this process
        db.store_user_value("user", "k", [1])
        copy = pickle.loads(pickle.dumps(db))

        assert [1] == copy.get_user_value("user", "k")


def test_encrypted_values_stay_readable_after_rotate_session() -> None:
    db = DashDatabase(MemoryBackend(), secret_key=KEY, encrypt=True)
    old = db.new_session_id()
    db.store_user_value(old, "k", {"secret": 1})

    new = db.rotate_session(old)

    assert {"secret": 1} == db.get_user_value(new, "k")
    blob = db.backend.get(db.session(new).session_id, "k", 0.0)
    assert blob is not None and 0x02 == blob[0]


def test_a_child_forked_from_a_database_without_a_secret_shares_its_key() -> None:
    import multiprocessing

    with DashDatabase(None) as db:  # a temporary file and no secret file: a key made now
        # Nothing sealed before the fork: the child must not make a key of its own.
        child = multiprocessing.get_context("fork").Process(
            target=db.store_user_value, args=("user", "child", 2)
        )
        child.start()
        join_processes([child], 30)

        assert 0 == child.exitcode
        assert 2 == db.get_user_value("user", "child")


def test_a_value_mac_is_the_documented_hmac_sha256_of_its_envelope() -> None:
    import hmac
    import struct

    from dash_database._sealing import KEY_ID_LABEL, MAC_LABEL, Sealer

    secret = b"integrity-tests-secret"
    blob = Sealer(lambda: [secret]).seal("session", "key", b"serialized")

    key_id = hmac.digest(secret, KEY_ID_LABEL, "sha256")[:4]
    bound = struct.pack(">Q", 7) + b"session" + struct.pack(">Q", 3) + b"key"
    signed = b"\x01" + key_id + bound + b"serialized"
    tag = hmac.digest(hmac.digest(secret, MAC_LABEL, "sha256"), signed, "sha256")
    assert b"\x01" + key_id + tag + b"serialized" == blob
