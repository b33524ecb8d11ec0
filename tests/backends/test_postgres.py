"""What only the PostgreSQL backend has: URLs, engines, the tables, restarts, timeouts."""

from __future__ import annotations

import hashlib
import pickle
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import dash_database as ddb
from dash_database import DashDatabase
from dash_database.backends.postgres import PostgresBackend
from tests.servers import PostgresServer, free_port, unique_name
from tests.support import FakeClock, require

pytestmark = pytest.mark.slow

try:
    import psycopg
    import sqlalchemy
except ImportError:  # pragma: no cover - the test extra installs them
    psycopg = sqlalchemy = None

HOSTILE = [
    "",
    "\x00",
    "a\x00b",
    "\x00\x00",
    "é",
    "e\u0301",
    "日本",
    "🙂",
    "'; DROP TABLE x; --",
    '"',
]


@pytest.fixture(autouse=True)
def _needs_sqlalchemy() -> None:
    require(
        sqlalchemy is not None, 'SQLAlchemy not installed: pip install "dash-database[postgres]"'
    )


@pytest.fixture
def table(postgres_url: str) -> Iterator[str]:
    """A table name private to the test; its tables are dropped afterwards."""
    name = unique_name("dash_database_test")
    yield name
    drop_tables(postgres_url, name)


def drop_tables(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{name}_sessions", "{name}_values"')


def open_backend(url: str, table: str, **options: Any) -> PostgresBackend:
    return PostgresBackend(url, table=table, **options)


def sql(url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


# -- URLs and engines ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_url_schemes_open_a_postgres_backend_on_psycopg_3(
    postgres_url: str, table: str, scheme: str
) -> None:
    url = postgres_url.replace("postgresql://", f"{scheme}://", 1)
    with DashDatabase.from_url(f"{url}?table={table}&namespace=app") as db:
        db.store_user_value("user", "key", {"a": 1})

        assert isinstance(db.backend, PostgresBackend)
        assert db.backend.engine.url.drivername == "postgresql+psycopg"
        assert (db.backend.table_name, db.backend.namespace) == (table, "app")
        assert db.get_user_value("user", "key") == {"a": 1}


def test_url_as_the_positional_location(postgres_url: str, table: str) -> None:
    with DashDatabase(f"{postgres_url}?table={table}") as db:
        db.store_user_value("user", "key", 1)

    with DashDatabase(open_backend(postgres_url, table)) as db:
        assert db.get_user_value("user", "key") == 1


def test_environment_variable_chooses_postgres(
    postgres_url: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ddb.ENV_URL, f"{postgres_url}?table={table}&namespace=env")

    with DashDatabase() as db:
        assert isinstance(db.backend, PostgresBackend)
        assert (db.backend.table_name, db.backend.namespace) == (table, "env")


def test_password_is_never_shown(postgres_url: str, table: str) -> None:
    # The test server trusts every connection, so any password is accepted.
    url = postgres_url.replace("postgres@", "postgres:s3cret@", 1)
    backend = open_backend(url, table)

    assert "s3cret" not in repr(backend)
    assert "***" in repr(backend)
    backend.close()


def test_backend_from_a_ready_engine(postgres_url: str, table: str) -> None:
    engine = sqlalchemy.create_engine(
        PostgresBackend(postgres_url, create_table=False).engine.url, pool_pre_ping=True
    )
    db = DashDatabase(PostgresBackend(engine, table=table))
    db.store_user_value("user", "key", "value")
    db.close()

    # The engine belongs to the caller: closing the backend leaves it usable.
    with engine.connect() as conn:
        count = conn.exec_driver_sql(f'SELECT count(*) FROM "{table}_values"').scalar()
        # Its connections come back as they were lent: not in autocommit mode.
        assert not conn.connection.driver_connection.autocommit  # type: ignore[union-attr]
    assert count == 1
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(DashDatabase(PostgresBackend(engine, table=table)))
    engine.dispose()


def test_engine_of_another_database_is_refused() -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="runs sqlite"):
        PostgresBackend(sqlalchemy.create_engine("sqlite://"))


