"""Per-tab sessions without a State: the tab's id travels in a request header, is verified
like the store's value, and memoize finds the tab's session through it (Flask test client)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dash import Dash, Input, Output, html
from dash.testing.browser import Browser

from dash_database import DashDatabase, InvalidSessionIdError, MemoryBackend
from dash_database.dash import (
    SESSION_STORE_ID,
    TAB_HEADER,
    cookie_name_for,
    current_session,
    enable_browser_sessions,
    enable_tab_sessions,
    session_store,
)
from tests.support import FakeClock
from tests.test_dash import tampered
from tests.ui_support import TIMEOUT, browser, callback_body, clean_env, free_port, server_process

KEY = "k" * 32


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(clock: FakeClock) -> DashDatabase:
    return DashDatabase(MemoryBackend(), secret_key=KEY, clock=clock)


def make_app(db: DashDatabase, *, cookies: bool = False) -> Dash:
    app = Dash(__name__)
    app.layout = lambda: html.Div([html.Div(id="in"), html.Div(id="out"), session_store(db)])
    enable_tab_sessions(app, db)
    if cookies:
        enable_browser_sessions(app, db)
    calls: list[str] = []

    @db.memoize()
    def expensive(value: str) -> str:
        calls.append(value)
        return value.upper()

    @app.callback(Output("out", "children"), Input("in", "children"))
    def save(value: str) -> str:
        session = current_session(db)
        session["value"] = value
        return f"{session.get('value')} {expensive(value)} {len(calls)}"

    return app


def post(client: Any, value: str, tab_id: str | None) -> Any:
    headers = {} if tab_id is None else {TAB_HEADER: tab_id}
    body = callback_body("out.children", [("in", "children", value)])
    return client.post("/_dash-update-component", json=body, headers=headers)


def shown(reply: Any) -> str:
    return str(reply.get_json()["response"]["out"]["children"])


def test_the_page_carries_the_script_that_sends_the_tab_id(db: DashDatabase) -> None:
    page = make_app(db).server.test_client().get("/").get_data(as_text=True)

    assert TAB_HEADER in page
    assert f'"{SESSION_STORE_ID}"' in page
    assert page.index(TAB_HEADER) < page.index("new DashRenderer")


def test_each_tab_has_its_own_session_and_memoized_results(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    tab_1, tab_2 = db.new_session_id(), db.new_session_id()

    first = shown(post(client, "one", tab_1))
    other_tab = shown(post(client, "one", tab_2))
    again = shown(post(client, "one", tab_1))

    assert ("one ONE 1", "one ONE 2", "one ONE 2") == (first, other_tab, again)
    assert "one" == db.session(tab_1)["value"] == db.session(tab_2)["value"]


def test_a_forged_or_missing_tab_id_is_refused_and_nothing_is_written(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    good = db.new_session_id()
    post(client, "original", good)

    for bad in [*tampered(good), None, "plain"]:
        assert 500 == post(client, "forged", bad).status_code

    assert "original" == db.session(good)["value"]


def test_the_errors_say_how_to_recover(db: DashDatabase, clock: FakeClock) -> None:
    from dash import _get_app
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    app = make_app(db)
    expired = db.new_session_id()
    clock.advance(8 * 24 * 3600)

    def error(headers: dict[str, str]) -> str:
        # Outside a request, dash.get_app() names the app of the current context (Dash 3 and
        # later) or the last app that served (Dash 2): make it this test's app, whatever app
        # an earlier test left there.
        app_context = getattr(_get_app, "app_context", None)
        made = app_context.set(app) if app_context is not None else None
        before, _get_app.APP = _get_app.APP, app
        token = context_value.set(AttributeDict(headers=headers, cookies={}, input_values={}))
        try:
            with pytest.raises(InvalidSessionIdError) as raised:
                current_session(db)
        finally:
            context_value.reset(token)
            _get_app.APP = before
            if app_context is not None:
                app_context.reset(made)
        return str(raised.value)

    assert "session_store(db, 'dash-database-session-id')" in error({})
    assert "reloading the page" in error({TAB_HEADER.lower(): tampered(expired)[1]})
    assert "expired" in error({TAB_HEADER: expired})


def test_a_request_without_a_tab_id_falls_back_to_the_browser_cookie(db: DashDatabase) -> None:
    app = make_app(db, cookies=True)
    client = app.server.test_client()
    client.get("/")

    reply = post(client, "guest", None)
    browser_id = client.get_cookie(cookie_name_for(app)).value  # type: ignore[union-attr]

    assert "guest GUEST 1" == shown(reply)
    assert "guest" == db.session(browser_id)["value"]


def test_an_id_due_for_renewal_is_renewed_in_the_tab_store(
    db: DashDatabase, clock: FakeClock
) -> None:
    client = make_app(db).server.test_client()
    tab_id = db.new_session_id()
    post(client, "kept", tab_id)
    clock.advance(4 * 24 * 3600)  # over half of the one-week maximum age

    reply = post(client, "kept", tab_id).get_json()
    renewed = reply["sideUpdate"][SESSION_STORE_ID]["data"]

    assert renewed != tab_id
    assert "kept" == db.session(renewed)["value"]


# -- in headless Chromium: two tabs, and a background callback --------------------------------

BROWSER_APP = """
import os

