"""The Lua scripts of the Redis backend, one per operation (each upper-case name), as text.

A script on one session gets its hash ``<base>s:<digest>`` as its one key and builds the names
of the others (same hash tag, so same slot) from it; its first arguments are the session id and
``now``. A script on the whole store gets ``<base>index`` and ``now``. Exact numbers (``now``,
deadlines, 62-bit versions) are stored as the text Python sent: Lua prints numbers with 14
digits, exact only for counts and sizes. Each script reads everything and checks the quota
before its first write, so an error (a key of the wrong type, a digest clash, no memory, which
Redis reports only at a script's first write) leaves the store as it was.
"""

from __future__ import annotations

_HELPERS = """
local index, expiry, totals = base .. 'index', base .. 'expiry', base .. 'totals'
-- Changes of the totals, written once at the end of a script (see flush).
local delta = {sessions = 0, keys = 0, bytes = 0}

-- redis.call(command, key, ...) with the items of args as arguments, at most 1000 at a time:
-- Lua's unpack is limited by its C stack. Returns the replies, concatenated.
local function batched(command, key, args)
    if #args == 0 then return {} end
    if #args <= 1000 then return redis.call(command, key, unpack(args)) end
    local out = {}
    for i = 1, #args, 1000 do
        local part = redis.call(command, key, unpack(args, i, math.min(i + 999, #args)))
        if type(part) == 'table' then
            for j = 1, #part do out[#out + 1] = part[j] end
        end
    end
    return out
end

-- Return the session whose hash is base .. 's:' .. digest (nil when there is none), and the
-- values of `fields` of that hash, which start with 'id', 'keys', 'bytes', 'deadline' (the
-- default). With an id, a hash that holds another id (two ids with one digest) is an error,
-- raised before anything was written.
local function load(digest, id, fields)
    local hash = base .. 's:' .. digest
    local m = batched('HMGET', hash, fields or {'id', 'keys', 'bytes', 'deadline'})
    if not m[1] then return nil, m end
    if id and m[1] ~= id then
        error({err = 'ERR another session id is stored under the digest of this one'})
    end
    return {hash = hash, keyset = base .. 'k:' .. digest, digest = digest,
            keys = tonumber(m[2]), bytes = tonumber(m[3]), deadline = m[4]}, m
end

local function expired(s)
    return s.deadline and tonumber(s.deadline) <= now
end

-- Remove a session, its keys and its index entries; its figures leave the totals.
local function discard(s)
    redis.call('UNLINK', s.hash, s.keyset)
    redis.call('ZREM', index, s.digest)
    if s.deadline then redis.call('ZREM', expiry, s.digest) end
    delta.keys = delta.keys - s.keys
    delta.bytes = delta.bytes - s.bytes
    if s.keys > 0 then delta.sessions = delta.sessions - 1 end
end

local function flush()
    for name, change in pairs(delta) do
        if change ~= 0 then
            redis.call('HINCRBY', totals, name, change)
        end
    end
end

-- The value length before the ':' of a key's entry 'n:<key>' = '<length>:<version>'.
local function length(entry)
    return tonumber(string.match(entry, '^%d+'))
end
"""

_SESSION = (
    """
local h = KEYS[1]
local base, digest = string.sub(h, 1, -35), string.sub(h, -32)
local now = tonumber(ARGV[2])
"""
    + _HELPERS
)

_STORE = (
    """
local base = string.sub(KEYS[1], 1, -6)
local now = tonumber(ARGV[1])
"""
    + _HELPERS
)

