"""Filling a store with many sessions quickly, for the scale run (``scale.py``).

Writing a million sessions one ``set_many`` at a time costs a transaction (SQLite, PostgreSQL)
or a script (Redis) each: longer than everything the scale run measures. So the small
sessions are written in bulk, straight into each store's layout, the way its backend lays
them out (one SQLite transaction of ``executemany`` per chunk, one Redis pipeline per chunk,
PostgreSQL ``COPY``); the few sessions holding a large value go through the backend's own
``set_many``. ``fill`` then checks, through the backend, that the store holds as many sessions
as it wrote and that one of them reads back, so a layout that changed under this module fails
loudly rather than measuring a store the backend cannot read.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
import time
from typing import Any

from dash_database import DashDatabase
from dash_database.backends import Backend

KEYS = 5
SMALL = b"0123456789abcdef"  # a small value: 16 bytes
MB = 1024 * 1024
#: Sessions per transaction, pipeline or COPY.
CHUNK = 10_000
NAMES = [f"k{j}" for j in range(KEYS)]
#: The size of a small session: the UTF-8 length of each key plus the length of its value.
SMALL_BYTES = sum(len(name.encode()) + len(SMALL) for name in NAMES)


def _small(first: int, last: int, big_every: int) -> list[int]:
    return [i for i in range(first, last) if not (big_every and i % big_every == 0)]


def _fill_sqlite(
    backend: Any, numbers: list[int], prefix: str, deadline: float, now: float
) -> None:
    backend.stats(now)  # creates the tables
    con = sqlite3.connect(backend.path, timeout=60)
    try:
        for start in range(0, len(numbers), CHUNK):
            part = numbers[start : start + CHUNK]
            with con:
                # Ids past the largest in use, so the big sessions written meanwhile keep theirs.
                [(top,)] = con.execute("SELECT coalesce(max(id), 0) FROM dash_database_sessions")
                con.executemany(
                    "INSERT INTO dash_database_sessions (id, name, deadline, keys, bytes, written)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        (top + 1 + j, f"{prefix}{i:08d}", deadline, KEYS, SMALL_BYTES, now)
                        for j, i in enumerate(part)
                    ),
                )
                con.executemany(
                    "INSERT INTO dash_database_values (session, key, value, version, length)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        (top + 1 + j, name, SMALL, i + 1, len(SMALL))
                        for j, i in enumerate(part)
                        for name in NAMES
                    ),
                )
    finally:
        con.close()


def _fill_redis(backend: Any, numbers: list[int], prefix: str, deadline: float, now: float) -> None:
    client = backend.client
    base = backend.key("any")[:-34]  # <prefix>:{<prefix>}: ; a session's hash adds s:<digest>
    when, at = repr(deadline).encode(), repr(now).encode()
    for start in range(0, len(numbers), CHUNK):
        pipe = client.pipeline(transaction=False)
        digests = []
        for i in numbers[start : start + CHUNK]:
            name = f"{prefix}{i:08d}"
            key = backend.key(name)
            digests.append(key[-32:])
            fields: dict[bytes, Any] = {
                b"id": name.encode(),
                b"deadline": when,
                b"keys": KEYS,
                b"bytes": SMALL_BYTES,
                b"written": at,
            }
            for field in NAMES:
                fields[b"v:" + field.encode()] = SMALL
                fields[b"n:" + field.encode()] = b"%d:%d" % (len(SMALL), i + 1)
            pipe.hset(key, mapping=fields)
        pipe.zadd(base + b"index", dict.fromkeys(digests, 0))
        pipe.zadd(base + b"expiry", dict.fromkeys(digests, deadline))
        # The store's running totals, which the backend's scripts keep (stats reads them).
        pipe.hincrby(base + b"totals", "keys", KEYS * len(digests))
        pipe.hincrby(base + b"totals", "bytes", SMALL_BYTES * len(digests))
        pipe.execute()


def _fill_postgres(
    backend: Any, numbers: list[int], prefix: str, deadline: float, now: float
) -> None:
    backend.stats(now)  # creates the tables

    def digest(data: bytes) -> bytes:  # as the backend names sessions and keys
        return hashlib.sha256(data).digest()

    key_rows = [(name.encode(), digest(name.encode())) for name in NAMES]
    ns = backend.namespace
    with backend.engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        for start in range(0, len(numbers), CHUNK):
            part = numbers[start : start + CHUNK]
            sessions = f"COPY {backend.sessions_table} (namespace, sid_hash, session_id, "
            with cursor.copy(sessions + "deadline, keys, bytes, written) FROM STDIN") as copy:
                for i in part:
                    sid = f"{prefix}{i:08d}".encode()
                    copy.write_row((ns, digest(sid), sid, deadline, KEYS, SMALL_BYTES, now))
            values = f"COPY {backend.values_table} (namespace, sid_hash, key_hash, key, value, "
            with cursor.copy(values + "version) FROM STDIN") as copy:
                for i in part:
                    h = digest(f"{prefix}{i:08d}".encode())
                    for name, key_hash in key_rows:
                        copy.write_row((ns, h, key_hash, name, SMALL, i + 1))
            conn.commit()
        # A store that grew through the app has statistics (autovacuum gathers them); a COPY
        # leaves none until autovacuum's next round, and the planner then reads every session
        # to sort them where a page in index order would do.
        cursor.execute(f"ANALYZE {backend.sessions_table}, {backend.values_table}")
        conn.commit()


_BULK = {"SqliteBackend": _fill_sqlite, "RedisBackend": _fill_redis}
_BULK["PostgresBackend"] = _fill_postgres


def _fill(location: str, first: int, last: int, prefix: str, big_every: int, ttl: float) -> None:
    now = time.time()
    db = DashDatabase(location)
    backend = db.backend
    if big_every:
        frame = bytes(range(256)) * (MB // 256)
        for i in range(first - first % big_every, last, big_every):
            if i >= first:
                backend.set_many(f"{prefix}{i:08d}", {"frame": frame}, now + ttl, now, version=i)
    _BULK[type(backend).__name__](backend, _small(first, last, big_every), prefix, now + ttl, now)
    db.close()


def fill(
    location: str, count: int, prefix: str, processes: int, ttl: float, big_every: int = 0
) -> float:
    """Write ``count`` sessions (5 small keys each; with ``big_every``, every that many-th
    session holds one 1 MB value instead) due to expire in ``ttl`` seconds, in ``processes``
    processes; return the seconds it took."""
    start = time.perf_counter()
    if location.endswith(".sqlite"):
        processes = 1  # one writer at a time: more processes would only wait for the lock
    step = -(-count // processes)
    context = multiprocessing.get_context("spawn")
    jobs = [
        context.Process(
            target=_fill, args=(location, i, min(i + step, count), prefix, big_every, ttl)
        )
        for i in range(0, count, step)
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
        if job.exitcode != 0:
            raise RuntimeError(f"a filling process exited with status {job.exitcode}")
    seconds = time.perf_counter() - start
    db = DashDatabase(location)
    backend: Backend = db.backend
    now = time.time()
    held = backend.stats(now).sessions
    last = _small(max(0, count - big_every - 1), count, big_every)[-1:]
    read = [backend.get_many(f"{prefix}{i:08d}", NAMES, now) for i in last]
    db.close()
    if held != count:
        raise RuntimeError(f"the store holds {held:,} sessions after writing {count:,}")
    if read != [[SMALL] * KEYS] * len(last):
        raise RuntimeError(f"a session written in bulk reads back as {read!r}")
    return seconds
