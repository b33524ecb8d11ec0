"""The PostgreSQL backend's schema and statements, as plain SQL text.

``{sessions}``, ``{values}`` and ``{deadline_index}`` stand for the quoted table and index
names; ``%(name)s`` and ``%(name)b`` (bytes, sent in binary) are psycopg's named parameters.

Every statement that changes a session changes its row (``seen``, as the snapshot shows it)
first, and only while the row's ``xmin`` is unchanged, which ``UPDATE`` and ``DELETE`` check
again on the newest version after waiting for another writer. Every write changes that row, so
while it is unchanged all the statement read is current; otherwise it changes nothing and
answers ``stale``, and the backend runs it again. Writers of a session take turns on its row,
each locking it before any value row, so they never wait in a cycle.
"""

from __future__ import annotations

import re

#: Creates the tables and the index unless they exist (run under an advisory lock).
CREATE = """
CREATE TABLE IF NOT EXISTS {sessions} (
    namespace text NOT NULL, sid_hash bytea NOT NULL, session_id bytea NOT NULL,
    deadline float8, keys bigint NOT NULL, bytes bigint NOT NULL, written float8 NOT NULL,
    PRIMARY KEY (namespace, sid_hash)
);
CREATE INDEX IF NOT EXISTS {deadline_index} ON {sessions} (namespace, deadline)
    WHERE deadline IS NOT NULL;
CREATE TABLE IF NOT EXISTS {values} (
    namespace text NOT NULL, sid_hash bytea NOT NULL, key_hash bytea NOT NULL,
    key bytea NOT NULL, value bytea NOT NULL, version bigint NOT NULL,
    PRIMARY KEY (namespace, sid_hash, key_hash)
);
ALTER TABLE {values} ALTER COLUMN value SET STORAGE EXTERNAL;
"""

_LIVE = "(deadline IS NULL OR deadline > %(now)s)"
# The rows of session ``h``; ``s.`` the row of session ``h`` the statement changes.
_ROWS = "namespace = %(ns)s AND sid_hash = %(h)b"
_S_ROWS = "s.namespace = %(ns)s AND s.sid_hash = %(h)b"
_SEEN = f"{_S_ROWS} AND s.xmin = seen.row_version"

# The live session's value rows.
_LIVE_VALUES = f"""
FROM {{sessions}} s JOIN {{values}} v ON v.namespace = s.namespace AND v.sid_hash = s.sid_hash
WHERE {_S_ROWS} AND s.session_id = %(sid)b AND (s.deadline IS NULL OR s.deadline > %(now)s)
"""

#: The keys, values and versions of the keys whose digests are ``key_hashes``.
GET = f"SELECT v.key, v.value, v.version {_LIVE_VALUES} AND v.key_hash = ANY(%(key_hashes)b)"

#: The keys of a live session.
KEYS = f"SELECT v.key {_LIVE_VALUES}"

