"""Server-side, per-session state for Plotly Dash apps.

>>> from dash_database import DashDatabase
>>> db = DashDatabase(":memory:")
>>> db.store_user_value("session-1", "answer", 42)
>>> db.get_user_value("session-1", "answer")
42
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._database import DashDatabase, Session
from ._locations import DEFAULT_PATH, DEFAULT_SECRET_FILE, ENV_URL
from ._signing import ENV_SECRET
from .backends import Backend, KeyInfo, MemoryBackend, SessionInfo, SqliteBackend, StoreStats
from .exceptions import (
    BackendError,
    DashDatabaseError,
    DeserializationError,
    InvalidArgumentError,
    InvalidIdError,
    InvalidIdTypeError,
    InvalidSessionIdError,
    LayoutError,
    MissingKeyError,
    QuotaExceededError,
    SerializationError,
    SessionLimitError,
    UnsupportedDashError,
    UpdateConflictError,
    ValueTooLargeError,
)
from .serializers import CompressedSerializer, JsonSerializer, PickleSerializer, Serializer

try:
    __version__ = version("dash-database")
except PackageNotFoundError:  # pragma: no cover - running from a source tree, not installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SECRET_FILE",
    "ENV_SECRET",
    "ENV_URL",
    "Backend",
    "BackendError",
    "CompressedSerializer",
    "DashDatabase",
    "DashDatabaseError",
    "DeserializationError",
    "InvalidArgumentError",
    "InvalidIdError",
    "InvalidIdTypeError",
    "InvalidSessionIdError",
    "JsonSerializer",
    "KeyInfo",
    "LayoutError",
    "MemoryBackend",
    "MissingKeyError",
    "PickleSerializer",
    "QuotaExceededError",
    "SerializationError",
    "Serializer",
    "Session",
    "SessionInfo",
    "SessionLimitError",
    "SqliteBackend",
    "StoreStats",
    "UnsupportedDashError",
    "UpdateConflictError",
    "ValueTooLargeError",
    "__version__",
]
