"""The Redis backend's bulk operations: a page of whole sessions read by one script, and a
batch of sessions written by one script (what export and import use).

READ walks the index from the cursor and returns each live session whole (``HGETALL``) while
the page has room; a session larger than the room left is read key by key in sorted order,
and the page may end inside it (the cursor then names the session and how many of its keys
were read). WRITE checks every session of the batch before its first write (a
digest that holds another id is an error, as in ``_scripts``), then writes each one it may
whole, and adds what it wrote (less what it replaced) to the store's running totals of keys
and bytes. Lua copies each argument: the caller keeps a batch to a few megabytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._base import SessionData
from .._errors import bad_cursor

if TYPE_CHECKING:
    from . import RedisBackend

__all__ = ["read_sessions", "write_sessions"]

# KEYS 1: the index. ARGV 1: now; 2: where to start ('-', '(' and a digest, or
# '<digest>|<keys of it already read>' inside a session); 3: the page's
# session count; 4: its byte bound. Returns the next cursor ('' after the last page), then per
# session its id, deadline ('' for none), 1 if it is whole here (else 0) and its 'v:<key>'
# fields and values.
READ = """
local index, now = KEYS[1], tonumber(ARGV[1])
local limit, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local base = string.sub(index, 1, -6) .. 's:'
local out, size, count, resume = {''}, 0, 0, ARGV[2]
local function live(d)
    local m = redis.call('HMGET', base .. d, 'id', 'deadline', 'bytes', 'keys')
    if m[1] and not (m[2] and tonumber(m[2]) <= now) and tonumber(m[4]) > 0 then return m end
