"""The Lua scripts the Redis usage backend runs: each is atomic in Redis, so
a check and what it admits happen with nothing in between, whichever
sidecar sent them.

Layout (every key starts with ``pdp:v1:``):

- a *series* ``NAME``: amounts by second, summed over any window ending
  now in O(log n). ``NAME:total`` is the sum of everything added;
  ``NAME:cum`` is a sorted set with one member ``"<second>:<total before
  it>"`` per second that saw an amount, scored by the second. The sum from
  second S on is the total minus the "total before" of the first member
  scored S or later. An amount for a second earlier than the last one is
  added to the last one (seconds only move forward).
- ``spend:<agent>``: the agent's settled spend (micro-USD), a series.
- ``calls:<key>``: calls counted under a counter key (its JSON), a series.
- ``res:<agent>`` (hash request id -> JSON [amount, at µs, expires]),
  ``resat:<agent>`` and ``resexp:<agent>`` (request ids by reservation time
  and by expiry), ``restotal:<agent>``: the agent's open reservations;
  ``resowner``: request id -> agent, for every open reservation.
- ``req:<request id>``: a settled request (reported, or an expired
  reservation settled at its estimate): JSON [agent, amount, at µs, how],
  kept for the retention, the idempotency key of reports.
- ``agents``, ``counters``: the agents and counter keys seen (for loading).
- ``events``: a stream of every change, which each sidecar follows to keep
  its copy in memory (JSON arrays: ``["s", agent, amount, at µs]`` spend,
  ``["r", agent, request, amount, at µs, expires]`` reserve,
  ``["x", agent, request]`` release, ``["c", key, second, count]`` calls).

Times: ``at`` is calendar time in µs; ``expires`` is in seconds on the
steady timeline of the sidecar that reserved (see SteadyClock).
Numbers go to Redis and into JSON as strings written by ``fmt`` and
``fmt3``: Lua would write 1.7409876543211e+15, losing the last digits.
"""

from __future__ import annotations

__all__ = ["CHARGE", "LOAD", "REPORT", "SETTLE"]

_COMMON = r"""
local P = 'pdp:v1:'
local STREAM_MAXLEN = 1000000
local function fmt(n) return string.format('%d', n) end
local function fmt3(n) return string.format('%.3f', n) end

local function series_add(name, second, amount, keep_from)
  local cum = name .. ':cum'
  local total = tonumber(redis.call('GET', name .. ':total') or '0')
  local last = redis.call('ZRANGE', cum, -1, -1, 'WITHSCORES')
  if #last == 0 or tonumber(last[2]) < second then
    redis.call('ZADD', cum, second, fmt(second) .. ':' .. fmt(total))
  end
  redis.call('SET', name .. ':total', fmt(total + amount))
  if keep_from then
    redis.call('ZREMRANGEBYSCORE', cum, '-inf', '(' .. fmt(keep_from))
  end
end

local function series_since(name, since)
  local first = redis.call('ZRANGEBYSCORE', name .. ':cum', since, '+inf', 'LIMIT', 0, 1)
  if #first == 0 then return 0 end
  local before = tonumber(string.match(first[1], ':(%-?%d+)$'))
  return tonumber(redis.call('GET', name .. ':total') or '0') - before
end

-- What this script appended to the stream, flat (id, event, id, ...):
-- returned, so that the sidecar that ran it applies it at once.
local EMITTED = {}
local function emit(origin, event)
  local encoded = cjson.encode(event)
  local id = redis.call('XADD', P .. 'events', 'MAXLEN', '~', STREAM_MAXLEN, '*',
    'o', origin, 'e', encoded)
  table.insert(EMITTED, id)
  table.insert(EMITTED, encoded)
  return id
end

local function last_event_id()
  local last = redis.call('XREVRANGE', P .. 'events', '+', '-', 'COUNT', 1)
  if #last == 0 then return '0-0' end
  return last[1][1]
end

local function res_remove(agent, req)
  local value = redis.call('HGET', P .. 'res:' .. agent, req)
  if not value then return nil end
  local entry = cjson.decode(value)
  redis.call('HDEL', P .. 'res:' .. agent, req)
  redis.call('ZREM', P .. 'resat:' .. agent, req)
  redis.call('ZREM', P .. 'resexp:' .. agent, req)
  redis.call('DECRBY', P .. 'restotal:' .. agent, entry[1])
  redis.call('HDEL', P .. 'resowner', req)
  return tonumber(entry[1])
end

local function reserved_since(agent, since_us)
  local total = tonumber(redis.call('GET', P .. 'restotal:' .. agent) or '0')
  local older = redis.call('ZRANGEBYSCORE', P .. 'resat:' .. agent, '-inf', '(' .. fmt(since_us))
  for _, req in ipairs(older) do
    local value = redis.call('HGET', P .. 'res:' .. agent, req)
    if value then total = total - tonumber(cjson.decode(value)[1]) end
  end
  return total
end

local function add_spend(origin, agent, amount, at_us, keep_from_us)
  redis.call('SADD', P .. 'agents', agent)
  series_add(P .. 'spend:' .. agent, math.floor(at_us / 1000000), amount,
    math.floor(keep_from_us / 1000000))
  return emit(origin, {'s', agent, fmt(amount), fmt(at_us)})
end

-- Settles the agent's reservations expired at steady time `now`: each
-- becomes spend at its estimate, at calendar time now_us.
local function settle_expired(origin, agent, now, now_us, keep_from_us, retention_ms)
  local due = redis.call('ZRANGEBYSCORE', P .. 'resexp:' .. agent, '-inf', fmt3(now))
  for _, req in ipairs(due) do
    local amount = res_remove(agent, req)
    if amount then
      emit(origin, {'x', agent, req})
      add_spend(origin, agent, amount, now_us, keep_from_us)
      redis.call('SET', P .. 'req:' .. req,
        cjson.encode({agent, fmt(amount), fmt(now_us), 'expired_reservation'}),
        'PX', fmt(retention_ms))
    end
  end
end
"""

