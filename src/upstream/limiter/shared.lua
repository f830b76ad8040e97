-- The fleet's sliding-window limiter (src/upstream/limiter/shared.rs): one script per operation,
-- each atomic in Redis. Times come from Redis's own clock (TIME), so replicas' clocks never
-- matter. Every script starts with `now`, in milliseconds.

-- @acquire
-- KEYS: slots, pause, waiters, alive, epoch, grace
-- ARGV: waiter, member, limit, window_ms, hold_ms, stale_ms, known_epoch, new_epoch, grace_ms
-- Returns {code, value}: {1, ''} granted; {0, ms} wait about ms; {2, ''} another replica's
-- waiter is first; {3, epoch} the counts were lost or this replica has not seen them yet:
-- re-seed, then call again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[5])
if not epoch then
  redis.call('SET', KEYS[5], ARGV[8])
  redis.call('SET', KEYS[6], '1', 'PX', ARGV[9])
  return {3, ARGV[8]}
end
if epoch ~= ARGV[7] then return {3, epoch} end
local waiter = ARGV[1]
redis.call('ZADD', KEYS[3], 'NX', now, waiter)
redis.call('HSET', KEYS[4], waiter, now)
local stale_before = now - tonumber(ARGV[6])
local alive = redis.call('HGETALL', KEYS[4])
for i = 1, #alive, 2 do
  if tonumber(alive[i + 1]) < stale_before then
    redis.call('HDEL', KEYS[4], alive[i])
    redis.call('ZREM', KEYS[3], alive[i])
  end
end
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]) * 4)
redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[6]) * 4)
local held = math.max(redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[6]))
if held > 0 then return {0, tostring(held)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tostring(tonumber(first[2]) - now)}
end
if redis.call('ZRANGE', KEYS[3], 0, 0)[1] ~= waiter then return {2, ''} end
local frees_at = now + tonumber(ARGV[5]) + tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], frees_at, ARGV[2])
if redis.call('PTTL', KEYS[1]) < frees_at - now then redis.call('PEXPIRE', KEYS[1], frees_at - now) end
redis.call('ZREM', KEYS[3], waiter)
redis.call('HDEL', KEYS[4], waiter)
return {1, ''}

-- @release
-- KEYS: slots. ARGV: member, window_ms. The slot frees one window from now.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1

-- @leave
-- KEYS: waiters, alive. ARGV: waiter. A head that stopped waiting leaves the fleet's queue.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1

-- @pause
-- KEYS: pause. ARGV: ms. Upstream said 429: nobody sends for ms (a longer pause is kept).
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1

-- @reseed
-- KEYS: slots. ARGV: member, remaining_ms, member, remaining_ms, ... The slots this replica holds
-- or held within a window, put back after Redis lost them (a later free time is kept).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local longest = 0
for i = 1, #ARGV, 2 do
  local remaining = tonumber(ARGV[i + 1])
  redis.call('ZADD', KEYS[1], 'GT', now + remaining, ARGV[i])
  if remaining > longest then longest = remaining end
end
if longest > 0 and redis.call('PTTL', KEYS[1]) < longest then redis.call('PEXPIRE', KEYS[1], longest) end
return 1

-- @epoch
-- KEYS: epoch, grace. ARGV: new_epoch, grace_ms. The counts' epoch; a Redis that starts empty
-- (first use, or a restart without persistence) gets a new one, and nobody is granted a slot
-- for grace_ms, while every replica re-seeds the slots it knows.
local epoch = redis.call('GET', KEYS[1])
if epoch then return epoch end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return ARGV[1]
