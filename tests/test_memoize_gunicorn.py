"""Memoize, per-tab sessions, app state and user state under ``gunicorn -w 4`` on SQLite, Redis
and PostgreSQL: the same real callback requests, spread over the workers, see one store.

One gunicorn per store and one test function doing every check keep the cost to one start-up
per store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from dash_database import DashDatabase
from dash_database.dash import TAB_HEADER
from tests.ui_support import (
    SECRET,
    TIMEOUT,
    Gunicorn,
    callback_body,
    clean_env,
    gunicorn,
    remove_store,
    server_store_url,
)

pytestmark = pytest.mark.slow

APP = """
import os

import flask
from dash import Dash, Input, Output, html

from dash_database import DashDatabase
from dash_database.dash import (
    current_session,
    enable_browser_sessions,
    enable_tab_sessions,
    session_store,
)

db = DashDatabase()  # DASH_DATABASE_URL, or dash_database.sqlite in the working directory
app = Dash(__name__)
server = app.server
server.secret_key = os.environ["FLASK_SECRET_KEY"]
enable_browser_sessions(app, db)
enable_tab_sessions(app, db)
app.layout = lambda: html.Div(
    [html.Div(id="in"), html.Div(id="out"), html.Div(id="visit"), session_store(db)]
)


@server.route("/login/<name>")
def login(name):
    # Stands in for a real login: Flask's signed session cookie names the user.
    flask.session["user"] = name
    return name


@db.memoize(scope="app", ttl=3600)
def reference(name):
    db.app_state.update_value("computed", lambda n: n + 1, default=0)
    return f"{name} from {os.getpid()}"


@db.memoize(ttl=3600)
def per_session(name):
    current_session(db).update_value("computed", lambda n: n + 1, default=0)
    return f"{name} for {current_session(db).session_id[-8:]} from {os.getpid()}"


@app.callback(Output("out", "children"), Input("in", "children"))
def show(name):
    shared, own = reference(name), per_session(name)
    counts = f"{db.app_state['computed']} {current_session(db)['computed']}"
    return f"{shared} | {own} | {counts} | served by {os.getpid()}"


@app.callback(Output("visit", "children"), Input("visit", "n_clicks"))
def visit(n_clicks):
    visits = db.user_state(flask.session["user"]).update_value("visits", lambda n: n + 1, 0)
    return f"{flask.session['user']}: {visits} | served by {os.getpid()}"
"""

SHOW = callback_body("out.children", [("in", "children", "rates")])
VISIT = callback_body("visit.children", [("visit", "n_clicks", 1)])
CONCURRENT = 16


@pytest.fixture(scope="module", params=["sqlite", "redis", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    workdir = tmp_path_factory.mktemp(f"memoize-{request.param}")
    (workdir / "memo_app.py").write_text(APP)
    env = clean_env(DASH_DATABASE_SECRET=SECRET, FLASK_SECRET_KEY="flask-" + SECRET)
    if request.param == "sqlite":
        with gunicorn("memo_app:server", workdir, env, preload=True) as running:
            yield running
        return
    url, name = server_store_url(request.param, request.getfixturevalue(f"{request.param}_url"))
    try:
        with gunicorn("memo_app:server", workdir, {**env, "DASH_DATABASE_URL": url}, True) as run:
            run.store_url = url
            yield run
    finally:
        remove_store(request.param, url, name)


def tab_id(server: Gunicorn, client: requests.Session) -> str:
    """Return the signed id the layout gives a new tab (its ``session_store``)."""
    text = json.dumps(client.get(f"{server.url}/_dash-layout", timeout=TIMEOUT).json())
    start = text.index('"dds1.')
    return str(json.loads(text[start : text.index('"', start + 1) + 1]))


def asker(server: Gunicorn, client: requests.Session, tab: str | None = None) -> Callable[..., str]:
    headers = {TAB_HEADER: tab} if tab else {}

    def ask(body: dict[str, Any] = SHOW) -> str:
        url = f"{server.url}/_dash-update-component"
        reply = client.post(url, json=body, headers=headers, timeout=TIMEOUT)
        assert 200 == reply.status_code, reply.text
        output = next(iter(reply.json()["response"].values()))
        return str(output["children"])

    return ask


def many(ask: Callable[..., str], *args: Any) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: ask(*args), range(CONCURRENT)))


def test_memoize_tabs_and_scopes_are_shared_by_every_worker(server: Gunicorn) -> None:
    alice, bob = requests.Session(), requests.Session()
    alice.get(server.url, timeout=TIMEOUT)
    bob.get(server.url, timeout=TIMEOUT)
    tabs = tab_id(server, alice), tab_id(server, alice)

    # memoize, session and app scope: computed once, read by every worker.
    first = asker(server, alice)()
    answers = many(asker(server, alice))
    bob_answer = asker(server, bob)()
    # Per-tab sessions through the request header: each tab of alice's browser has its own.
    # (The first call of each computes: concurrent first calls may compute once per worker.)
    tab_answers = [[asker(server, alice, tab)(), *many(asker(server, alice, tab))] for tab in tabs]
    # User state: one user on two devices, each request through any worker, none lost.
    devices = [requests.Session(), requests.Session()]
    for device in devices:
        device.get(f"{server.url}/login/carol", timeout=TIMEOUT).raise_for_status()
    visits = many(asker(server, devices[0]), VISIT) + many(asker(server, devices[1]), VISIT)
    dave = requests.Session()
    dave.get(f"{server.url}/login/dave", timeout=TIMEOUT)
    dave_visit = asker(server, dave)(VISIT)

    shared, own, counts, _ = first.split(" | ")
    assert {(shared, own, counts)} == {tuple(a.split(" | ")[:3]) for a in answers}
    assert "1 1" == counts
    bob_shared, bob_own, bob_counts, _ = bob_answer.split(" | ")
    assert (shared, "1 1") == (bob_shared, bob_counts)
    assert bob_own != own
    tab_owns = []
    for replies in tab_answers:
        found = {tuple(r.split(" | ")[:3]) for r in replies}
        assert 1 == len(found), found
        ((tab_shared, tab_own, tab_counts),) = found
        assert (shared, "1 1") == (tab_shared, tab_counts)
        tab_owns.append(tab_own)
    assert len({own, *tab_owns}) == 3  # the browser's session and each tab's: three results
    assert list(range(1, 2 * CONCURRENT + 1)) == sorted(
        int(v.split(" | ")[0].removeprefix("carol: ")) for v in visits
    )
    assert dave_visit.startswith("dave: 1 |")
    served = {a.split(" | ")[-1] for a in answers + visits + tab_answers[0]}
    assert len(served) > 1  # several workers served

    if server.store_url is not None:  # the scopes really are in that server
        with DashDatabase.from_url(server.store_url, secret_key=SECRET) as db:
            assert 1 == db.app_state["computed"]
            assert 2 * CONCURRENT == db.user_state("carol")["visits"]
