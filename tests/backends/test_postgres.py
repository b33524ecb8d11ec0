"""What only the PostgreSQL backend has: URLs, engines, the table, restarts, processes."""

from __future__ import annotations

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
    import sqlalchemy
except ImportError:  # pragma: no cover - the test extra installs it
    sqlalchemy = None

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
    """A table name private to the test; the table is dropped afterwards."""
    name = unique_name("dash_database_test")
    yield name
    backend = PostgresBackend(postgres_url, create_table=False)
    with backend.engine.begin() as conn:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')
    backend.close()


def open_backend(url: str, table: str, **options: Any) -> PostgresBackend:
    return PostgresBackend(url, table=table, **options)


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
        count = conn.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar()
    assert count == 1
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(DashDatabase(PostgresBackend(engine, table=table)))
    engine.dispose()


def test_engine_of_another_database_is_refused() -> None:
    with pytest.raises(ddb.InvalidArgumentError, match="'sqlite'"):
        PostgresBackend(sqlalchemy.create_engine("sqlite://"))


def test_engine_of_another_driver_is_refused() -> None:
    # The backend runs its statements on psycopg 3's own (synchronous) connections.
    engine = sqlalchemy.create_engine("postgresql+psycopg_async://user@127.0.0.1:1/db")

    with pytest.raises(ddb.InvalidArgumentError, match=r"postgresql\+psycopg://"):
        PostgresBackend(engine)


