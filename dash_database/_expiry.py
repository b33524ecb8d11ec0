"""Session expiry bookkeeping of :class:`~dash_database.DashDatabase`: deadlines, renewals
(at most one per session every ``min(1 s, ttl/100)`` per process) and the occasional purge.

A mixin of the database class, which holds ``ttl``, the clock and the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ._scopes import APP_SESSION

if TYPE_CHECKING:
    from .backends import Backend

__all__ = ["Expiry"]

# Remember at most this many recently renewed sessions; forgetting one only costs a renewal.
_RENEWALS_REMEMBERED = 100_000


class Expiry:
    """Compute session deadlines and renew sessions in use."""

    ttl: float | None
    _clock: Callable[[], float]
    _backend: Backend
    _renewed: dict[str, float]
    _renew_every: float
    _next_purge: float

    if TYPE_CHECKING:

        def purge_expired(self, progress: Callable[[int], object] | None = None) -> int: ...

    def _init_expiry_state(self) -> None:
        self._renewed = {}
        self._renew_every = min(1.0, self.ttl / 100) if self.ttl else 0.0
        self._next_purge = self._clock() + self.ttl if self.ttl else float("inf")

    def _after_write(self, session: str, now: float) -> None:
        if self.ttl:
            self._note_renewal(session, now)
            if now >= self._next_purge:
                self.purge_expired()

    def _deadline(self, session: str, now: float) -> float | None:
        # The app's session is shared by every visitor: it never expires.
        return now + self.ttl if self.ttl and session != APP_SESSION else None

    def _renew(self, session: str, now: float) -> None:
        if (
            self.ttl
            and session != APP_SESSION
            and now - self._renewed.get(session, float("-inf")) >= self._renew_every
        ):
            self._backend.touch(session, now + self.ttl, now)
            self._note_renewal(session, now)

    def _note_renewal(self, session: str, now: float) -> None:
        if len(self._renewed) >= _RENEWALS_REMEMBERED:
            self._renewed.clear()
        self._renewed[session] = now
