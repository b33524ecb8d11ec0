"""The one resolver: where ``DashDatabase(db_location)`` keeps its data.

``db_location`` may be omitted (``DASH_DATABASE_URL``, else the SQLite file
``dash_database.sqlite`` in the working directory), a path, ``":memory:"``, ``None`` (a
temporary SQLite file), a URL, or a backend object. URL forms:

``memory://``                                 this process only
``sqlite:///relative/path``, ``sqlite:////absolute/path``   the embedded default
``redis://[[user]:password@]host:port/db``, ``rediss://...`` (TLS)
``postgresql://user:password@host:port/db``, ``postgres://...``, ``postgresql+psycopg://...``

The Redis and PostgreSQL packages are imported only when such a URL is opened, so
``import dash_database`` works without their drivers. Where a generated secret key is kept is
the backend's ``secret_file`` (see ``backends/_base.py``); the core never looks at backend
classes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from .backends import Backend, MemoryBackend, SqliteBackend
from .exceptions import InvalidArgumentError

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SECRET_FILE",
    "ENV_URL",
    "backend_from_url",
    "local_file",
    "open_backend",
    "redact_url",
]

#: Where ``DashDatabase()`` keeps its data: this file in the current working directory,
#: resolved to an absolute path at construction, so every worker process of an app started
#: from one directory shares it.
DEFAULT_PATH = "dash_database.sqlite"
#: The environment variable that, when set, chooses the store of ``DashDatabase()``.
ENV_URL = "DASH_DATABASE_URL"
#: Where a generated secret key is kept for a store on a server (Redis, PostgreSQL): this file
#: in the current working directory (backends give the absolute path as ``secret_file``).
DEFAULT_SECRET_FILE = "dash_database.secret"

#: Stands for "no location given" (``None`` means a temporary file, as in 1.0).
DEFAULT_LOCATION: Any = object()

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _memory(url: str, options: dict[str, Any]) -> Backend:
    return MemoryBackend(**options)


def _sqlite_path(url: str) -> str:
    # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
    path = unquote(url.split("://", 1)[1])
    if not path.startswith("/") or len(path) == 1:
        raise InvalidArgumentError(
            f"A SQLite URL names a file: 'sqlite:///relative/path.sqlite' or "
            f"'sqlite:////absolute/path.sqlite', got {url!r}."
        )
    return path[1:]


def _sqlite(url: str, options: dict[str, Any]) -> Backend:
    return SqliteBackend(_sqlite_path(url), **options)


def _redis(url: str, options: dict[str, Any]) -> Backend:
    from .backends.redis import RedisBackend

    return RedisBackend(url, **options)


def _postgres(url: str, options: dict[str, Any]) -> Backend:
    from .backends.postgres import PostgresBackend

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


def open_backend(location: Any) -> Backend:
    """Return the backend ``location`` names (see the module notes)."""
    if location is DEFAULT_LOCATION:
        url = os.environ.get(ENV_URL)
        if url:
            return backend_from_url(url)
        return SqliteBackend(DEFAULT_PATH)
    if location is None:
        return SqliteBackend.temporary()
    if isinstance(location, str):
        if location == ":memory:":
            return MemoryBackend()
        if _URL.match(location):
            return backend_from_url(location)
        return SqliteBackend(location)
    if isinstance(location, os.PathLike):
        return SqliteBackend(location)
    if isinstance(location, Backend):
        return location
    raise InvalidArgumentError(
        f"db_location must be a file path, a URL, ':memory:', None or a backend object, got "
        f"{type(location).__name__} {location!r}."
    )


def local_file(location: Any = DEFAULT_LOCATION) -> str | None:
    """Return the absolute path of the SQLite file that ``location`` names (resolved as
    :func:`open_backend` does), or ``None`` when it names another kind of store.

    Opening a SQLite store creates its file; this lets a caller check first that it exists.
    """
    if location is DEFAULT_LOCATION:
        location = os.environ.get(ENV_URL) or DEFAULT_PATH
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str) or location == ":memory:":
        return None
    if _URL.match(location):
        if urlsplit(location).scheme.lower() != "sqlite":
            return None
        location = _sqlite_path(location)
    return str(os.path.abspath(location))


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, safe for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
