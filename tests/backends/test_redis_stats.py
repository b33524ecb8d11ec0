"""Redis ``stats``: the index summed on the server, a page at a time, across page boundaries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dash_database.backends import StoreStats
from dash_database.backends import redis as redis_backend
from dash_database.backends.redis import RedisBackend
from tests.servers import unique_name
from tests.support import require

pytestmark = pytest.mark.slow

try:
    import redis
except ImportError:  # pragma: no cover - the test extra installs it
    redis = None


@pytest.fixture
def backend(redis_url: str) -> Iterator[RedisBackend]:
    require(redis is not None, 'redis-py not installed: pip install "dash-database[redis]"')
    made = RedisBackend(redis_url, prefix=unique_name("dash_database_test"))
    yield made
    made.purge_expired(float("inf"))
    made.close()


def test_stats_sum_every_page_and_leave_out_expired_sessions(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_backend, "_STATS_PAGE", 2)
    for i in range(7):  # sessions 0, 3 and 6 expire at 150
        deadline = 150.0 if i % 3 == 0 else 500.0
        items = {f"k{j}": b"x" * i for j in range(i + 1)}
        backend.set_many(f"s{i}", items, deadline, 100.0, version=1)
    backend.set_many("forever", {"key": b"value"}, None, 100.0, version=1)

    live = [1, 2, 4, 5]
    expected = StoreStats(
        sessions=len(live) + 1,
        keys=sum(i + 1 for i in live) + 1,
        bytes=sum((i + 1) * (2 + i) for i in live) + len("key") + len("value"),
        expired=3,
    )
    assert expected == backend.stats(200.0)