def test_engine_of_another_driver_is_refused() -> None:
    # The backend runs its statements on psycopg 3's own (synchronous) connections.
    engine = sqlalchemy.create_engine("postgresql+psycopg_async://user@127.0.0.1:1/db")

    with pytest.raises(ddb.InvalidArgumentError, match=r"postgresql\+psycopg://"):
        PostgresBackend(engine)


@pytest.mark.parametrize(
    "options",
    [
        {"table": ""},
        {"table": "a\x00b"},
        {"table": "t" * 50},
        {"namespace": "\x00"},
        {"schema": ""},
        {"statement_timeout": 0},
        {"connect_timeout": "5"},
        {"copy_threshold": -1},
    ],
)
def test_bad_names_are_refused(postgres_url: str, options: dict[str, str]) -> None:
    with pytest.raises(ddb.InvalidArgumentError):
        PostgresBackend(postgres_url, create_table=False, **options)


def test_closed_backend_raises(postgres_url: str, table: str) -> None:
    backend = open_backend(postgres_url, table)
    backend.close()
    backend.close()

    with pytest.raises(ddb.BackendError, match="closed"):
        backend.get("user", "key", 0.0)


# -- the tables ---------------------------------------------------------------------------------


def test_tables_are_keyed_by_digests_and_hold_the_full_ids(postgres_url: str, table: str) -> None:
    backend = open_backend(postgres_url, table)
    inspector = sqlalchemy.inspect(backend.engine)

    assert ["namespace", "sid_hash"] == inspector.get_pk_constraint(f"{table}_sessions")[
        "constrained_columns"
    ]
    assert ["namespace", "sid_hash", "key_hash"] == inspector.get_pk_constraint(f"{table}_values")[
        "constrained_columns"
    ]
    [index] = inspector.get_indexes(f"{table}_sessions")
    assert (f"{table}_sessions_deadline", ["namespace", "deadline"]) == (
        index["name"],
        index["column_names"],
    )
    assert "deadline IS NOT NULL" in index["dialect_options"]["postgresql_where"]
    backend.close()


def test_purging_uses_the_deadline_index(postgres_url: str, table: str) -> None:
    backend = open_backend(postgres_url, table)
    with backend.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = conn.exec_driver_sql(
            f"EXPLAIN SELECT sid_hash FROM {backend.sessions_table} WHERE namespace = 'x' "
            "AND deadline <= 5 LIMIT 1000 FOR UPDATE SKIP LOCKED"
        ).all()

    assert f"{table}_sessions_deadline" in " ".join(row[0] for row in plan)
    backend.close()


def test_rows_hold_the_utf8_of_the_ids_their_digests_and_the_session_figures(
    postgres_url: str, table: str
) -> None:
    clock = FakeClock()
    db = DashDatabase(open_backend(postgres_url, table, namespace="app"), ttl=60, clock=clock)
    db.backend.set_many(
        "us\x00er", {"k\x00": b"12", "é": b"3"}, clock.now + 60, clock.now, version=7
    )

    sessions = sql(postgres_url, f'SELECT * FROM "{table}_sessions"')
    values = sql(postgres_url, f'SELECT * FROM "{table}_values" ORDER BY key')
    digest = hashlib.sha256(b"us\x00er").digest()
    assert [
        ("app", digest, b"us\x00er", clock.now + 60, 2, (2 + 2) + (2 + 1), clock.now)
    ] == sessions
    assert [
        ("app", digest, hashlib.sha256(b"k\x00").digest(), b"k\x00", b"12", 7),
        ("app", digest, hashlib.sha256("é".encode()).digest(), "é".encode(), b"3", 7),
    ] == values
    db.close()


