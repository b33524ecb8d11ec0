"""The dash_database 1.0 two-tab app on current Dash, with signed per-tab session ids.

Enter a value in the first tab, press OK, then read it back in the second tab. Each browser
tab has its own session: its id is made by ``session_store`` in the layout function, signed
with the app's secret key and kept in the tab's ``sessionStorage``.

Run it with ``python examples/basic_app.py`` (HOST and PORT choose the address, default
127.0.0.1:8050) or ``gunicorn -w 4 'examples.basic_app:server'``. The data goes to
``dash_database.sqlite`` in the working directory, or to the store named by
``DASH_DATABASE_URL``; set ``DASH_DATABASE_SECRET`` to a long random string.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dash_database import BackendError, DashDatabase
from dash_database.dash import (
    SESSION_STORE_ID,
    enable_error_messages,
    session_store,
    tab_session,
)

# A tab's session ends when the tab is closed; its data is removed after a day unused.
db = DashDatabase(ttl=24 * 60 * 60)
app = Dash(__name__, title="dash_database: basic app")
server = app.server
enable_error_messages(app)  # a short message on the page when the store fails
try:
    db.check()  # an unreachable store is named in the log at startup...
except BackendError as exc:
    # ...but the app still starts: gunicorn stops the whole server when a worker it
    # respawns during an outage fails to boot. Until the store answers, pages say so.
    logging.getLogger(__name__).warning("%s", exc)


def layout() -> html.Div:
    """Return the page; a function, so that every page load gets a fresh session id."""
    enter_tab = dcc.Tab(
        label="Enter a value",
        value="enter",
        children=html.Div(
            className="tab-body",
            children=[
                html.Label("A value for this tab", htmlFor="input_div"),
                html.Div(
                    className="row",
                    children=[
                        dcc.Input(placeholder="Enter value here", id="input_div", type="text"),
                        html.Button("OK", id="ok_button"),
                    ],
                ),
                dcc.Markdown(id="success_value_saved", className="message"),
            ],
        ),
    )
    retrieve_tab = dcc.Tab(
        label="Retrieve the value",
        value="retrieve",
        children=html.Div(
            className="tab-body",
            children=[
                html.Button("Show me the value", id="show_value_button"),
                dcc.Markdown(id="show_value_div", className="message"),
            ],
        ),
    )
    return html.Div(
        className="page",
        children=[
            html.Header(
                [
                    html.H1("One session per browser tab"),
                    html.P(
                        "Save a value in the first tab, read it back in the second. The value "
                        "stays on the server; this tab holds only a signed session id. Another "
                        "browser tab has a session of its own."
                    ),
                ]
            ),
            html.Div(
                className="card",
                children=dcc.Tabs([enter_tab, retrieve_tab], id="tabs", value="enter"),
            ),
            session_store(db),
        ],
    )


app.layout = layout


@app.callback(
    Output("success_value_saved", "children"),
    Input("ok_button", "n_clicks"),
    State("input_div", "value"),
    State(SESSION_STORE_ID, "data"),
    prevent_initial_call=True,
)
def save_value(n_clicks: int | None, value: Any, session_id: str) -> str:
    """Store the value in this tab's session."""
    if n_clicks is None:
        raise PreventUpdate
    if value is None or str(value).strip() == "":
        return "Type a value first, then press OK."
    tab_session(db, session_id)["value"] = value
    return "Your value was saved. Retrieve it in the other tab now."


@app.callback(
    Output("show_value_div", "children"),
    Input("show_value_button", "n_clicks"),
    State(SESSION_STORE_ID, "data"),
    prevent_initial_call=True,
)
def retrieve_value(n_clicks: int | None, session_id: str) -> str:
    """Show the value stored in this tab's session."""
    if n_clicks is None:
        raise PreventUpdate
    value = tab_session(db, session_id).get("value")
    if value is None:
        return "No value saved in this tab yet."
    return f"Your value is {value}"


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8050")))
