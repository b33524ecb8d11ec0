"""End to end: Dash callback round trips of ``examples/data_app.py`` under ``gunicorn -w 4``.

The load generator is a pool of Python threads in the benchmark's own process, each one a
browser: ``GET /`` (which sets the signed session cookie), then POSTs to
``/_dash-update-component`` as the page would. The request bodies are built from the app's
own ``/_dash-dependencies``, so they follow whatever callback ids the app declares.

Each client first runs the "Generate" callback (stores a 10,000-row DataFrame in its
session), then loops: nine chart callbacks (read the frame, bin a column, return a figure)
for every "Generate" (write a new frame). Every response is checked: HTTP 200 and the
expected output in the JSON.

All backends' apps run at once (idle workers cost no CPU) and get the load in turns, in
several rounds of a shuffled order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from servers import free_port, stop_process

ROWS = 10_000


def _outputs(spec: str) -> list[dict[str, str]]:
    parts = spec.strip(".").split("...") if spec.startswith("..") else [spec]
    out = []
    for part in parts:
        cid, prop = part.rsplit(".", 1)
        out.append({"id": cid, "property": prop})
    return out


def _body(
    dep: dict[str, Any], inputs: dict[str, Any], state: dict[str, Any], changed: list[str]
) -> dict[str, Any]:
    outputs = _outputs(dep["output"])
    return {
        "output": dep["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [{**i, "value": inputs.get(f"{i['id']}.{i['property']}")} for i in dep["inputs"]],
        "state": [{**s, "value": state.get(f"{s['id']}.{s['property']}")} for s in dep["state"]],
        "changedPropIds": changed,
    }


def build_requests(base: str, session: Any) -> tuple[Any, Any]:
    """Return functions making the 'generate' and the 'chart' request bodies."""
    deps = session.get(base + "/_dash-dependencies", timeout=30).json()
    load = next(d for d in deps if "status.children" in d["output"])
    chart = next(d for d in deps if "chart.figure" in d["output"])

    def generate(clicks: int) -> dict[str, Any]:
        return _body(
            load, {"generate.n_clicks": clicks}, {"row-count.value": ROWS}, ["generate.n_clicks"]
        )

    def draw(bins: int) -> dict[str, Any]:
        return _body(chart, {"column.value": "price", "bins.value": bins}, {}, ["bins.value"])

    return generate, draw


class Client:
    """One browser: its cookie jar and its request bodies."""

    def __init__(self, base: str) -> None:
        import requests

        self.base = base
        self.url = base + "/_dash-update-component"
        self.http = requests.Session()
        self.http.get(base + "/", timeout=60).raise_for_status()
        self.generate, self.draw = build_requests(base, self.http)
        self.http.post(self.url, json=self.generate(1), timeout=120).raise_for_status()
        self.i = 0

    def round_trip(self) -> tuple[float, str]:
        """Make one callback request; return its latency and "" or what was wrong."""
        self.i += 1
        if self.i % 10 == 0:
            body, expect = self.generate(1 + self.i // 10), f"{ROWS} rows"
        else:
            body, expect = self.draw(5 + 5 * (self.i % 20)), f"Rows: {ROWS}."
        t0 = time.perf_counter()
        try:
            r = self.http.post(self.url, json=body, timeout=120)
            wrong = "" if r.status_code == 200 and expect in r.text else f"HTTP {r.status_code}"
        except Exception as exc:
            wrong = f"{type(exc).__name__}: {exc}"
        return time.perf_counter() - t0, wrong


class App:
    """``examples/data_app.py`` under ``gunicorn -w 4`` on one store."""

    def __init__(self, repo: str, venv_bin: str, url: str, log_path: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            {
                "DASH_DATABASE_URL": url,
                "DASH_DATABASE_SECRET": "benchmark-secret-" + "x" * 40,
                "PYTHONPATH": repo,
            }
        )
        self.log = open(log_path, "w")  # noqa: SIM115 - closed by stop()
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [
                os.path.join(venv_bin, "gunicorn"),
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "120",
                "examples.data_app:server",
            ],
            cwd=repo,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.clients: list[Client] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.seconds = 0.0

    def wait_ready(self, seconds: float = 120) -> None:
        import requests

        deadline = time.monotonic() + seconds
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with code {self.proc.returncode}; see {self.log_path}"
                )
            try:
                if requests.get(self.base + "/", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not answer within {seconds} s; see {self.log_path}"
                )
            time.sleep(0.2)

    def drive(self, seconds: float, record: bool) -> None:
        """Let every client make round trips for ``seconds``; keep them when ``record``."""
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def run(client: Client) -> None:
            mine: list[float] = []
            bad: list[str] = []
            while time.perf_counter() < stop_at:
                latency, wrong = client.round_trip()
                mine.append(latency)
                if wrong:
                    bad.append(wrong)
            if record:
                with lock:
                    self.latencies.extend(mine)
                    self.errors.extend(bad)

        threads = [threading.Thread(target=run, args=(c,)) for c in self.clients]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if record:
            self.seconds += time.perf_counter() - t0

    def stats(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        n = len(lat)

        def q(p: float) -> float | None:
            return lat[min(n - 1, int(p * n))] if n else None

        return {
            "round_trips": n,
            "seconds": self.seconds,
            "per_second": n / self.seconds if self.seconds else 0.0,
            "p50_s": q(0.50),
            "p99_s": q(0.99),
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else "",
            "clients": len(self.clients),
        }

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, timeout=30)
        self.log.close()


def run_all(
    repo: str,
    venv_bin: str,
    targets: list[tuple[str, str]],
    seconds: float,
    warmup: float,
    clients: int,
    rounds: int,
    log_dir: str,
    log: Any = print,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Start one gunicorn per (name, url) at once, then drive them in turn: ``rounds`` rounds,
    each giving every app ``seconds / rounds`` of load in a new random order, so a change in
    the machine's load falls on all of them alike. Return stats and errors by name."""
    import random

    apps: dict[str, App] = {}
    failed: dict[str, str] = {}
    try:
        for name, url in targets:
            apps[name] = App(repo, venv_bin, url, os.path.join(log_dir, f"gunicorn-{name}.log"))
        for name in list(apps):
            try:
                app = apps[name]
                app.wait_ready()
                app.clients = [Client(app.base) for _ in range(clients)]
                app.drive(warmup, record=False)
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
                apps.pop(name).stop()
        order = list(apps)
        rng = random.Random(8)
        for r in range(rounds):
            rng.shuffle(order)
            log(f"end to end: round {r + 1}/{rounds} ({', '.join(order)})")
            for name in order:
                apps[name].drive(seconds / rounds, record=True)
        return {name: app.stats() for name, app in apps.items()}, failed
    finally:
        for app in apps.values():
            app.stop()


if __name__ == "__main__":  # a manual smoke test: python e2e.py URL...
    here = os.path.dirname(os.path.abspath(__file__))
    print(
        run_all(
            os.path.dirname(here),
            os.path.dirname(sys.executable),
            [(f"app{i}", url) for i, url in enumerate(sys.argv[1:])],
            4,
            1,
            8,
            2,
            tempfile.gettempdir(),
        )
    )
