"""Memoize and app state under ``gunicorn -w 4``: one result, computed once, read by every
worker, for the whole app and for each browser."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support import require
from tests.ui_support import SECRET, TIMEOUT, callback_body, clean_env, free_port, server_process

pytestmark = pytest.mark.slow

APP = """
import os

from dash import Dash, Input, Output, html

from dash_database import DashDatabase
from dash_database.dash import current_session, enable_browser_sessions

db = DashDatabase("memo.sqlite")
app = Dash(__name__)
enable_browser_sessions(app, db)
app.layout = html.Div([html.Div(id="in"), html.Div(id="out")])


@db.memoize(scope="app", ttl=3600)
def reference(name):
    db.app_state.update_value("computed", lambda n: n + 1, default=0)
    return f"{name} from {os.getpid()}"


@db.memoize()
def per_browser(name):
    current_session(db).update_value("computed", lambda n: n + 1, default=0)
    return f"{name} for {current_session(db).session_id[-8:]} from {os.getpid()}"


@app.callback(Output("out", "children"), Input("in", "children"))
def show(name):
    shared, own = reference(name), per_browser(name)
    counts = f"{db.app_state['computed']} {current_session(db)['computed']}"
    return f"{shared} | {own} | {counts} | served by {os.getpid()}"


server = app.server
"""


def test_every_worker_reads_the_one_memoized_result(tmp_path: Path) -> None:
    require(importlib.util.find_spec("gunicorn") is not None, "pip install gunicorn")
    (tmp_path / "memo_app.py").write_text(APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "memo_app:server"]
    body = callback_body("out.children", [("in", "children", "rates")])

    with server_process(args, tmp_path, clean_env(DASH_DATABASE_SECRET=SECRET), url):
        alice, bob = requests.Session(), requests.Session()
        alice.get(url, timeout=TIMEOUT)
        bob.get(url, timeout=TIMEOUT)

        def ask(client: requests.Session) -> str:
            reply = client.post(f"{url}/_dash-update-component", json=body, timeout=TIMEOUT)
            return str(reply.json()["response"]["out"]["children"])

        first = ask(alice)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, [alice] * 24))
        bob_answer = ask(bob)

    shared, own, counts, _ = first.split(" | ")
    assert {(shared, own, counts)} == {tuple(a.split(" | ")[:3]) for a in answers}
    assert "1 1" == counts
    assert len({answer.split(" | ")[3] for answer in answers}) > 1  # several workers served
    bob_shared, bob_own, bob_counts, _ = bob_answer.split(" | ")
    assert (shared, "1 1") == (bob_shared, bob_counts)
    assert bob_own != own
