"""The Lua scripts of the Redis store (`redis.py`): each runs atomically in Redis, in one round trip."""

from __future__ import annotations

from typing import Final

__all__ = ["BUCKETS", "INDEX_NAMES", "NAMES_IN_NFC", "READINGS", "TRIM", "TRIM_OLDER", "WRITE"]

# Summarises up to ARGV[4] readings of KEYS[1] scored from ARGV[1] to ARGV[2], after skipping ARGV[3] at
# the start, per bucket of ARGV[5] microseconds. Returns how many were read, the last one's score and how
# many at the end share it (where the next call resumes), then 7 per bucket, partial at the chunk's edges:
# start, count, min, max, sum, first, last, as exact text (%.17g; a Lua number would become an integer).
# The sum is of the values divided by 2^ARGV[6] (exact): 0 but to sum again a bucket whose sum overflowed.
# The value is found in the member's JSON by a pattern (orjson writes no spaces): twice as fast as
# cjson.decode. Summarised here, a million readings take a fifth of the time they take to parse in Python,
# and none of it on this process's event loop.
BUCKETS: Final = """
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2],
  'WITHSCORES', 'LIMIT', ARGV[3], ARGV[4])
local step, shift = tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {#members / 2, '', 0}
local start, count, low, high, total, first, last
local function close()
  for _, x in ipairs({start, count, low, high, total, first, last}) do
    out[#out + 1] = string.format('%.17g', x)
  end
end
for i = 1, #members, 2 do
  local ts = tonumber(members[i + 1])
  local value = tonumber(string.match(members[i], '"value":([^,}]+)'))
  local offset = math.fmod(ts, step)  -- exact, unlike a division
  if offset < 0 then offset = offset + step end  -- floored: before 1970 too
  if ts - offset ~= start then
    if start then close() end
    start, count, low, high, total, first = ts - offset, 0, value, value, 0, value
  end
  count, total, last = count + 1, total + math.ldexp(value, -shift), value
  if value < low then low = value elseif value > high then high = value end
end
if start then
  close()
  out[2] = members[#members]
  for i = #members, 2, -2 do
    if members[i] ~= members[#members] then break end
    out[3] = out[3] + 1
  end
end
return out
"""

# A page of the readings of KEYS[1], found by rank (each rank in O(log n), so every page costs the same):
# scored from ARGV[1] to ARGV[2] ('' for no bound), at most ARGV[3] of them (-1: all), ascending or with
# ARGV[4] = '1' descending (returned ascending all the same), and with a cursor, ARGV[5] the score and
# ARGV[6] the id of a reading, only those past it in that order. Members tied in score sort by their JSON,
# which starts with `{"id":"` and the id: by id. The rank of the cursor among its ties is found by bisection.
READINGS: Final = """
local key, descending = KEYS[1], ARGV[4] == '1'
local function ranked_before(score, id, inclusive)
  local low = redis.call('ZCOUNT', key, '-inf', '(' .. score)
  local high = low + redis.call('ZCOUNT', key, score, score)
  while low < high do
    local middle = math.floor((low + high) / 2)
    local member_id = string.sub(redis.call('ZRANGE', key, middle, middle)[1], 8, 43)
    if member_id < id or (inclusive and member_id == id) then low = middle + 1 else high = middle end
  end
  return low
end
local first = 0
if ARGV[1] ~= '' then first = redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[1]) end
local stop = redis.call('ZCARD', key)
if ARGV[2] ~= '' then stop = redis.call('ZCOUNT', key, '-inf', ARGV[2]) end
if ARGV[5] ~= '' then
  if descending then
    stop = math.min(stop, ranked_before(ARGV[5], ARGV[6], false))
  else
    first = math.max(first, ranked_before(ARGV[5], ARGV[6], true))
  end
end
local limit = tonumber(ARGV[3])
if limit >= 0 then
  if descending then first = math.max(first, stop - limit) else stop = math.min(stop, first + limit) end
end
if first >= stop then return {} end
return redis.call('ZRANGE', key, first, stop - 1)
"""

# Removes up to ARGV[2] of the lowest-scored (oldest) members of KEYS[1] scored below ARGV[1]; how many.
# Counted and removed in one step: a cap trim by another process in between would shift the ranks.
TRIM_OLDER: Final = """
local count = math.min(redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1]), tonumber(ARGV[2]))
if count > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, count - 1) end
return count
"""

# Trims the stream in stream order up to the newest entry created (by the server's clock, the `created`
# field) before the cutoff, and keeps that one: it marks where trimmed history ends. Entry ids carry Redis's
# own clock, which need not agree with the servers': comparing them with the cutoff could trim entries not
# yet expired, even ones followers have not read. The scan stops at the first entry within the TTL, so it
# reads a couple of entries when trimming keeps up. Each trimmed entry leaves its marks (`stream.log.Mark`) in
# the marks hash: field "<type>|<metric id>" (no metric id: the type over every metric), value "<seq> <id>";
# field "complete" says that marks were kept from the first trim on (an older metricstream kept none).
TRIM_UP_TO = """
local function fields_of(entry)
  local fields = {}
  for f = 1, #entry[2], 2 do fields[entry[2][f]] = entry[2][f + 1] end
  return fields
end
local function mark(marks, fields)
  local value = fields.seq .. ' ' .. fields.id
  redis.call('HSET', marks, fields.type .. '|', value)
  if fields.type ~= 'metric_created' then
    redis.call('HSET', marks, fields.type .. '|' .. fields.metric_id, value)
  end
  if fields.seq == '1' then redis.call('HSET', marks, 'complete', '1') end
end
local function trim_up_to(stream, marks, cutoff)
  local marker, previous, start = nil, nil, '-'
  while true do
    local entries = redis.call('XRANGE', stream, start, '+', 'COUNT', 16)
    for _, entry in ipairs(entries) do
      local fields = fields_of(entry)
      if tonumber(fields.created) >= cutoff then
        if marker then redis.call('XTRIM', stream, 'MINID', marker) end
        return
      end
      if previous then mark(marks, previous) end  -- it goes: this newer one is expired too
      marker, previous = entry[1], fields
    end
    if #entries < 16 then break end
    start = '(' .. entries[#entries][1]
  end
  if marker then redis.call('XTRIM', stream, 'MINID', marker) end
end
"""

