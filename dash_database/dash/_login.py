"""A new session id at login (session fixation defence), keeping the session's data."""

from __future__ import annotations

from typing import Any

import dash

from .._database import DashDatabase, Session
from .._signing import looks_signed
from ..exceptions import InvalidSessionIdError
from ._browser import _options, _set_cookie
from ._servers import after_this_response, in_request
from ._tab import _in_callback, replace_in_stores, tab_session

__all__ = ["renew_browser_session", "renew_tab_session"]


def renew_browser_session(db: DashDatabase, *, cookie_name: str | None = None) -> Session:
    """Move this browser's session to a new id and send it in a new cookie; call it when the
    user logs in (or their rights change).

    An id someone planted in the browser before the login (session fixation) then names
    nothing: the session's data moved to the new id, atomically. Works in a Dash callback
    (not a background one) and in a Flask or Quart view (a login form's route).

    Args:
        db: the database.
        cookie_name: the cookie's name; by default the one :func:`enable_browser_sessions`
            uses for the current app.

    Returns:
        The session under its new id. A browser without a valid cookie gets a new, empty one.

    Raises:
        RuntimeError: called outside a request, or in a background callback (no response
            can carry the new cookie).
    """
    options = _options(cookie_name)
    if _in_callback():
        ctx = dash.callback_context
        response = getattr(ctx, "response", None)
        if response is None:
            raise RuntimeError(
                "renew_browser_session() cannot send a new cookie from a background callback; "
                "call it from an ordinary callback or from the login view."
            )
        cookies: dict[str, str] = ctx.cookies
        url = ctx.headers.get("Origin") or ""
    elif in_request():
        cookies, url, response = _request_cookies(), _request_url(), None
    else:
        raise RuntimeError(
            "renew_browser_session() is only available while a request is handled (a Dash "
            "callback or a Flask or Quart view)."
        )
    new_id = _rotated(db, cookies.get(options.name))
    if response is not None:
        _set_cookie(response, options, new_id, url)
        cookies[options.name] = new_id  # later calls in this callback see the new id
    else:
        after_this_response(lambda sent: _set_cookie(sent, options, new_id, url))
    return db.session(new_id)


def renew_tab_session(db: DashDatabase, session_id: object) -> Session:
    """Move a tab's session to a new id and put that id into the tab's store; call it from
    the callback that logs the user in, with the id it read from the store.

    Args:
        db: the database.
        session_id: the id the callback read with ``State(SESSION_STORE_ID, "data")``.

    Returns:
        The session under its new id, with the data it had.

    Raises:
        InvalidSessionIdError: ``session_id`` is not a valid id (see :func:`tab_session`).
        RuntimeError: not called from a callback that read ``session_id`` from a store.
    """
    tab_session(db, session_id)  # verifies it, with the message a tab's id deserves
    ctx: Any = dash.callback_context
    stores = (
        [
            key
            for key, value in {**ctx.inputs, **ctx.states}.items()
            if key.endswith(".data") and value == session_id
        ]
        if _in_callback() and getattr(ctx, "response", None) is not None
        else []
    )
    if not stores:
        raise RuntimeError(
            "renew_tab_session() needs the id as the callback read it from the tab's store: "
            "add State(SESSION_STORE_ID, 'data') to an ordinary (not background) callback and "
            "pass its value."
        )
    new_id = db.rotate_session(session_id)  # type: ignore[arg-type]  # verified: a str
    replace_in_stores(session_id, new_id)
    return db.session(new_id)


def _rotated(db: DashDatabase, session_id: str | None) -> str:
    # Only a signed id may be moved: a cookie holding a plain id ("alice") must never take
    # over the data kept under that plain id.
    if not looks_signed(session_id):
        return db.new_session_id()
    try:
        return db.rotate_session(session_id)  # type: ignore[arg-type]  # looks_signed: a str
    except InvalidSessionIdError:  # a forged or outdated cookie: nothing to move
        return db.new_session_id()


def _request_cookies() -> dict[str, str]:
    import flask

    if flask.has_request_context():
        return dict(flask.request.cookies)
    import quart

    return dict(quart.request.cookies)


def _request_url() -> str:
    import flask

    if flask.has_request_context():
        return flask.request.url
    import quart

    return str(quart.request.url)
