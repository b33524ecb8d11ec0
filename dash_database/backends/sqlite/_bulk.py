"""The SQLite backend's bulk operations: pages of whole sessions read in one transaction, and
batches of sessions written in one writer request (what export and import use).

A page is read through one borrowed read connection in one read transaction (one
snapshot): the page's sessions, then each one's values in key order, until the page's byte
bound. Value files are read after the transaction ends; when a writer replaced one meanwhile,
the page is read again in a new snapshot (as ``get_many`` does), so that a session whole in one
page shows one moment of it.

A batch is written as the rows of an ``INSERT`` into a TEMP view, as ``_sql.PUT`` does: each
key's row only collects it, and the session's own row, after its keys, claims the session
(skips it when it holds live keys, unless replacing) and writes it whole, so each session
commits or fails as a whole even when its rows span several statements. Value files are
written and synced before the statements that name them; the files of a session that was
skipped, or of a request that failed, are removed. The TEMP objects are made on first use in
the writer's connection (``IF NOT EXISTS``), so the shared schema (``_sql.py``) is unchanged.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ...exceptions import BackendError
from .._base import SessionData
from .._errors import bad_cursor
from ._files import READ_ATTEMPTS
from ._writer import WriterLost

if TYPE_CHECKING:
    from . import SqliteBackend

__all__ = ["read_sessions", "write_sessions"]

_SESSIONS = """
SELECT id, name, deadline FROM main.dash_database_sessions
WHERE id >= :first AND keys > 0 AND (deadline IS NULL OR deadline > :now) ORDER BY id LIMIT :limit
"""
#: ``:start`` is the smallest key to read: '' first, then the last key read plus NUL.
_VALUES = """
SELECT key, value, version, length FROM main.dash_database_values
WHERE session = :id AND key >= :start ORDER BY key
"""

_SETUP = (
    "CREATE TEMP TABLE IF NOT EXISTS dash_database_bulk_items"
    " (key TEXT NOT NULL, value BLOB NOT NULL, length INTEGER NOT NULL)",
    "CREATE TEMP TABLE IF NOT EXISTS dash_database_bulk_done"
    " (n INTEGER PRIMARY KEY, written INTEGER NOT NULL, files TEXT)",
    "CREATE TEMP VIEW IF NOT EXISTS dash_database_bulk"
    " (key, value, length, session, deadline, now, version, replace)"
    " AS SELECT 0, 0, 0, 0, 0, 0, 0, 0 WHERE 0",
    # A key's row (session NULL) is collected; a session's row writes what was collected.
    """CREATE TEMP TRIGGER IF NOT EXISTS dash_database_bulk
    INSTEAD OF INSERT ON dash_database_bulk BEGIN
        INSERT INTO dash_database_bulk_items SELECT NEW.key, NEW.value, NEW.length
            WHERE NEW.session IS NULL AND NEW.key IS NOT NULL;
        INSERT INTO dash_database_bulk_done (written, files)
            SELECT s.id IS NULL OR NEW.replace OR s.keys = 0 OR coalesce(s.deadline <= NEW.now, 0),
                (SELECT group_concat(value, ' ') FROM dash_database_values
                    WHERE session = s.id AND typeof(value) = 'text')
            FROM (SELECT 1) LEFT JOIN dash_database_sessions AS s ON s.name = NEW.session
            WHERE NEW.session IS NOT NULL;
        DELETE FROM dash_database_values WHERE NEW.session IS NOT NULL
            AND (SELECT written FROM dash_database_bulk_done ORDER BY n DESC LIMIT 1)
            AND session = (SELECT id FROM dash_database_sessions WHERE name = NEW.session);
        DELETE FROM dash_database_sessions WHERE NEW.session IS NOT NULL
            AND (SELECT written FROM dash_database_bulk_done ORDER BY n DESC LIMIT 1)
            AND name = NEW.session;
        INSERT INTO dash_database_sessions (name, deadline, keys, bytes, written)
            SELECT NEW.session, NEW.deadline, keys, bytes, NEW.now FROM (
                SELECT count(*) AS keys,
                    coalesce(sum(length(CAST(key AS BLOB)) + length), 0) AS bytes
                FROM dash_database_bulk_items)
            WHERE NEW.session IS NOT NULL
            AND (SELECT written FROM dash_database_bulk_done ORDER BY n DESC LIMIT 1);
        INSERT INTO dash_database_values (session, key, value, version, length)
            SELECT (SELECT id FROM dash_database_sessions WHERE name = NEW.session),
                key, value, NEW.version, length FROM dash_database_bulk_items
            WHERE NEW.session IS NOT NULL
            AND (SELECT written FROM dash_database_bulk_done ORDER BY n DESC LIMIT 1);
        DELETE FROM dash_database_bulk_items WHERE NEW.session IS NOT NULL;
    END""",
    # Left over only by a request that failed (its writer is then replaced): start clean.
    "DELETE FROM temp.dash_database_bulk_items",
    "DELETE FROM temp.dash_database_bulk_done",
)
#: Every statement has the same rows of 8 parameters (the last one padded with rows of NULLs,
#: which the trigger ignores): one text, so SQLite prepares it once per connection and the
#: statement cache holds one program, not one per shape of batch.
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
_PADDING = (None,) * 8
#: Whether each session was written, and the value files of what it discarded, as one row.
_DONE = """SELECT json_group_array(json_array(written, files)) FROM
    (SELECT written, files FROM temp.dash_database_bulk_done ORDER BY n)"""


@functools.cache
def _max_params() -> int:
    # The cap on a statement's parameters, where Python can read it (3.11+); else SQLite's
    # oldest default.
    getlimit = getattr(sqlite3.Connection, "getlimit", None)
    if getlimit is None:
        return 999
    conn = sqlite3.connect(":memory:")
    try:
        return min(int(getlimit(conn, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)), 32766)
    finally:
        conn.close()


def _parse_cursor(cursor: str | None) -> tuple[int, str | None]:
    if cursor is None:
        return 0, None
    try:
        after = json.loads(cursor)
        if isinstance(after, list) and len(after) == 1 and type(after[0]) is int:
            return after[0], None
        if isinstance(after, list) and len(after) == 2 and type(after[0]) is int:
            return after[0], str(after[1]) if isinstance(after[1], str) else _refuse(cursor)
    except ValueError:
        pass
    return _refuse(cursor)


def _refuse(cursor: str) -> NoReturn:
    raise bad_cursor(cursor)


def read_sessions(
    backend: SqliteBackend, now: float, cursor: str | None, limit: int, max_bytes: int
) -> tuple[list[SessionData], str | None]:
    """Return a page of live sessions with their values (see ``Backend.read_sessions``)."""
    after, after_key = _parse_cursor(cursor)
    for _ in range(READ_ATTEMPTS):
        page, next_cursor, files = _snapshot(backend, now, after, after_key, limit, max_bytes)
        for index, key, file_name, version, length in files:
            data = page[index]
            found = backend._load(data.session, key, now, file_name, version, length)
            if found is None:
                break  # a write replaced it since the snapshot: take a new one
            data.items[key] = found
        else:
            return page, next_cursor
    raise backend._files.replaced(backend.path)


def _snapshot(
    backend: SqliteBackend,
    now: float,
    after: int,
    after_key: str | None,
    limit: int,
    max_bytes: int,
) -> tuple[list[SessionData], str | None, list[tuple[int, str, str, int, int]]]:
    """Read a page in one read transaction; return it, the next cursor and its value files
    (session index in page, key, file name, version, length), to read after it ends."""
    files: list[tuple[int, str, str, int, int]] = []
    page: list[SessionData] = []
    next_cursor: str | None = None
    size = 0
    try:
        with backend._reader() as reader:  # its lock held: a fork waits for the transaction
            conn = reader.conn
            conn.execute("BEGIN")
            try:
                first = after if after_key is not None else after + 1
                args = {"first": first, "now": now, "limit": limit}
                rows = conn.execute(_SESSIONS, args).fetchall()
                if len(rows) == limit:
                    next_cursor = json.dumps([rows[-1][0]])
                last = after
                for sid, name, deadline in rows:
                    if page and size >= max_bytes:
                        next_cursor = json.dumps([last])
                        break
                    start = after_key + "\0" if sid == after and after_key is not None else ""
                    items: dict[str, bytes] = {}
                    cut = False
                    for key, value, version, length in conn.execute(
                        _VALUES, {"id": sid, "start": start}
                    ):
                        if items and size >= max_bytes:
                            cut = True
                            break
                        if isinstance(value, str):
                            files.append((len(page), key, value, version, length))
                        items[key] = value
                        size += length
                    last = sid
                    if items:
                        page.append(SessionData(name, deadline, items, complete=not cut))
                    if cut:
                        next_cursor = json.dumps([sid, next(reversed(items))])
                        break
            finally:
                conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise backend._error("read from", exc) from exc
    return page, next_cursor, files


def write_sessions(
    backend: SqliteBackend,
    batch: Sequence[SessionData],
    now: float,
    version: int,
    replace: bool,
) -> list[bool]:
    """Write whole sessions in one writer request (see ``Backend.write_sessions``)."""
    if not batch:
        return []
    threshold = backend.file_threshold
    made: list[list[str]] = []  # the value files written for each session
    rows: list[tuple[Any, ...]] = []
    try:
        for data in batch:
            big = (
                []
                if threshold is None
                else [k for k, v in data.items.items() if len(v) >= threshold]
            )
            names: dict[str, str] = {}
            made.append([])
            if big:
                try:
                    written = backend._files.write([(data.items[k], version) for k in big])
                except OSError as exc:
                    raise backend._error("write a value file of", exc) from exc
                names = dict(zip(big, written))
                made[-1] = written
            for key, value in data.items.items():
                rows.append((key, names.get(key, value), len(value), None, None, None, None, None))
            rows.append((None, None, None, data.session, data.deadline, now, version, replace))
        inserts = _statements(rows)
        try:
            [(answer,)] = backend._write(*((sql, None) for sql in _SETUP), *inserts, (_DONE, None))
        except WriterLost:
            made = []  # perhaps written: their files stay until purge_expired sweeps them
            raise
        except BackendError:
            if len(inserts) > 1:
                made = []  # the first statements may have committed sessions that name them
            raise
    except BaseException:
        backend._files.remove(name for names in made for name in names)
        raise
    outcome = json.loads(answer)
    for (written, dropped), new in zip(outcome, made):
        backend._files.remove((dropped or "").split() if written else new)
    return [bool(written) for written, _ in outcome]


def _statements(rows: list[tuple[Any, ...]]) -> list[tuple[str, Any]]:
    """Group ``rows`` into INSERT statements of one shape, as large as SQLite's cap on
    parameters allows (up to 256 rows)."""
    size = max(1, min(256, _max_params() // len(_PADDING)))
    sql = "INSERT INTO temp.dash_database_bulk VALUES " + ", ".join([_ROW] * size)
    statements: list[tuple[str, Any]] = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        chunk += [_PADDING] * (size - len(chunk))
        statements.append((sql, tuple(value for row in chunk for value in row)))
    return statements