# The write of set_many and compare_and_set. ARGV 3 is the deadline ('' for none), 4 the
# version, 5 the byte limit ('' for none), then come key/value pairs from ARGV[first]; with
# `lengths`, key/length pairs instead, and the values are left for the caller to write.
# Returns 1, or {size before, size after} when the limit refuses the write.
_WRITE = """
local function load_for_write(first)
    local fields = {'id', 'keys', 'bytes', 'deadline'}
    for i = first, #ARGV, 2 do fields[#fields + 1] = 'n:' .. ARGV[i] end
    return load(digest, ARGV[1], fields)
end

-- Write with `stored` and `m` as load_for_write(first) returned them; with `check`, only
-- check the limit.
local function write(first, stored, m, lengths, check)
    local live = stored
    if stored and expired(stored) then live = nil end
    local keys = live and live.keys or 0
    local before = live and live.bytes or 0
    local size = before
    local new = {}
    local lengths_of = {}
    for i = first, #ARGV, 2 do
        local key = ARGV[i]
        local n = lengths and tonumber(ARGV[i + 1]) or #ARGV[i + 1]
        lengths_of[i] = n
        local entry = live and m[4 + (i - first) / 2 + 1]
        if entry then
            size = size + n - length(entry)
        else
            size = size + #key + n
            keys = keys + 1
            new[#new + 1] = 0
            new[#new + 1] = key
        end
    end
    if ARGV[5] ~= '' and size > tonumber(ARGV[5]) then return {before, size} end
    if check then return 1 end
    if stored and not live then discard(stored) end

    local changes = {'id', ARGV[1], 'keys', keys, 'bytes', size, 'written', ARGV[2]}
    -- The later deadline wins; none given means the session no longer expires.
    local deadline = ARGV[3]
    if deadline ~= '' and live and live.deadline
            and tonumber(live.deadline) > tonumber(deadline) then
        deadline = live.deadline
    end
    if deadline ~= '' and not (live and live.deadline == deadline) then
        changes[#changes + 1] = 'deadline'
        changes[#changes + 1] = deadline
        redis.call('ZADD', expiry, deadline, digest)
    elseif deadline == '' and live and live.deadline then
        redis.call('HDEL', h, 'deadline')
        redis.call('ZREM', expiry, digest)
    end
    for i = first, #ARGV, 2 do
        local key = ARGV[i]
        if not lengths then
            changes[#changes + 1] = 'v:' .. key
            changes[#changes + 1] = ARGV[i + 1]
        end
        changes[#changes + 1] = 'n:' .. key
        changes[#changes + 1] = lengths_of[i] .. ':' .. ARGV[4]
    end
    batched('HSET', h, changes)
    batched('ZADD', base .. 'k:' .. digest, new)
    if not live then redis.call('ZADD', index, 0, digest) end
    delta.keys = delta.keys + keys - (live and live.keys or 0)
    delta.bytes = delta.bytes + size - before
    if keys > 0 and not (live and live.keys > 0) then delta.sessions = delta.sessions + 1 end
    flush()
    return 1
end
"""

SET_MANY = _SESSION + _WRITE + "return write(6, load_for_write(6))\n"

# set_many's write of large values, which never pass through Lua (see _multi.py). ARGV 6 is
# 'check' or 'write', then come key/length pairs.
SET_LENGTHS = (
    _SESSION
    + _WRITE
    + "local stored, m = load_for_write(7)\n"
    + "return write(7, stored, m, true, ARGV[6] == 'check')\n"
)

# ARGV 6 is the expected version ('' for a missing key), 7 the key, 8 the value. A write that
# finds its own version already stored is this very call run again (redis-py resends a command
# once when the connection was lost, perhaps after Redis ran it), so it reports success rather
# than a conflict that would make the caller apply its change twice.
COMPARE_AND_SET = (
    _SESSION
    + _WRITE
    + """
local s, m = load_for_write(7)
local entry = s and not expired(s) and m[5]
local current = entry and string.match(entry, ':(%d+)$') or ''
if current == ARGV[4] then return 1 end
if current ~= ARGV[6] then return 0 end
return write(7, s, m)
"""
)

# ARGV 3 is the key. A session left with neither keys nor deadline is removed whole.
DELETE = (
    _SESSION
    + """
local key = ARGV[3]
local s, m = load(digest, ARGV[1], {'id', 'keys', 'bytes', 'deadline', 'n:' .. key})
if not s or expired(s) or not m[5] then return 0 end
if s.keys == 1 and not s.deadline then
    discard(s)
else
    local size = #key + length(m[5])
    redis.call('HDEL', h, 'v:' .. key, 'n:' .. key)
    redis.call('ZREM', s.keyset, key)
    redis.call('HSET', h, 'keys', s.keys - 1, 'bytes', s.bytes - size, 'written', ARGV[2])
    delta.keys = -1
    delta.bytes = -size
    if s.keys == 1 then delta.sessions = -1 end
end
flush()
return 1
"""
)

KEYS = (
    _SESSION
    + """
local s = load(digest, ARGV[1])
if not s or expired(s) then return {} end
return redis.call('ZRANGE', s.keyset, 0, -1)
"""
)

CLEAR = (
    _SESSION
    + """
local s = load(digest, ARGV[1])
if not s then return 0 end
discard(s)
flush()
if expired(s) then return 0 end
return s.keys
"""
)

