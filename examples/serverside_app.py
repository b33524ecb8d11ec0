"""Server-side values between callbacks: a 1 MB DataFrame loaded once, read by two callbacks.

"Load sales" builds a table of orders (about 1 MB) and returns it as ``ServerValue(frame)``
to a ``dcc.Store``: the frame stays in this browser's session on the server and the store
holds only a signed token of about 100 bytes. Two callbacks take the store as an ``Input`` and
receive the DataFrame itself: one sums it by region, the other charts one column. A token
copied into another browser, or altered, is refused; loading again replaces the frame.

Run it with ``python examples/serverside_app.py`` (HOST and PORT choose the address, default
127.0.0.1:8050) or ``gunicorn -w 4 'examples.serverside_app:server'``. The data goes to
``dash_database.sqlite`` in the working directory, or to the store named by
``DASH_DATABASE_URL``; set ``DASH_DATABASE_SECRET`` to a long random string.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Dash, Input, Output, dcc, html

from dash_database import BackendError, DashDatabase
from dash_database.dash import (
    ServerValue,
    enable_browser_sessions,
    enable_error_messages,
    server_side,
)

ROWS = 25_000
REGIONS = ["North", "South", "East", "West", "Central"]
COLUMNS = ["revenue", "quantity", "discount"]

db = DashDatabase(ttl=2 * 60 * 60)
app = Dash(__name__, title="dash_database: server-side values")
server = app.server
enable_browser_sessions(app, db)
enable_error_messages(app)
try:
    db.check()  # an unreachable store is named in the log at startup...
except BackendError as exc:
    # ...but the app still starts: gunicorn stops the whole server when a worker it
    # respawns during an outage fails to boot. Until the store answers, pages say so.
    logging.getLogger(__name__).warning("%s", exc)

app.layout = html.Div(
    className="page",
    children=[
        html.Header(
            [
                html.H1("One frame, loaded once, read by two callbacks"),
                html.P(
                    "The table stays on the server, in this browser's session. The page keeps "
                    "only a signed token for it; both callbacks below receive the DataFrame."
                ),
            ]
        ),
        html.Div(
            className="card",
            children=[
                html.Div(
                    className="row",
                    children=[
                        html.Button("Load sales", id="load"),
                        dcc.Loading(html.Div(id="status", className="message"), type="dot"),
                    ],
                ),
                # sessionStorage: reloading the tab keeps the token, and the token still names
                # this browser's frame.
                dcc.Store(id="sales", storage_type="session"),
            ],
        ),
        html.Div(
            className="card",
            children=[html.H2("Revenue by region"), html.Div(id="summary")],
        ),
        html.Div(
            className="card",
            children=[
                html.Label("Column"),
                dcc.Dropdown(id="column", options=COLUMNS, value="revenue", clearable=False),
                dcc.Graph(id="chart"),
            ],
        ),
    ],
)


def make_sales(seed: int) -> pd.DataFrame:
    """Return a table of ``ROWS`` random orders (about 1 MB in memory)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "region": pd.Categorical(rng.choice(REGIONS, ROWS), categories=REGIONS),
            "revenue": rng.lognormal(4, 0.6, ROWS).round(2),
            "quantity": rng.integers(1, 50, ROWS),
            "discount": rng.uniform(0, 0.3, ROWS).round(3),
            "day": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, ROWS), "D"),
        }
    )
    frame["order"] = np.arange(seed * ROWS, (seed + 1) * ROWS)
    return frame


@app.callback(Output("sales", "data"), Input("load", "n_clicks"), prevent_initial_call=True)
@server_side(db)
def load(n_clicks: int) -> ServerValue:
    """Load the frame (a slow query in a real app) once; the browser gets its token."""
    return ServerValue(make_sales(seed=n_clicks))


@app.callback(Output("status", "children"), Output("summary", "children"), Input("sales", "data"))
@server_side(db)
def summarize(sales: pd.DataFrame | None) -> tuple[Any, Any]:
    """Sum the frame by region: ``sales`` is the DataFrame, not the token."""
    if sales is None:
        return "Press Load sales.", "No data yet."
    size = sales.memory_usage(deep=True).sum() / 1e6
    status = html.Span(
        f"Load #{sales['order'].iloc[0] // ROWS}: {len(sales):,} orders, {size:.1f} MB, kept "
        "on the server.",
        className="success",
    )
    totals = sales.groupby("region", observed=True)["revenue"].sum()
    left = {"textAlign": "left", "paddingRight": "2rem"}
    right = {"textAlign": "right", "fontVariantNumeric": "tabular-nums"}
    rows = [html.Tr([html.Th("Region", style=left), html.Th("Revenue", style=right)])]
    rows += [
        html.Tr([html.Td(region, style=left), html.Td(f"{value:,.0f}", style=right)])
        for region, value in totals.items()
    ]
    return status, html.Table(rows, id="summary-table")


@app.callback(Output("chart", "figure"), Input("sales", "data"), Input("column", "value"))
@server_side(db)
def chart(sales: pd.DataFrame | None, column: str) -> go.Figure:
    """Bin one column of the frame on the server and send only the histogram."""
    figure = go.Figure()
    figure.update_layout(plot_bgcolor="white", height=320, margin={"t": 24, "r": 16})
    if sales is None:
        figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False})
        return figure
    counts, edges = np.histogram(sales[column].to_numpy(dtype=float), bins=30)
    figure.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, marker_color="#2f6fdf")
    figure.update_layout(xaxis_title=column, yaxis_title="orders", bargap=0.05)
    return figure


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8050")))
