"""The stores the benchmark compares, behind one small interface.

Every store offers ``store``, ``get``, ``list_keys`` and ``delete_all`` on (session, key)
pairs, and ``populate``, which fills the large stores of the listing workloads outside the
timing. A store is described by a plain dict (``config``), so that a worker and the child
processes of the multi-process workloads can each open a handle on the same data. This module
imports only the standard library at the top: the worker loads it in both virtual
environments (this project's, and the one holding dash-database 1.0).

Every store pickles values at the highest protocol, as this project does by default.
"""

from __future__ import annotations

import pickle
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

Value = Callable[[int], Any]


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class Store:
    """One handle on one store."""

    #: whether several processes can share the data (the gunicorn case)
    multiprocess = True

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def store(self, session: str, key: str, value: Any) -> None:
        raise NotImplementedError

    def get(self, session: str, key: str) -> Any:
        raise NotImplementedError

    def list_keys(self, session: str) -> list[str]:
        raise NotImplementedError

    def delete_all(self, session: str) -> None:
        raise NotImplementedError

    def populate(self, sessions: list[str], keys: list[str], value: Value) -> str:
        """Write ``value(i)`` under key ``keys[i]`` of every session; return how."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class DashDatabaseStore(Store):
    """This project's DashDatabase on ``config["location"]``: a path, ``:memory:`` or a URL.

    It is also the ``db`` of the compare-and-set and bulk-update workloads.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        from dash_database import DashDatabase

        self.db = DashDatabase(config["location"], **config.get("options", {}))
        self.multiprocess = config["location"] != ":memory:"

    def store(self, session: str, key: str, value: Any) -> None:
        self.db.store_user_value(session, key, value)

    def get(self, session: str, key: str) -> Any:
        return self.db.get_user_value(session, key)

    def list_keys(self, session: str) -> list[str]:
        return self.db.list_stored_user_keys(session)

    def delete_all(self, session: str) -> None:
        self.db.delete_all_user_values(session)

    def populate(self, sessions: list[str], keys: list[str], value: Value) -> str:
        # The backend protocol's own write, the one every layout implements (as the import
        # command uses it), so the harness knows nothing of any backend's tables or keys. It
        # skips only what the public API repeats per session (checking ids, pickling the same
        # values), and the values are what the default serializer writes.
        items = {k: _dumps(value(i)) for i, k in enumerate(keys)}
        backend, now = self.db.backend, time.time()
        # A server answers many clients at once, so a few threads overlap their round trips;
        # SQLite has one writer whatever the number of threads.
        threads = 4 if "://" in self.config["location"] else 1

        def fill(part: list[str]) -> None:
            for session in part:
                backend.set_many(session, items, None, now, version=1)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fill, [sessions[i::threads] for i in range(threads)]))
        for session in (sessions[0], sessions[-1]):
            if self.db.list_stored_user_keys(session) != sorted(keys):
                raise RuntimeError(f"Populating the store left session {session!r} incomplete.")
        return f"Backend.set_many, one per session, {threads} thread(s)"

    def close(self) -> None:
        self.db.close()


class DashDatabaseV1Store(DashDatabaseStore):
    """dash-database 1.0 from PyPI (in its own virtual environment), on a file."""

    def __init__(self, config: dict[str, Any]) -> None:
        Store.__init__(self, config)
        import dash_database
        from dash_database import DashDatabase

        if hasattr(DashDatabase, "session"):  # 2.x has Session views; 1.0 has not
            raise RuntimeError(
                f"dash_database at {dash_database.__file__} is not 1.0: run this store with "
                "benchmarks/.venv-v1/bin/python."
            )
        self.db = DashDatabase(config["location"])

    def populate(self, sessions: list[str], keys: list[str], value: Value) -> str:
        # 1.0's format (read from its source): sqlitedict's default table "unnamed", key
        # f"{user_id}_{key_name}", value pickled at the highest protocol.
        values = [_dumps(value(i)) for i in range(len(keys))]
        conn = sqlite3.connect(self.config["location"], timeout=60)
        with conn:
            conn.execute('CREATE TABLE IF NOT EXISTS "unnamed" (key TEXT PRIMARY KEY, value BLOB)')
            conn.executemany(
                'REPLACE INTO "unnamed" (key, value) VALUES (?, ?)',
                ((f"{s}_{k}", values[i]) for s in sessions for i, k in enumerate(keys)),
            )
        conn.close()
        return "sqlite3 executemany in 1.0's sqlitedict format"

    def close(self) -> None:
        self.db.db.close()


