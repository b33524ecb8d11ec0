"""A/B: the cost of Prometheus metrics (dash_database.metrics) on small stores and gets.

    python benchmarks/metrics_overhead.py [--stores sqlite,redis,postgres,memory] [--ops 2000]

For each store, the same workload (store then get one small value, in 50 sessions) runs on a
plain DashDatabase (A) and on one wrapped in a MetricsBackend (B), in alternating rounds so
that a noisy neighbour slows both alike. It prints the median time per operation of each and
the overhead, and a PASS/FAIL line against the 5% target. The memory store is printed for
reference only: its operations cost about as much as the metrics themselves.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from prometheus_client import CollectorRegistry

from dash_database import DashDatabase
from dash_database.metrics import MetricsBackend

TARGET = 0.05


def workload(db: DashDatabase, ops: int) -> tuple[float, float]:
    """Return the seconds per call of ``ops`` small stores, then of ``ops`` small gets."""
    value = {"clicks": 3, "page": "home"}
    start = time.perf_counter()
    for i in range(ops):
        db.store_user_value(f"session-{i % 50}", "state", value)
    middle = time.perf_counter()
    for i in range(ops):
        db.get_user_value(f"session-{i % 50}", "state")
    return (middle - start) / ops, (time.perf_counter() - middle) / ops


def compare(open_location: Callable[[], Any], ops: int, rounds: int) -> dict[str, list[float]]:
    """Return, per operation, the median time plain, with metrics, and the median of the
    paired ratios (each round's B over the same round's A, which cancels slow drifts in the
    machine's load)."""
    plain = DashDatabase(open_location())
    measured = DashDatabase(MetricsBackend(open_location(), registry=CollectorRegistry()))
    workload(plain, ops)  # warm both up: connections, scripts, caches
    workload(measured, ops)
    pairs: dict[str, list[tuple[float, float]]] = {"store": [], "get": []}
    for i in range(rounds):
        # Alternate which runs first, so neither always follows the other.
        first, second = (plain, measured) if i % 2 == 0 else (measured, plain)
        x, y = workload(first, ops), workload(second, ops)
        a, b = (x, y) if first is plain else (y, x)
        pairs["store"].append((a[0], b[0]))
        pairs["get"].append((a[1], b[1]))
    plain.close()
    measured.close()
    return {
        op: [
            statistics.median(a for a, _ in found),
            statistics.median(b for _, b in found),
            statistics.median(b / a for a, b in found),
        ]
        for op, found in pairs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,memory")
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"))
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="dash_database-metrics-")
    locations: dict[str, Callable[[], Any]] = {
        "memory": lambda: ":memory:",
        "sqlite": lambda: os.path.join(tmp, "ab.sqlite"),
        "redis": lambda: f"{args.redis_url}?prefix=metrics_ab",
        "postgres": lambda: f"{args.postgres_url}?namespace=metrics_ab",
    }
    failed = False
    for name in args.stores.split(","):
        if name in ("redis", "postgres") and not getattr(args, f"{name}_url"):
            print(f"SKIP metrics overhead on {name}: pass --{name}-url")
            continue
        for op, (plain, measured, ratio) in compare(locations[name], args.ops, args.rounds).items():
            line = (
                f"metrics overhead on {name}, small {op}: {plain * 1e6:.1f} us/call plain, "
                f"{measured * 1e6:.1f} us/call with metrics, {ratio - 1:+.1%} (median of "
                f"{args.rounds} paired rounds)"
            )
            if name == "memory":
                print(f"INFO {line} (reference: no target)", flush=True)
            else:
                ok = ratio - 1 <= TARGET
                failed |= not ok
                print(f"{'PASS' if ok else 'FAIL'} {line} (target <= {TARGET:.0%})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
