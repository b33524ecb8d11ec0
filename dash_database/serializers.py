"""Serializers turn values into bytes and back.

A serializer is any object with ``dumps(obj) -> bytes`` and ``loads(data) -> obj``
(:class:`Serializer`). Pass one as ``DashDatabase(serializer=...)``, or name a built-in one:
``"pickle"`` (the default: any picklable object) or ``"json"`` (JSON-compatible values only,
readable from other languages). :class:`CompressedSerializer` compresses what another one
produces (``DashDatabase(compression="zlib")`` is a shortcut for it).
"""

from __future__ import annotations

import json
import pickle
import threading
import zlib
from typing import IO, Any, Callable, Protocol, runtime_checkable

from .exceptions import InvalidArgumentError

__all__ = [
    "CODECS",
    "CompressedSerializer",
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "resolve_serializer",
    "stream_functions",
]


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

    def dump(self, obj: Any, file: IO[bytes]) -> None:
        """Write ``obj`` pickled to the binary ``file``; pickle writes large buffers (a
        DataFrame's columns) straight to it instead of building the whole pickle first."""
        pickle.dump(obj, file, protocol=self.protocol)

    def loads(self, data: bytes | memoryview) -> Any:
        """Return the unpickled value (``data`` may be any bytes-like object)."""
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


class _Codec:
    """One compression format: its tag byte in stored values, and how to run it."""

    def __init__(
        self,
        name: str,
        tag: int,
        package: str | None,
        make: Callable[[int | None], tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]],
    ) -> None:
        self.name, self.tag, self.package, self._make = name, tag, package, make

    def functions(
        self, level: int | None
    ) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
        """Return (compress, decompress), importing the codec's package.

        Raises:
            InvalidArgumentError: the package is not installed.
        """
        try:
            return self._make(level)
        except ImportError:
            raise InvalidArgumentError(
                f"Compression {self.name!r} needs the {self.package} package: "
                f"pip install {self.package} (from a clone: pip install "
                f'"./dash_database[{self.name}]"), or use "zlib" (built in).'
            ) from None


def _zlib(level: int | None) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    chosen = 6 if level is None else level
    return (lambda data: zlib.compress(data, chosen)), zlib.decompress


def _zstd(level: int | None) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    import zstandard

    chosen = 3 if level is None else level
    # zstandard's (de)compressor objects must not be used by two threads at once: one each.
    local = threading.local()

    def compress(data: bytes) -> bytes:
        if not hasattr(local, "compressor"):
            local.compressor = zstandard.ZstdCompressor(level=chosen)
        result: bytes = local.compressor.compress(data)
        return result

    def decompress(data: bytes) -> bytes:
        if not hasattr(local, "decompressor"):
            local.decompressor = zstandard.ZstdDecompressor()
        result: bytes = local.decompressor.decompress(data)
        return result

    return compress, decompress


def _lz4(level: int | None) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    import lz4.frame

    chosen = 0 if level is None else level
    return (
        lambda data: lz4.frame.compress(data, compression_level=chosen),
        lz4.frame.decompress,
    )


#: The compression formats, by name. Their tag bytes are part of the stored format.
CODECS: dict[str, _Codec] = {
    codec.name: codec
    for codec in (
        _Codec("zlib", 1, None, _zlib),
        _Codec("zstd", 2, "zstandard", _zstd),
        _Codec("lz4", 3, "lz4", _lz4),
    )
}
_STORED_AS_IS = 0


