"""The SQLite backend's schema and statements, as plain SQL text.

A write is one statement on sqlitedict's writer connection (autocommit), so it commits or fails
as a whole: an ``INSERT`` into a TEMP view whose ``INSTEAD OF`` trigger does the work, and whose
``RETURNING`` clause reports what it did (counts, quota figures, the value files it dropped).
TEMP objects exist in the writer connection only; table names inside a TEMP trigger resolve to
the main database, since the temp schema has no tables of those names. Statements read by the
read connections are plain ``SELECT``\\ s. Parameters are named (``:session``).
:func:`put` assembles a write's statements from its rows.
"""

from __future__ import annotations

import functools
from typing import Any

#: The tables in the database file. A session's figures live in its row, so sizes, quotas
#: and enumeration never read values; values refer to their session by its integer id, so a
#: long session id is stored once and a rename changes one row.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS dash_database_sessions (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        deadline REAL,
        keys INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        written REAL NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS dash_database_sessions_deadline
        ON dash_database_sessions (deadline) WHERE deadline IS NOT NULL""",
    # value: the bytes (BLOB), or the name of a value file (TEXT); length: the value's length.
    """CREATE TABLE IF NOT EXISTS dash_database_values (
        session INTEGER NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        version INTEGER NOT NULL,
        length INTEGER NOT NULL,
        PRIMARY KEY (session, key)) WITHOUT ROWID""",
)

_LIVE = "(s.deadline IS NULL OR s.deadline > :now)"
# The value files among a session's values, as one space-separated string.
_FILES = (
    "(SELECT group_concat(value, ' ') FROM main.dash_database_values"
    " WHERE session = {} AND typeof(value) = 'text')"
)

# The expired sessions a purge removes next, soonest expired first (through the deadline index).
_BATCH = (
    "SELECT id FROM main.dash_database_sessions WHERE deadline <= {now}"
    " ORDER BY deadline LIMIT {size}"
)

#: The value files of that batch, once in dash_database_batch. Not a join on the batch: the
#: planner, knowing nothing of a TEMP table's size, would scan every value for it.
PURGE_FILES = (
    "SELECT group_concat(value, ' ') FROM dash_database_values"
    " WHERE session IN (SELECT id FROM dash_database_batch) AND typeof(value) = 'text'"
)

WRITER_SETUP = (
    "PRAGMA temp_store = MEMORY",
    # A write's keys, as its rows arrive (see PUT), and the last write's figures.
    "CREATE TEMP TABLE dash_database_items (key TEXT NOT NULL, value BLOB NOT NULL, length)",
    "CREATE TEMP TABLE dash_database_state (one INTEGER PRIMARY KEY, sid, expired, keys, bytes,"
    " after, matched, full, files, ok)",
    """CREATE TEMP VIEW dash_database_put (key, value, length, last, session, count, deadline,
        now, version, max_bytes, max_sessions, check_version, expected)
        AS SELECT 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 WHERE 0""",
    """CREATE TEMP TRIGGER dash_database_put INSTEAD OF INSERT ON dash_database_put BEGIN
        INSERT INTO dash_database_items SELECT NEW.key, NEW.value, NEW.length
            WHERE NEW.key IS NOT NULL;
        REPLACE INTO dash_database_state
        SELECT 1, *, matched AND NOT full AND (NEW.max_bytes IS NULL OR after <= NEW.max_bytes)
        FROM (
            SELECT s.id, coalesce(s.deadline <= NEW.now, 0) AS expired,
                iif(s.deadline <= NEW.now, 0, coalesce(s.keys, 0)) + count(i.key)
                    - count(v.length),
                iif(s.deadline <= NEW.now, 0, coalesce(s.bytes, 0)) AS bytes,
                iif(s.deadline <= NEW.now, 0, coalesce(s.bytes, 0)) + coalesce(sum(i.length
                    + iif(v.length IS NULL, length(CAST(i.key AS BLOB)), -v.length)), 0) AS after,
                count(i.key) = NEW.count
                    AND (NOT NEW.check_version OR max(v.version) IS NEW.expected) AS matched,
                -- Only a write that starts a session, with a limit, counts the live sessions.
                iif(NEW.max_sessions IS NULL OR NEW.count = 0
                    OR NOT (s.id IS NULL OR coalesce(s.deadline <= NEW.now, 0) OR s.keys = 0), 0,
                    (SELECT count(*) >= NEW.max_sessions FROM dash_database_sessions
                        WHERE keys > 0 AND (deadline IS NULL OR deadline > NEW.now))) AS full,
                -- The value files the write drops: the replaced ones, or all of an expired
                -- session.
                iif(s.deadline <= NEW.now, (SELECT group_concat(value, ' ')
                    FROM dash_database_values WHERE session = s.id AND typeof(value) = 'text'),
                    group_concat(iif(typeof(v.value) = 'text', v.value, NULL), ' '))
            FROM (SELECT 1) LEFT JOIN dash_database_sessions AS s ON s.name = NEW.session
                LEFT JOIN dash_database_items AS i
                LEFT JOIN dash_database_values AS v ON v.session = s.id
                    AND coalesce(s.deadline > NEW.now, 1) AND v.key = i.key
        ) WHERE NEW.last;
        DELETE FROM dash_database_values WHERE NEW.last
            AND session = (SELECT sid FROM dash_database_state WHERE ok AND expired);
        INSERT INTO dash_database_sessions (name, deadline, keys, bytes, written)
            SELECT NEW.session, NEW.deadline, keys, after, NEW.now FROM dash_database_state
            WHERE NEW.last AND ok
            ON CONFLICT (name) DO UPDATE SET
                deadline = iif((SELECT expired FROM dash_database_state)
                    OR deadline IS NULL OR excluded.deadline IS NULL,
                    excluded.deadline, max(deadline, excluded.deadline)),
                keys = excluded.keys, bytes = excluded.bytes, written = excluded.written;
        INSERT INTO dash_database_values (session, key, value, version, length)
            SELECT (SELECT id FROM dash_database_sessions WHERE name = NEW.session),
                key, value, NEW.version, length FROM dash_database_items
            WHERE NEW.last AND (SELECT ok FROM dash_database_state)
            ON CONFLICT (session, key) DO UPDATE SET
                value = excluded.value, version = excluded.version, length = excluded.length;
        DELETE FROM dash_database_items WHERE NEW.last;
    END""",
    # Removes a session and its values.
    "CREATE TEMP VIEW dash_database_discard (sid, counted, files) AS SELECT 0, 0, 0 WHERE 0",
    """CREATE TEMP TRIGGER dash_database_discard INSTEAD OF INSERT ON dash_database_discard
    BEGIN
        DELETE FROM dash_database_values WHERE session = NEW.sid;
        DELETE FROM dash_database_sessions WHERE id = NEW.sid;
    END""",
    # Removes a batch of expired sessions in one statement (see PURGE); what it removed, and
    # their value files, land in dash_database_purged.
    "CREATE TEMP TABLE dash_database_batch (id INTEGER PRIMARY KEY)",
    "CREATE TEMP TABLE dash_database_purged (one INTEGER PRIMARY KEY, count, files)",
    "CREATE TEMP VIEW dash_database_purge (now, size) AS SELECT 0, 0 WHERE 0",
    f"""CREATE TEMP TRIGGER dash_database_purge INSTEAD OF INSERT ON dash_database_purge BEGIN
        DELETE FROM dash_database_batch;
        INSERT INTO dash_database_batch {_BATCH.format(now="NEW.now", size="NEW.size")};
        REPLACE INTO dash_database_purged SELECT 1, (SELECT count(*) FROM dash_database_batch),
            ({PURGE_FILES});
        DELETE FROM dash_database_values WHERE session IN (SELECT id FROM dash_database_batch);
        DELETE FROM dash_database_sessions WHERE id IN (SELECT id FROM dash_database_batch);
    END""",
    "CREATE TEMP VIEW dash_database_delete (sid, key, bytes, file, now) "
    "AS SELECT 0, 0, 0, 0, 0 WHERE 0",
    """CREATE TEMP TRIGGER dash_database_delete INSTEAD OF INSERT ON dash_database_delete BEGIN
        DELETE FROM dash_database_values WHERE session = NEW.sid AND key = NEW.key;
        UPDATE dash_database_sessions
            SET keys = keys - 1, bytes = bytes - NEW.bytes, written = NEW.now WHERE id = NEW.sid;
        DELETE FROM dash_database_sessions WHERE id = NEW.sid AND keys = 0 AND deadline IS NULL;
    END""",
    "CREATE TEMP VIEW dash_database_rename (old, expired, keys, new, name, files) "
    "AS SELECT 0, 0, 0, 0, 0, 0 WHERE 0",
    """CREATE TEMP TRIGGER dash_database_rename INSTEAD OF INSERT ON dash_database_rename BEGIN
        INSERT INTO dash_database_discard SELECT NEW.new, 0, NULL
            WHERE NEW.new IS NOT NULL AND NEW.new IS NOT NEW.old
            AND NEW.old IS NOT NULL AND NOT NEW.expired;
        INSERT INTO dash_database_discard SELECT NEW.old, 0, NULL WHERE NEW.expired;
        UPDATE dash_database_sessions SET name = NEW.name WHERE id = NEW.old AND NOT NEW.expired;
    END""",
)

#: Writes the keys of one session: ``{rows}`` rows of 13 values each (see the view above),
#: where only the final row of the write has ``last`` set. Its figures are computed before
#: anything changes, so a write over ``max_bytes`` or ``max_sessions``, or whose key's version
#: is not ``expected`` (when ``check_version``), changes nothing. A write of many keys sends
#: its first rows as earlier statements, which only collect them: one statement whatever the
#: number of keys would meet SQLite's cap on parameters. The final row returns the figures as
#: one JSON array, from one subquery: one statement and one row to step through, since each
#: step costs the writer thread a wait for the GIL while other threads run.
PUT = "INSERT INTO dash_database_put VALUES {rows}"
ROW = "(?, ?, ?, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
LAST_ROW = "(?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
RETURNING = """ RETURNING iif(last, (SELECT json_array(matched, full, bytes, after, ok, files)
    FROM temp.dash_database_state), NULL)"""

# Keys per statement of a write: 3 parameters each (11 for the last) stay below SQLite's
# oldest cap of 999 parameters.
_CHUNK = 300


def put(rows: list[tuple[Any, ...]], write: tuple[Any, ...]) -> list[tuple[str, tuple[Any, ...]]]:
    """Return the statements of one write, as ``(sql, parameters)``: ``rows`` are its keys'
    ``(key, value or file name, length)``, ``write`` the final row's other 10 parameters."""
    last = (*(rows[-1] if rows else (None,) * 3), *write)
    rows = rows[:-1]
    chunks = [rows[i : i + _CHUNK] for i in range(0, len(rows), _CHUNK)] or [[]]
    requests = [(_put_sql(len(c), False), _flat(c)) for c in chunks]
    requests[-1] = (_put_sql(len(chunks[-1]), True), (*requests[-1][1], *last))
    return requests


