"""What only the Redis backend has: URLs, clients, key layout, the large-value path, timeouts,
restarts, clusters."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

import dash_database as ddb
from dash_database import DashDatabase
from dash_database.backends import redis as redis_backend
from dash_database.backends.redis import RedisBackend
from tests.servers import RedisServer, free_port, new_redis_server, unique_name
from tests.support import FakeClock, require, wait_child

pytestmark = pytest.mark.slow

try:
    import redis
except ImportError:  # pragma: no cover - the test extra installs it
    redis = None


@pytest.fixture(autouse=True)
def _needs_redis_py() -> None:
    require(redis is not None, 'redis-py not installed: pip install "dash-database[redis]"')


HOSTILE = ["", "{", "}", "{}", "a}b{c", ":", "a:b", "\x00", "a\x00b", "é", "日本", "🙂", "*", "["]


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix private to the test; its keys are removed afterwards."""
    name = unique_name("dash_database_test")
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(params=[None, 0], ids=["script", "multi"])
def large_write_bytes(request: pytest.FixtureRequest) -> int | None:
    """Every write through its script, or every write through the large-value path."""
    return request.param  # type: ignore[no-any-return]


def own_keys(client: Any, prefix: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"{prefix}:*", count=1000))


def commands(client: Any, name: str) -> int:
    """Return how many ``name`` commands the server has run."""
    return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


# -- URLs, clients and options ------------------------------------------------------------------


def test_redis_url_opens_a_redis_backend(redis_url: str, prefix: str) -> None:
    with DashDatabase.from_url(f"{redis_url}?prefix={prefix}") as db:
        db.store_user_value("user", "key", [1, 2])

        assert isinstance(db.backend, RedisBackend)
        assert prefix == db.backend.prefix
        assert [1, 2] == db.get_user_value("user", "key")


def test_url_as_the_positional_location(redis_url: str, prefix: str) -> None:
    with DashDatabase(f"{redis_url}?prefix={prefix}") as db:
        db.store_user_value("user", "key", 1)

    with DashDatabase(RedisBackend(redis_url, prefix=prefix)) as db:
        assert 1 == db.get_user_value("user", "key")


def test_environment_variable_chooses_redis(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ddb.ENV_URL, f"{redis_url}?prefix={prefix}")

    with DashDatabase() as db:
        assert isinstance(db.backend, RedisBackend)
        assert prefix == db.backend.prefix


def test_rediss_url_uses_tls_without_connecting_first() -> None:
    backend = RedisBackend("rediss://:s3cret@example.invalid:6380/2")

    pool = backend.client.connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert 2 == pool.connection_kwargs["db"]
    assert "s3cret" not in repr(backend)
    assert "rediss://:***@example.invalid:6380/2" in repr(backend)
    backend.close()


def test_every_wait_is_bounded_by_default() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0")

    settings = backend.client.connection_pool.connection_kwargs
    retry = settings["retry"]
    # redis-py 5.0 keeps the count in an attribute; get_retries() came later.
    retries = retry.get_retries() if hasattr(retry, "get_retries") else retry._retries
    # One retry, only of a lost connection: two connects and two reads stay far below
    # gunicorn's 30 s worker timeout.
    assert (3.0, 5.0, 1) == (
        settings["socket_connect_timeout"],
        settings["socket_timeout"],
        retries,
    )
    backend.close()


def test_timeouts_come_from_the_url_or_the_constructor(redis_url: str) -> None:
    from_url = RedisBackend(f"{redis_url}?socket_timeout=0.5&socket_connect_timeout=0.25")
    from_options = RedisBackend(redis_url, socket_timeout=7.5)

    assert 0.5 == from_url.client.connection_pool.connection_kwargs["socket_timeout"]
    assert 0.25 == from_url.client.connection_pool.connection_kwargs["socket_connect_timeout"]
    assert 7.5 == from_options.client.connection_pool.connection_kwargs["socket_timeout"]
    from_url.close()
    from_options.close()


def test_default_prefix_and_key_layout() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0")

    assert "dash_database" == backend.prefix
    assert backend.key("u").startswith(b"dash_database:{dash_database}:s:")
    assert 32 == len(backend.key("u")) - len(b"dash_database:{dash_database}:s:")
    backend.close()


