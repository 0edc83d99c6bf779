-- wrk script: POST /carts/<id>/items with a JSON body, a new cart for every
-- request (bench/cart_http.py). Each wrk thread numbers its requests 1, 2, ...
-- and request n goes to cart <prefix><thread>-<hex(n * 2654435761 mod 2^32)>:
-- distinct carts (the factor is odd, so the map is a bijection), in an order
-- unrelated to their keys' byte order, and no cart comes near the limits of
-- docs/cart-api.md (one line of quantity 1-5 each). done() prints how many
-- requests each thread made, so that cart_read.lua can read those carts
-- (the count includes the one request() call wrk makes in thread 0 to check
-- the script, which is never sent).
--
-- Arguments (after --): PREFIX (default "w").

local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "w"
  made = 0
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  made = made + 1
  local id = string.format("%s%d-%s", prefix, tid, bit.tohex(bit.tobit(made * 2654435761)))
  local body = string.format('{"sku":"sku-%d","quantity":%d}', made % 97, 1 + made % 5)
  return wrk.format("POST", "/carts/" .. id .. "/items", nil, body)
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("carts-written thread=%d requests=%d\n", thread:get("tid"),
                           thread:get("made")))
  end
end
