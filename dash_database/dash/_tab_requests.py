"""Per-tab sessions without a ``State``: the tab's signed id travels with each callback request.

:func:`enable_tab_sessions` adds a small script to the page (through ``app.renderer``, the
script that starts Dash's renderer, on every Dash 2.18.2 through 4.x and every server Dash
runs on). It wraps ``window.fetch``: each ``_dash-update-component`` request (background
callbacks' polls included) gets the header :data:`TAB_HEADER` holding the id that the tab's
:func:`~dash_database.dash.session_store` keeps in ``sessionStorage`` (or ``localStorage``).
Dash hands a callback's headers to background callbacks too, so :func:`current_session` finds
the tab's session there as well.

The header is checked exactly like the store's value: signature, age and renewal. Another
site cannot send it (a custom header needs the app's own page), and page scripts could
already read the store.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

import dash

from .._database import DashDatabase, Session
from .._signing import looks_signed
from ..exceptions import InvalidSessionIdError
from ._ids import fresh_or_renewed, id_status, preview, warn_if_unshared
from ._servers import request_server, set_no_store
from ._tab import SESSION_STORE_ID

__all__ = ["TAB_HEADER", "enable_tab_sessions", "session_from_header"]

#: The request header that carries a tab's signed session id to the callbacks.
TAB_HEADER = "X-Dash-Database-Session"

# The id of the store holding the tab's id, keyed by the app and by its server.
_STORES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

_SCRIPT = """(function () {
  var storeId = %(store)s, header = %(header)s, original = window.fetch;
  if (!original) { return; }
  function tabId() {
    var stores = [window.sessionStorage, window.localStorage];
    for (var i = 0; i < stores.length; i++) {
      try {
        var value = JSON.parse(stores[i].getItem(storeId));
        if (typeof value === "string" && value.indexOf("dds1.") === 0) { return value; }
      } catch (error) { /* storage disabled or not JSON: try the next one */ }
    }
    return null;
  }
  function ownCallback(url) {
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.origin === window.location.origin &&
        /_dash-update-component$/.test(parsed.pathname);
    } catch (error) { return false; }
  }
  window.fetch = function (input, init) {
    var isRequest = typeof Request !== "undefined" && input instanceof Request;
    var url = isRequest ? input.url : String(input);
    // Only the app's own callback requests: the id never goes to another origin.
    var id = ownCallback(url) ? tabId() : null;
    if (id !== null) {
      init = Object.assign({}, init || {});
      var headers = new Headers(init.headers || (isRequest ? input.headers : {}));
      headers.set(header, id);
      init.headers = headers;
    }
    return original.call(this, input, init);
  };
})();
"""


def enable_tab_sessions(app: dash.Dash, db: DashDatabase, store_id: str = SESSION_STORE_ID) -> None:
    """Let :func:`current_session` find each tab's session, with no ``State`` in callbacks.

    Put :func:`~dash_database.dash.session_store` in the layout *function* as well (with
    ``storage_type`` ``"session"``, the default, or ``"local"``): it issues the tab's id; the
    page then sends that id with every callback request. ``tab_session(db, session_id)`` with
    ``State(SESSION_STORE_ID, "data")`` keeps working.

    Call it once at startup, after any change of your own to ``app.renderer``.

    Args:
        app: the Dash app.
        db: the database whose secret key signs the ids.
        store_id: the id given to ``session_store`` (by default :data:`SESSION_STORE_ID`).
    """
    _STORES[app] = _STORES[app.server] = store_id
    db.new_session_id()  # Find the secret key now: its warning belongs to startup.
    warn_if_unshared(db)
    script = _SCRIPT % {"store": json.dumps(store_id), "header": json.dumps(TAB_HEADER)}
    app.renderer = script + app.renderer


def session_from_header(db: DashDatabase, fallback: bool) -> Session | None:
    """Return the session of the tab that sent the current callback request.

    Returns ``None`` when the app did not call :func:`enable_tab_sessions`, or when the
    request has no tab id and ``fallback`` is true (the app has per-browser cookies too).

    Raises:
        InvalidSessionIdError: the id is missing (and there is no fallback), expired, forged
            or altered. Nothing was read or written.
    """
    store_id = _store_id()
    if store_id is None:
        return None
    ctx = dash.callback_context
    session_id = _header(ctx.headers)
    if session_id is None:
        if fallback:
            return None
        raise InvalidSessionIdError(
            f"This callback request carries no tab session id (the {TAB_HEADER} header). Put "
            f"session_store(db, {store_id!r}) in the function assigned to app.layout, with "
            "storage_type 'session' or 'local', and reload the page."
        )
    if not looks_signed(session_id):
        raise InvalidSessionIdError(
            f"The {TAB_HEADER} header holds no signed session id ({preview(session_id)}); "
            "reloading the page gives the tab a new session."
        )
    try:
        session = db.session(session_id)
    except InvalidSessionIdError as exc:
        raise InvalidSessionIdError(
            f"{exc} This tab's session id is not valid any more; reloading the page gives the "
            "tab a new session."
        ) from None
    response = getattr(ctx, "response", None)
    if response is not None and id_status(db, session_id) == "renew":
        # The store keeps the renewed id, and the page sends it from the next request on.
        dash.set_props(store_id, {"data": fresh_or_renewed(db, session_id)})
        set_no_store(response)
    return session


def _store_id() -> str | None:
    server = request_server()
    store_id = _STORES.get(server) if server is not None else None
    if store_id is None:
        try:
            app = dash.get_app()  # type: ignore[no-untyped-call]
        except Exception:  # no app created yet: nothing enabled tab sessions
            return None
        store_id = _STORES.get(app)
    return store_id


def _header(headers: Any) -> str | None:
    # Flask's header names keep their case, Starlette's are lower case.
    wanted = TAB_HEADER.lower()
    for name, value in dict(headers or {}).items():
        if name.lower() == wanted:
            return str(value)
    return None
