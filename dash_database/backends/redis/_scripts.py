"""The Lua scripts of the Redis backend, one per operation (each upper-case name), as text.

A script on one session gets its hash, the index and the expiry set as ``KEYS`` 1-3, the id and
``now`` as ``ARGV`` 1-2. Numbers are stored as the text Python sent (Lua prints 14 digits).
Each script checks everything before its first write, so an error leaves the store as it was.
Lua costs Redis far more than a plain command: Python sends field names and entries ready-made.
"""

from __future__ import annotations

import hashlib

# load(fields) reads fields of the session's hash ('id', 'deadline', ...) and whether it is
# live; a hash that holds another id (two ids, one digest) is an error. count(keys, bytes) adds
# to the store's totals (``B totals``: the sums of every session hash's 'keys' and 'bytes',
# expired or not), only what changed. discard(key, digest, deadline, keys, bytes) removes a
# session that held that many keys and bytes. unpack() takes a few thousand values: big calls
# go in batches.
_SESSION = """
local h, id, now, d = KEYS[1], ARGV[1], tonumber(ARGV[2]), string.sub(KEYS[1], -32)
local function clash()
    error({err = 'ERR another session id is stored under the digest of this one'})
end
local function load(fields)
    local m = {}
    for i = 1, #fields, 7000 do
        local part = redis.call('HMGET', h, unpack(fields, i, math.min(i + 6999, #fields)))
        for j = 1, #part do m[i + j - 1] = part[j] end
    end
    if m[1] and m[1] ~= id then clash() end
    return m, m[1] and not (m[2] and tonumber(m[2]) <= now)
end
local function count(keys, size)
    if keys == 0 and size == 0 then return end
    local totals = string.sub(KEYS[2], 1, -6) .. 'totals'
    if keys ~= 0 and redis.call('HINCRBY', totals, 'keys', keys) == 0 then
        redis.call('UNLINK', totals)  -- no key left, so no byte: an empty store leaves nothing
    elseif size ~= 0 then
        redis.call('HINCRBY', totals, 'bytes', size)
    end
end
local function discard(key, digest, deadline, keys, size)
    redis.call('UNLINK', key)
    redis.call('ZREM', KEYS[2], digest)
    if deadline then redis.call('ZREM', KEYS[3], digest) end
    count(-(tonumber(keys) or 0), -(tonumber(size) or 0))
end
"""

# set_many and compare_and_set. ARGV 3-8: deadline, byte limit, session limit ('' for none),
# expected version ('*': any, '': a missing key), version, mode; then, per key, 'v:<key>', the
# value, 'n:<key>', '<length>:<version>', as HSET takes them. In mode 'check' or 'write' each
# value is its length: the caller writes the values after the script in one transaction
# ('check' stops after the checks). Returns 1; 0: another version; {size before, size after}:
# over the byte limit; -1: over the session limit. A compare-and-set that finds its own version
# is this call run again (redis-py resends once after a lost connection): it reports success.
WRITE = """
local deadline, max_bytes, max_sessions, expected = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local mode = ARGV[8]
local fields = {'id', 'deadline', 'keys', 'bytes'}
for i = 11, #ARGV, 4 do fields[#fields + 1] = ARGV[i] end
local m, live = load(fields)
if expected ~= '*' then
    local current = live and m[5] and string.match(m[5], ':(%d+)$') or ''
    if current == ARGV[7] then return 1 end
    if current ~= expected then return 0 end
end
local keys, size = live and tonumber(m[3]) or 0, live and tonumber(m[4]) or 0
local had, before = keys, size
for i = 9, #ARGV, 4 do
    local entry, n = live and m[(i + 11) / 4], #ARGV[i + 1]
    if mode ~= '' then n = tonumber(ARGV[i + 1]) end
    if entry then size = size + n - tonumber(string.match(entry, '^%d+'))
    else size, keys = size + #ARGV[i] - 2 + n, keys + 1 end
end
if max_bytes ~= '' and size > tonumber(max_bytes) then return {before, size} end
if max_sessions ~= '' and had == 0 and keys > 0 then
    -- The sessions with keys (the index), less the expired ones not yet purged.
    local limit, n = tonumber(max_sessions), redis.call('ZCARD', KEYS[2])
    if n >= limit then
        for _, other in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])) do
            if redis.call('ZSCORE', KEYS[2], other) then n = n - 1 end
            if n < limit then break end
        end
        if n >= limit then return -1 end
    end
end
if mode == 'check' then return 1 end
local old, n = live and m[2], #ARGV
if m[1] and not live then discard(h, d, m[2], m[3], m[4]) end
-- The later deadline wins; none given means the session no longer expires.
if deadline ~= '' and old and tonumber(old) > tonumber(deadline) then deadline = old end
if deadline ~= '' and deadline ~= old then
    ARGV[n + 1], ARGV[n + 2], n = 'deadline', deadline, n + 2
    redis.call('ZADD', KEYS[3], deadline, d)
elseif deadline == '' and old then
    redis.call('HDEL', h, 'deadline')
    redis.call('ZREM', KEYS[3], d)
end
ARGV[n + 1], ARGV[n + 2], ARGV[n + 3], ARGV[n + 4] = 'written', ARGV[2], 'keys', keys
ARGV[n + 5], ARGV[n + 6], ARGV[n + 7], ARGV[n + 8] = 'bytes', size, 'id', id
for i = 9, n + 8, 7000 do redis.call('HSET', h, unpack(ARGV, i, math.min(i + 6999, n + 8))) end
if had == 0 and keys > 0 then redis.call('ZADD', KEYS[2], 0, d) end
count(keys - had, size - before)
return 1
"""

