"""Log in and keep your notes: a per-user session that survives closing the browser.

Users log in with Flask-Login. Their notes are kept in ``db.user_state(user_id)``, under the
user id that comes from Flask's signed session cookie, so a browser cannot name another
user's data; logging in from another browser, or after closing this one, shows the same
notes. Before logging in, a visitor
can write guest notes in this browser's session (a signed cookie from
``enable_browser_sessions``); logging in gives the browser a new session id (so that an id
planted before cannot follow the user in) and moves the guest notes into the account.

Run it with ``python examples/login_app.py`` (HOST and PORT choose the address, default
127.0.0.1:8050) or ``gunicorn -w 4 'examples.login_app:server'``. Set ``FLASK_SECRET_KEY``
(Flask-Login's cookie) and ``DASH_DATABASE_SECRET`` (dash_database's ids) to long random
strings, the same for every worker. The demo users are alice and bob (see ``USERS``).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import warnings
from typing import Any

import flask
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from dash_database import BackendError, DashDatabase, Session
from dash_database.dash import (
    current_session,
    enable_browser_sessions,
    enable_error_messages,
    renew_browser_session,
)

#: Demo accounts: user name -> password hash. A real app keeps these in its user database.
USERS = {
    "alice": generate_password_hash("wonderland"),
    "bob": generate_password_hash("builder"),
}

# A user's notes are removed after 30 days without a visit.
db = DashDatabase(ttl=30 * 24 * 60 * 60)
app = Dash(__name__, title="dash_database: login app", suppress_callback_exceptions=True)
server = app.server
server.config.from_prefixed_env()  # FLASK_SECRET_KEY -> SECRET_KEY
if not server.config.get("SECRET_KEY"):
    warnings.warn(
        "FLASK_SECRET_KEY is not set: logins last until the server restarts and work in one "
        "process only. Set it to a long random string, the same for every worker.",
        stacklevel=1,
    )
    server.secret_key = secrets.token_urlsafe(32)
enable_browser_sessions(app, db)
enable_error_messages(app)  # a short message on the page when the store fails, not a blank one
try:
    db.check()  # an unreachable store is named in the log at startup...
except BackendError as exc:
    # ...but the app still starts: gunicorn stops the whole server when a worker it
    # respawns during an outage fails to boot. Until the store answers, pages say so.
    logging.getLogger(__name__).warning("%s", exc)

login_manager = LoginManager(server)


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return User(user_id) if user_id in USERS else None


@server.route("/logout")
def logout() -> Any:
    logout_user()
    return flask.redirect("/")


def user_session() -> Session:
    """Return the logged-in user's state: keyed by the user id Flask-Login verified."""
    # Never an id the browser sent: no session id, signed or plain, names a user's state.
    return db.user_state(current_user.id)


def read_notes(session: Session) -> list[str]:
    """Return the notes of ``session``, oldest first."""
    notes = (session.get(key) for key in sorted(session) if key.startswith("note:"))
    return [note for note in notes if note is not None]


def add_note(session: Session, note: str) -> None:
    # One key per note, named by the time: two browsers adding a note at the same moment each
    # write their own key instead of overwriting one shared list.
    session[f"note:{time.time_ns():020d}:{secrets.token_hex(4)}"] = note


def notes_list(notes: list[str]) -> Any:
    if not notes:
        return html.P("No notes yet.", className="muted")
    return html.Ul([html.Li(note) for note in notes], id="note-items")


def note_form(title: str, intro: str) -> html.Div:
    return html.Div(
        className="card",
        children=[
            html.H2(title),
            html.P(intro, className="muted"),
            html.Div(
                className="row",
                children=[
                    dcc.Input(id="note", placeholder="Write a note", className="grow"),
                    html.Button("Add", id="add"),
                ],
            ),
            html.Div(id="notes", className="message"),
        ],
    )


def login_form() -> html.Div:
    return html.Div(
        className="card",
        children=[
            html.H2("Log in"),
            html.P("Demo users: alice (password wonderland) and bob (builder).", className="muted"),
            html.Div(
                className="row",
                children=[
                    dcc.Input(id="username", placeholder="User name", type="text"),
                    dcc.Input(id="password", placeholder="Password", type="password"),
                    html.Button("Log in", id="login"),
                ],
            ),
            html.Div(id="login-message", className="message"),
        ],
    )


def layout() -> html.Div:
    """Return the login page or the user's notes; a function, run for every page load."""
    header = html.Header(
        [
            html.H1("Notes that follow you"),
            html.P("Log in and your notes are kept on the server under your account."),
            dcc.Location(id="url", refresh=True),
        ]
    )
    if current_user.is_authenticated:
        bar = html.Div(
            className="card user-bar",
            children=[
                html.Span(["Logged in as ", html.B(current_user.id, id="user-name")]),
                html.A("Log out", href="/logout", id="logout"),
            ],
        )
        intro = "Kept on the server under your account: log in anywhere to see them."
        return html.Div([header, bar, note_form("Your notes", intro)], className="page")
    intro = "Kept in this browser's session; logging in moves them into your account."
    return html.Div([header, login_form(), note_form("Guest notes", intro)], className="page")


app.layout = layout


@app.callback(
    Output("notes", "children"),
    Output("note", "value"),
    Input("add", "n_clicks"),
    Input("note", "n_submit"),
    State("note", "value"),
)
def show_notes(n_clicks: int | None, n_submit: int | None, note: str | None) -> tuple[Any, Any]:
    """Show the notes when the page loads; add one when asked. A logged-in user's notes are
    the account's, a visitor's are this browser's guest notes."""
    session = user_session() if current_user.is_authenticated else current_session(db)
    if ctx.triggered_id is None or not (note or "").strip():
        return notes_list(read_notes(session)), no_update
    add_note(session, str(note).strip())
    return notes_list(read_notes(session)), ""


@app.callback(
    Output("login-message", "children"),
    Output("url", "href"),
    Input("login", "n_clicks"),
    Input("password", "n_submit"),
    State("username", "value"),
    State("password", "value"),
    prevent_initial_call=True,
)
def log_in(
    n_clicks: int | None, n_submit: int | None, username: str | None, password: str | None
) -> tuple[Any, Any]:
    """Check the password; log the user in and move the guest notes into the account."""
    password_hash = USERS.get(username or "")
    if password_hash is None or not check_password_hash(password_hash, password or ""):
        return html.Div("Wrong user name or password.", className="error"), no_update
    login_user(User(str(username)), remember=True)
    # The browser's session moves to a fresh id with a new cookie: an id planted in the
    # browser before the login (session fixation) then names nothing.
    guest = renew_browser_session(db)
    guest_notes = {key: guest[key] for key in guest if key.startswith("note:")}
    if guest_notes:
        user_session().update(guest_notes)  # atomic: all of them, or none
        guest.clear()
    return "", "/"  # reload: the page becomes the user's


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8050")))