# ARGV: origin, now (steady s), now_us, keep_from_us, retention_ms, window
# keep (s), charges JSON {calls: [[key, second, [[since, most], ...]], ...],
# cost: [agent, request, amount, expires, [[since_us, limit], ...]] or absent}.
# Returns {1, {}, last event id, emitted} when applied, {0, refused indexes
# (0-based: calls first, then the cost), last event id, emitted} when not
# (emitted: the events this script appended, flat: id, event, id, ...).
CHARGE = (
    _COMMON
    + r"""
local origin, now, now_us = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local keep_from_us, retention_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local window_keep = tonumber(ARGV[6])
local charges = cjson.decode(ARGV[7])
local calls = charges['calls'] or {}
local cost = charges['cost']
local refused = {}
for i, call in ipairs(calls) do
  local name = P .. 'calls:' .. call[1]
  for _, limit in ipairs(call[3]) do
    if series_since(name, limit[1]) >= limit[2] then
      table.insert(refused, i - 1)
      break
    end
  end
end
local paid = false
if cost then
  local agent, req, amount = cost[1], cost[2], cost[3]
  settle_expired(origin, agent, now, now_us, keep_from_us, retention_ms)
  local owner = redis.call('HGET', P .. 'resowner', req)
  local own = 0
  if owner == agent then
    own = tonumber(cjson.decode(redis.call('HGET', P .. 'res:' .. agent, req))[1])
  end
  -- An id already settled was paid for: the call holds nothing more.
  paid = redis.call('EXISTS', P .. 'req:' .. req) == 1 or (owner and owner ~= agent)
  if not paid then
    for _, limit in ipairs(cost[5]) do
      local since_us, most = limit[1], limit[2]
      local settled = series_since(P .. 'spend:' .. agent, math.ceil(since_us / 1000000))
      local held = reserved_since(agent, since_us) - own
      if settled + held + amount > most then
        table.insert(refused, #calls)
        break
      end
    end
  end
end
if #refused > 0 then
  return {0, refused, last_event_id(), EMITTED}
end
local id = nil
for _, call in ipairs(calls) do
  redis.call('SADD', P .. 'counters', call[1])
  series_add(P .. 'calls:' .. call[1], call[2], 1, call[2] - window_keep)
  id = emit(origin, {'c', call[1], fmt(call[2]), '1'})
end
if cost and not paid then
  local agent, req, amount, expires = cost[1], cost[2], cost[3], cost[4]
  if res_remove(agent, req) then
    emit(origin, {'x', agent, req})
  end
  redis.call('SADD', P .. 'agents', agent)
  redis.call('HSET', P .. 'res:' .. agent, req,
    cjson.encode({fmt(amount), fmt(now_us), fmt3(expires)}))
  redis.call('ZADD', P .. 'resat:' .. agent, fmt(now_us), req)
  redis.call('ZADD', P .. 'resexp:' .. agent, fmt3(expires), req)
  redis.call('INCRBY', P .. 'restotal:' .. agent, fmt(amount))
  redis.call('HSET', P .. 'resowner', req, agent)
  id = emit(origin, {'r', agent, req, fmt(amount), fmt(now_us), fmt3(expires)})
end
return {1, {}, id or last_event_id(), EMITTED}
"""
)