def test_hostile_ids_round_trip_and_list_as_the_original_strings(
    postgres_url: str, table: str
) -> None:
    db = DashDatabase(open_backend(postgres_url, table))
    for user in HOSTILE:
        db.session(user).update({key: (user, key) for key in HOSTILE})

    for user in HOSTILE:
        assert sorted(HOSTILE) == db.list_stored_user_keys(user)
        for key in HOSTILE:
            assert (user, key) == db.get_user_value(user, key)
    db.close()


def test_ids_and_keys_of_several_kilobytes_work(postgres_url: str, table: str) -> None:
    # A btree index entry holds at most about 2.7 KB: the tables index digests instead.
    db = DashDatabase(open_backend(postgres_url, table))
    user, key = "u" * 20_000, "k" * 20_000
    db.store_user_value(user, key, 1)

    assert 1 == db.get_user_value(user, key)
    assert [key] == db.list_stored_user_keys(user)
    db.close()


def test_table_in_another_schema(postgres_url: str, table: str) -> None:
    schema = unique_name("schema")
    sql(postgres_url, f'CREATE SCHEMA "{schema}"')
    backend = open_backend(postgres_url, table)
    try:
        with DashDatabase.from_url(f"{postgres_url}?table={table}&schema={schema}") as db:
            db.store_user_value("user", "key", 1)
            assert db.get_user_value("user", "key") == 1
        assert sqlalchemy.inspect(backend.engine).has_table(f"{table}_values", schema=schema)
        assert backend.keys("user", 0.0) == []
    finally:
        sql(postgres_url, f'DROP SCHEMA "{schema}" CASCADE')
        backend.close()


def test_concurrent_creators_of_one_table_do_not_fail(postgres_url: str, table: str) -> None:
    threads, barrier = 8, threading.Barrier(8)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait()
            open_backend(postgres_url, table).close()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert errors == []


def test_without_create_table_a_missing_table_raises_backend_error(
    postgres_url: str, table: str
) -> None:
    backend = open_backend(postgres_url, table, create_table=False)

    with pytest.raises(ddb.BackendError, match=table) as info:
        backend.get("user", "key", 0.0)

    assert isinstance(info.value.__cause__, psycopg.errors.UndefinedTable)
    backend.close()


# -- namespaces -------------------------------------------------------------------------------


def test_two_namespaces_in_one_table_do_not_see_each_other(postgres_url: str, table: str) -> None:
    first = open_backend(postgres_url, table, namespace="first")
    second = open_backend(postgres_url, table, namespace="second")
    first.set_many("user", {"key": b"first"}, 10.0, 0.0, version=1)
    second.set_many("user", {"key": b"second", "more": b"x"}, 10.0, 0.0, version=1)

    assert first.get("user", "key", 0.0) == b"first"
    assert sorted(second.keys("user", 0.0)) == ["key", "more"]
    assert first.clear("user", 0.0) == 1
    assert second.get("user", "key", 0.0) == b"second"
    assert first.purge_expired(100.0) == 0
    assert second.purge_expired(100.0) == 1
    first.close()
    second.close()


def test_two_tables_on_one_server_do_not_see_each_other(postgres_url: str, table: str) -> None:
    other = unique_name("dash_database_test")
    first, second = open_backend(postgres_url, table), open_backend(postgres_url, other)
    try:
        first.set_many("user", {"key": b"first"}, None, 0.0, version=1)

        assert second.keys("user", 0.0) == []
    finally:
        drop_tables(postgres_url, other)
        first.close()
        second.close()


# -- failures and restarts --------------------------------------------------------------------


