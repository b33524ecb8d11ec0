"""A new session id at login (session fixation defence): the data moves, the old id names
nothing, and a planted, forged or plain id never takes over anyone's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from dash import Dash, Input, Output, State, dcc, html

from dash_database import DashDatabase, MemoryBackend
from dash_database.dash import (
    SESSION_STORE_ID,
    cookie_name_for,
    current_session,
    enable_browser_sessions,
    renew_browser_session,
    renew_tab_session,
    session_store,
    tab_session,
)
from tests.ui_support import (
    TIMEOUT,
    app_cookie,
    browser,
    callback_body,
    clean_env,
    free_port,
    server_process,
)

KEY = "k" * 32
COOKIE = cookie_name_for(Dash(__name__))


@pytest.fixture
def db() -> DashDatabase:
    return DashDatabase(MemoryBackend(), secret_key=KEY)


def make_app(db: DashDatabase) -> Dash:
    app = Dash(__name__)
    app.layout = lambda: html.Div(
        [dcc.Input(id="value"), html.Button(id="login"), html.Div(id="out"), session_store(db)]
    )
    enable_browser_sessions(app, db)

    @app.callback(Output("out", "children"), Input("value", "value"))
    def save(value: str | None) -> str:
        session = current_session(db)
        if value is not None:
            session["value"] = value
        return f"has {session.get('value')}"

    @app.callback(Output("out", "title"), Input("login", "n_clicks"))
    def login(n_clicks: int) -> str:
        return f"logged in with {renew_browser_session(db).get('value')}"

    @app.callback(
        Output("value", "placeholder"), Input("login", "n_clicks"), State(SESSION_STORE_ID, "data")
    )
    def login_tab(n_clicks: int, session_id: str) -> str:
        return f"tab logged in with {renew_tab_session(db, session_id).get('value')}"

    @app.server.route("/login")
    def login_view() -> str:
        return f"view logged in with {renew_browser_session(db).get('value')}"

    return app


def post(client: Any, output: str, inputs: list[Any], state: list[Any] = ()) -> Any:  # type: ignore[assignment]
    return client.post("/_dash-update-component", json=callback_body(output, inputs, state))


def save(client: Any, value: str | None) -> Any:
    return post(client, "out.children", [("value", "value", value)])


def login(client: Any) -> Any:
    return post(client, "out.title", [("login", "n_clicks", 1)])


def cookie(client: Any) -> str:
    return str(client.get_cookie(COOKIE).value)


def test_login_moves_the_browser_session_to_a_new_id(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    client.get("/")
    save(client, "before login")
    before = cookie(client)

    reply = login(client)
    after = cookie(client)

    assert "logged in with before login" == reply.get_json()["response"]["out"]["title"]
    assert after[:48] != before[:48]
    assert {} == dict(db.session(before))
    assert "has before login" in save(client, None).get_data(as_text=True)
    assert "no-store" == reply.headers["Cache-Control"]


def test_an_id_planted_before_login_names_nothing_after_it(db: DashDatabase) -> None:
    attacker = make_app(db).server.test_client()
    attacker.get("/")
    planted = cookie(attacker)
    victim = make_app(db).server.test_client()
    victim.set_cookie(COOKIE, planted)

    login(victim)
    save(victim, "victim's secret")

    assert "has None" in save(attacker, None).get_data(as_text=True)
    assert cookie(victim) != planted


@pytest.mark.parametrize("bad", ["forged", "plain"])
def test_a_forged_or_plain_cookie_at_login_gets_a_new_empty_session(
    db: DashDatabase, bad: str
) -> None:
    db.store_user_value("alice", "value", "alice's plain data")
    client = make_app(db).server.test_client()
    good = db.new_session_id()
    client.set_cookie(
        COOKIE,
        {"forged": good[:-2] + ("BB" if good.endswith("AA") else "AA"), "plain": "alice"}[bad],
    )

    reply = login(client)

    assert "logged in with None" == reply.get_json()["response"]["out"]["title"]
    assert "alice's plain data" == db.get_user_value("alice", "value")


def test_a_login_view_renews_the_cookie_too(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    client.get("/")
    save(client, "kept")
    before = cookie(client)

    page = client.get("/login")

    assert "view logged in with kept" == page.get_data(as_text=True)
    assert cookie(client)[:48] != before[:48]
    assert "has kept" in save(client, None).get_data(as_text=True)


def test_login_moves_a_tab_session_and_updates_its_store(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    old = db.new_session_id()
    tab_session(db, old)["value"] = "tab data"

    reply = post(
        client,
        "value.placeholder",
        [("login", "n_clicks", 1)],
        [(SESSION_STORE_ID, "data", old)],
    ).get_json()
    new = reply["sideUpdate"][SESSION_STORE_ID]["data"]

    assert "tab logged in with tab data" == reply["response"]["value"]["placeholder"]
    assert "tab data" == tab_session(db, new)["value"]
    assert {} == dict(tab_session(db, old))


def test_renewing_outside_a_request_says_where_it_works(db: DashDatabase) -> None:
    with pytest.raises(RuntimeError, match="Dash callback or a Flask or Quart view"):
        renew_browser_session(db, cookie_name="c")


def test_renewing_a_tab_needs_the_id_read_from_its_store(db: DashDatabase) -> None:
    app = make_app(db)

    @app.callback(Output("out", "className"), Input("login", "n_clicks"))
    def wrong(n_clicks: int) -> str:
        renew_tab_session(db, db.new_session_id())
        return ""

    @app.server.errorhandler(RuntimeError)
    def shown(error: Exception) -> tuple[str, int]:
        return str(error), 500

    reply = app.server.test_client().post(
        "/_dash-update-component", json=callback_body("out.className", [("login", "n_clicks", 1)])
    )

    assert "add State(SESSION_STORE_ID, 'data')" in reply.get_data(as_text=True)


# -- in headless Chromium -----------------------------------------------------------------------

LOGIN_APP = """
import os

