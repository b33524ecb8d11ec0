"""The SQLite backend's schema and statements, as plain SQL text.

Every write is one statement on sqlitedict's writer connection: an ``INSERT`` into a TEMP view
whose ``INSTEAD OF`` trigger does the work, so the whole write commits or fails as one
(autocommit). The trigger reports what the write did (counts, quota figures, the file
references it dropped) into the TEMP table ``dash_database_out``, which :data:`TAKE_OUT` empties
and returns. TEMP objects exist in the writer connection only; table names inside a TEMP
trigger resolve to the main database, since the temp schema has no tables of those names.

Parameters are named (``:session``, ``:now``, ...). Statements read by the per-thread reader
connections are plain ``SELECT``\\ s.
"""

from __future__ import annotations

__all__ = [
    "CLEAR",
    "DELETE",
    "GET",
    "KEYS",
    "PURGE",
    "PUT",
    "RENAME",
    "SCHEMA",
    "SESSIONS",
    "SESSION_BYTES",
    "SESSION_KEYS",
    "STATS",
    "TAKE_OUT",
    "TEXT_VALUES",
    "TOUCH",
    "WRITER_SETUP",
]

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
        PRIMARY KEY (session, key))""",
)

_LIVE = "(s.deadline IS NULL OR s.deadline > :now)"

WRITER_SETUP = (
    "PRAGMA temp_store = MEMORY",
    "CREATE TEMP TABLE dash_database_out (kind TEXT NOT NULL, a, b, c)",
    # One row per key written, after one header row (item < 0) for the session.
    """CREATE TEMP VIEW dash_database_put (item, session, sid, expired, keys, bytes, after, ok,
        matched, deadline, now, key, value, length, version, old_ref)
        AS SELECT 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 WHERE 0""",
    """CREATE TEMP TRIGGER dash_database_put INSTEAD OF INSERT ON dash_database_put BEGIN
        INSERT INTO dash_database_out SELECT 'put', NEW.matched, NEW.bytes, NEW.after
            WHERE NEW.item < 0;
        INSERT INTO dash_database_out SELECT 'drop', value, NULL, NULL FROM dash_database_values
            WHERE NEW.item < 0 AND NEW.ok AND NEW.expired AND session = NEW.sid
            AND typeof(value) = 'text';
        DELETE FROM dash_database_values
            WHERE NEW.item < 0 AND NEW.ok AND NEW.expired AND session = NEW.sid;
        INSERT INTO dash_database_sessions (name, deadline, keys, bytes, written)
            SELECT NEW.session, NEW.deadline, NEW.keys, NEW.after, NEW.now
            WHERE NEW.item < 0 AND NEW.ok
            ON CONFLICT (name) DO UPDATE SET
                deadline = iif(NEW.expired OR deadline IS NULL OR excluded.deadline IS NULL,
                    excluded.deadline, max(deadline, excluded.deadline)),
                keys = excluded.keys, bytes = excluded.bytes, written = excluded.written;
        INSERT INTO dash_database_out SELECT 'drop', NEW.old_ref, NULL, NULL
            WHERE NEW.old_ref IS NOT NULL;
        INSERT INTO dash_database_values (session, key, value, version, length)
            SELECT id, NEW.key, NEW.value, NEW.version, NEW.length FROM dash_database_sessions
            WHERE NEW.item >= 0 AND name = NEW.session
            ON CONFLICT (session, key) DO UPDATE SET
                value = excluded.value, version = excluded.version, length = excluded.length;
    END""",
    # Removes a session and its values; reports `counted` and the value files it dropped.
    "CREATE TEMP VIEW dash_database_discard (sid, counted) AS SELECT 0, 0 WHERE 0",
    """CREATE TEMP TRIGGER dash_database_discard INSTEAD OF INSERT ON dash_database_discard
    BEGIN
        INSERT INTO dash_database_out VALUES ('n', NEW.counted, NULL, NULL);
        INSERT INTO dash_database_out SELECT 'drop', value, NULL, NULL FROM dash_database_values
            WHERE session = NEW.sid AND typeof(value) = 'text';
        DELETE FROM dash_database_values WHERE session = NEW.sid;
        DELETE FROM dash_database_sessions WHERE id = NEW.sid;
    END""",
    "CREATE TEMP VIEW dash_database_delete (sid, key, bytes, ref, now) "
    "AS SELECT 0, 0, 0, 0, 0 WHERE 0",
    """CREATE TEMP TRIGGER dash_database_delete INSTEAD OF INSERT ON dash_database_delete BEGIN
        INSERT INTO dash_database_out VALUES ('n', 1, NULL, NULL);
        INSERT INTO dash_database_out SELECT 'drop', NEW.ref, NULL, NULL
            WHERE NEW.ref IS NOT NULL;
        DELETE FROM dash_database_values WHERE session = NEW.sid AND key = NEW.key;
        UPDATE dash_database_sessions
            SET keys = keys - 1, bytes = bytes - NEW.bytes, written = NEW.now WHERE id = NEW.sid;
        DELETE FROM dash_database_sessions WHERE id = NEW.sid AND keys = 0 AND deadline IS NULL;
    END""",
    "CREATE TEMP VIEW dash_database_rename (old, expired, keys, new, name) "
    "AS SELECT 0, 0, 0, 0, 0 WHERE 0",
    """CREATE TEMP TRIGGER dash_database_rename INSTEAD OF INSERT ON dash_database_rename BEGIN
        INSERT INTO dash_database_discard SELECT NEW.new, 0
            WHERE NEW.new IS NOT NULL AND NEW.new IS NOT NEW.old;
        INSERT INTO dash_database_discard SELECT NEW.old, 0 WHERE NEW.expired;
        UPDATE dash_database_sessions SET name = NEW.name WHERE id = NEW.old AND NOT NEW.expired;
        INSERT INTO dash_database_out SELECT 'n', NEW.keys, NULL, NULL WHERE NOT NEW.expired;
    END""",
)

#: Writes the keys of one session. The keys (UTF-8) and values travel as two blobs and
#: ``:items`` (JSON) holds, per key, ``[key offset, key bytes, value offset, value bytes, is a
#: file reference, value length]``: one statement whatever the number of keys, where one
#: parameter per value would meet SQLite's cap on parameters (``substr`` of an empty blob is
#: NULL, hence the ``coalesce``). The header row computes the
#: session's size after the write before anything changes (SQLite materializes the SELECT of
#: an INSERT into a view first), so a write over ``:max_bytes`` or whose ``:expected`` version
#: does not match changes nothing.
PUT = """
WITH found AS (
    SELECT id, coalesce(deadline <= :now, 0) AS expired, keys, bytes
    FROM main.dash_database_sessions WHERE name = :session
), live AS (
    SELECT id, coalesce(expired, 0) AS expired,
        iif(expired, 0, coalesce(keys, 0)) AS keys, iif(expired, 0, coalesce(bytes, 0)) AS bytes
    FROM (SELECT 1) LEFT JOIN found
), item AS (
    SELECT CAST(j.key AS INTEGER) AS item, j.value ->> 1 AS key_bytes, j.value ->> 5 AS length,
        coalesce(CAST(substr(:keys, j.value ->> 0, j.value ->> 1) AS TEXT), '') AS key,
        iif(j.value ->> 4, CAST(substr(:values, j.value ->> 2, j.value ->> 3) AS TEXT),
            coalesce(substr(:values, j.value ->> 2, j.value ->> 3), x'')) AS value
    FROM json_each(:items) AS j
), old AS (
    SELECT item.*, v.length AS old_length, v.version AS old_version,
        iif(typeof(v.value) = 'text', v.value, NULL) AS old_ref
    FROM item LEFT JOIN main.dash_database_values AS v
        ON v.session = (SELECT id FROM live WHERE NOT expired) AND v.key = item.key
), head AS (
    SELECT live.*,
        live.bytes + coalesce(sum(iif(old_length IS NULL, key_bytes + length,
            length - old_length)), 0) AS after,
        live.keys + count(old.item) - count(old_length) AS new_keys,
        (NOT :check OR (SELECT old_version FROM old) IS :expected) AS matched
    FROM live LEFT JOIN old
), decided AS (
    SELECT *, matched AND (:max_bytes IS NULL OR after <= :max_bytes) AS ok FROM head
)
INSERT INTO dash_database_put
SELECT -1, :session, id, expired, new_keys, bytes, after, ok, matched, :deadline, :now,
    NULL, NULL, NULL, NULL, NULL FROM decided
