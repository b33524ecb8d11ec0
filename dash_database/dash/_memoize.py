"""How ``memoize(scope="session")`` finds the current session inside a Dash callback."""

from __future__ import annotations

from .._database import DashDatabase, Session
from ._browser import current_session
from ._tab import _in_callback

__all__ = ["find_current_session"]


def find_current_session(db: DashDatabase) -> Session | None:
    """Return the session of the browser or tab the running callback serves (background
    callbacks included), or ``None`` outside a callback."""
    return current_session(db) if _in_callback() else None