@pytest.mark.parametrize("bad", ["", "a{b", "a}b", "{x}"])
def test_prefix_that_would_break_the_hash_tag_is_refused(bad: str) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="prefix must be"):
        RedisBackend("redis://127.0.0.1:1/0", prefix=bad)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "64"])
def test_large_write_bytes_must_be_a_size(bad: Any) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="large_write_bytes"):
        RedisBackend("redis://127.0.0.1:1/0", large_write_bytes=bad)


def test_backend_from_a_ready_client(client: Any, prefix: str) -> None:
    db = DashDatabase(RedisBackend(client, prefix=prefix))
    db.store_user_value("user", "key", "value")
    db.close()

    # The client belongs to the caller: closing the backend leaves it usable.
    assert client.ping()
    assert RedisBackend(client, prefix=prefix).key("user") in own_keys(client, prefix)


def test_client_with_decoded_responses_is_refused(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    with pytest.raises(ddb.InvalidArgumentError, match="decode_responses"):
        RedisBackend(client)
    client.close()


def test_options_with_a_client_are_refused(client: Any) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="only with a URL"):
        RedisBackend(client, socket_timeout=1.0)


def test_unknown_client_type_is_refused() -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="url_or_client must be"):
        RedisBackend(42)


def test_closed_backend_raises(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.close()
    backend.close()

    with pytest.raises(ddb.BackendError, match="closed"):
        backend.get("user", "key", 0.0)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:notaport/0", "redis://:pw@127.0.0.1:99999999/0"]
)
def test_malformed_url_raises_invalid_argument(url: str) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="Redis URL") as info:
        DashDatabase.from_url(url)

    assert "pw" not in str(info.value)


# -- layout: one hash per session, indexed, every key on one cluster slot -----------------------


def test_a_session_is_one_hash_beside_the_index(client: Any, redis_url: str, prefix: str) -> None:
    db = DashDatabase(RedisBackend(redis_url, prefix=prefix), ttl=60, clock=FakeClock())
    db.session("user:1").update(a=1, b=2)

    hash_key = db.backend.key("user:1")  # type: ignore[attr-defined]
    base = f"{prefix}:{{{prefix}}}:".encode()
    own = [hash_key, base + b"index", base + b"expiry", base + b"totals"]
    assert sorted(own) == own_keys(client, prefix)
    fields = client.hgetall(hash_key)
    assert {b"id", b"keys", b"bytes", b"written", b"deadline", b"v:a", b"n:a", b"v:b", b"n:b"} == (
        set(fields)
    )
    assert (b"user:1", b"2") == (fields[b"id"], fields[b"keys"])
    assert FakeClock().now + 60 == float(fields[b"deadline"])
    db.close()


def test_no_key_has_a_native_expiry(client: Any, redis_url: str, prefix: str) -> None:
    # Redis would drop a session without updating the index.
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"a": b"1"}, 1000.05, 1000.0, version=1)

    assert [-1] * 4 == [client.pttl(key) for key in own_keys(client, prefix)]
    backend.close()


def test_hostile_ids_get_distinct_keys_on_one_cluster_slot(
    client: Any, redis_url: str, prefix: str
) -> None:
    from redis.crc import key_slot

    backend = RedisBackend(redis_url, prefix=prefix)
    for session in HOSTILE:
        backend.set_many(session, {session: session.encode()}, None, 0.0, version=1)

    keys = own_keys(client, prefix)
    assert len(HOSTILE) + 2 == len(keys)  # a hash each, the index and the totals
    assert {key_slot(prefix.encode())} == {key_slot(key) for key in keys}
    for session in HOSTILE:
        assert [session] == backend.keys(session, 0.0)
        assert session.encode() == backend.get(session, session, 0.0)
    backend.close()