end
-- Adds the values of a session larger than the room left, in key order from the n-th key;
-- returns true when the page is full inside it. Key order, not HSCAN's: a hash that is being
-- rehashed (any command on it moves the rehash along) may give another HSCAN batch.
local function take(d, m, n)
    local names = {}
    for _, f in ipairs(redis.call('HKEYS', base .. d)) do
        if string.byte(f) == 118 and string.byte(f, 2) == 58 then names[#names + 1] = f end
    end
    table.sort(names)
    local fields = {}
    for i = n + 1, #names do
        if #fields > 0 and size >= max_bytes then
            for _, x in ipairs({m[1], m[2] or '', 0, fields}) do out[#out + 1] = x end
            out[1] = d .. '|' .. (i - 1)
            return true
        end
        fields[#fields + 1] = names[i]
        fields[#fields + 1] = redis.call('HGET', base .. d, names[i])
        size = size + #fields[#fields]
    end
    for _, x in ipairs({m[1], m[2] or '', 1, fields}) do out[#out + 1] = x end
    return false
end
local d, n = string.match(ARGV[2], '^(%x+)|(%d+)$')
if d then
    resume = '(' .. d
    local m = live(d)
    if m then
        count = 1
        if take(d, m, tonumber(n)) then return out end
    end
end
local digests = redis.call('ZRANGEBYLEX', index, resume, '+', 'LIMIT', 0, limit)
for _, d in ipairs(digests) do
    if count >= limit or (count > 0 and size >= max_bytes) then
        out[1] = resume
        return out
    end
    local m = live(d)
    if m and size + tonumber(m[3]) <= max_bytes then
        count = count + 1
        size = size + tonumber(m[3])
        local all, fields = redis.call('HGETALL', base .. d), {}
        for i = 1, #all, 2 do
            if string.byte(all[i]) == 118 and string.byte(all[i], 2) == 58 then  -- 'v:'
                fields[#fields + 1] = all[i]
                fields[#fields + 1] = all[i + 1]
            end
        end
        for _, x in ipairs({m[1], m[2] or '', 1, fields}) do out[#out + 1] = x end
    elseif m then
        count = count + 1
        if take(d, m, 0) then return out end
    end
    resume = '(' .. d
end
if #digests == limit then out[1] = resume end
return out
"""

# KEYS 1-2: the index and the expiry set, then each session's hash. ARGV 1: now; 2: '1' to
# replace sessions that hold keys; then per session its id, deadline ('' for none), size,
# key count, the number of entries that follow and the entries ('v:<key>', the value,
# 'n:<key>', '<length>:<version>'). Returns 1 for each session written, 0 for one kept.
WRITE = """
local now, replace, index, expiry = tonumber(ARGV[1]), ARGV[2] == '1', KEYS[1], KEYS[2]
local out, found, a, keys_added, bytes_added = {}, {}, 3, 0, 0
for s = 3, #KEYS do
    local m = redis.call('HMGET', KEYS[s], 'id', 'deadline', 'keys', 'bytes')
    if m[1] and m[1] ~= ARGV[a] then
        error({err = 'ERR another session id is stored under the digest of this one'})
    end
    local live = m[1] and not (m[2] and tonumber(m[2]) <= now)
    out[s - 2] = (live and tonumber(m[3]) > 0 and not replace) and 0 or 1
    found[s - 2] = m
    a = a + 5 + tonumber(ARGV[a + 4])
end
a = 3
for s = 3, #KEYS do
    local h, m, n = KEYS[s], found[s - 2], tonumber(ARGV[a + 4])
    if out[s - 2] == 1 then
        local d, deadline, keys = string.sub(h, -32), ARGV[a + 1], tonumber(ARGV[a + 3])
        if m[1] then
            redis.call('UNLINK', h)
            redis.call('ZREM', index, d)
            redis.call('ZREM', expiry, d)
            keys_added = keys_added - (tonumber(m[3]) or 0)
            bytes_added = bytes_added - (tonumber(m[4]) or 0)
        end
        keys_added, bytes_added = keys_added + keys, bytes_added + tonumber(ARGV[a + 2])
        redis.call('HSET', h, 'id', ARGV[a], 'keys', keys, 'bytes', ARGV[a + 2], 'written', ARGV[1])
        if deadline ~= '' then
            redis.call('HSET', h, 'deadline', deadline)
            redis.call('ZADD', expiry, deadline, d)
        end
        for i = a + 5, a + 4 + n, 7000 do
            redis.call('HSET', h, unpack(ARGV, i, math.min(i + 6999, a + 4 + n)))
        end
        if keys > 0 then redis.call('ZADD', index, 0, d) end
    end
    a = a + 5 + n
end
-- The store's running totals, as _scripts' count() keeps them (see there).
local totals = string.sub(index, 1, -6) .. 'totals'
if keys_added ~= 0 and redis.call('HINCRBY', totals, 'keys', keys_added) == 0 then
    redis.call('UNLINK', totals)
elseif bytes_added ~= 0 then
    redis.call('HINCRBY', totals, 'bytes', bytes_added)
end
return out
"""

_SCRIPTS = {
    name: (hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest(), text)
    for name, text in (("READ", READ), ("WRITE", WRITE))
}
_CURSOR = re.compile(r"\([0-9a-f]{32}\Z|[0-9a-f]{32}\|\d+\Z")


def _number(seconds: float) -> bytes:  # as the backend's: text tonumber() reads back exactly
    return repr(float(seconds)).encode()


def read_sessions(
    backend: RedisBackend, now: float, cursor: str | None, limit: int, max_bytes: int
) -> tuple[list[SessionData], str | None]:
    """Return a page of live sessions with their values (see ``Backend.read_sessions``)."""
    if cursor is not None and not _CURSOR.match(cursor):
        raise bad_cursor(cursor)
    start = b"-" if cursor is None else cursor.encode()
    args = (1, backend._index, _number(now), start, limit, max_bytes)
    reply = backend._call("read sessions from", _SCRIPTS["READ"], *args)
    page = []
    for i in range(1, len(reply), 4):
        sid, deadline, whole, fields = reply[i : i + 4]
        items = {field[2:].decode(): value for field, value in zip(fields[::2], fields[1::2])}
        if items:  # none: its keys were deleted since the index listed it
            when = float(deadline) if deadline else None
            page.append(SessionData(sid.decode(), when, items, whole == 1))
    return page, reply[0].decode() or None


def write_sessions(
    backend: RedisBackend, batch: Sequence[SessionData], now: float, version: int, replace: bool
) -> list[bool]:
    """Write whole sessions with one script (see ``Backend.write_sessions``)."""
    if not batch:
        return []
    args: list[Any] = [_number(now), b"1" if replace else b""]
    for data in batch:
        fields: list[bytes] = []
        size = 0
        for key, value in data.items.items():
            name = key.encode()
            fields += (b"v:" + name, value, b"n:" + name, b"%d:%d" % (len(value), version))
            size += len(name) + len(value)
        deadline = b"" if data.deadline is None else _number(data.deadline)
        args += (data.session.encode(), deadline, size, len(data.items), len(fields), *fields)
    keys = (backend._index, backend._expiry, *(backend.key(data.session) for data in batch))
    written = backend._call("write to", _SCRIPTS["WRITE"], len(keys), *keys, *args)
    return [flag == 1 for flag in written]
