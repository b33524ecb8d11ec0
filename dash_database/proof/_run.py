"""One store's proof: the load, each fault during the load, the final read-back and checks."""

from __future__ import annotations

import importlib
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .. import BackendError
from ..dash import COOKIE_NAME
from . import SHARED, _disk
from ._clients import Browser, Record, Task, TaskResult, check, run_task
from ._gunicorn import Gunicorn
from ._stores import Store

__all__ = ["Options", "Phase", "StoreReport", "prove"]


@dataclass
class Options:
    sessions: int = 200
    rounds: int = 2
    clients: int = 3
    threads: int = 8
    workers: int = 4
    lead: float = 0.5  # seconds of load before a fault
    hold: float = 2.0  # seconds a fault lasts (the server down, the disk full)
    tail: float = 2.0  # seconds of load after a fault is cleared
    secret: str = ""
    keep: bool = False  # keep the working directory (the gunicorn log, the SQLite file)


@dataclass
class Phase:
    """The figures of one phase: the load, or the load during one fault."""

    name: str
    sessions: int = 0
    requests: int = 0
    acked: int = 0
    failed_outside: int = 0
    errors_during: int = 0
    error_statuses: dict[str, int] = field(default_factory=dict)
    recovery_seconds: float | None = None
    recovered: bool = True
    counter_expected: int = 0
    counter_unsure: int = 0
    counter_got: int = 0
    note: str = ""


@dataclass
class StoreReport:
    store: str
    phases: list[Phase] = field(default_factory=list)
    sessions: int = 0
    requests: int = 0
    acked: int = 0
    lost: int = 0
    cross_session: int = 0
    corrupt: int = 0
    integrity_check: str = ""
    backend_errors_logged: int = 0
    other_errors_logged: list[str] = field(default_factory=list)
    thread_errors_logged: list[str] = field(default_factory=list)
    secrets_in_log: int = 0
    failed_outside: int = 0
    checks: list[_disk.Check] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _Fault(Protocol):
    hold: float  # seconds between inject and clear
    recovery: float  # seconds the fault itself took to heal (a worker to be replaced)

    def inject(self) -> None: ...
    def clear(self) -> None: ...


class _KillWorker:
    hold = 0.0

    def __init__(self, app: Gunicorn) -> None:
        self.app, self.recovery = app, 0.0

    def inject(self) -> None:
        self.recovery = self.app.kill_worker()

    def clear(self) -> None:
        pass


class _Outage:
    recovery = 0.0

    def __init__(self, store: Store, hold: float) -> None:
        self.store, self.hold = store, hold

    def inject(self) -> None:
        self.store.stop_server()

    def clear(self) -> None:
        self.store.start_server()


def _phase(
    pool: Executor, app: Gunicorn, name: str, options: Options, fault: _Fault | None = None
) -> tuple[Phase, list[Browser]]:
    """Run the load of one phase (with ``fault`` injected during it); return its figures."""
    stop_file = None
    if fault is not None:
        stop_file = str(app.log_path.parent / f"stop-{name.replace(' ', '-')}")
    shares = [options.sessions // options.clients] * options.clients
    for i in range(options.sessions % options.clients):
        shares[i] += 1
    tasks = [
        Task(
            app.url, f"{name}{i}", f"counter-{name}", options.threads, n, options.rounds, stop_file
        )
        for i, n in enumerate(shares)
    ]
    futures = [pool.submit(run_task, task) for task in tasks]
    t_fault = t_clear = float("inf")
    if fault is not None and stop_file is not None:
        try:
            time.sleep(options.lead)
            t_fault = time.monotonic()
            fault.inject()
            time.sleep(fault.hold)
            fault.clear()
            t_clear = time.monotonic()
            time.sleep(options.tail)
        finally:
            Path(stop_file).touch()  # the clients stop, whatever happened here
    results: list[TaskResult] = [f.result() for f in futures]
    records = [r for result in results for r in result.records]
    browsers = [b for result in results for b in result.browsers]
    phase = Phase(name, len(browsers), len(records), sum(r.increments for r in results))
    phase.counter_expected = phase.acked
    phase.counter_unsure = sum(len(b.unacked) for b in browsers)
    _window(phase, records, t_fault, t_clear, fault.recovery if fault else 0.0)
    return phase, browsers


def _window(
    phase: Phase, records: list[Record], t_fault: float, t_clear: float, respawn: float
) -> None:
    failed = [r for r in records if not r.ok]
    during = [r for r in failed if r.end >= t_fault]
    phase.failed_outside = len(failed) - len(during)
    if t_fault == float("inf"):
        return
    phase.errors_during = len(during)
    names = {0: "no answer", -1: "not JSON"}
    phase.error_statuses = dict(Counter(names.get(r.status, str(r.status)) for r in during))
    last_end = max((r.end for r in during), default=t_clear)
    last_start = max((r.start for r in during), default=t_clear)
    phase.recovered = any(r.ok and r.start > last_start for r in records)
    phase.recovery_seconds = round(max(respawn, last_end - t_clear, 0.0), 2)


_CHAINED = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)


