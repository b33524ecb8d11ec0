"""The schedule: which workload runs on which store, in which order, on which data.

``run.py`` calls :func:`bench` inside ``benchmarks/.venv``. It starts redis-server and
PostgreSQL (``tests/launcher.py``, the launcher the tests use too) and one worker process per
store (``measure.py``), sends them the workloads (``workloads.py``), runs the end-to-end
workload (``e2e.py``) and hands everything to the report (``report.py``). Every repetition
visits the stores in a new random order, so a change in the machine's load during the run
falls on all of them alike. Each phase keeps its data apart (its own files, Redis databases
and PostgreSQL database) and frees it when done.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAIN_PY = os.path.join(HERE, ".venv", "bin", "python")
V1_PY = os.path.join(HERE, ".venv-v1", "bin", "python")

# (id, label); the order of the tables. "ours" are this project's backends.
STORES = [
    ("dd-memory", "dash_database memory"),
    ("dd-sqlite", "dash_database sqlite"),
    ("dd-redis", "dash_database redis"),
    ("dd-postgres", "dash_database postgres"),
    ("v1", "dash-database 1.0"),
    ("diskcache", "diskcache"),
    ("redis-py", "redis-py"),
    ("psycopg", "psycopg (SQLAlchemy pool)"),
]
LABELS = dict(STORES)
OURS = ["dd-memory", "dd-sqlite", "dd-redis", "dd-postgres"]
LIST_PEERS = ["v1", "redis-py", "psycopg"]  # listed at N = Settings.mid, for the targets
SERVER = {
    "dd-redis": "redis",
    "redis-py": "redis",
    "dd-postgres": "postgres",
    "psycopg": "postgres",
}
PHASES = ["main", "mem", "n1000", "n10000", "n100000", "e2e"]


class Settings:
    def __init__(self, quick: bool, e2e: bool) -> None:
        self.quick, self.e2e = quick, e2e
        self.reps = 3 if quick else 20  # of workloads 1-3, each a short turn per store
        self.small_sessions, self.dict10k_sessions = 20, 4
        self.thread_reps, self.proc_reps = (1, 1) if quick else (5, 3)
        self.increments, self.cas_reps = 500, 1 if quick else 2
        self.bulk_keys, self.bulk_reps = 20_000, 1 if quick else 3
        self.mem_sizes_mb = [1, 10] if quick else [1, 100]
        self.sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
        self.mid = 10_000  # the N at which stores are compared with each other
        self.n_reps, self.list_ops, self.delete_ops = (2, 10, 10) if quick else (5, 20, 20)
        self.e2e_seconds, self.e2e_warmup, self.e2e_rounds = (4, 1, 2) if quick else (12, 2, 4)
        self.e2e_backends = ["dd-sqlite"] if quick else ["dd-sqlite", "dd-redis", "dd-postgres"]


def config(store: str, phase: str, tmp: str, ports: dict[str, int]) -> dict[str, Any]:
    """Where ``store`` keeps its data in ``phase`` (files, a Redis database, a PG database)."""
    path = os.path.join(tmp, f"{phase}-{store}")
    redis = (
        f"redis://127.0.0.1:{ports.get('redis')}/{2 * PHASES.index(phase) + (store == 'redis-py')}"
    )
    pg = f"postgresql+psycopg://postgres@127.0.0.1:{ports.get('postgres')}/bench_{phase}"
    return {
        "dd-memory": {"kind": "dash_database", "location": ":memory:"},
        "dd-sqlite": {"kind": "dash_database", "location": path + ".sqlite"},
        "dd-redis": {"kind": "dash_database", "location": redis},
        "dd-postgres": {"kind": "dash_database", "location": pg},
        "v1": {"kind": "dash_database_v1", "location": path + ".sqlite"},
        "diskcache": {"kind": "diskcache", "location": path},
        "redis-py": {"kind": "redis", "location": redis},
        "psycopg": {"kind": "psycopg", "location": pg},
    }[store]


def postgres_database(port: int, name: str, create: bool) -> None:
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bench(settings: Settings, out_dir: str, without: list[str], command: str) -> int:
    sys.path[:0] = [HERE, REPO]  # REPO: the one server launcher, tests/launcher.py
    import e2e
    import report
    from measure import Worker, WorkerError

    from tests.launcher import PostgresServer, RedisServer

    started = time.time()
    meta: dict[str, Any] = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    meta.update(mode="quick" if settings.quick else "full", command=command)
    meta.update(settings=vars(settings), loadavg_start=os.getloadavg())
    unavailable = {s: "left out with --without" for s in without}
    servers: dict[str, Any] = {}
    for name, server_class in (("redis", RedisServer), ("postgres", PostgresServer)):
        try:
            options = {"settings": {"max_connections": "200"}} if name == "postgres" else {}
            servers[name] = server_class(**options)
            servers[name].start()
        except Exception as exc:
            if name in servers:
                servers.pop(name).remove()
            for store in (s for s, needs in SERVER.items() if needs == name):
                unavailable.setdefault(store, f"{name} could not start: {exc}")
    ports = {name: server.port for name, server in servers.items()}
    tmp = tempfile.mkdtemp(prefix="dash-db-bench-")
    logs = os.path.join(out_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    results: dict[str, Any] = {"runs": {}, "populate": {}, "memory": {}, "e2e": {}, "errors": {}}
    workers: dict[str, Worker] = {}
    rng = random.Random(4)

    def prepare(phase: str) -> None:
        if "postgres" in ports:
            postgres_database(ports["postgres"], f"bench_{phase}", create=True)

    def error(store: str, key: str, why: str) -> None:
        results["errors"].setdefault(store, {}).setdefault(key, []).append(why)
        log(f"  {store} {key}: ERROR {why}")

    def run(store: str, key: str, workload: str, handle: str, rep: int, **params: Any) -> Any:
        try:
            out = workers[store].call(
                cmd="run", workload=workload, handle=handle, rep=rep, params=params
            )
        except WorkerError as exc:
            return error(store, key, str(exc))
        results["runs"].setdefault(store, {}).setdefault(key, []).append(out)
        return out

    try:
        prepare("main")
        log("starting one worker per store ...")
        for store, _ in STORES:
            if store in unavailable:
                continue
            python = V1_PY if store == "v1" else MAIN_PY
            workers[store] = Worker(store, python, os.path.join(logs, f"worker-{store}.log"))
            try:
                workers[store].call(
                    cmd="open", handle="main", config=config(store, "main", tmp, ports)
                )
            except WorkerError as exc:
                unavailable[store] = f"could not open: {exc}"
                workers.pop(store).stop()
        active = [s for s, _ in STORES if s in workers]
        multiprocess = [s for s in active if s != "dd-memory"]

        # 1-3 and 6: every repetition visits every store, in a new order for each workload.
        for rep in range(settings.reps):
            log(f"workloads 1-3 and 6, repetition {rep + 1}/{settings.reps}")
            for workload, stores, params in (
                ("small", active, {"sessions": settings.small_sessions}),
                ("dict10k", active, {"sessions": settings.dict10k_sessions}),
                ("large", active, {}),
                ("threads", active if rep < settings.thread_reps else [], {}),
                ("procs", multiprocess if rep < settings.proc_reps else [], {"pairs": 100}),
            ):
                for store in rng.sample(stores, len(stores)):
                    run(store, workload, workload, "main", rep, **params)

        # 7, 8: compare-and-set increments in 4 processes; one Session.update of 20,000 keys.
        for rep in range(settings.cas_reps):
            log(f"compare-and-set increments, repetition {rep + 1}/{settings.cas_reps}")
            for store in (s for s in OURS if s in multiprocess):
                run(store, "increment", "increment", "main", rep, increments=settings.increments)
        for store in (s for s in OURS if s in active):
            for rep in range(settings.bulk_reps):
                out = run(store, "bulk_update", "bulk_update", "main", rep, keys=settings.bulk_keys)
                if not out or out["op_ns"][0] > 5e9:
                    break  # a call this slow fails its target already; more of them cost minutes

        # 4: peak memory, in a fresh process per store of ours (two at a time: no timing here).
        prepare("mem")
        sizes = ",".join(str(mb) for mb in settings.mem_sizes_mb)
        log(f"peak memory of storing and reading {sizes} MB DataFrames ...")

        def memory(store: str) -> None:
            out = subprocess.run(
                [
                    MAIN_PY,
                    os.path.join(HERE, "measure.py"),
                    "--memory",
                    json.dumps(config(store, "mem", tmp, ports)),
                    sizes,
                ],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=HERE,
                # A fixed mmap threshold turns off glibc's adaptive one: every block of 128 KiB
                # or more is mapped afresh, so memory freed earlier cannot hide an allocation.
                env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"},
            )
            if out.returncode == 0:
                results["memory"][store] = json.loads(out.stdout)
            else:
                error(store, "memory", (out.stderr.strip().splitlines() or ["?"])[-1])

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(memory, [s for s in OURS if s in active]))

        # 5: list and delete-all in stores of N sessions x 10 keys: ours at every N, the peers
        # only at the N where the targets compare them.
        for n in settings.sizes:
            phase = f"n{n}"
            prepare(phase)
            stores = [s for s in active if s in OURS or (s in LIST_PEERS and n == settings.mid)]
            log(f"N = {n:,}: populating {len(stores)} stores ...")

            def populate(store: str, n: int = n, phase: str = phase) -> None:
                try:
                    workers[store].call(
                        cmd="open", handle=phase, config=config(store, phase, tmp, ports)
                    )
                    out = workers[store].call(cmd="populate", handle=phase, n=n)
                    results["populate"].setdefault(store, {})[str(n)] = out
                except WorkerError as exc:
                    error(store, f"populate@{n}", str(exc))

            with ThreadPoolExecutor(2) as pool:
                list(pool.map(populate, stores))
            ready = [s for s in stores if str(n) in results["populate"].get(s, {})]
            for rep in range(settings.n_reps):
                for workload, ops in (("list", settings.list_ops), ("delete", settings.delete_ops)):
                    for store in rng.sample(ready, len(ready)):
                        # 1.0 scans the whole store per call: a few calls say enough.
                        calls = 2 if store == "v1" else ops
                        run(store, f"{workload}@{n}", workload, phase, rep, n=n, ops=calls)
            for store in ready:
                workers[store].call(cmd="close", handle=phase)
            if "postgres" in ports:
                postgres_database(ports["postgres"], f"bench_{phase}", create=False)
        for store in list(workers):
            workers.pop(store).stop()

        # 9: end to end under gunicorn.
        if settings.e2e:
            urls = {"dd-sqlite": f"sqlite:///{tmp}/e2e.sqlite"}
            if "dd-redis" not in unavailable:
                urls["dd-redis"] = f"redis://127.0.0.1:{ports.get('redis')}/15"
            if "dd-postgres" not in unavailable:
                prepare("e2e")
                urls["dd-postgres"] = config("dd-postgres", "e2e", tmp, ports)["location"]
            urls = {s: u for s, u in urls.items() if s in settings.e2e_backends}
            results["e2e"] = e2e.run(REPO, os.path.dirname(MAIN_PY), urls, settings, logs, log)
    finally:
        for worker in workers.values():
            worker.stop()
        for server in servers.values():
            server.remove()
        shutil.rmtree(tmp, ignore_errors=True)

    meta.update(seconds=time.time() - started, loadavg_end=os.getloadavg(), versions=versions())
    return report.write(meta, STORES, unavailable, results, out_dir)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {}
    for name in (
        "dash-database",
        "diskcache",
        "redis",
        "psycopg",
        "sqlalchemy",
        "pandas",
        "dash",
        "gunicorn",
    ):
        out[name] = version(name)

    def output(*cmd: str) -> str:
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=60, cwd=HERE
            ).stdout.strip()
        except OSError:
            return "?"

    out["dash-database 1.0"] = output(
        V1_PY, "-c", "import importlib.metadata as m; print(m.version('dash-database'))"
    )
    out["commit"] = output("git", "-C", REPO, "describe", "--always", "--dirty")
    out["redis-server"] = output("redis-server", "--version").split(" sha=")[0]
    from tests.launcher import find_postgres_bindir

    out["postgres"] = output(
        os.path.join(find_postgres_bindir() or "/nonexistent", "postgres"), "--version"
    )
    return out
