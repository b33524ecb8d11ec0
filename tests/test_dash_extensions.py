"""dash-extensions' ServersideOutputTransform on ServersideSessionBackend: values bound to the
session, through Dash's Flask server (the browser simulated by requests with their own cookies)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from dash import Input, Output, dcc, html

from dash_database import DashDatabase, MemoryBackend
from dash_database.dash import (
    ServersideSessionBackend,
    cookie_name_for,
    enable_browser_sessions,
)
from dash_database.dash._extensions import KEY_PREFIX, OUTPUT_PREFIX
from tests.support import require
from tests.ui_support import callback_body

KEY = "k" * 32


@pytest.fixture(scope="module")
def enrich() -> Any:
    require(
        importlib.util.find_spec("dash_extensions") is not None,
        "dash-extensions is not installed (pip install -e '.[dash-extensions]')",
    )
    from dash_extensions import enrich

    return enrich


@pytest.fixture
def db() -> DashDatabase:
    return DashDatabase(MemoryBackend(), secret_key=KEY)


def make_app(enrich: Any, db: DashDatabase, key: str | None = None) -> Any:
    # The one line an app on Serverside changes: the transform's backends.
    backend = ServersideSessionBackend(db)
    app = enrich.DashProxy(__name__, transforms=[enrich.ServersideOutputTransform([backend])])
    app.layout = html.Div([html.Button(id="load"), dcc.Store(id="frame"), html.Div(id="size")])
    enable_browser_sessions(app, db)

    @app.callback(Output("frame", "data"), Input("load", "n_clicks"))
    def load(n_clicks: int) -> Any:
        return enrich.Serverside(list(range(n_clicks * 1000)), key=key)

    @app.callback(Output("size", "children"), Input("frame", "data"))
    def size(frame: list[int]) -> str:
        return f"{len(frame)} items"

    return app


def browser(app: Any) -> Any:
    client = app.server.test_client()
    client.get("/")
    return client


def load(client: Any, clicks: int = 1) -> str:
    reply = client.post(
        "/_dash-update-component", json=callback_body("frame.data", [("load", "n_clicks", clicks)])
    )
    assert 200 == reply.status_code
    reference: str = reply.get_json()["response"]["frame"]["data"]
    return reference


def read(client: Any, reference: str) -> Any:
    body = callback_body("size.children", [("frame", "data", reference)])
    return client.post("/_dash-update-component", json=body)


def session_of(app: Any, client: Any, db: DashDatabase) -> Any:
    return db.session(client.get_cookie(cookie_name_for(app)).value)


def test_serverside_values_live_in_the_browser_session(enrich: Any, db: DashDatabase) -> None:
    app = make_app(enrich, db)
    client = browser(app)

    reference = load(client, 2)

    assert "2000 items" == read(client, reference).get_json()["response"]["size"]["children"]
    keys = set(session_of(app, client, db))
    (value_key,) = keys - {OUTPUT_PREFIX + "frame.data"}
    assert value_key.startswith(KEY_PREFIX)
    assert OUTPUT_PREFIX + "frame.data" in keys


def test_writing_the_same_output_again_replaces_the_value(enrich: Any, db: DashDatabase) -> None:
    app = make_app(enrich, db)
    client = browser(app)

    references = [load(client, clicks) for clicks in (1, 2, 3)]

    assert 3 == len(set(references))  # a fresh reference per version: the readers run again
    assert 2 == len(session_of(app, client, db))  # the latest value and its output's entry
    assert "3000 items" == read(client, references[-1]).get_json()["response"]["size"]["children"]
    assert [204, 204] == [read(client, stale).status_code for stale in references[:-1]]


def test_a_reference_replayed_in_another_browser_reads_nothing(
    enrich: Any, db: DashDatabase
) -> None:
    app = make_app(enrich, db)
    victim, attacker = browser(app), browser(app)

    reply = read(attacker, load(victim))

    assert 204 == reply.status_code


def test_a_fixed_key_replaces_the_value(enrich: Any, db: DashDatabase) -> None:
    app = make_app(enrich, db, key="frame")
    client = browser(app)

    load(client, 1)
    reference = load(client, 3)

    assert {KEY_PREFIX + "frame", OUTPUT_PREFIX + "frame.data"} == set(session_of(app, client, db))
    assert "3000 items" == read(client, reference).get_json()["response"]["size"]["children"]


def test_the_backend_answers_has_for_the_current_session_only(
    enrich: Any, db: DashDatabase
) -> None:
    app = make_app(enrich, db, key="frame")
    victim, attacker = browser(app), browser(app)
    load(victim)
    backend = ServersideSessionBackend(db)
    found = {}

    for name, client in (("victim", victim), ("attacker", attacker)):
        with app.server.test_request_context(headers={"Cookie": client_cookie(app, client)}):
            from dash._callback_context import context_value
            from dash._utils import AttributeDict

            cookies = {cookie_name_for(app): client.get_cookie(cookie_name_for(app)).value}
            token = context_value.set(
                AttributeDict(cookies=cookies, input_values={}, state_values={})
            )
            try:
                found[name] = backend.has("frame")
            finally:
                context_value.reset(token)

    assert {"victim": True, "attacker": False} == found


def client_cookie(app: Any, client: Any) -> str:
    return f"{cookie_name_for(app)}={client.get_cookie(cookie_name_for(app)).value}"


def test_a_callback_with_several_outputs_keeps_each_value_readable(
    enrich: Any, db: DashDatabase
) -> None:
    # The backend cannot tell which of several outputs a value is for: it replaces nothing.
    backend = ServersideSessionBackend(db)
    app = enrich.DashProxy(__name__, transforms=[enrich.ServersideOutputTransform([backend])])
    app.layout = html.Div([html.Button(id="load"), dcc.Store(id="frame"), html.Div(id="size")])
    enable_browser_sessions(app, db)

    @app.callback(Output("frame", "data"), Output("load", "title"), Input("load", "n_clicks"))
    def load_two(n_clicks: int) -> Any:
        return enrich.Serverside(list(range(n_clicks * 1000))), "loaded"

    @app.callback(Output("size", "children"), Input("frame", "data"))
    def size(frame: list[int]) -> str:
        return f"{len(frame)} items"

    client = browser(app)

    def load_frame(clicks: int) -> str:
        body = callback_body("..frame.data...load.title..", [("load", "n_clicks", clicks)])
        reply = client.post("/_dash-update-component", json=body).get_json()
        return str(reply["response"]["frame"]["data"])

    tokens = [load_frame(1), load_frame(2)]

    sizes = [read(client, token).get_json()["response"]["size"]["children"] for token in tokens]
    assert ["1000 items", "2000 items"] == sizes
    assert not any(key.startswith(OUTPUT_PREFIX) for key in session_of(app, client, db))