def test_another_id_under_the_same_digest_is_never_read_or_overwritten(
    client: Any, redis_url: str, prefix: str
) -> None:
    # Two ids whose digests collide cannot be found; a hash holding another id stands in.
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"k": b"mine"}, None, 0.0, version=1)
    client.hset(backend.key("user"), b"id", b"somebody else")

    assert backend.get("user", "k", 0.0) is None
    assert [] == backend.keys("user", 0.0)
    assert 0 == backend.session_bytes("user", 0.0)
    with pytest.raises(ddb.BackendError, match="another session id"):
        backend.set_many("user", {"k": b"overwritten"}, None, 0.0, version=2)
    with pytest.raises(ddb.BackendError, match="another session id"):
        backend.clear("user", 0.0)
    assert b"mine" == client.hget(backend.key("user"), b"v:k")
    backend.close()


def test_two_prefixes_on_one_server_do_not_see_each_other(redis_url: str) -> None:
    base = unique_name("dash_database_test")
    first = RedisBackend(redis_url, prefix=f"{base}*")  # a glob character widens nothing
    second = RedisBackend(redis_url, prefix=f"{base}xyz")
    try:
        first.set_many("user", {"key": b"first"}, 10.0, 0.0, version=1)
        second.set_many("user", {"key": b"second", "more": b"x"}, 10.0, 0.0, version=1)

        assert b"first" == first.get("user", "key", 0.0)
        assert ["key", "more"] == sorted(second.keys("user", 0.0))
        assert 1 == first.stats(0.0).sessions
        assert 1 == first.clear("user", 0.0)
        assert b"second" == second.get("user", "key", 0.0)
        assert 0 == first.purge_expired(100.0)
        assert 1 == second.purge_expired(100.0)
    finally:
        for backend in (first, second):
            keys = list(backend.client.scan_iter(match=f"{base}*", count=1000))
            if keys:
                backend.client.delete(*keys)
            backend.close()


def test_deleting_the_last_key_leaves_no_key(client: Any, redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"a": b"1", "b": b"2"}, None, 0.0, version=1)

    assert backend.delete("user", "a", 0.0)
    assert not backend.delete("user", "a", 0.0)
    assert backend.delete("user", "b", 0.0)
    assert [] == own_keys(client, prefix)
    backend.close()


def test_scripts_are_loaded_again_after_script_flush(
    client: Any, redis_url: str, prefix: str, large_write_bytes: int | None
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix, large_write_bytes=large_write_bytes)
    backend.set_many("user", {"a": b"1"}, 100.0, 0.0, version=1)
    client.script_flush()

    backend.set_many("user", {"b": b"2"}, 100.0, 0.0, version=2)
    assert ["a", "b"] == sorted(backend.keys("user", 0.0))
    assert backend.delete("user", "a", 0.0)
    backend.touch("user", 200.0, 0.0)
    assert 1 == backend.clear("user", 0.0)
    assert 0 == backend.purge_expired(0.0)
    backend.close()


def test_purge_and_stats_work_through_many_batches(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_backend, "_STATS_PAGE", 500)
    backend = RedisBackend(redis_url, prefix=prefix)
    for i in range(1_201):
        backend.set_many(f"s{i}", {"k": b"v"}, 10.0 if i else 1000.0, 0.0, version=1)

    stats = backend.stats(20.0)
    assert (1, 1, 2, 1_200) == (stats.sessions, stats.keys, stats.bytes, stats.expired)
    assert 1_200 == backend.purge_expired(20.0)
    assert ddb.StoreStats(1, 1, 2, 0) == backend.stats(20.0)
    assert ["k"] == backend.keys("s0", 20.0)
    backend.close()


@pytest.mark.parametrize("count", [5, 300])  # a small hash comes whole, a large one in batches
def test_session_keys_pages_list_every_key_once(redis_url: str, prefix: str, count: int) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    items = {f"k{i}": b"v" * (i % 7) for i in range(count)}
    backend.set_many("user", items, None, 0.0, version=3)

    listed, cursor, pages = [], None, 0
    while pages == 0 or cursor is not None:
        page, cursor = backend.session_keys("user", 0.0, cursor, limit=7)
        assert len(page) <= 7
        listed += page
        pages += 1

    assert sorted((k, len(v), 3) for k, v in items.items()) == sorted(
        (info.key, info.bytes, info.version) for info in listed
    )
    backend.close()


