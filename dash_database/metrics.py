"""Prometheus metrics for a store (``pip install "./dash_database[metrics]"``).

Wrap the store in a :class:`MetricsBackend` and give that to :class:`DashDatabase`::

    from dash_database import DashDatabase
    from dash_database.metrics import MetricsBackend

    db = DashDatabase(MetricsBackend("redis://localhost:6379/0"), ttl=3600)

Every call the database makes to its store is then counted and timed. The metrics live in
``prometheus_client``'s default registry (or the ``registry`` given), so the usual ways of
exposing it work: ``prometheus_client.start_http_server(9100)``, or a ``/metrics`` route on the
Dash app's server (``docs/operating.md`` shows one). The names:

``dash_database_operation_seconds{operation}``       histogram of each call's latency; its
                                                     ``_count`` counts the calls
``dash_database_errors_total{operation,error}``      calls that raised, by error class
``dash_database_read_bytes_total``                   value bytes returned by reads
``dash_database_written_bytes_total``                value bytes given to writes
``dash_database_update_retries_total``               compare-and-set writes that met a
                                                     concurrent write (an update then retries)
``dash_database_purged_sessions_total``              expired sessions removed by purges
``dash_database_sessions{store}``, ``_keys``, ``_bytes``, ``_expired_sessions``
                                                     what the store holds, read from its stats
                                                     at each scrape (``store_stats=False``
                                                     leaves them out)

The wrapper is the whole cost: a database without it runs no metrics code at all. The counts
are kept per process (under gunicorn, each worker reports its own calls; the store figures
are the whole store's from any worker).
"""

from __future__ import annotations

import time
import weakref
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from time import perf_counter
from typing import Any, Callable, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ._locations import DEFAULT_LOCATION, open_backend
from .backends import Backend, KeyInfo, SessionData, StoreStats
from .backends._base import Page
from .backends._process import fork_lock

__all__ = ["MetricsBackend"]

T = TypeVar("T")

#: Latency buckets in seconds: from a read served from memory to a purge batch or a stall.
_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip
#: Pending observations of one operation are folded into the totals when there are this many.
_FOLD_AT = 1024
_OPERATIONS = (
    "get", "get_many", "get_versioned", "set_many", "compare_and_set", "delete", "keys", "clear",
    "touch", "rename", "session_bytes", "sessions", "session_keys", "stats", "purge_expired",
    "read_sessions", "write_sessions",
)  # fmt: skip


class _Totals(Collector):
    """The counts of one registry, turned into metrics at each scrape.

    A call records its latency and value size by appending them to a deque, which is atomic
    and costs a fraction of a lock; the observations are folded into the totals in batches
    (sorted once, counted per bucket by bisection) when a deque reaches ``_FOLD_AT`` and at
    each scrape. That keeps the cost of a small get to a few percent, where prometheus_client's
    own Histogram, with a lock per bucket, sum and counter, costs several times as much.
    """

    def __init__(self) -> None:
        self.lock = fork_lock()  # a fork's child never inherits it held
        #: Per operation: latencies (seconds) not yet folded.
        self.pending: dict[str, deque[float]] = {op: deque() for op in _OPERATIONS}
        #: Sizes of values read and written, not yet folded.
        self.read_sizes: deque[int] = deque()
        self.written_sizes: deque[int] = deque()
        #: Per operation: a count per bucket (the last one: over the largest bound), then
        #: the sum of the seconds.
        self.timings: dict[str, list[float]] = {op: [0] * (len(_BUCKETS) + 2) for op in _OPERATIONS}
        #: bytes read, bytes written, update retries, purged sessions
        self.counts = [0, 0, 0, 0]
        self.errors: dict[tuple[str, str], int] = {}
        self._backends: weakref.WeakSet[MetricsBackend] = weakref.WeakSet()

    def fold(self) -> None:
        """Add the pending observations to the totals."""
        with self.lock:
            for op, queue in self.pending.items():
                if queue:
                    batch = sorted([queue.popleft() for _ in range(len(queue))])
                    totals = self.timings[op]
                    below = 0
                    for i, bound in enumerate(_BUCKETS):
                        upto = bisect_right(batch, bound)
                        totals[i] += upto - below
                        below = upto
                    totals[len(_BUCKETS)] += len(batch) - below
                    totals[-1] += sum(batch)
            for index, sizes in ((0, self.read_sizes), (1, self.written_sizes)):
                self.counts[index] += sum([sizes.popleft() for _ in range(len(sizes))])

    def add(self, backend: MetricsBackend) -> None:
        with self.lock:
            self._backends.add(backend)

    def discard(self, backend: MetricsBackend) -> None:
        with self.lock:
            self._backends.discard(backend)

    def collect(self) -> Iterator[Metric]:
        self.fold()
        with self.lock:
            timings = {op: list(values) for op, values in self.timings.items()}
            counts = list(self.counts)
            errors = dict(self.errors)
            backends = list(self._backends)
        seconds = HistogramMetricFamily(
            "dash_database_operation_seconds",
            "Latency of each call to the store, by operation.",
            labels=["operation"],
        )
        for op, values in timings.items():
            cumulative, buckets = 0.0, []
            for bound, count in zip((*map(str, _BUCKETS), "+Inf"), values):
                cumulative += count
                buckets.append((bound, cumulative))
            seconds.add_metric([op], buckets, values[-1])
        yield seconds
        for i, (name, text) in enumerate(
            (
                ("read_bytes", "Value bytes returned by reads."),
                ("written_bytes", "Value bytes given to writes."),
                ("update_retries", "Compare-and-set writes that met a concurrent write."),
                ("purged_sessions", "Expired sessions removed by purges."),
            )
        ):
            yield CounterMetricFamily(f"dash_database_{name}", text, value=counts[i])
        failed = CounterMetricFamily(
            "dash_database_errors",
            "Calls to the store that raised, by operation and error class.",
            labels=["operation", "error"],
        )
        for labels, count in sorted(errors.items()):
            failed.add_metric(list(labels), count)
        yield failed
        yield from _store_stats(backends)