# set_many and compare_and_set: store the ``items`` (``added`` and ``count`` are their size
# and number). Answers whether it wrote, whether the
#: compare-and-set matched, whether max_sessions refused it, the session's size before and
#: after, whether the session expired (then the backend drops it with CLEAR and runs this
#: again) and whether it met a stale snapshot. Only ``ok`` figures write.
_WRITE = f"""
WITH items AS NOT MATERIALIZED (  -- read where used: a large value is never copied
    {{items}}
),
seen AS MATERIALIZED (
    SELECT xmin AS row_version, deadline, keys, bytes, {_LIVE} AS live
    FROM {{sessions}} WHERE {_ROWS}
),
-- The keys this write replaces, looked up one by one, so that a write costs O(keys
-- written): OFFSET 0 keeps the planner from scanning all of the session's keys.
replaced AS MATERIALIZED (
    SELECT sum(octet_length(v.key) + octet_length(v.value)) AS size, count(*) AS count,
        max(v.version) AS version
    FROM items i CROSS JOIN LATERAL (
        SELECT key, value, version FROM {{values}} WHERE {_ROWS} AND key_hash = i.key_hash
        OFFSET 0
    ) AS v
),
figures AS MATERIALIZED (
    SELECT f.*, f.matched AND NOT f.expired AND NOT f.refused
        AND (%(max_bytes)s::int8 IS NULL OR f.after <= %(max_bytes)s::int8) AS ok
    FROM (SELECT coalesce(s.bytes, 0) AS before,
        coalesce(s.bytes, 0) + %(added)s::int8 - coalesce(r.size, 0) AS after,
        coalesce(s.keys, 0) + %(count)s::int8 - r.count AS keys, s.deadline,
        coalesce(NOT s.live, false) AS expired,
        -- compare-and-set: the key's version is the expected one, or this write's own (it
        -- ran before and only its answer was lost), so that running it again is safe
        NOT %(check)s OR r.version IS NOT DISTINCT FROM %(expected)s::int8
            OR coalesce(r.version = %(version)s::int8, false) AS matched,
        -- max_sessions: a write that starts a session is refused unless the caller holds
        -- the table's lock and counted the live sessions (STATS) first
        %(max_sessions)s::int8 IS NOT NULL AND NOT %(locked)s AND %(count)s::int8 > 0
            AND coalesce(s.keys = 0 OR NOT s.live, true) AS refused
    FROM (SELECT) AS one LEFT JOIN seen s ON true CROSS JOIN replaced r) AS f
),
created AS (
    INSERT INTO {{sessions}} (namespace, sid_hash, session_id, deadline, keys, bytes, written)
    SELECT %(ns)s, %(h)b, %(sid)b, %(deadline)s, f.keys, f.after, %(now)s
    FROM figures f WHERE f.ok AND NOT EXISTS (SELECT FROM seen)
    ON CONFLICT (namespace, sid_hash) DO NOTHING RETURNING 1
),
updated AS (
    UPDATE {{sessions}} s  -- the deadline replaces none, and a live one only if later
    SET deadline = CASE WHEN %(deadline)s::float8 IS NULL OR f.deadline IS NULL
            THEN %(deadline)s::float8 ELSE greatest(f.deadline, %(deadline)s::float8) END,
        keys = f.keys, bytes = f.after, written = %(now)s
    FROM figures f, seen WHERE {_SEEN} AND f.ok RETURNING 1
),
session AS (SELECT FROM created UNION ALL SELECT FROM updated),
stored AS (
    INSERT INTO {{values}} (namespace, sid_hash, key_hash, key, value, version)
    SELECT %(ns)s, %(h)b, key_hash, key, value, %(version)s::int8 FROM items
    WHERE EXISTS (SELECT FROM session)
    ON CONFLICT (namespace, sid_hash, key_hash) DO UPDATE
        SET value = excluded.value, version = excluded.version
)
SELECT EXISTS (SELECT FROM session) AS written, f.matched, f.refused, f.before, f.after,
    f.expired, f.ok AND NOT EXISTS (SELECT FROM session) AS stale
FROM figures f
"""
#: Store one item, given as parameters: a value is sent as it is, not copied into an array.
WRITE = _WRITE.replace(
    "{items}", "SELECT %(kh)b::bytea AS key_hash, %(key)b::bytea AS key, %(value)b::bytea AS value"
)
#: Store several items, given as arrays.
WRITE_MANY = _WRITE.replace(
    "{items}",
    "SELECT * FROM unnest(%(kh)b::bytea[], %(key)b::bytea[], %(value)b::bytea[]) "
    "AS i (key_hash, key, value)",
)

#: The temporary table a large write copies its items into (see ``_copy.py``).
STAGE_ITEMS = """
CREATE TEMPORARY TABLE IF NOT EXISTS dash_database_items (
    key_hash bytea NOT NULL, key bytea NOT NULL, value bytea NOT NULL
) ON COMMIT DELETE ROWS
"""
COPY_ITEMS = "COPY dash_database_items (key_hash, key, value) FROM STDIN (FORMAT BINARY)"
#: Store the items copied into the temporary table.
WRITE_STAGED = _WRITE.replace("{items}", "SELECT key_hash, key, value FROM dash_database_items")

