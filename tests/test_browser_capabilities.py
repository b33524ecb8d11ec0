"""Capabilities of issue 13 in headless Chromium: dash-extensions' ``Serverside`` values kept in
the browser's session, and the app-wide scope ``db.app_state`` shared by every browser."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from dash.testing.browser import Browser

from tests.support import require
from tests.ui_support import (
    SECRET,
    TIMEOUT,
    browser,
    clean_env,
    free_port,
    server_process,
    wait_until,
)

pytestmark = pytest.mark.slow

APP = """
import os

import pandas as pd
from dash import Input, Output, State, dcc, html
from dash_extensions.enrich import DashProxy, Serverside, ServersideOutputTransform

from dash_database import DashDatabase
from dash_database.dash import ServersideSessionBackend, enable_browser_sessions

db = DashDatabase("app.sqlite")  # the secret comes from DASH_DATABASE_SECRET
backend = ServersideSessionBackend(db)
app = DashProxy(__name__, transforms=[ServersideOutputTransform(backends=[backend])])
enable_browser_sessions(app, db)
app.layout = html.Div([
    html.Button("make", id="make"), dcc.Store(id="frame"), html.Div(id="rows"),
    html.Div(id="reference"),
    dcc.Input(id="replay"), html.Button("replay", id="read"),
    html.Div("nothing replayed", id="replayed"),
    html.Button("bump", id="bump"), html.Div(id="count"),
])


@app.callback(Output("frame", "data"), Input("make", "n_clicks"), prevent_initial_call=True)
def make(n_clicks):
    return Serverside(pd.DataFrame({"x": range(1000 * n_clicks)}))


@app.callback(Output("rows", "children"), Input("frame", "data"), prevent_initial_call=True)
def rows(frame):
    return f"{type(frame).__name__} of {len(frame)} rows"


# What the browser holds (a clientside callback sees it as it is): the test replays it.
app.clientside_callback(
    "function(data) { return data; }",
    Output("reference", "children"),
    Input("frame", "data"),
    prevent_initial_call=True,
)


@app.callback(Output("replayed", "children"), Input("read", "n_clicks"), State("replay", "value"),
              prevent_initial_call=True)
def replay(n_clicks, frame):
    return f"replayed {len(frame)} rows"


@app.callback(Output("count", "children"), Input("bump", "n_clicks"), prevent_initial_call=True)
def bump(n_clicks):
    return f"count {db.app_state.update_value('bumps', lambda n: n + 1, default=0)}"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Serve APP from a directory of its own (its SQLite store in there) for this module;
    yield its address and its log."""
    require(
        importlib.util.find_spec("dash_extensions") is not None,
        "dash-extensions is not installed (pip install -e '.[dash-extensions]')",
    )
    workdir = tmp_path_factory.mktemp("capabilities")
    (workdir / "capabilities_app.py").write_text(APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(PORT=str(port), DASH_DATABASE_SECRET=SECRET)
    with server_process(["capabilities_app.py"], workdir, env, url):
        yield url, workdir / "server.log"


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, Browser]]:
    """Two headless Chromiums (two users: their own cookies), shared by this module's tests
    since starting a browser costs more than a test's clicks."""
    downloads = tmp_path_factory.mktemp("downloads")
    with browser(downloads / "a") as first, browser(downloads / "b") as second:
        yield first, second


def opened(chrome: Browser, url: str) -> Browser:
    chrome.server_url = url
    chrome.wait_for_element("#make", timeout=TIMEOUT)
    return chrome


def replay(chrome: Browser, reference: str) -> None:
    chrome.find_element("#replay").send_keys(reference)
    chrome.find_element("#read").click()


def shown(chrome: Browser) -> str:
    return str(chrome.find_element("#replayed").text)


def no_updates(log: Path) -> int:
    """Return how many callbacks the server answered with "no update" (HTTP 204)."""
    # Werkzeug's access log; the path carries a query string, the status may be coloured.
    return len(re.findall(r'POST /_dash-update-component\S* HTTP/1\.1\S*" 204 ', log.read_text()))


def test_a_serverside_frame_reaches_its_reader_in_its_session_only(
    app: tuple[str, Path], profiles: tuple[Browser, Browser]
) -> None:
    (app_url, log), (first, second) = app, profiles
    opened(first, app_url).find_element("#make").click()
    first.wait_for_text_to_equal("#rows", "DataFrame of 1000 rows", timeout=TIMEOUT)
    reference = str(first.find_element("#reference").text)
    replay(first, reference)  # the reference names the value in its own session
    first.wait_for_text_to_equal("#replayed", "replayed 1000 rows", timeout=TIMEOUT)

    opened(second, app_url)
    refused = no_updates(log)
    replay(second, reference)  # another browser's session has no such value
    wait_until(
        lambda: no_updates(log) > refused or shown(second) != "nothing replayed",
        "the server to answer the replay",
    )
    second_shows = shown(second)
    first_logs, second_logs = first.get_logs(), second.get_logs()

    assert reference.startswith("SERVERSIDE_")
    assert "nothing replayed" == second_shows
    assert [] == first_logs == second_logs


def test_app_state_is_one_counter_for_every_browser(
    app: tuple[str, Path], profiles: tuple[Browser, Browser]
) -> None:
    (app_url, _), (first, second) = app, profiles
    opened(first, app_url).find_element("#bump").click()
    first.wait_for_text_to_equal("#count", "count 1", timeout=TIMEOUT)
    opened(second, app_url).find_element("#bump").click()
    second.wait_for_text_to_equal("#count", "count 2", timeout=TIMEOUT)
    logs = first.get_logs() + second.get_logs()

    assert [] == logs