@pytest.mark.parametrize(
    "options", [{"table": ""}, {"table": "a\x00b"}, {"namespace": "\x00"}, {"schema": ""}]
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


# -- the table ----------------------------------------------------------------------------------


def test_table_has_separate_key_columns_bytea_ids_and_a_deadline_index(
    postgres_url: str, table: str
) -> None:
    backend = open_backend(postgres_url, table)
    inspector = sqlalchemy.inspect(backend.engine)

    assert ["namespace", "session_id", "key"] == inspector.get_pk_constraint(table)[
        "constrained_columns"
    ]
    types = {c["name"]: type(c["type"]).__name__ for c in inspector.get_columns(table)}
    assert {
        "namespace": "TEXT",
        "session_id": "BYTEA",
        "key": "BYTEA",
        "value": "BYTEA",
        "deadline": "DOUBLE_PRECISION",
    } == types
    [index] = inspector.get_indexes(table)
    assert (f"{table}_deadline", ["namespace", "deadline"]) == (
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
            f"EXPLAIN DELETE FROM \"{table}\" WHERE namespace = 'x' "
            "AND key = '\\xff'::bytea AND deadline <= 5"
        ).all()

    assert f"{table}_deadline" in " ".join(row[0] for row in plan)
    backend.close()


def test_rows_hold_the_utf8_of_the_ids_and_one_session_row(postgres_url: str, table: str) -> None:
    db = DashDatabase(open_backend(postgres_url, table, namespace="app"), ttl=60, clock=FakeClock())
    db.session("us\x00er").update({"k\x00": 1, "é": 2})

    with db.backend.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.exec_driver_sql(
            f'SELECT namespace, session_id, key, deadline FROM "{table}" ORDER BY key'
        ).all()
    assert [
        ("app", b"us\x00er", b"k\x00", None),
        ("app", b"us\x00er", "é".encode(), None),
        ("app", b"us\x00er", b"\xff", FakeClock().now + 60),
    ] == [(ns, bytes(sid), bytes(key), deadline) for ns, sid, key, deadline in rows]
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


def test_table_in_another_schema(postgres_url: str, table: str) -> None:
    schema = unique_name("schema")
    backend = open_backend(postgres_url, table)
    with backend.engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        with DashDatabase.from_url(f"{postgres_url}?table={table}&schema={schema}") as db:
            db.store_user_value("user", "key", 1)
            assert db.get_user_value("user", "key") == 1
        assert sqlalchemy.inspect(backend.engine).has_table(table, schema=schema)
        assert backend.keys("user", 0.0) == []
    finally:
        with backend.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
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

    assert isinstance(info.value.__cause__, sqlalchemy.exc.ProgrammingError)
    backend.close()


# -- namespaces -------------------------------------------------------------------------------


def test_two_namespaces_in_one_table_do_not_see_each_other(postgres_url: str, table: str) -> None:
    first = open_backend(postgres_url, table, namespace="first")
    second = open_backend(postgres_url, table, namespace="second")
    first.set_many("user", {"key": b"first"}, 10.0, 0.0)
    second.set_many("user", {"key": b"second", "more": b"x"}, 10.0, 0.0)

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
        first.set_many("user", {"key": b"first"}, None, 0.0)

        assert second.keys("user", 0.0) == []
    finally:
        with second.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE "{other}"')
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
        assert isinstance(info.value.__cause__, sqlalchemy.exc.OperationalError)
    finally:
        postgres_server.start()

    assert db.get_user_value("user", "key") == "before"
    db.store_user_value("user", "key", "after")
    assert db.get_user_value("user", "key") == "after"
    db.close()


def terminate_connections(url: str, application_name: str) -> int:
    """End, from another connection, every server process of ``application_name``; return how
    many ended."""
    import psycopg

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
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_connections_kept_between_calls_are_bounded_and_closed_with_the_backend(
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
                backend.set_many(f"user{n}", {"k": str(i).encode()}, None, 0.0)
                assert backend.get(f"user{n}", "k", 0.0) == str(i).encode()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [] == errors
    assert count_connections(postgres_url, name) <= 3 + 5
    assert len(backend._idle) <= 3  # kept between calls: at most the pool's size
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
    backend.set_many("user", {"a": b"1", "b": b"2"}, 100.0, 0.0)
    # The connection the backend keeps between calls and three in the pool, all ended below:
    # the call that finds the first one lost runs again, and checks each pooled connection
    # before using it.
    held = [backend.engine.connect() for _ in range(3)]
    for conn in held:
        conn.close()
    assert terminate_connections(postgres_url, name) == 4

    assert backend.get("user", "a", 0.0) == b"1"
    assert terminate_connections(postgres_url, name) == 1
    assert sorted(backend.keys("user", 0.0)) == ["a", "b"]
    assert terminate_connections(postgres_url, name) == 1
    backend.set_many("user", {"c": b"3"}, None, 0.0)
    assert terminate_connections(postgres_url, name) == 1
    assert backend.delete("user", "a", 0.0)
    assert terminate_connections(postgres_url, name) == 1
    backend.touch("user", 200.0, 0.0)
    assert terminate_connections(postgres_url, name) == 1
    assert backend.clear("user", 0.0) == 2
    assert terminate_connections(postgres_url, name) == 1
    assert backend.purge_expired(0.0) == 0
    backend.close()


# Values that add up to 16 MiB or more are copied into a temporary table before they are stored.
LARGE = bytes(range(256)) * 65600


@pytest.mark.parametrize("size", ["small", "large"])
def test_large_writes_store_every_item_and_the_deadline(
    postgres_url: str, table: str, size: str
) -> None:
    backend = open_backend(postgres_url, table)
    big = LARGE if size == "large" else b"small"
    items = {"a": big, "\u00e9\0key": b"", "c": big[::-1]}
    backend.set_many("user", items, None, 0.0)
    backend.set_many("timed", items, 10.0, 0.0)

    for session in ("user", "timed"):
        assert sorted(backend.keys(session, 5.0)) == sorted(items)
        for key, value in items.items():
            assert backend.get(session, key, 5.0) == value
    assert backend.keys("timed", 10.0) == []
    backend.set_many("timed", {"c": big}, None, 20.0)  # the expired session starts afresh
    assert backend.keys("timed", 1e9) == ["c"]
    backend.close()


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_failed_set_many_writes_nothing(postgres_url: str, table: str, size: str) -> None:
    big = LARGE if size == "large" else b"x"
    backend = open_backend(postgres_url, table)
    refuse = f"{table}_refuse"
    with backend.engine.begin() as conn:
        conn.exec_driver_sql(
            f'CREATE FUNCTION "{refuse}"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
            "IF NEW.key = 'boom'::bytea THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            f'CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON "{table}" '
            f'FOR EACH ROW EXECUTE FUNCTION "{refuse}"()'
        )
    try:
        backend.set_many("user", {"a": b"1", "b": b"2"}, 10.0, 0.0)

        for items in [{"boom": big}, {"a": b"new", "boom": big}]:
            # Live session: neither the values nor the deadline change.
            with pytest.raises(ddb.BackendError, match="refused"):
                backend.set_many("user", items, 20.0, 5.0)
            # Expired session: its old values are not discarded either.
            with pytest.raises(ddb.BackendError, match="refused"):
                backend.set_many("user", items, None, 15.0)

        assert backend.get("user", "a", 5.0) == b"1"
        assert sorted(backend.keys("user", 5.0)) == ["a", "b"]
        assert backend.keys("user", 10.0) == []
    finally:
        with backend.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP TABLE "{table}"')
            conn.exec_driver_sql(f'DROP FUNCTION "{refuse}"()')
        backend.close()


@pytest.mark.parametrize("new", [b"new", LARGE])
@pytest.mark.parametrize("written", [["a"], ["a", "c"]])
def test_a_write_to_an_expired_session_keeps_only_the_new_values(
    postgres_url: str, table: str, written: list[str], new: bytes
) -> None:
    backend = open_backend(postgres_url, table)
    backend.set_many("user", {"a": b"old", "b": b"old"}, 10.0, 0.0)

    backend.set_many("user", dict.fromkeys(written, new), 30.0, 20.0)

    assert sorted(backend.keys("user", 20.0)) == written
    assert [backend.get("user", key, 20.0) for key in written] == [new] * len(written)
    assert backend.keys("user", 30.0) == []
    backend.close()


def test_deleting_the_last_value_keeps_the_deadline(postgres_url: str, table: str) -> None:
    backend = open_backend(postgres_url, table)
    backend.set_many("user", {"a": b"1"}, 50.0, 0.0)

    assert backend.delete("user", "a", 0.0)
    backend.set_many("user", {"b": b"2"}, 20.0, 10.0)

    # The later deadline, 50, still holds.
    assert backend.keys("user", 40.0) == ["b"]
    assert backend.keys("user", 50.0) == []
    backend.close()


# A writer's transaction, held open while a clear() waits for it: what PostgreSQL's READ
# COMMITTED lets a single statement get wrong (its snapshot predates the lock it waits for).


def _wait_for_a_lock_wait(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as watcher:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.01)
    raise AssertionError("clear() never waited for the writer's lock")


@pytest.mark.parametrize(
    "with_deadline",
    [
        True,
        pytest.param(
            False,
            marks=pytest.mark.xfail(
                reason="known: a plain clear (no session row) that waits for a multi-key write "
                "leaves the keys the write added (see the module notes of the backend)",
                strict=True,
            ),
        ),
    ],
    ids=["session-row", "plain"],
)
def test_a_clear_that_waited_for_a_writer_removes_all_it_wrote(
    postgres_url: str, table: str, with_deadline: bool
) -> None:
    import psycopg

    backend = open_backend(postgres_url, table)
    writer = psycopg.connect(postgres_url)
    try:
        backend.set_many("user", {"a": b"old", "b": b"old"}, 100.0 if with_deadline else None, 0.0)
        rows = f'"{table}"'
        who = (backend.namespace, b"user")
        # As set_many does: the session row first (renewed), then the values, in key order.
        if with_deadline:
            writer.execute(
                f"UPDATE {rows} SET deadline = 200 WHERE namespace = %s AND session_id = %s"
                " AND key = %s",
                (*who, b"\xff"),
            )
        writer.execute(
            f"UPDATE {rows} SET value = %s WHERE namespace = %s AND session_id = %s AND key = %s",
            (b"new", *who, b"a"),
        )
        writer.execute(
            f"INSERT INTO {rows} (namespace, session_id, key, value) VALUES (%s, %s, %s, %s)",
            (*who, b"c", b"new"),
        )
        removed: list[int] = []
        clearing = threading.Thread(target=lambda: removed.append(backend.clear("user", 0.0)))
        clearing.start()
        _wait_for_a_lock_wait(postgres_url)
        writer.commit()
        clearing.join(10)

        # The writer committed before the clear got its lock: the clear comes second, whole.
        assert removed == [3]
        assert backend.keys("user", 0.0) == []
        with backend.engine.connect() as conn:
            left = conn.exec_driver_sql(f"SELECT key FROM {rows}").fetchall()
        assert left == []
    finally:
        writer.close()
        backend.close()


def test_unreachable_server_raises_backend_error_naming_it() -> None:
    port = free_port()

    with pytest.raises(ddb.BackendError, match=f"127.0.0.1:{port}") as info:
        PostgresBackend(f"postgresql://user:pw@127.0.0.1:{port}/db")

    assert ":pw@" not in str(info.value)


# -- the optional dependency ------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["sqlalchemy", "psycopg"])
def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    monkeypatch.setitem(sys.modules, missing, None)

    with pytest.raises(ImportError, match=r'pip install "\./dash_database\[postgres\]"'):
        DashDatabase.from_url("postgresql://user@127.0.0.1:5432/db")


def test_table_and_schema_names_are_quoted(postgres_url: str) -> None:
    name = unique_name('Odd "Name"; SELECT 1; --')
    backend = PostgresBackend(postgres_url, table=name, namespace="x")
    try:
        backend.set_many("user", {"key": b"v"}, 5.0, 0.0)

        assert backend.keys("user", 0.0) == ["key"]
        assert sqlalchemy.inspect(backend.engine).has_table(name)
        assert backend.purge_expired(10.0) == 1
    finally:
        with backend.engine.begin() as conn:
            backend.table.drop(conn)
        backend.close()
