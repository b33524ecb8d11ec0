"""Safe by default: the layout guard, page-load recovery and renewal of ids, their maximum
age, Cache-Control, per-app cookie names, visible errors and the startup checks."""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Any

import pytest
from dash import Dash, Input, Output, State, dcc, html

from dash_database import (
    BackendError,
    DashDatabase,
    InvalidArgumentError,
    InvalidSessionIdError,
    LayoutError,
    MemoryBackend,
)
from dash_database.dash import (
    COOKIE_NAME,
    ERROR_MESSAGE_ID,
    SESSION_STORE_ID,
    cookie_name_for,
    current_session,
    enable_browser_sessions,
    enable_error_messages,
    session_store,
    tab_session,
)
from tests.support import FakeClock, require
from tests.ui_support import app_cookie, callback_body, clean_env, free_port, server_process

KEY = "k" * 32
OTHER_KEY = "x" * 32
DAY = 24 * 3600.0
WEEK = 7 * DAY
COOKIE = cookie_name_for(Dash(__name__))
LOAD_CHECK = f"{SESSION_STORE_ID}.data"  # the output of the page-load check


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(clock: FakeClock) -> DashDatabase:
    return DashDatabase(MemoryBackend(), secret_key=KEY, clock=clock)


def forge(session_id: str) -> str:
    """Return ``session_id`` with its signature altered."""
    return session_id[:-2] + ("BB" if session_id.endswith("AA") else "AA")


def name_of(session_id: str) -> str:
    return session_id[: len("dds1.") + 43]


def tab_app(db: DashDatabase, **dash_options: Any) -> Dash:
    app = Dash(__name__, **dash_options)
    app.layout = lambda: html.Div([html.Button(id="show"), html.Div(id="out"), session_store(db)])

    @app.callback(
        Output("out", "children"), Input("show", "n_clicks"), State(SESSION_STORE_ID, "data")
    )
    def show(n_clicks: int, session_id: str) -> str:
        return f"tab has {tab_session(db, session_id).get('value')}"

    return app


def browser_app(db: DashDatabase) -> Dash:
    app = Dash(__name__)
    app.layout = html.Div([dcc.Input(id="value"), html.Div(id="saved")])
    enable_browser_sessions(app, db)

    @app.callback(Output("saved", "children"), Input("value", "value"))
    def save(value: str) -> str:
        session = current_session(db)
        if value is not None:
            session["value"] = value
        return f"has {session.get('value')}"

    return app


def page_check(client: Any, session_id: Any) -> Any:
    body = callback_body(LOAD_CHECK, [(SESSION_STORE_ID, "data", session_id)])
    return client.post("/_dash-update-component", json=body)


def cookies_set(response: Any) -> dict[str, str]:
    pairs = [v.split(";")[0].split("=", 1) for v in response.headers.getlist("Set-Cookie")]
    return {name: value for name, value in pairs}


def save(client: Any, value: str | None) -> Any:
    return client.post(
        "/_dash-update-component", json=callback_body("saved.children", [("value", "value", value)])
    )


# -- the layout guard -------------------------------------------------------------------------


def test_session_store_outside_a_layout_function_or_request_is_refused(db: DashDatabase) -> None:
    with pytest.raises(LayoutError, match=r"app\.layout = lambda: html\.Div"):
        session_store(db)


def test_a_static_layout_with_a_session_store_is_refused_where_it_is_written(
    db: DashDatabase,
) -> None:
    app = Dash(__name__)

    with pytest.raises(LayoutError, match="same session id"):
        app.layout = html.Div([html.Div(id="out"), session_store(db)])


def test_a_layout_function_gets_a_new_id_for_every_page_load(db: DashDatabase) -> None:
    client = tab_app(db).server.test_client()

    ids = [client.get("/_dash-layout").get_json() for _ in range(2)]
    stores = [layout["props"]["children"][2]["props"]["data"] for layout in ids]

    assert stores[0] != stores[1]
    assert all(db.session(session_id) is not None for session_id in stores)


