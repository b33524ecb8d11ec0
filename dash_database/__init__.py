"""Server-side, per-session state for Plotly Dash apps.

>>> from dash_database import DashDatabase
>>> db = DashDatabase(":memory:")
>>> db.store_user_value("session-1", "answer", 42)
>>> db.get_user_value("session-1", "answer")
42
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._async import AsyncDatabase, AsyncSession
from ._database import DashDatabase, Session
from ._digest import digest_arguments
from ._locations import DEFAULT_PATH, DEFAULT_SECRET_FILE, ENV_URL
from ._memoize import use_session
from ._signing import ENV_SECRET
from .backends import Backend, KeyInfo, MemoryBackend, SessionInfo, SqliteBackend, StoreStats
from .exceptions import (
    BackendError,
    DashDatabaseError,
    DeserializationError,
    IntegrityError,
    InvalidArgumentError,
    InvalidIdError,
    InvalidIdTypeError,
    InvalidSessionIdError,
    InvalidValueTokenError,
    LayoutError,
    MemoizeArgumentError,
    MissingKeyError,
    NoCurrentSessionError,
    QuotaExceededError,
    RequiredKeyError,
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
    "AsyncDatabase",
    "AsyncSession",
    "Backend",
    "BackendError",
    "CompressedSerializer",
    "DashDatabase",
    "DashDatabaseError",
    "DeserializationError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidIdError",
    "InvalidIdTypeError",
    "InvalidSessionIdError",
    "InvalidValueTokenError",
    "JsonSerializer",
    "KeyInfo",
    "LayoutError",
    "MemoizeArgumentError",
    "MemoryBackend",
    "MissingKeyError",
    "NoCurrentSessionError",
    "PickleSerializer",
    "QuotaExceededError",
    "RequiredKeyError",
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
    "digest_arguments",
    "use_session",
]
