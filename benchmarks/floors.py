"""The least the unmet targets' operations can cost, next to what the peers pay, in one process.

    benchmarks/.venv/bin/python benchmarks/floors.py [--calls 2000]

``run.py`` says which targets fail; this says how far each is from possible. Every row is a
median over ``--calls`` calls, taken twice: with the rows of one table interleaved call by
call (as calls come in a server doing other work; a change in the machine's load falls on all
rows alike), and each row's calls in a row (as ``run.py`` times them: warm caches, a thread
just woken). It starts its own redis-server (the tests' launcher) and prints Markdown:

1. SQLite, a small store: sqlitedict's writer thread answering ``SELECT 1`` (the hand-off every
   write pays, as the design keeps writes on that thread) and the same statement run directly;
   the backend's write statement run directly, and the least any write that keeps a session's
   figures can do (two plain upserts in one transaction); diskcache's ``set`` and ``get``; our
   whole ``store_user_value`` and ``get_user_value``.
2. A 1 MB DataFrame: stored and read back through the in-process memory store (serializing and
   sealing only, no storage at all), and the ``fdatasync`` of a new 1 MB file on this disk.
3. Redis, small values: one raw ``HSET`` and ``HGET`` (what the benchmark's redis-py does), the
   bare call of a script that does nothing, with the 16 arguments of our write, and our whole
   store and get; with the client on redis-server's CPU, then on another.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from workloads import SMALL_ITEMS, frame  # noqa: E402

from dash_database import DashDatabase  # noqa: E402
from dash_database.backends.sqlite import _sql  # noqa: E402
from dash_database.backends.sqlite._connect import create  # noqa: E402
from dash_database.backends.sqlite._writer import Writer  # noqa: E402
from tests.launcher import RedisServer  # noqa: E402

SECRET = "floors-secret-" + "x" * 40
UPSERT_SESSION = """INSERT INTO dash_database_sessions (name, deadline, keys, bytes, written)
    VALUES (?, NULL, 5, 100, ?) ON CONFLICT (name) DO UPDATE SET keys = excluded.keys,
    bytes = excluded.bytes, written = excluded.written"""
UPSERT_VALUE = """INSERT INTO dash_database_values (session, key, value, version, length)
    VALUES ((SELECT id FROM dash_database_sessions WHERE name = ?), ?, ?, ?, ?)
    ON CONFLICT (session, key) DO UPDATE SET value = excluded.value,
    version = excluded.version, length = excluded.length"""


Medians = dict[str, tuple[float, float]]


def measure(calls: int, rows: dict[str, Callable[[int], Any]]) -> Medians:
    """Return each row's median time per call in µs: interleaved, then in a row."""
    mixed: dict[str, list[int]] = {name: [] for name in rows}
    for i in range(calls):
        for name, fn in rows.items():
            t0 = time.perf_counter_ns()
            fn(i)
            mixed[name].append(time.perf_counter_ns() - t0)
    medians: Medians = {}
    for name, fn in rows.items():
        alone = []
        for i in range(calls):
            t0 = time.perf_counter_ns()
            fn(i)
            alone.append(time.perf_counter_ns() - t0)
        medians[name] = (statistics.median(mixed[name]) / 1000, statistics.median(alone) / 1000)
    return medians


def table(title: str, medians: Medians, unit: str = "µs") -> None:
    print(f"\n### {title}\n\n| call | interleaved | in a row |\n|---|---|---|")
    for name, pair in medians.items():
        cells = [f"{us / 1000:.2f} ms" if unit == "ms" else f"{us:.1f} µs" for us in pair]
        print(f"| {name} | {' | '.join(cells)} |")


