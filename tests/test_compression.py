"""CompressedSerializer and DashDatabase(compression=...): what is stored, and clear errors."""

from __future__ import annotations

import os
import pickle
import sys
import zlib
from typing import Any

import pytest

from dash_database import (
    CompressedSerializer,
    DashDatabase,
    DeserializationError,
    InvalidArgumentError,
    JsonSerializer,
)
from dash_database._sealing import MAC_OVERHEAD

COMPRESSIBLE = {"rows": [{"id": i, "label": "the same words again"} for i in range(2_000)]}
CODECS = ["zlib", "zstd", "lz4"]


def stored(db: DashDatabase, key: str) -> bytes:
    """Return the serialized value stored under ``key``, without its MAC envelope."""
    data = db.backend.get("user", key, 0.0)
    assert data is not None
    return data[MAC_OVERHEAD:]


@pytest.mark.parametrize("codec", CODECS)
def test_large_compressible_values_are_stored_compressed(codec: str) -> None:
    with DashDatabase(":memory:", compression=codec) as db:
        db.store_user_value("user", "big", COMPRESSIBLE)

        plain = pickle.dumps(COMPRESSIBLE, pickle.HIGHEST_PROTOCOL)
        assert len(stored(db, "big")) < len(plain) / 2
        assert COMPRESSIBLE == db.get_user_value("user", "big")


@pytest.mark.parametrize("codec", CODECS)
def test_small_and_incompressible_values_are_stored_as_they_are(codec: str) -> None:
    noise = os.urandom(100_000)
    with DashDatabase(":memory:", compression=codec) as db:
        db.store_user_value("user", "small", 7)
        db.store_user_value("user", "noise", noise)

        assert b"\x00" + pickle.dumps(7, pickle.HIGHEST_PROTOCOL) == stored(db, "small")
        assert b"\x00" + pickle.dumps(noise, pickle.HIGHEST_PROTOCOL) == stored(db, "noise")
        assert noise == db.get_user_value("user", "noise")


def test_min_size_and_level_are_applied() -> None:
    text = "abc" * 1_000
    serializer = CompressedSerializer("json", codec="zlib", min_size=10_000, level=9)
    assert b"\x00" + JsonSerializer().dumps(text) == serializer.dumps(text)

    serializer = CompressedSerializer("json", codec="zlib", min_size=100, level=9)
    assert b"\x01" + zlib.compress(JsonSerializer().dumps(text), 9) == serializer.dumps(text)
    assert text == serializer.loads(serializer.dumps(text))


def test_values_stay_readable_after_a_change_of_codec() -> None:
    written = {codec: CompressedSerializer(codec=codec).dumps(COMPRESSIBLE) for codec in CODECS}
    for reader in CODECS:
        for data in written.values():
            assert COMPRESSIBLE == CompressedSerializer(codec=reader).loads(data)


def test_reading_compressed_values_without_compression_raises_a_clear_error() -> None:
    backend = DashDatabase(":memory:").backend
    DashDatabase(backend, compression="zlib").store_user_value("user", "big", COMPRESSIBLE)

    with pytest.raises(DeserializationError, match="another serializer"):
        DashDatabase(backend).get_user_value("user", "big")


def test_a_database_with_compression_pickles_with_it() -> None:
    with DashDatabase(None, compression="zstd") as db:
        db.store_user_value("user", "big", COMPRESSIBLE)
        copy = pickle.loads(pickle.dumps(db))

        assert COMPRESSIBLE == copy.get_user_value("user", "big")
        assert "zstd" in repr(copy._serializer)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"compression": "brotli"}, "Unknown compression 'brotli'"),
        ({"compression": True}, "compression must be"),
        ({"serializer": "yaml", "compression": "zlib"}, "Unknown serializer"),
    ],
)
def test_bad_compression_options_raise_invalid_argument(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        DashDatabase(":memory:", **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"min_size": -1}, "min_size"), ({"min_size": 1.5}, "min_size"), ({"level": "9"}, "level")],
)
def test_bad_serializer_options_raise_invalid_argument(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        CompressedSerializer(**options)


def test_a_missing_codec_package_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "lz4", None)  # import lz4 now raises ImportError

    with pytest.raises(InvalidArgumentError, match=r"\./dash_database\[lz4\]"):
        DashDatabase(":memory:", compression="lz4")


def test_data_not_written_by_a_compressed_serializer_is_refused() -> None:
    serializer = CompressedSerializer()
    for data in (b"", b"\x09rest"):
        with pytest.raises(ValueError, match="CompressedSerializer"):
            serializer.loads(data)