def _store_stats(backends: list[MetricsBackend]) -> Iterator[Metric]:
    families = [
        GaugeMetricFamily(f"dash_database_{name}", text, labels=["store"])
        for name, text in (
            ("sessions", "Live sessions in the store."),
            ("keys", "Keys of live sessions in the store."),
            ("bytes", "Size of live sessions: key and value bytes."),
            ("expired_sessions", "Expired sessions waiting for a purge."),
        )
    ]
    for backend in backends:
        stats = backend.stats(time.time())
        store = repr(backend.inner)
        for family, value in zip(
            families, (stats.sessions, stats.keys, stats.bytes, stats.expired)
        ):
            family.add_metric([store], value)
    yield from families


_registries: weakref.WeakKeyDictionary[CollectorRegistry, _Totals] = weakref.WeakKeyDictionary()
_registries_lock = fork_lock()


def _totals(registry: CollectorRegistry) -> _Totals:
    with _registries_lock:
        found = _registries.get(registry)
        if found is None:
            found = _registries[registry] = _Totals()
            registry.register(found)
        return found


class MetricsBackend:
    """A backend that passes every call to another one and records it in Prometheus metrics.

    Args:
        location: the store, as :class:`~dash_database.DashDatabase` takes it (a path, a URL,
            a backend object; omitted: ``DASH_DATABASE_URL``, else the default file).
        registry: the ``prometheus_client`` registry to record in (default: the global one).
        store_stats: report what the store holds (sessions, keys, bytes) at each scrape. Each
            scrape then runs the store's ``stats()``; pass ``False`` to leave them out.
    """

    def __init__(
        self,
        location: Any = DEFAULT_LOCATION,
        *,
        registry: CollectorRegistry = REGISTRY,
        store_stats: bool = True,
    ) -> None:
        self.inner: Backend = open_backend(location)
        self._registry = registry
        self._store_stats = store_stats
        totals = self._totals = _totals(registry)
        self._lock = totals.lock
        self._counts = totals.counts
        self._get_pending = totals.pending["get"]
        self._set_pending = totals.pending["set_many"]
        self._read_size = totals.read_sizes.append
        self._written_size = totals.written_sizes.append
        if store_stats:
            totals.add(self)

    @property
    def secret_file(self) -> str | None:
        return self.inner.secret_file

    def _count(self, index: int, amount: int) -> None:
        with self._lock:
            self._counts[index] += amount

    def _failed(self, operation: str, exc: BaseException) -> None:
        labels = (operation, type(exc).__name__)
        with self._lock:
            self._totals.errors[labels] = self._totals.errors.get(labels, 0) + 1

    def _call(self, operation: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        start = perf_counter()
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            self._failed(operation, exc)
            raise
        pending = self._totals.pending[operation]
        pending.append(perf_counter() - start)
        if len(pending) >= _FOLD_AT:
            self._totals.fold()
        return result

    # The two calls of every small read and write are written out in full: they are the hot
    # path, and each helper call would add to its cost.

    def get(self, session: str, key: str, now: float) -> bytes | None:
        start = perf_counter()
        try:
            value = self.inner.get(session, key, now)
        except Exception as exc:
            self._failed("get", exc)
            raise
        pending = self._get_pending
        pending.append(perf_counter() - start)
        if value is not None:
            self._read_size(len(value))
        if len(pending) >= _FOLD_AT:
            self._totals.fold()
        return value

    def set_many(
        self,
        session: str,
        items: Mapping[str, bytes],
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
        max_sessions: int | None = None,
    ) -> None:
        start = perf_counter()
        try:
            self.inner.set_many(
                session,
                items,
                deadline,
                now,
                version=version,
                max_bytes=max_bytes,
                max_sessions=max_sessions,
            )
        except Exception as exc:
            self._failed("set_many", exc)
            raise
        pending = self._set_pending
        pending.append(perf_counter() - start)
        self._written_size(sum(map(len, items.values())))
        if len(pending) >= _FOLD_AT:
            self._totals.fold()

    def get_many(self, session: str, keys: Sequence[str], now: float) -> list[bytes | None]:
        found = self._call("get_many", self.inner.get_many, session, keys, now)
        self._read_size(sum(len(value) for value in found if value is not None))
        return found

    def get_versioned(self, session: str, key: str, now: float) -> tuple[bytes, int] | None:
        found = self._call("get_versioned", self.inner.get_versioned, session, key, now)
        if found is not None:
            self._read_size(len(found[0]))
        return found

    def compare_and_set(
        self,
        session: str,
        key: str,
        value: bytes,
        expected: int | None,
        deadline: float | None,
        now: float,
        *,
        version: int,
        max_bytes: int | None = None,
        max_sessions: int | None = None,
    ) -> bool:
        wrote = self._call(
            "compare_and_set",
            self.inner.compare_and_set,
            session,
            key,
            value,
            expected,
            deadline,
            now,
            version=version,
            max_bytes=max_bytes,
            max_sessions=max_sessions,
        )
        if wrote:
            self._written_size(len(value))
        else:
            self._count(2, 1)
        return wrote

    def delete(self, session: str, key: str, now: float) -> bool:
        return self._call("delete", self.inner.delete, session, key, now)

    def keys(self, session: str, now: float) -> list[str]:
        return self._call("keys", self.inner.keys, session, now)

    def clear(self, session: str, now: float) -> int:
        return self._call("clear", self.inner.clear, session, now)

    def touch(self, session: str, deadline: float, now: float) -> None:
        self._call("touch", self.inner.touch, session, deadline, now)

    def rename(self, session: str, new_session: str, now: float) -> int:
        return self._call("rename", self.inner.rename, session, new_session, now)

    def session_bytes(self, session: str, now: float) -> int:
        return self._call("session_bytes", self.inner.session_bytes, session, now)

    def sessions(self, now: float, cursor: str | None = None, limit: int = 100) -> Page:
        return self._call("sessions", self.inner.sessions, now, cursor, limit)

    def session_keys(
        self, session: str, now: float, cursor: str | None = None, limit: int = 100
    ) -> tuple[list[KeyInfo], str | None]:
        return self._call("session_keys", self.inner.session_keys, session, now, cursor, limit)

    def stats(self, now: float) -> StoreStats:
        return self._call("stats", self.inner.stats, now)

    def purge_expired(self, now: float, progress: Callable[[int], object] | None = None) -> int:
        removed = self._call("purge_expired", self.inner.purge_expired, now, progress)
        self._count(3, removed)
        return removed

    def read_sessions(
        self, now: float, cursor: str | None = None, *, limit: int = 100, max_bytes: int = 1 << 23
    ) -> tuple[list[SessionData], str | None]:
        read = self.inner.read_sessions
        return self._call("read_sessions", read, now, cursor, limit=limit, max_bytes=max_bytes)

    def write_sessions(
        self, batch: Sequence[SessionData], now: float, *, version: int, replace: bool = False
    ) -> list[bool]:
        write = self.inner.write_sessions
        return self._call("write_sessions", write, batch, now, version=version, replace=replace)

    def close(self) -> None:
        # A closed store has no figures to report: scrapes leave it out from now on.
        self._totals.discard(self)
        self.inner.close()

    def __reduce__(self) -> tuple[Any, ...]:
        if self._registry is not REGISTRY:
            raise TypeError(
                "A MetricsBackend with its own registry cannot be pickled: the registry lives "
                "in this process. Use the default registry to send the database to workers."
            )
        return (_rebuild, (self.inner, self._store_stats))

    def __repr__(self) -> str:
        return f"MetricsBackend({self.inner!r})"


def _rebuild(inner: Backend, store_stats: bool) -> MetricsBackend:
    return MetricsBackend(inner, store_stats=store_stats)
