"""Safe by default, in headless Chromium: a static layout is refused, two browser profiles
never share a session, a reload recovers after the secret key changed, and the user reads a
message (not a blank page) when an id is tampered with or the store is down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dash.testing.browser import Browser

from dash_database.dash import ERROR_MESSAGE_ID, SESSION_STORE_ID
from tests.servers import new_redis_server
from tests.ui_support import (
    SECRET,
    TIMEOUT,
    app_cookie,
    browser,
    clean_env,
    free_port,
    require_chromium,
    server_process,
    wait_until,
)

pytestmark = pytest.mark.slow

OTHER_SECRET = "another-secret-0123456789abcdefghijklmnopqrstuvw"

APP = """
import os

from dash import Dash, Input, Output, State, dcc, html

from dash_database import DashDatabase
from dash_database.dash import (
    SESSION_STORE_ID, current_session, enable_browser_sessions, enable_error_messages,
    session_store, tab_session,
)

db = DashDatabase(os.environ.get("STORE", "app.sqlite"))
db.check()
app = Dash(__name__)
enable_browser_sessions(app, db)
enable_error_messages(app)


def layout():
    return html.Div([
        dcc.Input(id="value"), html.Button("save", id="save"), html.Button("show", id="show"),
        html.Div(id="saved"), html.Div(id="shown"), session_store(db),
    ])


app.layout = layout


@app.callback(Output("saved", "children"), Input("save", "n_clicks"), State("value", "value"),
              State(SESSION_STORE_ID, "data"), prevent_initial_call=True)
def save(n_clicks, value, session_id):
    tab_session(db, session_id)["value"] = value
    current_session(db)["value"] = value
    return f"saved {value} ({n_clicks})"


@app.callback(Output("shown", "children"), Input("show", "n_clicks"),
              State(SESSION_STORE_ID, "data"), prevent_initial_call=True)
def show(n_clicks, session_id):
    tab = tab_session(db, session_id).get("value")
    return f"tab: {tab} / browser: {current_session(db).get('value')} ({n_clicks})"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
"""

STATIC_APP = """
from dash import Dash, html
from dash_database import DashDatabase
from dash_database.dash import session_store

