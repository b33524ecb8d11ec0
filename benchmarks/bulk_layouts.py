"""Bulk loaders that write this project's Redis and PostgreSQL layouts directly.

Used only to build the large stores of the listing workloads (up to 100k sessions x 10 keys)
in seconds instead of minutes. Each loader follows the layout documented at the top of the
backend's module and raises when the backend object does not look as expected; the caller
then checks the result through the public API and falls back to ``Session.update``.
"""

from __future__ import annotations

from typing import Any


def bulk_redis(db: Any, sessions: list[str], keys: list[str], values: list[bytes]) -> str:
    # dash_database/backends/redis.py: one hash per session under backend.key(session), each
    # value in the field b"v:" + key; no "deadline" field for sessions without a ttl.
    backend = db.backend
    client = backend.client
    mapping = {b"v:" + k.encode(): values[i] for i, k in enumerate(keys)}
    for start in range(0, len(sessions), 1000):
        pipe = client.pipeline(transaction=False)
        for s in sessions[start : start + 1000]:
            pipe.hset(backend.key(s), mapping=mapping)
        pipe.execute()
    return "bulk (pipelined HSET in the documented hash layout)"


def bulk_postgres(db: Any, sessions: list[str], keys: list[str], values: list[bytes]) -> str:
    # dash_database/backends/postgres.py: one row per value, (namespace, session_id bytea,
    # key bytea, value bytea, deadline NULL); sessions without a ttl have no session row.
    backend = db.backend
    table = backend.table
    names = [c.name for c in table.columns]
    if names != ["namespace", "session_id", "key", "value", "deadline"]:
        raise RuntimeError(f"unexpected columns {names}")
    raw = backend.engine.raw_connection()
    try:
        conn = raw.driver_connection
        quoted = ".".join(f'"{part}"' for part in table.fullname.split("."))
        with conn.cursor() as cur:
            with cur.copy(f"COPY {quoted} (namespace, session_id, key, value) FROM STDIN") as copy:
                ns = backend.namespace
                encoded = [k.encode() for k in keys]
                for s in sessions:
                    sid = s.encode()
                    for i, k in enumerate(encoded):
                        copy.write_row((ns, sid, k, values[i]))
            cur.execute(f"ANALYZE {quoted}")
        conn.commit()
    finally:
        raw.close()
    return "bulk (COPY into the documented table)"
