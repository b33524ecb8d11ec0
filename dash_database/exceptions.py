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
    "InvalidArgumentError",
    "InvalidIdError",
    "InvalidIdTypeError",
    "InvalidSessionIdError",
    "LayoutError",
    "MissingKeyError",
    "SerializationError",
    "UnsupportedDashError",
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


class InvalidArgumentError(DashDatabaseError, ValueError):
    """An option or argument has a value the library does not accept."""


class SerializationError(DashDatabaseError, TypeError):
    """A value could not be serialized; nothing was written."""


class DeserializationError(DashDatabaseError, ValueError):
    """A stored value could not be deserialized (its class was removed or renamed, or the
    serializer changed)."""


class ValueTooLargeError(DashDatabaseError, ValueError):
    """A serialized value is larger than ``max_value_bytes``; nothing was written."""


class MissingKeyError(DashDatabaseError, KeyError):
    """A key does not exist in the session (or the session expired)."""

    def __str__(self) -> str:
        # KeyError.__str__ shows the repr of its argument; show the sentence instead.
        return str(self.args[0]) if self.args else ""


class BackendError(DashDatabaseError):
    """The storage backend failed: a file that is not a database, a server that went away,
    a disk that is full. The message names the store; the driver's error is chained."""


class UnsupportedDashError(DashDatabaseError, ImportError):
    """The installed Dash is older than the Dash integration (``dash_database.dash``) needs."""


class LayoutError(DashDatabaseError, RuntimeError):
    """A Dash layout would share one session between visitors (a session id made outside a
    layout function)."""
