#!lua name=taskq
--[[
Every state transition of a taskq queue, each one atomic.

Every function takes the same KEYS, built by taskq/keys.py:
  KEYS[1..4]  ready streams, priority 0 (CRITICAL) .. 3 (LOW), one consumer group
  KEYS[5]     delayed sorted set: retries and scheduled tasks, score = due time (ms)
  KEYS[6]     dead-letter stream
  KEYS[7]     stats hash

A delivery is identified by (priority, entry id, delivery count, consumer). The
delivery count rises on every change of owner (XREADGROUP gives 1, a reclaim adds
one) and never on lease renewal (XCLAIM JUSTID), so a receipt whose count or
consumer no longer matches the pending entry belongs to a lost lease.

Lease status codes returned per receipt:
   1 owned (and the transition was applied)
   0 not pending: already acked, never delivered, or its group was lost
  -1 lease lost: pending, but owned by another delivery
]]

local DELAYED, DLQ, STATS = 5, 6, 7
local OWNED, NOT_PENDING, LEASE_LOST = 1, 0, -1
local MAX_ERROR_BYTES = 2000

local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Streams that exist always carry the group: a stream created by XADD gets it at
-- once, so a NOGROUP seen later means the group was really lost (deleted, flushed).
local function add_ready(keys, group, prio, fields)
  local stream = keys[prio + 1]
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  end
  return redis.call('XADD', stream, '*', unpack(fields))
end

-- The first n bytes of s, backed off to a UTF-8 character boundary: a cut in the
-- middle of a character would leave the entry's JSON unreadable.
local function cut_utf8(s, n)
  if #s <= n then return s end
  while n > 0 and bit.band(string.byte(s, n + 1), 0xC0) == 0x80 do n = n - 1 end
  return string.sub(s, 1, n)
end

