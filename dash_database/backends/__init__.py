"""Storage backends: one protocol (``_base.py``) and one adapter per store.

``memory``  the reference implementation (this process only)
``sqlite``  the embedded default, through sqlitedict
``redis``   Redis or Valkey (``pip install "./dash_database[redis]"``), imported on demand
``postgres`` PostgreSQL (``pip install "./dash_database[postgres]"``), imported on demand

Which location or URL opens which backend is decided in ``dash_database/_locations.py``.
"""

from __future__ import annotations

from ._base import Backend, KeyInfo, SessionData, SessionInfo, StoreStats
from .memory import MemoryBackend
from .sqlite import SqliteBackend

__all__ = [
    "Backend",
    "KeyInfo",
    "MemoryBackend",
    "SessionData",
    "SessionInfo",
    "SqliteBackend",
    "StoreStats",
]
