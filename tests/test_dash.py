"""Signed session ids and the Dash helpers, through the core API and Dash's Flask server."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import pickle
import stat
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import requests
from dash import Dash, Input, Output, State, dcc, html
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer

import dash_database as ddb
from dash_database import DashDatabase, InvalidSessionIdError, MemoryBackend
from dash_database._signing import PREFIX, SALT, looks_signed
from dash_database.dash import (
    COOKIE_NAME,
    SESSION_STORE_ID,
    cookie_name_for,
    current_session,
    enable_browser_sessions,
    session_store,
    tab_session,
)
from tests.support import require
from tests.ui_support import (
    browser,
    callback_body,
    clean_env,
    free_port,
    server_process,
)

KEY = "k" * 32
OLD_KEY = "o" * 32
#: The default cookie name of every app this module makes with Dash(__name__).
COOKIE = cookie_name_for(Dash(__name__))


def name_of(session_id: str) -> str:
    """Return the name the store keeps a signed session under: marker and token."""
    return session_id[: len(PREFIX) + 43]


@pytest.fixture
def db() -> DashDatabase:
    return DashDatabase(MemoryBackend(), secret_key=KEY)


def tampered(session_id: str) -> list[str]:
    """Return altered copies of a signed id: token, signature, truncated, unsigned."""
    body, _, signature = session_id.rpartition(".")
    flip = "A" if body[-1] != "A" else "B"
    flip_sig = "A" if signature[0] != "A" else "B"
    return [
        body[:-1] + flip + "." + signature,
        body + "." + flip_sig + signature[1:],
        session_id[:-1],
        body,
        body + ".",
        session_id + "x",
    ]


# -- the signed id format ---------------------------------------------------------------------


def test_new_session_id_is_prefixed_random_and_signed(db: DashDatabase) -> None:
    session_id = db.new_session_id()
    token = session_id[len(PREFIX) :].split(".")[0]

    assert session_id.startswith(PREFIX)
    assert len(token) >= 22  # base64url of at least 128 bits
    assert len({db.new_session_id() for _ in range(100)}) == 100


def test_signature_is_hmac_sha256_with_the_salt(db: DashDatabase) -> None:
    session_id = db.new_session_id()
    body = session_id.rpartition(".")[0]
    expected = Signer(KEY, salt=SALT, key_derivation="hmac", digest_method=hashlib.sha256)

    assert expected.sign(body).decode() == session_id


def test_signed_id_round_trips_through_every_1_0_method(db: DashDatabase) -> None:
    session_id = db.new_session_id()

    db.store_user_value(session_id, "a", 1)
    db.store_user_value(session_id, "b", 2)
    db.delete_user_value(session_id, "b")

    assert db.get_user_value(session_id, "a") == 1
    assert db.list_stored_user_keys(session_id) == ["a"]
    assert dict(db.session(session_id)) == {"a": 1}
    assert db.delete_all_user_values(session_id) == 1


def test_session_mapping_of_a_signed_id_supports_every_operation(db: DashDatabase) -> None:
    session = db.session(db.new_session_id())

    session.update(a=1, b=2)
    del session["a"]

    assert list(session) == ["b"]
    assert len(session) == 1
    session.clear()
    assert dict(session) == {}


def test_store_keeps_a_signed_session_under_its_id_without_the_signature(
    db: DashDatabase,
) -> None:
    session_id = db.new_session_id()
    db.store_user_value(session_id, "k", "v")

    assert db.session(session_id).session_id == name_of(session_id)
    assert db.backend.keys(name_of(session_id), 0.0) == ["k"]


# -- rejection --------------------------------------------------------------------------------


METHODS = {
    "store_user_value": lambda db, sid: db.store_user_value(sid, "k", "evil"),
    "get_user_value": lambda db, sid: db.get_user_value(sid, "k"),
    "list_stored_user_keys": lambda db, sid: db.list_stored_user_keys(sid),
    "delete_user_value": lambda db, sid: db.delete_user_value(sid, "k"),
    "delete_all_user_values": lambda db, sid: db.delete_all_user_values(sid),
    "session": lambda db, sid: db.session(sid),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_altered_signed_id_is_rejected_before_storage_is_touched(
    db: DashDatabase, method: str
) -> None:
    session_id = db.new_session_id()
    db.store_user_value(session_id, "k", "mine")

    for bad in tampered(session_id):
        with pytest.raises(InvalidSessionIdError, match="signature"):
            METHODS[method](db, bad)

    assert db.get_user_value(session_id, "k") == "mine"
    assert db.backend.keys(name_of(session_id), 0.0) == ["k"]


def test_invalid_session_id_error_is_a_value_error() -> None:
    assert issubclass(InvalidSessionIdError, ValueError)
    assert issubclass(InvalidSessionIdError, ddb.DashDatabaseError)
    assert "InvalidSessionIdError" in ddb.__all__


def test_id_signed_with_another_key_is_rejected(db: DashDatabase) -> None:
    other = DashDatabase(MemoryBackend(), secret_key="x" * 32)

    with pytest.raises(InvalidSessionIdError):
        db.session(other.new_session_id())


def test_id_signed_with_another_salt_is_rejected(db: DashDatabase) -> None:
    signer = Signer(KEY, salt="another-use", key_derivation="hmac", digest_method=hashlib.sha256)
    forged = signer.sign(PREFIX + "A" * 43).decode()

    with pytest.raises(InvalidSessionIdError):
        db.session(forged)


def test_plain_ids_still_work_beside_signed_ones(db: DashDatabase) -> None:
    db.store_user_value(123, "account_id", 46887)
    db.store_user_value("456", "favorite_color", "green")

    assert db.get_user_value(123, "account_id") == 46887
    assert db.list_stored_user_keys("456") == ["favorite_color"]


@pytest.mark.parametrize("plain", ["dds1.", "dds1.short", "dds1." + "A" * 42, PREFIX + "!" * 43])
def test_plain_ids_with_the_marker_but_not_the_shape_stay_plain(plain: str) -> None:
    db = DashDatabase(MemoryBackend())  # no secret: a signed id would warn

    db.store_user_value(plain, "k", "v")

    assert db.get_user_value(plain, "k") == "v"
    assert db.backend.keys(plain, 0.0) == ["k"]


@pytest.mark.parametrize("plain", ["dds1.", "dds1.short", "dds1." + "A" * 42])
def test_dash_helpers_reject_every_id_with_the_marker_but_not_the_shape(
    db: DashDatabase, plain: str
) -> None:
    with pytest.raises(InvalidSessionIdError):
        tab_session(db, plain)


def test_plain_ids_work_without_any_secret_and_without_a_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        db = DashDatabase(tmp_path / "plain.sqlite")
        db.store_user_value("user", "k", 1)
        assert db.get_user_value("user", "k") == 1
        db.close()
    # The key generated to seal values is kept beside the store, readable by its owner only.
    assert 0o600 == (tmp_path / "plain.sqlite.secret").stat().st_mode & 0o777


def test_plain_id_cannot_read_or_overwrite_a_signed_session(db: DashDatabase) -> None:
    session_id = db.new_session_id()
    stored_name = name_of(session_id)
    db.store_user_value(session_id, "k", "secret data")

    for plain in (stored_name, stored_name + ".", session_id.replace(PREFIX, "")):
        try:
            db.store_user_value(plain, "k", "overwritten")
            assert db.get_user_value(plain, "k") == "overwritten"
        except InvalidSessionIdError:
            pass

    assert db.get_user_value(session_id, "k") == "secret data"


@given(st.text())
def test_no_plain_str_id_names_the_store_namespace_of_signed_ids(plain: str) -> None:
    db = DashDatabase(MemoryBackend(), secret_key=KEY)
    try:
        name = db._session_name(plain)
    except (InvalidSessionIdError, ddb.InvalidIdError):
        return
    assert name == plain
    assert not looks_signed(name)


# -- keys -------------------------------------------------------------------------------------


def test_key_rotation_accepts_old_ids_and_signs_with_the_newest_key() -> None:
    backend = MemoryBackend()
    old = DashDatabase(backend, secret_key=OLD_KEY)
    rotated = DashDatabase(backend, secret_key=[KEY, OLD_KEY])
    old_id = old.new_session_id()
    old.store_user_value(old_id, "k", "kept")

    new_id = rotated.new_session_id()

    assert rotated.get_user_value(old_id, "k") == "kept"
    with pytest.raises(InvalidSessionIdError):
        old.session(new_id)
    assert DashDatabase(backend, secret_key=KEY).session(new_id) is not None


def test_secret_from_environment_with_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    old_id = DashDatabase(MemoryBackend(), secret_key=OLD_KEY).new_session_id()
    monkeypatch.setenv("DASH_DATABASE_SECRET", f"{KEY}, {OLD_KEY}")
    db = DashDatabase(MemoryBackend())

    db.session(old_id)
    DashDatabase(MemoryBackend(), secret_key=KEY).session(db.new_session_id())


@pytest.mark.parametrize("key", ["short", b"", [], ["k" * 32, "short"]])
def test_weak_or_empty_secret_key_is_refused(key: Any) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="secret"):
        DashDatabase(MemoryBackend(), secret_key=key)


def test_weak_secret_in_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASH_DATABASE_SECRET", "short")
    db = DashDatabase(MemoryBackend())

    with pytest.raises(ddb.InvalidArgumentError, match="DASH_DATABASE_SECRET"):
        db.new_session_id()


def test_without_a_secret_a_generated_one_is_kept_next_to_the_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASH_DATABASE_SECRET", raising=False)
    path = tmp_path / "app.sqlite"
    first = DashDatabase(path)
    with pytest.warns(UserWarning, match="DASH_DATABASE_SECRET") as record:
        session_id = first.new_session_id()
        first.new_session_id()
    first.store_user_value(session_id, "k", "v")
    second = DashDatabase(path)
    with pytest.warns(UserWarning):
        value = second.get_user_value(session_id, "k")

    assert len(record) == 1
    assert value == "v"
    assert stat.S_IMODE(os.stat(f"{path}.secret").st_mode) == 0o600
    first.close()
    second.close()


def test_processes_starting_at_once_agree_on_one_generated_secret(tmp_path: Path) -> None:
    path = str(tmp_path / "race.secret")
    code = (
        "import sys; from dash_database._signing import read_or_create_secret_file as f; "
        "sys.stdout.write(f(sys.argv[1]).decode())"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    keys = {proc.communicate(timeout=60)[0] for proc in procs}

    assert len(keys) == 1
    assert keys == {Path(path).read_text()}


def test_memory_store_without_a_secret_keeps_the_generated_key_in_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DASH_DATABASE_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)
    db = DashDatabase(":memory:")

    with pytest.warns(UserWarning, match="in memory"):
        db.session(db.new_session_id())
    assert list(tmp_path.iterdir()) == []


def test_pickled_database_accepts_the_same_ids(tmp_path: Path) -> None:
    db = DashDatabase(tmp_path / "p.sqlite", secret_key=KEY)
    session_id = db.new_session_id()
    db.store_user_value(session_id, "k", "v")

    clone = pickle.loads(pickle.dumps(db))

    assert clone.get_user_value(session_id, "k") == "v"
    db.close()
    clone.close()


# -- dash helpers -----------------------------------------------------------------------------


def test_session_store_is_a_session_storage_store_with_a_signed_id(db: DashDatabase) -> None:
    with Dash(__name__).server.test_request_context("/_dash-layout"):
        store = session_store(db)
        other = session_store(db)

    assert isinstance(store, dcc.Store)
    assert store.id == SESSION_STORE_ID
    assert store.storage_type == "session"
    assert db.session(store.data) is not None
    assert other.data != store.data


@pytest.mark.parametrize("bad", [None, "", "plain-id", 42])
def test_tab_session_refuses_a_missing_or_unsigned_id(db: DashDatabase, bad: Any) -> None:
    with pytest.raises(InvalidSessionIdError, match="session_store"):
        tab_session(db, bad)


def test_tab_session_refuses_a_forged_id(db: DashDatabase) -> None:
    for bad in tampered(db.new_session_id()):
        with pytest.raises(InvalidSessionIdError):
            tab_session(db, bad)


def test_current_session_outside_a_callback_raises(db: DashDatabase) -> None:
    with pytest.raises(RuntimeError, match="inside a Dash callback"):
        current_session(db)


def test_current_session_in_a_background_job_without_a_cookie_raises(db: DashDatabase) -> None:
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    # What a background job's context holds: the request's cookies, no response to set one.
    token = context_value.set(AttributeDict(cookies={}, input_values={}))
    try:
        with pytest.raises(InvalidSessionIdError, match="background"):
            current_session(db)
    finally:
        context_value.reset(token)


def make_app(db: DashDatabase, *, browser_sessions: bool = True) -> Dash:
    app = Dash(__name__)
    app.layout = lambda: html.Div(
        [dcc.Input(id="value"), html.Div(id="saved"), html.Div(id="shown"), session_store(db)]
    )
    if browser_sessions:
        enable_browser_sessions(app, db)

    @app.callback(Output("saved", "children"), Input("value", "value"))
    def save(value: str) -> str:
        session = current_session(db)
        session["value"] = value
        return f"saved {session.get('value')}"

    @app.callback(
        Output("shown", "children"), Input("value", "n_submit"), State(SESSION_STORE_ID, "data")
    )
    def show(n_submit: int, session_id: str) -> str:
        return f"tab has {tab_session(db, session_id).get('value')}"

    return app


def set_cookies(response: Any) -> list[str]:
    """Return the session cookies ``response`` sets (of any app: without
    enable_browser_sessions, the cookie is named after the app dash.get_app() returns)."""
    return [v for v in response.headers.getlist("Set-Cookie") if v.startswith(COOKIE_NAME + "_")]


def save_body(value: str) -> dict[str, Any]:
    return callback_body("saved.children", [("value", "value", value)])


def test_page_issues_an_http_only_same_site_lax_signed_cookie(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()

    (cookie,) = set_cookies(client.get("/"))

    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert db.session(session_id) is not None


def test_page_issues_a_secure_cookie_over_https(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()

    (cookie,) = set_cookies(client.get("/", base_url="https://localhost"))

    assert "Secure" in cookie


def test_page_issues_no_new_cookie_when_the_browser_has_a_valid_one(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    client.get("/")

    assert set_cookies(client.get("/")) == []
    assert set_cookies(client.post("/_dash-update-component", json=save_body("x"))) == []


def test_callbacks_share_the_browser_session_without_state(db: DashDatabase) -> None:
    app = make_app(db)
    alice, bob = app.server.test_client(), app.server.test_client()
    alice.get("/")
    bob.get("/")

    alice.post("/_dash-update-component", json=save_body("alice's"))
    reply = bob.post("/_dash-update-component", json=save_body("bob's"))
    alice_id = alice.get_cookie(COOKIE).value  # type: ignore[union-attr]
    bob_id = bob.get_cookie(COOKIE).value  # type: ignore[union-attr]

    assert reply.status_code == 200
    assert db.session(alice_id)["value"] == "alice's"
    assert db.session(bob_id)["value"] == "bob's"


def test_callback_issues_the_cookie_when_the_page_did_not(db: DashDatabase) -> None:
    client = make_app(db, browser_sessions=False).server.test_client()

    first = client.post("/_dash-update-component", json=save_body("v"))
    (cookie,) = set_cookies(first)
    second = client.post("/_dash-update-component", json=save_body("w"))

    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert set_cookies(second) == []
    assert db.session(cookie.split(";")[0].split("=", 1)[1])["value"] == "w"


def test_callback_rejects_a_tampered_cookie_and_writes_nothing(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    client.get("/")
    good = client.get_cookie(COOKIE).value  # type: ignore[union-attr]
    client.post("/_dash-update-component", json=save_body("original"))

    for bad in tampered(good):
        client.set_cookie(COOKIE, bad)
        reply = client.post("/_dash-update-component", json=save_body("forged"))
        assert reply.status_code == 500

    assert db.session(good)["value"] == "original"


def test_page_replaces_a_tampered_cookie(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    client.set_cookie(COOKIE, tampered(db.new_session_id())[0])

    (cookie,) = set_cookies(client.get("/"))

    assert db.session(cookie.split(";")[0].split("=", 1)[1]) is not None


def test_callback_rejects_a_tampered_tab_id(db: DashDatabase) -> None:
    client = make_app(db).server.test_client()
    good = db.new_session_id()
    db.session(good)["value"] = "original"

    def show(session_id: Any) -> Any:
        body = callback_body(
            "shown.children",
            [("value", "n_submit", 1)],
            [(SESSION_STORE_ID, "data", session_id)],
        )
        return client.post("/_dash-update-component", json=body)

    assert show(good).get_json()["response"]["shown"]["children"] == "tab has original"
    for bad in [*tampered(good), None, "plain"]:
        assert show(bad).status_code == 500


# -- background and async callbacks, in a browser -----------------------------------------------

#: Whether this Dash runs async callbacks (Dash 3 and later); the test uses one where it can.
ASYNC = "use_async" in inspect.signature(Dash.__init__).parameters
ASYNC_MODULES = ("asgiref",) if ASYNC else ()

BACKGROUND_APP = """
import os

