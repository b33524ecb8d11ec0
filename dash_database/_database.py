"""DashDatabase: the one place where the library's semantics live.

It validates ids, serializes values, enforces size limits, computes session deadlines from the
injected clock, and hands plain strings and bytes to a backend (see ``backends/_base.py``).
The public class lives here; its internals by concern in the mixins it is built from: the
value codec (``_codec.py``), expiry bookkeeping (``_expiry.py``) and reads, writes and atomic
updates (``_writes.py``); ``_limits.py`` checks its options.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Literal

from ._async import AsyncDatabase
from ._codec import serializer_for
from ._keys import Id, check_id
from ._limits import check_options
from ._locations import DEFAULT_LOCATION, DEFAULT_PATH, ENV_URL, backend_from_url, open_backend
from ._memoize import F, Scope, memoize
from ._scopes import APP_SESSION, user_session_name
from ._sealing import Sealer, memory_key, reseal_session
from ._session import Session
from ._signing import DEFAULT_SESSION_ID_MAX_AGE, SecretKey, SecretSource, looks_signed, shown
from ._writes import UPDATE_ATTEMPTS, Writes, new_version
from .backends import Backend, StoreStats
from .exceptions import BackendError, InvalidArgumentError, MissingKeyError
from .serializers import Serializer, stream_functions

__all__ = ["DEFAULT_PATH", "ENV_URL", "DashDatabase", "Id", "Session"]

_new_version = new_version  # the name _export.py imports from here


class DashDatabase(Writes):
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
        max_session_bytes: refuse a write that would take one session's size (the UTF-8
            length of its keys plus the stored length of its values) over this many
            bytes, with :class:`~dash_database.QuotaExceededError`; nothing is evicted.
        max_sessions: refuse the first write of a new session while the store holds this
            many live sessions, with :class:`~dash_database.SessionLimitError`; no live
            session is evicted (expired ones do not count).
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
        encrypt: encrypt stored values with AES-GCM (extra ``[encryption]``) under a key
            derived from the secret key. Values always carry a MAC of their session, key and
            bytes: one altered or moved in the store raises
            :class:`~dash_database.IntegrityError` and is never deserialized.

    Raises:
        InvalidArgumentError: an option has a value the library does not accept.
        BackendError: the store cannot be opened (for example a file that is not SQLite).
    """

    def __init__(
        self,
        db_location: str | os.PathLike[str] | Backend | None = DEFAULT_LOCATION,
        *,
        ttl: float | None = None,
        serializer: str | Serializer = "pickle",
        compression: str | None = None,
        max_value_bytes: int | None = None,
        max_session_bytes: int | None = None,
        max_sessions: int | None = None,
        clock: Callable[[], float] = time.time,
        secret_key: SecretKey | None = None,
        update_attempts: int = UPDATE_ATTEMPTS,
        session_id_max_age: float | None = DEFAULT_SESSION_ID_MAX_AGE,
        encrypt: bool = False,
    ) -> None:
        check_options(
            ttl,
            clock,
            max_value_bytes=max_value_bytes,
            max_session_bytes=max_session_bytes,
            max_sessions=max_sessions,
            update_attempts=update_attempts,
        )
        self._serializer = serializer_for(serializer, compression)
        self._dump, self._load_view = stream_functions(self._serializer)
        self.ttl = ttl
        self.max_value_bytes = max_value_bytes
        self.max_session_bytes = max_session_bytes
        self.max_sessions = max_sessions
        self.update_attempts = update_attempts
        self._clock = clock
        self._backend = open_backend(db_location)
        self._secret = SecretSource(
            secret_key,
            self._backend.secret_file,
            session_id_max_age,
            memory_key=None if self._backend.secret_file else memory_key(self._backend),
        )
        self._sealer = Sealer(self._secret.value_keys, encrypt)
        self._init_expiry_state()

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

    @property
    def aio(self) -> AsyncDatabase:
        """The session operations as coroutines that never block the event loop, for
        ``async def`` code (see :class:`~dash_database.AsyncDatabase`)."""
        return AsyncDatabase(self)

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
        name = check_id(user_id, "user_id")
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
        key = check_id(key_name, "key_name")
        self._put(session, {key: value})

    def get_user_value(self, user_id: Id, key_name: Id, default: Any = None) -> Any:
        """Return the value stored under ``key_name`` for ``user_id``, or ``default`` when it
        is missing or the session expired."""
        session = self._session_name(user_id)
        key = check_id(key_name, "key_name")
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
        self._delete(self._session_name(user_id), check_id(key_name, "key_name"), if_not_exists)

    def _delete(self, session: str, key: str, if_not_exists: str) -> None:
        if not self._backend.delete(session, key, self._clock()) and if_not_exists == "raise":
            raise MissingKeyError(f"User {shown(session)!r} has no key {key!r}.")

    def delete_all_user_values(self, user_id: Id) -> int:
        """Delete every value of ``user_id``; return how many keys were removed."""
        return self._clear(self._session_name(user_id))

    def _clear(self, session: str) -> int:
        self._renewed.pop(session, None)
        return self._backend.clear(session, self._clock())

    # -- atomic updates and session ids -----------------------------------------------------

    def update_user_value(
        self, user_id: Id, key_name: Id, func: Callable[[Any], Any], default: Any = None
    ) -> Any:
        """Replace the value under ``key_name`` by ``func(value)`` atomically; return it.

        Reads the current value (``default`` when the key is missing), calls ``func`` on it
        and writes the result only if no other thread, process or host wrote that key
        meanwhile; otherwise it reads the fresh value and calls ``func`` again. So ``func``
        may run more than once: keep it free of side effects.

        Raises:
            UpdateConflictError: the key kept changing under ``update_attempts`` attempts.
            QuotaExceededError: the result would take the session over ``max_session_bytes``.
            SessionLimitError: the key starts a new session beyond ``max_sessions``.
        """
        session = self._session_name(user_id)
        return self._update(session, check_id(key_name, "key_name"), func, default)

    def rotate_session(self, user_id: Id) -> str:
        """Move every value of ``user_id`` to a fresh signed session id, atomically, and
        return that id; ``user_id`` then names an empty session.

        Call it when a user logs in, so that an id an attacker planted before the login
        (session fixation) never names the logged-in session.

        Raises:
            InvalidSessionIdError: ``user_id`` is a signed id whose signature is not valid.
        """
        session = self._session_name(user_id)
        new_id = self.new_session_id()
        new_session = self._session_name(new_id)
        self._renewed.pop(session, None)
        now = self._clock()
        if self._backend.rename(session, new_session, now):
            # Values are bound to their session's name: seal them for the new one before
            # anyone else learns it.
            deadline = now + self.ttl if self.ttl else None
            reseal_session(
                self._backend, self._sealer, session, new_session, deadline, now, new_version()
            )
        return new_id

    def stats(self) -> StoreStats:
        """Return how many live sessions, keys and bytes the store holds, and how many
        expired sessions wait for :meth:`purge_expired`."""
        return self._backend.stats(self._clock())

    # -- the mapping view and housekeeping --------------------------------------------------

    def session(self, user_id: Id) -> Session:
        """Return a mutable mapping view of one session's values.

        Raises:
            InvalidSessionIdError: ``user_id`` is a signed id whose signature is not valid.
        """
        return Session(self, self._session_name(user_id))

    # -- scopes and memoize -----------------------------------------------------------------

    @property
    def app_state(self) -> Session:
        """One mapping shared by the whole app: every session, worker and host of the store.

        It is kept in a reserved session that no session id (signed or plain) can name, and
        it never expires, whatever ``ttl`` is; it counts against ``max_session_bytes`` like
        any session.
        """
        return Session(self, APP_SESSION)

    def user_state(self, user_id: Id) -> Session:
        """Return the mapping of the authenticated user ``user_id``, on every device.

        Pass the id your login system verified (``flask_login.current_user.id``), never one
        the browser sent. It is kept in a reserved namespace: no session id, signed or plain,
        names it, and no user's state is another's. Like a session, it expires after ``ttl``
        seconds without use.

        Raises:
            InvalidIdTypeError: ``user_id`` is not a str or int.
        """
        return Session(self, user_session_name(check_id(user_id, "user_id")))

    def memoize(self, scope: Scope = "session", ttl: float | None = None) -> Callable[[F], F]:
        """Cache a function's results in the store, keyed by its name and arguments.

        ``@db.memoize()`` keeps one result per current session (the browser's or tab's in a
        Dash callback, background ones included, or a :func:`~dash_database.use_session`
        block's); ``scope="app"`` shares them with the whole app (in :attr:`app_state`). Every
        worker and host sharing the store reads them. In one process, concurrent callers of a
        missing result wait for one computation; several processes may each compute it once.
        Results count against ``max_session_bytes`` (:class:`~dash_database.QuotaExceededError`
        when one does not fit once expired ones are dropped). The wrapped function gets
        ``cache_clear()``. docs/reference.md has the rules for arguments.

        Args:
            scope: ``"session"`` (default) or ``"app"``.
            ttl: seconds a result stays valid, or ``None``: as long as its session (app
                results: until ``cache_clear()``).

        Raises:
            InvalidArgumentError: a bad ``scope`` or ``ttl``, a lambda or a coroutine function.
        """
        return memoize(self, scope, ttl)

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

    def purge_expired(self, progress: Callable[[int], object] | None = None) -> int:
        """Remove every expired session from the store; return how many were removed.

        Expired sessions are invisible and are also purged now and then during writes; call
        this from a scheduled job to reclaim space at a time of your choosing. The store
        works in bounded batches, so live requests wait for one batch at most; ``progress``,
        when given, is called after each batch with how many sessions it removed.
        """
        now = self._clock()
        if self.ttl:
            self._next_purge = now + self.ttl
        return self._backend.purge_expired(now, progress)

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
            "max_session_bytes": self.max_session_bytes,
            "max_sessions": self.max_sessions,
            "update_attempts": self.update_attempts,
            "clock": self._clock,
            "secret_key": self._secret.secret_key,
            "session_id_max_age": self._secret.max_age,
            "encrypt": self._sealer.encrypt,
            "memory_key": self._secret.memory_key,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._backend = state["backend"]
        self.ttl = state["ttl"]
        self._serializer = state["serializer"]
        self._dump, self._load_view = stream_functions(self._serializer)
        self.max_value_bytes = state["max_value_bytes"]
        self.max_session_bytes = state["max_session_bytes"]
        self.max_sessions = state["max_sessions"]
        self.update_attempts = state["update_attempts"]
        self._clock = state["clock"]
        self._secret = SecretSource(
            state["secret_key"],
            self._backend.secret_file,
            state["session_id_max_age"],
            memory_key=state["memory_key"] and memory_key(self._backend, state["memory_key"]),
        )
        self._sealer = Sealer(self._secret.value_keys, state["encrypt"])
        self._init_expiry_state()