def test_a_layout_function_works_when_dash_does_not_validate_it_at_assignment(
    db: DashDatabase,
) -> None:
    client = tab_app(db, suppress_callback_exceptions=True).server.test_client()

    layout = client.get("/_dash-layout").get_json()

    assert db.session(layout["props"]["children"][2]["props"]["data"]) is not None


def test_a_callback_may_return_a_new_session_store(db: DashDatabase) -> None:
    app = tab_app(db)

    @app.callback(Output("out", "title"), Input("show", "n_clicks"))
    def new_store(n_clicks: int) -> str:
        return str(session_store(db, id="another").data)

    reply = app.server.test_client().post(
        "/_dash-update-component", json=callback_body("out.title", [("show", "n_clicks", 1)])
    )

    assert db.session(reply.get_json()["response"]["out"]["title"]) is not None


def test_the_layout_response_is_not_stored_by_browsers_or_proxies(db: DashDatabase) -> None:
    client = tab_app(db).server.test_client()

    assert "no-store" == client.get("/_dash-layout").headers["Cache-Control"]


# -- page-load recovery and renewal of a tab's id ---------------------------------------------


def test_page_load_keeps_a_valid_tab_id(db: DashDatabase) -> None:
    client = tab_app(db).server.test_client()

    assert 204 == page_check(client, db.new_session_id()).status_code


@pytest.mark.parametrize("kind", ["other key", "tampered", "expired", "missing", "plain"])
def test_page_load_replaces_a_tab_id_that_fails_verification(
    db: DashDatabase, clock: FakeClock, kind: str
) -> None:
    client = tab_app(db).server.test_client()
    bad = {
        "other key": DashDatabase(MemoryBackend(), secret_key=OTHER_KEY).new_session_id(),
        "tampered": forge(db.new_session_id()),
        "expired": db.new_session_id(),
        "missing": None,
        "plain": "not-an-id",
    }[kind]
    clock.advance(WEEK + 1)

    reply = page_check(client, bad)
    fresh = reply.get_json()["response"][SESSION_STORE_ID]["data"]

    assert fresh != bad
    assert db.session(fresh) is not None
    assert "no-store" == reply.headers["Cache-Control"]


def test_page_load_renews_an_old_tab_id_and_the_session_keeps_its_data(
    db: DashDatabase, clock: FakeClock
) -> None:
    client = tab_app(db).server.test_client()
    old = db.new_session_id()
    db.session(old)["value"] = "kept"
    clock.advance(4 * DAY)

    renewed = page_check(client, old).get_json()["response"][SESSION_STORE_ID]["data"]
    clock.advance(4 * DAY)

    assert renewed != old
    assert name_of(renewed) == name_of(old)
    assert "kept" == db.session(renewed)["value"]
    with pytest.raises(InvalidSessionIdError, match="expired"):
        db.session(old)


def test_tab_session_error_says_that_reloading_helps(db: DashDatabase) -> None:
    app = tab_app(db)
    other = DashDatabase(MemoryBackend(), secret_key=OTHER_KEY).new_session_id()

    with (
        app.server.test_request_context("/_dash-update-component"),
        pytest.raises(InvalidSessionIdError, match="reloading the page gives the tab a new"),
    ):
        tab_session(db, other)


# -- maximum age of ids -----------------------------------------------------------------------


def test_ids_expire_after_a_week_by_default(db: DashDatabase, clock: FakeClock) -> None:
    session_id = db.new_session_id()
    clock.advance(WEEK)
    db.session(session_id)
    clock.advance(1)

    with pytest.raises(InvalidSessionIdError, match="expired"):
        db.store_user_value(session_id, "k", "v")