#: Remove one key of a live session; a session left with no key and no deadline goes too.
DELETE = f"""
WITH seen AS MATERIALIZED (SELECT xmin AS row_version FROM {{sessions}} WHERE {_ROWS} AND {_LIVE}),
target AS MATERIALIZED (
    SELECT octet_length(key) + octet_length(value) AS size FROM {{values}}
    WHERE {_ROWS} AND key_hash = %(kh)b AND EXISTS (SELECT FROM seen)
),
shrunk AS (
    UPDATE {{sessions}} s SET keys = s.keys - 1, bytes = s.bytes - t.size, written = %(now)s
    FROM target t, seen WHERE {_SEEN} AND (s.keys > 1 OR s.deadline IS NOT NULL) RETURNING 1
),
emptied AS (
    DELETE FROM {{sessions}} s USING target t, seen
    WHERE {_SEEN} AND s.keys <= 1 AND s.deadline IS NULL RETURNING 1
),
removed AS (
    DELETE FROM {{values}} WHERE {_ROWS} AND key_hash = %(kh)b
      AND (EXISTS (SELECT FROM shrunk) OR EXISTS (SELECT FROM emptied)) RETURNING 1
)
SELECT EXISTS (SELECT FROM removed),
    EXISTS (SELECT FROM target) AND NOT EXISTS (SELECT FROM removed) AS stale
"""

#: Remove a session: its row and values; answers how many keys a live one held. With
#: ``expired_only`` (before a write to an expired session) a live session is left alone.
CLEAR = f"""
WITH seen AS MATERIALIZED (
    SELECT xmin AS row_version, {_LIVE} AS live, keys FROM {{sessions}} WHERE {_ROWS}
),
dropped AS (
    DELETE FROM {{sessions}} s USING seen
    WHERE {_SEEN} AND NOT (seen.live AND %(expired_only)s) RETURNING 1
),
cleared AS (DELETE FROM {{values}} WHERE {_ROWS} AND EXISTS (SELECT FROM dropped))
SELECT coalesce((SELECT keys FROM seen WHERE live), 0),
    EXISTS (SELECT FROM seen WHERE NOT (live AND %(expired_only)s))
    AND NOT EXISTS (SELECT FROM dropped) AS stale
"""

#: Move a live session's deadline later (a single-row update: it sees the latest row).
TOUCH = f"""
UPDATE {{sessions}} SET deadline = %(deadline)s
WHERE {_ROWS} AND deadline > %(now)s AND deadline < %(deadline)s RETURNING 1
"""

#: Move session ``h`` to ``new_h``, discarding what ``new_h`` held (only when something moves:
#: a rename resent after a lost reply must not discard what the first one moved); answers how
#: many keys moved. Both rows are locked in digest order, so two renames never wait in a cycle.
RENAME = f"""
WITH seen AS MATERIALIZED (
    SELECT sid_hash, xmin AS row_version, keys, {_LIVE} AS live
    FROM {{sessions}} WHERE namespace = %(ns)s AND sid_hash IN (%(h)b, %(new_h)b)
),
locked AS MATERIALIZED (
    SELECT s.sid_hash FROM {{sessions}} s JOIN seen ON seen.sid_hash = s.sid_hash
    WHERE s.namespace = %(ns)s AND s.xmin = seen.row_version ORDER BY s.sid_hash FOR UPDATE OF s
),
ready AS MATERIALIZED (
    SELECT (SELECT count(*) FROM locked) = (SELECT count(*) FROM seen) AS current
),
moving AS MATERIALIZED (
    SELECT keys FROM seen WHERE sid_hash = %(h)b AND live AND (SELECT current FROM ready)
),
-- First what the new id held and the old id's expired data go; then the old id's rows move.
dropped AS (
    DELETE FROM {{sessions}} s WHERE s.namespace = %(ns)s AND (SELECT current FROM ready)
      AND s.sid_hash = CASE WHEN EXISTS (SELECT FROM moving) THEN %(new_h)b ELSE %(h)b END
    RETURNING s.sid_hash
),
dropped_values AS MATERIALIZED (
    DELETE FROM {{values}} v USING dropped d
    WHERE v.namespace = %(ns)s AND v.sid_hash = d.sid_hash RETURNING 1
),
moved AS (
    UPDATE {{sessions}} SET sid_hash = %(new_h)b, session_id = %(new_sid)b
    WHERE {_ROWS} AND EXISTS (SELECT FROM moving) AND (SELECT count(*) FROM dropped_values) >= 0
),
moved_values AS (
    UPDATE {{values}} SET sid_hash = %(new_h)b
    WHERE {_ROWS} AND EXISTS (SELECT FROM moving) AND (SELECT count(*) FROM dropped_values) >= 0
)
SELECT coalesce((SELECT keys FROM moving), 0), NOT (SELECT current FROM ready)
"""

