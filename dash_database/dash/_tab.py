"""Per-tab sessions: a signed id in a ``dcc.Store`` made by a layout *function*."""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Any, Literal

import dash
from dash import Input, Output, dcc
from dash.exceptions import MissingCallbackContextException, PreventUpdate

from .._database import DashDatabase, Session
from .._signing import looks_signed
from ..exceptions import InvalidSessionIdError, LayoutError
from ._ids import fresh_or_renewed, id_status, preview, warn_if_unshared
from ._servers import after_this_response, in_request, request_server, set_no_store

__all__ = ["SESSION_STORE_ID", "session_store", "tab_session"]

#: The ``id`` of the ``dcc.Store`` that :func:`session_store` returns by default.
SESSION_STORE_ID = "dash-database-session-id"

# The store ids whose page-load check each app already has, keyed by the app and its server.
_CHECKED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_CHECKED_LOCK = threading.Lock()


def session_store(
    db: DashDatabase,
    id: str = SESSION_STORE_ID,
    storage_type: Literal["session", "local", "memory"] = "session",
) -> dcc.Store:
    """Return a ``dcc.Store`` carrying a fresh signed session id, for a layout function.

    Call it from a function assigned to ``app.layout`` (``app.layout = layout``, not
    ``app.layout = layout()``), so that every page load gets a new id. With
    ``storage_type="session"`` the browser keeps the first id of a tab in
    ``sessionStorage``: reloading the tab keeps its session, another tab (or another browser)
    gets its own. When a page loads with a kept id that fails verification (the secret key
    changed, the id expired or was altered), the app replaces it with a fresh one; an id in
    use is renewed before it expires.

    Args:
        db: the database whose secret key signs the id.
        id: the component id to read in callbacks with ``State(id, "data")``.
        storage_type: ``"session"`` (one session per tab, the default), ``"local"`` (one per
            browser profile, kept across restarts) or ``"memory"`` (one per page load).

    Raises:
        LayoutError: called outside a layout function and outside a request: a static
            layout would hand the same id, so the same session, to every visitor.
    """
    code = _layout_value_code()
    app = _layout_app(code)
    if code is not None and app is None and not in_request() and not _in_callback():
        raise LayoutError(
            "session_store(db) was called outside a layout function, so every visitor would "
            "get the same session id and see each other's data. Make the layout a function "
            "that Dash calls for each page load: app.layout = lambda: html.Div([..., "
            "session_store(db)]) (or def layout(): ...; app.layout = layout, without "
            "parentheses)."
        )
    if app is not None:
        _check_on_page_load(app, db, id)
    # The layout response carries the id: no browser or proxy may keep a copy of it.
    after_this_response(set_no_store)
    return dcc.Store(id=id, storage_type=storage_type, data=db.new_session_id())


def tab_session(db: DashDatabase, session_id: object) -> Session:
    """Return the session named by the signed id that :func:`session_store` issued.

    Called in a callback that read the id from the store (``State(SESSION_STORE_ID,
    "data")``), it also renews an id due for renewal in that store, so that a tab kept open
    for days keeps its session.

    Raises:
        InvalidSessionIdError: ``session_id`` is missing (``None``), not a signed id, expired,
            or its signature is forged or altered. Nothing was read or written.
    """
    if not looks_signed(session_id):
        raise InvalidSessionIdError(
            f"Expected a signed session id from session_store(), got {preview(session_id)}. "
            "Is the dcc.Store from session_store() in the layout, and is the layout a "
            "function?"
        )
    try:
        session = db.session(session_id)  # type: ignore[arg-type]  # looks_signed: a str
    except InvalidSessionIdError as exc:
        raise InvalidSessionIdError(
            f"{exc} This tab's session id is not valid any more; {_how_to_recover()}."
        ) from None
    if id_status(db, session_id) == "renew":
        replace_in_stores(session_id, fresh_or_renewed(db, session_id))
    return session


def _how_to_recover() -> str:
    # The request's server names the app on Flask and Quart; dash.get_app() elsewhere.
    app = request_server()
    if app is None:
        try:
            app = dash.get_app()  # type: ignore[no-untyped-call]
        except Exception:  # no app: only the generic advice applies
            app = None
    if app is not None and _CHECKED.get(app):
        return "reloading the page gives the tab a new session"
    return (
        "call session_store(db) in the function assigned to app.layout, so that a page load "
        "replaces an id that is not valid any more"
    )


def replace_in_stores(old_id: object, new_id: str | None) -> None:
    """Put ``new_id`` into every store whose ``data`` the current callback read as ``old_id``
    (a background callback, which has no response to carry it, leaves them as they are)."""
    if new_id is None or not _in_callback():
        return
    ctx = dash.callback_context
    if getattr(ctx, "response", None) is None:
        return
    values = {**ctx.inputs, **ctx.states}
    for key, value in values.items():
        component_id, _, prop = key.rpartition(".")
        if prop == "data" and value == old_id:
            dash.set_props(component_id, {"data": new_id})
            set_no_store(ctx.response)


def _check_on_page_load(app: dash.Dash, db: DashDatabase, store_id: str) -> None:
    """Give ``app`` (once per store id) a callback that checks the id a tab kept when a page
    loads: an id that fails verification is replaced, one due for renewal is renewed."""
    with _CHECKED_LOCK:  # the first page loads may run in several threads at once
        checked = _CHECKED.setdefault(app, set())
        if store_id in checked:
            return
        checked.add(store_id)
        _CHECKED[app.server] = checked
    warn_if_unshared(db)

    # The store restores the tab's kept id over the layout's fresh one when it mounts, which
    # triggers this callback with the kept id; Dash allows one callback to read and write
    # the same property, and does not call it again for its own update.
    @app.callback(Output(store_id, "data"), Input(store_id, "data"))
    def check_session_id(session_id: object) -> str:
        replacement = fresh_or_renewed(db, session_id)
        if replacement is None:
            raise PreventUpdate
        set_no_store(dash.callback_context.response)
        return replacement


def _layout_value_code() -> Any:
    """Return the code of the method in which every supported Dash calls a layout function
    (``None`` if a future Dash renames it: then no call is refused)."""
    return getattr(getattr(dash.Dash, "_layout_value", None), "__code__", None)


def _layout_app(code: Any) -> dash.Dash | None:
    """Return the app whose layout function is being called (by Dash, at startup or for a
    page load) further up the stack, or ``None``.

    Dash offers no public way to tell a layout function's call from a module-level one;
    looking for the exact code object of ``Dash._layout_value`` (not a name) cannot mistake
    another function for it.
    """
    if code is None:
        return None
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is code:
            app = frame.f_locals.get("self")
            return app if isinstance(app, dash.Dash) else None
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _in_callback() -> bool:
    try:
        dash.callback_context.inputs  # noqa: B018  # raises outside a callback
    except MissingCallbackContextException:
        return False
    return True
