"""Errors the user can see: a short message on the page instead of a blank one."""

from __future__ import annotations

from typing import Any

import dash
from dash import html
from dash.exceptions import PreventUpdate

from ..exceptions import (
    BackendError,
    DashDatabaseError,
    InvalidSessionIdError,
    RequiredKeyError,
)
from ._ids import logger

__all__ = ["ERROR_MESSAGE_ID", "enable_error_messages", "user_message"]

#: The ``id`` of the message element that :func:`enable_error_messages` adds to the page.
ERROR_MESSAGE_ID = "dash-database-error"

_STYLE = {
    "position": "fixed",
    "top": "1rem",
    "left": "50%",
    "transform": "translateX(-50%)",
    "zIndex": 10000,
    "maxWidth": "40rem",
    "padding": "0.75rem 1rem",
    "borderRadius": "0.375rem",
    "background": "#fdecea",
    "color": "#611a15",
    "border": "1px solid #f5c2c0",
    "fontFamily": "system-ui, sans-serif",
    "boxShadow": "0 2px 8px rgba(0, 0, 0, 0.15)",
}


def user_message(error: BaseException) -> str | None:
    """Return the sentence a user sees for ``error``, or ``None`` for an error that is not
    dash_database's (the app's own handling applies to those)."""
    if isinstance(error, InvalidSessionIdError):
        return "Your session has expired or is no longer valid. Reload the page to start a new one."
    if isinstance(error, BackendError):
        return (
            "The server's session store is unavailable, so your data cannot be read or saved "
            "right now. Please try again in a moment."
        )
    if isinstance(error, DashDatabaseError):
        return "The server could not handle your session's data. Please try again."
    return None


def enable_error_messages(app: dash.Dash) -> None:
    """Show the user a short message when a callback fails with a dash_database error.

    Instead of a page that silently stops updating, the user reads (for example) "Your
    session has expired or is no longer valid. Reload the page to start a new one." or "The
    server's session store is unavailable ...". The details (never the secret key or a
    session id) go to the ``dash_database.dash`` logger. Other errors keep the handling they
    had (the app's ``on_error``, else Dash's own).

    A :class:`~dash_database.RequiredKeyError` from ``Session.require`` shows no message: the
    callback stops quietly, as with ``PreventUpdate``.

    Call it once, after creating the app::

        app = Dash(__name__)
        enable_error_messages(app)
    """
    target: Any = app  # the attributes below are not typed on every supported Dash
    if getattr(target, "_dash_database_error_messages", False):
        return
    # Dash (2.18 and later) calls the app's on_error handler for every failed callback, but
    # offers no public way to chain one after the app is built (its hooks are process-wide
    # and Dash >= 3 only), nor to add a component to every layout; these two attributes are
    # what its own constructor and pages use, the same on every supported Dash.
    previous = target._on_error

    def on_error(error: Exception) -> Any:
        if isinstance(error, RequiredKeyError):
            # Session.require(): the callback waits for the key, quietly (HTTP 204).
            raise PreventUpdate from None
        message = user_message(error)
        if message is None:
            if previous is not None:
                return previous(error)
            raise error
        logger.error(
            "dash_database: a callback failed: %s: %s", type(error).__name__, error, exc_info=error
        )
        dash.set_props(ERROR_MESSAGE_ID, {"children": message, "hidden": False})
        return None  # Dash sends no update for the callback's outputs

    target._on_error = on_error
    target._extra_components.append(
        html.Div(id=ERROR_MESSAGE_ID, role="alert", hidden=True, style=_STYLE)
    )
    target._dash_database_error_messages = True
