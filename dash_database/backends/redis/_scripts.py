"""The Lua scripts of the Redis backend, one per operation (each upper-case name), as text.

A script on one session gets its hash ``<base>s:<digest>`` as ``KEYS[1]`` and builds the names
of the others (same hash tag, so same slot) from it; its first arguments are the session id and
``now``. A script on the whole store gets ``<base>index`` and ``now``. Exact numbers (``now``,
deadlines, 62-bit versions) are stored as the text Python sent: Lua prints numbers with 14
digits, exact only for counts and sizes. Each script reads everything and checks the limits
before its first write, so an error (a key of the wrong type, a digest clash, no memory, which
Redis reports only at a script's first write) leaves the store as it was. The scripts are flat
and make few calls: running a script costs Redis far more than one plain command.
"""

from __future__ import annotations

# load(fields) reads fields of the session's hash ('id', 'deadline', ...): m, and whether the
# session is live. A hash that holds another id (two ids with one digest) is an error, raised
# before any write.
_SESSION = """
local h, id, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local function base(name) return string.sub(h, 1, -35) .. name end
local function digest() return string.sub(h, -32) end
local function batched(command, key, args)  -- unpack() is limited by Lua's C stack
    if #args <= 1000 then return redis.call(command, key, unpack(args)) end
    local out = {}
    for i = 1, #args, 1000 do
        local part = redis.call(command, key, unpack(args, i, math.min(i + 999, #args)))
        if type(part) == 'table' then for j = 1, #part do out[#out + 1] = part[j] end end
    end
    return out
end
local function load(fields)
    local m = batched('HMGET', h, fields)
    if m[1] and m[1] ~= id then
        error({err = 'ERR another session id is stored under the digest of this one'})
    end
    return m, m[1] and not (m[2] and tonumber(m[2]) <= now)
end
-- Remove the whole session (hash, key set, index entries).
local function discard(deadline)
    redis.call('UNLINK', h)
    redis.call('ZREM', base('index'), digest())
    if deadline then redis.call('ZREM', base('expiry'), digest()) end
end
"""

# The write of set_many and compare_and_set. ARGV 3 holds, separated by spaces, the deadline
# ('' for none), the version, the byte limit and the session limit ('' for none), and the
# expected version ('*': any, '': a missing key); ARGV 4 is the mode, then come key/value pairs.
# In mode 'check' or 'write' the pairs are key/length and the caller writes the values in the
# same transaction (``_multi.py``); 'check' stops after the checks. Returns 1; 0 when the version
# did not match; {size before, size after} when the byte limit refused the write; -1 when the
# session limit did. Finding its own version already stored, a compare-and-set is this very call
# run again (redis-py resends a command once when the connection was lost, perhaps after Redis
# ran it): it reports success rather than a conflict that would make the caller apply its
# change twice.
WRITE = (
    _SESSION
    + """
local deadline, version, max_bytes, max_sessions, expected =
    string.match(ARGV[3], '^(%S*) (%S*) (%S*) (%S*) (%S*)$')
local fields = {'id', 'deadline', 'keys', 'bytes'}
for i = 5, #ARGV, 2 do fields[#fields + 1] = 'n:' .. ARGV[i] end
local m, live = load(fields)
if expected ~= '*' then
    local current = live and m[5] and string.match(m[5], ':(%d+)$') or ''
    if current == version then return 1 end
    if current ~= expected then return 0 end
end

local keys = live and tonumber(m[3]) or 0
local before = live and tonumber(m[4]) or 0
local size, had = before, keys
local changes = {'id', id, 'written', ARGV[2]}
local mode = ARGV[4]
for i = 5, #ARGV, 2 do
    local key, n = ARGV[i], mode == '' and #ARGV[i + 1] or tonumber(ARGV[i + 1])
    local entry = live and m[(i + 5) / 2]
    if entry then
        size = size + n - tonumber(string.match(entry, '^%d+'))
    else
        size = size + #key + n
        keys = keys + 1
    end
    if mode == '' then
        changes[#changes + 1] = 'v:' .. key
        changes[#changes + 1] = ARGV[i + 1]
    end
    changes[#changes + 1] = 'n:' .. key
    changes[#changes + 1] = n .. ':' .. version
end
if max_bytes ~= '' and size > tonumber(max_bytes) then return {before, size} end
local index, d = base('index'), digest()
if max_sessions ~= '' and had == 0 and keys > 0 then
    -- Only a write that starts a session counts them: the sessions with keys (the index),
    -- less the expired ones among them, which stay until purged.
    local limit, n = tonumber(max_sessions), redis.call('ZCARD', index)
    if n >= limit then
        for _, other in ipairs(redis.call('ZRANGEBYSCORE', base('expiry'), '-inf', ARGV[2])) do
            if redis.call('ZSCORE', index, other) then n = n - 1 end
            if n < limit then break end
        end
        if n >= limit then return -1 end
    end
end
if mode == 'check' then return 1 end

local old = live and m[2]
if m[1] and not live then discard(m[2]) end
-- The later deadline wins; none given means the session no longer expires.
if deadline ~= '' and old and tonumber(old) > tonumber(deadline) then deadline = old end
if deadline ~= '' and deadline ~= old then
    changes[#changes + 1] = 'deadline'
    changes[#changes + 1] = deadline
    redis.call('ZADD', base('expiry'), deadline, d)
elseif deadline == '' and old then
    redis.call('HDEL', h, 'deadline')
    redis.call('ZREM', base('expiry'), d)
end
if keys ~= had or not live then
    changes[#changes + 1] = 'keys'
    changes[#changes + 1] = keys
end
if size ~= before or not live then
    changes[#changes + 1] = 'bytes'
    changes[#changes + 1] = size
end
batched('HSET', h, changes)
if had == 0 and keys > 0 then redis.call('ZADD', index, 0, d) end
return 1
"""
)

