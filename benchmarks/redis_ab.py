"""A/B of small Redis stores between two source trees of dash_database (same machine, same
server, alternating rounds), for changes to the Redis write script.

    python benchmarks/redis_ab.py BEFORE_TREE AFTER_TREE [--rounds 8] [--sessions 400]

Each round runs one fresh process per tree (``PYTHONPATH=<tree>``), A then B, then B then A in
the next round. A process stores 5 small values in each of ``--sessions`` new sessions (every
store adds a key) and then the same values again (no size changes), and prints the median
client time per store, the server's time per ``EVALSHA`` (``INFO commandstats``) and the
``HINCRBY`` calls per store. The medians over the rounds are printed at the end. It starts its
own redis-server (tests/launcher.py) unless --redis-url is given; it removes what it wrote.
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


def server() -> tuple[float, float]:
    stats = client.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {})
    extra = stats.get("cmdstat_hincrby", {}).get("calls", 0)
    return evalsha.get("usec_per_call", 0.0), extra / max(1, evalsha.get("calls", 0))


out = {}
for phase in ("new_key", "same_size"):
    client.config_resetstat()
    times = []
    for i in range(n):
        for key, value in items:
            start = time.perf_counter_ns()
            db.store_user_value(f"s{i}", key, value)
            times.append(time.perf_counter_ns() - start)
    out[phase] = [statistics.median(times) / 1000, *server()]
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
    labels = ("client median per store, us", "server per EVALSHA, us", "HINCRBY per store")
    for phase in ("new_key", "same_size"):
        for i, label in enumerate(labels):
            a = statistics.median(r[phase][i] for r in results["A"])
            b = statistics.median(r[phase][i] for r in results["B"])
            ratio = f"{b / a:.3f}" if a else "-"
            print(f"{phase}: {label}: A {a:.2f}, B {b:.2f}, B/A {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
