#!/usr/bin/env python3
"""Server-side values against ``dcc.Store``: a 1 MB DataFrame between two callbacks.

    python benchmarks/serverside.py [--rounds 15] [--url sqlite:///...]

Serves ``serverside_app.py`` with ``gunicorn -w 1`` and acts as the browser with HTTP
requests to ``/_dash-update-component``: one *round trip* is the writer callback (the browser
receives the token, or the frame's JSON) then the reader callback (the browser sends it back
and receives a summary). Rounds alternate between the two ways, so a noisy neighbour slows both
alike. Prints the median round trip of each, the bytes on the wire, and a PASS/FAIL line for
the target: with the token, the round trip is at least 5x faster. ``run.py`` runs it too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from tests.launcher import free_port, stop_process  # noqa: E402

TARGET = 5.0
NAME = "1 MB DataFrame between two callbacks: token >= 5x faster than dcc.Store"
SECRET = "benchmark-secret-" + "x" * 40


def _body(output: str, inputs: list[tuple[str, str, Any]]) -> dict[str, Any]:
    component, prop = output.split(".")
    return {
        "output": output,
        "outputs": {"id": component, "property": prop},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [],
        "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"],
    }


def _round_trip(http: Any, url: str, way: str, clicks: int) -> dict[str, float]:
    """Make the writer then the reader callback of ``way``; return the time and the bytes."""
    t0 = time.perf_counter()
    written = http.post(url, json=_body(f"{way}.data", [(f"write-{way}", "n_clicks", clicks)]))
    written.raise_for_status()
    held = written.json()["response"][way]["data"]
    read = http.post(url, json=_body(f"read-{way}.children", [(way, "data", held)]))
    read.raise_for_status()
    seconds = time.perf_counter() - t0
    if "25000 rows" not in read.text:
        raise RuntimeError(f"the {way} reader answered {read.text[:200]!r}")
    return {
        "seconds": seconds,
        "writer_response_bytes": len(written.content),
        "reader_request_bytes": len(read.request.body or b""),
        "reader_response_bytes": len(read.content),
    }


def measure(store_url: str, rounds: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Serve the app on ``store_url`` and return per way the median round trip and sizes."""
    import requests

    port = free_port()
    env = {**os.environ, "DASH_DATABASE_URL": store_url, "DASH_DATABASE_SECRET": SECRET}
    env["PYTHONPATH"] = os.pathsep.join([REPO, HERE])
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "1", "--timeout", "120"]
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            [*gunicorn, "-b", f"127.0.0.1:{port}", "serverside_app:server"],
            cwd=HERE,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for(base, proc, output)
            http = requests.Session()
            http.get(base + "/", timeout=30).raise_for_status()  # the session cookie
            url = base + "/_dash-update-component"
            runs: dict[str, list[dict[str, float]]] = {"token": [], "json": []}
            for way in runs:  # warm up: imports, the store's first write
                _round_trip(http, url, way, 1)
            for i in range(rounds):
                order = ["token", "json"] if i % 2 == 0 else ["json", "token"]
                for way in order:
                    runs[way].append(_round_trip(http, url, way, i + 2))
            log(f"serverside: {rounds} rounds on {store_url.split(':')[0]}")
        finally:
            stop_process(proc)
    return {
        way: {
            "median_s": statistics.median(r["seconds"] for r in samples),
            **{k: v for k, v in samples[-1].items() if k != "seconds"},
            "rounds": len(samples),
        }
        for way, samples in runs.items()
    }


def _wait_for(base: str, proc: subprocess.Popen[bytes], output: Any) -> None:
    import requests

    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(base + "/_dash-dependencies", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            output.seek(0)
            raise RuntimeError(f"gunicorn did not start: {output.read().decode()[-2000:]}")
        time.sleep(0.2)


def verdict(results: dict[str, Any]) -> tuple[str, str, str]:
    """Return the target's status, what it promises and the numbers."""
    token, json = results["token"], results["json"]
    speedup = json["median_s"] / token["median_s"]
    detail = (
        f"{token['median_s'] * 1e3:.1f} ms vs {json['median_s'] * 1e3:.1f} ms = {speedup:.1f}x; "
        f"to the browser {token['writer_response_bytes']:,} B vs "
        f"{json['writer_response_bytes']:,} B, back {token['reader_request_bytes']:,} B vs "
        f"{json['reader_request_bytes']:,} B"
    )
    status = "PASS" if speedup >= TARGET else "FAIL"
    return status, NAME, detail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--url", help="the store (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/serverside.sqlite"
        results = measure(url, args.rounds)
    for way, label in (("token", "server-side token"), ("json", "dcc.Store JSON")):
        r = results[way]
        print(
            f"{label:>18}: round trip {r['median_s'] * 1e3:8.1f} ms (median of {r['rounds']}); "
            f"writer response {r['writer_response_bytes']:>9,} B, reader request "
            f"{r['reader_request_bytes']:>9,} B"
        )
    status, name, detail = verdict(results)
    print(f"{status} {name}: {detail}")
    return 0 if status == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
