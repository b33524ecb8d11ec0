"""A per-browser data workflow: the DataFrame stays on the server, the browser gets a chart.

Generate a table or upload a CSV file. The DataFrame is stored server-side in this browser's
session (a signed ``HttpOnly`` cookie names it, shared by all tabs of the browser); the chart
callback reads it back, bins the chosen column and sends only the histogram. The page shows
how much is kept on the server and how little is sent to the browser. A slow summary of the
table (a bootstrap interval of each column's mean) is computed once per table with
``@db.memoize``: every later view of it, in any worker, reads it from the session.

Run it with ``python examples/data_app.py`` (HOST and PORT choose the address, default
127.0.0.1:8050) or ``gunicorn -w 4 'examples.data_app:server'``. The data goes to
``dash_database.sqlite`` in the working directory, or to the store named by
``DASH_DATABASE_URL``; set ``DASH_DATABASE_SECRET`` to a long random string.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import secrets
import time
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dash_database import BackendError, DashDatabase
from dash_database.dash import current_session, enable_browser_sessions, enable_error_messages

MAX_ROWS = 1_000_000
#: How many resamples the summary's bootstrap draws for each column.
RESAMPLES = 100

# A frame can be tens of megabytes: a browser idle for two hours (or closed) loses its data.
db = DashDatabase(ttl=2 * 60 * 60)
app = Dash(__name__, title="dash_database: data app")
server = app.server
enable_browser_sessions(app, db)
enable_error_messages(app)  # a short message on the page when the store fails
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
                html.H1("Your data, kept on the server"),
                html.P(
                    "Generate a table or upload a CSV file. It stays on the server, in this "
                    "browser's session; the browser only receives the chart."
                ),
            ]
        ),
        html.Div(
            className="card",
            children=[
                html.Label("Rows to generate", htmlFor="row-count"),
                html.Div(
                    className="row",
                    children=[
                        html.Div(
                            dcc.Input(id="row-count", type="number", value=10_000),
                            style={"width": "180px"},
                        ),
                        html.Button("Generate", id="generate"),
                        html.Span("or", className="muted"),
                        dcc.Upload(
                            html.Button("Upload a CSV file", className="secondary"),
                            # Any file is accepted, so that a wrong one gets an explanation
                            # rather than being ignored.
                            id="upload",
                        ),
                    ],
                ),
                dcc.Loading(html.Div(id="status", className="message"), type="dot"),
            ],
        ),
        html.Div(
            className="card",
            children=[
                html.Div(
                    className="row",
                    children=[
                        html.Div(
                            className="grow",
                            children=[
                                html.Label("Column"),
                                dcc.Dropdown(
                                    id="column", clearable=False, placeholder="No data yet"
                                ),
                            ],
                        ),
                        html.Div(
                            className="grow",
                            children=[
                                html.Label("Bins"),
                                dcc.Slider(id="bins", min=5, max=100, step=5, value=30, marks=None),
                            ],
                        ),
                    ],
                ),
                dcc.Loading(dcc.Graph(id="chart"), type="circle"),
                html.Div(id="sizes", className="figures"),
                html.Div(id="summary", className="muted"),
            ],
        ),
    ],
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
    """Return the DataFrame of a ``dcc.Upload`` data URL holding a CSV file.

    Raises:
        ValueError: the file is not a readable CSV file (pandas' errors are ValueErrors).
    """
    _, _, encoded = contents.partition(",")
    return pd.read_csv(io.BytesIO(base64.b64decode(encoded, validate=True)))


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Return the names of the numeric columns of ``frame``."""
    return [str(c) for c in frame.select_dtypes("number").columns]


def format_bytes(size: float) -> str:
    """Return ``size`` in bytes as people read it: ``"24.0 MB"``, ``"812 B"``."""
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("kB", "MB"):
        size /= 1000
        if size < 1000:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} GB"


def message(text: str, kind: str = "") -> html.Div:
    return html.Div(text, className=kind)


def placeholder_figure(text: str) -> go.Figure:
    """Return an empty chart that says what to do instead of showing meaningless axes."""
    figure = go.Figure()
    figure.update_layout(
        xaxis={"visible": False},
        yaxis={"visible": False},
        plot_bgcolor="white",
        annotations=[{"text": text, "showarrow": False, "font": {"size": 16, "color": "#616e7c"}}],
    )
    return figure


