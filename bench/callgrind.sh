#!/usr/bin/env bash
# Instructions per request of Tenantry's hot path and of the bare axum
# baseline, from `valgrind --tool=callgrind` (user-space instructions of the
# whole server process, every thread: repeatable on a loaded machine, where
# wall-clock figures are not). For each endpoint: the server under
# callgrind, BENCH_CG_WARMUP requests on one kept-alive connection, counters
# zeroed, BENCH_CG_REQUESTS requests, counters dumped; total ÷ requests.
# Keys rotate over BENCH_CG_KEYS seeded keys (all cached after the warm-up).
#
#   bench/callgrind.sh [TENANTRY_BIN [BARE_BIN]]   (default: target/release)
#
# Environment: BENCH_CG_REQUESTS [2000]  BENCH_CG_WARMUP [400]
#   BENCH_CG_KEYS [200]  BENCH_CG_KEEP  a directory to keep the callgrind
#   outputs in (for callgrind_annotate)
# SQLite only: the database is not in the request path of a cached key.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/tenantry}")
BARE=$(realpath "${2:-target/release/examples/bare_axum}")
REQUESTS=${BENCH_CG_REQUESTS:-2000}
WARMUP=${BENCH_CG_WARMUP:-400}
KEYS=${BENCH_CG_KEYS:-200}
command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 1; }

WORK=$(mktemp -d /tmp/tenantry-bench-cg.XXXXXX)
PID=
cleanup() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; } || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ROOT_KEY=bench-root-key-0123456789abcdefghijklmnop
export TENANTRY_DATA_DIR=$WORK/data TENANTRY_ROOT_KEY=$ROOT_KEY TENANTRY_LOG_LEVEL=warn
export TENANTRY_RESOLVE_ANONYMOUS_PER_MINUTE=0 TENANTRY_BASE_DOMAIN=bench.test
mkdir -p "$WORK/data"
"$BIN" seed --tenants "$KEYS" --keys-per-tenant 1 --out "$WORK/seed" >"$WORK/seed.log" 2>&1

# measure NAME CMD... → prints "NAME instructions-per-request"
measure() {
  local name=$1 port; shift
  port=$(free_port)
  TENANTRY_LISTEN=127.0.0.1:$port valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$name.%p" \
    "$@" $( [ "$1" = "$BIN" ] && echo serve || echo "127.0.0.1:$port") >"$WORK/$name.log" 2>&1 &
  PID=$!
  python3 - "$port" "$name" "$WORK/seed/valid-keys.txt" "$ROOT_KEY" "$WARMUP" "$REQUESTS" "$PID" <<'EOF'
import http.client, json, os, subprocess, sys, time
port, name, keys_file, root, warmup, requests, pid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
keys = [l.strip() for l in open(keys_file) if l.strip()]
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60); c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.5)
def one(i):
    key = keys[i % len(keys)]
    if name in ("healthz", "bare-healthz"):
        c.request("GET", "/healthz")
    elif name == "bare-echo":
        c.request("POST", "/echo", json.dumps({"key": key}), {"Content-Type": "application/json", "Authorization": "Bearer " + root})
    elif name == "verify":
        c.request("POST", "/v1/keys/verify", json.dumps({"key": key}), {"Content-Type": "application/json", "Authorization": "Bearer " + root})
    elif name == "resolve":
        c.request("GET", "/v1/resolve", headers={"X-API-Key": key})
    r = c.getresponse(); body = r.read()
    assert r.status == 200, (name, r.status, body)
for i in range(warmup): one(i)
# Background work at start (the audit worker's first checkpoint pass signs
# every chain, the caches fill) is not the request path: wait until the
# process is idle (under 5% of a core over a second, for at most 120 s).
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
hz = os.sysconf("SC_CLK_TCK")
for _ in range(120):
    a = cpu(); time.sleep(1)
    if cpu() - a <= 0.05 * hz:
        break
subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
for i in range(requests): one(i)
subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
EOF
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  local total
  total=$(cat "$WORK"/cg."$name".*.[0-9]* 2>/dev/null | awk '/^summary:/ { s += $2 } END { print s }')
  echo "$name $(awk -v t="$total" -v n="$REQUESTS" 'BEGIN { printf "%.0f", t / n }')"
  if [ -n "${BENCH_CG_KEEP:-}" ]; then mkdir -p "$BENCH_CG_KEEP"; cp "$WORK"/cg."$name".* "$BENCH_CG_KEEP/"; fi
  rm -f "$WORK"/cg."$name".*
}

measure bare-healthz "$BARE"
measure bare-echo "$BARE"
measure healthz "$BIN"
measure verify "$BIN"
measure resolve "$BIN"
