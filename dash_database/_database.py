"""DashDatabase: the one place where the library's semantics live.

It validates ids, serializes values, enforces size limits, computes session deadlines from the
injected clock, and hands plain strings and bytes to a backend (see ``backends/_base.py``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Literal, TypeVar, Union, overload

from ._signing import DEFAULT_SESSION_ID_MAX_AGE, SecretKey, SecretSource, looks_signed
from .backends import Backend, MemoryBackend, SqliteBackend, backend_from_url
from .exceptions import (
    BackendError,
    DeserializationError,
    InvalidArgumentError,
    InvalidIdError,
    InvalidIdTypeError,
    MissingKeyError,
    SerializationError,
    ValueTooLargeError,
)
from .serializers import CompressedSerializer, Serializer, resolve_serializer

__all__ = ["DEFAULT_PATH", "DEFAULT_SECRET_FILE", "ENV_URL", "DashDatabase", "Id", "Session"]

#: Where ``DashDatabase()`` keeps its data: this file in the current working directory,
#: resolved to an absolute path at construction, so every worker process of an app started
#: from one directory shares it.
DEFAULT_PATH = "dash_database.sqlite"
#: The environment variable that, when set, chooses the store of ``DashDatabase()``.
ENV_URL = "DASH_DATABASE_URL"
#: Where a generated secret key is kept for stores that are neither a SQLite file nor memory.
DEFAULT_SECRET_FILE = "dash_database.secret"

Id = Union[str, int]
T = TypeVar("T")

_MISSING: Any = object()
_DEFAULT_LOCATION: Any = object()
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Remember at most this many recently renewed sessions; forgetting one only costs a renewal.
_RENEWALS_REMEMBERED = 100_000


def _check_id(value: object, name: str) -> str:
    if isinstance(value, str):
        if value.isascii():  # O(1) in CPython; only non-ASCII text can hold a lone surrogate
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidIdError(
                f"{name} {value!r} is not valid Unicode text (it contains a lone surrogate); "
                "use a str that encodes to UTF-8."
            ) from None
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidIdTypeError(
        f"{name} must be a str or an int, got {type(value).__name__} {value!r}."
    )


class DashDatabase:
    """Per-session server-side storage for a Dash app.

    Args:
        db_location: where to keep the data.

            - omitted: the ``DASH_DATABASE_URL`` environment variable when set, else the SQLite
              file ``dash_database.sqlite`` in the current working directory (shared by every
              worker process started there).
            - a path (``str`` or ``os.PathLike``): that SQLite file, created when missing.
            - a URL: ``sqlite:///relative.sqlite``, ``sqlite:////abs.sqlite``, ``memory://``.
            - ``":memory:"``: this process only (not shared between gunicorn workers).
            - ``None``: a temporary SQLite file, removed by :meth:`close` (the 1.0 default).
            - a backend object (see :class:`~dash_database.backends.Backend`).
        ttl: seconds of inactivity after which a whole session expires, or ``None`` (never).
            Every read or write of a session renews it (reads renew at most every
            ``min(1 s, ttl/100)`` per process).
        serializer: ``"pickle"`` (default), ``"json"``, or an object with ``dumps``/``loads``.
        compression: ``"zlib"`` (built in), ``"zstd"`` or ``"lz4"`` (extras ``[zstd]``,
            ``[lz4]``) to compress serialized values of 1 KiB or more, or ``None`` (default).
            A shortcut for ``serializer=CompressedSerializer(serializer, codec=compression)``;
            values must be read with the same choice of compression on or off.
        max_value_bytes: refuse values whose serialized size exceeds this many bytes.
        clock: returns the current time in seconds; inject a fake one in tests.
        secret_key: the key that signs session ids (see :meth:`new_session_id`), or several
            keys newest first: ids signed with any of them are accepted, new ids are signed
            with the first. Omitted: the ``DASH_DATABASE_SECRET`` environment variable
            (comma-separated keys, newest first), else a key generated on first use and kept
            in ``<SQLite file>.secret`` (mode 0600) next to a SQLite store or in
            ``dash_database.secret`` in the working directory, with a ``UserWarning``.
        session_id_max_age: seconds a signed session id stays valid after it was issued or
            renewed (one week by default; ``None``: forever). The Dash helpers renew ids in
            use and replace expired ones when a page loads.

    Raises:
        InvalidArgumentError: an option has a value the library does not accept.
        BackendError: the store cannot be opened (for example a file that is not SQLite).
    """

    def __init__(
        self,
        db_location: str | os.PathLike[str] | Backend | None = _DEFAULT_LOCATION,
        *,
        ttl: float | None = None,
        serializer: str | Serializer = "pickle",
        compression: str | None = None,
        max_value_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
        secret_key: SecretKey | None = None,
        session_id_max_age: float | None = DEFAULT_SESSION_ID_MAX_AGE,
    ) -> None:
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0
        ):
            raise InvalidArgumentError(
                f"ttl must be a positive number of seconds or None, got {ttl!r}."
            )
        if max_value_bytes is not None and (
            isinstance(max_value_bytes, bool)
            or not isinstance(max_value_bytes, int)
            or max_value_bytes < 1
        ):
            raise InvalidArgumentError(
                f"max_value_bytes must be a positive int or None, got {max_value_bytes!r}."
            )
        if not callable(clock):
            raise InvalidArgumentError(f"clock must be callable, got {clock!r}.")
        self._serializer = resolve_serializer(serializer)
        if compression is not None:
            if not isinstance(compression, str):
                raise InvalidArgumentError(
                    f"compression must be 'zlib', 'zstd', 'lz4' or None, got {compression!r}."
                )
            self._serializer = CompressedSerializer(self._serializer, codec=compression)
        self.ttl = ttl
        self.max_value_bytes = max_value_bytes
        self._clock = clock
        self._backend = _open_backend(db_location)
        self._secret = SecretSource(secret_key, _secret_file(self._backend), session_id_max_age)
        self._init_expiry_state()

    def _init_expiry_state(self) -> None:
        self._renewed: dict[str, float] = {}
        self._renew_every = min(1.0, self.ttl / 100) if self.ttl else 0.0
        self._next_purge = self._clock() + self.ttl if self.ttl else float("inf")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DashDatabase:
        """Return a database on the store that ``url`` names.

        ``options`` are the keyword options of :class:`DashDatabase` (``ttl``, ...).
        """
        return cls(backend_from_url(url), **options)

    @property
    def backend(self) -> Backend:
        """The backend object that stores the bytes."""
        return self._backend

    # -- session ids ------------------------------------------------------------------------

    def new_session_id(self) -> str:
        """Return a fresh signed session id: 256 random bits, signed with the secret key.

        Every method taking a ``user_id`` accepts it, verifies its signature in constant time
        and raises :class:`~dash_database.InvalidSessionIdError` when it was altered.
        """
        return self._secret.signer().new_id(self._clock())

    def _session_name(self, user_id: object) -> str:
        """Return the name the store keeps ``user_id``'s session under, verifying a signed id.

        A ``str`` with the shape of a signed id is always verified; the name of a signed
        session has that shape too, so a plain id can never name a signed session's data.
        """
        name = _check_id(user_id, "user_id")
        if looks_signed(name):
            return self._secret.signer().storage_name(name, self._clock())
        return name

    # -- the 1.0 methods --------------------------------------------------------------------

    def store_user_value(self, user_id: Id, key_name: Id, value: Any) -> None:
        """Store ``value`` under ``key_name`` for ``user_id``, replacing any previous value.

        Raises:
            InvalidIdTypeError: ``user_id`` or ``key_name`` is not a str or int.
            InvalidSessionIdError: ``user_id`` is a signed id whose signature is not valid.
            SerializationError: the value cannot be serialized; nothing was written.
            ValueTooLargeError: the serialized value exceeds ``max_value_bytes``.
        """
        session = self._session_name(user_id)
        key = _check_id(key_name, "key_name")
        self._write(session, {key: self._dumps(key, value)})

    def get_user_value(self, user_id: Id, key_name: Id, default: Any = None) -> Any:
        """Return the value stored under ``key_name`` for ``user_id``, or ``default`` when it
        is missing or the session expired."""
        session = self._session_name(user_id)
        key = _check_id(key_name, "key_name")
        return self._get(session, key, default)

    def list_stored_user_keys(self, user_id: Id) -> list[str]:
        """Return the key names stored for ``user_id`` (and no other user), sorted."""
        return self._keys(self._session_name(user_id))

    def _keys(self, session: str) -> list[str]:
        now = self._clock()
        keys = self._backend.keys(session, now)
        if keys:
            self._renew(session, now)
        return sorted(keys)

    def delete_user_value(
        self,
        user_id: Id,
        key_name: Id,
        if_not_exists: Literal["ignore", "raise"] = "ignore",
    ) -> None:
        """Delete the value stored under ``key_name`` for ``user_id``.

        Args:
            if_not_exists: ``"ignore"`` (default) does nothing for a missing key; ``"raise"``
                raises :class:`~dash_database.MissingKeyError` (a ``KeyError``).
        """
        if if_not_exists not in ("ignore", "raise"):
            raise InvalidArgumentError(
                f"if_not_exists must be 'ignore' or 'raise', got {if_not_exists!r}."
            )
        self._delete(self._session_name(user_id), _check_id(key_name, "key_name"), if_not_exists)

    def _delete(self, session: str, key: str, if_not_exists: str) -> None:
        if not self._backend.delete(session, key, self._clock()) and if_not_exists == "raise":
            raise MissingKeyError(f"User {session!r} has no key {key!r}.")

    def delete_all_user_values(self, user_id: Id) -> int:
        """Delete every value of ``user_id``; return how many keys were removed."""
        return self._clear(self._session_name(user_id))

    def _clear(self, session: str) -> int:
        self._renewed.pop(session, None)
        return self._backend.clear(session, self._clock())

    # -- the mapping view and housekeeping --------------------------------------------------

    def session(self, user_id: Id) -> Session:
        """Return a mutable mapping view of one session's values.

        Raises:
            InvalidSessionIdError: ``user_id`` is a signed id whose signature is not valid.
        """
        return Session(self, self._session_name(user_id))

    def check(self) -> None:
        """Verify that the store answers, for example at the app's startup.

        Raises:
            BackendError: the store cannot be reached or used; the message names it (without
                any password) and says what to check.
        """
        try:
            self._backend.keys("dash_database.check", self._clock())
        except BackendError as exc:
            raise BackendError(
                f"The session store {self._backend!r} is not usable: {exc} Check that it is "
                "running and that the URL and credentials are right."
            ) from exc

    def purge_expired(self) -> int:
        """Remove every expired session from the store; return how many were removed.

        Expired sessions are invisible and are also purged now and then during writes; call
        this from a scheduled job to reclaim space at a time of your choosing.
        """
        now = self._clock()
        if self.ttl:
            self._next_purge = now + self.ttl
        return self._backend.purge_expired(now)

    def close(self) -> None:
        """Release the store's connections (and remove a temporary file)."""
        self._backend.close()

    def __enter__(self) -> DashDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DashDatabase({self._backend!r}, ttl={self.ttl!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "backend": self._backend,
            "ttl": self.ttl,
            "serializer": self._serializer,
            "max_value_bytes": self.max_value_bytes,
            "clock": self._clock,
            "secret_key": self._secret.secret_key,
            "session_id_max_age": self._secret.max_age,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._backend = state["backend"]
        self.ttl = state["ttl"]
        self._serializer = state["serializer"]
        self.max_value_bytes = state["max_value_bytes"]
        self._clock = state["clock"]
        self._secret = SecretSource(
            state["secret_key"], _secret_file(self._backend), state["session_id_max_age"]
        )
        self._init_expiry_state()

    # -- internals used by Session ----------------------------------------------------------

    def _dumps(self, key: str, value: Any) -> bytes:
        try:
            data = self._serializer.dumps(value)
        except Exception as exc:
            raise SerializationError(
                f"Cannot store key {key!r}: a value of type {type(value).__name__} cannot be "
                f"serialized by {self._serializer!r} ({exc}). Nothing was written; store "
                "plain data (dicts, lists, DataFrames, ...) instead."
            ) from exc
        if not isinstance(data, bytes):
            raise SerializationError(
                f"The serializer {self._serializer!r} returned {type(data).__name__}, not bytes."
            )
        if self.max_value_bytes is not None and len(data) > self.max_value_bytes:
            raise ValueTooLargeError(
                f"Cannot store key {key!r}: its value takes {len(data)} bytes serialized, over "
                f"max_value_bytes={self.max_value_bytes}. Nothing was written; store a smaller "
                "value or raise the limit."
            )
        return data

    def _loads(self, key: str, data: bytes) -> Any:
        try:
            return self._serializer.loads(data)
        except Exception as exc:
            raise DeserializationError(
                f"The stored value of key {key!r} cannot be read by {self._serializer!r} "
                f"({type(exc).__name__}: {exc}). Was it written with another serializer, or "
                "by a version of the app whose classes have since changed? Delete the key or "
                "restore the class."
            ) from exc

    def _write(self, session: str, items: Mapping[str, bytes]) -> None:
        now = self._clock()
        deadline = now + self.ttl if self.ttl else None
        self._backend.set_many(session, items, deadline, now)
        if self.ttl:
            self._note_renewal(session, now)
            if now >= self._next_purge:
                self.purge_expired()

    def _get(self, session: str, key: str, default: T) -> Any | T:
        now = self._clock()
        data = self._backend.get(session, key, now)
        if data is None:
            return default
        self._renew(session, now)
        return self._loads(key, data)

    def _renew(self, session: str, now: float) -> None:
        if self.ttl and now - self._renewed.get(session, float("-inf")) >= self._renew_every:
            self._backend.touch(session, now + self.ttl, now)
            self._note_renewal(session, now)

    def _note_renewal(self, session: str, now: float) -> None:
        if len(self._renewed) >= _RENEWALS_REMEMBERED:
            self._renewed.clear()
        self._renewed[session] = now


class Session(MutableMapping[str, Any]):
    """A mutable mapping view of one session's values, from :meth:`DashDatabase.session`.

    Keys are ``str`` (an ``int`` key names the same entry as its decimal string). Iteration is
    sorted. ``update`` writes all keys or none. ``session_id`` is the name the store keeps the
    session under: for a signed id, the id without its signature (not itself a valid id).
    """

    def __init__(self, db: DashDatabase, session_id: str) -> None:
        self._db = db
        self.session_id = session_id

    def __getitem__(self, key: Id) -> Any:
        name = _check_id(key, "key")
        value = self._db._get(self.session_id, name, _MISSING)
        if value is _MISSING:
            raise MissingKeyError(f"Session {self.session_id!r} has no key {name!r}.")
        return value

    def __setitem__(self, key: Id, value: Any) -> None:
        name = _check_id(key, "key")
        self._db._write(self.session_id, {name: self._db._dumps(name, value)})

    def __delitem__(self, key: Id) -> None:
        self._db._delete(self.session_id, _check_id(key, "key"), "raise")

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            return False
        return self._db._get(self.session_id, _check_id(key, "key"), _MISSING) is not _MISSING

    def __iter__(self) -> Iterator[str]:
        return iter(self._db._keys(self.session_id))

    def __len__(self) -> int:
        return len(self._db._keys(self.session_id))

    @overload
    def get(self, key: Id, /) -> Any: ...
    @overload
    def get(self, key: Id, /, default: T) -> Any | T: ...
    def get(self, key: Id, /, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is missing."""
        return self._db._get(self.session_id, _check_id(key, "key"), default)

    def clear(self) -> None:
        """Remove every key of the session."""
        self._db._clear(self.session_id)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store every item of ``other`` and ``kwargs`` in one atomic write: all or none."""
        items: dict[str, bytes] = {}
        pairs: Iterable[tuple[Any, Any]]
        pairs = other.items() if isinstance(other, Mapping) else other
        for key, value in [*pairs, *kwargs.items()]:
            name = _check_id(key, "key")
            items[name] = self._db._dumps(name, value)
        if items:
            self._db._write(self.session_id, items)

    def __repr__(self) -> str:
        return f"<Session {self.session_id!r} of {self._db!r}>"


def _secret_file(backend: Backend) -> str | None:
    """Return where a generated secret key is kept for ``backend`` (``None``: in memory)."""
    if isinstance(backend, MemoryBackend):
        return None
    if isinstance(backend, SqliteBackend):
        # A temporary file belongs to one process, like memory.
        return None if backend._remove_on_close else backend.path + ".secret"
    return os.path.abspath(DEFAULT_SECRET_FILE)


def _open_backend(location: Any) -> Backend:
    if location is _DEFAULT_LOCATION:
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
