"""Storage backends and the URL forms that select them.

``memory://``                    :class:`MemoryBackend` (this process only)
``sqlite:///relative/path``      :class:`SqliteBackend` (the embedded default)
``sqlite:////absolute/path``
``redis://[[user]:password@]host:port/db``  :class:`.redis.RedisBackend`
``rediss://...`` (TLS)                      (``pip install "./dash_database[redis]"``)
``postgresql://user:password@host:port/db`` :class:`.postgres.PostgresBackend`
``postgres://...``, ``postgresql+psycopg://...`` (``pip install "./dash_database[postgres]"``)

The Redis and PostgreSQL modules are imported only when such a URL is opened, so
``import dash_database`` works without their drivers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from ..exceptions import InvalidArgumentError
from ._base import Backend
from .memory import MemoryBackend
from .sqlite import SqliteBackend

__all__ = ["Backend", "MemoryBackend", "SqliteBackend", "backend_from_url", "redact_url"]


def _memory(url: str, options: dict[str, Any]) -> Backend:
    return MemoryBackend(**options)


def _sqlite(url: str, options: dict[str, Any]) -> Backend:
    # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
    path = unquote(url.split("://", 1)[1])
    if not path.startswith("/") or len(path) == 1:
        raise InvalidArgumentError(
            f"A SQLite URL names a file: 'sqlite:///relative/path.sqlite' or "
            f"'sqlite:////absolute/path.sqlite', got {url!r}."
        )
    return SqliteBackend(path[1:], **options)


def _redis(url: str, options: dict[str, Any]) -> Backend:
    from .redis import RedisBackend

    return RedisBackend(url, **options)


def _postgres(url: str, options: dict[str, Any]) -> Backend:
    from .postgres import PostgresBackend

    return PostgresBackend(url, **options)


_SCHEMES: dict[str, Callable[[str, dict[str, Any]], Backend]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "redis": _redis,
    "rediss": _redis,
    "postgresql": _postgres,
    "postgresql+psycopg": _postgres,
    "postgres": _postgres,
}


def backend_from_url(url: str, **options: Any) -> Backend:
    """Return the backend that ``url`` names; ``options`` go to the backend's constructor.

    Raises:
        InvalidArgumentError: the URL's scheme is not one dash_database knows.
    """
    scheme = urlsplit(url).scheme.lower()
    try:
        factory = _SCHEMES[scheme]
    except KeyError:
        known = ", ".join(f"{name}://" for name in sorted(_SCHEMES))
        raise InvalidArgumentError(
            f"Unknown database URL scheme in {redact_url(url)!r}; use one of {known}."
        ) from None
    return factory(url, options)


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, safe for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
