"""Export and import between stores, with the servers' CPU time (issue 14's transfer target).

    python benchmarks/transfer.py [--sessions 20000] [--pairs sqlite:sqlite,redis:postgres,...]

For each source store kind it writes N sessions (one in a hundred holding a 1 MB value, the
others 5 small keys; ``scale_fill.py``), then for each pair runs ``dash-database export`` of
the source and ``dash-database import`` into a new, empty target of the pair's second kind,
each as the real command in a fresh process. Each prints a PASS/FAIL line for >= 50 MB/s of
export file and one for a peak memory under 200 MB (as ``scale.py`` does), and an INFO line
with the CPU time of the command and of the servers meanwhile (Redis, or every process of the
PostgreSQL cluster; none for SQLite, which works in the command's process), and the rate that
CPU time alone allows: what a machine with a free core for each would reach, whatever the load
of this one (printed at the start).

It starts its own redis-server and PostgreSQL (``tests/launcher.py``) and removes them at the
end; it never touches another server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the package under test, and tests/launcher.py

from scale import RSS_TARGET, TRANSFER_TARGET, check, info, run_cli  # noqa: E402
from scale_fill import MB, fill  # noqa: E402

DEFAULT_PAIRS = (
    "sqlite:sqlite,sqlite:redis,redis:postgres,postgres:sqlite,redis:redis,postgres:postgres"
)
TTL = 3600.0


def server_cpu(pid: int | None) -> float:
    """Return the CPU seconds used so far by process ``pid`` and its children, running or
    ended (0: no process)."""
    if pid is None:
        return 0.0
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(name) == pid:  # with its children that ended (PostgreSQL's closed backends)
            total += sum(int(field) for field in fields[11:15]) / tick
        elif int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@contextmanager
def servers(kinds: set[str]) -> Iterator[dict[str, Any]]:
    """Start a server of each kind in ``kinds`` that needs one; yield them by kind."""
    from tests.launcher import PostgresServer, RedisServer

    started: dict[str, Any] = {}
    with ExitStack() as stack:
        for kind, make in (("redis", RedisServer), ("postgres", PostgresServer)):
            if kind in kinds:
                server = started[kind] = make()
                stack.callback(server.remove)
                server.start()
        yield started


def location(kind: str, started: dict[str, Any], tmp: str) -> str:
    name = f"transfer_{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        return os.path.join(tmp, f"{name}.sqlite")
    option = "prefix" if kind == "redis" else "namespace"
    return f"{started[kind].url}?{option}={name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--pairs", default=DEFAULT_PAIRS)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    pairs = [tuple(pair.split(":")) for pair in args.pairs.split(",")]
    kinds = {kind for pair in pairs for kind in pair}
    tmp = tempfile.mkdtemp(prefix="dash_database-transfer-")
    ok = True
    try:
        with servers(kinds) as started:
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            info(f"load average {load} on {os.cpu_count()} CPUs at the start")
            sources: dict[str, str] = {}
            for source_kind, target_kind in pairs:
                if source_kind not in sources:
                    sources[source_kind] = location(source_kind, started, tmp)
                    seconds = fill(
                        sources[source_kind], args.sessions, "move-", args.processes, TTL, 100
                    )
                    info(f"{source_kind}: wrote {args.sessions:,} sessions in {seconds:.0f} s")
                target = location(target_kind, started, tmp)
                dump = os.path.join(tmp, "transfer.dump")
                pair = f"{source_kind} -> {target_kind}"
                for verb, kind, where in (
                    ("export", source_kind, sources[source_kind]),
                    ("import", target_kind, target),
                ):
                    process = getattr(started.get(kind), "process", None)
                    pid = None if process is None else process.pid
                    before = server_cpu(pid)
                    seconds, cpu, rss = run_cli(verb, dump, "--url", where)
                    served = server_cpu(pid) - before
                    size = os.path.getsize(dump) / MB
                    ok &= check(
                        size / seconds >= TRANSFER_TARGET,
                        f"{pair}: {verb} of {args.sessions:,} sessions ({size:,.0f} MB): "
                        f"{seconds:.1f} s = {size / seconds:.0f} MB/s (target >= "
                        f"{TRANSFER_TARGET:.0f} MB/s)",
                    )
                    ok &= check(
                        rss < RSS_TARGET,
                        f"{pair}: {verb} peak memory {rss / MB:.0f} MB (target < "
                        f"{RSS_TARGET / MB:.0f} MB)",
                    )
                    info(
                        f"{pair}: {verb}: {cpu:.1f} s of CPU in the command, {served:.1f} s in "
                        f"the {kind} server: {size / max(cpu, served, 1e-9):.0f} MB/s on a free "
                        f"core each, {size / (cpu + served):.0f} MB/s on one core"
                    )
                os.remove(dump)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
