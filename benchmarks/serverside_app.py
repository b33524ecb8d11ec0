"""The app of ``serverside.py``: one 1 MB DataFrame passed between two callbacks, two ways.

- ``token``: the writer returns ``ServerValue(frame)`` (``@server_side``), the browser holds a
  signed token, the reader receives the DataFrame from the session store.
- ``json``: the writer returns ``frame.to_json(...)`` to a ``dcc.Store``, the browser holds the
  JSON and sends it back, the reader parses it (the pattern of Dash's documentation).

Both readers compute the same summary. The frame is built once at import, so both writers
measure only how the value travels. Serve it with ``gunicorn -w 1 serverside_app:server``
(``benchmarks/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from dash import Dash, Input, Output, dcc, html

from dash_database import DashDatabase
from dash_database.dash import ServerValue, enable_browser_sessions, server_side

ROWS = 25_000
REGIONS = ["North", "South", "East", "West", "Central"]


def make_frame() -> pd.DataFrame:
    """Return about 1 MB (in memory and pickled) of orders."""
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "region": pd.Categorical(rng.choice(REGIONS, ROWS), categories=REGIONS),
            "revenue": rng.lognormal(4, 0.6, ROWS).round(2),
            "quantity": rng.integers(1, 50, ROWS),
            "discount": rng.uniform(0, 0.3, ROWS).round(3),
            "day": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, ROWS), "D"),
            "order": np.arange(ROWS),
        }
    )


FRAME = make_frame()
db = DashDatabase()  # DASH_DATABASE_URL names the store
app = Dash(__name__)
server = app.server
enable_browser_sessions(app, db)
app.layout = html.Div(
    [
        html.Button(id="write-token"),
        html.Button(id="write-json"),
        dcc.Store(id="token"),
        dcc.Store(id="json"),
        html.Div(id="read-token"),
        html.Div(id="read-json"),
    ]
)


def summary(frame: pd.DataFrame) -> str:
    totals = frame.groupby("region", observed=True)["revenue"].sum()
    return f"{len(frame)} rows; " + ", ".join(f"{k} {v:.0f}" for k, v in totals.items())


@app.callback(Output("token", "data"), Input("write-token", "n_clicks"))
@server_side(db)
def write_token(n_clicks: int) -> ServerValue:
    return ServerValue(FRAME)


@app.callback(Output("read-token", "children"), Input("token", "data"))
@server_side(db)
def read_token(frame: pd.DataFrame) -> str:
    return summary(frame)


@app.callback(Output("json", "data"), Input("write-json", "n_clicks"))
def write_json(n_clicks: int) -> str:
    return FRAME.to_json(orient="split", date_format="iso")


@app.callback(Output("read-json", "children"), Input("json", "data"))
def read_json(data: str) -> str:
    frame = pd.read_json(io.StringIO(data), orient="split")
    return summary(frame)
