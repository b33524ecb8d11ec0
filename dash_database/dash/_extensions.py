"""A backend for dash-extensions' ``ServersideOutputTransform`` that keeps values in the session.

dash-extensions' own backends key values by a random string alone: any browser that learns
one reads the value. This one keeps each value in the current session (the same one
:func:`~dash_database.dash.current_session` returns, or the tab's when the callback takes
``State(SESSION_STORE_ID, "data")``), so a key replayed from another session names nothing.
It needs no import of dash-extensions: the transform only calls ``get``, ``set``, ``has`` and
``uid``.
"""

from __future__ import annotations

from typing import Any

from dash.exceptions import PreventUpdate

from .._database import DashDatabase
from .._keys import check_id
from ._values import session_for_callback

__all__ = ["KEY_PREFIX", "ServersideSessionBackend"]

#: The session keys of values stored through dash-extensions start with this.
KEY_PREFIX = "dash_extensions:"
_MISSING: Any = object()


class ServersideSessionBackend:
    """Keep dash-extensions' ``Serverside(...)`` values in the current session of ``db``.

    Migrate an app on ``Serverside`` by giving the transform this backend::

        backend = ServersideSessionBackend(db)
        app = DashProxy(transforms=[ServersideOutputTransform(backends=[backend])])

    Values count against ``max_session_bytes``, expire with the session and are never
    evicted. A reader whose value is missing (another session's key, an altered one, or an
    expired session) gets ``PreventUpdate``: no output changes. ``Serverside(value)`` makes a
    new random key at each call, so each call adds a value to the session until it expires;
    ``Serverside(value, key="name")`` replaces the value instead.

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
        """Store ``value`` under ``key`` in the current session."""
        session_for_callback(self.db)[_key(key)] = value

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


def _key(key: object) -> str:
    return KEY_PREFIX + check_id(key, "key")
