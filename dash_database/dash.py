"""Dash integration: signed session ids for one browser tab or for a whole browser.

Per-tab sessions (the dash_database 1.0 pattern, made safe): put :func:`session_store` in a
layout *function*; it carries a fresh signed id in a ``dcc.Store`` kept in the tab's
``sessionStorage``. Callbacks take it as a ``State`` and call :func:`tab_session`::

    def layout():
        return html.Div([..., session_store(db)])

    @callback(Output("out", "children"), Input("button", "n_clicks"),
              State(SESSION_STORE_ID, "data"))
    def save(n_clicks, session_id):
        tab_session(db, session_id)["clicks"] = n_clicks

Per-browser sessions: :func:`enable_browser_sessions` issues a signed ``HttpOnly``,
``SameSite=Lax`` cookie, and :func:`current_session` returns the session it names from inside
any callback, without a ``State``::

    enable_browser_sessions(app, db)

    @callback(Output("out", "children"), Input("button", "n_clicks"))
    def save(n_clicks):
        current_session(db)["clicks"] = n_clicks

Every id is verified before storage is touched; a missing, forged or altered id raises
:class:`~dash_database.InvalidSessionIdError` (a ``ValueError``), which Dash answers with an
HTTP 500 error and no update.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import dash
from dash import dcc
from dash.exceptions import MissingCallbackContextException

from ._database import DashDatabase, Session
from ._signing import looks_signed
from .exceptions import InvalidSessionIdError

__all__ = [
    "COOKIE_NAME",
    "SESSION_STORE_ID",
    "current_session",
    "enable_browser_sessions",
    "session_store",
    "tab_session",
]

#: The ``id`` of the ``dcc.Store`` that :func:`session_store` returns by default.
SESSION_STORE_ID = "dash-database-session-id"
#: The name of the per-browser session cookie.
COOKIE_NAME = "dash_database_session"


@dataclass(frozen=True)
class _CookieOptions:
    name: str = COOKIE_NAME
    max_age: int | None = None
    secure: bool | None = None
    path: str = "/"


_APP_OPTIONS: weakref.WeakKeyDictionary[Any, _CookieOptions] = weakref.WeakKeyDictionary()


# -- per-tab sessions -----------------------------------------------------------------------


def session_store(
    db: DashDatabase,
    id: str = SESSION_STORE_ID,
    storage_type: Literal["session", "local", "memory"] = "session",
) -> dcc.Store:
    """Return a ``dcc.Store`` carrying a fresh signed session id, for a layout function.

    Call it from a function assigned to ``app.layout`` (not once at import), so that every
    page load gets a new id. With ``storage_type="session"`` the browser keeps the first id of
    a tab in ``sessionStorage``: reloading the tab keeps its session, another tab (or another
    browser) gets its own.

    Args:
        db: the database whose secret key signs the id.
        id: the component id to read in callbacks with ``State(id, "data")``.
        storage_type: ``"session"`` (one session per tab, the default), ``"local"`` (one per
            browser profile, kept across restarts) or ``"memory"`` (one per page load).
    """
    return dcc.Store(id=id, storage_type=storage_type, data=db.new_session_id())


def tab_session(db: DashDatabase, session_id: object) -> Session:
    """Return the session named by the signed id that :func:`session_store` issued.

    Raises:
        InvalidSessionIdError: ``session_id`` is missing (``None``), not a signed id, or its
            signature is forged or altered. Nothing was read or written.
    """
    if not looks_signed(session_id):
        raise InvalidSessionIdError(
            f"Expected a signed session id from session_store(), got "
            f"{type(session_id).__name__} {_preview(session_id)}. Is the dcc.Store from "
            "session_store() in the layout, and is the layout a function?"
        )
    return db.session(session_id)  # type: ignore[arg-type]  # looks_signed checked it is a str


# -- per-browser sessions -------------------------------------------------------------------


def enable_browser_sessions(
    app: dash.Dash,
    db: DashDatabase,
    *,
    cookie_name: str = COOKIE_NAME,
    max_age: int | None = None,
    secure: bool | None = None,
) -> None:
    """Issue a signed per-browser session cookie to every browser that has none.

    The cookie is ``HttpOnly`` (page scripts cannot read it) and ``SameSite=Lax`` (other sites
    cannot send it with their requests). It is issued with the first response (the page
    itself), before any callback runs, on each server Dash supports (Flask, Quart, FastAPI);
    whenever a callback finds no cookie all the same, :func:`current_session` issues it with
    the callback's response. A cookie whose signature is not valid is replaced when the page
    is loaded again; until then, callbacks that read it fail.

    Args:
        app: the Dash app.
        db: the database whose secret key signs the ids.
        cookie_name: the cookie's name.
        max_age: seconds the browser keeps the cookie; ``None`` (default) keeps it until the
            browser is closed.
        secure: mark the cookie ``Secure`` (sent over HTTPS only); ``None`` (default) does
            so when the request came over HTTPS.
    """
    options = _CookieOptions(cookie_name, max_age, secure)
    _APP_OPTIONS[app] = options
    db.new_session_id()  # Find the secret key now: its warning belongs to startup.

    def issue_cookie(cookies: Mapping[str, str], url: str, response: Any) -> None:
        if not _verified(db, cookies.get(options.name)) and not _sets_cookie(response, options):
            _set_cookie(response, options, db.new_session_id(), url)

    # Dash has no server-agnostic hook that sees the page's response (its after_request
    # hook passes the response on Flask only), so each server gets its own small hook.
    server_type = getattr(app.backend, "server_type", "flask")
    if server_type == "flask":

        def after_request(response: Any) -> Any:
            request = app.backend.request_adapter()
            issue_cookie(request.cookies, request.url, response)
            return response

        app.backend.after_request(after_request)
    elif server_type == "quart":
        # Dash's after_request on Quart does not pass the response: use Quart's own.
        async def after_request_async(response: Any) -> Any:
            request = app.backend.request_adapter()
            issue_cookie(request.cookies, request.url, response)
            return response

        app.server.after_request(after_request_async)
    elif server_type == "fastapi":

        async def middleware(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
            response = await call_next(request)
            issue_cookie(request.cookies, str(request.url), response)
            return response

        app.server.middleware("http")(middleware)


def current_session(db: DashDatabase, *, cookie_name: str | None = None) -> Session:
    """Return the current browser's session, from inside a callback.

    When the browser sent no session cookie yet (the app did not call
    :func:`enable_browser_sessions`, or the browser dropped the cookie), a new id is issued
    with this callback's response. A background callback has no response to carry it, so
    there a missing cookie is an error.

    Args:
        db: the database.
        cookie_name: the cookie's name; by default the one given to
            :func:`enable_browser_sessions`, else ``"dash_database_session"``.

    Raises:
        InvalidSessionIdError: the cookie's signature is forged or altered, or there is no
            cookie and none can be issued (a background callback started without one).
        RuntimeError: called outside a callback.
    """
    ctx = dash.callback_context
    try:
        ctx.inputs  # noqa: B018  # raises outside a callback
    except MissingCallbackContextException:
        raise RuntimeError(
            "current_session() is only available inside a Dash callback; elsewhere use "
            "db.session(session_id)."
        ) from None
    options = _options(cookie_name)
    cookies: dict[str, str] = ctx.cookies
    session_id = cookies.get(options.name)
    if session_id is None:
        response = getattr(ctx, "response", None)
        if response is None:
            raise InvalidSessionIdError(
                f"The request has no {options.name!r} cookie and this callback cannot issue "
                "one (it runs in the background). Call enable_browser_sessions(app, db) so "
                "that the page issues it."
            )
        session_id = db.new_session_id()
        _set_cookie(response, options, session_id, ctx.headers.get("Origin") or "")
        # Later calls in this callback see the same id.
        cookies[options.name] = session_id
    if not looks_signed(session_id):
        raise InvalidSessionIdError(
            f"The {options.name!r} cookie does not hold a signed session id; reload the page "
            "to get a new one."
        )
    return db.session(session_id)


# -- helpers --------------------------------------------------------------------------------


def _options(cookie_name: str | None) -> _CookieOptions:
    try:
        options = _APP_OPTIONS.get(dash.get_app())  # type: ignore[no-untyped-call]
    except Exception:  # no app registered yet: the defaults apply
        options = None
    options = options or _CookieOptions()
    if cookie_name is not None and cookie_name != options.name:
        options = _CookieOptions(cookie_name, options.max_age, options.secure, options.path)
    return options


def _verified(db: DashDatabase, session_id: str | None) -> bool:
    if not looks_signed(session_id):
        return False
    try:
        db.session(session_id)  # type: ignore[arg-type]  # looks_signed checked it is a str
    except InvalidSessionIdError:
        return False
    return True


def _sets_cookie(response: Any, options: _CookieOptions) -> bool:
    prefix = options.name + "="
    return any(v.startswith(prefix) for v in response.headers.getlist("Set-Cookie"))


def _set_cookie(response: Any, options: _CookieOptions, session_id: str, url: str) -> None:
    secure = url.startswith("https:") if options.secure is None else options.secure
    # Flask's, Starlette's and Quart's responses and Dash's callback response adapters all
    # take these keyword arguments.
    response.set_cookie(
        options.name,
        session_id,
        max_age=options.max_age,
        path=options.path,
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
