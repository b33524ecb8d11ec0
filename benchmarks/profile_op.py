"""Profile one operation of one store with pyinstrument, to see where the time goes.

    benchmarks/.venv/bin/python benchmarks/profile_op.py dd-sqlite small_get
    benchmarks/.venv/bin/python benchmarks/profile_op.py dd-redis df_store --calls 50
    benchmarks/.venv/bin/python benchmarks/profile_op.py dd-postgres list --n 10000

Stores: the ids of ``bench.STORES`` that run in the main venv (not ``v1``). Operations:
small_store, small_get, dict10k_store, dict10k_get, df_store, df_get, list, delete. The
script starts redis-server or PostgreSQL itself when the store needs one, and prints the
call tree (``--html FILE`` also writes pyinstrument's HTML view).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import servers  # noqa: E402
import worker  # noqa: E402
from stores import open_store  # noqa: E402

OPS = [
    "small_store",
    "small_get",
    "dict10k_store",
    "dict10k_get",
    "df_store",
    "df_get",
    "list",
    "delete",
]


def _timed(line: str) -> float | None:
    """Return the seconds at the start of a call-tree line, or None."""
    for word in (
        line.replace("─", " ").replace("│", " ").replace("├", " ").replace("└", " ").split()[:1]
    ):
        try:
            return float(word)
        except ValueError:
            return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", choices=[s for s, _, _ in bench.STORES if s != "v1"])
    parser.add_argument("op", choices=OPS)
    parser.add_argument(
        "--calls", type=int, default=2000, help="calls to profile (default 2000; use ~50 for df_*)"
    )
    parser.add_argument("--n", type=int, default=10_000, help="sessions for list/delete")
    parser.add_argument("--interval", type=float, default=0.0001, help="sampling interval, s")
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    parser.add_argument(
        "--all",
        action="store_true",
        help="show library frames too (SQLAlchemy, redis-py, sqlitedict), "
        "keeping only frames that take at least 2%% of the time",
    )
    args = parser.parse_args()

    from pyinstrument import Profiler

    redis_server = pg_server = None
    tmp = tempfile.mkdtemp(prefix="bench-profile-")
    try:
        if args.store in ("dd-redis", "redis-py"):
            redis_server = servers.start_redis()
        if args.store in ("dd-postgres", "psycopg"):
            pg_server = servers.start_postgres()
        env = bench.Env(
            tmp, redis_server.port if redis_server else None, pg_server.port if pg_server else None
        )
        env.prepare("main")
        store = open_store(env.config(args.store, "main"))
        kind, _, what = args.op.partition("_")
        value = {
            "small": "Ada Lovelace",
            "dict10k": worker.ten_kb_dict(),
            "df": worker.frame(1),
        }.get(kind)
        calls = args.calls
        if args.op in ("list", "delete"):
            sessions = [worker.session_name(i) for i in range(args.n)]
            store.populate(sessions, worker.LIST_KEYS, worker.populated_value)
            calls = min(calls, args.n)
        else:
            for i in range(calls):
                store.store(f"p{i % 100}", f"k{i}", value)
        # Warm up connections and prepared statements outside the profile.
        for i in range(20):
            store.get(f"p{i % 100}", f"k{i}")
        profiler = Profiler(interval=args.interval)
        t0 = time.perf_counter()
        profiler.start()
        for i in range(calls):
            if what == "store":
                store.store(f"p{i % 100}", f"k{i}", value)
            elif what == "get":
                store.get(f"p{i % 100}", f"k{i}")
            elif args.op == "list":
                store.list_keys(worker.session_name(i % (args.n // 2)))
            else:
                store.delete_all(worker.session_name(args.n - 1 - i))
        profiler.stop()
        seconds = time.perf_counter() - t0
        print(
            f"{args.store} {args.op}: {calls} calls, {seconds / calls * 1e6:.1f} µs per call "
            "(under the profiler)"
        )
        text = profiler.output_text(unicode=True, color=False, show_all=args.all)
        if args.all:
            lines = text.splitlines()
            total = next((float(x.split()[0]) for x in lines if x.strip()[:1].isdigit()), 0)
            text = "\n".join(x for x in lines if not _timed(x) or _timed(x) >= 0.02 * total)
        print(text)
        if args.html:
            with open(args.html, "w") as f:
                f.write(profiler.output_html())
        store.close()
    finally:
        for server in (redis_server, pg_server):
            if server is not None:
                server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
