"""Server-side values between callbacks: the value stays in the session, the page holds a token.

A callback decorated with :func:`server_side` returns ``ServerValue(frame)`` to an
``Output``; the frame is stored in the current session under a key named after that output,
and the browser receives a short signed token instead. Callbacks decorated with
:func:`server_side` that take the token as an ``Input`` or ``State`` receive the frame.

A token reads ``ddsv1.<key>.<version>.<signature>``: the session key (base64url), the version
of the write that stored the value, and an HMAC-SHA256 over the *session's name*, the key and
the version under the app's secret key (its own salt, so no other signed string of the app is
ever a valid token). The session's name is not in the token (the page never sees it), so a
token only verifies in the session it was issued to.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

import dash
from dash.exceptions import PreventUpdate
from itsdangerous import Signer
from itsdangerous.encoding import base64_decode, base64_encode, bytes_to_int, int_to_bytes

from .._database import DashDatabase, Session
from .._signing import SessionIdSigner, looks_signed
from ..exceptions import InvalidValueTokenError, RequiredKeyError, SerializationError
from ._browser import current_session
from ._tab import SESSION_STORE_ID, tab_session

__all__ = ["KEY_PREFIX", "TOKEN_PREFIX", "ServerValue", "server_side", "session_for_callback"]

#: Every server-side value's token starts with this marker.
TOKEN_PREFIX = "ddsv1."
#: The session keys of server-side values start with this, followed by the output's
#: ``id.property`` (a pattern-matching id as compact JSON with sorted keys).
KEY_PREFIX = "dash_database.value:"
#: The itsdangerous salt of tokens: a session id's signature is never a token's, nor back.
SALT = "dash_database.server-value"

F = TypeVar("F", bound=Callable[..., Any])

# One token signer per session-id signer, that is per database and secret key.
_SIGNERS: weakref.WeakKeyDictionary[SessionIdSigner, Signer] = weakref.WeakKeyDictionary()


class ServerValue:
    """A callback's output value to keep on the server, from a :func:`server_side` callback.

    Return it in place of the value (``return ServerValue(frame)``, or in the list of a
    callback with several outputs); the browser receives a token for it.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def to_plotly_json(self) -> Any:
        # Dash serializes a returned object through this method: reaching it means the
        # callback lacks the decorator that would have replaced the object by its token.
        raise SerializationError(
            "A callback returned ServerValue(...) but is not decorated with "
            "@server_side(db); put @server_side(db) under its @callback(...) line."
        )

    def __repr__(self) -> str:
        return f"ServerValue({type(self.value).__name__})"


def server_side(db: DashDatabase) -> Callable[[F], F]:
    """Keep a callback's :class:`ServerValue` outputs on the server, and give it the values of
    the tokens it receives.

    Put it under ``@callback(...)`` (or ``@app.callback(...)``) on the callback that writes a
    value and on each one that reads it::

        @callback(Output("frame", "data"), Input("load", "n_clicks"))
        @server_side(db)
        def load(n_clicks):
            return ServerValue(pd.read_parquet("big.parquet"))

        @callback(Output("table", "children"), Input("frame", "data"))
        @server_side(db)
        def show(frame):  # the DataFrame, not the token
            ...

    The value is stored in the current session (:func:`current_session`; in a callback that
    takes the tab's id as ``State(SESSION_STORE_ID, "data")``, that tab's session) under the
    key ``"dash_database.value:<output id>.<property>"``, so writing the same output again
    replaces it. It counts against ``max_session_bytes``, expires with the session and is
    never evicted. Each write makes a new token, so Dash calls the readers again.

    A reader receives the value, or Dash's ``PreventUpdate`` (no output changes, HTTP 204)
    when the value is missing (deleted, or its session expired) or was replaced since the
    token was made (the newer token is on its way to the readers). ``Session.require`` in the
    callback stops it the same way.

    Raises:
        InvalidValueTokenError: (in a reader) a token that was issued to another session or
            altered; nothing was read. ``enable_error_messages`` shows the user the message
            for an expired session.
    """

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                # The store's calls block: a worker thread keeps the event loop free (it runs
                # in a copy of this context, so it sees the same callback and request).
                session = _LazySession(db)
                args, kwargs = await asyncio.to_thread(_load_arguments, session, args, kwargs)
                try:
                    result = await func(*args, **kwargs)
                except RequiredKeyError:
                    raise PreventUpdate from None
                return await asyncio.to_thread(_dump_outputs, session, result)

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            session = _LazySession(db)
            args, kwargs = _load_arguments(session, args, kwargs)
            try:
                result = func(*args, **kwargs)
            except RequiredKeyError:
                raise PreventUpdate from None
            return _dump_outputs(session, result)

        return cast(F, run)

    return decorate


def session_for_callback(db: DashDatabase) -> Session:
    """Return the session of the running callback: the tab's, when the callback takes the id
    of :func:`session_store` (``State(SESSION_STORE_ID, "data")``), else the browser's."""
    ctx = dash.callback_context
    for values in (ctx.states, ctx.inputs):
        session_id = values.get(f"{SESSION_STORE_ID}.data")
        if looks_signed(session_id):
            return tab_session(db, session_id)
    return current_session(db)


