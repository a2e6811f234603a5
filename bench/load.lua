-- wrk script for bench/load.py: POST one enterprise per request, cycling through request bodies
-- written one per line in the file given as the first argument; the key is the second argument.
--   wrk -t1 -c32 -d10s --latency -s bench/load.lua http://127.0.0.1:8765/v1/policies/bench.scorecard/evaluations -- bodies.ndjson rrk_…
local bodies = {}
local n = 0
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    bodies[n] = line
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end

function request()
  i = i % n + 1
  return wrk.format(nil, nil, nil, bodies[i])
end

function done(summary, latency, requests)
  io.write(string.format("STATUS_ERRORS %d\n", summary.errors.status))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("LATENCY_P%s_US %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("REQUESTS %d\nDURATION_US %d\n", summary.requests, summary.duration))
end
