"""The value codec of :class:`~dash_database.DashDatabase`: serialize, check the size, seal;
open (verify) and deserialize.

A mixin of the database class: its methods use the serializer, sealer and limit the database
holds, and the rest of the core calls them on the database.
"""

from __future__ import annotations

from typing import IO, Any, Callable

from ._sealing import Sealer
from .exceptions import (
    DeserializationError,
    InvalidArgumentError,
    SerializationError,
    ValueTooLargeError,
)
from .serializers import CompressedSerializer, Serializer, resolve_serializer

__all__ = ["Codec", "serializer_for"]


def serializer_for(serializer: str | Serializer, compression: str | None) -> Serializer:
    """Return the serializer that ``DashDatabase(serializer=..., compression=...)`` names.

    Raises:
        InvalidArgumentError: an unknown serializer or compression.
    """
    chosen = resolve_serializer(serializer)
    if compression is not None:
        if not isinstance(compression, str):
            raise InvalidArgumentError(
                f"compression must be 'zlib', 'zstd', 'lz4' or None, got {compression!r}."
            )
        chosen = CompressedSerializer(chosen, codec=compression)
    return chosen


class Codec:
    """Turn values into sealed bytes for one (session, key) and back."""

    _serializer: Serializer
    _dump: Callable[[Any, IO[bytes]], None] | None
    _load_view: Callable[[bytes | memoryview], Any] | None
    _sealer: Sealer
    max_value_bytes: int | None

    def _dumps(self, key: str, value: Any) -> bytes:
        """Return ``value`` serialized (not yet sealed), within ``max_value_bytes``."""
        try:
            data = self._serializer.dumps(value)
        except Exception as exc:
            raise self._unserializable(key, value, exc) from exc
        if not isinstance(data, bytes):
            raise SerializationError(
                f"The serializer {self._serializer!r} returned {type(data).__name__}, not bytes."
            )
        self._check_size(key, len(data))
        return data

    def _seal_value(self, session: str, key: str, value: Any) -> bytes:
        """Return ``value`` serialized, within ``max_value_bytes``, and sealed for
        ``(session, key)``."""
        dump = self._dump
        if dump is None:
            return self._sealer.seal(session, key, self._dumps(key, value))
        # Serialized straight into the sealed value's own buffer: a large value is never
        # held twice (sealing a separate serialized copy would double the peak memory).
        buffer = self._sealer.buffer()
        start = buffer.tell()
        try:
            dump(value, buffer)
        except Exception as exc:
            raise self._unserializable(key, value, exc) from exc
        self._check_size(key, buffer.tell() - start)
        return self._sealer.seal_buffer(session, key, buffer)

    def _unserializable(self, key: str, value: Any, exc: Exception) -> SerializationError:
        return SerializationError(
            f"Cannot store key {key!r}: a value of type {type(value).__name__} cannot be "
            f"serialized by {self._serializer!r} ({exc}). Nothing was written; store "
            "plain data (dicts, lists, DataFrames, ...) instead."
        )

    def _check_size(self, key: str, size: int) -> None:
        if self.max_value_bytes is not None and size > self.max_value_bytes:
            raise ValueTooLargeError(
                f"Cannot store key {key!r}: its value takes {size} bytes serialized, over "
                f"max_value_bytes={self.max_value_bytes}. Nothing was written; store a smaller "
                "value or raise the limit."
            )

    def _loads(self, session: str, key: str, stored: bytes) -> Any:
        # Verified (and decrypted) first: bytes that fail the check are never deserialized.
        data = self._sealer.open_view(session, key, stored)
        load = self._load_view
        try:
            # A serializer that reads a view is given one: a large value is not copied first.
            return load(data) if load is not None else self._serializer.loads(bytes(data))
        except Exception as exc:
            raise DeserializationError(
                f"The stored value of key {key!r} cannot be read by {self._serializer!r} "
                f"({type(exc).__name__}: {exc}). Was it written with another serializer, or "
                "by a version of the app whose classes have since changed? Delete the key or "
                "restore the class."
            ) from exc