def store_frame(frame: pd.DataFrame, source: str) -> None:
    # The frame's size is measured once, here, and stored beside it: the chart callback shows
    # it on every slider move without serializing the frame again.
    size = int(frame.memory_usage(deep=True).sum())
    # A new id per table: the memoized summary is keyed by it, so a new table gets its own.
    current_session(db).update(frame=frame, source=source, size=size, frame_id=secrets.token_hex(8))


@db.memoize(ttl=2 * 60 * 60)
def summarize(frame_id: str) -> dict[str, Any]:
    """Return the mean of each numeric column of this browser's table ``frame_id`` with a 95%
    bootstrap interval, how long that took and when it was computed.

    Resampling a large table is slow: memoize keeps the result in the browser's session, so
    each table is summarized once, whichever worker serves the later requests.
    """
    started = time.perf_counter()
    frame = current_session(db)["frame"]
    rng = np.random.default_rng(0)
    columns = {}
    for column in numeric_columns(frame):
        values = frame[column].dropna().to_numpy(dtype=float)
        if len(values) == 0:
            continue
        means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(RESAMPLES)]
        low, high = np.percentile(means, [2.5, 97.5])
        columns[column] = (float(values.mean()), float(low), float(high))
    seconds = time.perf_counter() - started
    return {"columns": columns, "seconds": seconds, "at": time.strftime("%H:%M:%S")}


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
    n_clicks: int | None, contents: str | None, rows: Any, filename: str | None
) -> tuple[Any, Any, Any]:
    """Store a generated or uploaded frame; on page load, show the one already stored."""
    if ctx.triggered_id == "generate":
        if not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS:
            text = f"Enter a whole number of rows from 1 to {MAX_ROWS:,}, then press Generate."
            return message(text, "error"), no_update, no_update
        store_frame(generate_frame(rows), "Generated table")
    elif ctx.triggered_id == "upload" and contents:
        try:
            frame = read_csv_upload(contents)
        except (ValueError, binascii.Error):
            text = (
                f"{filename} could not be read as a CSV file. Upload comma-separated text "
                "with a header row."
            )
            return message(text, "error"), no_update, no_update
        if not numeric_columns(frame):
            text = f"{filename} has no column of numbers to chart. Upload another file."
            return message(text, "error"), no_update, no_update
        store_frame(frame, f"Uploaded {filename}")
    session = current_session(db)
    frame = session.get("frame")
    if frame is None:
        return message("No data yet: generate a table or upload a CSV file."), [], None
    columns = numeric_columns(frame)
    text = f"{session['source']}: {len(frame)} rows, {len(frame.columns)} columns."
    return message(text, "success"), columns, columns[0]


@app.callback(
    Output("chart", "figure"),
    Output("sizes", "children"),
    Input("column", "value"),
    Input("bins", "value"),
)
def draw_chart(column: str | None, bins: int | None) -> tuple[go.Figure, Any]:
    """Bin one column of the stored frame on the server and send only the histogram."""
    session = current_session(db)
    frame = session.get("frame")
    if frame is None or column not in frame:
        return placeholder_figure("Generate a table or upload a CSV file to see it here."), ""
    values = frame[column].dropna().to_numpy(dtype=float)
    counts, edges = np.histogram(values, bins=int(bins or 30))
    figure = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, marker_color="#2f6fdf"))
    figure.update_layout(
        xaxis_title=column,
        yaxis_title="rows",
        bargap=0.05,
        plot_bgcolor="white",
        height=360,
        margin={"t": 24, "r": 16},
    )
    sent = len(pio.to_json(figure).encode("utf-8"))
    sizes = [
        html.Span(f"Rows: {len(frame)}."),
        html.Span(f"Kept on the server: {format_bytes(session.get('size', 0))}."),
        html.Span(f"Sent to the browser for this chart: {format_bytes(sent)}."),
    ]
    return figure, sizes


@app.callback(Output("summary", "children"), Input("column", "value"))
def show_summary(column: str | None) -> str:
    """Show the chosen column's mean and its interval, from the table's memoized summary."""
    session = current_session(db)
    frame_id = session.get("frame_id")
    if frame_id is None or column is None:
        return ""
    summary = summarize(frame_id)
    if column not in summary["columns"]:
        return ""
    mean, low, high = summary["columns"][column]
    return (
        f"Mean {column}: {mean:,.2f} (95% interval {low:,.2f} to {high:,.2f}, from "
        f"{RESAMPLES} resamples). Summary computed once for this table, in "
        f"{summary['seconds']:.2f} s at {summary['at']}, and kept in your session."
    )


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8050")))
