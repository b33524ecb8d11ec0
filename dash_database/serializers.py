"""Serializers turn values into bytes and back.

A serializer is any object with ``dumps(obj) -> bytes`` and ``loads(data) -> obj``
(:class:`Serializer`). Pass one as ``DashDatabase(serializer=...)``, or name a built-in one:
``"pickle"`` (the default: any picklable object) or ``"json"`` (JSON-compatible values only,
readable from other languages).
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol, runtime_checkable

from .exceptions import InvalidArgumentError

__all__ = ["JsonSerializer", "PickleSerializer", "Serializer", "resolve_serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Turns a value into bytes and back.

    ``loads(dumps(value))`` must equal ``value`` for every value the serializer accepts.
    ``dumps`` raises (any exception) for a value it cannot represent.
    """

    def dumps(self, obj: Any) -> bytes:
        """Return ``obj`` as bytes."""
        ...

    def loads(self, data: bytes) -> Any:
        """Return the value that ``dumps`` turned into ``data``."""
        ...


class PickleSerializer:
    """Serialize with :mod:`pickle` at the highest protocol (the default).

    Only read pickles that this application wrote: unpickling data from an untrusted writer
    can run arbitrary code.
    """

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, obj: Any) -> bytes:
        """Return ``obj`` pickled."""
        return pickle.dumps(obj, protocol=self.protocol)

    def loads(self, data: bytes) -> Any:
        """Return the unpickled value."""
        return pickle.loads(data)

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"


class JsonSerializer:
    """Serialize as UTF-8 JSON. Tuples come back as lists; non-string dict keys are refused."""

    def dumps(self, obj: Any) -> bytes:
        """Return ``obj`` as UTF-8 JSON."""
        _reject_non_string_keys(obj)
        return json.dumps(obj, ensure_ascii=False, allow_nan=True).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        """Return the decoded JSON value."""
        return json.loads(data)

    def __repr__(self) -> str:
        return "JsonSerializer()"


def _reject_non_string_keys(obj: Any) -> None:
    # json.dumps silently turns {1: "a"} into {"1": "a"}; a value that would not round-trip
    # equal is an error, not a surprise on the next read.
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON objects only have string keys, got {type(key).__name__}")
            _reject_non_string_keys(value)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _reject_non_string_keys(item)


_BUILT_IN: dict[str, type[PickleSerializer] | type[JsonSerializer]] = {
    "pickle": PickleSerializer,
    "json": JsonSerializer,
}


def resolve_serializer(serializer: str | Serializer) -> Serializer:
    """Return the serializer named by ``serializer``, or ``serializer`` itself.

    Raises:
        InvalidArgumentError: an unknown name, or an object without ``dumps``/``loads``.
    """
    if isinstance(serializer, str):
        try:
            factory = _BUILT_IN[serializer]
        except KeyError:
            raise InvalidArgumentError(
                f"Unknown serializer {serializer!r}; use 'pickle', 'json', or an object with "
                "dumps(obj) -> bytes and loads(bytes) -> obj."
            ) from None
        return factory()
    if not isinstance(serializer, Serializer):
        raise InvalidArgumentError(
            f"serializer must be 'pickle', 'json', or an object with dumps() and loads(), "
            f"got {type(serializer).__name__}."
        )
    return serializer