def test_maximum_age_is_configurable_or_off(clock: FakeClock) -> None:
    short = DashDatabase(MemoryBackend(), secret_key=KEY, clock=clock, session_id_max_age=60)
    forever = DashDatabase(MemoryBackend(), secret_key=KEY, clock=clock, session_id_max_age=None)
    short_id, forever_id = short.new_session_id(), forever.new_session_id()
    clock.advance(365 * DAY)

    with pytest.raises(InvalidSessionIdError, match="session_id_max_age=60"):
        short.session(short_id)
    assert forever.session(forever_id) is not None


@pytest.mark.parametrize("bad", [0, -1, "60", True])
def test_invalid_maximum_age_is_refused(bad: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="session_id_max_age"):
        DashDatabase(MemoryBackend(), secret_key=KEY, session_id_max_age=bad)


def test_core_error_for_a_rejected_id_does_not_tell_to_reload(db: DashDatabase) -> None:
    other = DashDatabase(MemoryBackend(), secret_key=OTHER_KEY).new_session_id()

    with pytest.raises(InvalidSessionIdError) as info:
        db.session(other)

    assert "reload" not in str(info.value)
    assert "db.new_session_id()" in str(info.value)


# -- per-browser cookies ----------------------------------------------------------------------


def test_page_load_replaces_a_cookie_signed_with_another_key(db: DashDatabase) -> None:
    client = browser_app(db).server.test_client()
    client.set_cookie(COOKIE, DashDatabase(MemoryBackend(), secret_key=OTHER_KEY).new_session_id())

    page = client.get("/")

    assert db.session(cookies_set(page)[COOKIE]) is not None
    assert "no-store" == page.headers["Cache-Control"]


def test_page_load_replaces_an_expired_cookie(db: DashDatabase, clock: FakeClock) -> None:
    client = browser_app(db).server.test_client()
    client.get("/")
    old = client.get_cookie(COOKIE).value  # type: ignore[union-attr]
    clock.advance(WEEK + 1)

    fresh = cookies_set(client.get("/"))[COOKIE]

    assert name_of(fresh) != name_of(old)


def test_callbacks_renew_an_old_cookie_and_keep_the_session(
    db: DashDatabase, clock: FakeClock
) -> None:
    client = browser_app(db).server.test_client()
    client.get("/")
    old = client.get_cookie(COOKIE).value  # type: ignore[union-attr]
    save(client, "kept")
    clock.advance(4 * DAY)

    reply = save(client, None)
    clock.advance(4 * DAY)

    assert name_of(cookies_set(reply)[COOKIE]) == name_of(old)
    assert "has kept" in save(client, None).get_data(as_text=True)


def test_responses_without_an_id_keep_their_caching(db: DashDatabase) -> None:
    client = browser_app(db).server.test_client()
    client.get("/")

    assert "Cache-Control" not in client.get("/_dash-dependencies").headers


def test_callback_error_for_a_bad_cookie_says_that_reloading_helps(db: DashDatabase) -> None:
    app = browser_app(db)
    app.config.suppress_callback_exceptions = True
    client = app.server.test_client()

    @app.server.errorhandler(InvalidSessionIdError)
    def shown(error: Exception) -> tuple[str, int]:
        return str(error), 500

    client.set_cookie(COOKIE, forge(db.new_session_id()))
    reply = client.post(
        "/_dash-update-component", json=callback_body("saved.children", [("value", "value", "x")])
    )

    assert "reloading the page gives this browser a new session" in reply.get_data(as_text=True)


def test_default_cookie_names_differ_per_app_module_and_url_prefix() -> None:
    names = {
        cookie_name_for(Dash("first_app")),
        cookie_name_for(Dash("second_app")),
        cookie_name_for(Dash("first_app", url_base_pathname="/other/")),
    }

    assert 3 == len(names)
    assert all(name.startswith(COOKIE_NAME + "_") for name in names)
    assert app_cookie("first_app") == cookie_name_for(Dash("first_app"))