# ARGV 3 is the new deadline.
TOUCH = (
    _SESSION
    + """
local s = load(digest, ARGV[1])
if not s or not s.deadline or expired(s) then return 0 end
if tonumber(ARGV[3]) > tonumber(s.deadline) then
    redis.call('HSET', h, 'deadline', ARGV[3])
    redis.call('ZADD', expiry, ARGV[3], digest)
end
return 0
"""
)

# KEYS 2 is the new session's hash, ARGV 3 its id. RENAME moves a whole hash or key set in
# constant time, whatever it holds; the totals do not change.
RENAME = (
    _SESSION
    + """
local s = load(digest, ARGV[1])
local target_digest = string.sub(KEYS[2], -32)
if target_digest == digest then
    if not s then return 0 end
    if expired(s) then discard(s) flush() return 0 end
    return s.keys
end
if s and expired(s) then discard(s) s = nil end
if not s then flush() return 0 end
local target = load(target_digest, ARGV[3])
if target then discard(target) end
redis.call('RENAME', h, KEYS[2])
if redis.call('EXISTS', s.keyset) == 1 then
    redis.call('RENAME', s.keyset, base .. 'k:' .. target_digest)
end
redis.call('HSET', KEYS[2], 'id', ARGV[3])
redis.call('ZREM', index, digest)
redis.call('ZADD', index, 0, target_digest)
if s.deadline then
    redis.call('ZREM', expiry, digest)
    redis.call('ZADD', expiry, s.deadline, target_digest)
end
flush()
return s.keys
"""
)

# ARGV 3 is where to start ('-', or '(' and the last key of the previous page), 4 the page size.
# Returns whether more keys follow, then the name and entry ('<length>:<version>') of each key.
SESSION_KEYS = (
    _SESSION
    + """
local s = load(digest, ARGV[1])
if not s or expired(s) then return {0} end
local limit = tonumber(ARGV[4])
local names = redis.call('ZRANGEBYLEX', s.keyset, ARGV[3], '+', 'LIMIT', 0, limit + 1)
local out = {#names > limit and 1 or 0}
for i = 1, math.min(#names, limit) do
    out[#out + 1] = names[i]
    out[#out + 1] = redis.call('HGET', h, 'n:' .. names[i])
end
return out
"""
)

# ARGV 2 is where to start ('-', or '(' and the last digest of the previous page), 3 the page
# size. Returns the last digest read ('' when the index ended), then id, keys, bytes, deadline
# and last write of each live session that has keys.
SESSIONS = (
    _STORE
    + """
local digests = redis.call('ZRANGEBYLEX', index, ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {#digests == tonumber(ARGV[3]) and digests[#digests] or ''}
for _, d in ipairs(digests) do
    local m = redis.call('HMGET', base .. 's:' .. d, 'id', 'keys', 'bytes', 'deadline',
                         'written')
    if m[1] and tonumber(m[2]) > 0 and not (m[4] and tonumber(m[4]) <= now) then
        for i = 1, 5 do out[#out + 1] = m[i] end
    end
end
return out
"""
)

# ARGV 2 is a rank in the expiry set, 3 how many entries to read from it. Returns the totals
# (sessions with keys, keys, bytes), then how many of the entries read have expired and what
# they hold (sessions with keys, keys, bytes). Expired sessions come first in the set.
STATS = (
    _STORE
    + """
local first = tonumber(ARGV[2])
local rows = redis.call('ZRANGE', expiry, first, first + tonumber(ARGV[3]) - 1, 'WITHSCORES')
local count, sessions, keys, bytes = 0, 0, 0, 0
for i = 1, #rows, 2 do
    if tonumber(rows[i + 1]) > now then break end
    local m = redis.call('HMGET', base .. 's:' .. rows[i], 'keys', 'bytes')
    local n = tonumber(m[1]) or 0
    count = count + 1
    keys = keys + n
    bytes = bytes + (tonumber(m[2]) or 0)
    if n > 0 then sessions = sessions + 1 end
end
local t = redis.call('HMGET', totals, 'sessions', 'keys', 'bytes')
return {t[1] or '0', t[2] or '0', t[3] or '0', count, sessions, keys, bytes}
"""
)

# ARGV 2 is the batch size. Removes up to that many expired sessions; returns how many.
PURGE = (
    _STORE
    + """
local digests = redis.call('ZRANGEBYSCORE', expiry, '-inf', ARGV[1], 'LIMIT', 0,
                           tonumber(ARGV[2]))
for _, d in ipairs(digests) do
    local s = load(d)
    if s then discard(s) else redis.call('ZREM', expiry, d) end
end
flush()
return #digests
"""
)
