"""The digest of a memoized call's arguments: the same in every process and on every host.

Not ``hash()``, which is salted per process, and not ``pickle``, whose bytes for a set follow
that salt: a canonical encoding of the values and their types, hashed with BLAKE2s (256 bits;
cheaper to start than OpenSSL's SHA-256).
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import inspect
import struct
import uuid
from collections.abc import Callable
from typing import Any

from .exceptions import MemoizeArgumentError

__all__ = ["SCALARS", "Binder", "binder", "digest_arguments"]


class _Unsupported(Exception):
    def __init__(self, kind: type) -> None:
        self.kind = kind


def _encode(value: Any, out: list[bytes]) -> None:
    kind = type(value)
    if kind is str:
        data = value.encode("utf-8", "surrogatepass")
    elif kind is int or kind is bool:
        data = str(int(value)).encode("ascii")
    elif kind is bytes:
        data = value
    elif value is None:
        data = b""
    elif kind is float:
        out.append(b"F" + _pack(value))
        return
    elif kind is tuple or kind is list:
        out.append((b"T" if kind is tuple else b"L") + _length(len(value)))
        for item in value:
            _encode(item, out)
        return
    elif kind is dict or kind is set or kind is frozenset:
        # Sorted by their encodings: the order of a set (or of a dict's insertion) does not
        # change the digest.
        encoded = []
        for item in value:
            part: list[bytes] = []
            _encode(item, part)
            if kind is dict:
                _encode(value[item], part)
            encoded.append(b"".join(part))
        out.append((b"D" if kind is dict else b"E") + _length(len(encoded)))
        out.extend(sorted(encoded))
        return
    elif kind in _TEXT_TYPES:
        data = _TEXT_TYPES[kind](value).encode("utf-8")
    else:
        raise _Unsupported(kind)
    out.append(_TAGS.get(kind) or b"X" + kind.__name__.encode("ascii") + b":")
    out.append(_length(len(data)))
    out.append(data)


_TAGS: dict[type, bytes] = {type(None): b"N", bool: b"B", int: b"I", str: b"S", bytes: b"Y"}
_pack = struct.Struct(">d").pack
_length = struct.Struct(">Q").pack
_TEXT_TYPES: dict[type, Callable[[Any], str]] = {
    datetime.datetime: datetime.datetime.isoformat,
    datetime.date: datetime.date.isoformat,
    datetime.time: datetime.time.isoformat,
    datetime.timedelta: lambda value: repr(value.total_seconds()),
    decimal.Decimal: str,
    uuid.UUID: str,
}


SCALARS = frozenset((str, int, float, bool, type(None)))


def digest_arguments(arguments: tuple[Any, ...]) -> str:
    """Return a digest of a call's ``arguments`` that is the same in every process and host.

    Memoize passes the arguments in the order of the function's parameters, defaults applied
    (``*args`` as a tuple, ``**kwargs`` as a dict). Accepted values: ``None``, ``bool``,
    ``int``, ``float``, ``str``, ``bytes``, ``tuple``, ``list``, ``dict``, ``set`` and
    ``frozenset`` of them, ``datetime`` (date, time, datetime, timedelta), ``Decimal`` and
    ``UUID``; types are part of the digest (``1``, ``1.0`` and ``True`` are three entries; so
    are a tuple and a list); the order of a dict or set is not.

    Raises:
        MemoizeArgumentError: a value of another type (a ``TypeError``).
    """
    if SCALARS.issuperset(map(type, arguments)):
        # The repr of these types is exact and the same everywhere; a cheap common case.
        data = b"R" + repr(arguments).encode("utf-8", "surrogatepass")
    else:
        out: list[bytes] = [b"C"]
        for position, value in enumerate(arguments):
            try:
                _encode(value, out)
            except _Unsupported as exc:
                kind = exc.kind
                raise MemoizeArgumentError(
                    f"memoize cannot key its cache by argument {position + 1}, which is or "
                    f"holds a {kind.__module__}.{kind.__qualname__}: it accepts None, bool, "
                    "int, float, str, bytes, tuples, lists, dicts and sets of them, dates, "
                    "times, Decimal and UUID. Pass plain values (an id or a file name instead "
                    "of a DataFrame or a connection), or do not memoize this function."
                ) from None
        data = b"".join(out)
    return hashlib.blake2s(data).hexdigest()


Binder = Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]


def binder(func: Callable[..., Any]) -> Binder:
    """Return ``bind(args, kwargs)``: the values of the parameters in their order, defaults
    applied, as ``inspect.Signature.bind`` finds them (faster for plain parameters)."""
    signature = inspect.signature(func)

    def bind_any(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        bound = signature.bind(*args, **kwargs)  # a TypeError names a wrong call
        bound.apply_defaults()
        return tuple(bound.arguments.values())

    params = list(signature.parameters.values())
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params):
        return bind_any
    names = [p.name for p in params]
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    count = len(names)
    rests = [(names[i:], frozenset(names[i:])) for i in range(count + 1)]

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        given = len(args)
        if given == count and not kwargs:
            return args
        if given > count:
            return bind_any(args, kwargs)
        rest, allowed = rests[given]
        if not kwargs.keys() <= allowed:
            return bind_any(args, kwargs)
        try:
            return args + tuple([kwargs[n] if n in kwargs else defaults[n] for n in rest])
        except KeyError:  # a parameter without a value: let Signature.bind say which
            return bind_any(args, kwargs)

    return bind
