-- wrk script for bench/run.py: POSTs request bodies drawn at random and reports one JSON line.
--   wrk -t1 -c8 -d10s -s bench/loadgen.lua http://127.0.0.1:8765/graphql -- BODIES SEED STAGGER 8 "Name: value" ...
-- BODIES holds one JSON request body per line, drawn uniformly (with replacement) from a generator
-- seeded with SEED. Each of the 8 connections' first request waits a random 0..STAGGER ms, so they
-- do not move in lockstep (a slow server answering all of them at once would otherwise make the
-- throughput arrive in waves). The other arguments are request headers.
-- A response counts as an error when its status is not 200 or its body has a GraphQL "errors" key.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  math.randomseed(tonumber(args[2]))
  stagger = tonumber(args[3])
  connections = tonumber(args[4]) -- of this thread (run with -t1)
  started = 0
  headers = { ["Content-Type"] = "application/json" }
  for i = 5, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  bad = 0
end

function delay()
  if started < connections then
    started = started + 1
    return math.random(0, stagger)
  end
  return 0
end

function request()
  return wrk.format("POST", nil, headers, bodies[math.random(#bodies)])
end

function response(status, _, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, _)
  local bad_total = 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "bad_responses": %d, '
      .. '"socket_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad_total,
    e.connect + e.read + e.write, e.timeout))
end
