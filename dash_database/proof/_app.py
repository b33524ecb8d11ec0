"""The Dash app the proof serves under gunicorn: one page, two callbacks, browser sessions.

``write`` stores the value a browser sends under the key it names, reads back every value of
that browser's session and adds one to a counter shared by every session (with
``update_user_value``); ``read`` returns the session's values. Both answer in JSON, so a
client can check that it got its own values and no one else's. The store comes from
``DASH_DATABASE_URL`` and the secret from ``DASH_DATABASE_SECRET``, as in any app.
"""

from __future__ import annotations

import json
import signal
from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from dash_database import DashDatabase
from dash_database.dash import current_session, enable_browser_sessions
from dash_database.proof import SHARED

# The proof fills the disk with RLIMIT_FSIZE: ignoring SIGXFSZ makes a write past the limit
# fail with an error, as on a full disk, instead of killing the worker.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

db = DashDatabase()
app = Dash(__name__, title="dash_database proof")
server = app.server
enable_browser_sessions(app, db)
app.layout = html.Div(
    [
        dcc.Input(id="key"),
        dcc.Input(id="token"),
        dcc.Input(id="counter"),
        html.Button("Write", id="write"),
        html.Button("Read", id="read"),
        html.Pre(id="written"),
        html.Pre(id="values"),
    ]
)


def _add_one(count: int) -> int:
    return count + 1


@app.callback(
    Output("written", "children"),
    Input("write", "n_clicks"),
    State("key", "value"),
    State("token", "value"),
    State("counter", "value"),
    prevent_initial_call=True,
)
def write(n_clicks: Any, key: str, token: str, counter: str) -> str:
    session = current_session(db)
    session[key] = token
    values = dict(session)
    # Last, so that a request whose increment was made has nothing left that could fail.
    count = db.update_user_value(SHARED, counter, _add_one, default=0)
    return json.dumps({"values": values, "count": count})


@app.callback(Output("values", "children"), Input("read", "n_clicks"), prevent_initial_call=True)
def read(n_clicks: Any) -> str:
    return json.dumps({"values": dict(current_session(db))})