from dash import Dash, Input, Output, State, dcc, html

from dash_database import DashDatabase
from dash_database.dash import current_session, enable_browser_sessions, renew_browser_session

db = DashDatabase("memory://", secret_key="k" * 32)
app = Dash(__name__)
enable_browser_sessions(app, db)
app.layout = html.Div([
    dcc.Input(id="value"), html.Button("save", id="save"), html.Button("log in", id="login"),
    html.Div(id="saved"), html.Div(id="status"),
])


@app.callback(Output("status", "children"), Input("login", "n_clicks"), prevent_initial_call=True)
def login(n_clicks):
    return f"logged in, session has {renew_browser_session(db).get('value')}"


@app.callback(Output("saved", "children"), Input("save", "n_clicks"), State("value", "value"),
              prevent_initial_call=True)
def save(n_clicks, value):
    current_session(db)["value"] = value
    return f"saved {value}"


@app.callback(Output("value", "placeholder"), Input("value", "n_submit"))
def peek(n_submit):
    return f"has {current_session(db).get('value')}"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
"""


@pytest.mark.slow
def test_in_a_browser_an_id_planted_before_login_reads_nothing_after_it(tmp_path: Path) -> None:
    (tmp_path / "login_app.py").write_text(LOGIN_APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = app_cookie("login_app")
    env = clean_env(PORT=str(port))
    with server_process(["login_app.py"], tmp_path, env, url), browser(tmp_path) as victim:
        attacker = requests.Session()
        attacker.get(url, timeout=TIMEOUT)
        planted = attacker.cookies[name]
        victim.server_url = url
        victim.driver.delete_cookie(name)
        victim.driver.add_cookie({"name": name, "value": planted, "path": "/"})
        victim.driver.refresh()
        victim.wait_for_element("#login", timeout=TIMEOUT)

        victim.find_element("#login").click()
        victim.wait_for_contains_text("#status", "logged in", timeout=TIMEOUT)
        victim.find_element("#value").send_keys("victim's secret")
        victim.find_element("#save").click()
        victim.wait_for_contains_text("#saved", "saved victim's secret", timeout=TIMEOUT)
        after_login = victim.driver.get_cookie(name)["value"]
        peek = callback_body("value.placeholder", [("value", "n_submit", 1)])
        seen = attacker.post(f"{url}/_dash-update-component", json=peek, timeout=TIMEOUT)

    assert after_login[:48] != planted[:48]
    assert "has None" in seen.text
