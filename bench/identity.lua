-- wrk script of bench/identity.sh: GET /v1/resolve with a bearer credential
-- (an API key or a login token) from BENCH_FILE, one line after the other.
-- Prints one line: BENCHRESULT label=… rps=… p50_us=… p99_us=… errors=…
local lines, reqs, idx = {}, {}, 0

function init(args)
  local f = assert(io.open(os.getenv("BENCH_FILE"), "r"))
  for line in f:lines() do
    if #line > 0 then lines[#lines + 1] = line end
  end
  f:close()
  for i, line in ipairs(lines) do
    reqs[i] = wrk.format("GET", "/v1/resolve", { ["Authorization"] = "Bearer " .. line })
  end
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("BENCHRESULT label=%s rps=%.1f p50_us=%d p99_us=%d errors=%d\n",
    os.getenv("BENCH_LABEL") or "?", summary.requests / seconds,
    latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
