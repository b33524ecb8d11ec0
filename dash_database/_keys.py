"""Ids and key names: what the library accepts as one, and the text the store keeps.

A user id or key name is a ``str`` of valid Unicode text or an ``int`` (which names the same
entry as its decimal string). Everything else is refused here, before any store is touched.
"""

from __future__ import annotations

from typing import Union

from .exceptions import InvalidIdError, InvalidIdTypeError

__all__ = ["Id", "check_id"]

Id = Union[str, int]


def check_id(value: object, name: str) -> str:
    """Return ``value`` as the text the store keeps, or raise naming ``name``.

    Raises:
        InvalidIdTypeError: ``value`` is neither ``str`` nor ``int`` (``bool`` included).
        InvalidIdError: a ``str`` with a lone surrogate, or an ``int`` too long for text.
    """
    if isinstance(value, str):
        if value.isascii():  # O(1) in CPython; only non-ASCII text can hold a lone surrogate
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidIdError(
                f"{name} {value!r} is not valid Unicode text (it contains a lone surrogate); "
                "use a str that encodes to UTF-8."
            ) from None
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # over sys.get_int_max_str_digits() digits
            raise InvalidIdError(
                f"{name} is an int of about {value.bit_length() * 30103 // 100000:,} digits, "
                "too long to convert to text; use a str id instead."
            ) from None
    raise InvalidIdTypeError(
        f"{name} must be a str or an int, got {type(value).__name__} {value!r}."
    )
