"""The one place that knows Dash's web servers: Flask (every Dash), Quart and FastAPI (Dash 4).

Dash has no server-agnostic hook that sees every response on every supported Dash version
(its ``after_request`` passes the response on Flask only, and only from Dash 4), so each
server gets its own small hook here, through the server's own public interface.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import dash

__all__ = [
    "ResponseHook",
    "add_response_hook",
    "after_this_response",
    "in_request",
    "request_server",
    "server_kind",
    "set_no_store",
]

#: ``hook(path, cookies, url, response)``: may set cookies and headers on ``response``.
ResponseHook = Callable[[str, Mapping[str, str], str, Any], None]

ServerKind = Literal["flask", "quart", "fastapi"]


def server_kind(app: dash.Dash) -> ServerKind:
    """Return which web server ``app`` runs on."""
    module = type(app.server).__module__.split(".")[0]
    if module in ("quart", "fastapi", "starlette"):
        return "fastapi" if module == "starlette" else module  # type: ignore[return-value]
    return "flask"


def add_response_hook(app: dash.Dash, hook: ResponseHook) -> None:
    """Call ``hook`` with every response ``app``'s server sends (at startup only)."""
    kind = server_kind(app)
    if kind == "flask":
        import flask

        def after_request(response: Any) -> Any:
            request = flask.request
            hook(request.path, request.cookies, request.url, response)
            return response

        app.server.after_request(after_request)
    elif kind == "quart":
        import quart

        async def after_request_async(response: Any) -> Any:
            request = quart.request
            hook(request.path, request.cookies, request.url, response)
            return response

        app.server.after_request(after_request_async)
    else:

        async def middleware(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
            response = await call_next(request)
            hook(request.url.path, request.cookies, str(request.url), response)
            return response

        app.server.middleware("http")(middleware)


def in_request() -> bool:
    """Return whether a Flask or Quart request is being handled in this context."""
    import flask

    if flask.has_request_context():
        return True
    quart = sys.modules.get("quart")
    return bool(quart is not None and quart.has_request_context())


def request_server() -> Any:
    """Return the Flask or Quart server handling the current request, or ``None``."""
    import flask

    if flask.has_app_context():
        return flask.current_app._get_current_object()  # type: ignore[attr-defined]
    quart = sys.modules.get("quart")
    if quart is not None and quart.has_app_context():
        return quart.current_app._get_current_object()
    return None


def after_this_response(callback: Callable[[Any], None]) -> bool:
    """Run ``callback(response)`` on the response to the current Flask or Quart request;
    return ``False`` when there is no such request (FastAPI, or no request at all)."""
    import flask

    def wrapped(response: Any) -> Any:
        callback(response)
        return response

    if flask.has_request_context():
        flask.after_this_request(wrapped)
        return True
    quart = sys.modules.get("quart")
    if quart is not None and quart.has_request_context():

        async def wrapped_async(response: Any) -> Any:
            return wrapped(response)

        quart.after_this_request(wrapped_async)
        return True
    return False


def set_no_store(response: Any) -> None:
    """Forbid browsers and proxies to keep a copy of ``response`` (it carries a session id)."""
    headers = getattr(response, "headers", None)
    if headers is not None and hasattr(headers, "__setitem__"):
        headers["Cache-Control"] = "no-store"
    else:  # Dash 4's response adapters of callback responses
        with contextlib.suppress(AttributeError):
            response.set_header("Cache-Control", "no-store")