class CompressedSerializer:
    """Compress what another serializer produces, when it is at least ``min_size`` bytes.

    Every value written through it starts with one byte that says how the rest is stored: as
    the inner serializer wrote it (too small, or compression did not make it smaller), or
    compressed with zlib, zstd or lz4. A value stays readable when the codec, level or
    threshold change later (the codec's package must be installed to read its values), but
    values written with compression must be read with a ``CompressedSerializer``, and values
    written without it cannot be read with one.

    Args:
        inner: the serializer whose output is compressed: ``"pickle"``, ``"json"`` or an
            object with ``dumps``/``loads``.
        codec: ``"zlib"`` (built in), ``"zstd"`` (package ``zstandard``) or ``"lz4"``
            (package ``lz4``).
        min_size: serialized values smaller than this many bytes are stored as they are.
        level: the codec's compression level, or ``None`` for its default (zlib 6, zstd 3,
            lz4 0).

    Raises:
        InvalidArgumentError: an unknown codec, a missing package, or a bad ``min_size``.
    """

    def __init__(
        self,
        inner: str | Serializer = "pickle",
        *,
        codec: str = "zlib",
        min_size: int = 1024,
        level: int | None = None,
    ) -> None:
        if codec not in CODECS:
            raise InvalidArgumentError(
                f"Unknown compression {codec!r}; use one of {', '.join(sorted(CODECS))}."
            )
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
            raise InvalidArgumentError(f"min_size must be an int >= 0, got {min_size!r}.")
        if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
            raise InvalidArgumentError(f"level must be an int or None, got {level!r}.")
        self.inner = resolve_serializer(inner)
        self.codec = codec
        self.min_size = min_size
        self.level = level
        self._prepare()

    def _prepare(self) -> None:
        self._tag = bytes([CODECS[self.codec].tag])
        self._compress = CODECS[self.codec].functions(self.level)[0]
        self._decompressors: dict[int, Callable[[bytes], bytes]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The codec's functions are rebuilt, not pickled (a DashDatabase travels to background
        # callback processes with its serializer).
        return {
            "inner": self.inner,
            "codec": self.codec,
            "min_size": self.min_size,
            "level": self.level,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._prepare()

    def dumps(self, obj: Any) -> bytes:
        """Return ``obj`` serialized by ``inner``, compressed when that makes it smaller."""
        data = self.inner.dumps(obj)
        if len(data) >= self.min_size:
            compressed = self._compress(data)
            if len(compressed) < len(data):
                return self._tag + compressed
        return bytes([_STORED_AS_IS]) + data

    def loads(self, data: bytes) -> Any:
        """Return the value that :meth:`dumps` (with any codec) turned into ``data``."""
        if not data:
            raise ValueError("empty data: not written by a CompressedSerializer")
        tag, body = data[0], data[1:]
        if tag == _STORED_AS_IS:
            return self.inner.loads(body)
        decompress = self._decompressors.get(tag)
        if decompress is None:
            codec = next((c for c in CODECS.values() if c.tag == tag), None)
            if codec is None:
                raise ValueError(
                    f"unknown compression tag {tag}: not written by a CompressedSerializer"
                )
            decompress = self._decompressors[tag] = codec.functions(None)[1]
        return self.inner.loads(decompress(body))

    def __repr__(self) -> str:
        level = "" if self.level is None else f", level={self.level}"
        return (
            f"CompressedSerializer({self.inner!r}, codec={self.codec!r}, "
            f"min_size={self.min_size}{level})"
        )


_BUILT_IN: dict[str, type[PickleSerializer] | type[JsonSerializer]] = {
    "pickle": PickleSerializer,
    "json": JsonSerializer,
}


def stream_functions(
    serializer: Serializer,
) -> tuple[Callable[[Any, IO[bytes]], None] | None, Callable[[bytes | memoryview], Any] | None]:
    """Return how the core can avoid copying large values with ``serializer``: its
    ``dump(obj, file)``, and its ``loads`` when that takes a ``memoryview`` (else ``None``).

    Only the built-in pickle serializer has both, unless a subclass replaced its ``dumps`` or
    ``loads``. The others (JSON, compressed, user-defined) go through ``dumps``/``loads`` with
    ``bytes``: their output is small or compressed, so one more copy of it costs little.
    """
    if not isinstance(serializer, PickleSerializer):
        return None, None
    kind = type(serializer)
    dump = serializer.dump if kind.dumps is PickleSerializer.dumps else None
    return dump, serializer.loads if kind.loads is PickleSerializer.loads else None


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