def test_compare_and_set_run_twice_reports_its_own_write(redis_url: str, prefix: str) -> None:
    # What redis-py's one resend after a lost reply amounts to: the same call, run again.
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("s", {"n": b"1"}, None, 0.0, version=1)

    assert backend.compare_and_set("s", "n", b"2", 1, None, 0.0, version=2)
    assert backend.compare_and_set("s", "n", b"2", 1, None, 0.0, version=2)
    assert not backend.compare_and_set("s", "n", b"3", 1, None, 0.0, version=3)
    assert (b"2", 2) == backend.get_versioned("s", "n", 0.0)
    backend.close()


# -- the large-value path: MULTI/EXEC beside the script ------------------------------------------


def test_only_writes_of_large_values_use_a_transaction(
    client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix, large_write_bytes=1000)
    before = commands(client, "exec")

    backend.set_many("user", {"small": b"1" * 999}, 10.0, 0.0, version=1)
    assert before == commands(client, "exec")
    backend.set_many("user", {"a": b"x" * 500, "b": b"y" * 500}, 10.0, 0.0, version=2)
    assert before + 1 == commands(client, "exec")

    assert b"x" * 500 == backend.get("user", "a", 0.0)
    assert (5 + 999) + (1 + 500) * 2 == backend.session_bytes("user", 0.0)
    assert ["a", "b", "small"] == sorted(backend.keys("user", 0.0))
    backend.close()


def test_a_write_to_an_expired_session_discards_it(
    client: Any, redis_url: str, prefix: str, large_write_bytes: int | None
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix, large_write_bytes=large_write_bytes)
    backend.set_many("user", {"old": b"1", "kept": b"2"}, 10.0, 0.0, version=1)
    backend.set_many("user", {"kept": b"3", "new": b"4"}, 30.0, 20.0, version=2)

    assert ["kept", "new"] == sorted(backend.keys("user", 20.0))
    assert b"3" == backend.get("user", "kept", 20.0)
    assert ddb.StoreStats(1, 2, (4 + 1) + (3 + 1), 0) == backend.stats(20.0)
    assert 30.0 == float(client.hget(backend.key("user"), "deadline"))
    backend.close()


def test_many_items_in_one_write(
    redis_url: str, prefix: str, large_write_bytes: int | None
) -> None:
    # More fields than one Lua unpack() takes, in the read and in the write.
    backend = RedisBackend(redis_url, prefix=prefix, large_write_bytes=large_write_bytes)
    items = {f"k{i}": str(i).encode() for i in range(8_000)}
    backend.set_many("user", items, 10.0, 0.0, version=1)
    backend.set_many("user", items, 10.0, 0.0, version=2)

    assert sorted(items) == sorted(backend.keys("user", 0.0))
    assert (b"7999", 2) == backend.get_versioned("user", "k7999", 0.0)
    assert sum(len(k) + len(v) for k, v in items.items()) == backend.session_bytes("user", 0.0)
    backend.close()


def test_a_failed_write_writes_nothing(
    client: Any, redis_url: str, prefix: str, large_write_bytes: int | None
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix, large_write_bytes=large_write_bytes)
    client.set(backend.key("user"), b"not a hash")

    with pytest.raises(ddb.BackendError, match="WRONGTYPE") as info:
        backend.set_many("user", {"a": b"x" * 100_000}, 10.0, 0.0, version=1)

    assert isinstance(info.value.__cause__, redis.ResponseError)
    assert b"not a hash" == client.get(backend.key("user"))
    assert [backend.key("user")] == own_keys(client, prefix)
    backend.close()


def test_a_quota_refusal_writes_nothing(
    redis_url: str, prefix: str, large_write_bytes: int | None
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix, large_write_bytes=large_write_bytes)
    backend.set_many("user", {"a": b"1"}, None, 0.0, version=1)

    with pytest.raises(ddb.QuotaExceededError):
        backend.set_many("user", {"b": b"x" * 5000}, 10.0, 0.0, version=2, max_bytes=1000)

    assert ["a"] == backend.keys("user", 1e12)
    assert ddb.StoreStats(1, 1, 2, 0) == backend.stats(0.0)
    backend.close()