def test_a_module_is_named_by_its_last_part_as_when_run_as_a_script() -> None:
    assert app_cookie("data_app") == cookie_name_for(Dash("examples.data_app"))


def test_a_script_is_named_by_its_file(monkeypatch: pytest.MonkeyPatch) -> None:
    main = type(sys)("__main__")
    main.__file__ = "/somewhere/data_app.py"
    monkeypatch.setitem(sys.modules, "__main__", main)

    assert app_cookie("data_app") == cookie_name_for(Dash("__main__"))


def test_an_explicit_cookie_name_is_used(db: DashDatabase) -> None:
    app = Dash(__name__)
    app.layout = html.Div()
    enable_browser_sessions(app, db, cookie_name="mine")

    assert ["mine"] == list(cookies_set(app.server.test_client().get("/")))


# -- visible errors ---------------------------------------------------------------------------


def failing_app(error: Exception) -> Dash:
    app = Dash(__name__)
    app.layout = html.Div([html.Button(id="go"), html.Div(id="out")])
    enable_error_messages(app)

    @app.callback(Output("out", "children"), Input("go", "n_clicks"))
    def go(n_clicks: int) -> str:
        raise error

    return app


def press(app: Dash) -> Any:
    body = callback_body("out.children", [("go", "n_clicks", 1)])
    return app.server.test_client().post("/_dash-update-component", json=body)


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (InvalidSessionIdError("The signed session id expired."), "Reload the page"),
        (BackendError("Redis at redis://127.0.0.1:1/0 is down."), "session store is unavailable"),
    ],
)
def test_a_dash_database_error_shows_a_message_instead_of_nothing(
    error: Exception, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="dash_database.dash"):
        reply = press(failing_app(error))

    update = reply.get_json()["sideUpdate"][ERROR_MESSAGE_ID]
    assert 200 == reply.status_code
    assert shown in update["children"]
    assert update["hidden"] is False
    assert str(error) in caplog.text


def test_the_message_element_is_on_every_page() -> None:
    layout = failing_app(ValueError()).server.test_client().get("/_dash-layout").get_json()

    assert ERROR_MESSAGE_ID in str(layout)


def test_other_errors_keep_dash_s_own_handling() -> None:
    reply = press(failing_app(ZeroDivisionError("app bug")))

    assert 500 == reply.status_code


def test_the_app_s_own_error_handler_still_handles_other_errors() -> None:
    seen: list[Exception] = []
    app = Dash(__name__, on_error=seen.append)
    app.layout = html.Div([html.Button(id="go"), html.Div(id="out")])
    enable_error_messages(app)

    @app.callback(Output("out", "children"), Input("go", "n_clicks"))
    def go(n_clicks: int) -> str:
        raise KeyError("app bug")

    press(app)

    assert ["'app bug'"] == [str(e) for e in seen]


