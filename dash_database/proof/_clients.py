"""Simulated browsers: real Dash callback requests, each carrying its signed session cookie.

Each browser loads the page (which issues its cookie), then sends ``write`` callbacks: one
new key per request, with a value that starts with the browser's own label. A write counts
as acknowledged only when the answer is a 200 that reads the value back; every value an
answer shows must carry the browser's label (else it is a cross-session read), and every
acknowledged value must still be there (else it is lost).

Plain ``http.client`` in threads of a few processes, rather than a load tool such as locust:
the figures the proof needs are per-request facts (which write was acknowledged, what each
answer showed), not throughput, and locust's gevent and statistics would compete with the
four gunicorn workers for the same two cores without adding any of them.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Browser", "Record", "Task", "TaskResult", "check", "run_task"]

_PATH = "/_dash-update-component"
#: Seconds a request may take: less than gunicorn's 30 s worker timeout.
REQUEST_TIMEOUT = 25.0


@dataclass
class Browser:
    """One simulated browser session and what the app acknowledged to it."""

    label: str
    cookies: dict[str, str] = field(default_factory=dict)
    acked: dict[str, str] = field(default_factory=dict)
    unacked: dict[str, str] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)
    cross: int = 0
    corrupt: int = 0


@dataclass
class Record:
    """One request: when it started and ended (``time.monotonic``), and how it went."""

    start: float
    end: float
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    ok: bool


@dataclass
class Task:
    """The work of one client process.

    ``browsers``: read back these browsers' values (the final check); otherwise simulate
    ``sessions`` new browsers of ``rounds`` writes each, or, with ``stop_file``, new browsers
    until that file exists.
    """

    url: str
    name: str
    counter: str
    threads: int
    sessions: int = 0
    rounds: int = 2
    stop_file: str | None = None
    browsers: list[Browser] = field(default_factory=list)


@dataclass
class TaskResult:
    records: list[Record]
    browsers: list[Browser]
    increments: int


class _Client:
    """One keep-alive HTTP connection and one browser's cookies."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._conn: http.client.HTTPConnection | None = None
        self.records: list[Record] = []

    def request(self, browser: Browser, method: str, path: str, body: Any = None) -> Any:
        """Send one request; return the parsed JSON answer of a 200, else ``None``."""
        headers = {"Content-Type": "application/json"}
        if browser.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        start, status, data = time.monotonic(), 0, b""
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=REQUEST_TIMEOUT
                )
            payload = None if body is None else json.dumps(body)
            self._conn.request(method, path, payload, headers)
            answer = self._conn.getresponse()
            status, data = answer.status, answer.read()
            for line in answer.headers.get_all("Set-Cookie") or []:
                name, _, value = line.split(";", 1)[0].partition("=")
                browser.cookies[name.strip()] = value.strip()
            if answer.will_close:
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
        result = None
        if status == 200:
            try:
                result = json.loads(data) if method == "POST" else {}
            except ValueError:
                status = -1
        self.records.append(Record(start, time.monotonic(), status, result is not None))
        return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _body(output: str, trigger: str, state: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON the Dash renderer posts for the callback with ``output``."""
    out_id, prop = output.split(".")
    return {
        "output": output,
        "outputs": {"id": out_id, "property": prop},
        "inputs": [{"id": trigger, "property": "n_clicks", "value": 1}],
        "state": [{"id": k, "property": "value", "value": v} for k, v in state.items()],
        "changedPropIds": [f"{trigger}.n_clicks"],
    }


def _shown(answer: Any, output: str) -> dict[str, Any] | None:
    try:
        out_id, prop = output.split(".")
        shown: dict[str, Any] = json.loads(answer["response"][out_id][prop])
        return shown
    except (KeyError, TypeError, ValueError):
        return None


def check(browser: Browser, values: dict[str, Any]) -> None:
    """Count values of other sessions, and acknowledged values that are gone."""
    for key, value in values.items():
        if not (isinstance(value, str) and value.startswith(browser.label + "/")):
            browser.cross += 1
        elif key not in browser.acked and browser.unacked.get(key) != value:
            browser.corrupt += 1
    browser.lost.update(k for k, v in browser.acked.items() if values.get(k) != v)


def _write(client: _Client, browser: Browser, key: str, counter: str) -> bool:
    token = f"{browser.label}/{key}/{uuid.uuid4().hex[:8]}"
    state = {"key": key, "token": token, "counter": counter}
    answer = client.request(browser, "POST", _PATH, _body("written.children", "write", state))
    shown = _shown(answer, "written.children") if answer is not None else None
    if shown is None or shown.get("values", {}).get(key) != token:
        browser.unacked[key] = token
        return False
    browser.acked[key] = token
    check(browser, shown["values"])
    return True


def _read(client: _Client, browser: Browser) -> None:
    answer = client.request(browser, "POST", _PATH, _body("values.children", "read", {}))
    shown = _shown(answer, "values.children") if answer is not None else None
    if shown is None:  # the final check must see every session: count it unread as lost
        browser.lost.update(browser.acked)
    else:
        check(browser, shown["values"])


def _thread(task: Task, index: int) -> TaskResult:
    client, browsers, increments = _Client(task.url), [], 0
    if task.browsers:
        for browser in task.browsers[index :: task.threads]:
            _read(client, browser)
            browsers.append(browser)
        client.close()
        return TaskResult(client.records, browsers, 0)
    count = 0
    while True:
        if task.stop_file is None and count >= task.sessions:
            break
        if task.stop_file is not None and os.path.exists(task.stop_file):
            break
        browser = Browser(f"{task.name}-{index}-{count}-{uuid.uuid4().hex[:6]}")
        count += 1
        browsers.append(browser)
        client.request(browser, "GET", "/")
        for round_ in range(task.rounds):
            increments += _write(client, browser, f"k{round_}", task.counter)
        client.close()  # a new browser opens its own connection
    return TaskResult(client.records, browsers, increments)


def run_task(task: Task) -> TaskResult:
    """Run ``task`` in ``task.threads`` threads (in a client process); merge their results."""
    if not task.browsers and task.stop_file is None:
        per_thread = [task.sessions // task.threads] * task.threads
        for i in range(task.sessions % task.threads):
            per_thread[i] += 1
        tasks = [Task(**{**vars(task), "sessions": n}) for n in per_thread]
    else:
        tasks = [task] * task.threads
    with ThreadPoolExecutor(task.threads) as pool:
        results = list(pool.map(_thread, tasks, range(task.threads)))
    return TaskResult(
        [r for result in results for r in result.records],
        [b for result in results for b in result.browsers],
        sum(result.increments for result in results),
    )
