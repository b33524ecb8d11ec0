"""The memoize hit: a memoized call whose result is in the store, against ``get_user_value``.

Run by ``python benchmarks/run.py`` (workload ``memoize``, target: a hit within 1.5x of a
small ``get_user_value`` on every backend), or alone for a quick look at the embedded stores:

    python benchmarks/memoize_hit.py [--stores memory,sqlite] [--calls 2000]

Both calls read one small value of one session; the hit also binds and digests the arguments
and checks the entry's deadline. They alternate call by call, so a noisy neighbour slows
both alike, and each goes first every other time (the second finds the store's pages warm).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

if __name__ == "__main__":  # run alone: the package of this clone (the workers have theirs)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dash_database import DashDatabase, use_session

TARGET = 1.5
VALUE = {"count": 42, "page": "home", "theme": "dark"}


def measure(db: DashDatabase, calls: int, sessions: int = 20) -> dict[str, Any]:
    """Return nanoseconds per call of ``calls`` memoize hits and as many small gets."""

    @db.memoize(ttl=3600)
    def settings(user: str, page: int = 1) -> dict[str, Any]:
        return dict(VALUE)

    names = [f"memoize-bench-{i}" for i in range(sessions)]
    for name in names:  # fill: every later call is a hit
        db.store_user_value(name, "settings", dict(VALUE))
        with use_session(db.session(name)):
            settings("ada", page=2)
    hit_ns, get_ns, wrong = [], [], 0
    clock = time.perf_counter_ns
    for i in range(calls):
        name = names[i % sessions]
        session = db.session(name)
        for first in (i % 2 == 0, i % 2 == 1):  # the second call finds the store's pages warm
            if first:
                t0 = clock()
                with use_session(session):
                    hit = settings("ada", page=2)
                hit_ns.append(clock() - t0)
                wrong += hit != VALUE
            else:
                t0 = clock()
                got = db.get_user_value(name, "settings")
                get_ns.append(clock() - t0)
                wrong += got != VALUE
    return {"hit_ns": hit_ns, "get_ns": get_ns, "wrong": wrong}


def w_memoize(store: Any, rep: int, p: dict[str, Any]) -> dict[str, Any]:
    """The workload ``run.py`` schedules on each of this project's stores."""
    return measure(store.db, p.get("calls", 1000))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="memory,sqlite")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="dash_database-memoize-")
    locations = {"memory": ":memory:", "sqlite": os.path.join(tmp, "memoize.sqlite")}
    failed = False
    for name in args.stores.split(","):
        with DashDatabase(locations[name]) as db:
            measure(db, 200)  # warm up: connections, statements, caches
            out = measure(db, args.calls)
        hit, get = (statistics.median(out[f]) for f in ("hit_ns", "get_ns"))
        ok = hit <= TARGET * get and not out["wrong"]
        failed |= not ok
        print(
            f"{'PASS' if ok else 'FAIL'} memoize hit on {name}: {hit / 1e3:.1f} us vs "
            f"get_user_value {get / 1e3:.1f} us = {hit / get:.2f}x (target <= {TARGET}x; "
            f"median of {args.calls}, {out['wrong']} wrong reads)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