def test_the_log_never_holds_the_secret_or_a_session_id(
    db: DashDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    app = tab_app(db)
    enable_error_messages(app)
    forged = forge(db.new_session_id())
    body = callback_body(
        "out.children", [("show", "n_clicks", 1)], [(SESSION_STORE_ID, "data", forged)]
    )

    with caplog.at_level(logging.INFO):
        reply = app.server.test_client().post("/_dash-update-component", json=body)
        page_check(app.server.test_client(), forged)

    assert "Reload the page" in str(reply.get_json())
    assert caplog.text
    assert KEY not in caplog.text
    assert name_of(forged)[5:] not in caplog.text


# -- startup checks ---------------------------------------------------------------------------


def test_check_passes_on_a_working_store(db: DashDatabase) -> None:
    db.check()


def test_check_names_an_unreachable_store_without_its_password() -> None:
    require(importlib.util.find_spec("redis") is not None, 'pip install "dash-database[redis]"')
    db = DashDatabase.from_url(f"redis://:hunter2secret@127.0.0.1:{free_port()}/0", secret_key=KEY)

    with pytest.raises(BackendError, match=r"127\.0\.0\.1") as info:
        db.check()

    assert "hunter2secret" not in str(info.value)
    assert "Check that it is running" in str(info.value)


@pytest.mark.parametrize(
    ("argv", "warns"),
    [
        (["gunicorn", "-w", "4", "app:server"], True),
        (["gunicorn", "--workers=2", "app:server"], True),
        (["gunicorn", "-w4", "app:server"], True),
        (["gunicorn", "app:server"], False),
        (["app.py"], False),
    ],
)
def test_a_private_store_under_several_gunicorn_workers_warns(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], warns: bool
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    app = Dash(__name__)
    db = DashDatabase(":memory:", secret_key=KEY)

    if warns:
        with pytest.warns(UserWarning, match="gunicorn runs .* workers"):
            enable_browser_sessions(app, db)
    else:
        enable_browser_sessions(app, db)


def test_a_shared_store_under_gunicorn_does_not_warn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(sys, "argv", ["gunicorn", "-w", "4", "app:server"])
    db = DashDatabase(tmp_path / "shared.sqlite", secret_key=KEY)

    enable_browser_sessions(Dash(__name__), db)
    db.close()


def test_a_callback_renews_an_old_tab_id_in_its_store(db: DashDatabase, clock: FakeClock) -> None:
    client = tab_app(db).server.test_client()
    old = db.new_session_id()
    db.session(old)["value"] = "kept"
    clock.advance(4 * DAY)
    body = callback_body(
        "out.children", [("show", "n_clicks", 1)], [(SESSION_STORE_ID, "data", old)]
    )

    reply = client.post("/_dash-update-component", json=body).get_json()
    renewed = reply["sideUpdate"][SESSION_STORE_ID]["data"]
    clock.advance(4 * DAY)

    assert "tab has kept" == reply["response"]["out"]["children"]
    assert name_of(renewed) == name_of(old)
    assert "kept" == tab_session(db, renewed)["value"]


def test_a_callback_leaves_a_recent_tab_id_alone(db: DashDatabase) -> None:
    client = tab_app(db).server.test_client()
    body = callback_body(
        "out.children", [("show", "n_clicks", 1)], [(SESSION_STORE_ID, "data", db.new_session_id())]
    )

    assert "sideUpdate" not in client.post("/_dash-update-component", json=body).get_json()


MEMORY_APP = """
from dash import Dash, html
from dash_database import DashDatabase
from dash_database.dash import session_store

db = DashDatabase("memory://", secret_key="k" * 32)
app = Dash(__name__)
app.layout = lambda: html.Div([html.Div(id="out"), session_store(db)])
server = app.server
"""


@pytest.mark.slow
def test_gunicorn_with_several_workers_on_a_memory_store_warns_at_startup(tmp_path: Any) -> None:
    require(importlib.util.find_spec("gunicorn") is not None, "pip install gunicorn")
    (tmp_path / "memory_app.py").write_text(MEMORY_APP)
    port = free_port()
    args = ["-m", "gunicorn", "-w", "2", "--bind", f"127.0.0.1:{port}", "memory_app:server"]

    with server_process(args, tmp_path, clean_env(), f"http://127.0.0.1:{port}"):
        pass

    log = (tmp_path / "server.log").read_text()
    assert "gunicorn runs 2 workers" in log
    assert "Use a store every worker shares" in log


def test_without_the_page_load_check_the_error_says_how_to_get_it(db: DashDatabase) -> None:
    app = Dash(__name__)
    app.layout = html.Div([html.Button(id="show"), html.Div(id="out")])  # no session_store
    other = DashDatabase(MemoryBackend(), secret_key=OTHER_KEY).new_session_id()

    with (
        app.server.test_request_context("/_dash-update-component"),
        pytest.raises(InvalidSessionIdError, match=r"in the function assigned to app\.layout"),
    ):
        tab_session(db, other)