class DiskcacheStore(Store):
    """diskcache.Cache with key (session, key), tag=session, tag index on, no eviction.

    Delete-all is ``evict(session)``; diskcache cannot list one tag's keys, so listing scans.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        import diskcache

        self.cache = diskcache.Cache(
            config["location"], tag_index=True, eviction_policy="none", size_limit=2**40
        )

    def store(self, session: str, key: str, value: Any) -> None:
        self.cache.set((session, key), value, tag=session)

    def get(self, session: str, key: str) -> Any:
        return self.cache.get((session, key))

    def list_keys(self, session: str) -> list[str]:
        return [k[1] for k in self.cache.iterkeys() if k[0] == session]

    def delete_all(self, session: str) -> None:
        self.cache.evict(session)

    def close(self) -> None:
        self.cache.close()


class RedisStore(Store):
    """Raw redis-py as an app writes it: a plain ``redis.Redis`` client (its own connection
    pool), one hash per session, HSET/HGET/HKEYS/DEL."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        import redis

        self.r = redis.Redis.from_url(config["location"])

    def store(self, session: str, key: str, value: Any) -> None:
        self.r.hset(session, key, _dumps(value))

    def get(self, session: str, key: str) -> Any:
        data = self.r.hget(session, key)
        return None if data is None else pickle.loads(data)

    def list_keys(self, session: str) -> list[str]:
        return [k.decode() for k in self.r.hkeys(session)]

    def delete_all(self, session: str) -> None:
        self.r.delete(session)

    def populate(self, sessions: list[str], keys: list[str], value: Value) -> str:
        mapping = {k: _dumps(value(i)) for i, k in enumerate(keys)}
        for start in range(0, len(sessions), 1000):
            pipe = self.r.pipeline(transaction=False)
            for s in sessions[start : start + 1000]:
                pipe.hset(s, mapping=mapping)
            pipe.execute()
        return "pipelined HSET"

    def close(self) -> None:
        self.r.close()


class PsycopgStore(Store):
    """Raw psycopg 3 statements on connections lent by SQLAlchemy's engine pool (as this
    project's PostgreSQL backend gets them): upsert/select on a (session, key) primary key,
    binary results."""

    TABLE = "bench_raw"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(config["location"])
        self._run(
            f"CREATE TABLE IF NOT EXISTS {self.TABLE} (session text NOT NULL, key text NOT NULL,"
            " value bytea NOT NULL, PRIMARY KEY (session, key))"
        )

    def _run(self, sql: str, params: tuple[Any, ...] = (), fetch: bool = False) -> list[Any]:
        conn = self.engine.raw_connection()  # checked out of the pool, back in by close()
        try:
            cursor = conn.driver_connection.execute(sql, params, binary=True)
            rows = cursor.fetchall() if fetch else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def store(self, session: str, key: str, value: Any) -> None:
        self._run(
            f"INSERT INTO {self.TABLE} VALUES (%s, %s, %b) ON CONFLICT (session, key) "
            "DO UPDATE SET value = EXCLUDED.value",
            (session, key, _dumps(value)),
        )

    def get(self, session: str, key: str) -> Any:
        sql = f"SELECT value FROM {self.TABLE} WHERE session = %s AND key = %s"
        rows = self._run(sql, (session, key), fetch=True)
        return pickle.loads(rows[0][0]) if rows else None

    def list_keys(self, session: str) -> list[str]:
        sql = f"SELECT key FROM {self.TABLE} WHERE session = %s"
        return [r[0] for r in self._run(sql, (session,), fetch=True)]

    def delete_all(self, session: str) -> None:
        self._run(f"DELETE FROM {self.TABLE} WHERE session = %s", (session,))

    def populate(self, sessions: list[str], keys: list[str], value: Value) -> str:
        values = [_dumps(value(i)) for i in range(len(keys))]
        conn = self.engine.raw_connection()
        try:
            with conn.driver_connection.cursor() as cur:
                with cur.copy(f"COPY {self.TABLE} (session, key, value) FROM STDIN") as copy:
                    for s in sessions:
                        for i, k in enumerate(keys):
                            copy.write_row((s, k, values[i]))
                cur.execute(f"ANALYZE {self.TABLE}")
            conn.commit()
        finally:
            conn.close()
        return "COPY"

    def close(self) -> None:
        self.engine.dispose()


KINDS: dict[str, type[Store]] = {
    "dash_database": DashDatabaseStore,
    "dash_database_v1": DashDatabaseV1Store,
    "diskcache": DiskcacheStore,
    "redis": RedisStore,
    "psycopg": PsycopgStore,
}


def open_store(config: dict[str, Any]) -> Store:
    """Return a new handle on the store that ``config`` describes."""
    return KINDS[config["kind"]](config)
