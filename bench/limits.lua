-- wrk script for bench/limits.sh. BENCH_MODE: healthz | event | batch |
-- ratelimit | quota. Every event gets a unique id (thread id + counter), so
-- each request records new usage rather than duplicates.
local mode = os.getenv("BENCH_MODE") or "healthz"
local root = os.getenv("BENCH_ROOT_KEY") or ""
local tenant = os.getenv("BENCH_TENANT") or "bench"
local run = os.getenv("BENCH_RUN") or "r"
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function init(args)
  counter = 0
  wrk.headers["Authorization"] = "Bearer " .. root
  wrk.headers["Content-Type"] = "application/json"
end

local function event(n)
  return string.format('{"id":"%s-%d-%d","tenant_id":"%s","meter":"messages_outbound"}', run, tid, n, tenant)
end

function request()
  counter = counter + 1
  if mode == "healthz" then
    return wrk.format("GET", "/healthz")
  elseif mode == "event" then
    return wrk.format("POST", "/v1/usage/events", nil, event(counter))
  elseif mode == "batch" then
    local parts = {}
    for i = 1, 1000 do
      parts[i] = event(counter * 1000 + i)
    end
    return wrk.format("POST", "/v1/usage/events", nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
  elseif mode == "ratelimit" then
    return wrk.format("POST", "/v1/ratelimit", nil, string.format('{"tenant_id":"%s","limit":"bench_per_second"}', tenant))
  elseif mode == "quota" then
    return wrk.format("POST", "/v1/quotas/check", nil, string.format('{"tenant_id":"%s","meter":"messages_outbound","quantity":1,"consume":true}', tenant))
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("BENCHRESULT mode=%s requests=%d rps=%.1f p50_us=%d p99_us=%d errors=%d\n",
    mode, summary.requests, summary.requests / seconds, latency:percentile(50), latency:percentile(99), errors))
end
