"""The errors dash_database raises.

Every error derives from :class:`DashDatabaseError`. Where a builtin exception already says
what kind of mistake it is, the specific class derives from that builtin too, so
``except TypeError`` or ``except KeyError`` in existing code keeps working.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "DashDatabaseError",
    "DeserializationError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidIdError",
    "InvalidIdTypeError",
    "InvalidSessionIdError",
    "InvalidValueTokenError",
    "LayoutError",
    "MemoizeArgumentError",
    "MissingKeyError",
    "NoCurrentSessionError",
    "QuotaExceededError",
    "RequiredKeyError",
    "SerializationError",
    "SessionLimitError",
    "UnsupportedDashError",
    "UpdateConflictError",
    "ValueTooLargeError",
]


class DashDatabaseError(Exception):
    """Root of every error raised by dash_database."""


class InvalidIdTypeError(DashDatabaseError, TypeError):
    """A user id or key name is neither ``str`` nor ``int``."""


class InvalidIdError(DashDatabaseError, ValueError):
    """A user id or key name has the right type but cannot be used (for example a lone
    surrogate that is not valid Unicode text)."""


class InvalidSessionIdError(DashDatabaseError, ValueError):
    """A signed session id is missing, forged or altered, or its signature was made with a
    secret key the app no longer accepts. Nothing was read or written."""


class InvalidValueTokenError(InvalidSessionIdError):
    """A server-side value's token was not issued to this session, or was altered: it was
    replayed from another browser or tab, or made before the session was renewed at login or
    replaced after it expired. Nothing was read."""


class InvalidArgumentError(DashDatabaseError, ValueError):
    """An option or argument has a value the library does not accept."""


class SerializationError(DashDatabaseError, TypeError):
    """A value could not be serialized; nothing was written."""


class DeserializationError(DashDatabaseError, ValueError):
    """A stored value could not be deserialized (its class was removed or renamed, or the
    serializer changed)."""


class IntegrityError(DashDatabaseError, ValueError):
    """A stored value failed its integrity check: it was altered, truncated, or moved from
    another key or session in the store, or sealed with a secret key the app does not have.
    It was not deserialized."""


class ValueTooLargeError(DashDatabaseError, ValueError):
    """A serialized value is larger than ``max_value_bytes``; nothing was written."""


class MissingKeyError(DashDatabaseError, KeyError):
    """A key does not exist in the session (or the session expired)."""

    def __str__(self) -> str:
        # KeyError.__str__ shows the repr of its argument; show the sentence instead.
        return str(self.args[0]) if self.args else ""


class RequiredKeyError(MissingKeyError):
    """A key that :meth:`Session.require` needs is missing (or the session expired).

    In a Dash callback decorated with :func:`dash_database.dash.server_side`, or in an app
    that called :func:`dash_database.dash.enable_error_messages`, it stops the callback
    quietly, as ``dash.exceptions.PreventUpdate`` does: no output changes.
    """


class BackendError(DashDatabaseError):
    """The storage backend failed: a file that is not a database, a server that went away,
    a disk that is full. The message names the store; the driver's error is chained."""


class QuotaExceededError(DashDatabaseError, ValueError):
    """A write would take a session over ``max_session_bytes``; nothing was written.

    Attributes:
        session_bytes: the session's size before the write.
        needed_bytes: its size had the write gone through.
        limit: the limit in force.
    """

    def __init__(self, message: str, session_bytes: int, needed_bytes: int, limit: int) -> None:
        super().__init__(message)
        self.session_bytes = session_bytes
        self.needed_bytes = needed_bytes
        self.limit = limit

    def __reduce__(self) -> tuple[type[QuotaExceededError], tuple[str, int, int, int]]:
        return (type(self), (str(self), self.session_bytes, self.needed_bytes, self.limit))

    @classmethod
    def for_write(cls, session_bytes: int, needed_bytes: int, limit: int) -> QuotaExceededError:
        """Return the error for a write that would take a session from ``session_bytes`` to
        ``needed_bytes``, over ``limit``."""
        return cls(
            f"The session holds {session_bytes:,} bytes; this write would take it to "
            f"{needed_bytes:,} bytes, over max_session_bytes={limit:,}. Nothing was written; "
            "delete values the session no longer needs, store smaller ones, or raise the limit.",
            session_bytes,
            needed_bytes,
            limit,
        )


class SessionLimitError(DashDatabaseError, ValueError):
    """A write would start a new session while the store already holds ``max_sessions`` live
    sessions; nothing was written and no session was evicted.

    Attributes:
        limit: the limit in force.
    """

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit

    def __reduce__(self) -> tuple[type[SessionLimitError], tuple[str, int]]:
        return (type(self), (str(self), self.limit))

    @classmethod
    def for_write(cls, limit: int) -> SessionLimitError:
        """Return the error for a write that would start a session beyond ``limit``."""
        return cls(
            f"The store already holds max_sessions={limit:,} live sessions, so this write, the "
            "first of a new session, was refused. Nothing was written and no session was "
            "evicted; purge expired sessions (dash-database purge), give sessions a ttl, or "
            "raise the limit.",
            limit,
        )


class UpdateConflictError(DashDatabaseError, RuntimeError):
    """An atomic update kept meeting concurrent writes of the same key and gave up after its
    bounded number of attempts; nothing was written by the last attempt."""


class UnsupportedDashError(DashDatabaseError, ImportError):
    """The installed Dash is older than the Dash integration (``dash_database.dash``) needs."""


class LayoutError(DashDatabaseError, RuntimeError):
    """A Dash layout would share one session between visitors (a session id made outside a
    layout function)."""


class MemoizeArgumentError(DashDatabaseError, TypeError):
    """A memoized function was called with an argument memoize cannot key its cache by (see
    :func:`dash_database.digest_arguments`); the function was not called."""


class NoCurrentSessionError(DashDatabaseError, RuntimeError):
    """``memoize(scope="session")`` found no current session: the function ran outside a Dash
    callback and outside a ``use_session`` block."""