import diskcache
from dash import DiskcacheManager, Dash, Input, Output, State, html

from dash_database import DashDatabase
from dash_database.dash import (
    SESSION_STORE_ID, current_session, enable_browser_sessions, session_store, tab_session,
)

db = DashDatabase("bg.sqlite", secret_key="k" * 32)
manager = DiskcacheManager(diskcache.Cache("cache"))
app = Dash(__name__, background_callback_manager=manager, **ASYNC_OPTION)
enable_browser_sessions(app, db)
app.layout = lambda: html.Div(
    [
        html.Button("run", id="run"),
        html.Div(id="ran"),
        html.Button("read", id="read"),
        html.Div(id="read-out"),
        session_store(db),
    ]
)


@app.callback(
    Output("ran", "children"),
    Input("run", "n_clicks"),
    State(SESSION_STORE_ID, "data"),
    background=True,
    prevent_initial_call=True,
)
def in_background(n_clicks, session_id):
    current_session(db)["browser"] = f"browser {os.getpid()}"
    tab_session(db, session_id)["tab"] = f"tab {os.getpid()}"
    return "ran in the background"


@app.callback(
    Output("read-out", "children"),
    Input("read", "n_clicks"),
    State(SESSION_STORE_ID, "data"),
    prevent_initial_call=True,
)
ASYNC_DEF read(n_clicks, session_id):
    browser = current_session(db)["browser"]
    tab = tab_session(db, session_id)["tab"]
    return f"{browser} / {tab} / server {os.getpid()}"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
