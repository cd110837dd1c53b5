-- wrk / wrk2 script of bench/scale.sh: verify or resolve a key drawn at
-- random from BENCH_FILE (one key a line). Requests are formatted as they
-- are sent, not all in init() as bench/resolve.lua does, so that a file of
-- millions of keys fits in LuaJIT's memory; both databases of a run pay the
-- same per-request cost.
--
--   BENCH_MODE      verify | resolve-key
--   BENCH_FILE      keys to draw from
--   BENCH_ROOT_KEY  bearer token for /v1/keys/verify
--   BENCH_SEED      random seed; thread i uses BENCH_SEED * 1000 + i
--   BENCH_CHECK     1: count responses whose body is not the expected one
--   BENCH_LABEL     name printed in the result line
--
-- done() prints one line: BENCHRESULT label=… requests=… rps=… p50_us=…
-- p99_us=… max_us=… status_errors=… socket_errors=… bad=… checked=…
-- (with wrk2 the percentiles are corrected for coordinated omission).

local mode = os.getenv("BENCH_MODE") or "verify"
local check = os.getenv("BENCH_CHECK") == "1"
local label = os.getenv("BENCH_LABEL") or mode

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

local keys = {}
local root = os.getenv("BENCH_ROOT_KEY") or ""
local expect
bad, checked = 0, 0

function init(args)
  math.randomseed(tonumber(os.getenv("BENCH_SEED") or "1") * 1000 + (tid or 1))
  local f = assert(io.open(os.getenv("BENCH_FILE"), "r"), "cannot open BENCH_FILE")
  for line in f:lines() do
    if #line > 0 then keys[#keys + 1] = line end
  end
  f:close()
  assert(#keys > 0, "no keys in BENCH_FILE")
  if mode == "verify" then
    expect = '"valid":true'
  elseif mode == "resolve-key" then
    expect = '"matched_by":"api_key"'
  else
    error("unknown BENCH_MODE " .. mode)
  end
end

local verify_headers
function request()
  local key = keys[math.random(#keys)]
  if mode == "verify" then
    verify_headers = verify_headers or
      { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. root }
    return wrk.format("POST", "/v1/keys/verify", verify_headers, '{"key":"' .. key .. '"}')
  end
  return wrk.format("POST", "/v1/resolve", { ["Content-Type"] = "application/json" },
    '{"api_key":"' .. key .. '"}')
end

if check then
  function response(status, headers, body)
    checked = checked + 1
    if status ~= 200 or not string.find(body, expect, 1, true) then
      bad = bad + 1
      if bad <= 3 then
        io.stderr:write(string.format("[%s] unexpected response %d: %s\n", label, status, body))
      end
    end
  end
end

function done(summary, latency, requests)
  local b, c = 0, 0
  for _, t in ipairs(threads) do
    b = b + (t:get("bad") or 0)
    c = c + (t:get("checked") or 0)
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "BENCHRESULT label=%s requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
    "p999_us=%d max_us=%d status_errors=%d socket_errors=%d bad=%d checked=%d\n",
    label, summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout, b, c))
end
