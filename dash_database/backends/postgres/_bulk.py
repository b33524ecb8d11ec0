"""The PostgreSQL backend's bulk operations: a page of whole sessions read by one statement,
and a batch of sessions written in one transaction (what export and import use).

READ takes a page of sessions after the cursor, numbers their keys in (session, key) digest
order with a running total of their sizes (``octet_length`` of a stored value reads no value),
and returns the values of the keys before the total reaches the byte bound: one statement, one
snapshot. WRITE locks the batch's existing session rows, drops those it replaces (or that
expired), then inserts the sessions and their values from arrays: a few statements in one
transaction, whatever the number of sessions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...exceptions import BackendError
from .._base import SessionData
from .._errors import bad_cursor
from ._connect import CONFLICTS, Connection, digest

if TYPE_CHECKING:
    from . import PostgresBackend

__all__ = ["read_sessions", "write_sessions"]

_LIVE = "(deadline IS NULL OR deadline > %(now)s)"

READ = f"""
WITH page AS MATERIALIZED (
    SELECT sid_hash, session_id, deadline FROM {{sessions}}
    WHERE namespace = %(ns)s AND sid_hash >= %(first)b AND keys > 0 AND {_LIVE}
    ORDER BY namespace, sid_hash LIMIT %(limit)s
),
keyed AS MATERIALIZED (
    SELECT p.sid_hash, p.session_id, p.deadline, v.key_hash, octet_length(v.value) AS size,
        sum(octet_length(v.value)) OVER w AS running, row_number() OVER w AS n,
        lead(p.sid_hash) OVER w AS next_sid
    FROM page p JOIN {{values}} v ON v.namespace = %(ns)s AND v.sid_hash = p.sid_hash
    WHERE p.sid_hash > %(first)b OR v.key_hash > %(after_key)b
    WINDOW w AS (ORDER BY p.sid_hash, v.key_hash ROWS UNBOUNDED PRECEDING)
)
SELECT k.sid_hash, k.session_id, k.deadline, k.key_hash, v.key, v.value, k.next_sid,
    (SELECT count(*) FROM page), (SELECT sid_hash FROM page ORDER BY sid_hash DESC LIMIT 1)
FROM keyed k
JOIN {{values}} v ON v.namespace = %(ns)s AND v.sid_hash = k.sid_hash AND v.key_hash = k.key_hash
WHERE k.running - k.size < %(max_bytes)s OR k.n = 1
ORDER BY k.sid_hash, k.key_hash
"""

# One primary-key lookup per session of the batch, in the array's (sorted) order, so that two
# imports lock rows in the same order; a plain `sid_hash = ANY(...)` could be planned (as a
# generic plan of the prepared statement) as a walk through the namespace's whole index.
LOCK = f"""
SELECT s.sid_hash, s.keys > 0 AND {_LIVE}
FROM unnest(%(h)b::bytea[]) WITH ORDINALITY AS i (h, n)
CROSS JOIN LATERAL (
    SELECT sid_hash, keys, deadline FROM {{sessions}}
    WHERE namespace = %(ns)s AND sid_hash = i.h FOR UPDATE
) AS s
ORDER BY i.n
"""
DROP_VALUES = "DELETE FROM {values} WHERE namespace = %(ns)s AND sid_hash = ANY(%(h)b::bytea[])"
DROP_SESSIONS = "DELETE FROM {sessions} WHERE namespace = %(ns)s AND sid_hash = ANY(%(h)b::bytea[])"
INSERT_SESSIONS = """
INSERT INTO {sessions} (namespace, sid_hash, session_id, deadline, keys, bytes, written)
SELECT %(ns)s, h, sid, deadline, keys, size, %(now)s
FROM unnest(%(h)b::bytea[], %(sid)b::bytea[], %(deadline)s::float8[], %(keys)s::int8[],
    %(size)s::int8[]) AS i (h, sid, deadline, keys, size)
ON CONFLICT (namespace, sid_hash) DO NOTHING RETURNING sid_hash
"""
INSERT_VALUES = """
INSERT INTO {values} (namespace, sid_hash, key_hash, key, value, version)
SELECT %(ns)s, h, kh, k, v, %(version)s::int8
FROM unnest(%(h)b::bytea[], %(kh)b::bytea[], %(key)b::bytea[], %(value)b::bytea[])
    AS i (h, kh, k, v)