# ARGV: origin, now (steady s), now_us, keep_from_us, retention_ms, agent,
# request id, amount. Returns {'new', at_us, emitted}, {'duplicate', agent,
# amount, at_us, how}, {'conflict', agent, amount, at_us, how} or
# {'reserved_by', agent}.
REPORT = (
    _COMMON
    + r"""
local origin, now, now_us = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local keep_from_us, retention_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local agent, req, amount = ARGV[6], ARGV[7], tonumber(ARGV[8])
settle_expired(origin, agent, now, now_us, keep_from_us, retention_ms)
local stored = redis.call('GET', P .. 'req:' .. req)
if stored then
  local entry = cjson.decode(stored)
  local verdict = 'conflict'
  if entry[1] == agent and tonumber(entry[2]) == amount then verdict = 'duplicate' end
  return {verdict, entry[1], entry[2], entry[3], entry[4]}
end
local owner = redis.call('HGET', P .. 'resowner', req)
if owner and owner ~= agent then
  return {'reserved_by', owner}
end
if owner then
  res_remove(agent, req)
  emit(origin, {'x', agent, req})
end
add_spend(origin, agent, amount, now_us, keep_from_us)
redis.call('SET', P .. 'req:' .. req,
  cjson.encode({agent, fmt(amount), fmt(now_us), 'reported'}), 'PX', fmt(retention_ms))
return {'new', fmt(now_us), EMITTED}
"""
)

# ARGV: origin, now (steady s), now_us, keep_from_us, retention_ms, agents
# JSON. Settles the expired reservations of those agents; returns emitted.
SETTLE = (
    _COMMON
    + r"""
local origin, now, now_us = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local keep_from_us, retention_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
for _, agent in ipairs(cjson.decode(ARGV[6])) do
  settle_expired(origin, agent, now, now_us, keep_from_us, retention_ms)
end
return EMITTED
"""
)

# Everything the sidecars' copies hold, with the id of the last event it
# includes, as one JSON document: {last, spend: [[agent, total,
# [member, ...]], ...], reservations: [[agent, [request, JSON], ...], ...],
# calls: [[key, total, [member, ...]], ...]}.
LOAD = (
    _COMMON
    + r"""
local out = {last = last_event_id(), spend = {}, reservations = {}, calls = {}}
for _, agent in ipairs(redis.call('SMEMBERS', P .. 'agents')) do
  local name = P .. 'spend:' .. agent
  table.insert(out.spend, {agent, redis.call('GET', name .. ':total') or '0',
    redis.call('ZRANGE', name .. ':cum', 0, -1)})
  table.insert(out.reservations, {agent, redis.call('HGETALL', P .. 'res:' .. agent)})
end
for _, key in ipairs(redis.call('SMEMBERS', P .. 'counters')) do
  local name = P .. 'calls:' .. key
  table.insert(out.calls, {key, redis.call('GET', name .. ':total') or '0',
    redis.call('ZRANGE', name .. ':cum', 0, -1)})
end
return cjson.encode(out)
"""
)