def test_out_of_memory_writes_all_or_nothing(large_write_bytes: int | None) -> None:
    server = new_redis_server()
    try:
        server.start()
        admin = redis.Redis(host="127.0.0.1", port=server.port)
        backend = RedisBackend(server.url, large_write_bytes=large_write_bytes)
        backend.set_many("user", {"old": b"1"}, 10.0, 0.0, version=1)
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", used + 256 * 1024)

        try:
            backend.set_many("user", {"new": b"x" * 2_000_000}, 40.0, 20.0, version=2)
        except ddb.BackendError as exc:
            assert "maxmemory" in str(exc)
            expected = (["old"], 3 + 1)
        else:
            expected = (["new"], 2_000_003)

        admin.config_set("maxmemory", 0)
        assert expected == (backend.keys("user", 0.0), backend.session_bytes("user", 0.0))
        backend.close()
        admin.close()
    finally:
        server.remove()


# -- a one-node Redis Cluster -------------------------------------------------------------------


@pytest.fixture
def cluster_server() -> Iterator[RedisServer]:
    server = new_redis_server()
    try:
        server.start(
            "--cluster-enabled", "yes",
            "--cluster-config-file", os.path.join(server.dir, "nodes.conf"),
            # The default bus port, port + 10000, may be taken or above 65535.
            "--cluster-port", str(free_port()),
        )  # fmt: skip
        admin = redis.Redis(host="127.0.0.1", port=server.port)
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 20
        while b"cluster_state:ok" not in admin.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster did not become ready"
            time.sleep(0.05)
        admin.close()
        yield server
    finally:
        server.remove()


def test_backend_on_a_redis_cluster_client(cluster_server: RedisServer) -> None:
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=cluster_server.port)
    clock = FakeClock()
    db = DashDatabase(RedisBackend(client, prefix="app"), ttl=100, clock=clock)
    for user in HOSTILE:
        db.session(user).update({"a": user, "b": 2})
    db.delete_user_value("{", "a")
    db.update_user_value("{", "n", lambda n: n + 1, default=0)
    db.store_user_value("}", "large", b"x" * 100_000)  # through MULTI/EXEC

    assert ["b", "n"] == db.list_stored_user_keys("{")
    assert b"x" * 100_000 == db.get_user_value("}", "large")
    assert "a}b{c" == db.get_user_value("a}b{c", "a")
    assert 2 == db.delete_all_user_values("")
    assert len(HOSTILE) - 1 == db.stats().sessions
    clock.advance(100)
    assert len(HOSTILE) - 1 == db.purge_expired()
    assert "127.0.0.1" in repr(db.backend)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(db)
    db.close()
    client.close()


# -- failures and restarts --------------------------------------------------------------------


def test_server_restart_raises_backend_error_then_recovers() -> None:
    server = new_redis_server()
    try:
        server.start("--requirepass", "s3cret")
        url = f"redis://:s3cret@127.0.0.1:{server.port}/0"
        db = DashDatabase.from_url(url)
        db.store_user_value("user", "key", "before")
        server.stop()

        with pytest.raises(ddb.BackendError) as info:
            db.get_user_value("user", "key")

        message = str(info.value)
        assert f"127.0.0.1:{server.port}" in message
        assert "s3cret" not in message
        assert ".." not in message  # redis-py's sentence ends in a period; ours goes on
        assert isinstance(info.value.__cause__, redis.ConnectionError)

        server.start("--requirepass", "s3cret")
        db.store_user_value("user", "key", "after")
        assert "after" == db.get_user_value("user", "key")
        db.close()
    finally:
        server.remove()


def test_a_server_restart_between_calls_costs_no_error() -> None:
    server = new_redis_server()
    try:
        server.start()
        db = DashDatabase.from_url(server.url)
        db.store_user_value("user", "key", "before")
        server.stop()
        server.start()

        # The pooled connection is dead: redis-py reconnects and sends the command again.
        db.store_user_value("user", "key", "after")
        assert "after" == db.get_user_value("user", "key")
        db.close()
    finally:
        server.remove()


