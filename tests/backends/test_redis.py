"""What only the Redis backend has: URLs, clients, key layout, native expiry, restarts."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import dash_database as ddb
from dash_database import DashDatabase
from dash_database.backends import redis as redis_module
from dash_database.backends.redis import RedisBackend
from tests.servers import RedisServer, free_port, new_redis_server, unique_name
from tests.support import FakeClock, require

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


def own_keys(client: Any, prefix: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"{prefix}:*", count=1000))


# -- URLs and clients ---------------------------------------------------------------------------


def test_redis_url_opens_a_redis_backend(redis_url: str, prefix: str) -> None:
    with DashDatabase.from_url(f"{redis_url}?prefix={prefix}") as db:
        db.store_user_value("user", "key", [1, 2])

        assert isinstance(db.backend, RedisBackend)
        assert db.backend.prefix == prefix
        assert db.get_user_value("user", "key") == [1, 2]


def test_url_as_the_positional_location(redis_url: str, prefix: str) -> None:
    with DashDatabase(f"{redis_url}?prefix={prefix}") as db:
        db.store_user_value("user", "key", 1)

    with DashDatabase(RedisBackend(redis_url, prefix=prefix)) as db:
        assert db.get_user_value("user", "key") == 1


def test_environment_variable_chooses_redis(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ddb.ENV_URL, f"{redis_url}?prefix={prefix}")

    with DashDatabase() as db:
        assert isinstance(db.backend, RedisBackend)
        assert db.backend.prefix == prefix


def test_rediss_url_uses_tls_without_connecting_first() -> None:
    backend = RedisBackend("rediss://:s3cret@example.invalid:6380/2")

    pool = backend.client.connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["db"] == 2
    assert "s3cret" not in repr(backend)
    assert "rediss://:***@example.invalid:6380/2" in repr(backend)
    backend.close()


def test_default_prefix() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0")

    assert backend.prefix == "dash_database"
    assert backend.key("u") == b"dash_database:{s75}"
    backend.close()


@pytest.mark.parametrize("bad", ["", "a{b", "a}b", "{x}"])
def test_prefix_that_would_break_the_hash_tag_is_refused(bad: str) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="prefix must be"):
        RedisBackend("redis://127.0.0.1:1/0", prefix=bad)


def test_backend_from_a_ready_client(client: Any, prefix: str) -> None:
    db = DashDatabase(RedisBackend(client, prefix=prefix))
    db.store_user_value("user", "key", "value")
    db.close()

    # The client belongs to the caller: closing the backend leaves it usable.
    assert client.ping()
    assert own_keys(client, prefix) == [RedisBackend(client, prefix=prefix).key("user")]


def test_client_with_decoded_responses_is_refused(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    with pytest.raises(ddb.InvalidArgumentError, match="decode_responses"):
        RedisBackend(client)
    client.close()


def test_options_go_to_the_client_built_from_a_url(redis_url: str) -> None:
    backend = RedisBackend(redis_url, socket_timeout=7.5)

    assert backend.client.connection_pool.connection_kwargs["socket_timeout"] == 7.5
    backend.close()


def test_unknown_client_type_is_refused() -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="client must be"):
        RedisBackend(42)  # type: ignore[arg-type]


def test_closed_backend_raises(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.close()
    backend.close()

    with pytest.raises(ddb.BackendError, match="closed"):
        backend.get("user", "key", 0.0)


# -- key layout ---------------------------------------------------------------------------------


def test_one_hash_per_session_with_a_hex_hash_tag(client: Any, redis_url: str, prefix: str) -> None:
    db = DashDatabase(RedisBackend(redis_url, prefix=prefix), ttl=60, clock=FakeClock())
    db.session("user:1").update(a=1, b=2)

    key = f"{prefix}:{{s{b'user:1'.hex()}}}".encode()
    assert own_keys(client, prefix) == [key]
    assert client.type(key) == b"hash"
    assert set(client.hkeys(key)) == {b"v:a", b"v:b", b"deadline"}
    assert float(client.hget(key, "deadline")) == FakeClock().now + 60
    db.close()


def test_hostile_ids_get_distinct_keys_with_well_formed_hash_tags(
    client: Any, redis_url: str, prefix: str
) -> None:
    from redis.crc import key_slot

    backend = RedisBackend(redis_url, prefix=prefix)
    for session in HOSTILE:
        backend.set_many(session, {session: session.encode()}, None, 0.0)

    keys = own_keys(client, prefix)
    assert len(HOSTILE) == len(keys)
    for session in HOSTILE:
        key = backend.key(session)
        tag = key[key.index(b"{") + 1 : key.index(b"}")]
        assert b"s" + session.encode().hex().encode() == tag
        assert key.endswith(b"}") and key.count(b"{") == 1 and key.count(b"}") == 1
        # Cluster clients route by the tag alone: the whole session lives on one slot.
        assert key_slot(tag) == key_slot(key)
        assert [session] == backend.keys(session, 0.0)
        assert session.encode() == backend.get(session, session, 0.0)
    backend.close()


def test_glob_characters_in_the_prefix_do_not_widen_the_purge(redis_url: str) -> None:
    base = unique_name("dash_database_test")
    star = RedisBackend(redis_url, prefix=f"{base}*")
    other = RedisBackend(redis_url, prefix=f"{base}xyz")
    try:
        star.set_many("s", {"k": b"1"}, 10.0, 0.0)
        other.set_many("s", {"k": b"2"}, 10.0, 0.0)

        assert star.purge_expired(20.0) == 1
        assert other.keys("s", 0.0) == ["k"]
        assert other.purge_expired(20.0) == 1
    finally:
        star.close()
        other.close()


# -- namespaces -------------------------------------------------------------------------------


def test_two_prefixes_on_one_server_do_not_see_each_other(redis_url: str) -> None:
    first = RedisBackend(redis_url, prefix=unique_name("dash_database_test"))
    second = RedisBackend(redis_url, prefix=first.prefix + "_2")
    try:
        first.set_many("user", {"key": b"first"}, 10.0, 0.0)
        second.set_many("user", {"key": b"second", "more": b"x"}, 10.0, 0.0)

        assert first.get("user", "key", 0.0) == b"first"
        assert sorted(second.keys("user", 0.0)) == ["key", "more"]
        assert first.clear("user", 0.0) == 1
        assert second.get("user", "key", 0.0) == b"second"
        assert first.purge_expired(100.0) == 0
        assert second.purge_expired(100.0) == 1
    finally:
        first.close()
        second.close()


# -- expiry ---------------------------------------------------------------------------------------


def test_native_ttl_is_the_remaining_duration_whatever_the_clock(
    client: Any, redis_url: str, prefix: str
) -> None:
    # A clock decades away from the wall clock: the native TTL is still deadline - now.
    clock = FakeClock(start=1_000_000_000.0)
    db = DashDatabase(RedisBackend(redis_url, prefix=prefix), ttl=100, clock=clock)
    db.store_user_value("user", "key", 1)
    key = db.backend.key("user")  # type: ignore[attr-defined]

    assert 99_000 < client.pttl(key) <= 100_000
    clock.advance(50)
    db.get_user_value("user", "key")  # renews to clock + 100
    assert 99_000 < client.pttl(key) <= 100_000
    assert float(client.hget(key, "deadline")) == clock.now + 100
    db.close()


def test_scripts_are_loaded_again_after_script_flush(
    client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"a": b"1"}, 100.0, 0.0)
    client.script_flush()

    backend.set_many("user", {"b": b"2"}, 100.0, 0.0)
    assert sorted(backend.keys("user", 0.0)) == ["a", "b"]
    assert backend.delete("user", "a", 0.0)
    backend.touch("user", 200.0, 0.0)
    assert backend.clear("user", 0.0) == 1
    assert backend.purge_expired(0.0) == 0
    # The SHA1 the backend computes is the one the server reports for its script.
    assert [True] == client.script_exists(backend._set_many_script.sha.decode())
    backend.close()


def test_session_without_ttl_has_no_native_expiry(client: Any, redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"a": b"1"}, 100.0, 0.0)
    backend.set_many("user", {"b": b"2"}, None, 0.0)

    assert client.pttl(backend.key("user")) == -1
    assert client.hget(backend.key("user"), "deadline") is None
    assert sorted(backend.keys("user", 1e12)) == ["a", "b"]
    backend.close()


def test_redis_reclaims_an_abandoned_session_by_itself(
    client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"a": b"1"}, 1000.05, 1000.0)

    deadline = time.monotonic() + 5
    while client.exists(backend.key("user")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not client.exists(backend.key("user"))
    backend.close()


def test_deleting_the_last_key_removes_the_hash(client: Any, redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"a": b"1", "b": b"2"}, 100.0, 0.0)

    assert backend.delete("user", "a", 0.0)
    assert not backend.delete("user", "a", 0.0)
    assert backend.delete("user", "b", 0.0)
    assert own_keys(client, prefix) == []
    assert backend.purge_expired(1000.0) == 0
    backend.close()


# -- the two write paths: one script, or MULTI/EXEC for large values ------------------------------


@pytest.fixture(params=["script", "multi"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Sends every non-empty write through MULTI/EXEC ("multi") or through the one script."""
    threshold = 1 if request.param == "multi" else 1 << 62
    monkeypatch.setattr(redis_module, "_MULTI_WRITE_BYTES", threshold)
    return str(request.param)