local function is_error(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

local function read_group(keys, prio, group, consumer, count)
  local stream = keys[prio + 1]
  local reply = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
  if is_error(reply) then
    -- Raise (a returned error_reply would be iterated as an empty batch): WRONGTYPE, NOPERM.
    if not string.find(reply.err, 'NOGROUP', 1, true) then error(reply) end
    -- Group lost under us: recreate it at 0 so entries still in the stream are served.
    if redis.call('EXISTS', stream) == 1 then redis.call('HINCRBY', keys[STATS], 'groups_recreated', 1) end
    redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
    reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')
  end
  if not reply then return {} end
  return reply[1][2]
end

-- XPENDING, or nil when the stream or its group does not exist (NOGROUP). Other
-- errors (WRONGTYPE, NOPERM) are raised: never taken for "nothing pending".
local function xpending(stream, group, ...)
  local reply = redis.pcall('XPENDING', stream, group, ...)
  if not is_error(reply) then return reply end
  if string.find(reply.err, 'NOGROUP', 1, true) then return nil end
  error(reply)
end

local function lease_status(stream, group, id, deliveries, consumer)
  local pending = xpending(stream, group, id, id, 1)
  if pending == nil or #pending == 0 then return NOT_PENDING end
  local entry = pending[1]
  if entry[2] ~= consumer or entry[4] ~= tonumber(deliveries) then return LEASE_LOST end
  return OWNED
end

-- An entry id's two numbers (milliseconds, sequence), or nil when it is not an id.
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if ms == nil then return nil end
  return tonumber(ms), tonumber(seq)
end

local function id_before(a_ms, a_seq, b_ms, b_seq)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end

-- lease_status of many receipts ({priority, id, deliveries, consumer, ...}) at once: one
-- XPENDING range per stream and consumer instead of one XPENDING per receipt (a batch was
-- read together, so its ids sit side by side). A receipt the range did not show (another
-- owner, not pending, a reply cut short) gets the exact check of its own.
local function lease_statuses(keys, group, receipts)
  local spans = {}
  for _, receipt in ipairs(receipts) do
    local ms, seq = id_parts(receipt[2])
    if ms ~= nil then
      local by_consumer = spans[receipt[1]] or {}
      spans[receipt[1]] = by_consumer
      local span = by_consumer[receipt[4]]
      if span == nil then
        by_consumer[receipt[4]] = { lo_ms = ms, lo_seq = seq, lo = receipt[2], hi_ms = ms, hi_seq = seq,
                                    hi = receipt[2], n = 1 }
      else
        span.n = span.n + 1
        if id_before(ms, seq, span.lo_ms, span.lo_seq) then span.lo_ms, span.lo_seq, span.lo = ms, seq, receipt[2] end
        if id_before(span.hi_ms, span.hi_seq, ms, seq) then span.hi_ms, span.hi_seq, span.hi = ms, seq, receipt[2] end
      end
    end
  end
  local held = {}  -- priority -> consumer -> id -> delivery count
  for prio, by_consumer in pairs(spans) do
    held[prio] = {}
    for consumer, span in pairs(by_consumer) do
      local found = {}
      for _, entry in ipairs(xpending(keys[prio + 1], group, span.lo, span.hi, span.n + 16, consumer) or {}) do
        found[entry[1]] = entry[4]
      end
      held[prio][consumer] = found
    end
  end
  local statuses = {}
  for i, receipt in ipairs(receipts) do
    local prio, id, deliveries, consumer = receipt[1], receipt[2], receipt[3], receipt[4]
    local count = held[prio] and held[prio][consumer] and held[prio][consumer][id]
    if count == nil then
      statuses[i] = lease_status(keys[prio + 1], group, id, deliveries, consumer)
    elseif count == tonumber(deliveries) then
      statuses[i] = OWNED
    else
      statuses[i] = LEASE_LOST
    end
  end
  return statuses
end

local function entry_fields(stream, id)
  local found = redis.call('XRANGE', stream, id, id)
  if #found == 0 then return nil end
  return found[1][2]
end

local function settle(stream, group, id)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- A copy of fields with `name` set to `value` (appended when absent; removed when nil).
local function with_field(fields, name, value)
  local out, seen = {}, false
  for i = 1, #fields, 2 do
    if fields[i] == name then
      seen = true
      if value ~= nil then out[#out + 1] = name; out[#out + 1] = value end
    else
      out[#out + 1] = fields[i]; out[#out + 1] = fields[i + 1]
    end
  end
  if not seen and value ~= nil then out[#out + 1] = name; out[#out + 1] = value end
  return out
end

local function append_error(fields, record)
  local errors = {}
  local old = field(fields, 'errors')
  if old then
    local ok, decoded = pcall(cjson.decode, old)
    if ok and type(decoded) == 'table' then errors = decoded end
  end
  errors[#errors + 1] = record
  return with_field(fields, 'errors', cjson.encode(errors))
end

local function is_task(fields)
  return field(fields, 'id') ~= nil and tonumber(field(fields, 'retry')) ~= nil
      and tonumber(field(fields, 'max')) ~= nil
end

-- Moves an entry's fields to the DLQ. Task entries keep their fields (requeue needs
-- them); anything else, and anything the caller found unreadable (`verbatim`), is
-- kept as it was, msgpack-packed, under `raw`: requeue refuses those.
local function dead_letter(keys, prio, id, fields, reason, now, verbatim)
  local dead
  if is_task(fields) and not verbatim then
    dead = with_field(fields, '_reason', reason)
  else
    dead = { 'raw', cmsgpack.pack(fields), '_reason', reason }
  end
  dead[#dead + 1] = '_prio'; dead[#dead + 1] = tostring(prio)
  dead[#dead + 1] = '_entry'; dead[#dead + 1] = id
  dead[#dead + 1] = '_dead_at'; dead[#dead + 1] = tostring(now)
  redis.call('XADD', keys[DLQ], '*', unpack(dead))
  redis.call('HINCRBY', keys[STATS], 'tasks_dead', 1)
end

local function schedule(keys, group, prio, fields, due, now)
  if due <= now then return add_ready(keys, group, prio, fields) end
  local member = { prio }
  for i = 1, #fields do member[#member + 1] = fields[i] end
  redis.call('ZADD', keys[DELAYED], due, cmsgpack.pack(member))
end

local function promote(keys, group, now, limit)
  local due = redis.call('ZRANGEBYSCORE', keys[DELAYED], '-inf', now, 'LIMIT', 0, limit)
  for _, member in ipairs(due) do
    local unpacked = cmsgpack.unpack(member)
    local prio = tonumber(unpacked[1])
    local fields = {}
    for i = 2, #unpacked do fields[#fields + 1] = unpacked[i] end
    add_ready(keys, group, prio, fields)
    redis.call('ZREM', keys[DELAYED], member)
  end
  return #due
end

-- Milliseconds until the first delayed task is due, or -1 when none is waiting.
local function wait_for_due(keys, now)
  local first = redis.call('ZRANGE', keys[DELAYED], 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return math.max(0, tonumber(first[2]) - now)
end

-- The Redis type of each key, in KEYS order.
local KEY_TYPES = { 'stream', 'stream', 'stream', 'stream', 'zset', 'stream', 'hash' }

-- Raises WRONGTYPE naming the first key that holds a foreign type. Called before
-- the first write: Redis keeps the writes of a function that fails midway, and an
-- enqueue that raised must not have stored part of its batch (callers retry it).
local function check_key_types(keys)
  for i, expected in ipairs(KEY_TYPES) do
    local kind = redis.call('TYPE', keys[i])['ok']
    if kind ~= 'none' and kind ~= expected then
      error({ err = 'WRONGTYPE ' .. keys[i] .. ' holds a ' .. kind .. ', not a ' .. expected })
    end
  end
end

-- ARGV: group, now_ms, items: msgpack of [[priority, due_ms (0 = now), [field, value, ...]], ...].
local function enqueue(keys, args)
  check_key_types(keys)
  local group, now = args[1], now_ms(args[2])
  local tasks = cmsgpack.unpack(args[3])
  for _, task in ipairs(tasks) do
    schedule(keys, group, task[1], task[3], task[2], now)
  end
  redis.call('HINCRBY', keys[STATS], 'tasks_added', #tasks)
  return #tasks
end

-- ARGV: group, consumer, count, now_ms, promote_limit.
-- Reply: { ms until the next delayed task is due or -1, then per delivery: priority, entry id, fields }.
-- Strict priority: a lower stream is read only for what higher ones could not fill.
local function read(keys, args)
  local group, consumer, count = args[1], args[2], tonumber(args[3])
  local now, limit = now_ms(args[4]), tonumber(args[5])
  if limit > 0 then promote(keys, group, now, limit) end
  local out = { -1 }
  local remaining = count
  for prio = 0, 3 do
    if remaining <= 0 then break end
    for _, entry in ipairs(read_group(keys, prio, group, consumer, remaining)) do
      out[#out + 1] = prio; out[#out + 1] = entry[1]; out[#out + 1] = entry[2]
      remaining = remaining - 1
    end
  end
  if remaining == count then out[1] = wait_for_due(keys, now) end
  return out
end

-- ARGV: group, receipts: msgpack of [[priority, entry id, deliveries, consumer], ...].
-- Owned entries are acked and deleted with one XACK and one XDEL per stream.
local function ack(keys, args)
  local group = args[1]
  local receipts = cmsgpack.unpack(args[2])
  local statuses = lease_statuses(keys, group, receipts)
  local owned, seen, acked = { {}, {}, {}, {} }, {}, 0
  for i, receipt in ipairs(receipts) do
    local prio, id = receipt[1], receipt[2]
    local status = statuses[i]
    if status == OWNED and seen[prio .. id] then status = NOT_PENDING end  -- the same receipt twice
    if status == OWNED then
      seen[prio .. id] = true
      owned[prio + 1][#owned[prio + 1] + 1] = id
      acked = acked + 1
    end
    statuses[i] = status
  end
  for prio = 1, 4 do
    if #owned[prio] > 0 then
      redis.call('XACK', keys[prio], group, unpack(owned[prio]))
      redis.call('XDEL', keys[prio], unpack(owned[prio]))
    end
  end
  if acked > 0 then redis.call('HINCRBY', keys[STATS], 'tasks_completed', acked) end
  return statuses
end

-- ARGV: group, now_ms, base_delay_ms, max_delay_ms, failures: msgpack of
-- [[priority, entry id, deliveries, consumer, error, jitter in [0, 1)], ...].
-- Per receipt: 2 retried, 3 dead-lettered, or a lease status (0, -1).
-- The retry count comes from the stored entry, never from the caller.
local function fail(keys, args)
  local group, now = args[1], now_ms(args[2])
  local base, cap = tonumber(args[3]), tonumber(args[4])
  local statuses = {}
  local failed, retried = 0, 0
  for _, failure in ipairs(cmsgpack.unpack(args[5])) do
    local prio, id, consumer, message, jitter = failure[1], failure[2], failure[4], failure[5], failure[6]
    local stream = keys[prio + 1]
    local status = lease_status(stream, group, id, failure[3], consumer)
    local fields = status == OWNED and entry_fields(stream, id) or nil
    if status == OWNED and fields == nil then status = NOT_PENDING; redis.call('XACK', stream, group, id) end
    if fields ~= nil then
      message = cut_utf8(message, MAX_ERROR_BYTES)
      if not is_task(fields) then
        dead_letter(keys, prio, id, fields, message, now)
        status = 3
      else
        local retry, max = tonumber(field(fields, 'retry')), tonumber(field(fields, 'max'))
        fields = append_error(fields, { attempt = retry + 1, error = message, at_ms = now, consumer = consumer })
        if retry < max then
          local delay = math.min(cap, base * 2 ^ retry)
          delay = math.floor(delay * (0.5 + 0.5 * jitter))
          schedule(keys, group, prio, with_field(fields, 'retry', tostring(retry + 1)), now + delay, now)
          retried = retried + 1
          status = 2
        else
          dead_letter(keys, prio, id, fields, 'retries exhausted: ' .. message, now)
          status = 3
        end
      end
      settle(stream, group, id)
      failed = failed + 1
    end
    statuses[#statuses + 1] = status
  end
  if failed > 0 then redis.call('HINCRBY', keys[STATS], 'tasks_failed', failed) end
  if retried > 0 then redis.call('HINCRBY', keys[STATS], 'tasks_retried', retried) end
  return statuses
end

-- ARGV: group, now_ms, entries: msgpack of [[priority, entry id, deliveries, consumer, reason], ...].
-- For entries a consumer cannot even decode: straight to the DLQ, verbatim.
local function bury(keys, args)
  local group, now = args[1], now_ms(args[2])
  local statuses = {}
  for _, entry in ipairs(cmsgpack.unpack(args[3])) do
    local prio, id = entry[1], entry[2]
    local stream = keys[prio + 1]
    local status = lease_status(stream, group, id, entry[3], entry[4])
    if status == OWNED then
      local fields = entry_fields(stream, id)
      if fields ~= nil then dead_letter(keys, prio, id, fields, entry[5], now, true) end
      settle(stream, group, id)
    end
    statuses[#statuses + 1] = status
  end
  return statuses
end

-- ARGV: group, consumer, receipts: msgpack of [[priority, entry id, deliveries], ...].
-- Resets the idle time of deliveries this consumer still owns.
local function renew(keys, args)
  local group, consumer = args[1], args[2]
  local statuses = {}
  for _, receipt in ipairs(cmsgpack.unpack(args[3])) do
    local stream, id = keys[receipt[1] + 1], receipt[2]
    local status = lease_status(stream, group, id, receipt[3], consumer)
    if status == OWNED then redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID') end
    statuses[#statuses + 1] = status
  end
  return statuses
end

-- ARGV: group, consumer, receipts: msgpack of [[priority, entry id, deliveries], ...].
-- Hands owned deliveries back at once (graceful shutdown): re-added as fresh
-- entries with the same fields, so nobody waits for a visibility timeout.
local function release(keys, args)
  local group, consumer = args[1], args[2]
  local statuses = {}
  for _, receipt in ipairs(cmsgpack.unpack(args[3])) do
    local prio, id = receipt[1], receipt[2]
    local stream = keys[prio + 1]
    local status = lease_status(stream, group, id, receipt[3], consumer)
    if status == OWNED then
      local fields = entry_fields(stream, id)
      if fields ~= nil then add_ready(keys, group, prio, fields) end
      settle(stream, group, id)
    end
    statuses[#statuses + 1] = status
  end
  return statuses
end

-- ARGV: group, consumer, min_idle_ms, count, delivery_cap, now_ms.
-- Takes over deliveries idle past the visibility timeout, highest priority first.
-- An entry delivered delivery_cap times without ever being acked or failed keeps
-- killing its workers: it goes to the DLQ instead of around again. An entry already
-- reclaimed once is handed out alone (see below).
-- Reply: per delivery: priority, entry id, deliveries, fields.
local function reclaim(keys, args)
  local group, consumer = args[1], args[2]
  local min_idle, count, cap = tonumber(args[3]), tonumber(args[4]), tonumber(args[5])
  local now = now_ms(args[6])
  local out, recovered = {}, 0
  for prio = 0, 3 do
    local stream = keys[prio + 1]
    local pending = count > 0 and xpending(stream, group, 'IDLE', min_idle, '-', '+', count) or nil
    if pending ~= nil then
      for _, entry in ipairs(pending) do
        local id, deliveries = entry[1], entry[4]
        local fields = entry_fields(stream, id)
        if fields == nil then
          redis.call('XACK', stream, group, id)
        elseif deliveries >= cap then
          local reason = 'delivery cap: delivered ' .. deliveries .. ' times, never acked nor failed'
          if is_task(fields) then
            fields = append_error(fields, { attempt = tonumber(field(fields, 'retry')) + 1, error = reason, at_ms = now, consumer = entry[2] })
          end
          dead_letter(keys, prio, id, fields, reason, now)
          settle(stream, group, id)
        elseif count > 0 and not (deliveries >= 2 and #out > 0) then
          local claimed = redis.call('XCLAIM', stream, group, consumer, min_idle, id, 'RETRYCOUNT', deliveries + 1)
          if #claimed > 0 then
            out[#out + 1] = prio; out[#out + 1] = id; out[#out + 1] = deliveries + 1
            out[#out + 1] = claimed[1][2]
            recovered = recovered + 1
            count = count - 1
            -- Its holder died twice now: it may be what kills them. It goes out alone, so
            -- a poison task takes no innocent batch-mates into the DLQ with it.
            if deliveries >= 2 then count = 0 end
          end
        end
      end
    end
  end
  if recovered > 0 then redis.call('HINCRBY', keys[STATS], 'tasks_recovered', recovered) end
  return out
end

-- ARGV: group, now_ms, promote_limit. Moves due delayed tasks to their streams.
local function promote_due(keys, args)
  return promote(keys, args[1], now_ms(args[2]), tonumber(args[3]))
end

-- ARGV: group, then DLQ entry ids. Per id: 1 requeued with a fresh retry
-- budget, 0 no such entry, -2 not a task (a raw malformed entry cannot run).
local function requeue_dead(keys, args)
  local group = args[1]
  local statuses = {}
  for i = 2, #args do
    local fields = entry_fields(keys[DLQ], args[i])
    local status = 0
    if fields ~= nil and not is_task(fields) then status = -2 end
    if fields ~= nil and is_task(fields) then
      local prio = tonumber(field(fields, '_prio')) or 2
      for _, meta in ipairs({ '_reason', '_prio', '_entry', '_dead_at', 'errors' }) do
        fields = with_field(fields, meta, nil)
      end
      add_ready(keys, group, prio, with_field(fields, 'retry', '0'))
      redis.call('XDEL', keys[DLQ], args[i])
      status = 1
    end
    statuses[#statuses + 1] = status
  end
  return statuses
end

-- No ARGV. Deletes the DLQ; returns how many entries it held. XLEN runs first, so a
-- foreign key under the DLQ's name raises WRONGTYPE and is left alone.
local function purge_dead(keys, args)
  local length = redis.call('XLEN', keys[DLQ])
  redis.call('DEL', keys[DLQ])
  return length
end

-- ARGV: group. Reply: ready stream lengths p0..p3, pending counts p0..p3, delayed
-- count, DLQ length, then the stats hash as field/value pairs. Missing keys are 0.
local function stats(keys, args)
  local group = args[1]
  local out = {}
  for prio = 0, 3 do out[#out + 1] = redis.call('XLEN', keys[prio + 1]) end
  for prio = 0, 3 do
    local summary = xpending(keys[prio + 1], group)
    out[#out + 1] = summary == nil and 0 or summary[1]
  end
  out[#out + 1] = redis.call('ZCARD', keys[DELAYED])
  out[#out + 1] = redis.call('XLEN', keys[DLQ])
  for _, value in ipairs(redis.call('HGETALL', keys[STATS])) do out[#out + 1] = value end
  return out
end

redis.register_function('taskq_enqueue', enqueue)
redis.register_function('taskq_read', read)
redis.register_function('taskq_ack', ack)
redis.register_function('taskq_fail', fail)
redis.register_function('taskq_bury', bury)
redis.register_function('taskq_renew', renew)
redis.register_function('taskq_release', release)
redis.register_function('taskq_reclaim', reclaim)
redis.register_function('taskq_promote', promote_due)
redis.register_function('taskq_requeue_dead', requeue_dead)
redis.register_function('taskq_purge_dead', purge_dead)
redis.register_function { function_name = 'taskq_stats', callback = stats, flags = { 'no-writes' } }
