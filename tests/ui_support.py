"""Helpers for the Dash tests: loading the example apps, callback requests, browsers."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from dash.testing.browser import Browser
from selenium.webdriver import ChromeOptions
from selenium.webdriver.common.by import By

from tests.launcher import unique_name
from tests.support import require

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: Seconds a browser waits for the page to show what a test expects.
TIMEOUT = 10
#: A fixed secret for the tests (the examples read it from DASH_DATABASE_SECRET).
SECRET = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz"


def app_cookie(module: str, prefix: str = "/") -> str:
    """Return the default session cookie name of an app defined in ``module`` (the last part
    of its name, or its file name when run as a script) and served under ``prefix``."""
    digest = hashlib.sha256(f"{module}|{prefix}".encode()).hexdigest()[:8]
    return f"dash_database_session_{digest}"


#: The session cookie of examples/data_app.py, run as a script or by gunicorn.
DATA_APP_COOKIE = app_cookie("data_app")


def require_chromium() -> None:
    """Skip (fail on CI) when Chromium or its driver is missing."""
    require(
        shutil.which("chromedriver") is not None
        and any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")),
        "the browser tests need Chromium and chromedriver: apt-get install chromium "
        "chromium-driver",
    )


class _OwnPortOptions(ChromeOptions):
    """Chrome options that let each browser pick its own DevTools port.

    dash.testing before Dash 3 starts every Chrome with ``--remote-debugging-port=9222``, so a
    second browser opened at the same time attaches to the first one (same cookies, same
    storage) and two "users" would silently be one.
    """

    def add_argument(self, argument: str) -> None:
        if argument.startswith("--remote-debugging-port="):
            argument = "--remote-debugging-port=0"
        super().add_argument(argument)


@contextmanager
def browser(download_path: Path) -> Iterator[Browser]:
    """Open a headless Chromium driven by dash.testing, with its own cookies and storage."""
    require_chromium()
    with Browser(
        browser="chrome",
        headless=True,
        options=[_OwnPortOptions()],
        download_path=str(download_path),
    ) as opened:
        yield opened


@contextmanager
def server_process(
    args: Sequence[str], workdir: Path, env: dict[str, str], url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python <args>`` in ``workdir`` until the Dash app at ``url`` answers; stop it
    (by its pid) on exit. Its output goes to ``workdir/server.log``."""
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=workdir,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url + "/_dash-dependencies", timeout=5)
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server did not start: {log_path.read_text()}"
                    ) from None
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: The worker processes of every gunicorn the tests start.
WORKERS = 4


@dataclass
class Gunicorn:
    """A running ``gunicorn -w 4``: its address, working directory and master's pid."""

    url: str
    workdir: Path
    pid: int
    store_url: str | None = None

    def worker_pids(self, path: str) -> set[str]:
        """Return the pids of the workers that served a request for ``path``."""
        lines = (self.workdir / "access.log").read_text().splitlines()
        return {line.split()[0] for line in lines if f" {path} " in line}

    def post(self, client: requests.Session, body: dict[str, Any]) -> requests.Response:
        return client.post(f"{self.url}/_dash-update-component", json=body, timeout=TIMEOUT)


@contextmanager
def gunicorn(
    target: str,
    workdir: Path,
    env: dict[str, str],
    preload: bool = False,
    workers: int = WORKERS,
) -> Iterator[Gunicorn]:
    """Serve the WSGI app ``target`` (``"module:server"``) with ``gunicorn -w 4`` from
    ``workdir`` until the block ends. ``preload``: import the app once, before the workers
    fork (the store reopens its connections in each worker), which makes start-up cheaper."""
    require(
        importlib.util.find_spec("gunicorn") is not None,
        "the gunicorn tests need gunicorn: pip install gunicorn",
    )
    port = free_port()
    args = ["-m", "gunicorn", *(["--preload"] if preload else []), "--workers", str(workers)]
    args += ["--bind", f"127.0.0.1:{port}", "--chdir", str(workdir)]
    args += ["--access-logfile", str(workdir / "access.log")]
    args += ["--access-logformat", "%(p)s %(m)s %(U)s %(s)s", target]
    url = f"http://127.0.0.1:{port}"
    with server_process(args, workdir, env, url) as process:
        yield Gunicorn(url, workdir, process.pid)


def server_store_url(kind: str, base_url: str) -> tuple[str, str]:
    """Return the URL of a store of its own on the tests' ``"redis"`` or ``"postgres"``
    server at ``base_url`` (a key prefix or a table), and that prefix or table's name."""
    name = unique_name("dash_database_test")
    return (f"{base_url}?prefix={name}" if kind == "redis" else f"{base_url}?table={name}"), name


def remove_store(kind: str, url: str, name: str) -> None:
    """Remove the store that :func:`server_store_url` named: the prefix's keys, or the
    tables."""
    from dash_database.proof._stores import remove_named_store

    remove_named_store(kind, url, name)


def wait_until(condition: Any, what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``condition()`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def clean_env(**extra: str) -> dict[str, str]:
    """Return this process's environment without DASH_DATABASE_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASH_DATABASE_")}
    env["PYTHONWARNINGS"] = "default"
    return {**env, **extra}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def callback_body(
    output: str,
    inputs: list[tuple[str, str, Any]],
    state: list[tuple[str, str, Any]] = (),  # type: ignore[assignment]
    changed: str | None = "",
) -> dict[str, Any]:
    """Return the JSON body the Dash renderer POSTs to ``/_dash-update-component``.

    ``output`` is ``"id.property"`` or several joined by ``...`` as Dash writes them;
    ``inputs`` and ``state`` are ``(id, property, value)`` triples; the first input is the one
    that changed unless ``changed`` names another ``"id.property"`` (``None``: none did, as
    in the call Dash makes when the page loads).
    """
    if changed == "":
        changed = f"{inputs[0][0]}.{inputs[0][1]}"
    outputs = [
        {"id": part.split(".")[0], "property": part.split(".")[1]}
        for part in output.strip(".").split("...")
    ]
    return {
        "output": output,
        "outputs": outputs[0] if len(outputs) == 1 else outputs,
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": [changed] if changed else [],
    }


# -- driving the example apps in a browser (dash.testing's Browser or dash_duo) ----------


def save_value(browser: Any, value: str) -> None:
    """basic_app: enter ``value`` in the first tab and press OK."""
    browser.find_element("#tabs").find_elements(By.CLASS_NAME, "tab")[0].click()
    field = browser.find_element("#input_div")
    field.clear()
    field.send_keys(value)
    browser.find_element("#ok_button").click()
    browser.wait_for_contains_text("#success_value_saved", "saved", timeout=TIMEOUT)


def shown_value(browser: Any, expected: str) -> None:
    """basic_app: press "Show me the value" in the second tab and wait for ``expected``."""
    browser.find_element("#tabs").find_elements(By.CLASS_NAME, "tab")[1].click()
    browser.find_element("#show_value_button").click()
    browser.wait_for_contains_text("#show_value_div", expected, timeout=TIMEOUT)


def generate(browser: Any, rows: int) -> None:
    """data_app: generate a table of ``rows`` rows and wait for its chart."""
    field = browser.find_element("#row-count")
    field.clear()
    field.send_keys(str(rows))
    browser.find_element("#generate").click()
    browser.wait_for_contains_text("#status", f"{rows} rows", timeout=TIMEOUT)
    browser.wait_for_contains_text("#sizes", f"Rows: {rows}.", timeout=TIMEOUT)