# ARGV 3-4: 'v:<key>', 'n:<key>'. A session left with neither keys nor deadline goes whole.
DELETE = """
local m, live = load({'id', 'deadline', 'keys', 'bytes', ARGV[4]})
if not live or not m[5] then return 0 end
local keys = tonumber(m[3]) - 1
if keys == 0 and not m[2] then discard(h, d, false, m[3], m[4]) return 1 end
local size = tonumber(m[4]) - #ARGV[4] + 2 - tonumber(string.match(m[5], '^%d+'))
redis.call('HDEL', h, ARGV[3], ARGV[4])
redis.call('HSET', h, 'keys', keys, 'bytes', size, 'written', ARGV[2])
if keys == 0 then redis.call('ZREM', KEYS[2], d) end
count(-1, size - tonumber(m[4]))
return 1
"""

CLEAR = """
local m, live = load({'id', 'deadline', 'keys', 'bytes'})
if m[1] then discard(h, d, m[2], m[3], m[4]) end
return live and tonumber(m[3]) or 0
"""

# ARGV 3: the new deadline.
TOUCH = """
local m, live = load({'id', 'deadline'})
if live and m[2] and tonumber(ARGV[3]) > tonumber(m[2]) then
    redis.call('HSET', h, 'deadline', ARGV[3])
    redis.call('ZADD', KEYS[3], ARGV[3], d)
end
return 0
"""

# KEYS 4: the new session's hash; ARGV 3: its id. RENAME moves a whole hash at once.
RENAME = """
local m, live = load({'id', 'deadline', 'keys', 'bytes'})
if m[1] and not live then discard(h, d, m[2], m[3], m[4]) end
if not live then return 0 end
local keys, t = tonumber(m[3]), string.sub(KEYS[4], -32)
if t == d then return keys end
local other = redis.call('HMGET', KEYS[4], 'id', 'deadline', 'keys', 'bytes')
if other[1] and other[1] ~= ARGV[3] then clash() end
if other[1] then discard(KEYS[4], t, other[2], other[3], other[4]) end
redis.call('RENAME', h, KEYS[4])
redis.call('HSET', KEYS[4], 'id', ARGV[3])
if keys > 0 then redis.call('ZREM', KEYS[2], d) redis.call('ZADD', KEYS[2], 0, t) end
if m[2] then redis.call('ZREM', KEYS[3], d) redis.call('ZADD', KEYS[3], m[2], t) end
return keys
"""

