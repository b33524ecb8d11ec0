"""A/B of small Redis operations between two source trees of dash_database (same machine,
same server, alternating rounds), for changes to the Redis backend's per-operation paths.

    python benchmarks/redis_ab.py BEFORE_TREE AFTER_TREE [--rounds 8] [--sessions 400]

Each round runs one fresh process per tree (``PYTHONPATH=<tree>``), A then B, then B then A in
the next round. A process stores 5 small values in each of ``--sessions`` new sessions (every
store adds a key), then the same values again (no size changes), reads each back, lists each
session's keys and deletes each session. It prints, per phase, the median client time per
call, the server's time per call (every command it ran, from ``INFO commandstats``) and the
server commands per call (those a script runs count too). The medians over the rounds are
printed at the end. It starts its own redis-server (tests/launcher.py) unless --redis-url is
given; it removes what it wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One side, run in a fresh process with the tree under test first on sys.path.
_SIDE = r"""
import json, statistics, sys, time, uuid
from dash_database import DashDatabase

url, n = sys.argv[1], int(sys.argv[2])
prefix = "redis_ab_" + uuid.uuid4().hex[:8]
db = DashDatabase(f"{url}?prefix={prefix}", secret_key="redis-ab-secret-0123456789abcdef")
items = [("count", 42), ("user_id", 1_234_567), ("page", 3), ("name", "Ada"), ("theme", "dark")]
client = db.backend.client
for i in range(200):  # scripts loaded, connections open
    db.store_user_value(f"warm{i}", "count", i)


def server(calls: int) -> tuple[float, float]:
    stats = client.info("commandstats")
    mine = [v for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config|resetstat")]
    return sum(v["usec"] for v in mine) / calls, sum(v["calls"] for v in mine) / calls


def store(i, key, value):
    db.store_user_value(f"s{i}", key, value)


def get(i, key, value):
    if db.get_user_value(f"s{i}", key) != value:
        raise SystemExit(f"read back a wrong value of s{i}/{key}")


def list_keys(i, key, value):
    if key == items[0][0] and len(db.list_stored_user_keys(f"s{i}")) != len(items):
        raise SystemExit(f"listed the wrong keys of s{i}")


def delete(i, key, value):
    if key == items[0][0] and db.delete_all_user_values(f"s{i}") != len(items):
        raise SystemExit(f"deleted the wrong number of keys of s{i}")


out = {}
phases = (("new_key", store), ("same_size", store), ("get", get), ("list", list_keys))
for phase, call in (*phases, ("delete", delete)):
    client.config_resetstat()
    times = []
    for i in range(n):
        for key, value in items:
            start = time.perf_counter_ns()
            call(i, key, value)
            times.append(time.perf_counter_ns() - start)
    if phase in ("list", "delete"):  # one call per session: the first key's
        times = times[:: len(items)]
    out[phase] = [statistics.median(times) / 1000, *server(len(times))]
keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
for i in range(0, len(keys), 1000):
    client.delete(*keys[i : i + 1000])
db.close()
print(json.dumps(out))
"""


def run_side(tree: str, url: str, sessions: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    done = subprocess.run(
        [sys.executable, "-c", _SIDE, url, str(sessions)],
        env=env,
        cwd="/",  # so that the tree on PYTHONPATH, not the working directory, is imported
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, list[float]] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    server = None
    url = args.redis_url
    if url is None:
        sys.path.insert(0, ROOT)
        from tests.launcher import RedisServer

        server = RedisServer()
        server.start()
        url = server.url
    results: dict[str, list[dict[str, list[float]]]] = {"A": [], "B": []}
    try:
        for round_ in range(args.rounds):
            order = ("A", "B") if round_ % 2 == 0 else ("B", "A")
            for side in order:
                tree = args.before if side == "A" else args.after
                got = run_side(tree, url, args.sessions)
                results[side].append(got)
                print(f"{side} {json.dumps(got)}", flush=True)
    finally:
        if server is not None:
            server.remove()
    labels = ("client median per call, us", "server per call, us", "server commands per call")
    for phase in ("new_key", "same_size", "get", "list", "delete"):
        for i, label in enumerate(labels):
            a = statistics.median(r[phase][i] for r in results["A"])
            b = statistics.median(r[phase][i] for r in results["B"])
            ratio = f"{b / a:.3f}" if a else "-"
            print(f"{phase}: {label}: A {a:.2f}, B {b:.2f}, B/A {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