#: The size of a live session.
SESSION_BYTES = f"SELECT bytes FROM {{sessions}} WHERE {_ROWS} AND session_id = %(sid)b AND {_LIVE}"

#: A page of live sessions with keys, in digest order, after the digest ``after``.
SESSIONS = f"""
SELECT sid_hash, session_id, keys, bytes, deadline, written FROM {{sessions}}
WHERE namespace = %(ns)s AND sid_hash > %(after)b AND keys > 0 AND {_LIVE}
ORDER BY sid_hash LIMIT %(limit)s
"""

#: A page of one live session's keys, in digest order, after the digest ``after``.
SESSION_KEYS = f"""
SELECT v.key_hash, v.key, octet_length(v.value), v.version {_LIVE_VALUES}
  AND v.key_hash > %(after)b ORDER BY v.key_hash LIMIT %(limit)s
"""

#: Live sessions (with keys), their keys and bytes, and expired sessions, from session rows
#: (also counted, under the table's lock, by a write that would start a session under
#: max_sessions; other writes never count). The live figures are those of every row less those
#: of the expired ones, found through the deadline index: the scan of every row then evaluates
#: no deadline condition.
STATS = """
WITH every AS (
    SELECT count(*) FILTER (WHERE keys > 0) AS sessions, coalesce(sum(keys), 0) AS keys,
        coalesce(sum(bytes), 0) AS bytes
    FROM {sessions} WHERE namespace = %(ns)s
),
expired AS (
    SELECT count(*) FILTER (WHERE keys > 0) AS sessions, coalesce(sum(keys), 0) AS keys,
        coalesce(sum(bytes), 0) AS bytes, count(*) AS rows
    FROM {sessions} WHERE namespace = %(ns)s AND deadline <= %(now)s
)
SELECT e.sessions - x.sessions, e.keys - x.keys, e.bytes - x.bytes, x.rows
FROM every e, expired x
"""

#: Remove at most ``limit`` expired sessions and their values; answers how many went. A row
#: locked by a writer is skipped, and one renewed since the snapshot is rechecked and kept.
PURGE = """
WITH batch AS MATERIALIZED (  -- the ORDER BY reads the deadline index, not the whole table
    SELECT ctid AS row FROM {sessions} WHERE namespace = %(ns)s AND deadline <= %(now)s
    ORDER BY deadline LIMIT %(limit)s FOR UPDATE SKIP LOCKED
),
-- Rows are removed by their addresses, and values found one session at a time (OFFSET 0):
-- a join could scan the whole namespace per session when the table's statistics predate a
-- bulk load.
dropped AS MATERIALIZED (
    DELETE FROM {sessions} WHERE ctid = ANY(ARRAY(SELECT row FROM batch))
      AND namespace = %(ns)s AND deadline <= %(now)s
    RETURNING sid_hash
),
dropped_values AS (
    DELETE FROM {values} WHERE ctid = ANY(ARRAY(
        SELECT v.row FROM dropped d CROSS JOIN LATERAL (
            SELECT ctid AS row FROM {values} WHERE namespace = %(ns)s AND sid_hash = d.sid_hash
            OFFSET 0
        ) AS v
    ))
)
SELECT count(*) FROM dropped
"""


def compiled(sessions: str, values: str, deadline_index: str) -> dict[str, str]:
    """Return every statement by name with the quoted table and index names filled in, and
    without comments or runs of whitespace: psycopg caches its parsing of a statement only
    when the text is at most 4 KiB."""
    names = {"sessions": sessions, "values": values, "deadline_index": deadline_index}
    return {
        name: " ".join(re.sub(r"--[^\n]*", "", text).split()).format(**names)
        for name, text in globals().items()
        if name.isupper() and name[0] != "_"
    }