"""


@pytest.mark.slow
def test_background_and_async_callbacks_use_both_kinds_of_session(tmp_path: Path) -> None:
    require(
        all(importlib.util.find_spec(m) for m in ("diskcache", "multiprocess", *ASYNC_MODULES)),
        'background and async callbacks need pip install "dash[diskcache,async]"',
    )
    (tmp_path / "bg_app.py").write_text(
        BACKGROUND_APP.replace("**ASYNC_OPTION", "use_async=True" if ASYNC else "").replace(
            "ASYNC_DEF", "async def" if ASYNC else "def"
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    env = clean_env(PORT=str(port))
    with server_process(["bg_app.py"], tmp_path, env, url) as server, browser(tmp_path) as chrome:
        chrome.server_url = url
        chrome.find_element("#run").click()
        chrome.wait_for_text_to_equal("#ran", "ran in the background", timeout=30)
        chrome.find_element("#read").click()
        chrome.wait_for_contains_text("#read-out", "/ server", timeout=10)
        shown = chrome.find_element("#read-out").text
        logs = chrome.get_logs()

    browser_pid, tab_pid, server_pid = (part.split()[1] for part in shown.split(" / "))
    assert browser_pid == tab_pid != server_pid == str(server.pid)
    assert logs == []


# -- Dash's other server backends (Dash >= 4: FastAPI and Quart), served by uvicorn --------------

ASGI_APP = """
import os
from dash import Dash, Input, Output, html, dcc
from dash_database import DashDatabase
from dash_database.dash import current_session, enable_browser_sessions