def test_server_restart_raises_backend_error_then_recovers(
    postgres_server: PostgresServer | None, table: str
) -> None:
    if postgres_server is None:
        pytest.skip("TEST_POSTGRES_URL names a server these tests cannot restart")
    url = postgres_server.url.replace("postgres@", "postgres:s3cret@", 1)
    db = DashDatabase.from_url(f"{url}?table={table}")
    db.store_user_value("user", "key", "before")
    postgres_server.stop()
    try:
        with pytest.raises(ddb.BackendError) as info:
            db.get_user_value("user", "key")

        message = str(info.value)
        assert f"127.0.0.1:{postgres_server.port}" in message
        assert "s3cret" not in message
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
    finally:
        postgres_server.start()

    assert db.get_user_value("user", "key") == "before"
    db.store_user_value("user", "key", "after")
    assert db.get_user_value("user", "key") == "after"
    db.close()


def terminate_connections(url: str, application_name: str) -> int:
    """End, from another connection, every server process of ``application_name``; return how
    many ended."""
    with psycopg.connect(url, autocommit=True) as conn:
        # The timeout makes pg_terminate_backend wait until each process has exited.
        ended = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) "
            "FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert ended is not None
    return int(ended[0])


def count_connections(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_connections_are_bounded_by_the_pool_and_closed_with_the_backend(
    postgres_url: str, table: str
) -> None:
    name = unique_name("app")
    backend = open_backend(
        postgres_url, table, pool_size=3, max_overflow=5, connect_args={"application_name": name}
    )
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                backend.set_many(f"user{n}", {"k": str(i).encode()}, None, 0.0, version=i + 1)
                assert backend.get(f"user{n}", "k", 0.0) == str(i).encode()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not any(thread.is_alive() for thread in threads)
    assert [] == errors
    assert count_connections(postgres_url, name) <= 3 + 5
    backend.close()
    # The server ends a session's process a moment after its client closed the connection.
    deadline = time.monotonic() + 10
    while count_connections(postgres_url, name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 == count_connections(postgres_url, name)


def test_connections_the_server_ended_are_replaced_without_an_error(
    postgres_url: str, table: str
) -> None:
    name = unique_name("app")
    backend = open_backend(postgres_url, table, connect_args={"application_name": name})
    backend.set_many("user", {"a": b"1", "b": b"2"}, 100.0, 0.0, version=1)
    # Four connections in the pool, all ended below: the call that finds one lost runs again
    # on another, until it finds a working one.
    held = [backend.engine.raw_connection() for _ in range(4)]
    for conn in held:
        conn.close()
    assert terminate_connections(postgres_url, name) == 4

    assert backend.get("user", "a", 0.0) == b"1"
    assert terminate_connections(postgres_url, name) == 1
    assert sorted(backend.keys("user", 0.0)) == ["a", "b"]
    assert terminate_connections(postgres_url, name) == 1
    backend.set_many("user", {"c": b"3"}, None, 0.0, version=2)
    assert terminate_connections(postgres_url, name) == 1
    assert backend.delete("user", "a", 0.0)
    assert terminate_connections(postgres_url, name) == 1
    backend.touch("user", 200.0, 0.0)
    assert terminate_connections(postgres_url, name) == 1
    assert backend.clear("user", 0.0) == 2
    assert terminate_connections(postgres_url, name) == 1
    assert backend.purge_expired(0.0) == 0
    backend.close()


def test_a_statement_that_waits_too_long_for_a_lock_raises_backend_error(
    postgres_url: str, table: str
) -> None:
    backend = open_backend(postgres_url, table, statement_timeout=0.5)
    backend.set_many("user", {"a": b"1"}, None, 0.0, version=1)
    with psycopg.connect(postgres_url) as holder:
        holder.execute(f'SELECT * FROM "{table}_sessions" FOR UPDATE').fetchall()
        started = time.monotonic()

        with pytest.raises(ddb.BackendError, match="statement timeout"):
            backend.set_many("user", {"a": b"2"}, None, 0.0, version=2)

        assert time.monotonic() - started < 5
    assert backend.get("user", "a", 0.0) == b"1"
    backend.close()


def test_compare_and_set_run_again_after_it_wrote_answers_true(
    postgres_url: str, table: str
) -> None:
    # When a connection is lost after the server committed, the call runs again: it must not
    # report a conflict with its own write (the caller would apply its update twice).
    backend = open_backend(postgres_url, table)
    backend.set_many("user", {"n": b"1"}, None, 0.0, version=1)

    assert backend.compare_and_set("user", "n", b"2", 1, None, 0.0, version=2)
    assert backend.compare_and_set("user", "n", b"2", 1, None, 0.0, version=2)
    assert (b"2", 2) == backend.get_versioned("user", "n", 0.0)
    backend.close()


# Writes whose values add up to copy_threshold bytes or more stream them with COPY.
LARGE = bytes(range(256)) * 400
PATHS = {"statement": {}, "copy": {"copy_threshold": 1024}}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_writes_store_every_item_and_the_deadline(postgres_url: str, table: str, path: str) -> None:
    backend = open_backend(postgres_url, table, **PATHS[path])
    items = {"a": LARGE, "\u00e9\0key": b"", "c": LARGE[::-1]}
    backend.set_many("user", items, None, 0.0, version=1)
    backend.set_many("timed", items, 10.0, 0.0, version=2)

    for session in ("user", "timed"):
        assert sorted(backend.keys(session, 5.0)) == sorted(items)
        for key, value in items.items():
            assert backend.get(session, key, 5.0) == value
    assert backend.keys("timed", 10.0) == []
    # The expired session starts afresh.
    backend.set_many("timed", {"c": LARGE}, None, 20.0, version=3)
    assert backend.keys("timed", 1e9) == ["c"]
    assert 1 + len(LARGE) == backend.session_bytes("timed", 1e9)
    backend.close()


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_failed_set_many_writes_nothing(postgres_url: str, table: str, path: str) -> None:
    backend = open_backend(postgres_url, table, **PATHS[path])
    refuse = f"{table}_refuse"
    sql(
        postgres_url,
        f'CREATE FUNCTION "{refuse}"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
        "IF NEW.key = 'boom'::bytea THEN RAISE EXCEPTION 'refused'; END IF; "
        "RETURN NEW; END $$",
    )
    sql(
        postgres_url,
        f'CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON "{table}_values" '
        f'FOR EACH ROW EXECUTE FUNCTION "{refuse}"()',
    )
    try:
        backend.set_many("user", {"a": b"1", "b": b"2"}, 10.0, 0.0, version=1)

        for items in [{"boom": LARGE}, {"a": b"new", "boom": LARGE}]:
            # Live session: neither the values nor the deadline change.
            with pytest.raises(ddb.BackendError, match="refused"):
                backend.set_many("user", items, 20.0, 5.0, version=2)
            # Expired session: its old values are not discarded either.
            with pytest.raises(ddb.BackendError, match="refused"):
                backend.set_many("user", items, None, 15.0, version=3)

        assert backend.get("user", "a", 5.0) == b"1"
        assert sorted(backend.keys("user", 5.0)) == ["a", "b"]
        assert 4 == backend.session_bytes("user", 5.0)
        assert backend.keys("user", 10.0) == []
    finally:
        sql(postgres_url, f'DROP FUNCTION "{refuse}"() CASCADE')
        backend.close()


@pytest.mark.parametrize("new", [b"new", LARGE])
@pytest.mark.parametrize("written", [["a"], ["a", "c"]])
def test_a_write_to_an_expired_session_keeps_only_the_new_values(
    postgres_url: str, table: str, written: list[str], new: bytes
) -> None:
    backend = open_backend(postgres_url, table, copy_threshold=len(LARGE))
    backend.set_many("user", {"a": b"old", "b": b"old"}, 10.0, 0.0, version=1)

    backend.set_many("user", dict.fromkeys(written, new), 30.0, 20.0, version=2)

    assert sorted(backend.keys("user", 20.0)) == written
    assert [backend.get("user", key, 20.0) for key in written] == [new] * len(written)
    assert len(written) * (1 + len(new)) == backend.session_bytes("user", 20.0)
    assert backend.keys("user", 30.0) == []
    backend.close()


def test_deleting_the_last_value_keeps_the_deadline(postgres_url: str, table: str) -> None:
    backend = open_backend(postgres_url, table)
    backend.set_many("user", {"a": b"1"}, 50.0, 0.0, version=1)

    assert backend.delete("user", "a", 0.0)
    backend.set_many("user", {"b": b"2"}, 20.0, 10.0, version=2)

    # The later deadline, 50, still holds.
    assert backend.keys("user", 40.0) == ["b"]
    assert backend.keys("user", 50.0) == []
    backend.close()


def test_deleting_the_last_value_of_a_session_without_deadline_removes_its_row(
    postgres_url: str, table: str
) -> None:
    backend = open_backend(postgres_url, table)
    backend.set_many("user", {"a": b"1"}, None, 0.0, version=1)

    assert backend.delete("user", "a", 0.0)

    assert [(0,)] == sql(postgres_url, f'SELECT count(*) FROM "{table}_sessions"')
    backend.close()


def _wait_for(postgres_url: str, condition: str) -> None:
    """Return once a server process of this database matches ``condition``."""
    with psycopg.connect(postgres_url, autocommit=True) as watcher:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                f" WHERE {condition} AND datname = current_database()"
            ).fetchone()
            if found and found[0]:
                return
            time.sleep(0.01)
    raise AssertionError(f"no server process matched {condition}")


@pytest.mark.parametrize("deadline", [None, 100.0], ids=["plain", "ttl"])
def test_a_clear_that_waited_for_a_writer_removes_all_it_wrote(
    postgres_url: str, table: str, deadline: float | None
) -> None:
    backend = open_backend(postgres_url, table)
    backend.set_many("user", {"a": b"old", "b": b"old"}, deadline, 0.0, version=1)
    # The write below pauses as it adds key c, holding the session's row locked.
    pause = f"{table}_pause"
    sql(
        postgres_url,
        f'CREATE FUNCTION "{pause}"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
        "IF NEW.key = 'c'::bytea THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$",
    )
    sql(
        postgres_url,
        f'CREATE TRIGGER pause BEFORE INSERT ON "{table}_values" '
        f'FOR EACH ROW EXECUTE FUNCTION "{pause}"()',
    )
    try:
        items = {"a": b"new", "c": b"new"}
        writing = threading.Thread(
            target=lambda: backend.set_many("user", items, deadline, 0.0, version=2)
        )
        writing.start()
        _wait_for(postgres_url, "wait_event = 'PgSleep'")
        removed: list[int] = []
        clearing = threading.Thread(target=lambda: removed.append(backend.clear("user", 0.0)))
        clearing.start()
        _wait_for(postgres_url, "wait_event_type = 'Lock'")
        writing.join(10)
        clearing.join(10)

        # The write committed before the clear got its lock: the clear comes second, whole.
        assert removed == [3]
        assert backend.keys("user", 0.0) == []
        assert [(0,)] == sql(postgres_url, f'SELECT count(*) FROM "{table}_values"')
        assert [(0,)] == sql(postgres_url, f'SELECT count(*) FROM "{table}_sessions"')
    finally:
        sql(postgres_url, f'DROP FUNCTION "{pause}"() CASCADE')
        backend.close()


def test_unreachable_server_raises_backend_error_naming_it() -> None:
    port = free_port()

    backend = PostgresBackend(f"postgresql://user:pw@127.0.0.1:{port}/db")  # starts anyway

    with pytest.raises(ddb.BackendError, match=f"127.0.0.1:{port}") as info:
        backend.keys("user", 1.0)

    assert ":pw@" not in str(info.value)


# -- the optional dependency ------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["sqlalchemy", "psycopg"])
def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    # The drivers are imported with the backend's package, so import it afresh.
    for name in list(sys.modules):
        if name.startswith("dash_database.backends.postgres"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)

    with pytest.raises(ImportError, match=r'pip install "\./dash_database\[postgres\]"'):
        DashDatabase.from_url("postgresql://user@127.0.0.1:5432/db")


def test_table_and_schema_names_are_quoted(postgres_url: str) -> None:
    name = unique_name('Odd "Name"; SELECT 1; --')
    backend = PostgresBackend(postgres_url, table=name, namespace="x")
    try:
        backend.set_many("user", {"key": b"v"}, 5.0, 0.0, version=1)

        assert backend.keys("user", 0.0) == ["key"]
        assert sqlalchemy.inspect(backend.engine).has_table(f"{name}_sessions")
        assert backend.purge_expired(10.0) == 1
    finally:
        sql(postgres_url, f"DROP TABLE {backend.sessions_table}, {backend.values_table}")
        backend.close()


def test_every_statement_fits_psycopgs_parse_cache_with_the_longest_names() -> None:
    # psycopg caches how it parsed a statement only up to 4 KiB of text; parsing the write
    # statement again on every call cost more than the rest of the client's work.
    from dash_database.backends.postgres import _connect, _sql

    longest = _connect.quote("s" * 63) + "." + _connect.quote("t" * 63)
    statements = _sql.compiled(longest, longest, longest)

    assert [] == [name for name, text in statements.items() if len(text.encode()) > 4096]
    assert "--" not in statements["WRITE"]


def test_a_backend_opens_while_its_server_is_away(postgres_url: str) -> None:
    # A gunicorn worker that starts during an outage must start (a worker that fails to boot
    # stops the whole server); its calls fail until the server answers again.
    port = postgres_url.rsplit(":", 1)[1].split("/")[0]
    away = postgres_url.replace(f":{port}/", f":{free_port()}/")
    db = DashDatabase(PostgresBackend(away, connect_timeout=2))

    with pytest.raises(ddb.BackendError, match="create the tables on"):
        db.store_user_value("user", "key", 1)
    with pytest.raises(ddb.BackendError):
        db.get_user_value("user", "key")
    db.close()


def test_purge_stays_quick_after_a_bulk_load_the_statistics_do_not_know(
    postgres_url: str, table: str
) -> None:
    # The planner sees statistics from before the load (one other namespace, autovacuum off),
    # so it expects no expired rows in "app": a purge planned as a join then scanned all of
    # them once per removed session and ran into the statement timeout.
    backend = open_backend(postgres_url, table, namespace="app", statement_timeout=1.0)
    backend.set_many("before", {"k": b"v"}, 1.0, 0.0, version=1)
    for name in ("sessions", "values"):
        sql(postgres_url, f'ALTER TABLE "{table}_{name}" SET (autovacuum_enabled = off)')
    sql(postgres_url, f'UPDATE "{table}_sessions" SET namespace = %s', "other")
    sql(postgres_url, f'UPDATE "{table}_values" SET namespace = %s', "other")
    sql(postgres_url, f'ANALYZE "{table}_sessions", "{table}_values"')
    count = 5000
    sql(
        postgres_url,
        f'INSERT INTO "{table}_sessions" SELECT %s, sha256(i::text::bytea), i::text::bytea, '
        "1.0, 5, 50, 0.0 FROM generate_series(1, %s) AS i",
        "app",
        count,
    )
    sql(
        postgres_url,
        f'INSERT INTO "{table}_values" SELECT %s, sha256(i::text::bytea), '
        "sha256(k::text::bytea), k::text::bytea, 'value', 1 "
        "FROM generate_series(1, %s) AS i, generate_series(1, 5) AS k",
        "app",
        count,
    )

    assert count == backend.purge_expired(2.0)
    assert [(0,)] == sql(
        postgres_url, f'SELECT count(*) FROM "{table}_values" WHERE namespace = %s', "app"
    )
    assert [("other",)] == sql(postgres_url, f'SELECT namespace FROM "{table}_sessions"')
    backend.close()
