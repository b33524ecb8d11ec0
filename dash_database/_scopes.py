"""The reserved sessions behind the app and user scopes.

The store keeps a signed session under its *name*: ``dds1.`` and 43 base64url characters,
exactly 48 characters. A ``str`` id with that shape (the marker, 43 such characters, then
nothing or a ``.`` and anything) is always verified as a signed id, so a plain id can never
name such a session. The reserved names below have that shape and are longer than 48
characters: no signed id's name equals one, and no plain id reaches one.
"""

from __future__ import annotations

from ._signing import PREFIX

__all__ = ["APP_SESSION", "USER_PREFIX", "is_app_session", "user_session_name"]

_RESERVED = PREFIX + "dash_database_scopes".ljust(43, "_")

#: The name of the one session that ``DashDatabase.app_state`` and ``memoize(scope="app")``
#: use. It never expires, whatever the database's ``ttl``.
APP_SESSION = _RESERVED + ".app"

#: The prefix of the names of the per-user sessions (``DashDatabase.user_state``).
USER_PREFIX = _RESERVED + ".user."


def user_session_name(user_id: str) -> str:
    """Return the name the store keeps the state of the authenticated user ``user_id`` under."""
    return USER_PREFIX + user_id


def is_app_session(session: str) -> bool:
    """Return whether ``session`` is the app's session (which never expires)."""
    return session == APP_SESSION