@functools.cache
def _put_sql(rows: int, last: bool) -> str:
    sql = PUT.format(rows=", ".join([ROW] * rows + [LAST_ROW] * last))
    return sql + RETURNING if last else sql


def _flat(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return tuple(value for row in rows for value in row)


#: Returns 1 and the value file name, if any, when a live key was removed.
DELETE = f"""
INSERT INTO dash_database_delete
SELECT s.id, v.key, length(CAST(v.key AS BLOB)) + v.length,
    iif(typeof(v.value) = 'text', v.value, NULL), :now
FROM main.dash_database_sessions AS s JOIN main.dash_database_values AS v
    ON v.session = s.id AND v.key = :key
WHERE s.name = :session AND {_LIVE}
RETURNING 1, file
"""

#: Returns how many live keys it removed, and the value files.
CLEAR = f"""
INSERT INTO dash_database_discard
SELECT id, iif(deadline <= :now, 0, keys), {_FILES.format("id")}
FROM main.dash_database_sessions WHERE name = :session
RETURNING counted, files
"""

#: Removes at most ``:limit`` expired sessions, and their values, in one statement (a bounded
#: transaction); returns one row: how many it removed, and their value files. Set-based rather
#: than a row per session, since each row returned costs the writer thread a step.
PURGE = """
INSERT INTO dash_database_purge VALUES (:now, :limit)
RETURNING (SELECT count FROM temp.dash_database_purged),
    (SELECT files FROM temp.dash_database_purged)
"""

#: The batch PURGE removes, as a query of its own (to check its plan).
PURGE_BATCH = _BATCH.format(now=":now", size=":limit")

#: Returns how many keys moved, and the value files of what it discarded. The new name's data
#: goes only when something moves, so a rename resent after a lost reply loses nothing.
RENAME = f"""
INSERT INTO dash_database_rename
SELECT o.id, coalesce(o.deadline <= :now, 0), coalesce(o.keys, 0), n.id, :new,
    coalesce(iif(n.id IS NOT o.id AND o.id IS NOT NULL AND NOT coalesce(o.deadline <= :now, 0),
        {_FILES.format("n.id")}, NULL), '') || ' '
        || coalesce(iif(o.deadline <= :now, {_FILES.format("o.id")}, NULL), '')
FROM (SELECT 1) LEFT JOIN main.dash_database_sessions AS o ON o.name = :session
    LEFT JOIN main.dash_database_sessions AS n ON n.name = :new
RETURNING iif(expired, 0, keys), files
"""

TOUCH = """
UPDATE main.dash_database_sessions SET deadline = max(deadline, :deadline)
WHERE name = :session AND deadline > :now
"""

#: Parameters: the key, the session, ``now`` (positional: cheaper to bind than names).
GET = """
SELECT v.value, v.version, v.length
FROM main.dash_database_sessions AS s JOIN main.dash_database_values AS v
    ON v.session = s.id AND v.key = ?
WHERE s.name = ? AND (s.deadline IS NULL OR s.deadline > ?)
"""

#: ``{keys}`` placeholders after the session and ``now``.
GET_MANY = """
SELECT v.key, v.value, v.version, v.length
FROM main.dash_database_sessions AS s JOIN main.dash_database_values AS v ON v.session = s.id
WHERE s.name = ? AND (s.deadline IS NULL OR s.deadline > ?) AND v.key IN ({keys})
"""

KEYS = f"""
SELECT v.key FROM main.dash_database_sessions AS s
JOIN main.dash_database_values AS v ON v.session = s.id
WHERE s.name = :session AND {_LIVE}
"""

SESSION_BYTES = f"""
SELECT s.bytes FROM main.dash_database_sessions AS s WHERE s.name = :session AND {_LIVE}
"""

SESSIONS = f"""
SELECT s.id, s.name, s.keys, s.bytes, s.deadline, s.written FROM main.dash_database_sessions AS s
WHERE s.id > :after AND s.keys > 0 AND {_LIVE} ORDER BY s.id LIMIT :limit
"""

#: ``:start`` is the smallest key of the page: '' first, then the last key listed plus NUL.
SESSION_KEYS = f"""
SELECT v.key, v.length, v.version FROM main.dash_database_sessions AS s
JOIN main.dash_database_values AS v ON v.session = s.id
WHERE s.name = :session AND {_LIVE} AND v.key >= :start ORDER BY v.key LIMIT :limit
"""

#: Every session's figures less the expired ones' (found through the deadline index), so the
#: scan of every row evaluates no deadline condition.
STATS = """
SELECT a.sessions - e.sessions, a.keys - e.keys, a.bytes - e.bytes, e.expired
FROM (SELECT coalesce(sum(keys > 0), 0) AS sessions, coalesce(sum(keys), 0) AS keys,
        coalesce(sum(bytes), 0) AS bytes
    FROM main.dash_database_sessions) AS a,
    (SELECT coalesce(sum(keys > 0), 0) AS sessions, coalesce(sum(keys), 0) AS keys,
        coalesce(sum(bytes), 0) AS bytes, count(*) AS expired
    FROM main.dash_database_sessions WHERE deadline <= :now) AS e
"""

#: The file references in the store, for the sweep of value files no row names.
FILE_VALUES = "SELECT value FROM main.dash_database_values WHERE typeof(value) = 'text'"