UNION ALL
SELECT old.item, :session, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    key, value, length, :version, old_ref FROM old, decided WHERE decided.ok
ORDER BY 1
"""

DELETE = f"""
INSERT INTO dash_database_delete
SELECT s.id, v.key, length(CAST(v.key AS BLOB)) + v.length,
    iif(typeof(v.value) = 'text', v.value, NULL), :now
FROM main.dash_database_sessions AS s JOIN main.dash_database_values AS v
    ON v.session = s.id AND v.key = :key
WHERE s.name = :session AND {_LIVE}
"""

CLEAR = """
INSERT INTO dash_database_discard
SELECT id, iif(deadline <= :now, 0, keys) FROM main.dash_database_sessions WHERE name = :session
"""

#: Removes at most ``:limit`` expired sessions (one bounded transaction).
PURGE = """
INSERT INTO dash_database_discard
SELECT id, 1 FROM main.dash_database_sessions WHERE deadline <= :now ORDER BY deadline LIMIT :limit
"""

RENAME = """
INSERT INTO dash_database_rename
SELECT o.id, coalesce(o.deadline <= :now, 0), coalesce(o.keys, 0), n.id, :new
FROM (SELECT 1) LEFT JOIN main.dash_database_sessions AS o ON o.name = :session
    LEFT JOIN main.dash_database_sessions AS n ON n.name = :new
"""

TOUCH = """
UPDATE main.dash_database_sessions SET deadline = max(deadline, :deadline)
WHERE name = :session AND deadline > :now
"""

TAKE_OUT = "DELETE FROM temp.dash_database_out RETURNING kind, a, b, c"

GET = f"""
SELECT v.value, v.version, v.length
FROM main.dash_database_sessions AS s JOIN main.dash_database_values AS v
    ON v.session = s.id AND v.key = :key
WHERE s.name = :session AND {_LIVE}
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

STATS = f"""
SELECT coalesce(sum({_LIVE} AND s.keys > 0), 0), coalesce(sum(iif({_LIVE}, s.keys, 0)), 0),
    coalesce(sum(iif({_LIVE}, s.bytes, 0)), 0), coalesce(sum(s.deadline <= :now), 0)
FROM main.dash_database_sessions AS s
"""

#: The file references in the store, for the sweep of value files no row names.
TEXT_VALUES = "SELECT value FROM main.dash_database_values WHERE typeof(value) = 'text'"