def _final_errors(log: str) -> list[tuple[str, str, bool]]:
    """Return (class name, line, logged by Flask for a request) for the last exception of
    each traceback in ``log``."""
    lines, found, chained = log.splitlines(), [], False
    for i, line in enumerate(lines):
        if line != "Traceback (most recent call last):":
            continue
        # A chain's later tracebacks belong to the request its first one was logged for.
        request = chained or (i > 0 and "ERROR in app: Exception on" in lines[i - 1])
        j = i + 1
        while j < len(lines) and (not lines[j] or lines[j][0].isspace()):
            j += 1
        if j >= len(lines):
            break
        k = j + 1  # past the message's own further lines
        while k < len(lines) and (not lines[k].strip() or lines[k][0].isspace()):
            k += 1
        cause = k < len(lines) and lines[k].strip() in _CHAINED
        chained = request and cause
        if not cause:
            found.append((lines[j].split(":", 1)[0], lines[j], request))
    return found


def _is_backend_error(name: str) -> bool:
    module, _, attribute = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, BackendError)


def _scan_log(report: StoreReport, log: str, secret: str, browsers: list[Browser]) -> None:
    """Count the errors the app logged (the last of each chain), and any secret or id."""
    for name, line, request in _final_errors(log):
        if not request:
            report.thread_errors_logged.append(line[:160])
        elif _is_backend_error(name):
            report.backend_errors_logged += 1
        else:
            report.other_errors_logged.append(line[:160])
    ids = {v for b in browsers for v in b.cookies.values()}
    names = {v[: len("dds1.") + 43] for v in ids}
    report.secrets_in_log = (secret in log) + sum(1 for v in ids | names if v and v in log)


def prove(
    kind: str, pool: Executor, options: Options, given_url: str | None, say: Callable[[str], None]
) -> StoreReport:
    """Run the whole proof on one store; ``say`` reports progress."""
    report = StoreReport(kind)
    workdir = Path(tempfile.mkdtemp(prefix=f"dash_database-proof-{kind}-"))
    store = Store(kind, workdir, given_url)
    browsers: list[Browser] = []
    try:
        with Gunicorn(store.url, options.secret, options.workers, workdir) as app:
            say(f"{kind}: gunicorn -w {options.workers} on {app.url}, load")
            phase, more = _phase(pool, app, "load", options)
            report.phases.append(phase)
            browsers += more
            faults: list[tuple[str, _Fault]] = [("SIGKILL a worker", _KillWorker(app))]
            if kind == "sqlite":
                faults.append(("full disk", _disk.FullDisk(app.worker_pids, options.hold)))
            elif store.server is not None:
                faults.append((f"{kind} stop and restart", _Outage(store, options.hold)))
            else:
                report.skipped.append(f"{kind} stop and restart: the server was given by URL")
            for name, fault in faults:
                say(f"{kind}: {name}")
                phase, more = _phase(pool, app, name, options, fault)
                report.phases.append(phase)
                browsers += more
        say(f"{kind}: reading back every session from the store")
        _read_back(store, options.secret, browsers)
        _scan_log(report, app.log(), options.secret, browsers)
        with store.open(options.secret) as db:
            for phase in report.phases:
                phase.counter_got = db.get_user_value(SHARED, f"counter-{phase.name}", 0)
        if store.path is not None:
            with sqlite3.connect(store.path) as conn:
                report.integrity_check = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
            conn.close()
            say(f"{kind}: read-only directory, corrupted files")
            report.checks = [_disk.read_only_directory(), *_disk.corrupted_files()]
    finally:
        store.remove()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report.sessions = sum(p.sessions for p in report.phases)
    report.requests += sum(p.requests for p in report.phases)
    report.failed_outside += sum(p.failed_outside for p in report.phases)
    report.acked = sum(len(b.acked) for b in browsers)
    report.lost = sum(len(b.lost) for b in browsers)
    report.cross_session = sum(b.cross for b in browsers)
    report.corrupt = sum(b.corrupt for b in browsers)
    return report


def _read_back(store: Store, secret: str, browsers: list[Browser]) -> None:
    """Read every session that wrote back from the store itself, not through the app."""
    with store.open(secret) as db:
        for browser in browsers:
            if not (browser.acked or browser.unacked):
                continue
            ids = [v for k, v in browser.cookies.items() if k.startswith(COOKIE_NAME)]
            if len(ids) != 1:  # no cookie, no session: every acknowledged write is lost
                browser.lost.update(browser.acked)
                continue
            check(browser, dict(db.session(ids[0])))
