"""A per-browser data workflow: the DataFrame stays on the server, the browser gets a chart.

Generate a table (choose a row count, press Generate) or upload a CSV file. The DataFrame is
stored server-side in this browser's session (a signed ``HttpOnly`` cookie names it, shared by
all tabs of the browser); other callbacks read it back, bin the chosen column and draw a
histogram. The browser never receives the frame, only the chart: the page shows the row
count, the bytes stored on the server and the bytes of the chart sent to the browser.

Run it with ``python examples/data_app.py`` (HOST and PORT choose the address, default
127.0.0.1:8050) or ``gunicorn -w 4 'examples.data_app:server'``. The data goes to
``dash_database.sqlite`` in the working directory, or to the store named by
``DASH_DATABASE_URL``; set ``DASH_DATABASE_SECRET`` to a long random string.
"""

from __future__ import annotations

import base64
import io
import os
import pickle
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dash_database import DashDatabase
from dash_database.dash import current_session, enable_browser_sessions

MAX_ROWS = 1_000_000

db = DashDatabase()
app = Dash(__name__, title="dash_database: data app")
server = app.server
enable_browser_sessions(app, db)

app.layout = html.Div(
    [
        html.H3("Per-session data, kept on the server"),
        html.Div(
            [
                dcc.Input(id="row-count", type="number", min=1, max=MAX_ROWS, value=10_000),
                html.Button("Generate", id="generate"),
                dcc.Upload(html.Button("Upload a CSV file"), id="upload", accept=".csv,text/csv"),
            ]
        ),
        html.Div(id="status"),
        html.Label("Column"),
        dcc.Dropdown(id="column", clearable=False),
        html.Label("Bins"),
        dcc.Slider(id="bins", min=5, max=100, step=5, value=30, marks=None),
        dcc.Graph(id="chart"),
        html.Div(id="sizes"),
    ]
)


def generate_frame(rows: int, seed: int | None = None) -> pd.DataFrame:
    """Return a table of ``rows`` random orders."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "price": rng.lognormal(3, 0.5, rows).round(2),
            "quantity": rng.integers(1, 20, rows),
            "discount": rng.uniform(0, 0.3, rows).round(3),
        }
    )


def read_csv_upload(contents: str) -> pd.DataFrame:
    """Return the DataFrame of a ``dcc.Upload`` data URL holding a CSV file."""
    _, encoded = contents.split(",", 1)
    return pd.read_csv(io.BytesIO(base64.b64decode(encoded)))


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Return the names of the numeric columns of ``frame``."""
    return [str(c) for c in frame.select_dtypes("number").columns]


@app.callback(
    Output("status", "children"),
    Output("column", "options"),
    Output("column", "value"),
    Input("generate", "n_clicks"),
    Input("upload", "contents"),
    State("row-count", "value"),
    State("upload", "filename"),
)
def load_frame(
    n_clicks: int | None, contents: str | None, rows: int | None, filename: str | None
) -> tuple[str, list[str], Any]:
    """Store a generated or uploaded frame; on page load, show the one already stored."""
    session = current_session(db)
    if ctx.triggered_id == "generate":
        rows = max(1, min(int(rows or 1), MAX_ROWS))
        session["frame"] = generate_frame(rows)
        session["source"] = f"generated ({rows} rows)"
    elif ctx.triggered_id == "upload" and contents:
        try:
            session["frame"] = read_csv_upload(contents)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            return f"Cannot read {filename}: {exc}", no_update, no_update
        session["source"] = f"uploaded from {filename}"
    frame = session.get("frame")
    if frame is None:
        return "No data yet: generate a table or upload a CSV file.", [], None
    columns = numeric_columns(frame)
    status = f"Data {session['source']}: {len(frame)} rows, {len(frame.columns)} columns."
    return status, columns, (columns[0] if columns else None)


@app.callback(
    Output("chart", "figure"),
    Output("sizes", "children"),
    Input("column", "value"),
    Input("bins", "value"),
)
def draw_chart(column: str | None, bins: int | None) -> tuple[go.Figure, str]:
    """Bin one column of the stored frame on the server and send only the histogram."""
    frame = current_session(db).get("frame")
    if frame is None or column not in frame:
        return go.Figure(), ""
    values = frame[column].dropna().to_numpy(dtype=float)
    counts, edges = np.histogram(values, bins=int(bins or 30))
    figure = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts))
    figure.update_layout(xaxis_title=column, yaxis_title="rows", bargap=0.05)
    stored = len(pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL))
    sent = len(pio.to_json(figure).encode("utf-8"))
    sizes = (
        f"Rows: {len(frame)}. Stored server-side: {stored} bytes. "
        f"Sent to the browser for this chart: {sent} bytes."
    )
    return figure, sizes


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8050")))
