"""Forged and replayed session ids through the Dash helpers, fuzzed with Hypothesis.

``test_dash.py`` and ``test_dash_safety.py`` check a fixed list of alterations; here any edit
of a valid id, and any splice of two valid ids (one's token with the other's signature: a
signature replayed onto another session), either is refused with nothing written, or names
the very same session (an edit of the base64 padding bits). It never reaches another session,
nor a session the app keeps under a plain id (a cookie with any edit that breaks the signed
shape used to name one).
"""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dash_database import DashDatabase, MemoryBackend
from dash_database.dash import (
    ERROR_MESSAGE_ID,
    SESSION_STORE_ID,
    cookie_name_for,
    current_session,
    enable_browser_sessions,
    enable_error_messages,
    session_store,
    tab_session,
)
from tests.ui_support import callback_body

SECRET = "forged-ids-secret-0123456789abcdef"
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
NAME = len("dds1.") + 43


def make_app(db: DashDatabase) -> Dash:
    app = Dash(__name__)
    app.layout = lambda: html.Div([html.Button(id="go"), html.Div(id="out"), session_store(db)])
    enable_browser_sessions(app, db)
    enable_error_messages(app)

    @app.callback(
        Output("out", "children"), Input("go", "n_clicks"), State(SESSION_STORE_ID, "data")
    )
    def go(n_clicks: Any, tab_id: Any) -> str:
        session = tab_session(db, tab_id) if tab_id is not None else current_session(db)
        seen = session.get("owner")
        session["visits"] = session.get("visits", 0) + 1
        return f"owner={seen}"

    return app


DB = DashDatabase(MemoryBackend(), secret_key=SECRET)
APP = make_app(DB)
COOKIE = cookie_name_for(APP)
ALICE, BOB = DB.new_session_id(), DB.new_session_id()
DB.store_user_value(ALICE, "owner", "alice")
DB.store_user_value(BOB, "owner", "bob")


def edit(session_id: str, position: int, how: str, char: str) -> str:
    i = position % (len(session_id) + 1)
    return {
        "replace": session_id[:i] + char + session_id[i + 1 :],
        "insert": session_id[:i] + char + session_id[i:],
        "delete": session_id[:i] + session_id[i + 1 :],
        "truncate": session_id[:i],
    }[how]


def splice(token_of: str, rest_of: str) -> str:
    return token_of[:NAME] + rest_of[NAME:]


edits = st.builds(
    edit,
    st.sampled_from([ALICE, BOB]),
    st.integers(min_value=0, max_value=200),
    st.sampled_from(["replace", "insert", "delete", "truncate"]),
    st.sampled_from(BASE64URL + "."),
)
forged = edits | st.just(splice(ALICE, BOB)) | st.just(splice(BOB, ALICE))


def press(forged_id: str, as_tab: bool) -> Any:
    client = APP.server.test_client()
    state = [(SESSION_STORE_ID, "data", forged_id if as_tab else None)]
    if not as_tab:
        client.set_cookie(COOKIE, forged_id)
    body = callback_body("out.children", [("go", "n_clicks", 1)], state)
    return client.post("/_dash-update-component", json=body).get_json()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forged_id=forged, as_tab=st.booleans())
def test_a_forged_or_spliced_id_never_reaches_another_session(forged_id: str, as_tab: bool) -> None:
    visits = {who: DB.get_user_value(who, "visits", 0) for who in (ALICE, BOB)}
    stored = DB.stats().keys

    reply = press(forged_id, as_tab)

    if ERROR_MESSAGE_ID in reply.get("sideUpdate", {}):  # refused, and nothing was written
        assert "Reload the page" in str(reply["sideUpdate"])
        assert stored == DB.stats().keys
        assert visits == {who: DB.get_user_value(who, "visits", 0) for who in (ALICE, BOB)}
        return
    # Accepted: only an edit that leaves the signed name and a valid signature, which names
    # the very same session (the last base64 character carries unused bits).
    shown = reply["response"]["out"]["children"]
    same = ALICE if forged_id[:NAME] == ALICE[:NAME] else BOB
    assert forged_id[:NAME] in (ALICE[:NAME], BOB[:NAME])
    assert f"owner={'alice' if same == ALICE else 'bob'}" == shown
    assert visits[same] + 1 == DB.get_user_value(same, "visits")


def test_a_cookie_holding_a_plain_id_never_reaches_the_session_kept_under_it() -> None:
    DB.store_user_value("user:alice", "owner", "alice's account")  # as examples/login_app.py
    client = APP.server.test_client()
    client.set_cookie(COOKIE, "user:alice")
    body = callback_body(
        "out.children", [("go", "n_clicks", 1)], [(SESSION_STORE_ID, "data", None)]
    )

    reply = client.post("/_dash-update-component", json=body).get_json()

    assert "Reload the page" in str(reply["sideUpdate"][ERROR_MESSAGE_ID])
    assert ["owner"] == DB.list_stored_user_keys("user:alice")