def test_write_to_an_expired_session_discards_it_on_both_paths(
    write_path: str, client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"old": b"1", "kept": b"2"}, 10.0, 0.0)
    backend.set_many("user", {"kept": b"3", "new": b"4"}, 30.0, 20.0)

    assert sorted(backend.keys("user", 20.0)) == ["kept", "new"]
    assert backend.get("user", "kept", 20.0) == b"3"
    assert float(client.hget(backend.key("user"), "deadline")) == 30.0
    assert 9_000 < client.pttl(backend.key("user")) <= 10_000
    backend.close()


def test_the_later_deadline_is_kept_on_both_paths(
    write_path: str, client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"a": b"1"}, 100.0, 0.0)
    backend.set_many("user", {"b": b"2"}, 50.0, 10.0)

    assert float(client.hget(backend.key("user"), "deadline")) == 100.0
    assert 89_000 < client.pttl(backend.key("user")) <= 90_000
    backend.set_many("user", {"c": b"3"}, None, 20.0)
    assert client.hget(backend.key("user"), "deadline") is None
    assert client.pttl(backend.key("user")) == -1
    assert sorted(backend.keys("user", 1e12)) == ["a", "b", "c"]
    backend.close()


def test_a_deadline_already_past_leaves_nothing_on_both_paths(
    write_path: str, client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    backend.set_many("user", {"a": b"1"}, 5.0, 10.0)

    assert backend.keys("user", 10.0) == []
    assert not client.exists(backend.key("user"))
    backend.close()


def test_many_items_in_one_write_on_both_paths(
    write_path: str, redis_url: str, prefix: str
) -> None:
    # More pairs than one HSET inside the script takes.
    backend = RedisBackend(redis_url, prefix=prefix)
    items = {f"k{i}": str(i).encode() for i in range(1200)}
    backend.set_many("user", items, 10.0, 0.0)

    assert sorted(backend.keys("user", 0.0)) == sorted(items)
    assert backend.get("user", "k1199", 0.0) == b"1199"
    backend.close()


def test_a_failed_write_writes_nothing_on_both_paths(
    write_path: str, client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    client.set(backend.key("user"), b"not a hash")

    with pytest.raises(ddb.BackendError, match="WRONGTYPE"):
        backend.set_many("user", {"a": b"x" * 100_000}, 10.0, 0.0)

    assert client.get(backend.key("user")) == b"not a hash"
    assert client.pttl(backend.key("user")) == -1
    backend.close()


def transactions(client: Any) -> int:
    """Return how many EXEC commands the server has run."""
    return int(client.info("commandstats").get("cmdstat_exec", {}).get("calls", 0))


@pytest.mark.parametrize("built_from", ["url", "client"])
def test_only_large_writes_use_a_transaction(
    client: Any, redis_url: str, prefix: str, built_from: str
) -> None:
    # Built from a URL, the backend sends MULTI/EXEC itself on a connection it keeps; given a
    # client, through that client's pipeline.
    backend = RedisBackend(redis_url if built_from == "url" else client, prefix=prefix)
    require(backend._can_write_in_multi(), "large writes use MULTI/EXEC from Redis 7 on")
    large = b"x" * redis_module._MULTI_WRITE_BYTES
    before = transactions(client)

    backend.set_many("user", {"small": b"1"}, 10.0, 0.0)
    assert transactions(client) == before
    backend.set_many("user", {"large": large}, 10.0, 0.0)
    assert transactions(client) == before + 1

    assert backend.get("user", "large", 0.0) == large
    assert client.hget(backend.key("user"), "deadline") == b"10.0"
    assert 0 < client.pttl(backend.key("user")) <= 10_000
    backend.close()


@pytest.mark.parametrize("info", ["6.2.14", "denied"])
def test_servers_before_redis_7_keep_to_the_script(
    info: str, client: Any, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)

    def fake_info(section: str) -> dict[str, str]:
        if info == "denied":
            raise redis.ResponseError("NOPERM this user has no permissions to run 'info'")
        return {"redis_version": info}

    monkeypatch.setattr(backend.client, "info", fake_info)
    large = b"x" * redis_module._MULTI_WRITE_BYTES
    before = transactions(client)
    backend.set_many("user", {"large": large}, 10.0, 0.0)

    assert transactions(client) == before
    assert backend.get("user", "large", 0.0) == large
    backend.close()


@pytest.mark.parametrize("built_from", ["url", "client"])
def test_out_of_memory_writes_all_or_nothing_on_both_paths(
    write_path: str, built_from: str
) -> None:
    server = new_redis_server()
    try:
        server.start()
        admin = redis.Redis(host="127.0.0.1", port=server.port)
        backend = RedisBackend(server.url if built_from == "url" else admin)
        backend.set_many("user", {"old": b"1"}, 10.0, 0.0)
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", used + 256 * 1024)
        new = b"x" * 2_000_000

        # The session expired, so a complete write discards "old". Redis refuses the
        # transaction as a whole; the script's first write, a DEL, frees memory and is let
        # through, after which Redis does not stop a script halfway.
        try:
            backend.set_many("user", {"new": new}, 40.0, 20.0)
        except ddb.BackendError as exc:
            assert "maxmemory" in str(exc)
            expected = {b"v:old": b"1", b"deadline": b"10.0"}
        else:
            expected = {b"v:new": new, b"deadline": b"40.0"}

        admin.config_set("maxmemory", 0)
        assert admin.hgetall(backend.key("user")) == expected
        if write_path == "multi" and backend._can_write_in_multi():
            assert expected[b"deadline"] == b"10.0"
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

    assert db.list_stored_user_keys("{") == ["b"]
    assert db.get_user_value("a}b{c", "a") == "a}b{c"
    assert db.delete_all_user_values("") == 2
    clock.advance(100)
    assert db.purge_expired() == len(HOSTILE) - 1
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
        assert isinstance(info.value.__cause__, redis.ConnectionError)

        server.start("--requirepass", "s3cret")
        db.store_user_value("user", "key", "after")
        assert db.get_user_value("user", "key") == "after"
        db.close()
    finally:
        server.remove()


def test_unreachable_server_raises_backend_error_naming_it() -> None:
    port = free_port()
    db = DashDatabase.from_url(f"redis://:pw@127.0.0.1:{port}/0")

    with pytest.raises(ddb.BackendError, match=f"127.0.0.1:{port}") as info:
        db.store_user_value("user", "key", 1)

    assert "pw@" not in str(info.value)
    assert ".." not in str(info.value)  # redis-py's sentence ends in a period; ours goes on
    db.close()


def test_wrong_type_under_a_session_key_raises_backend_error(
    client: Any, redis_url: str, prefix: str
) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    client.set(backend.key("user"), b"not a hash")

    with pytest.raises(ddb.BackendError, match="WRONGTYPE") as info:
        backend.keys("user", 0.0)

    assert isinstance(info.value.__cause__, redis.ResponseError)
    backend.set_many("other", {"k": b"v"}, 1.0, 0.0)
    # The purge skips the foreign key and still removes what is expired.
    assert backend.purge_expired(2.0) == 1
    assert client.get(backend.key("user")) == b"not a hash"
    backend.close()


# -- connections kept between calls ------------------------------------------------------------


def test_a_server_restart_between_calls_costs_no_error() -> None:
    server = new_redis_server()
    try:
        server.start()
        db = DashDatabase.from_url(server.url)
        db.store_user_value("user", "key", "before")
        server.stop()
        server.start()

        # The connection kept from before is dead: the call reconnects and sends again.
        db.store_user_value("user", "key", "after")
        assert db.get_user_value("user", "key") == "after"
        db.close()
    finally:
        server.remove()


def test_a_reply_that_timed_out_never_reaches_a_later_call(
    client: Any, redis_url: str, prefix: str
) -> None:
    db = DashDatabase(RedisBackend(redis_url, prefix=prefix, socket_timeout=0.3))
    db.store_user_value("user", "a", "A")
    db.store_user_value("user", "b", "B")
    client.client_pause(1000)  # every client's commands wait 1 s

    with pytest.raises(ddb.BackendError, match="Could not reach Redis"):
        db.get_user_value("user", "a")
    time.sleep(1.0)

    # The reply to the timed-out read may arrive late; it must not answer these calls.
    assert db.get_user_value("user", "b") == "B"
    assert db.list_stored_user_keys("user") == ["a", "b"]
    db.close()


def test_kept_connections_serve_threads_and_close_with_the_backend(
    client: Any, redis_url: str, prefix: str
) -> None:
    name = unique_name("kept")

    def connected() -> int:
        return sum(1 for c in client.client_list() if c.get("name") == name)

    backend = RedisBackend(redis_url, prefix=prefix, client_name=name)
    barrier = threading.Barrier(4)
    wrong: list[str] = []

    def work(n: int) -> None:
        barrier.wait()
        for i in range(100):
            value = f"{n}-{i}".encode()
            backend.set_many(f"s{n}", {"k": value}, None, 0.0)
            if backend.get(f"s{n}", "k", 0.0) != value:
                wrong.append(f"thread {n} read another value at {i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert wrong == []
    assert 1 <= connected() <= 4  # one per call running at once, kept for the next
    backend.close()
    deadline = time.monotonic() + 5
    while connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert connected() == 0


def test_a_child_process_opens_its_own_connection(redis_url: str, prefix: str) -> None:
    backend = RedisBackend(redis_url, prefix=prefix)
    parent_id = backend._command("CLIENT", "ID")
    read, write = os.pipe()

    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, str(backend._command("CLIENT", "ID")).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child_id = int(os.read(read, 64))
    os.close(read)
    os.close(write)

    assert child_id != parent_id
    assert backend._command("CLIENT", "ID") == parent_id  # the parent's is still its own
    backend.close()


# -- processes and pickling ----------------------------------------------------------------------


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

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:notaport/0", "redis://:pw@127.0.0.1:99999999/0"]
)
def test_malformed_url_raises_value_error(url: str) -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="Redis URL") as info:
        DashDatabase.from_url(url)

    assert "pw" not in str(info.value)
