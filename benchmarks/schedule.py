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

import contextlib
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
sys.path[:0] = [HERE, REPO]  # REPO: the project's one server launcher, tests/launcher.py

import async_stall  # noqa: E402
from measure import Worker, WorkerError  # noqa: E402

from tests.launcher import PostgresServer, RedisServer, find_postgres_bindir  # noqa: E402

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
LIST_PEERS = ["v1", "redis-py", "psycopg"]  # listed only at N = settings.mid, for the targets
SERVER = {"dd-redis": "redis", "redis-py": "redis", "dd-postgres": "postgres"}
SERVER["psycopg"] = "postgres"
PHASES = ["main", "mem", "n1000", "n10000", "n100000", "e2e"]
# Timed one call at a time, a store with a server has its worker (all its threads, as
# `taskset` would hold it) on one CPU and redis-server on another (below), as a server is
# deployed. Where the scheduler put them decided the figures otherwise: a raw redis-py HGET
# took about 50 µs with client and server on one CPU and 100-120 µs across two, so whichever
# worker happened to share redis-server's CPU looked twice as fast (docs/benchmarks/
# floors-2026-12-07.md). Stores inside the worker's process, and the concurrency workloads,
# are left to the scheduler, as an app is.
LATENCY = {"small", "dict10k", "large", "memoize", "list", "delete"}
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def postgres_database(port: int, name: str, create: bool) -> None:
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def pin(pid: int, cpus: list[int]) -> None:
    """Hold every thread of process ``pid`` (and the threads they start) on ``cpus``."""
    for thread in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # it ended meanwhile
            os.sched_setaffinity(int(thread), set(cpus))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Run:
    """One run: its servers, a worker per store, where they keep their data, every result."""

    def __init__(self, settings: Any, out_dir: str, without: list[str]) -> None:
        self.settings, self.rng = settings, random.Random(4)
        self.unavailable = {s: "left out with --without" for s in without}
        self.results: dict[str, Any] = {
            key: {} for key in ("runs", "populate", "memory", "e2e", "errors")
        }
        self.logs = os.path.join(out_dir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="dash-db-bench-")
        self.servers: dict[str, Any] = {}
        self.workers: dict[str, Worker] = {}
        for name, server_class in (("redis", RedisServer), ("postgres", PostgresServer)):
            try:
                options = {"settings": {"max_connections": "200"}} if name == "postgres" else {}
                self.servers[name] = server_class(**options)
                self.servers[name].start()
                if name == "redis" and len(CPUS) > 1:  # single-threaded: one CPU is all it uses
                    os.sched_setaffinity(self.servers[name].process.pid, {CPUS[0]})
            except Exception as exc:
                if name in self.servers:
                    self.servers.pop(name).remove()
                for store in (s for s, needs in SERVER.items() if needs == name):
                    self.unavailable.setdefault(store, f"{name} could not start: {exc}")
        self.ports = {name: server.port for name, server in self.servers.items()}

    def config(self, store: str, phase: str) -> dict[str, Any]:
        """Where ``store`` keeps its data in ``phase``: files, a Redis database, a PG database."""
        path = os.path.join(self.tmp, f"{phase}-{store}")
        db = 2 * PHASES.index(phase) + (store == "redis-py")
        redis = f"redis://127.0.0.1:{self.ports.get('redis')}/{db}"
        pg = f"postgresql+psycopg://postgres@127.0.0.1:{self.ports.get('postgres')}/bench_{phase}"
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

    def prepare(self, phase: str) -> None:
        if "postgres" in self.ports:
            postgres_database(self.ports["postgres"], f"bench_{phase}", create=True)

    def error(self, store: str, key: str, why: str) -> None:
        self.results["errors"].setdefault(store, {}).setdefault(key, []).append(why)
        log(f"  {store} {key}: ERROR {why}")

    def run(self, store: str, key: str, workload: str, handle: str, rep: int, **params: Any) -> Any:
        """Run ``workload`` in ``store``'s worker; keep its result under ``key``."""
        try:
            if len(CPUS) > 1:
                held = store in SERVER and workload in LATENCY
                pin(self.workers[store].proc.pid, CPUS[1:2] if held else CPUS)
            msg = {"workload": workload, "handle": handle, "rep": rep, "params": params}
            out = self.workers[store].call(cmd="run", **msg)
        except WorkerError as exc:
            return self.error(store, key, str(exc))
        self.results["runs"].setdefault(store, {}).setdefault(key, []).append(out)
        return out

    def start_workers(self) -> None:
        self.prepare("main")
        log("starting one worker per store ...")
        for store, _ in STORES:
            if store in self.unavailable:
                continue
            python = V1_PY if store == "v1" else MAIN_PY
            log_path = os.path.join(self.logs, f"worker-{store}.log")
            self.workers[store] = Worker(store, python, log_path)
            try:
                self.workers[store].call(
                    cmd="open", handle="main", config=self.config(store, "main")
                )
            except WorkerError as exc:
                self.unavailable[store] = f"could not open: {exc}"
                self.workers.pop(store).stop()
        self.active = [s for s, _ in STORES if s in self.workers]
        self.ours = [s for s in OURS if s in self.workers]

    def basic(self) -> None:
        """Workloads 1-3 and 6; every repetition visits the stores in a new order."""
        s, shared = self.settings, [st for st in self.active if st != "dd-memory"]
        for rep in range(s.reps):
            log(f"workloads 1-3 and 6, repetition {rep + 1}/{s.reps}")
            for workload, stores, params in (
                ("small", self.active, {"sessions": s.small_sessions}),
                ("dict10k", self.active, {"sessions": s.dict10k_sessions}),
                ("large", self.active, {}),
                ("threads", self.active if rep < s.thread_reps else [], {}),
                ("procs", shared if rep < s.proc_reps else [], {"pairs": 100}),
                ("memoize", self.ours, {"calls": 200}),
            ):
                for store in self.rng.sample(stores, len(stores)):
                    self.run(store, workload, workload, "main", rep, **params)

    def writes(self) -> None:
        """Workloads 7 and 8: compare-and-set increments; a Session.update of 20,000 keys."""
        s = self.settings
        for rep in range(s.cas_reps):
            log(f"compare-and-set increments, repetition {rep + 1}/{s.cas_reps}")
            for store in (st for st in self.ours if st != "dd-memory"):
                self.run(store, "increment", "increment", "main", rep, increments=s.increments)
        log("Session.update of 20,000 keys ...")
        for store in self.ours:
            for rep in range(s.bulk_reps):
                out = self.run(store, "bulk_update", "bulk_update", "main", rep, keys=s.bulk_keys)
                if not out or out["op_ns"][0] > 5e9:
                    break  # a call this slow fails its target already; more of them cost minutes

    def memory(self) -> None:
        """Workload 4: peak memory, in a fresh process per backend (two at a time: memory is
        measured here, not time)."""
        self.prepare("mem")
        sizes = ",".join(str(mb) for mb in self.settings.mem_sizes_mb)
        log(f"peak memory of storing and reading {sizes} MB DataFrames ...")

        def measure(store: str) -> None:
            command = [MAIN_PY, os.path.join(HERE, "measure.py"), "--memory"]
            command += [json.dumps(self.config(store, "mem")), sizes]
            # A fixed mmap threshold turns off glibc's adaptive one: every block of 128 KiB or
            # more is mapped afresh, so memory freed earlier cannot hide an allocation.
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
            out = subprocess.run(
                command, capture_output=True, text=True, timeout=600, cwd=HERE, env=env
            )
            if out.returncode == 0:
                self.results["memory"][store] = json.loads(out.stdout)
            else:
                self.error(store, "memory", (out.stderr.strip().splitlines() or ["?"])[-1])

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(measure, self.ours))

    def sizes(self) -> None:
        """Workload 5: list and delete-all among N sessions x 10 keys; ours at every N, the
        peers only at the N where the targets compare them."""
        for n in self.settings.sizes:
            phase = f"n{n}"
            self.prepare(phase)
            mid = n == self.settings.mid
            stores = [s for s in self.active if s in OURS or (s in LIST_PEERS and mid)]
            log(f"N = {n:,}: populating {len(stores)} stores ...")

            def populate(store: str, n: int = n, phase: str = phase) -> None:
                try:
                    worker = self.workers[store]
                    worker.call(cmd="open", handle=phase, config=self.config(store, phase))
                    out = worker.call(cmd="populate", handle=phase, n=n)
                    self.results["populate"].setdefault(store, {})[str(n)] = out
                except WorkerError as exc:
                    self.error(store, f"populate@{n}", str(exc))

            with ThreadPoolExecutor(2) as pool:
                list(pool.map(populate, stores))
            ready = [s for s in stores if str(n) in self.results["populate"].get(s, {})]
            for rep in range(self.settings.n_reps):
                for workload in ("list", "delete"):
                    for store in self.rng.sample(ready, len(ready)):
                        # 1.0 scans the whole store per call: two calls say enough.
                        ops = 2 if store == "v1" else self.settings.n_ops
                        self.run(store, f"{workload}@{n}", workload, phase, rep, n=n, ops=ops)
            for store in ready:
                try:
                    self.workers[store].call(cmd="close", handle=phase)
                except WorkerError as exc:
                    self.error(store, f"close@{n}", str(exc))
            if "postgres" in self.ports:
                postgres_database(self.ports["postgres"], f"bench_{phase}", create=False)

    def end_to_end(self) -> None:
        """Workload 9, once the workers are gone: gunicorn on each backend."""
        import e2e

        urls = {"dd-sqlite": f"sqlite:///{self.tmp}/e2e.sqlite"}
        for store in ("dd-redis", "dd-postgres"):
            if store not in self.unavailable and store in self.settings.e2e_backends:
                self.prepare("e2e")
                urls[store] = self.config(store, "e2e")["location"]
        venv_bin = os.path.dirname(MAIN_PY)
        self.results["e2e"] = e2e.run(REPO, venv_bin, urls, self.settings, self.logs, log)

    def close(self) -> None:
        for store in list(self.workers):
            self.workers.pop(store).stop()
        for server in self.servers.values():
            server.remove()
        shutil.rmtree(self.tmp, ignore_errors=True)


