"""The scale run of the operator tool: a million sessions per store (a separate command; it
takes far longer than the default benchmark).

    python benchmarks/scale.py [--stores sqlite,redis,postgres] [--sessions 1000000]
                               [--transfer-sessions 100000] [--redis-url URL] [--postgres-url URL]

Per store it prints PASS/FAIL lines for:

1. ``dash-database info`` and ``dash-database sessions --limit 20`` on N sessions x 5 small
   keys, each run as the real command in a fresh process (Python's start-up included): < 2 s.
2. Purging those N sessions once expired, while another process keeps storing and reading
   small values of live sessions: the purge within 60 s (SQLite, Redis) or 120 s
   (PostgreSQL), and the p99 of those live calls < 100 ms. Time is injected: the sessions are
   written with a deadline an hour ahead, and the purge and the live process run with a clock
   two hours ahead, so nothing waits for real time to pass.
3. ``dash-database export`` then ``import`` (into a new store of the same kind) of M sessions,
   one in a hundred holding a 1 MB value and the others 5 small keys: each >= 50 MB/s of
   export file, and the peak memory of each command < 200 MB whatever the store's size.

Each timed line also gives the CPU time the command used (or, for the purge, this process:
the SQLite writer thread included, a server's own work not), which a busy machine does not
inflate as it does wall time; INFO lines give the load average at the start, how long filling
took (``scale_fill.py`` writes the small sessions in bulk) and how long each store's run took.

Without --redis-url / --postgres-url it starts its own servers (tests/launcher.py, as the tests
and the main benchmark do) and removes them at the end. On a server given by URL it works under
its own key prefix or namespace and removes what it wrote.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the package under test, and tests/launcher.py

from scale_fill import KEYS, MB, fill  # noqa: E402

from dash_database import DashDatabase  # noqa: E402
from dash_database.backends import Backend  # noqa: E402

#: Deadlines of the populated sessions are this far ahead; the purge runs this far ahead.
TTL = 3600.0
LATER = 2 * TTL
LIST_TARGET = 2.0
PURGE_TARGET = {"sqlite": 60.0, "redis": 60.0, "postgres": 120.0}
P99_TARGET = 0.100
TRANSFER_TARGET = 50.0  # MB/s
RSS_TARGET = 200 * MB


def check(ok: bool, text: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'} {text}", flush=True)
    return ok


def info(text: str) -> None:
    print(f"INFO {text}", flush=True)


# -- filling and emptying a store ---------------------------------------------------------


def empty(location: str) -> None:
    """Remove every session (live or not) this run wrote under ``location``."""
    db = DashDatabase(location)
    backend: Backend = db.backend
    backend.purge_expired(time.time() + 10 * TTL)
    db.close()


# -- the command line, timed ----------------------------------------------------------------


def run_cli(*args: str) -> tuple[float, float, int]:
    """Run ``python -m dash_database ARGS``; return its wall time, CPU time and peak RSS."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "dash_database", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"dash-database {' '.join(args)} failed: {output.decode()[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


# -- purge under load -----------------------------------------------------------------------


def _live_traffic(location: str, stop: Any, results: Any) -> None:
    db = DashDatabase(location, ttl=TTL, clock=lambda: time.time() + LATER)
    latencies: list[float] = []
    i = 0
    while not stop.is_set():
        session = f"live-{uuid.uuid4().hex[:4]}-{i % 50}"
        start = time.perf_counter()
        db.store_user_value(session, "state", {"clicks": i})
        latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        db.get_user_value(session, "state")
        latencies.append(time.perf_counter() - start)
        i += 1
    results.put(latencies)
    db.close()


def purge_under_load(location: str) -> tuple[float, float, int, list[float]]:
    """Purge every session of ``location`` while another process stores and reads; return the
    purge's wall time and this process's CPU time meanwhile (the SQLite writer included, a
    server's own work not), how many it removed, and the latencies of the live calls."""
    stop, results = multiprocessing.Event(), multiprocessing.Queue()
    live = multiprocessing.Process(target=_live_traffic, args=(location, stop, results))
    live.start()
    time.sleep(1.0)  # the live process is connected and writing
    db = DashDatabase(location)
    start, cpu = time.perf_counter(), time.process_time()
    removed = db.backend.purge_expired(time.time() + LATER)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    db.close()
    stop.set()
    latencies: list[float] = results.get(timeout=120)
    live.join(60)
    return seconds, cpu, removed, latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


# -- stores ---------------------------------------------------------------------------------


@contextmanager
def locations(kind: str, args: argparse.Namespace, tmp: str) -> Iterator[list[str]]:
    """Yield three locations of ``kind``, private to this run (scale, source, target)."""
    names = [f"scale_{uuid.uuid4().hex[:8]}_{role}" for role in ("n", "src", "dst")]
    server = None
    try:
        if kind == "sqlite":
            yield [os.path.join(tmp, f"{name}.sqlite") for name in names]
            return
        url = getattr(args, f"{kind}_url")
        if url is None:
            from tests.launcher import PostgresServer, RedisServer

            server = RedisServer() if kind == "redis" else PostgresServer()
            server.start()
            url = server.url
        option = "prefix" if kind == "redis" else "namespace"
        made = [f"{url}{'&' if '?' in url else '?'}{option}={name}" for name in names]
        try:
            yield made
        finally:
            if server is None:
                for location in made:
                    empty(location)
    finally:
        if server is not None:
            server.remove()


def run_store(kind: str, args: argparse.Namespace, tmp: str) -> bool:
    ok = True
    with locations(kind, args, tmp) as (scale, source, target):
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        info(f"{kind}: load average {load} on {os.cpu_count()} CPUs at the start")
        n = args.sessions
        seconds = fill(scale, n, "scale-", args.processes, TTL)
        info(f"{kind}: wrote {n:,} sessions x {KEYS} small keys in {seconds:.0f} s")
        for command in (("info",), ("sessions", "--limit", "20")):
            seconds, cpu, _ = run_cli(*command, "--url", scale)
            ok &= check(
                seconds < LIST_TARGET,
                f"{kind}: dash-database {' '.join(command)} on {n:,} sessions: "
                f"{seconds:.2f} s, {cpu:.2f} s of CPU (target < {LIST_TARGET:.0f} s)",
            )
        seconds, cpu, removed, latencies = purge_under_load(scale)
        limit = PURGE_TARGET[kind]
        ok &= check(
            removed == n and seconds < limit,
            f"{kind}: purge of {n:,} expired sessions: {removed:,} removed in {seconds:.1f} s, "
            f"{cpu:.1f} s of CPU in this process (target < {limit:.0f} s)",
        )
        ok &= check(
            p99(latencies) < P99_TARGET,
            f"{kind}: live store/get during the purge: {len(latencies):,} calls, p99 "
            f"{p99(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
            f"(target p99 < {P99_TARGET * 1000:.0f} ms)",
        )

        m = args.transfer_sessions
        seconds = fill(source, m, "move-", args.processes, TTL, big_every=100)
        info(f"{kind}: wrote {m:,} sessions (1 in 100 with 1 MB) in {seconds:.0f} s")
        dump = os.path.join(tmp, f"{kind}.dump")
        for verb, location in (("export", source), ("import", target)):
            seconds, cpu, rss = run_cli(verb, dump, "--url", location)
            size = os.path.getsize(dump) / MB
            ok &= check(
                size / seconds >= TRANSFER_TARGET,
                f"{kind}: {verb} of {m:,} sessions ({size:,.0f} MB): {seconds:.1f} s = "
                f"{size / seconds:.0f} MB/s, {cpu:.1f} s of CPU (target >= "
                f"{TRANSFER_TARGET:.0f} MB/s)",
            )
            ok &= check(
                rss < RSS_TARGET,
                f"{kind}: {verb} peak memory {rss / MB:.0f} MB for {size:,.0f} MB of data "
                f"(target < {RSS_TARGET / MB:.0f} MB)",
            )
        os.remove(dump)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--transfer-sessions", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--redis-url")
    parser.add_argument("--postgres-url")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="dash_database-scale-")
    ok = True
    try:
        for kind in args.stores.split(","):
            start = time.perf_counter()
            ok &= run_store(kind, args, tmp)
            info(f"{kind}: the run of this store took {time.perf_counter() - start:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
