"""Prometheus metrics: what a MetricsBackend counts, and a scrape of its endpoint."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from dash_database import DashDatabase, MemoryBackend, QuotaExceededError
from dash_database._sealing import MAC_OVERHEAD
from dash_database.backends import Backend
from dash_database.metrics import MetricsBackend
from tests.servers import free_port
from tests.support import FakeClock


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_operations_are_counted_timed_and_sized_on_every_backend(
    backend_factory: Callable[[], Backend], registry: CollectorRegistry, clock: FakeClock
) -> None:
    backend = MetricsBackend(backend_factory(), registry=registry)
    db = DashDatabase(backend, clock=clock)
    for i in range(3):
        db.store_user_value("s", f"k{i}", "x" * 100)
    db.get_user_value("s", "k0")
    db.get_user_value("s", "missing")

    assert 3 == value(registry, "dash_database_operation_seconds_count", operation="set_many")
    assert 2 == value(registry, "dash_database_operation_seconds_count", operation="get")
    assert 0 < (value(registry, "dash_database_operation_seconds_sum", operation="get") or 0)
    stored = MAC_OVERHEAD + len(pickle.dumps("x" * 100, protocol=pickle.HIGHEST_PROTOCOL))
    assert 3 * stored == value(registry, "dash_database_written_bytes_total")
    assert stored == value(registry, "dash_database_read_bytes_total")
    assert 1 == value(registry, "dash_database_sessions", store=repr(backend.inner))
    assert 3 == value(registry, "dash_database_keys", store=repr(backend.inner))


def test_histogram_buckets_are_cumulative(registry: CollectorRegistry) -> None:
    db = DashDatabase(MetricsBackend(MemoryBackend(), registry=registry))
    for _ in range(5):
        db.get_user_value("s", "k")

    labels = {"operation": "get"}
    assert 5 == value(registry, "dash_database_operation_seconds_bucket", le="+Inf", **labels)
    assert 5 == value(registry, "dash_database_operation_seconds_bucket", le="10.0", **labels)
    assert 0 == value(registry, "dash_database_operation_seconds_count", operation="clear")


def test_no_call_is_lost_by_threads_recording_at_once(registry: CollectorRegistry) -> None:
    backend = MetricsBackend(MemoryBackend(), registry=registry)
    backend.set_many("s", {"k": b"12345"}, None, 1.0, version=1)

    def read() -> None:
        for _ in range(5000):
            backend.get("s", "k", 2.0)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)

    assert 20_000 == value(registry, "dash_database_operation_seconds_count", operation="get")
    assert 20_000 * 5 == value(registry, "dash_database_read_bytes_total")
    labels = {"operation": "get", "le": "+Inf"}
    assert 20_000 == value(registry, "dash_database_operation_seconds_bucket", **labels)


def test_errors_are_counted_by_operation_and_class(registry: CollectorRegistry) -> None:
    db = DashDatabase(MetricsBackend(MemoryBackend(), registry=registry), max_session_bytes=50)

    with pytest.raises(QuotaExceededError):
        db.store_user_value("s", "big", "x" * 100)

    labels = {"operation": "set_many", "error": "QuotaExceededError"}
    assert 1 == value(registry, "dash_database_errors_total", **labels)
    assert 0 == value(registry, "dash_database_written_bytes_total")


def test_update_retries_are_counted(registry: CollectorRegistry) -> None:
    backend = MetricsBackend(MemoryBackend(), registry=registry)
    db = DashDatabase(backend)
    db.store_user_value("s", "n", 0)
    calls = []

    def increment(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:  # another writer gets in between the read and the write
            db.store_user_value("s", "n", 10)
        return n + 1

    assert 11 == db.update_user_value("s", "n", increment)
    assert 1 == value(registry, "dash_database_update_retries_total")


def test_purged_and_expired_sessions_are_reported(
    registry: CollectorRegistry, clock: FakeClock
) -> None:
    backend = MetricsBackend(MemoryBackend(), registry=registry)
    db = DashDatabase(backend, ttl=60, clock=clock)
    for i in range(4):
        db.store_user_value(f"s{i}", "k", i)
    clock.advance(61)
    store = repr(backend.inner)

    assert 4 == value(registry, "dash_database_expired_sessions", store=store)
    assert 4 == db.purge_expired()
    assert 4 == value(registry, "dash_database_purged_sessions_total")
    assert 0 == value(registry, "dash_database_expired_sessions", store=store)


def test_store_stats_can_be_left_out(registry: CollectorRegistry) -> None:
    MetricsBackend(MemoryBackend(), registry=registry, store_stats=False)

    assert value(registry, "dash_database_operation_seconds_count", operation="get") == 0
    assert None is value(registry, "dash_database_sessions", store="MemoryBackend()")


def test_the_scrape_endpoint_serves_the_metrics(registry: CollectorRegistry) -> None:
    db = DashDatabase(MetricsBackend(MemoryBackend(), registry=registry))
    db.store_user_value("s", "k", 1)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)

    assert 'dash_database_operation_seconds_count{operation="set_many"} 1.0' in text
    assert 'dash_database_sessions{store="MemoryBackend()"} 1.0' in text


def test_a_metrics_backend_is_a_backend_and_pickles_with_the_default_registry(
    tmp_path: Path,
) -> None:
    backend = MetricsBackend(tmp_path / "m.sqlite", store_stats=False)
    copy = pickle.loads(pickle.dumps(backend))

    assert isinstance(backend, Backend)
    assert repr(backend) == repr(copy)
    backend.close()
    copy.close()
    with pytest.raises(TypeError, match="own registry"):
        pickle.dumps(MetricsBackend(MemoryBackend(), registry=CollectorRegistry()))


def test_importing_the_package_loads_neither_click_nor_prometheus_client() -> None:
    code = (
        "import sys, dash_database; "
        "print(sorted(m for m in ('click', 'prometheus_client') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert "[]\n" == result.stdout, result.stderr


def test_the_documented_metrics_route_serves_the_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (Path(__file__).parent.parent / "docs" / "operating.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "operating_example"}
    exec(compile(block, "docs/operating.md", "exec"), namespace)
    db = namespace["db"]
    assert isinstance(db, DashDatabase)
    try:
        db.store_user_value("s", "k", 1)
        reply = namespace["app"].server.test_client().get("/metrics")  # type: ignore[attr-defined]
    finally:
        db.close()

    assert 200 == reply.status_code
    assert 'dash_database_operation_seconds_count{operation="set_many"}' in reply.text
    assert "dash_database_sessions{store=" in reply.text