def bench(settings: Any, out_dir: str, without: list[str], command: str) -> int:
    """Run every workload, print the report and write it to ``out_dir``."""
    import report

    started = time.time()
    meta: dict[str, Any] = {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    meta.update(mode="quick" if settings.quick else "full", command=command)
    meta.update(settings=vars(settings), loadavg_start=os.getloadavg())
    run = Run(settings, out_dir, without)
    try:
        run.start_workers()
        run.basic()
        run.writes()
        run.memory()
        run.sizes()
        run.results["async"] = async_stall.run(
            {s: run.config(s, "main")["location"] for s in run.ours}, settings.async_rounds, log
        )
        for store in list(run.workers):
            run.workers.pop(store).stop()
        if settings.e2e:
            run.end_to_end()
            run.results["serverside"] = serverside_values(run.tmp, settings)
    finally:
        run.close()
    meta.update(seconds=time.time() - started, loadavg_end=os.getloadavg(), versions=versions())
    return report.write(meta, STORES, run.unavailable, run.results, out_dir)


def serverside_values(tmp: str, settings: Any) -> dict[str, Any]:
    """The server-side value against dcc.Store (``serverside.py``), on SQLite."""
    import serverside

    try:
        rounds = 5 if settings.quick else 15
        return dict(serverside.measure(f"sqlite:///{tmp}/serverside.sqlite", rounds, log))
    except Exception as exc:
        return {"failed": f"{type(exc).__name__}: {exc}"}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ["dash-database", "diskcache", "redis", "psycopg", "sqlalchemy", "pandas", "dash"]
    out = {name: version(name) for name in [*names, "gunicorn"]}

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
    out["postgres"] = output(
        os.path.join(find_postgres_bindir() or "/nonexistent", "postgres"), "--version"
    )
    return out