def test_a_frozen_server_gives_backend_error_within_the_timeout() -> None:
    server = new_redis_server()
    try:
        server.start()
        db = DashDatabase.from_url(f"{server.url}?socket_timeout=0.5")
        db.store_user_value("user", "key", "before")
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(ddb.BackendError, match="did not answer in time"):
                db.store_user_value("user", "key", "lost")
            assert time.monotonic() - started < 5  # no retry after a timeout
        finally:
            os.kill(server.process.pid, signal.SIGCONT)

        # The server may still run the write it received before it froze; the caller was told
        # it failed. Either way the next call works.
        assert db.get_user_value("user", "key") in ("before", "lost")
        db.close()
    finally:
        server.remove()


def test_unreachable_server_raises_backend_error_naming_it() -> None:
    port = free_port()
    db = DashDatabase.from_url(f"redis://:pw@127.0.0.1:{port}/0")

    with pytest.raises(ddb.BackendError, match=f"127.0.0.1:{port}") as info:
        db.store_user_value("user", "key", 1)

    assert "pw@" not in str(info.value)
    db.close()


def test_a_reply_that_timed_out_never_reaches_a_later_call(
    client: Any, redis_url: str, prefix: str
) -> None:
    db = DashDatabase(RedisBackend(redis_url, prefix=prefix, socket_timeout=0.3))
    db.store_user_value("user", "a", "A")
    db.store_user_value("user", "b", "B")
    client.client_pause(1500)  # every client's commands wait 1.5 s

    with pytest.raises(ddb.BackendError, match="did not answer in time"):
        db.get_user_value("user", "a")
    with pytest.raises(ddb.BackendError, match="did not answer in time"):
        db.list_stored_user_keys("user")  # two commands in one round trip
    time.sleep(1.5)

    # The replies to the timed-out calls may arrive late; they must not answer these calls.
    assert "B" == db.get_user_value("user", "b")
    assert ["a", "b"] == db.list_stored_user_keys("user")
    db.close()


def test_wrong_type_under_a_session_key_raises_backend_error(
    client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    client.set(backend.key("user"), b"not a hash")

    with pytest.raises(ddb.BackendError, match="WRONGTYPE") as info:
        backend.keys("user", 0.0)

    assert isinstance(info.value.__cause__, redis.ResponseError)
    backend.close()


# -- processes and pickling ----------------------------------------------------------------------


def test_a_child_process_opens_its_own_connection(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    parent = backend.client
    parent_id = parent.client_id()
    read, write = os.pipe()

    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            mine = backend.client
            os.write(write, f"{mine is parent} {mine.client_id()}".encode())
        finally:
            os._exit(0)
    assert 0 == wait_child(pid)
    same, child_id = os.read(read, 64).decode().split()
    os.close(read)
    os.close(write)

    assert ("False", True) == (same, int(child_id) != parent_id)
    assert parent is backend.client
    assert parent_id == backend.client.client_id()  # the parent's connection is still its own
    backend.close()


def test_a_pickled_backend_reopens_with_its_settings(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(f"{redis_url}?socket_timeout=2", prefix=prefix, large_write_bytes=7)
    copy = pickle.loads(pickle.dumps(backend))

    assert (prefix, 7) == (copy.prefix, copy.large_write_bytes)
    assert 2.0 == copy.client.connection_pool.connection_kwargs["socket_timeout"]
    backend.close()
    copy.close()


def test_backend_built_from_a_client_refuses_to_be_pickled(client: Any) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(DashDatabase(RedisBackend(client)))


# -- the optional dependency ------------------------------------------------------------------


def test_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)

    with pytest.raises(ImportError, match=r'pip install "\./dash_database\[redis\]"'):
        DashDatabase.from_url("redis://127.0.0.1:6379/0")


def test_import_dash_database_does_not_import_the_drivers() -> None:
    code = (
        "import sys\n"
        "for name in ('redis', 'sqlalchemy', 'psycopg'):\n"
        "    sys.modules[name] = None\n"
        "import dash_database\n"
        "from dash_database import DashDatabase\n"
        "DashDatabase(':memory:')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )

    assert 0 == result.returncode, result.stderr
