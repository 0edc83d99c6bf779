-- wrk script: GET /carts/<id> of carts cart_write.lua wrote (bench/cart_http.py).
-- Thread t reads random carts among the first COUNT_t that thread t of the
-- write run made: <prefix><t>-<hex(n * 2654435761 mod 2^32)>, n in [2, COUNT_t]
-- (wrk calls thread 0's request() once to check it before the run, so its
-- cart 1 was never sent; the last few of COUNT_t may have been in flight when
-- the write run ended, and read as empty carts).
--
-- Arguments (after --): PREFIX COUNT_0 COUNT_1 ...

local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function init(args)
  prefix = args[1] or "w"
  count = tonumber(args[2 + tid] or args[2] or "1")
  if count < 2 then count = 2 end
  math.randomseed(12345 + tid)
end

function request()
  local n = math.random(2, count)
  local id = string.format("%s%d-%s", prefix, tid, bit.tohex(bit.tobit(n * 2654435761)))
  return wrk.format("GET", "/carts/" .. id)
end