db = DashDatabase("app.sqlite")
app = Dash(__name__)
app.layout = html.Div([html.Div("hello"), session_store(db)])
app.run(port=8050)
"""


class App:
    """The test app in ``workdir``, started and stopped again on one port."""

    def __init__(self, workdir: Path, **env: str) -> None:
        (workdir / "session_app.py").write_text(APP)
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env

    @contextmanager
    def running(self, secret: str = SECRET) -> Iterator[None]:
        env = clean_env(PORT=str(self.port), DASH_DATABASE_SECRET=secret, **self.env)
        with server_process(["session_app.py"], self.workdir, env, self.url):
            yield


@pytest.fixture
def app(tmp_path: Path) -> App:
    require_chromium()
    return App(tmp_path)


@pytest.fixture
def alice(tmp_path: Path) -> Iterator[Browser]:
    with browser(tmp_path / "alice") as opened:
        yield opened


@pytest.fixture
def bob(tmp_path: Path) -> Iterator[Browser]:
    with browser(tmp_path / "bob") as opened:
        yield opened


def open_app(chrome: Browser, url: str) -> None:
    chrome.server_url = url
    chrome.wait_for_element("#show", timeout=TIMEOUT)


def save(chrome: Browser, value: str) -> None:
    field = chrome.find_element("#value")
    field.clear()
    field.send_keys(value)
    chrome.find_element("#save").click()
    chrome.wait_for_contains_text("#saved", f"saved {value}", timeout=TIMEOUT)


def show(chrome: Browser) -> str:
    """Press "show" and return what the page shows (the values or the error message)."""
    before = chrome.find_element("#shown").text
    chrome.find_element("#show").click()
    wait_until(
        lambda: chrome.find_element("#shown").text != before or error_message(chrome),
        "an answer to show",
    )
    return error_message(chrome) or chrome.find_element("#shown").text.rsplit(" (", 1)[0]


def error_message(chrome: Browser) -> str:
    element = chrome.find_element(f"#{ERROR_MESSAGE_ID}")
    return str(element.text) if element.is_displayed() else ""


def tab_id(chrome: Browser) -> Any:
    return chrome.driver.execute_script(
        f"return JSON.parse(window.sessionStorage.getItem({SESSION_STORE_ID!r}))"
    )


def reload(chrome: Browser, old_tab_id: Any = None) -> None:
    """Reload the page; wait until the page-load check replaced ``old_tab_id`` if given."""
    chrome.driver.refresh()
    chrome.wait_for_element("#show", timeout=TIMEOUT)
    if old_tab_id is not None:
        wait_until(lambda: tab_id(chrome) not in (None, old_tab_id), "a new tab id")


# -- the layout guard -------------------------------------------------------------------------


def test_a_static_layout_stops_the_app_at_startup_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "static_app.py").write_text(STATIC_APP)
    url = f"http://127.0.0.1:{free_port()}"

    def start() -> None:
        with server_process(["static_app.py"], tmp_path, clean_env(), url):
            pass

    with pytest.raises(RuntimeError, match="did not start") as info:
        start()

    assert "LayoutError" in str(info.value)
    assert "app.layout = lambda: html.Div([..., session_store(db)])" in str(info.value)


def test_two_browser_profiles_never_share_a_session(app: App, alice: Browser, bob: Browser) -> None:
    with app.running():
        open_app(alice, app.url)
        open_app(bob, app.url)
        save(alice, "alice's")

        assert "tab: None / browser: None" == show(bob)
        save(bob, "bob's")
        assert "tab: alice's / browser: alice's" == show(alice)
        assert "tab: bob's / browser: bob's" == show(bob)
        assert alice.get_logs() == bob.get_logs() == []


# -- recovery ---------------------------------------------------------------------------------


def test_after_the_secret_changed_the_user_is_told_to_reload_and_a_reload_recovers(
    app: App, alice: Browser
) -> None:
    with app.running():
        open_app(alice, app.url)
        save(alice, "before")
        old_tab_id = tab_id(alice)

    with app.running(secret=OTHER_SECRET):
        told = show(alice)
        reload(alice, old_tab_id)
        after_reload = show(alice)
        save(alice, "after")
        assert "tab: after / browser: after" == show(alice)

    assert "Reload the page" in told
    assert "tab: None / browser: None" == after_reload


def test_a_rotated_secret_keeps_every_session(app: App, alice: Browser) -> None:
    with app.running():
        open_app(alice, app.url)
        save(alice, "kept")

    with app.running(secret=f"{OTHER_SECRET},{SECRET}"):
        kept = show(alice)
        reload(alice)
        assert "tab: kept / browser: kept" == show(alice)

    assert "tab: kept / browser: kept" == kept


# -- visible errors ---------------------------------------------------------------------------


def test_a_tampered_cookie_shows_a_message_and_a_reload_recovers(app: App, alice: Browser) -> None:
    with app.running():
        open_app(alice, app.url)
        save(alice, "mine")
        name = app_cookie("session_app")
        good = alice.driver.get_cookie(name)["value"]
        alice.driver.delete_cookie(name)
        forged = good[:-2] + ("BB" if good.endswith("AA") else "AA")
        alice.driver.add_cookie({"name": name, "value": forged, "path": "/"})

        told = show(alice)
        reload(alice)
        after_reload = show(alice)

    assert "Reload the page" in told
    assert "tab: mine / browser: None" == after_reload


def test_a_tampered_tab_id_is_replaced_when_the_page_loads(app: App, alice: Browser) -> None:
    with app.running():
        open_app(alice, app.url)
        save(alice, "mine")
        good = tab_id(alice)
        forged = good[:-2] + ("BB" if good.endswith("AA") else "AA")
        alice.driver.execute_script(
            f"window.sessionStorage.setItem({SESSION_STORE_ID!r}, {json.dumps(json.dumps(forged))})"
        )
        reload(alice, forged)

        assert "tab: None / browser: mine" == show(alice)


def test_the_user_is_told_when_the_store_is_down(tmp_path: Path, alice: Browser) -> None:
    require_chromium()
    redis = new_redis_server()
    redis.start()
    app = App(tmp_path, STORE=redis.url)
    try:
        with app.running():
            open_app(alice, app.url)
            save(alice, "mine")
            redis.stop()
            told = show(alice)
    finally:
        redis.remove()

    assert "session store is unavailable" in told
