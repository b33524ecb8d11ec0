"""Async callbacks on Dash's FastAPI server: a per-browser watchlist that never blocks the loop.

Every callback is an ``async def``: while one waits for a (simulated) quote service or for the
session store, the same worker process serves everybody else's callbacks. The store is
reached through ``current_session(db).aio``, whose operations run in a worker thread, so a
slow disk or network never stalls the event loop. Each browser has its own
watchlist, kept on the server under a signed cookie.

Run it with ``python examples/async_app.py`` (HOST and PORT choose the address, default
127.0.0.1:8050), or with four worker processes sharing one store:
``uvicorn --workers 4 examples.async_app:server``. The data goes to ``dash_database.sqlite``
in the working directory, or to the store named by ``DASH_DATABASE_URL``; set
``DASH_DATABASE_SECRET`` to a long random string. Needs Dash 4 with
``pip install "dash[fastapi]" uvicorn``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from typing import Any

from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dash_database import BackendError, DashDatabase
from dash_database.dash import current_session, enable_browser_sessions, enable_error_messages

# A browser's watchlist is removed after a week without a visit.
db = DashDatabase(ttl=7 * 24 * 60 * 60)
app = Dash(__name__, backend="fastapi", title="dash_database: async app")
server = app.server
enable_browser_sessions(app, db)  # a signed, HttpOnly cookie names each browser's session
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
        html.H1("Watchlist"),
        html.P("Symbols you add are kept on the server for this browser; each has a quote."),
        html.Div(
            className="row",
            children=[
                dcc.Input(id="symbol", placeholder="Symbol, e.g. ACME", type="text"),
                html.Button("Add", id="add"),
                html.Button("Clear", id="clear"),
            ],
        ),
        dcc.Markdown(id="watchlist", className="message"),
        html.Div(id="lookups", className="message"),
    ],
)


async def fetch_quote(symbol: str) -> float:
    """Stand for a call to a quote service (httpx, aiohttp, ...): awaited, never blocking."""
    await asyncio.sleep(0.2)
    return round(random.Random(symbol).uniform(10, 500), 2)


def describe(watchlist: dict[str, float]) -> str:
    if not watchlist:
        return "Your watchlist is empty."
    return "\n".join(f"- **{symbol}**: {price:.2f}" for symbol, price in watchlist.items())


@app.callback(
    Output("watchlist", "children"),
    Output("lookups", "children"),
    Input("add", "n_clicks"),
    State("symbol", "value"),
)
async def add(n_clicks: int | None, symbol: str | None) -> tuple[str, str]:
    session = current_session(db).aio
    if n_clicks and symbol and symbol.strip():
        name = symbol.strip().upper()
        price = await fetch_quote(name)
        # Atomic read-modify-write: two tabs adding at once both keep their symbol.
        watchlist = await session.update_value("watchlist", lambda w: {**w, name: price}, {})
        lookups = await session.update_value("lookups", lambda n: n + 1, 0)
    else:
        watchlist = await session.get("watchlist", {})
        lookups = await session.get("lookups", 0)
    return describe(watchlist), f"Quotes looked up in this browser: {lookups}"


@app.callback(
    Output("watchlist", "children", allow_duplicate=True),
    Input("clear", "n_clicks"),
    prevent_initial_call=True,
)
async def clear(n_clicks: int | None) -> Any:
    if not n_clicks:
        raise PreventUpdate
    await current_session(db).aio.set("watchlist", {})
    return describe({})


if __name__ == "__main__":
    import uvicorn

    # In this process (app.run() would start uvicorn in a child process).
    uvicorn.run(
        server, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8050"))
    )
