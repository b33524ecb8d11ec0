"""The stores the benchmark compares, behind one small interface.

Every store offers the same five operations on (session, key) pairs: ``store``, ``get``,
``list_keys``, ``delete_all`` and a bulk ``populate`` used only to build the large stores of
the listing workloads. This module imports nothing but the standard library at the top, so
the worker can load it in both virtual environments (the main one and the one holding
dash-database 1.0); each store imports its own library when it is opened.

A store is described by a plain dict (``config``) so that a worker, and the child processes
of the multi-process workload, can open another handle on the same data.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import threading
from typing import Any, Callable

PROTOCOL = pickle.HIGHEST_PROTOCOL


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=PROTOCOL)


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

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        """Write ``value(i)`` under every key of every session; return how it was done."""
        for s in sessions:
            for i, k in enumerate(keys):
                self.store(s, k, value(i))
        return "api"

    def close(self) -> None:
        pass


# -- the in-memory ceiling ------------------------------------------------------------------


class DictStore(Store):
    """A plain dict of dicts holding the objects themselves (no serialization at all)."""

    multiprocess = False

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.data: dict[str, dict[str, Any]] = {}

    def store(self, session: str, key: str, value: Any) -> None:
        self.data.setdefault(session, {})[key] = value

    def get(self, session: str, key: str) -> Any:
        return self.data.get(session, {}).get(key)

    def list_keys(self, session: str) -> list[str]:
        return list(self.data.get(session, ()))

    def delete_all(self, session: str) -> None:
        self.data.pop(session, None)

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        for s in sessions:
            self.data[s] = {k: value(i) for i, k in enumerate(keys)}
        return "bulk"


# -- this project ---------------------------------------------------------------------------


class _FiveMethodsStore(Store):
    """A store driven through the five methods that 1.0 and this project share."""

    db: Any

    def store(self, session: str, key: str, value: Any) -> None:
        self.db.store_user_value(session, key, value)

    def get(self, session: str, key: str) -> Any:
        return self.db.get_user_value(session, key)

    def list_keys(self, session: str) -> list[str]:
        return self.db.list_stored_user_keys(session)

    def delete_all(self, session: str) -> None:
        self.db.delete_all_user_values(session)


class DashDatabaseStore(_FiveMethodsStore):
    """This project's DashDatabase, on the backend that ``config["location"]`` names."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        from dash_database import DashDatabase

        backend = config["backend"]
        self.multiprocess = backend != "memory"
        if backend in ("memory", "sqlite"):
            self.db = DashDatabase(config["location"])
        else:
            self.db = DashDatabase.from_url(config["location"])

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        backend = self.config["backend"]
        bulk = {
            "sqlite": self._bulk_sqlite,
            "redis": self._bulk_redis,
            "postgres": self._bulk_postgres,
        }.get(backend)
        if bulk is not None:
            try:
                how = bulk(sessions, keys, value)
            except Exception as exc:  # the layout is not the one expected: use the API
                how = f"api (bulk load failed: {type(exc).__name__}: {exc})"
            else:
                if self._verify(sessions, keys, value):
                    return how
                how = "api (bulk load did not read back through the API)"
                for s in sessions:
                    self.db.delete_all_user_values(s)
        else:
            how = "api"
        for s in sessions:
            self.db.session(s).update({k: value(i) for i, k in enumerate(keys)})
        return how if how != "api" else "api (Session.update, one write per session)"

    def _verify(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> bool:
        for s in (sessions[0], sessions[len(sessions) // 2], sessions[-1]):
            if self.db.list_stored_user_keys(s) != sorted(keys):
                return False
            if self.db.get_user_value(s, keys[-1]) != value(len(keys) - 1):
                return False
        return True

    def _bulk_sqlite(
        self, sessions: list[str], keys: list[str], value: Callable[[int], Any]
    ) -> str:
        # The file layout documented in dash_database/backends/sqlite.py: table
        # "dash_database" (key TEXT PRIMARY KEY, value BLOB), key = _keys.encode(session, key),
        # value = the serializer's bytes (pickle at the highest protocol by default).
        from dash_database import _keys

        values = [_dumps(value(i)) for i in range(len(keys))]
        conn = sqlite3.connect(self.db.backend.path, timeout=60)  # type: ignore[attr-defined]
        try:
            with conn:
                conn.executemany(
                    'INSERT OR REPLACE INTO "dash_database" (key, value) VALUES (?, ?)',
                    ((_keys.encode(s, k), values[i]) for s in sessions for i, k in enumerate(keys)),
                )
        finally:
            conn.close()
        return "bulk (sqlite3 executemany into the documented table)"

    def _bulk_redis(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        from bulk_layouts import bulk_redis

        return bulk_redis(self.db, sessions, keys, [_dumps(value(i)) for i in range(len(keys))])

    def _bulk_postgres(
        self, sessions: list[str], keys: list[str], value: Callable[[int], Any]
    ) -> str:
        from bulk_layouts import bulk_postgres

        return bulk_postgres(self.db, sessions, keys, [_dumps(value(i)) for i in range(len(keys))])

    def close(self) -> None:
        self.db.close()


class DashDatabaseV1Store(_FiveMethodsStore):
    """dash-database 1.0 from PyPI (run in its own virtual environment), on a file."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        import dash_database
        from dash_database import DashDatabase

        if hasattr(DashDatabase, "session"):  # 2.x has Session views; 1.0 has not
            raise RuntimeError(
                f"dash_database at {dash_database.__file__} is not 1.0: run this store with "
                "benchmarks/.venv-v1/bin/python from the benchmarks directory"
            )
        self.db = DashDatabase(config["location"])

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        # 1.0's format (read from its source): sqlitedict's default table "unnamed"
        # (key TEXT PRIMARY KEY, value BLOB), key f"{user_id}_{key_name}", value
        # pickle.dumps(value, HIGHEST_PROTOCOL) (sqlitedict's default encoder).
        values = [_dumps(value(i)) for i in range(len(keys))]
        _bulk_sqlitedict(
            self.config["location"],
            ((f"{s}_{k}", values[i]) for s in sessions for i, k in enumerate(keys)),
        )
        return "bulk (sqlite3 executemany in 1.0's sqlitedict format)"

    def close(self) -> None:
        self.db.db.close()


# -- peers ----------------------------------------------------------------------------------


def _bulk_sqlitedict(path: str, rows: Any) -> None:
    conn = sqlite3.connect(path, timeout=60)
    try:
        with conn:
            conn.execute('CREATE TABLE IF NOT EXISTS "unnamed" (key TEXT PRIMARY KEY, value BLOB)')
            conn.executemany('REPLACE INTO "unnamed" (key, value) VALUES (?, ?)', rows)
    finally:
        conn.close()


class SqliteDictStore(Store):
    """Raw sqlitedict with autocommit=True; key f"{session}\\x1f{key}"; listing scans keys()."""

    SEP = "\x1f"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        from sqlitedict import SqliteDict

        self.d = SqliteDict(config["location"], autocommit=True)

    def store(self, session: str, key: str, value: Any) -> None:
        self.d[session + self.SEP + key] = value

    def get(self, session: str, key: str) -> Any:
        return self.d.get(session + self.SEP + key)

    def list_keys(self, session: str) -> list[str]:
        prefix = session + self.SEP
        return [k[len(prefix) :] for k in self.d if k.startswith(prefix)]

    def delete_all(self, session: str) -> None:
        prefix = session + self.SEP
        for k in [k for k in self.d if k.startswith(prefix)]:
            del self.d[k]

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        values = [_dumps(value(i)) for i in range(len(keys))]
        _bulk_sqlitedict(
            self.config["location"],
            ((s + self.SEP + k, values[i]) for s in sessions for i, k in enumerate(keys)),
        )
        return "bulk (sqlite3 executemany in sqlitedict's format)"

    def close(self) -> None:
        self.d.close()


class DiskcacheStore(Store):
    """diskcache.Cache with key (session, key) and tag=session (tag_index on, no eviction).

    Delete-all is ``evict(session)`` (indexed by tag); diskcache has no public way to list
    the keys of one tag, so listing iterates every key.
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

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        # Cache.set costs ~60 us a row even inside transact(), so write the rows directly:
        # the key and value columns come from the cache's own Disk object; the per-session key
        # bytes are made from a template and checked against Disk.put on a sample.
        import random
        import time

        disk = self.cache._disk
        first = sessions[0]
        templates = {}
        for i, k in enumerate(keys):
            db_key, raw = disk.put((first, k))
            if first.encode() not in bytes(db_key):
                raise RuntimeError("unexpected diskcache key encoding")
            templates[k] = (bytes(db_key), raw, disk.store(value(i), False))

        def row(s: str, i: int, k: str, now: float) -> tuple[Any, ...]:
            db_key, raw, (size, mode, filename, db_value) = templates[k]
            db_key = db_key.replace(first.encode(), s.encode())
            return (db_key, raw, now, None, now, 0, s, size, mode, filename, db_value)

        for s in random.Random(0).sample(sessions, min(50, len(sessions))):
            for k in keys:
                if bytes(disk.put((s, k))[0]) != row(s, 0, k, 0)[0]:
                    raise RuntimeError("diskcache key template does not match Disk.put")
        now = time.time()
        conn = sqlite3.connect(os.path.join(self.config["location"], "cache.db"), timeout=60)
        conn.execute("PRAGMA cache_size=-1000000")
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO Cache (key, raw, store_time, expire_time, access_time,"
                    " access_count, tag, size, mode, filename, value)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (row(s, i, k, now) for s in sessions for i, k in enumerate(keys)),
                )
        finally:
            conn.close()
        return "bulk (sqlite3 executemany into diskcache's Cache table, rows from its Disk)"

    def close(self) -> None:
        self.cache.close()


class Sqlite3Store(Store):
    """Raw sqlite3: WAL, synchronous=NORMAL, autocommit, one connection per thread, pickle."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.path = config["location"]
        self.local = threading.local()
        self.conns: list[sqlite3.Connection] = []
        conn = self._conn()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (session TEXT NOT NULL, key TEXT NOT NULL, "
            "value BLOB NOT NULL, PRIMARY KEY (session, key))"
        )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self.local.conn = conn
            self.conns.append(conn)
        return conn

    def store(self, session: str, key: str, value: Any) -> None:
        self._conn().execute(
            "INSERT INTO kv VALUES (?, ?, ?) ON CONFLICT (session, key) "
            "DO UPDATE SET value = excluded.value",
            (session, key, _dumps(value)),
        )

    def get(self, session: str, key: str) -> Any:
        row = (
            self._conn()
            .execute("SELECT value FROM kv WHERE session = ? AND key = ?", (session, key))
            .fetchone()
        )
        return None if row is None else pickle.loads(row[0])

    def list_keys(self, session: str) -> list[str]:
        rows = self._conn().execute("SELECT key FROM kv WHERE session = ?", (session,))
        return [r[0] for r in rows]

    def delete_all(self, session: str) -> None:
        self._conn().execute("DELETE FROM kv WHERE session = ?", (session,))

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        values = [_dumps(value(i)) for i in range(len(keys))]
        conn = self._conn()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
            ((s, k, values[i]) for s in sessions for i, k in enumerate(keys)),
        )
        conn.execute("COMMIT")
        return "bulk (executemany in one transaction)"

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


class RedisStore(Store):
    """Raw redis-py: one hash per session (HSET/HGET/HKEYS/DEL), pickled values."""

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

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        mapping = {k: _dumps(value(i)) for i, k in enumerate(keys)}
        for start in range(0, len(sessions), 1000):
            pipe = self.r.pipeline(transaction=False)
            for s in sessions[start : start + 1000]:
                pipe.hset(s, mapping=mapping)
            pipe.execute()
        return "bulk (pipelined HSET)"

    def close(self) -> None:
        self.r.close()


class PsycopgStore(Store):
    """Raw psycopg 3: upsert/select on (session, key) PRIMARY KEY, one connection per thread,
    autocommit, binary results, pickled values."""

    TABLE = "bench_raw"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.dsn = config["location"]
        self.local = threading.local()
        self.conns: list[Any] = []
        self._conn().execute(
            f"CREATE TABLE IF NOT EXISTS {self.TABLE} (session text NOT NULL, key text NOT NULL,"
            " value bytea NOT NULL, PRIMARY KEY (session, key))"
        )

    def _conn(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            import psycopg

            conn = psycopg.connect(self.dsn, autocommit=True)
            self.local.conn = conn
            self.conns.append(conn)
        return conn

    def store(self, session: str, key: str, value: Any) -> None:
        self._conn().execute(
            f"INSERT INTO {self.TABLE} VALUES (%s, %s, %s) ON CONFLICT (session, key) "
            "DO UPDATE SET value = EXCLUDED.value",
            (session, key, _dumps(value)),
        )

    def get(self, session: str, key: str) -> Any:
        row = (
            self._conn()
            .execute(
                f"SELECT value FROM {self.TABLE} WHERE session = %s AND key = %s",
                (session, key),
                binary=True,
            )
            .fetchone()
        )
        return None if row is None else pickle.loads(row[0])

    def list_keys(self, session: str) -> list[str]:
        rows = (
            self._conn()
            .execute(f"SELECT key FROM {self.TABLE} WHERE session = %s", (session,))
            .fetchall()
        )
        return [r[0] for r in rows]

    def delete_all(self, session: str) -> None:
        self._conn().execute(f"DELETE FROM {self.TABLE} WHERE session = %s", (session,))

    def populate(self, sessions: list[str], keys: list[str], value: Callable[[int], Any]) -> str:
        values = [_dumps(value(i)) for i in range(len(keys))]
        conn = self._conn()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY {self.TABLE} (session, key, value) FROM STDIN") as copy,
        ):
            for s in sessions:
                for i, k in enumerate(keys):
                    copy.write_row((s, k, values[i]))
        conn.execute(f"ANALYZE {self.TABLE}")
        return "bulk (COPY)"

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


KINDS: dict[str, type[Store]] = {
    "dict": DictStore,
    "dash_database": DashDatabaseStore,
    "dash_database_v1": DashDatabaseV1Store,
    "sqlitedict": SqliteDictStore,
    "diskcache": DiskcacheStore,
    "sqlite3": Sqlite3Store,
    "redis": RedisStore,
    "psycopg": PsycopgStore,
}


def open_store(config: dict[str, Any]) -> Store:
    """Return a new handle on the store that ``config`` describes."""
    return KINDS[config["kind"]](config)
