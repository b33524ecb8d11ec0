"""Dash integration: signed session ids for one browser tab or for a whole browser.

Per-tab sessions (the dash_database 1.0 pattern, made safe): put :func:`session_store` in a
layout *function*; it carries a fresh signed id in a ``dcc.Store`` kept in the tab's
``sessionStorage``. Callbacks take it as a ``State`` and call :func:`tab_session`::

    def layout():
        return html.Div([..., session_store(db)])

    app.layout = layout  # the function itself: a static layout is refused

    @callback(Output("out", "children"), Input("button", "n_clicks"),
              State(SESSION_STORE_ID, "data"))
    def save(n_clicks, session_id):
        tab_session(db, session_id)["clicks"] = n_clicks

With :func:`enable_tab_sessions` the tab's id also travels with every callback request, and
:func:`current_session` returns the tab's session, without a ``State``::

    enable_tab_sessions(app, db)

    @callback(Output("out", "children"), Input("button", "n_clicks"))
    def save(n_clicks):
        current_session(db)["clicks"] = n_clicks

Per-browser sessions: :func:`enable_browser_sessions` issues a signed ``HttpOnly``,
``SameSite=Lax`` cookie, and :func:`current_session` returns the session it names from inside
any callback, without a ``State``::

    enable_browser_sessions(app, db)

    @callback(Output("out", "children"), Input("button", "n_clicks"))
    def save(n_clicks):
        current_session(db)["clicks"] = n_clicks

Server-side values between callbacks: a callback decorated with :func:`server_side` returns
``ServerValue(frame)`` to an ``Output``; the browser holds a signed token bound to the session,
and other :func:`server_side` callbacks receive the frame itself::

    @callback(Output("frame", "data"), Input("load", "n_clicks"))
    @server_side(db)
    def load(n_clicks):
        return ServerValue(make_frame())

:class:`ServersideSessionBackend` does the same for dash-extensions' ``Serverside``.

At login, :func:`renew_browser_session` (or :func:`renew_tab_session`) moves the session to
a new id, so that an id planted in the browser before (session fixation) names nothing.

Every id is verified before storage is touched; a missing, expired, forged or altered id
raises :class:`~dash_database.InvalidSessionIdError` (a ``ValueError``). Loading the page
again replaces such an id with a fresh one. :func:`enable_error_messages` shows the user a
short message when a callback fails this way, or when the store is unavailable.

Needs Dash 2.18.2 or later.
"""

from __future__ import annotations

import re

import dash

from .._memoize import add_session_finder
from ..exceptions import UnsupportedDashError

#: The oldest Dash the integration supports: the first with the request's cookies in every
#: callback (background ones too) and with app-wide callback error handlers.
MINIMUM_DASH = (2, 18, 2)


def _dash_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


if _dash_version(dash.__version__) < MINIMUM_DASH:
    raise UnsupportedDashError(
        f"dash_database.dash needs Dash 2.18.2 or later (for the request's cookies in "
        f"callbacks and app-wide callback error handlers); this is Dash {dash.__version__}. "
        'Upgrade it: pip install --upgrade "dash>=2.18.2"'
    )

from ._browser import COOKIE_NAME, cookie_name_for, current_session, enable_browser_sessions  # noqa: E402
from ._errors import ERROR_MESSAGE_ID, enable_error_messages, user_message  # noqa: E402
from ._extensions import ServersideSessionBackend  # noqa: E402
from ._login import renew_browser_session, renew_tab_session  # noqa: E402
from ._memoize import find_current_session  # noqa: E402
from ._tab import SESSION_STORE_ID, session_store, tab_session  # noqa: E402
from ._tab_requests import TAB_HEADER, enable_tab_sessions  # noqa: E402
from ._values import ServerValue, server_side  # noqa: E402

add_session_finder(find_current_session)

__all__ = [
    "COOKIE_NAME",
    "ERROR_MESSAGE_ID",
    "MINIMUM_DASH",
    "SESSION_STORE_ID",
    "TAB_HEADER",
    "ServerValue",
    "ServersideSessionBackend",
    "cookie_name_for",
    "current_session",
    "enable_browser_sessions",
    "enable_error_messages",
    "enable_tab_sessions",
    "renew_browser_session",
    "renew_tab_session",
    "server_side",
    "session_store",
    "tab_session",
    "user_message",
]
