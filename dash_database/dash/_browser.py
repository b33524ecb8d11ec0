"""Per-browser sessions: a signed id in an ``HttpOnly``, ``SameSite=Lax`` cookie."""

from __future__ import annotations

import hashlib
import os
import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import dash
from dash.exceptions import MissingCallbackContextException

from .._database import DashDatabase, Session
from .._signing import looks_signed
from ..exceptions import InvalidSessionIdError
from ._ids import fresh_or_renewed, id_status, warn_if_unshared
from ._servers import add_response_hook, request_server, set_no_store
from ._tab_requests import session_from_header

__all__ = ["COOKIE_NAME", "cookie_name_for", "current_session", "enable_browser_sessions"]

#: The prefix of the per-browser session cookie's name. Each app's default cookie is named
#: ``dash_database_session_<8 hex digits>``, the digits derived from the app's module name
#: (its last part) and URL prefix, so that two apps on one host do not replace each other's
#: cookie.
COOKIE_NAME = "dash_database_session"


@dataclass(frozen=True)
class _CookieOptions:
    name: str
    max_age: int | None = None
    secure: bool | None = None
    path: str = "/"
    page_hook: bool = False


# Keyed by the app and by its server: a callback finds its options through the request's
# server (Flask, Quart), or through dash.get_app() (FastAPI, background callbacks).
_OPTIONS: weakref.WeakKeyDictionary[Any, _CookieOptions] = weakref.WeakKeyDictionary()


def cookie_name_for(app: dash.Dash) -> str:
    """Return the default session cookie name of ``app``."""
    # The last part of the module name, so that ``python app.py`` and ``gunicorn pkg.app:...``
    # agree; a script run as ``python app.py`` is named by its file.
    name = str(app.config.name).rsplit(".", 1)[-1]
    if name == "__main__":
        main = sys.modules.get("__main__")
        name = os.path.splitext(os.path.basename(getattr(main, "__file__", None) or ""))[0]
    identity = f"{name}|{app.config.requests_pathname_prefix}"
    return f"{COOKIE_NAME}_{hashlib.sha256(identity.encode()).hexdigest()[:8]}"


def enable_browser_sessions(
    app: dash.Dash,
    db: DashDatabase,
    *,
    cookie_name: str | None = None,
    max_age: int | None = None,
    secure: bool | None = None,
) -> None:
    """Issue a signed per-browser session cookie to every browser that has none.

    The cookie is ``HttpOnly`` (page scripts cannot read it) and ``SameSite=Lax`` (other sites
    cannot send it with their requests). It is issued with the first response (the page
    itself), before any callback runs, on each server Dash supports (Flask, Quart, FastAPI);
    whenever a callback finds no cookie all the same, :func:`current_session` issues it with
    the callback's response. When a page loads with a cookie that fails verification (the
    secret key changed, the id expired or was altered), a fresh one replaces it; a cookie in
    use is renewed before it expires. Responses that carry a cookie are sent with
    ``Cache-Control: no-store``.

    Args:
        app: the Dash app.
        db: the database whose secret key signs the ids.
        cookie_name: the cookie's name; by default one derived from the app's module name and
            URL prefix (see :func:`cookie_name_for`).
        max_age: seconds the browser keeps the cookie; ``None`` (default) keeps it until the
            browser is closed. The id inside expires after ``db``'s ``session_id_max_age``
            unless it is used (and so renewed) before.
        secure: mark the cookie ``Secure`` (sent over HTTPS only); ``None`` (default) does
            so when the request came over HTTPS.
    """
    options = _CookieOptions(cookie_name or cookie_name_for(app), max_age, secure, "/", True)
    _OPTIONS[app] = _OPTIONS[app.server] = options
    db.new_session_id()  # Find the secret key now: its warning belongs to startup.
    warn_if_unshared(db)
    layout_path = app.config.routes_pathname_prefix + "_dash-layout"

    def on_response(path: str, cookies: Mapping[str, str], url: str, response: Any) -> None:
        if path == layout_path:
            set_no_store(response)
        if _sets_cookie(response, options):
            set_no_store(response)
            return
        replacement = fresh_or_renewed(db, cookies.get(options.name))
        if replacement is not None:
            _set_cookie(response, options, replacement, url)

    add_response_hook(app, on_response)


def current_session(db: DashDatabase, *, cookie_name: str | None = None) -> Session:
    """Return the current browser's session (or tab's session), from inside a callback.

    When the app called :func:`enable_tab_sessions`, the session is the one of the tab that
    sent the request (its id travels in a request header); otherwise, or when a request has
    no tab id but the app also called :func:`enable_browser_sessions`, it is the browser's.
    When the browser sent no session cookie yet (the app did not call
    :func:`enable_browser_sessions`, or the browser dropped the cookie), a new id is issued
    with this callback's response. A background callback has no response to carry it, so
    there a missing cookie is an error.

    Args:
        db: the database.
        cookie_name: the cookie's name; by default the one :func:`enable_browser_sessions`
            uses for the current app.

    Raises:
        InvalidSessionIdError: the cookie holds no signed id (a plain value names no browser
            session), its id expired or its signature is forged or altered, or there is no
            cookie and none can be issued (a background callback started without one); or the
            tab's id is missing, expired, forged or altered. Nothing was read or written.
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
    tab = session_from_header(db, fallback=cookie_name is not None or _registered() is not None)
    if tab is not None:
        return tab
    options = _options(cookie_name)
    cookies: dict[str, str] = ctx.cookies
    session_id = cookies.get(options.name)
    response = getattr(ctx, "response", None)
    if session_id is None:
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
    elif response is not None and id_status(db, session_id) == "renew":
        session_id = fresh_or_renewed(db, session_id) or session_id
        _set_cookie(response, options, session_id, ctx.headers.get("Origin") or "")
        cookies[options.name] = session_id
    fix = (
        "reloading the page gives this browser a new session"
        if options.page_hook
        else "call enable_browser_sessions(app, db) so that a page load replaces it"
    )
    if not looks_signed(session_id):
        # A plain id would name a session the app keeps under that id for its own use (a
        # user's account, say): a browser could reach it by setting its cookie.
        raise InvalidSessionIdError(
            f"The {options.name!r} cookie does not hold a signed session id; nothing was "
            f"read or written; {fix}."
        )
    try:
        return db.session(session_id)
    except InvalidSessionIdError as exc:
        raise InvalidSessionIdError(
            f"{exc} The {options.name!r} cookie is not valid any more; {fix}."
        ) from None


def _registered() -> _CookieOptions | None:
    """Return the options enable_browser_sessions gave the current app, or ``None``."""
    server = request_server()
    if server is not None:
        # Never another app's options: dash.get_app() names the last app created, which in
        # a process with several apps need not be the one serving this request.
        return _OPTIONS.get(server)
    return _OPTIONS.get(_current_app())


def _current_app() -> Any:
    try:
        return dash.get_app()  # type: ignore[no-untyped-call]
    except Exception:  # no app created yet
        return None


def _options(cookie_name: str | None) -> _CookieOptions:
    options = _registered()
    app: Any = None
    if options is None:
        app = _current_app()
    if options is None:
        if cookie_name is None and app is None:
            raise RuntimeError(
                "current_session() cannot tell which app this callback belongs to; pass "
                "cookie_name=... or call enable_browser_sessions(app, db)."
            )
        options = _CookieOptions(cookie_name or cookie_name_for(app))
    if cookie_name is not None and cookie_name != options.name:
        options = replace(options, name=cookie_name)
    return options


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
    set_no_store(response)
