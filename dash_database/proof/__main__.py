"""``python -m dash_database.proof``: the figures behind the README's Guarantees."""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import secrets
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from ._report import as_json, as_text, passed
from ._run import Options, StoreReport, prove

STORES = ("sqlite", "redis", "postgres")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dash_database.proof",
        description="Serve a Dash app under gunicorn, drive browser sessions against it, "
        "inject faults, and print what was acknowledged, lost, mixed up and recovered.",
    )
    parser.add_argument("--store", choices=[*STORES, "all"], default="all")
    parser.add_argument("--redis-url", help="a Redis to use instead of starting one")
    parser.add_argument("--postgres-url", help="a PostgreSQL to use instead of starting one")
    parser.add_argument("--sessions", type=int, default=200, help="browsers per phase")
    parser.add_argument("--rounds", type=int, default=2, help="writes per browser")
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--threads", type=int, default=8, help="browsers at once per client")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds each fault lasts")
    parser.add_argument("--keep", action="store_true", help="keep each store's directory")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    options = Options(
        sessions=args.sessions,
        rounds=args.rounds,
        clients=args.clients,
        threads=args.threads,
        workers=args.workers,
        hold=args.hold,
        tail=max(1.0, args.hold),
        secret=secrets.token_urlsafe(32),
        keep=args.keep,
    )
    urls = {"redis": args.redis_url, "postgres": args.postgres_url, "sqlite": None}
    kinds = STORES if args.store == "all" else (args.store,)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    reports: list[StoreReport] = []
    # spawn: the client processes start clean, without this process's threads and servers.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.clients, mp_context=context) as pool:
        for kind in kinds:
            reports.append(prove(kind, pool, options, urls[kind], _progress))
    print(as_json(reports) if args.json else as_text(reports, options, when))
    return 0 if all(passed(r) for r in reports) else 1


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:5.1f} s] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
