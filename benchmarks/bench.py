"""The orchestrator: runs inside ``benchmarks/.venv`` (``run.py`` puts it there).

It starts redis-server and PostgreSQL, one worker process per store (see ``worker.py``),
sends them the workloads in an interleaved order (every repetition visits every store in a
new shuffled order, so slow drifts of the machine's load fall on all stores alike), then
writes the report (``report.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import servers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAIN_PY = os.path.join(HERE, ".venv", "bin", "python")
V1_PY = os.path.join(HERE, ".venv-v1", "bin", "python")

BASIC = ["small", "dict10k", "large", "threads", "procs"]
# Workloads timed on one thread, run with the worker and the servers on one CPU (see place()).
SINGLE_CPU = {"small", "dict10k", "large", "list", "delete", "compression"}


class Settings:
    def __init__(self, quick: bool, e2e: bool) -> None:
        self.quick = quick
        self.e2e = e2e
        self.reps = 2 if quick else 7
        self.proc_reps = 1 if quick else 3
        self.sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
        self.n_reps = 2 if quick else 5
        self.list_ops, self.delete_ops = (20, 10) if quick else (50, 50)
        # Workloads 1-2 run in this many rounds per repetition, each round visiting every store
        # (in a new order) with 1/rounds of the sessions: the machine's speed drifts over
        # seconds, and shorter turns spread that drift evenly over the stores.
        self.small_rounds = 1 if quick else 5
        self.call_budget_s = 0.5  # per store, workload and repetition: stop calling after
        self.total_budget_s = 2.0 if quick else 3.0  # per store, workload and N
        # A store whose median call took over slow_s at one N is called once at the next N,
        # or not at all when that call would take over skip_s (estimated linearly in N).
        self.slow_s, self.skip_s = 0.3, 20.0
        self.mem_sizes_mb = [1, 10] if quick else [1, 100]
        # Seconds of recorded load per backend, in e2e_rounds turns, after a warm-up.
        self.e2e_seconds, self.e2e_warmup = (2.0, 1.0) if quick else (12.0, 2.0)
        self.e2e_rounds = 1 if quick else 4
        # The quick run drives only the default backend end to end (gunicorn takes ~10 s to
        # start four workers on a busy 2-core machine).
        self.e2e_backends = ["dd-sqlite"] if quick else ["dd-sqlite", "dd-redis", "dd-postgres"]
        self.e2e_clients = 8


# -- the stores ------------------------------------------------------------------------------

# (id, label, what it is); the order of the tables.
STORES = [
    ("dict", "plain dict", "in-memory ceiling: the objects themselves, no serialization"),
    ("dd-memory", "dash_database memory", 'this project, DashDatabase(":memory:")'),
    ("dd-sqlite", "dash_database sqlite", "this project, DashDatabase(path): the default"),
    ("dd-redis", "dash_database redis", "this project, redis://127.0.0.1:PORT/N"),
    (
        "dd-postgres",
        "dash_database postgres",
        "this project, postgresql+psycopg://postgres@127.0.0.1:PORT/DB",
    ),
    ("v1", "dash-database 1.0", "dash-database==1.0 from PyPI, DashDatabase(path)"),
    ("sqlitedict", "sqlitedict", "raw SqliteDict(path, autocommit=True)"),
    ("diskcache", "diskcache", "diskcache.Cache(dir), tag=session"),
    ("sqlite3", "sqlite3 WAL", "raw sqlite3, WAL, synchronous=NORMAL (embedded limit)"),
    ("redis-py", "redis-py hashes", "raw redis-py client, one hash per session"),
    ("psycopg", "psycopg", "raw psycopg 3 upsert/select (PostgreSQL limit)"),
]
OURS = ["dd-memory", "dd-sqlite", "dd-redis", "dd-postgres"]
REDIS_DB = {"dd-redis": 0, "redis-py": 1}
PHASE_INDEX = {"main": 0, "mem": 1}


class Env:
    """Where each store keeps its data in each phase."""

    def __init__(self, tmp: str, redis_port: int | None, pg_port: int | None) -> None:
        self.tmp, self.redis_port, self.pg_port = tmp, redis_port, pg_port

    def phase_index(self, phase: str) -> int:
        if phase in PHASE_INDEX:
            return PHASE_INDEX[phase]
        return 2 + [1_000, 10_000, 100_000].index(int(phase[1:]))

    def redis_db(self, store: str, phase: str) -> int:
        return 2 * self.phase_index(phase) + REDIS_DB[store]

    def pg_db(self, phase: str) -> str:
        return f"bench_{phase}"

    def config(self, store: str, phase: str) -> dict[str, Any]:
        path = os.path.join(self.tmp, f"{phase}-{store}")
        if store == "dict":
            return {"kind": "dict"}
        if store == "dd-memory":
            return {"kind": "dash_database", "backend": "memory", "location": ":memory:"}
        if store == "dd-sqlite":
            return {"kind": "dash_database", "backend": "sqlite", "location": path + ".sqlite"}
        if store == "dd-redis":
            return {
                "kind": "dash_database",
                "backend": "redis",
                "location": f"redis://127.0.0.1:{self.redis_port}/{self.redis_db(store, phase)}",
            }
        if store == "dd-postgres":
            return {
                "kind": "dash_database",
                "backend": "postgres",
                "location": f"postgresql+psycopg://postgres@127.0.0.1:{self.pg_port}/"
                f"{self.pg_db(phase)}",
            }
        if store == "v1":
            return {"kind": "dash_database_v1", "location": path + ".sqlite"}
        if store == "sqlitedict":
            return {"kind": "sqlitedict", "location": path + ".sqlite"}
        if store == "diskcache":
            return {"kind": "diskcache", "location": path}
        if store == "sqlite3":
            return {"kind": "sqlite3", "location": path + ".sqlite"}
        if store == "redis-py":
            return {
                "kind": "redis",
                "location": f"redis://127.0.0.1:{self.redis_port}/{self.redis_db(store, phase)}",
            }
        if store == "psycopg":
            return {
                "kind": "psycopg",
                "location": f"postgresql://postgres@127.0.0.1:{self.pg_port}/{self.pg_db(phase)}",
            }
        raise ValueError(store)

    def prepare(self, phase: str) -> None:
        if self.pg_port:
            servers.create_database(self.pg_port, self.pg_db(phase))

    def discard(self, phase: str) -> None:
        """Free what the stores of ``phase`` hold (files, Redis databases, a PG database)."""
        for name in os.listdir(self.tmp):
            if name.startswith(f"{phase}-"):
                full = os.path.join(self.tmp, name)
                if os.path.isdir(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.remove(full)
        if self.redis_port:
            for store in REDIS_DB:
                servers.flush_redis_db(self.redis_port, self.redis_db(store, phase))
        if self.pg_port:
            servers.drop_database(self.pg_port, self.pg_db(phase))


class WorkerError(Exception):
    pass


class Worker:
    """One store's worker process and its line protocol."""

    def __init__(self, store: str, python: str, log_dir: str) -> None:
        self.store = store
        self.log = open(os.path.join(log_dir, f"worker-{store}.log"), "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [python, os.path.join(HERE, "worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=HERE,
        )
        self.lock = threading.Lock()

    def call(self, **msg: Any) -> Any:
        with self.lock:
            assert self.proc.stdin and self.proc.stdout
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"the worker of {self.store} exited (see its log)")
        reply = json.loads(line)
        if not reply["ok"]:
            self.log.write(reply.get("traceback", "") + "\n")
            self.log.flush()
            raise WorkerError(reply["error"])
        return reply["result"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# -- machine load ---------------------------------------------------------------------------


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class LoadSampler(threading.Thread):
    """Samples the whole machine's CPU use once a second while the benchmark runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        busy0, total0 = _cpu_times()
        while not self.stopped.wait(1.0):
            busy1, total1 = _cpu_times()
            if total1 > total0:
                self.samples.append((busy1 - busy0) / (total1 - total0))
            busy0, total0 = busy1, total1


def cpu_busy_for(seconds: float) -> float:
    busy0, total0 = _cpu_times()
    time.sleep(seconds)
    busy1, total1 = _cpu_times()
    return (busy1 - busy0) / max(1, total1 - total0)


# -- the run ---------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def backend_available(name: str) -> str | None:
    """Return why this project's ``name`` backend cannot run here, or None."""
    path = os.path.join(REPO, "dash_database", "backends", f"{name}.py")
    if not os.path.exists(path):
        return f"dash_database/backends/{name}.py does not exist"
    return None


def main(
    quick: bool,
    e2e: bool,
    out_dir: str,
    without: list[str] | None = None,
    command: str = "python benchmarks/run.py",
) -> int:
    settings = Settings(quick, e2e)
    t_start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    log_dir = os.path.join(out_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    meta: dict[str, Any] = {
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "mode": "quick" if quick else "full",
        "command": command,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "loadavg_start": os.getloadavg(),
    }
    log("measuring the machine's load before starting (2 s) ...")
    meta["cpu_busy_before"] = cpu_busy_for(2.0)
    sampler = LoadSampler()
    sampler.start()

    unavailable: dict[str, str] = {}
    known = [s for s, _, _ in STORES]
    for store in without or []:
        if store not in known:
            raise SystemExit(f"--without: unknown store {store!r}; the stores are {known}")
        unavailable[store] = "left out with --without"
    for store, name in (("dd-redis", "redis"), ("dd-postgres", "postgres")):
        why = backend_available(name)
        if why:
            unavailable[store] = why
    redis_server = pg_server = None
    try:
        redis_server = servers.start_redis()
    except Exception as exc:
        for s in ("dd-redis", "redis-py"):
            unavailable.setdefault(s, f"redis-server could not start: {exc}")
    try:
        pg_server = servers.start_postgres()
    except Exception as exc:
        for s in ("dd-postgres", "psycopg"):
            unavailable.setdefault(s, f"postgres could not start: {exc}")
    tmp = tempfile.mkdtemp(prefix="dash-db-bench-")
    env = Env(
        tmp, redis_server.port if redis_server else None, pg_server.port if pg_server else None
    )
    workers: dict[str, Worker] = {}
    results: dict[str, Any] = {
        "runs": {},
        "populate": {},
        "memory": {},
        "e2e": {},
        "skipped": {},
        "errors": {},
    }
    rng = random.Random(4)
    try:
        env.prepare("main")
        log("starting one worker per store ...")
        for store, _, _ in STORES:
            if store not in unavailable:
                workers[store] = Worker(store, V1_PY if store == "v1" else MAIN_PY, log_dir)
        multiprocess: dict[str, bool] = {}
        for store in list(workers):
            try:
                info = workers[store].call(
                    cmd="open", handle="main", config=env.config(store, "main")
                )
                multiprocess[store] = info["multiprocess"]
                if info.get("module"):
                    meta.setdefault("modules", {})[store] = info["module"]
            except WorkerError as exc:
                unavailable[store] = f"could not open: {exc}"
                workers.pop(store).stop()
        active = [s for s, _, _ in STORES if s in workers]

        def record(store: str, key: str, result: Any) -> None:
            results["runs"].setdefault(store, {}).setdefault(key, []).append(result)

        all_cpus = os.sched_getaffinity(0)
        server_pids = [srv.proc.pid for srv in (redis_server, pg_server) if srv is not None]

        def place(store: str, workload: str) -> None:
            # Timed workloads of one thread run with the store's worker and the servers on one
            # CPU: a round trip between two CPUs of a virtual machine costs a wake-up whose
            # price varies from run to run, and a worker that happened to share a CPU with the
            # server would answer faster than one that did not. One CPU gives every store the
            # same path. The threads and processes workloads get every CPU.
            cpus = {max(all_cpus)} if workload in SINGLE_CPU else all_cpus
            servers.pin([*server_pids, workers[store].proc.pid], cpus)

        def unpin() -> None:
            servers.pin([*server_pids, *(w.proc.pid for w in workers.values())], all_cpus)

        def run(store: str, key: str, **msg: Any) -> Any:
            place(store, msg["workload"])
            try:
                out = workers[store].call(cmd="run", **msg)
            except WorkerError as exc:
                results["errors"].setdefault(store, {}).setdefault(key, []).append(str(exc))
                log(f"  {store} {key}: ERROR {exc}")
                return None
            record(store, key, out)
            return out

        # 1-3, 6, 7: small values, 10 KB dicts, 1 MB values, threads, processes.
        for rep in range(settings.reps):
            log(f"basic workloads, repetition {rep + 1}/{settings.reps}")
            for workload in BASIC:
                if workload == "procs" and rep >= settings.proc_reps:
                    continue
                rounds = settings.small_rounds if workload in ("small", "dict10k") else 1
                for part in range(rounds):
                    order = active[:]
                    rng.shuffle(order)
                    for store in order:
                        if workload == "procs" and not multiprocess[store]:
                            continue
                        params = {"part": part, "parts": rounds}
                        run(
                            store,
                            workload,
                            handle="main",
                            workload=workload,
                            rep=rep,
                            params=params,
                        )

        # 3: the size and time trade-off of compression (in this project's memory worker: it
        # measures the serializer alone, not a store).
        if "dd-memory" in workers:
            for rep in range(settings.reps):
                run("dd-memory", "compression", handle="main", workload="compression", rep=rep)

        unpin()

        # 3: peak memory, in one fresh process per store (two at a time: only memory is
        # measured here, not time).
        env.prepare("mem")
        sizes_arg = ",".join(str(mb) for mb in settings.mem_sizes_mb)
        log(
            f"peak memory of storing and reading {sizes_arg} MB DataFrames, one fresh process "
            "per store ..."
        )

        def measure(store: str) -> None:
            python = V1_PY if store == "v1" else MAIN_PY
            try:
                out = subprocess.run(
                    [
                        python,
                        os.path.join(HERE, "worker.py"),
                        "--memory",
                        json.dumps(env.config(store, "mem")),
                        sizes_arg,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    cwd=HERE,
                    # A fixed mmap threshold turns off glibc's adaptive one: every block of
                    # 128 KiB or more is mapped afresh and unmapped when freed, so memory freed
                    # by one measurement cannot be reused unseen by the next.
                    env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"},
                )
                if out.returncode != 0:
                    raise RuntimeError(out.stderr.strip().splitlines()[-1])
                results["memory"][store] = json.loads(out.stdout)
            except Exception as exc:
                for mb in settings.mem_sizes_mb:
                    results["errors"].setdefault(store, {}).setdefault(f"memory{mb}", []).append(
                        f"{type(exc).__name__}: {exc}"
                    )
                log(f"  {store} memory: ERROR {exc}")

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(measure, active))
        env.discard("mem")

        # 4, 5: listing and delete-all in stores of N sessions x 10 keys.
        slow: dict[tuple[str, str], tuple[str, str]] = {}
        for n in settings.sizes:
            phase = f"n{n}"
            env.prepare(phase)
            log(f"N = {n}: populating every store ({n} sessions x 10 keys) ...")

            def populate(store: str, n: int = n, phase: str = phase) -> None:
                w = workers[store]
                try:
                    w.call(cmd="open", handle=phase, config=env.config(store, phase))
                    out = w.call(cmd="populate", handle=phase, n=n)
                    results["populate"].setdefault(store, {})[str(n)] = out
                except WorkerError as exc:
                    results["errors"].setdefault(store, {}).setdefault(f"populate{n}", []).append(
                        str(exc)
                    )
                    log(f"  {store} populate {n}: ERROR {exc}")

            # Two at a time: this machine has two cores. The slowest first. A store skipped at
            # this N for both workloads is not built.
            def skipped(store: str, workload: str) -> bool:
                return slow.get((store, workload), ("", ""))[0] == "skip"

            order = sorted(
                (s for s in active if not (skipped(s, "list") and skipped(s, "delete"))),
                key=lambda s: s != "diskcache",
            )
            for store in active:
                for workload in ("list", "delete"):
                    if skipped(store, workload):
                        results["skipped"].setdefault(store, {})[f"{workload}@{n}"] = slow[
                            (store, workload)
                        ][1]
            unpin()
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(populate, order))
            ready = [s for s in active if str(n) in results["populate"].get(s, {})]
            spent: dict[tuple[str, str], float] = {}
            for rep in range(settings.n_reps):
                log(f"N = {n}: list and delete-all, repetition {rep + 1}/{settings.n_reps}")
                for workload in ("list", "delete"):
                    order = ready[:]
                    rng.shuffle(order)
                    for store in order:
                        key = f"{workload}@{n}"
                        mode = slow.get((store, workload), ("", ""))[0]
                        if mode == "skip" or (mode == "once" and rep > 0):
                            continue
                        if spent.get((store, workload), 0.0) > settings.total_budget_s:
                            continue
                        ops = settings.list_ops if workload == "list" else settings.delete_ops
                        if mode == "once":
                            ops = 1
                        out = run(
                            store,
                            key,
                            handle=phase,
                            workload=workload,
                            rep=rep,
                            params={
                                "n": n,
                                "ops": ops,
                                "first": rep * ops,
                                "budget_s": settings.call_budget_s,
                            },
                        )
                        if out:
                            spent[(store, workload)] = (
                                spent.get((store, workload), 0.0) + sum(out["op_ns"]) / 1e9
                            )
            # Slow stores: one call at the next N, or none (see Settings).
            nxt = settings.sizes[settings.sizes.index(n) + 1] if n != settings.sizes[-1] else 0
            for store in ready:
                for workload in ("list", "delete"):
                    samples = [
                        x
                        for r in results["runs"].get(store, {}).get(f"{workload}@{n}", [])
                        for x in r["op_ns"]
                    ]
                    if samples and nxt:
                        samples.sort()
                        med = samples[len(samples) // 2] / 1e9
                        estimate = med * nxt / n
                        if estimate > settings.skip_s:
                            slow[(store, workload)] = (
                                "skip",
                                f"not run: {med:.2f} s per call at N={n:,}, "
                                f"estimated over {estimate:.0f} s at N={nxt:,}",
                            )
                        elif med > settings.slow_s:
                            slow[(store, workload)] = ("once", "")
            for store in active:
                with contextlib.suppress(WorkerError):
                    workers[store].call(cmd="close", handle=phase)
            env.discard(phase)

        for store in list(workers):
            workers.pop(store).stop()

        unpin()

        # 8: end to end under gunicorn.
        app = os.path.join(REPO, "examples", "data_app.py")
        if not settings.e2e:
            results["e2e_note"] = "skipped: --no-e2e"
        elif not os.path.exists(app):
            results["e2e_note"] = "skipped: examples/data_app.py does not exist"
            log("end to end: " + results["e2e_note"])
        else:
            import e2e

            targets = [("dd-sqlite", f"sqlite:///{os.path.join(tmp, 'e2e.sqlite')}")]
            if "dd-redis" not in unavailable and redis_server:
                targets.append(("dd-redis", f"redis://127.0.0.1:{redis_server.port}/15"))
            if "dd-postgres" not in unavailable and pg_server:
                env.prepare("e2e")
                targets.append(
                    (
                        "dd-postgres",
                        f"postgresql+psycopg://postgres@127.0.0.1:"
                        f"{pg_server.port}/{env.pg_db('e2e')}",
                    )
                )
            targets = [(s, u) for s, u in targets if s in settings.e2e_backends]
            log(
                f"end to end: starting gunicorn -w 4 examples.data_app:server on "
                f"{', '.join(s for s, _ in targets)} ..."
            )
            stats, failed = e2e.run_all(
                REPO,
                os.path.dirname(MAIN_PY),
                targets,
                settings.e2e_seconds,
                settings.e2e_warmup,
                settings.e2e_clients,
                settings.e2e_rounds,
                log_dir,
                log,
            )
            results["e2e"].update(stats)
            for store, why in failed.items():
                results["errors"].setdefault(store, {}).setdefault("e2e", []).append(why)
                log(f"  {store} e2e: ERROR {why}")
    finally:
        for w in workers.values():
            w.stop()
        for server in (redis_server, pg_server):
            if server is not None:
                server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        sampler.stopped.set()

    t_end = time.time()
    meta["seconds"] = t_end - t_start
    meta["loadavg_end"] = os.getloadavg()
    meta["cpu_busy_mean"] = sum(sampler.samples) / len(sampler.samples) if sampler.samples else None
    meta["settings"] = vars(settings)
    meta["versions"] = versions()
    import report

    return report.write(meta, STORES, unavailable, results, out_dir)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {}
    for name in (
        "dash-database",
        "sqlitedict",
        "diskcache",
        "redis",
        "psycopg",
        "sqlalchemy",
        "pandas",
        "numpy",
        "dash",
        "gunicorn",
    ):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "?"
    try:
        out["dash-database (v1 venv)"] = subprocess.run(
            [
                V1_PY,
                "-c",
                "from importlib.metadata import version; print(version('dash-database'))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=HERE,  # not the repository root, whose dash_database.egg-info would answer
        ).stdout.strip()
    except Exception:
        out["dash-database (v1 venv)"] = "?"
    try:
        head = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--", "dash_database"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        out["repository"] = head + (" with uncommitted changes in dash_database/" if dirty else "")
    except Exception:
        out["repository"] = "?"
    for exe, flag in (
        ("redis-server", "--version"),
        (os.path.join(servers.PG_BIN, "postgres"), "--version"),
    ):
        try:
            out[os.path.basename(exe)] = subprocess.run(
                [exe, flag], capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except Exception:
            out[os.path.basename(exe)] = "?"
    return out