db = DashDatabase("asgi.sqlite", secret_key="k" * 32)
app = Dash(__name__, backend=os.environ["DASH_BACKEND"])
enable_browser_sessions(app, db)
app.layout = html.Div([dcc.Input(id="value"), html.Div(id="saved")])


@app.callback(Output("saved", "children"), Input("value", "value"))
def save(value):
    session = current_session(db)
    if value is not None:
        session["value"] = value
    return f"has {session.get('value')}"


server = app.server
"""


@pytest.fixture(params=["fastapi", "quart"])
def asgi_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    backend = request.param
    modules = {"fastapi": ["fastapi", "uvicorn"], "quart": ["quart", "uvicorn"]}[backend]
    if not hasattr(__import__("dash"), "backends"):
        pytest.skip("this Dash has no server backends other than Flask")
    require(
        all(importlib.util.find_spec(m) for m in modules),
        f'Dash\'s {backend} backend needs pip install "dash[{backend}]" uvicorn',
    )
    (tmp_path / "asgi_app.py").write_text(ASGI_APP)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "uvicorn", "asgi_app:server", "--port", str(port)]
    with server_process(args, tmp_path, clean_env(DASH_BACKEND=backend), url):
        yield url


@pytest.mark.slow
def test_browser_sessions_on_dash_asgi_backends(asgi_url: str) -> None:
    url = asgi_url + "/_dash-update-component"
    alice, bob = requests.Session(), requests.Session()
    page = alice.get(asgi_url, timeout=10)
    layout = alice.get(asgi_url + "/_dash-layout", timeout=10)
    save_alice = alice.post(url, json=save_body("alice's"), timeout=10)
    first_bob = bob.post(url, json=callback_body("saved.children", [("value", "value", None)]))
    forged = requests.Session()
    (name,) = [c for c in alice.cookies.get_dict() if c.startswith(COOKIE_NAME)]
    forged.cookies.set(name, tampered(alice.cookies[name])[1])

    (cookie,) = [c for c in page.headers.get("Set-Cookie", "").split(", ") if name in c]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "no-store" == page.headers["Cache-Control"]
    assert "no-store" == layout.headers["Cache-Control"]
    assert "Set-Cookie" not in save_alice.headers
    assert "has None" in first_bob.text
    assert name in first_bob.headers["Set-Cookie"]
    assert "has bob's" in bob.post(url, json=save_body("bob's"), timeout=10).text
    assert forged.post(url, json=save_body("forged"), timeout=10).status_code == 500
    assert "has alice's" in alice.post(url, json=save_body(None), timeout=10).text  # type: ignore[arg-type]
