"""The checks of :class:`~dash_database.DashDatabase`'s options: its expiry and limits."""

from __future__ import annotations

from typing import Any

from .exceptions import InvalidArgumentError

__all__ = ["check_options"]


def check_options(ttl: Any, clock: Any, **limits: Any) -> None:
    """Check ``ttl`` (positive seconds or ``None``), ``clock`` (callable) and ``limits``
    (each a positive int or ``None``).

    Raises:
        InvalidArgumentError: the first option with a value the library does not accept.
    """
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0
    ):
        raise InvalidArgumentError(
            f"ttl must be a positive number of seconds or None, got {ttl!r}."
        )
    for name, limit in limits.items():
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidArgumentError(f"{name} must be a positive int, got {limit!r}.")
    if not callable(clock):
        raise InvalidArgumentError(f"clock must be callable, got {clock!r}.")