# ARGV 3 is the key. A session left with neither keys nor deadline is removed whole.
DELETE = (
    _SESSION
    + """
local key = ARGV[3]
local m, live = load({'id', 'deadline', 'keys', 'bytes', 'n:' .. key})
if not live or not m[5] then return 0 end
local keys = tonumber(m[3]) - 1
if keys == 0 and not m[2] then
    discard(false)
    return 1
end
local size = tonumber(m[4]) - #key - tonumber(string.match(m[5], '^%d+'))
redis.call('HDEL', h, 'v:' .. key, 'n:' .. key)
redis.call('HSET', h, 'keys', keys, 'bytes', size, 'written', ARGV[2])
if keys == 0 then redis.call('ZREM', base('index'), digest()) end
return 1
"""
)

KEYS = (
    _SESSION
    + """
local _, live = load({'id', 'deadline'})
if not live then return {} end
local out = {}
for _, name in ipairs(redis.call('HKEYS', h)) do
    if string.sub(name, 1, 2) == 'n:' then out[#out + 1] = string.sub(name, 3) end
end
return out
"""
)

CLEAR = (
    _SESSION
    + """
local m, live = load({'id', 'deadline', 'keys'})
if not m[1] then return 0 end
discard(m[2])
return live and tonumber(m[3]) or 0
"""
)

# ARGV 3 is the new deadline.
TOUCH = (
    _SESSION
    + """
local m, live = load({'id', 'deadline'})
if live and m[2] and tonumber(ARGV[3]) > tonumber(m[2]) then
    redis.call('HSET', h, 'deadline', ARGV[3])
    redis.call('ZADD', base('expiry'), ARGV[3], digest())
end
return 0
"""
)