WHERE h = ANY(%(inserted)b::bytea[])
"""


def _sql(backend: PostgresBackend, text: str) -> str:
    return " ".join(text.split()).format(
        sessions=backend.sessions_table, values=backend.values_table
    )


def _execute(conn: Connection, sql: str, params: dict[str, Any]) -> list[Any]:
    with conn.cursor(binary=True) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []


def read_sessions(
    backend: PostgresBackend, now: float, cursor: str | None, limit: int, max_bytes: int
) -> tuple[list[SessionData], str | None]:
    """Return a page of live sessions with their values (see ``Backend.read_sessions``)."""
    first, after_key = b"", b""
    if cursor is not None:
        try:
            sid, _, key = cursor.partition(":")
            first = bytes.fromhex(sid)
            # After a whole session: start after it (its digest followed by a zero byte).
            first, after_key = (first, bytes.fromhex(key)) if key else (first + b"\0", b"")
        except ValueError:
            raise bad_cursor(cursor) from None
    params = {"ns": backend.namespace, "now": now, "first": first, "after_key": after_key}
    params.update(limit=limit, max_bytes=max_bytes)
    sql = _sql(backend, READ)
    rows = backend._run("read sessions from", lambda conn: _execute(conn, sql, params))
    page: list[SessionData] = []
    current = b""
    for sid_hash, session_id, deadline, _, key, value, *_ in rows:
        if sid_hash != current:
            page.append(SessionData(session_id.decode(), deadline, {}))
            current = sid_hash
        page[-1].items[key.decode()] = value
    if not rows:
        return page, None
    sid_hash, *_, key_hash, _, _, next_sid, count, last_sid = rows[-1]
    if next_sid == sid_hash:  # the page ends inside this session
        last = page[-1]
        page[-1] = SessionData(last.session, last.deadline, last.items, complete=False)
        return page, f"{sid_hash.hex()}:{key_hash.hex()}"
    if next_sid is not None:
        return page, sid_hash.hex()
    return page, (last_sid.hex() if count == limit else None)


def write_sessions(
    backend: PostgresBackend,
    batch: Sequence[SessionData],
    now: float,
    version: int,
    replace: bool,
) -> list[bool]:
    """Write whole sessions in one transaction (see ``Backend.write_sessions``)."""
    if not batch:
        return []
    ids = [data.session.encode() for data in batch]
    hashes = [digest(sid) for sid in ids]
    h: list[bytes] = []
    kh: list[bytes] = []
    keys: list[bytes] = []
    values: list[bytes] = []
    sizes: list[int] = []
    for sid_hash, data in zip(hashes, batch):
        size = 0
        for key, value in data.items.items():
            name = key.encode()
            h.append(sid_hash)
            kh.append(digest(name))
            keys.append(name)
            values.append(value)
            size += len(name) + len(value)
        sizes.append(size)
    ns = backend.namespace
    sessions: dict[str, Any] = {"ns": ns, "now": now, "h": hashes, "sid": ids, "size": sizes}
    sessions.update(deadline=[data.deadline for data in batch])
    sessions.update(keys=[len(data.items) for data in batch])
    items = {"ns": ns, "h": h, "kh": kh, "key": keys, "value": values, "version": version}
    statements = {
        name: _sql(backend, text)
        for name, text in (
            ("lock", LOCK),
            ("drop_values", DROP_VALUES),
            ("drop_sessions", DROP_SESSIONS),
            ("insert_sessions", INSERT_SESSIONS),
            ("insert_values", INSERT_VALUES),
        )
    }

    def attempt(conn: Connection) -> set[bytes]:
        with conn.transaction():
            lock = {"ns": ns, "now": now, "h": sorted(hashes)}
            found = _execute(conn, statements["lock"], lock)
            kept = set() if replace else {digest for digest, taken in found if taken}
            dropped = [digest for digest, _ in found if digest not in kept]
            if dropped:
                _execute(conn, statements["drop_values"], {"ns": ns, "h": dropped})
                _execute(conn, statements["drop_sessions"], {"ns": ns, "h": dropped})
            chosen = [i for i, digest in enumerate(hashes) if digest not in kept]
            params = {name: [sessions[name][i] for i in chosen] for name in _ARRAYS}
            rows = _execute(conn, statements["insert_sessions"], {**sessions, **params})
            inserted = [row[0] for row in rows]
            if inserted:
                _execute(conn, statements["insert_values"], {**items, "inserted": inserted})
            return set(inserted)

    def work(conn: Connection) -> set[bytes]:
        give_up = time.monotonic() + backend.statement_timeout
        while True:
            try:
                return attempt(conn)
            except CONFLICTS:
                if time.monotonic() > give_up:
                    raise BackendError(
                        f"Could not write to {backend._store}: other writers kept changing "
                        f"these sessions for {backend.statement_timeout:g} s. Try again."
                    ) from None

    written = backend._run("write to", work)
    return [digest in written for digest in hashes]


_ARRAYS = ("h", "sid", "size", "deadline", "keys")