def sqlite_small(folder: str, calls: int) -> None:
    import diskcache

    path = os.path.join(folder, "floors.sqlite")
    create(path, 5.0)
    writer = Writer(path, 5.0, _sql.WRITER_SETUP)
    direct = sqlite3.connect(path, isolation_level=None)
    direct.execute("PRAGMA synchronous = NORMAL")
    for sql in _sql.WRITER_SETUP:
        direct.execute(sql)
    cache = diskcache.Cache(os.path.join(folder, "diskcache"), tag_index=True)
    db = DashDatabase(os.path.join(folder, "ours.sqlite"), secret_key=SECRET)
    value = pickle.dumps("Ada", protocol=pickle.HIGHEST_PROTOCOL)

    def statement(i: int) -> None:
        rows = [(f"k{i % 5}", value, len(value))]
        write = (f"s{i % 20}", 1, None, time.time(), i + 1, None, None, False, None)
        for sql, args in _sql.put(rows, write):
            direct.execute(sql, args).fetchall()

    def upserts(i: int) -> None:
        direct.execute("BEGIN IMMEDIATE")
        direct.execute(UPSERT_SESSION, (f"p{i % 20}", time.time()))
        direct.execute(UPSERT_VALUE, (f"p{i % 20}", f"k{i % 5}", value, i + 1, len(value)))
        direct.execute("COMMIT")

    key, item = SMALL_ITEMS[3]
    medians = measure(
        calls,
        {
            "`SELECT 1` through sqlitedict's writer thread": lambda i: writer.run(
                ("SELECT 1", None)
            ),
            "`SELECT 1` run directly": lambda i: direct.execute("SELECT 1").fetchall(),
            "the backend's write statement, run directly": statement,
            "two plain upserts in one transaction, run directly": upserts,
            "diskcache `set`": lambda i: cache.set((f"s{i % 20}", key), item, tag=f"s{i % 20}"),
            "diskcache `get`": lambda i: cache.get((f"s{i % 20}", key)),
            "ours, `store_user_value`": lambda i: db.store_user_value(f"s{i % 20}", key, item),
            "ours, `get_user_value`": lambda i: db.get_user_value(f"s{i % 20}", key),
        },
    )
    table("1. SQLite, a small value", medians)
    for way in (0, 1):
        floor = medians["`SELECT 1` through sqlitedict's writer thread"][way] + min(
            medians["the backend's write statement, run directly"][way],
            medians["two plain upserts in one transaction, run directly"][way],
        )
        print(
            f"\n{('Interleaved', 'In a row')[way]}: a store through the writer thread costs at "
            f"least {floor:.1f} µs (the hand-off and the least statement) before any Python of "
            f"the library; diskcache's whole `set` {medians['diskcache `set`'][way]:.1f} µs."
        )
    writer.close()
    direct.close()
    cache.close()
    db.close()


def large(folder: str, calls: int) -> None:
    df = frame(1)
    db = DashDatabase(":memory:", secret_key=SECRET)
    data = os.urandom(1 << 20)

    def synced(i: int) -> None:
        name = os.path.join(folder, f"synced-{i}")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fdatasync(fd)
        finally:
            os.close(fd)
            os.remove(name)

    medians = measure(
        calls,
        {
            "memory store: `store_user_value` + `get_user_value`": lambda i: (
                db.store_user_value("s", "df", df),
                db.get_user_value("s", "df"),
            ),
            "a new 1 MB file: write + `fdatasync`": synced,
        },
    )
    table("2. A 1 MB DataFrame", medians, unit="ms")


def redis_small(calls: int) -> None:
    import redis

    server = RedisServer()
    server.start()
    try:
        raw = redis.Redis.from_url(server.url)
        sha = raw.script_load("return 1")
        args = [3, b"a", b"b", b"c", *(b"x" * 8 for _ in range(13))]  # our write's 16
        db = DashDatabase(server.url + "?prefix=floors", secret_key=SECRET)
        key, item = SMALL_ITEMS[3]
        rows = {
            "raw `HSET` + pickle": lambda i: raw.hset(
                f"raw{i % 20}", key, pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
            ),
            "`EVALSHA` of `return 1`, 16 arguments": lambda i: raw.execute_command(
                "EVALSHA", sha, *args
            ),
            "ours, `store_user_value`": lambda i: db.store_user_value(f"s{i % 20}", key, item),
            "raw `HGET` + unpickle": lambda i: pickle.loads(raw.hget(f"raw{i % 20}", key)),
            "ours, `get_user_value`": lambda i: db.get_user_value(f"s{i % 20}", key),
        }
        cpus = sorted(os.sched_getaffinity(0))
        placements = [("server and client on one CPU", 0), ("on two CPUs", 1)]
        for title, client in placements if len(cpus) > 1 else [("", 0)]:
            if title:  # where the scheduler puts them otherwise changes every row
                assert server.process is not None
                os.sched_setaffinity(server.process.pid, {cpus[0]})
                os.sched_setaffinity(0, {cpus[client]})
            table(f"3. Redis, small values{': ' if title else ''}{title}", measure(calls, rows))
        os.sched_setaffinity(0, set(cpus))
        db.close()
        raw.close()
    finally:
        server.stop()
        server.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per row (small values)")
    calls = parser.parse_args().calls
    print(f"## Floors of the unmet targets ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print(f"\nCommand: `benchmarks/.venv/bin/python benchmarks/floors.py --calls {calls}`.")
    with tempfile.TemporaryDirectory() as folder:
        sqlite_small(folder, calls)
        large(folder, max(10, calls // 50))
    redis_small(calls)


if __name__ == "__main__":
    main()
