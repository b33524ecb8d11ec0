"""The one encoding of a (session, key) pair into a single string column.

A store with only one key column (sqlitedict's ``key TEXT PRIMARY KEY``) gets keys of the form
``<hex length of session>:<session>:<key>``. The length prefix makes the encoding prefix-free:
no session's prefix is a prefix of another session's, whatever characters the ids contain.
Every key of one session lies in the half-open range returned by :func:`session_range`, so a
listing or a delete-all is one index range scan, never a scan of the whole table.
"""

from __future__ import annotations

__all__ = ["decode", "encode", "session_prefix", "session_range"]


def session_prefix(session: str) -> str:
    """Return the prefix shared by every encoded key of ``session`` and by no other key."""
    return f"{len(session):x}:{session}:"


def encode(session: str, key: str) -> str:
    """Return the encoded form of ``(session, key)``."""
    return session_prefix(session) + key


def decode(encoded: str) -> tuple[str, str]:
    """Return the ``(session, key)`` pair that :func:`encode` turned into ``encoded``."""
    length_hex, _, rest = encoded.partition(":")
    length = int(length_hex, 16)
    return rest[:length], rest[length + 1 :]


def session_range(session: str) -> tuple[str, str]:
    """Return ``(low, high)`` such that ``low <= k < high`` holds exactly for the keys of
    ``session``.

    ``high`` replaces the final ``:`` of the prefix by ``;`` (the next code point), so the
    bound holds under code point order, which is also UTF-8 byte order (SQLite's BINARY).
    """
    low = session_prefix(session)
    return low, low[:-1] + ";"
