"""The bulk path: a write's items streamed into a temporary table with binary ``COPY``.

A bound parameter is copied whole on its way to the server (by psycopg, then into libpq's
buffer): a 100 MB value would need three times its size. ``COPY`` sends each value from its
own buffer in small pieces. Rows follow PostgreSQL's binary ``COPY`` format: a header; per row
the field count, then each field's length and bytes; then -1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import psycopg

from ._sql import COPY_ITEMS, STAGE_ITEMS

__all__ = ["stage"]

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_ROW = struct.Struct("!hi")
_LENGTH = struct.Struct("!i")
_TRAILER = struct.pack("!h", -1)


def stage(conn: psycopg.Connection[Any], items: Iterable[tuple[bytes, bytes, bytes]]) -> None:
    """Copy ``items`` (key digest, key, value) into the temporary table ``dash_database_items``,
    which empties itself when the transaction ends."""
    with conn.cursor() as cursor:
        cursor.execute(STAGE_ITEMS)
        with cursor.copy(COPY_ITEMS) as copy:
            copy.write(_SIGNATURE)
            for key_hash, key, value in items:
                head = _ROW.pack(3, len(key_hash)) + key_hash + _LENGTH.pack(len(key)) + key
                copy.write(head + _LENGTH.pack(len(value)))
                # A memoryview: psycopg sends it in pieces without copying it whole.
                copy.write(memoryview(value))
            copy.write(_TRAILER)