import diskcache
from dash import Dash, DiskcacheManager, Input, Output, State, dcc, html

from dash_database import DashDatabase
from dash_database.dash import current_session, enable_tab_sessions, session_store

db = DashDatabase("tabs.sqlite", secret_key="k" * 32)
manager = DiskcacheManager(diskcache.Cache("cache"))
app = Dash(__name__, background_callback_manager=manager)
enable_tab_sessions(app, db)
app.layout = lambda: html.Div([
    dcc.Input(id="value"), html.Button("save", id="save"), html.Div(id="saved"),
    html.Button("run", id="run"), html.Div(id="ran"), html.Button("show", id="show"),
    html.Div(id="shown"), session_store(db),
])


@db.memoize()
def label(value):
    return f"{value} computed in {os.getpid()}"


@app.callback(Output("saved", "children"), Input("save", "n_clicks"), State("value", "value"),
              prevent_initial_call=True)
def save(n_clicks, value):
    current_session(db)["value"] = value
    return f"saved {value}"


@app.callback(Output("shown", "children"), Input("show", "n_clicks"))
def show(n_clicks):  # also called when the page loads: the tab's id is there already
    return f"tab has {current_session(db).get('value')} ({n_clicks})"


@app.callback(Output("ran", "children"), Input("run", "n_clicks"), background=True,
              prevent_initial_call=True)
def run(n_clicks):
    value = current_session(db)["value"]
    return f"{label(value)} / {label(value)} / read in {os.getpid()}"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
"""


@pytest.mark.slow
def test_two_tabs_have_two_sessions_without_state_even_in_background_callbacks(
    tmp_path: Path,
) -> None:
    (tmp_path / "tabs_app.py").write_text(BROWSER_APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    env = clean_env(PORT=str(port))
    with server_process(["tabs_app.py"], tmp_path, env, url) as server, browser(tmp_path) as chrome:
        chrome.server_url = url
        first = chrome.driver.current_window_handle
        chrome.wait_for_text_to_equal("#shown", "tab has None (None)", timeout=TIMEOUT)
        save_in_tab(chrome, "first")
        chrome.driver.switch_to.new_window("tab")
        chrome.server_url = url
        chrome.wait_for_text_to_equal("#shown", "tab has None (None)", timeout=TIMEOUT)
        save_in_tab(chrome, "second")
        second_shows = run_in_tab(chrome)
        chrome.driver.switch_to.window(first)
        chrome.find_element("#show").click()
        chrome.wait_for_text_to_equal("#shown", "tab has first (1)", timeout=TIMEOUT)
        logs = chrome.get_logs()

    second_label, again, reader = second_shows.split(" / ")
    assert second_label.startswith("second computed in ")
    assert again == second_label  # the memoized result, read back
    assert str(server.pid) not in second_label  # computed in the background process
    assert reader != f"read in {server.pid}"
    assert [] == logs


def save_in_tab(chrome: Browser, value: str) -> None:
    chrome.wait_for_element("#save", timeout=TIMEOUT)
    chrome.find_element("#value").send_keys(value)
    chrome.find_element("#save").click()
    chrome.wait_for_text_to_equal("#saved", f"saved {value}", timeout=TIMEOUT)


def run_in_tab(chrome: Browser) -> str:
    chrome.find_element("#run").click()
    chrome.wait_for_contains_text("#ran", "read in", timeout=30)
    return str(chrome.find_element("#ran").text)
