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


def workload(db: DashDatabase, ops: int) -> float:
    """Return the seconds per operation of ``ops`` small stores and gets."""
    value = {"clicks": 3, "page": "home"}
    start = time.perf_counter()
    for i in range(ops // 2):
        session = f"session-{i % 50}"
        db.store_user_value(session, "state", value)
        db.get_user_value(session, "state")
    return (time.perf_counter() - start) / ops


def compare(open_location: Callable[[], Any], ops: int, rounds: int) -> tuple[float, float]:
    plain = DashDatabase(open_location())
    measured = DashDatabase(MetricsBackend(open_location(), registry=CollectorRegistry()))
    workload(plain, ops)  # warm both up: connections, scripts, caches
    workload(measured, ops)
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(workload(plain, ops))
        b.append(workload(measured, ops))
    plain.close()
    measured.close()
    return statistics.median(a), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,memory")
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
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
        plain, measured = compare(locations[name], args.ops, args.rounds)
        overhead = measured / plain - 1
        line = (
            f"metrics overhead on {name}: {plain * 1e6:.1f} us/op plain, "
            f"{measured * 1e6:.1f} us/op with metrics, {overhead:+.1%}"
        )
        if name == "memory":
            print(f"INFO {line} (reference: no target)")
        else:
            ok = overhead <= TARGET
            failed |= not ok
            print(f"{'PASS' if ok else 'FAIL'} {line} (target <= {TARGET:.0%})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
