-- wrk script of bench/resolve.sh: one file, several request kinds.
--
-- Configured through the environment (wrk passes it through unchanged):
--   BENCH_MODE         healthz | verify | verify-unknown | verify-fresh |
--                      verify-badsum | resolve-host | resolve-key |
--                      resolve-key-header (GET with X-API-Key) |
--                      echo (POST /echo of the verify bodies: the bare axum
--                      baseline of bench/resolve.sh)
--   BENCH_FILE         lines to pick from (keys or subdomains); for
--                      verify-fresh it is only used to self-test the checksum
--   BENCH_GENERATED    how many keys verify-fresh / verify-badsum generate
--                      (default 100000), sent in order, so none repeats
--                      within BENCH_GENERATED requests
--   BENCH_ROOT_KEY     bearer token for /v1/keys/verify
--   BENCH_BASE_DOMAIN  e.g. bench.test (resolve-host)
--   BENCH_ORDER        random (default): a random line per request, or
--                      seq: every line once, in order, then stop (a cold
--                      first pass; wrk is stopped early with SIGINT)
--   BENCH_SEED         random seed; thread i uses BENCH_SEED * 1000 + i
--   BENCH_CHECK        1: parse every response and count the ones whose
--                      body is not what this mode expects (costs wrk CPU,
--                      so measured runs leave it off; warm-ups turn it on)
--   BENCH_LABEL        name printed in the result line
--
-- done() prints one machine-readable line:
--   BENCHRESULT label=… requests=… seconds=… rps=… p50_us=… p90_us=…
--   p99_us=… p999_us=… max_us=… status_errors=… socket_errors=… bad=… checked=…
-- Latency percentiles come from wrk's own histogram (the numbers `wrk
-- --latency` prints), in microseconds.
--
-- Every request is formatted once, in init(), so that sending one costs wrk
-- the same little work whatever the endpoint (wrk shares the CPUs with the
-- server).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
  int getpid(void);
  int kill(int pid, int sig);
]]

local function now_us()
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local mode = os.getenv("BENCH_MODE") or "healthz"
local order = os.getenv("BENCH_ORDER") or "random"
local check = os.getenv("BENCH_CHECK") == "1"
local label = os.getenv("BENCH_LABEL") or mode

---------------------------------------------------------------------------
-- Main state: one setup() per thread, then done().

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local n = summary.requests
  local bad, checked, seq_n, seq_us = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("bad") or 0)
    checked = checked + (t:get("checked") or 0)
    seq_n = seq_n + (t:get("seq_n") or 0)
    seq_us = math.max(seq_us, t:get("seq_us") or 0)
  end
  -- A sequential pass stops itself once every line was answered; its rate is
  -- that many answers over the time they took (wrk's own clock also counts
  -- the moments until the stop is noticed).
  if order == "seq" and seq_us > 0 then
    n, seconds = seq_n, seq_us / 1e6
  end
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT label=%s requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
    "p999_us=%d max_us=%d mean_us=%.1f status_errors=%d socket_errors=%d bad=%d checked=%d\n",
    label, n, seconds, n / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    e.status, e.connect + e.read + e.write + e.timeout, bad, checked))
end

---------------------------------------------------------------------------
-- Thread states.

local ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local alpha = {}
for i = 1, 62 do alpha[i] = ALPHABET:sub(i, i) end

-- CRC-32 (IEEE, as crc32fast), then 6 base62 digits: the key checksum of
-- tenantry-core/src/keys.rs.
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if bit.band(c, 1) == 1 then
      c = bit.bxor(bit.rshift(c, 1), 0xEDB88320)
    else
      c = bit.rshift(c, 1)
    end
  end
  crc_table[i] = c
end

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = bit.bxor(crc_table[bit.band(bit.bxor(c, s:byte(i)), 0xFF)], bit.rshift(c, 8))
  end
  c = bit.bnot(c)
  if c < 0 then c = c + 4294967296 end
  return c
end

local function checksum(body)
  local n = crc32(body)
  local out = {}
  for i = 6, 1, -1 do
    out[i] = alpha[n % 62 + 1]
    n = math.floor(n / 62)
  end
  return table.concat(out)
end

local function random_chars(count)
  local out = {}
  for i = 1, count do out[i] = alpha[math.random(62)] end
  return table.concat(out)
end

-- A well-formed key with a correct checksum that was never issued.
local function fresh_key()
  local body = "tnt_sk_live_" .. random_chars(32)
  return body .. checksum(body)
end

-- The right shape, but a checksum that does not match.
local function badsum_key()
  while true do
    local body = "tnt_sk_live_" .. random_chars(32)
    local sum = random_chars(6)
    if sum ~= checksum(body) then return body .. sum end
  end
end

local lines = {}
local reqs = {} -- every request this thread sends, formatted once in init()
local idx = 0
local seq_start, answered = nil, 0
bad, checked, seq_n, seq_us = 0, 0, 0, 0 -- globals: read by done() via thread:get

local expect -- a good response body contains this

local function load_lines(path)
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in f:lines() do
    if #line > 0 then lines[#lines + 1] = line end
  end
  f:close()
  assert(#lines > 0, "no lines in " .. path)
end

function init(args)
  local seed = tonumber(os.getenv("BENCH_SEED") or "1") * 1000 + (tid or 1)
  math.randomseed(seed)
  local root = os.getenv("BENCH_ROOT_KEY") or ""
  local base = os.getenv("BENCH_BASE_DOMAIN") or "bench.test"
  -- Generated keys: enough that none repeats within the 5 s a negative
  -- cache entry lives at the rates seen here.
  local generated = tonumber(os.getenv("BENCH_GENERATED") or "100000")
  if mode == "healthz" then
    expect = '"status":"ok"'
  elseif mode == "verify" then
    expect = '"valid":true'
  elseif mode == "verify-unknown" or mode == "verify-fresh" or mode == "verify-badsum" then
    expect = '"valid":false,"code":"NOT_FOUND"'
  elseif mode == "resolve-host" then
    expect = '"matched_by":"subdomain"'
  elseif mode == "resolve-key" or mode == "resolve-key-header" then
    expect = '"matched_by":"api_key"'
  elseif mode == "echo" then
    expect = '"key":"'
  else
    error("unknown BENCH_MODE " .. mode)
  end

  if mode == "verify-fresh" or mode == "verify-badsum" then
    if os.getenv("BENCH_FILE") and os.getenv("BENCH_FILE") ~= "" then
      -- Self-test: the checksum here must agree with the server's.
      load_lines(os.getenv("BENCH_FILE"))
      for i = 1, math.min(#lines, 100) do
        local key = lines[i]
        assert(checksum(key:sub(1, 44)) == key:sub(45), "Lua checksum disagrees on " .. key)
      end
    end
    lines = {}
    local make = (mode == "verify-fresh") and fresh_key or badsum_key
    for i = 1, generated do lines[i] = make() end
  elseif mode ~= "healthz" then
    load_lines(os.getenv("BENCH_FILE"))
  else
    lines = { "" }
  end

  if order == "seq" then
    -- Each thread takes every n-th line (n = BENCH_THREADS).
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
    local mine = {}
    for i = tid or 1, #lines, nthreads do mine[#mine + 1] = lines[i] end
    lines = mine
  end

  local verify_headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. root }
  for i, line in ipairs(lines) do
    if mode == "healthz" then
      reqs[i] = wrk.format("GET", "/healthz", {})
    elseif mode == "resolve-host" then
      reqs[i] = wrk.format("GET", "/v1/resolve", { ["X-Forwarded-Host"] = line .. "." .. base })
    elseif mode == "resolve-key" then
      reqs[i] = wrk.format("POST", "/v1/resolve", { ["Content-Type"] = "application/json" },
        '{"api_key":"' .. line .. '"}')
    elseif mode == "resolve-key-header" then
      reqs[i] = wrk.format("GET", "/v1/resolve", { ["X-API-Key"] = line })
    elseif mode == "echo" then
      -- The same bytes as a verify request, to a server that only echoes.
      reqs[i] = wrk.format("POST", "/echo", verify_headers, '{"key":"' .. line .. '"}')
    else -- verify, verify-unknown, verify-fresh, verify-badsum
      reqs[i] = wrk.format("POST", "/v1/keys/verify", verify_headers, '{"key":"' .. line .. '"}')
    end
  end
end

-- Generated keys are random already: they are sent in order, so that one
-- comes back only after all the others (BENCH_GENERATED requests later).
local in_order = order == "seq" or mode == "verify-fresh" or mode == "verify-badsum"

function request()
  if in_order then
    if order == "seq" and not seq_start then seq_start = now_us() end
    idx = idx % #reqs + 1
    return reqs[idx]
  end
  return reqs[math.random(#reqs)]
end

local function finish_seq()
  seq_n = answered
  seq_us = now_us() - seq_start
  wrk.thread:stop()
  if tonumber(os.getenv("BENCH_THREADS") or "1") == 1 then
    ffi.C.kill(ffi.C.getpid(), 2) -- SIGINT: wrk's main thread stops waiting
  end
end

-- response() makes wrk hand over headers and bodies, which costs it CPU:
-- define it only when checking, or for a sequential pass (which must count).
if check or order == "seq" then
  function response(status, headers, body)
    if check then
      checked = checked + 1
      if status ~= 200 or not string.find(body, expect, 1, true) then
        bad = bad + 1
        if bad <= 3 then
          io.stderr:write(string.format("[%s] unexpected response %d: %s\n", label, status, body))
        end
      end
    end
    if order == "seq" and seq_us == 0 then
      answered = answered + 1
      if answered >= #lines then finish_seq() end
    end
  end
end
