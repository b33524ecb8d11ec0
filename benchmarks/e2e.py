"""End to end: Dash callback round trips of ``examples/data_app.py`` under gunicorn.

Two measurements:

- the app under ``gunicorn -w 4`` on each backend, 8 clients;
- the library's overhead: the app on SQLite and the same app with no server-side store
  (``nostore_app.py``: each browser's values stay objects in a dict of the one worker), each
  under ``gunicorn -w 1`` with 2 clients, so the worker is never idle and the time per round
  trip is the server's.

Each client is a Python thread acting as a browser: ``GET /`` (which sets the signed session
cookie), one "Generate" callback (stores a 10,000-row DataFrame), then nine chart callbacks
(read the frame, return a histogram) per "Generate". The request bodies are built from the
app's own ``/_dash-dependencies``. Every response is checked: HTTP 200 and the row count in it.
The apps of one measurement run at once and take the load in turns, in rounds of a new order.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from typing import Any, Callable

from tests.launcher import free_port, stop_process

ROWS = 10_000
SECRET = "benchmark-secret-" + "x" * 40


def _body(dep: dict[str, Any], values: dict[str, Any], changed: str) -> dict[str, Any]:
    """The JSON the Dash renderer POSTs for the callback ``dep``."""
    spec = dep["output"]
    parts = spec.strip(".").split("...") if spec.startswith("..") else [spec]
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1))) for part in parts]

    def fill(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in items]

    return {
        "output": spec,
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": fill(dep["inputs"]),
        "state": fill(dep["state"]),
        "changedPropIds": [changed],
    }


class Client:
    """One browser: its cookie jar and the two callbacks it makes."""

    def __init__(self, base: str, marker: str | None) -> None:
        import requests

        self.http = requests.Session()
        self.url, self.marker, self.i = base + "/_dash-update-component", marker, 0
        self.http.get(base + "/", timeout=60).raise_for_status()
        deps = self.http.get(base + "/_dash-dependencies", timeout=30).json()
        self.load = next(d for d in deps if "status.children" in d["output"])
        self.chart = next(d for d in deps if "chart.figure" in d["output"])
        self.round_trip()

    def round_trip(self) -> tuple[float, str]:
        """Make one callback request; return its latency and "" or what was wrong."""
        if self.i % 10 == 0:
            values = {"generate.n_clicks": 1 + self.i // 10, "row-count.value": ROWS}
            body = _body(self.load, values, "generate.n_clicks")
        else:
            values = {"column.value": "price", "bins.value": 5 + 5 * (self.i % 20)}
            body = _body(self.chart, values, "bins.value")
        self.i += 1
        t0 = time.perf_counter()
        try:
            r = self.http.post(self.url, json=body, timeout=120)
            wrong = "" if r.status_code == 200 else f"HTTP {r.status_code}"
            if not wrong and str(ROWS) not in r.text and f"{ROWS:,}" not in r.text:
                wrong = f"no row count in the response: {r.text[:200]}"
            if not wrong and self.marker and r.headers.get(self.marker, "0") == "0":
                wrong = f"the response has no {self.marker} header: the store was not bypassed"
        except Exception as exc:
            wrong = f"{type(exc).__name__}: {exc}"
        return time.perf_counter() - t0, wrong


class App:
    """One gunicorn serving ``module``, with its clients and what they recorded."""

    def __init__(
        self,
        repo: str,
        venv_bin: str,
        module: str,
        url: str,
        workers: int,
        clients: int,
        log_path: str,
    ) -> None:
        self.port, self.n_clients, self.log_path = free_port(), clients, log_path
        self.marker = "X-Sessions-In-Dict" if module.startswith("nostore_app") else None
        env = {**os.environ, "DASH_DATABASE_URL": url, "DASH_DATABASE_SECRET": SECRET}
        env["PYTHONPATH"] = os.pathsep.join([repo, os.path.join(repo, "benchmarks")])
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                [
                    os.path.join(venv_bin, "gunicorn"),
                    "-w",
                    str(workers),
                    "--timeout",
                    "120",
                    "-b",
                    f"127.0.0.1:{self.port}",
                    module,
                ],
                cwd=repo,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.clients: list[Client] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.seconds = 0.0

    def connect(self, warmup: float) -> None:
        """Wait until gunicorn answers, then open the clients and warm up."""
        import requests

        base, deadline = f"http://127.0.0.1:{self.port}", time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                if requests.get(base + "/", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within 120 s; see {self.log_path}")
            time.sleep(0.2)
        self.clients = [Client(base, self.marker) for _ in range(self.n_clients)]
        self.drive(warmup, record=False)

    def drive(self, seconds: float, record: bool = True) -> None:
        """Let every client make round trips for ``seconds``; keep them when ``record``."""
        stop_at, lock = time.perf_counter() + seconds, threading.Lock()

        def run(client: Client) -> None:
            mine = []
            while time.perf_counter() < stop_at:
                mine.append(client.round_trip())
            if record:
                with lock:
                    self.latencies += [latency for latency, _ in mine]
                    self.errors += [wrong for _, wrong in mine if wrong]

        threads = [threading.Thread(target=run, args=(c,)) for c in self.clients]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.seconds += (time.perf_counter() - t0) if record else 0.0

    def stats(self) -> dict[str, Any]:
        lat, n = sorted(self.latencies), len(self.latencies)
        return {
            "round_trips": n,
            "seconds": self.seconds,
            "per_second": n / self.seconds if self.seconds else 0.0,
            "p50_s": lat[n // 2] if n else None,
            "p99_s": lat[min(n - 1, int(0.99 * n))] if n else None,
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else "",
            "clients": self.n_clients,
        }


def measure(
    apps: dict[str, Callable[[], App]], settings: Any, log: Callable[[str], None]
) -> dict[str, Any]:
    """Start every app at once, then give each ``e2e_seconds`` of load in turns."""
    running: dict[str, App] = {}
    out: dict[str, Any] = {}
    try:
        for name, start in apps.items():
            try:
                running[name] = start()
            except OSError as exc:  # gunicorn missing from the venv
                out[name] = {"failed": f"{type(exc).__name__}: {exc}"}
        for name in list(running):
            try:
                running[name].connect(settings.e2e_warmup)
            except Exception as exc:
                out[name] = {"failed": f"{type(exc).__name__}: {exc}"}
                stop_process(running.pop(name).proc)
        order, rng = list(running), random.Random(8)
        for r in range(settings.e2e_rounds):
            rng.shuffle(order)
            log(f"end to end: round {r + 1}/{settings.e2e_rounds} ({', '.join(order)})")
            for name in order:
                running[name].drive(settings.e2e_seconds / settings.e2e_rounds)
        return {**out, **{name: app.stats() for name, app in running.items()}}
    finally:
        for app in running.values():
            stop_process(app.proc)


def run(
    repo: str,
    venv_bin: str,
    urls: dict[str, str],
    settings: Any,
    log_dir: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Return the stats of ``gunicorn -w 4`` per backend, and of the overhead pair."""

    def app(name: str, module: str, url: str, workers: int, clients: int) -> Callable[[], App]:
        log_path = os.path.join(log_dir, f"gunicorn-{name}.log")
        return lambda: App(repo, venv_bin, module, url, workers, clients, log_path)

    data_app = "examples.data_app:server"
    log(f"end to end: gunicorn -w 4 {data_app} on {', '.join(urls)} ...")
    four = measure({s: app(s, data_app, u, 4, 8) for s, u in urls.items()}, settings, log)
    log("end to end: the library's overhead, gunicorn -w 1, SQLite and no store ...")
    sqlite = urls["dd-sqlite"].replace(".sqlite", "-w1.sqlite")
    pair = {
        "dd-sqlite": app("w1-sqlite", data_app, sqlite, 1, 2),
        "no store": app("w1-no-store", "nostore_app:server", "memory://", 1, 2),
    }
    return {"w4": four, "overhead": measure(pair, settings, log)}