# KEYS: 1 the stream, 2 the sequence counter, 3 the marks hash, 4.. data keys.
# ARGV: 1 the trim cutoff (wall-clock seconds), 2 number of data operations, then 4 per operation
# (kind, key index, a, b), then 5 per event (id, type, metric_id, body, created).
# Kinds: zadd, hset, hdel, rpush, lrem, sadd, srem, del; checks, which come first and refuse the whole
# write: `below` (a list shorter than a, else return 0), `present` (a hash has field a, else return -1),
# `free` (no id in a name's set has labels b in the labels hash KEYS[a], where a missing field is `{}`, as
# for every metric stored before labels were: a metric is its name and labels; else return -2); `cap` (a
# sorted set's lowest ranks beyond a removed; it comes after the zadds); `expire` (at most b of a sorted
# set's members scored below a removed, lowest first).
WRITE: Final = (
    TRIM_UP_TO
    + """
local stream, counter, marks = KEYS[1], KEYS[2], KEYS[3]
local cutoff, operations = tonumber(ARGV[1]), tonumber(ARGV[2])
local i = 3
for _ = 1, operations do
  local kind, key = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  if kind == 'zadd' then
    redis.call('ZADD', key, ARGV[i + 2], ARGV[i + 3])
  elseif kind == 'below' then
    if redis.call('LLEN', key) >= tonumber(ARGV[i + 2]) then
      return 0
    end
  elseif kind == 'expire' then
    local count = math.min(redis.call('ZCOUNT', key, '-inf', '(' .. ARGV[i + 2]), tonumber(ARGV[i + 3]))
    if count > 0 then
      redis.call('ZREMRANGEBYRANK', key, 0, count - 1)
    end
  elseif kind == 'cap' then
    local excess = redis.call('ZCARD', key) - tonumber(ARGV[i + 2])
    if excess > 0 then
      redis.call('ZREMRANGEBYRANK', key, 0, excess - 1)
    end
  elseif kind == 'present' then
    if redis.call('HEXISTS', key, ARGV[i + 2]) == 0 then
      return -1
    end
  elseif kind == 'free' then
    local labels = KEYS[tonumber(ARGV[i + 2])]
    for _, id in ipairs(redis.call('SMEMBERS', key)) do
      if (redis.call('HGET', labels, id) or '{}') == ARGV[i + 3] then
        return -2
      end
    end
  elseif kind == 'sadd' then
    redis.call('SADD', key, ARGV[i + 2])
  elseif kind == 'srem' then
    redis.call('SREM', key, ARGV[i + 2])
  elseif kind == 'hset' then
    redis.call('HSET', key, ARGV[i + 2], ARGV[i + 3])
  elseif kind == 'hdel' then
    redis.call('HDEL', key, ARGV[i + 2])
  elseif kind == 'lrem' then
    redis.call('LREM', key, 0, ARGV[i + 2])
  elseif kind == 'del' then
    redis.call('DEL', key)
  else
    redis.call('RPUSH', key, ARGV[i + 2])
  end
  i = i + 4
end
while i <= #ARGV do
  local seq = redis.call('INCR', counter)
  redis.call('XADD', stream, '*', 'id', ARGV[i], 'type', ARGV[i + 1],
    'metric_id', ARGV[i + 2], 'body', ARGV[i + 3], 'created', ARGV[i + 4], 'seq', seq)
  i = i + 5
end
trim_up_to(stream, marks, cutoff)
return 1
"""
)

# KEYS: 1 the stream, 2 the marks hash. ARGV: 1 the trim cutoff.
TRIM: Final = TRIM_UP_TO + "trim_up_to(KEYS[1], KEYS[2], tonumber(ARGV[1]))\nreturn 1\n"

# Index metrics stored before names were (KEYS: 1 the metrics hash, 2 the done flag; ARGV: 1 the name
# sets' key prefix); once, atomically, so a write by name never misses an older metric.
INDEX_NAMES: Final = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local all = redis.call('HGETALL', KEYS[1])
for f = 1, #all, 2 do
  redis.call('SADD', ARGV[1] .. cjson.decode(all[f + 1]).name, all[f])
end
redis.call('SET', KEYS[2], '1')
return 1
"""

# Move metrics named before names were normalised to the set of their name in NFC (KEYS: 1 the metrics
# hash, 2 the done flag; ARGV: per metric, its id, the set it is in, the set of its NFC name). Python
# computes NFC (Lua cannot); this runs once, atomically, and skips a metric deleted since it was read.
NAMES_IN_NFC: Final = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for i = 1, #ARGV, 3 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('SREM', ARGV[i + 1], ARGV[i])
    redis.call('SADD', ARGV[i + 2], ARGV[i])
  end
end
redis.call('SET', KEYS[2], '1')
return 1
"""
