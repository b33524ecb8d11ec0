"""A backend for dash-extensions' ``ServersideOutputTransform`` that keeps values in the session.

dash-extensions' own backends key values by a random string alone: any browser that learns
one reads the value. This one keeps each value in the current session (the same one
:func:`~dash_database.dash.current_session` returns, or the tab's when the callback takes
``State(SESSION_STORE_ID, "data")``), so a key replayed from another session names nothing.
It needs no import of dash-extensions: the transform only calls ``get``, ``set``, ``has`` and
``uid``.

``Serverside(value)`` makes a new random key at each call: that key is the value's token,
fresh for each version, so Dash calls the readers again. Writing the same output again
replaces the value: a small entry per output (``OUTPUT_PREFIX``) names the key of its
current value, and ``set`` swaps it atomically and deletes the value it named, so a stale or
replayed reference then names nothing.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import dash
from dash.exceptions import MissingCallbackContextException, PreventUpdate

from .._database import DashDatabase
from .._keys import check_id
from ._values import session_for_callback

__all__ = ["KEY_PREFIX", "OUTPUT_PREFIX", "ServersideSessionBackend"]

#: The session keys of values stored through dash-extensions start with this.
KEY_PREFIX = "dash_extensions:"
#: The session keys naming the current value of each output start with this, followed by the
#: output's ``id.property`` (a pattern-matching id as compact JSON with sorted keys).
OUTPUT_PREFIX = "dash_extensions.output:"
_MISSING: Any = object()


class ServersideSessionBackend:
    """Keep dash-extensions' ``Serverside(...)`` values in the current session of ``db``.

    Migrate an app on ``Serverside`` by giving the transform this backend::

        backend = ServersideSessionBackend(db)
        app = DashProxy(transforms=[ServersideOutputTransform(backends=[backend])])

    Values count against ``max_session_bytes``, expire with the session and are never
    evicted. A reader whose value is missing (another session's key, an altered one, or an
    expired session) gets ``PreventUpdate``: no output changes, as does a reader of a value
    that a later write of the same output replaced (the newer reference is on its way).

    A callback with one output keeps one value for it: writing it again replaces the value.
    A callback with several outputs cannot tell the backend which one a value is for, so each
    call adds a value until the session expires, unless ``Serverside(value, key="name")``
    names it (then it is replaced).

    Args:
        db: the database.
        uid: the name the transform knows this backend by (several backends need distinct
            names).
    """

    def __init__(self, db: DashDatabase, uid: str = "dash_database") -> None:
        self.db = db
        self._uid = uid

    @property
    def uid(self) -> str:
        """The name the transform knows this backend by."""
        return self._uid

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` in the current session, in place of the value the
        same output had (when the callback has one output)."""
        session = session_for_callback(self.db)
        name = _key(key)
        session[name] = value
        output = _single_output()
        if output is None:
            return
        replaced: list[Any] = [None]

        def swap(current: Any) -> str:
            # It may run more than once: the last run saw the entry actually replaced.
            replaced[0] = current
            return name

        session.update_value(OUTPUT_PREFIX + output, swap)
        if isinstance(replaced[0], str) and replaced[0] != name:
            # The swap handed the old value to this call alone: no other writer deletes it.
            with contextlib.suppress(KeyError):  # the session expired meanwhile
                del session[replaced[0]]

    def get(self, key: str, ignore_expired: bool = False) -> Any:
        """Return the value of ``key`` in the current session.

        Raises:
            PreventUpdate: the current session has no such value.
        """
        value = session_for_callback(self.db).get(_key(key), _MISSING)
        if value is _MISSING:
            raise PreventUpdate
        return value

    def has(self, key: str) -> bool:
        """Return whether the current session has a value under ``key``."""
        return _key(key) in session_for_callback(self.db)

    def __repr__(self) -> str:
        return f"ServersideSessionBackend({self.db!r}, uid={self._uid!r})"


def _single_output() -> str | None:
    """Return ``id.property`` of the running callback's one output, or ``None`` when it has
    several (or a pattern-matching ``ALL`` one) or runs outside a callback."""
    try:
        output = dash.callback_context.outputs_list
    except MissingCallbackContextException:
        return None
    if not isinstance(output, dict):
        return None
    component_id = output["id"]
    if not isinstance(component_id, str):
        component_id = json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    # "data@<hash>" names the same property as "data" (Dash's allow_duplicate outputs).
    return f"{component_id}.{str(output['property']).split('@', 1)[0]}"


def _key(key: object) -> str:
    return KEY_PREFIX + check_id(key, "key")
