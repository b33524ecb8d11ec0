"""Server-side values between callbacks (@server_side, ServerValue) and Session.require,
through Dash's Flask server: the browser is simulated by HTTP requests with their own cookies."""

from __future__ import annotations

import contextvars
import importlib.util
from typing import Any

import pytest
from dash import ALL, Dash, Input, Output, State, dcc, html

from dash_database import (
    DashDatabase,
    InvalidValueTokenError,
    MemoryBackend,
    QuotaExceededError,
    RequiredKeyError,
)
from dash_database.dash import (
    ERROR_MESSAGE_ID,
    SESSION_STORE_ID,
    ServerValue,
    cookie_name_for,
    enable_browser_sessions,
    enable_error_messages,
    server_side,
    session_store,
    tab_session,
)
from dash_database.dash._values import KEY_PREFIX, TOKEN_PREFIX
from tests.support import require
from tests.ui_support import callback_body

KEY = "k" * 32
COOKIE = cookie_name_for(Dash(__name__))
BIG = list(range(20_000))  # stands for a DataFrame: far larger than its token


@pytest.fixture(params=["memory", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    backend = MemoryBackend() if request.param == "memory" else str(tmp_path / "s.sqlite")
    with DashDatabase(backend, secret_key=KEY) as database:
        yield database


def make_app(db: DashDatabase, *, error_messages: bool = False) -> Dash:
    app = Dash(__name__)
    app.layout = lambda: html.Div(
        [
            html.Button(id="load"),
            dcc.Store(id="frame"),
            html.Div(id="size"),
            html.Div(id="first"),
            html.Div(id="needs"),
            session_store(db),
        ]
    )
    enable_browser_sessions(app, db)
    if error_messages:
        enable_error_messages(app)

    @app.callback(Output("frame", "data"), Input("load", "n_clicks"))
    @server_side(db)
    def load(n_clicks: int) -> Any:
        return ServerValue([n_clicks, *BIG])

    @app.callback(Output("size", "children"), Input("frame", "data"))
    @server_side(db)
    def size(frame: list[int]) -> str:
        return f"{len(frame)} items, first {frame[0]}"

    @app.callback(Output("needs", "children"), Input("size", "children"))
    @server_side(db)
    def needs(text: str) -> str:
        return str(current_session_value(db))

    return app


def current_session_value(db: DashDatabase) -> Any:
    from dash_database.dash import current_session

    return current_session(db).require("not stored")


def post(client: Any, body: dict[str, Any]) -> Any:
    return client.post("/_dash-update-component", json=body)


def load(client: Any, clicks: int = 1) -> str:
    reply = post(client, callback_body("frame.data", [("load", "n_clicks", clicks)]))
    assert reply.status_code == 200
    token: str = reply.get_json()["response"]["frame"]["data"]
    return token


def read(client: Any, token: Any) -> Any:
    return post(client, callback_body("size.children", [("frame", "data", token)]))


def browser(app: Dash) -> Any:
    client = app.server.test_client()
    client.get("/")  # the page issues the session cookie
    return client


def test_reader_receives_the_value_while_the_browser_holds_a_short_token(
    db: DashDatabase,
) -> None:
    client = browser(make_app(db))

    token = load(client, 3)
    reply = read(client, token)

    assert token.startswith(TOKEN_PREFIX)
    assert len(token) < 150
    assert f"{len(BIG) + 1} items, first 3" == reply.get_json()["response"]["size"]["children"]


def test_writing_the_output_again_replaces_the_value_and_changes_the_token(
    db: DashDatabase,
) -> None:
    client = browser(make_app(db))
    session = db.session(client.get_cookie(COOKIE).value)

    first, second = load(client, 1), load(client, 2)

    assert first != second
    assert [KEY_PREFIX + "frame.data"] == list(session)
    assert 2 == session[KEY_PREFIX + "frame.data"][0]
    assert "first 2" in read(client, second).get_json()["response"]["size"]["children"]


def test_an_old_version_s_token_stops_the_reader_quietly(db: DashDatabase) -> None:
    client = browser(make_app(db))
    old = load(client, 1)
    load(client, 2)

    assert 204 == read(client, old).status_code


def test_a_missing_value_stops_the_reader_quietly(db: DashDatabase) -> None:
    client = browser(make_app(db))
    token = load(client)
    db.session(client.get_cookie(COOKIE).value).clear()

    assert 204 == read(client, token).status_code


def test_a_token_replayed_in_another_browser_is_refused(db: DashDatabase) -> None:
    app = make_app(db)
    victim, attacker = browser(app), browser(app)
    token = load(victim)

    reply = read(attacker, token)

    assert 500 == reply.status_code
    assert b"items" not in reply.data


def test_a_refused_token_shows_the_user_the_reload_message(db: DashDatabase) -> None:
    app = make_app(db, error_messages=True)
    victim, attacker = browser(app), browser(app)

    reply = read(attacker, load(victim))

    assert 200 == reply.status_code
    assert "size" not in reply.get_json()["response"]
    assert "Reload the page" in reply.get_json()["sideUpdate"][ERROR_MESSAGE_ID]["children"]


def test_an_altered_token_is_refused(db: DashDatabase) -> None:
    client = browser(make_app(db))
    token = load(client)
    body, _, signature = token.rpartition(".")
    key_text, version_text = body[len(TOKEN_PREFIX) :].split(".")

    def flip(char: str) -> str:
        return "A" if char != "A" else "B"

    altered = [
        f"{body}.{flip(signature[0])}{signature[1:]}",
        f"{TOKEN_PREFIX}{key_text}.{version_text[:-1]}{flip(version_text[-1])}.{signature}",
        f"{TOKEN_PREFIX}{key_text[:-1]}{flip(key_text[-1])}.{version_text}.{signature}",
        token[:-1],
        body,
        TOKEN_PREFIX,
    ]

    for bad in altered:
        assert 500 == read(client, bad).status_code, bad


def test_the_token_check_raises_a_session_error(db: DashDatabase) -> None:
    app = make_app(db)
    victim, attacker = browser(app), browser(app)
    token = load(victim)
    app.server.config["PROPAGATE_EXCEPTIONS"] = True

    with pytest.raises(InvalidValueTokenError, match="not issued to this session"):
        read(attacker, token)


def test_require_stops_a_decorated_callback_quietly(db: DashDatabase) -> None:
    client = browser(make_app(db))

    reply = post(client, callback_body("needs.children", [("size", "children", "x")]))

    assert 204 == reply.status_code


def test_require_stops_any_callback_quietly_with_error_messages(db: DashDatabase) -> None:
    app = Dash(__name__)
    app.layout = html.Div([html.Button(id="go"), html.Div(id="out")])
    enable_error_messages(app)

    @app.callback(Output("out", "children"), Input("go", "n_clicks"))
    def show(n_clicks: int) -> str:
        return str(db.session("plain").require("absent"))

    reply = post(app.server.test_client(), callback_body("out.children", [("go", "n_clicks", 1)]))

    assert 204 == reply.status_code


def test_require_outside_dash_is_a_key_error(db: DashDatabase) -> None:
    session = db.session("user")
    session["here"] = 1

    assert 1 == session.require("here")
    with pytest.raises(KeyError, match="no key 'absent'"):
        session.require("absent")
    with pytest.raises(RequiredKeyError):
        session.require("absent")


def test_values_count_against_the_session_quota() -> None:
    db = DashDatabase(MemoryBackend(), secret_key=KEY, max_session_bytes=10_000)
    app = make_app(db)
    app.server.config["PROPAGATE_EXCEPTIONS"] = True
    client = browser(app)

    with pytest.raises(QuotaExceededError):
        load(client)
    assert [] == list(db.session(client.get_cookie(COOKIE).value))


def test_a_tab_session_keeps_the_value_when_the_callback_takes_the_tab_id(
    db: DashDatabase,
) -> None:
    app = Dash(__name__)
    app.layout = lambda: html.Div([html.Button(id="go"), dcc.Store(id="v"), html.Div(id="out")])

    @app.callback(Output("v", "data"), Input("go", "n_clicks"), State(SESSION_STORE_ID, "data"))
    @server_side(db)
    def write(n_clicks: int, session_id: str) -> Any:
        return ServerValue({"clicks": n_clicks})

    @app.callback(Output("out", "children"), Input("v", "data"), State(SESSION_STORE_ID, "data"))
    @server_side(db)
    def show(value: dict[str, int], session_id: str) -> str:
        return f"clicks {value['clicks']}"

    client = app.server.test_client()
    tab, other_tab = db.new_session_id(), db.new_session_id()

    def call(output: str, inputs: tuple[str, str, Any], session_id: str) -> Any:
        body = callback_body(output, [inputs], [(SESSION_STORE_ID, "data", session_id)])
        return post(client, body)

    token = call("v.data", ("go", "n_clicks", 4), tab).get_json()["response"]["v"]["data"]
    shown = call("out.children", ("v", "data", token), tab)

    assert "clicks 4" == shown.get_json()["response"]["out"]["children"]
    assert {"clicks": 4} == tab_session(db, tab)[KEY_PREFIX + "v.data"]
    assert 500 == call("out.children", ("v", "data", token), other_tab).status_code


def test_several_outputs_and_pattern_matching_ids_each_keep_their_value(
    db: DashDatabase,
) -> None:
    app = Dash(__name__)
    app.layout = html.Div([html.Button(id="go")])
    enable_browser_sessions(app, db)

    @app.callback(
        Output("a", "data"),
        Output({"type": "part", "index": ALL}, "data"),
        Output("plain", "children"),
        Input("go", "n_clicks"),
    )
    @server_side(db)
    def write(n_clicks: int) -> Any:
        return ServerValue("a"), [ServerValue("p0"), "not kept"], "text"

    client = browser(app)
    body = callback_body("..a.data...plain.children..", [("go", "n_clicks", 1)])
    parts = [{"id": {"index": i, "type": "part"}, "property": "data"} for i in range(2)]
    body["output"] = '..a.data...{"index":["ALL"],"type":"part"}.data...plain.children..'
    body["outputs"] = [body["outputs"][0], parts, body["outputs"][1]]
    response = post(client, body).get_json()["response"]
    session = db.session(client.get_cookie(COOKIE).value)

    assert response["a"]["data"].startswith(TOKEN_PREFIX)
    assert "not kept" == response['{"index":1,"type":"part"}']["data"]
    assert "text" == response["plain"]["children"]
    assert "a" == session[KEY_PREFIX + "a.data"]
    assert "p0" == session[KEY_PREFIX + '{"index":0,"type":"part"}.data']
    assert 2 == len(session)


def test_server_value_without_the_decorator_fails_naming_the_fix(db: DashDatabase) -> None:
    with pytest.raises(Exception, match=r"@server_side\(db\)"):
        ServerValue(1).to_plotly_json()


def test_two_callbacks_writing_one_output_share_its_value(db: DashDatabase) -> None:
    app = Dash(__name__)
    app.layout = html.Div([html.Button(id="a"), html.Button(id="b"), dcc.Store(id="v")])
    enable_browser_sessions(app, db)

    @app.callback(Output("v", "data"), Input("a", "n_clicks"))
    @server_side(db)
    def from_a(n_clicks: int) -> Any:
        return ServerValue("from a")

    @app.callback(
        Output("v", "data", allow_duplicate=True),
        Input("b", "n_clicks"),
        prevent_initial_call=True,
    )
    @server_side(db)
    def from_b(n_clicks: int) -> Any:
        return ServerValue("from b")

    client = browser(app)
    deps = client.get("/_dash-dependencies").get_json()
    assert "@" in deps[1]["output"]  # Dash names a duplicate output "v.data@<hash>"
    for dep, button in zip(deps, ("a", "b")):
        body = callback_body("v.data", [(button, "n_clicks", 1)])
        body["output"] = dep["output"]
        body["outputs"] = {"id": "v", "property": dep["output"].split(".", 1)[1]}
        assert 200 == post(client, body).status_code

    session = db.session(client.get_cookie(COOKIE).value)
    assert {KEY_PREFIX + "v.data": "from b"} == dict(session)


def test_an_async_callback_reads_and_writes_values(db: DashDatabase) -> None:
    import dash

    if int(dash.__version__.split(".")[0]) < 3:
        pytest.skip("async callbacks need Dash 3 or later")
    require(
        importlib.util.find_spec("asgiref") is not None,
        "async callbacks on Flask need dash[async]",
    )
    app = make_async_app(db)
    client = browser(app)

    def round_trip() -> Any:
        reply = post(client, callback_body("v.data", [("go", "n_clicks", 2)]))
        token = reply.get_json()["response"]["v"]["data"]
        return post(client, callback_body("out.children", [("v", "data", token)]))

    # asgiref copies the callback's context variables back into the caller, Dash's callback
    # context included: a copied context keeps them from leaking into later tests.
    shown = contextvars.copy_context().run(round_trip)

    assert "got 2" == shown.get_json()["response"]["out"]["children"]


def make_async_app(db: DashDatabase) -> Dash:
    app = Dash(__name__)
    app.layout = html.Div([html.Button(id="go"), dcc.Store(id="v"), html.Div(id="out")])
    enable_browser_sessions(app, db)

    @app.callback(Output("v", "data"), Input("go", "n_clicks"))
    @server_side(db)
    async def write(n_clicks: int) -> Any:
        return ServerValue(n_clicks)

    @app.callback(Output("out", "children"), Input("v", "data"))
    @server_side(db)
    async def show(value: int) -> str:
        return f"got {value}"

    return app


def test_the_token_names_neither_the_session_nor_its_cookie(db: DashDatabase) -> None:
    client = browser(make_app(db))
    cookie = client.get_cookie(COOKIE).value

    token = load(client)

    assert db.session(cookie).session_id not in token
    assert cookie.split(".")[1] not in token  # the session's random part