# ARGV 3: where to start, '<HSCAN cursor>:<the last field listed from its batch>' (nothing
# after the colon: the whole batch); 4: the page size. Returns the next cursor ('' after the
# last page), then each key and its '<length>:<version>'. A page may end inside an HSCAN batch:
# the batch is listed in field order, so the next page takes its fields after the last one
# listed, however the batch changed meanwhile (a count of entries to skip would skip others).
# As with HSCAN itself, a key may come twice while Redis rehashes the hash; none is lost.
SESSION_KEYS = """
local _, live = load({'id', 'deadline'})
if not live then return {''} end
local cursor, after = string.match(ARGV[3], '^(%d+):(.*)$')
local limit, out = tonumber(ARGV[4]), {''}
repeat
    local reply = redis.call('HSCAN', h, cursor, 'MATCH', 'n:*', 'COUNT', limit)
    local fields, at = {}, {}
    for i = 1, #reply[2], 2 do
        local field = reply[2][i]
        if field > after then fields[#fields + 1], at[field] = field, i end
    end
    table.sort(fields)
    for _, field in ipairs(fields) do
        if #out > 2 * limit then out[1] = cursor .. ':' .. after return out end
        out[#out + 1] = string.sub(field, 3)
        out[#out + 1] = reply[2][at[field] + 1]
        after = field
    end
    cursor, after = reply[1], ''
until cursor == '0'
return out
"""

# KEYS 1: the index; ARGV 2: where to start ('-', or '(' and the last digest of the previous
# page); 3: the page size. Returns the last digest read ('' at the end), then id, keys, bytes,
# deadline and last write of each live session.
SESSIONS = """
local now, base = tonumber(ARGV[1]), string.sub(KEYS[1], 1, -6)
local digests = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {#digests == tonumber(ARGV[3]) and digests[#digests] or ''}
for _, d in ipairs(digests) do
    local m = redis.call('HMGET', base .. 's:' .. d, 'id', 'keys', 'bytes', 'deadline', 'written')
    if not (m[4] and tonumber(m[4]) <= now) then for i = 1, 5 do out[#out + 1] = m[i] end end
end
return out
"""

# KEYS: the index and the expiry set; ARGV 2: the batch size. Removes the first expired
# sessions of the expiry set (its first ranks: ZREMRANGEBYRANK, not a ZREM each) with a few
# variadic commands; UNLINK frees their hashes outside the script. Returns how many it removed.
PURGE = """
local base = string.sub(KEYS[1], 1, -6)
local digests = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #digests == 0 then return 0 end
local hashes, keys, size = {}, 0, 0
for i, d in ipairs(digests) do
    hashes[i] = base .. 's:' .. d
    local m = redis.call('HMGET', hashes[i], 'keys', 'bytes')
    keys, size = keys + (tonumber(m[1]) or 0), size + (tonumber(m[2]) or 0)
end
redis.call('UNLINK', unpack(hashes))
redis.call('ZREM', KEYS[1], unpack(digests))
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, #digests - 1)
if keys ~= 0 and redis.call('HINCRBY', base .. 'totals', 'keys', -keys) == 0 then
    redis.call('UNLINK', base .. 'totals')
elseif size ~= 0 then
    redis.call('HINCRBY', base .. 'totals', 'bytes', -size)
end
return #digests
"""

# KEYS: the index and the expiry set; ARGV 2: the rank in the expiry set where to start; 3: the
# page size. The totals count expired sessions too: this subtracts those of the expired
# sessions from rank ARGV 2 on, a page at a time (O(page), by rank). Returns the number of
# sessions in the index, the totals of keys and bytes, the number of expired sessions, then
# the page's expired sessions that hold keys, their keys and their bytes.
STATS = """
local index, first = KEYS[1], tonumber(ARGV[2])
local base = string.sub(index, 1, -6)
local t = redis.call('HMGET', base .. 'totals', 'keys', 'bytes')
local expired = redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[1])
local last = math.min(first + tonumber(ARGV[3]), expired) - 1
local sessions, keys, size = 0, 0, 0
if last >= first then
    for _, d in ipairs(redis.call('ZRANGE', KEYS[2], first, last)) do
        local m = redis.call('HMGET', base .. 's:' .. d, 'keys', 'bytes')
        local n = tonumber(m[1]) or 0
        if n > 0 then
            sessions, keys, size = sessions + 1, keys + n, size + (tonumber(m[2]) or 0)
        end
    end
end
local all = redis.call('ZCARD', index)
return {all, tonumber(t[1]) or 0, tonumber(t[2]) or 0, expired, sessions, keys, size}
"""

#: Each script by name: the SHA that EVALSHA sends instead of the text, and the text (after the
#: prelude, which the two scripts on the whole store ignore).
SCRIPTS = {
    name: (
        hashlib.sha1((_SESSION + text).encode(), usedforsecurity=False).hexdigest(),
        _SESSION + text,
    )
    for name, text in dict(globals()).items()
    if name.isupper()
}
