"""Session: a mutable mapping view of one session's values."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._async import AsyncSession
from ._keys import Id, check_id
from ._signing import shown
from .exceptions import MissingKeyError, RequiredKeyError

if TYPE_CHECKING:
    from ._database import DashDatabase

__all__ = ["Session"]

T = TypeVar("T")
_MISSING: Any = object()


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
        name = check_id(key, "key")
        value = self._db._get(self.session_id, name, _MISSING)
        if value is _MISSING:
            raise MissingKeyError(f"Session {shown(self.session_id)!r} has no key {name!r}.")
        return value

    def __setitem__(self, key: Id, value: Any) -> None:
        name = check_id(key, "key")
        self._db._put(self.session_id, {name: value})

    def __delitem__(self, key: Id) -> None:
        self._db._delete(self.session_id, check_id(key, "key"), "raise")

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            return False
        return self._db._get(self.session_id, check_id(key, "key"), _MISSING) is not _MISSING

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
        return self._db._get(self.session_id, check_id(key, "key"), default)

    def require(self, key: Id) -> Any:
        """Return the value of ``key``; raise :class:`~dash_database.RequiredKeyError` (a
        ``KeyError``) when it is missing.

        In a Dash callback decorated with :func:`dash_database.dash.server_side`, or in an app
        that called :func:`dash_database.dash.enable_error_messages`, a missing key stops the
        callback quietly, as ``PreventUpdate`` does, instead of failing the request.
        """
        name = check_id(key, "key")
        value = self._db._get(self.session_id, name, _MISSING)
        if value is _MISSING:
            raise RequiredKeyError(
                f"Session {shown(self.session_id)!r} has no key {name!r}; the callback that "
                "needs it runs once it is stored."
            )
        return value

    def clear(self) -> None:
        """Remove every key of the session."""
        self._db._clear(self.session_id)

    def update_value(self, key: Id, func: Callable[[Any], Any], default: Any = None) -> Any:
        """Replace the value of ``key`` by ``func(value)`` atomically and return it, as
        :meth:`DashDatabase.update_user_value` does (``func`` may run more than once)."""
        return self._db._update(self.session_id, check_id(key, "key"), func, default)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store every item of ``other`` and ``kwargs`` in one atomic write: all or none."""
        values: dict[str, Any] = {}
        pairs: Iterable[tuple[Any, Any]]
        pairs = other.items() if isinstance(other, Mapping) else other
        for key, value in [*pairs, *kwargs.items()]:
            values[check_id(key, "key")] = value
        if values:
            self._db._put(self.session_id, values)

    @property
    def aio(self) -> AsyncSession:
        """This session with coroutines for its operations, for ``async def`` code (see
        :class:`~dash_database.AsyncSession`)."""
        return AsyncSession(self)

    def __repr__(self) -> str:
        return f"<Session {shown(self.session_id)!r} of {self._db!r}>"