class _LazySession:
    """The callback's session, opened on first use: a callback that neither reads nor
    writes a server-side value never touches the session."""

    def __init__(self, db: DashDatabase) -> None:
        self.db = db
        self._session: Session | None = None

    def get(self) -> Session:
        if self._session is None:
            self._session = session_for_callback(self.db)
        return self._session

    def signer(self) -> Signer:
        ids = self.db._secret.signer()
        signer = _SIGNERS.get(ids)
        if signer is None:
            # itsdangerous signs with the last key and accepts every key: reverse our order.
            signer = Signer(
                list(reversed(ids.keys)),
                salt=SALT,
                key_derivation="hmac",
                digest_method=hashlib.sha256,
            )
            _SIGNERS[ids] = signer
        return signer


# -- tokens -----------------------------------------------------------------------------------


def _signed_text(session_name: str, body: str) -> bytes:
    # The session's name is signed but not sent: the token verifies in its own session only.
    return f"{session_name}\x00{body}".encode()


def _make_token(session: _LazySession, key: str, version: int) -> str:
    key_text = base64_encode(key.encode()).decode("ascii")
    version_text = base64_encode(int_to_bytes(version)).decode("ascii")
    body = f"{TOKEN_PREFIX}{key_text}.{version_text}"
    signature = session.signer().get_signature(_signed_text(session.get().session_id, body))
    return f"{body}.{signature.decode('ascii')}"


def _read_token(session: _LazySession, token: str) -> Any:
    """Return the value ``token`` names in the current session."""
    body, _, signature = token.rpartition(".")
    parts = body[len(TOKEN_PREFIX) :].split(".")
    text = _signed_text(session.get().session_id, body)
    if len(parts) != 2 or not session.signer().verify_signature(text, signature.encode()):
        raise InvalidValueTokenError(
            "A callback received a server-side value's token that was not issued to this "
            "session, or was altered; nothing was read. Reloading the page gives the browser "
            "fresh tokens. (In an app with one session per tab, every @server_side callback "
            'needs State(SESSION_STORE_ID, "data"), so that it uses the session of the tab.)'
        )
    try:
        key = base64_decode(parts[0]).decode()
        version = bytes_to_int(base64_decode(parts[1]))
    except Exception as exc:  # signed by us, so only a change of format lands here
        raise InvalidValueTokenError(f"A server-side value's token is malformed ({exc}).") from None
    found = session.db._get_versioned(session.get().session_id, key)
    if found is None or found[1] != version:
        # Missing (deleted, or the session expired), or replaced since this token was made:
        # the token of the newer value triggers the readers again.
        raise PreventUpdate
    return found[0]


def _load(session: _LazySession, value: Any) -> Any:
    if isinstance(value, str) and value.startswith(TOKEN_PREFIX):
        return _read_token(session, value)
    if isinstance(value, list):  # a pattern-matching ALL or ALLSMALLER input
        return [_load(session, item) for item in value]
    return value


def _load_arguments(
    session: _LazySession, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (
        tuple(_load(session, arg) for arg in args),
        {name: _load(session, arg) for name, arg in kwargs.items()},
    )


# -- outputs ----------------------------------------------------------------------------------


def output_key(output: dict[str, Any]) -> str:
    """Return the session key of the value kept for ``output`` (``{"id": ..., "property":
    ...}`` as Dash describes it in ``callback_context.outputs_list``)."""
    component_id = output["id"]
    if not isinstance(component_id, str):
        component_id = json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    # "data@<hash>" names the same property as "data" (Dash's allow_duplicate outputs).
    prop = str(output["property"]).split("@", 1)[0]
    return f"{KEY_PREFIX}{component_id}.{prop}"


def _dump_outputs(session: _LazySession, result: Any) -> Any:
    if not _holds_server_value(result):
        return result
    items: dict[str, Any] = {}
    replaced = _replace(result, dash.callback_context.outputs_list, items)
    # Serialized straight into the stored form, all or none: a large value is never held twice.
    version = session.db._put(session.get().session_id, items)
    tokens = {key: _make_token(session, key, version) for key in items}
    return _fill(replaced, tokens)


def _holds_server_value(result: Any) -> bool:
    if isinstance(result, ServerValue):
        return True
    return isinstance(result, (list, tuple)) and any(_holds_server_value(i) for i in result)


class _Slot:
    """Where a token goes once the write that it names is done."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def _replace(result: Any, spec: Any, items: dict[str, Any]) -> Any:
    """Collect the values of the ``ServerValue`` objects of ``result`` into ``items`` and put a
    slot for each one's token in their place, matching ``result`` with the outputs ``spec``."""
    if isinstance(result, ServerValue):
        if not (isinstance(spec, dict) and "property" in spec):
            raise SerializationError(
                "A callback returned ServerValue(...) where Dash expects a list of values "
                "(a pattern-matching ALL output); return a list of ServerValue(...) instead."
            )
        key = output_key(spec)
        items[key] = result.value
        return _Slot(key)
    if not _holds_server_value(result):
        return result
    if isinstance(spec, list) and len(spec) == len(result):
        return [_replace(item, part, items) for item, part in zip(result, spec)]
    raise SerializationError(
        "A callback returned ServerValue(...) in a shape that does not match its outputs; "
        "return it as the value of one Output, or as one item of the list of values of "
        "several outputs."
    )


def _fill(result: Any, tokens: dict[str, str]) -> Any:
    if isinstance(result, _Slot):
        return tokens[result.key]
    if isinstance(result, list):
        return [_fill(item, tokens) for item in result]
    return result