# KEYS 2 is the new session's hash, ARGV 3 its id. RENAME moves a whole hash in constant time,
# whatever it holds.
RENAME = (
    _SESSION
    + """
local m, live = load({'id', 'deadline', 'keys'})
if m[1] and not live then discard(m[2]) end
if not live then return 0 end
local keys, d, t = tonumber(m[3]), digest(), string.sub(KEYS[2], -32)
if t == d then return keys end
local other = redis.call('HMGET', KEYS[2], 'id', 'deadline')
if other[1] and other[1] ~= ARGV[3] then
    error({err = 'ERR another session id is stored under the digest of this one'})
end
if other[1] then
    redis.call('UNLINK', KEYS[2])
    redis.call('ZREM', base('index'), t)
    if other[2] then redis.call('ZREM', base('expiry'), t) end
end
redis.call('RENAME', h, KEYS[2])
redis.call('HSET', KEYS[2], 'id', ARGV[3])
if keys > 0 then
    redis.call('ZREM', base('index'), d)
    redis.call('ZADD', base('index'), 0, t)
end
if m[2] then
    redis.call('ZREM', base('expiry'), d)
    redis.call('ZADD', base('expiry'), m[2], t)
end
return keys
"""
)

# ARGV 3 is where to start: '<HSCAN cursor>:<entries of its batch to skip>' ('0:0' first), 4
# the page size. Returns the cursor of the next page ('' after the last), then the name and
# entry ('<length>:<version>') of each key. A batch of HSCAN is the same while the hash does not
# change, so a page may end inside one; a small hash comes whole in one batch.
SESSION_KEYS = (
    _SESSION
    + """
local _, live = load({'id', 'deadline'})
if not live then return {''} end
local cursor, skip = string.match(ARGV[3], '^(%d+):(%d+)$')
local limit, out = tonumber(ARGV[4]), {''}
skip = tonumber(skip)
repeat
    local reply = redis.call('HSCAN', h, cursor, 'MATCH', 'n:*', 'COUNT', limit)
    local items = reply[2]
    for i = 2 * skip + 1, #items, 2 do
        if #out > 2 * limit then
            out[1] = cursor .. ':' .. (i - 1) / 2
            return out
        end
        out[#out + 1] = string.sub(items[i], 3)
        out[#out + 1] = items[i + 1]
    end
    cursor, skip = reply[1], 0
until cursor == '0'
return out
"""
)

# The index holds the digests of the sessions with keys. ARGV 2 is where to start ('-', or '('
# and the last digest of the previous page), 3 the page size. Returns the last digest read (''
# when the index ended), then id, keys, bytes, deadline and last write of each live session.
SESSIONS = """
local index, now = KEYS[1], tonumber(ARGV[1])
local digests = redis.call('ZRANGEBYLEX', index, ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {#digests == tonumber(ARGV[3]) and digests[#digests] or ''}
for _, d in ipairs(digests) do
    local m = redis.call('HMGET', string.sub(index, 1, -6) .. 's:' .. d, 'id', 'keys', 'bytes',
                         'deadline', 'written')
    if not (m[4] and tonumber(m[4]) <= now) then
        for i = 1, 5 do out[#out + 1] = m[i] end
    end
end
return out
"""

# ARGV 2 is the batch size. Removes up to that many expired sessions; returns how many.
PURGE = """
local index = KEYS[1]
local base = string.sub(index, 1, -6)
local digests = redis.call('ZRANGEBYSCORE', base .. 'expiry', '-inf', ARGV[1], 'LIMIT', 0,
                           tonumber(ARGV[2]))
for _, d in ipairs(digests) do
    redis.call('UNLINK', base .. 's:' .. d)
    redis.call('ZREM', index, d)
    redis.call('ZREM', base .. 'expiry', d)
end
return #digests
"""

# Sums a page of the index on the server, so that ``stats`` of a million sessions sends a few
# hundred small replies, not every session's figures. ARGV 2 and 3 as for SESSIONS. Returns the
# last digest read ('' when the index ended), then the page's live sessions, keys and bytes.
STATS = """
local index, now, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[3])
local digests = redis.call('ZRANGEBYLEX', index, ARGV[2], '+', 'LIMIT', 0, limit)
local base = string.sub(index, 1, -6) .. 's:'
local sessions, keys, size = 0, 0, 0
for _, d in ipairs(digests) do
    local m = redis.call('HMGET', base .. d, 'keys', 'bytes', 'deadline')
    if not (m[3] and tonumber(m[3]) <= now) then
        sessions, keys, size = sessions + 1, keys + tonumber(m[1]), size + tonumber(m[2])
    end
end
return {#digests == limit and digests[#digests] or '', sessions, keys, size}
"""
