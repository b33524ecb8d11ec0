"""Stored values carry a MAC: bytes altered, moved or truncated in the store are refused with
IntegrityError and never deserialized, on every backend (see ``dash_database/_sealing.py``)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from dash_database import DashDatabase, IntegrityError
from dash_database._sealing import FORMAT_ENCRYPTED, FORMAT_MAC, MAC_OVERHEAD


class Planted:
    """A pickle that creates a file when it is deserialized: proof that a read ran it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def stored(db: DashDatabase, session: str, key: str) -> bytes:
    data = db.backend.get(session, key, 0.0)
    assert data is not None
    return data


def plant(db: DashDatabase, session: str, key: str, data: bytes) -> None:
    db.backend.set_many(session, {key: data}, None, 0.0, version=1)


@pytest.fixture
def evil(tmp_path: Path) -> tuple[bytes, Path]:
    path = tmp_path / "pwned"
    return pickle.dumps(Planted(path)), path


def test_values_are_stored_sealed_and_read_back(db: DashDatabase) -> None:
    db.store_user_value("user", "k", {"a": 1})

    blob = stored(db, "user", "k")
    assert FORMAT_MAC == blob[0]
    assert pickle.dumps({"a": 1}, pickle.HIGHEST_PROTOCOL) == blob[MAC_OVERHEAD:]
    assert {"a": 1} == db.get_user_value("user", "k")


def test_a_replaced_payload_is_refused_and_never_deserialized(
    db: DashDatabase, evil: tuple[bytes, Path]
) -> None:
    payload, planted = evil
    db.store_user_value("user", "k", "fine")
    blob = stored(db, "user", "k")
    # The envelope kept (format, key id, tag), the value behind it replaced.
    plant(db, "user", "k", blob[:MAC_OVERHEAD] + payload)

    with pytest.raises(IntegrityError, match="MAC does not match") as raised:
        db.get_user_value("user", "k")
    with pytest.raises(IntegrityError):
        db.session("user")["k"]
    with pytest.raises(IntegrityError):
        db.update_user_value("user", "k", lambda old: old)
    assert not planted.exists()
    assert "'user'" in str(raised.value) and "'k'" in str(raised.value)
    assert blob[:MAC_OVERHEAD] + payload == stored(db, "user", "k")  # left as it was


def test_an_unsealed_pickle_is_refused_and_never_deserialized(
    db: DashDatabase, evil: tuple[bytes, Path]
) -> None:
    payload, planted = evil
    plant(db, "user", "k", payload)

    with pytest.raises(IntegrityError, match="not a sealed value"):
        db.get_user_value("user", "k")
    assert not planted.exists()


def test_one_flipped_byte_anywhere_is_refused(db: DashDatabase) -> None:
    db.store_user_value("user", "k", "x" * 50)
    blob = stored(db, "user", "k")
    for i in (0, 1, 5, MAC_OVERHEAD - 1, MAC_OVERHEAD, len(blob) - 1):
        altered = bytearray(blob)
        altered[i] ^= 0x01
        plant(db, "user", "k", bytes(altered))
        with pytest.raises(IntegrityError):
            db.get_user_value("user", "k")


def test_a_truncated_value_is_refused(db: DashDatabase) -> None:
    db.store_user_value("user", "k", "x" * 50)
    blob = stored(db, "user", "k")
    for length in (0, 1, 4, 5, MAC_OVERHEAD - 1, MAC_OVERHEAD, len(blob) - 1):
        plant(db, "user", "k", blob[:length])
        with pytest.raises(IntegrityError):
            db.get_user_value("user", "k")


def test_a_value_moved_to_another_key_or_session_is_refused(db: DashDatabase) -> None:
    db.store_user_value("alice", "role", "admin")
    db.store_user_value("alice", "name", "Alice")
    db.store_user_value("bob", "role", "user")
    admin = stored(db, "alice", "role")

    plant(db, "alice", "name", admin)
    plant(db, "bob", "role", admin)

    with pytest.raises(IntegrityError):
        db.get_user_value("alice", "name")
    with pytest.raises(IntegrityError):
        db.get_user_value("bob", "role")
    assert "admin" == db.get_user_value("alice", "role")


def test_values_stay_readable_after_rotate_session_and_tampering_stays_refused(
    db: DashDatabase,
) -> None:
    old = db.new_session_id()
    db.session(old).update(a=1, b=[2])
    db.store_user_value(old, "c", 3)
    plant(db, db.session(old).session_id, "c", b"\x01tampered")

    new = db.rotate_session(old)

    assert 1 == db.get_user_value(new, "a")
    assert [2] == db.get_user_value(new, "b")
    assert 12 == db.update_user_value(new, "a", lambda v: v + 11)
    with pytest.raises(IntegrityError):
        db.get_user_value(new, "c")
    assert [] == db.list_stored_user_keys(old)


def test_rotated_keys_read_old_values_and_seal_with_the_newest(make_db: Any) -> None:
    old_key, new_key = "the-old-secret-key-0001", "the-new-secret-key-0002"
    before = make_db(secret_key=old_key)
    before.store_user_value("user", "old", "sealed with the old key")
    after = make_db(secret_key=[new_key, old_key])
    after.store_user_value("user", "new", "sealed with the new key")

    assert "sealed with the old key" == after.get_user_value("user", "old")
    assert "sealed with the new key" == make_db(secret_key=new_key).get_user_value("user", "new")
    with pytest.raises(IntegrityError, match="secret key this app does not have") as raised:
        before.get_user_value("user", "new")
    assert new_key not in str(raised.value) and old_key not in str(raised.value)


def test_encrypted_values_round_trip_and_hide_the_value(make_db: Any) -> None:
    db = make_db(encrypt=True)
    secret = "a recognisable secret text"
    db.store_user_value("user", "k", secret)
    db.session("user").update(m=[secret])
    assert 2 == db.update_user_value("user", "n", lambda v: v + 1, default=1)

    blob = stored(db, "user", "k")
    assert FORMAT_ENCRYPTED == blob[0]
    assert secret.encode() not in blob
    assert secret == db.get_user_value("user", "k")
    assert [secret] == db.get_user_value("user", "m")
    assert 2 == db.get_user_value("user", "n")
    # Either format is read whatever ``encrypt`` says: both are authenticated.
    assert secret == make_db(encrypt=False).get_user_value("user", "k")
    make_db(encrypt=False).store_user_value("user", "plain", 5)
    assert 5 == db.get_user_value("user", "plain")


def test_encrypted_values_altered_moved_or_under_another_key_are_refused(make_db: Any) -> None:
    db = make_db(encrypt=True)
    db.store_user_value("user", "k", "v")
    db.store_user_value("user", "other", "w")
    blob = stored(db, "user", "k")

    for bad in (blob[:-1], blob[:20], blob[:-1] + bytes([blob[-1] ^ 1])):
        plant(db, "user", "k", bad)
        with pytest.raises(IntegrityError):
            db.get_user_value("user", "k")
    plant(db, "user", "other", blob)
    with pytest.raises(IntegrityError):
        db.get_user_value("user", "other")
    plant(db, "user", "k", blob)
    with pytest.raises(IntegrityError):
        make_db(secret_key="another-secret-key-000", encrypt=True).get_user_value("user", "k")
