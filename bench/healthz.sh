#!/usr/bin/env bash
# Benchmarks what Tenantry's own request path costs: its `GET /healthz`
# against a bare axum server answering the same body with no middleware
# (crates/tenantry-server/examples/bare_axum.rs), both release builds, in the
# same run, interleaved: bare, Tenantry, bare, Tenantry, …, bare. The ratio of
# a Tenantry run is its req/s over the mean of the bare runs just before and
# after it. Also prints the server CPU time per request (µs, from
# /proc/<pid>/stat), which is less moved by other load than req/s, and how
# busy the rest of the machine was during each run.
#
#   bench/healthz.sh
#
# Environment (defaults in brackets):
#   BENCH_DURATION [10]  seconds per wrk run     BENCH_WARMUP [2]
#   BENCH_THREADS [1]    BENCH_CONNECTIONS [16]  BENCH_ROUNDS [3]
#   BENCH_LOG_LEVEL [warn]  Tenantry's TENANTRY_LOG_LEVEL (info logs a line
#                        per request)
#   BENCH_OTHER_BIN      another tenantry binary (e.g. the commit before a
#                        change) measured in the same rounds, after Tenantry
#   BENCH_NO_BUILD       use the existing target/release binaries
# Everything started here is stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
ROUNDS=${BENCH_ROUNDS:-3}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}
OTHER=${BENCH_OTHER_BIN:-}

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

command -v wrk >/dev/null || { log "wrk not found; install the wrk package"; exit 1; }
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  log "building release binaries (tenantry, bare_axum)"
  # (Two builds: naming an example restricts a build to its examples.)
  cargo build --release --locked -q -p tenantry --bin tenantry
  cargo build --release --locked -q -p tenantry-server --example bare_axum
fi
TENANTRY=target/release/tenantry BARE=target/release/examples/bare_axum

WORK=$(mktemp -d /tmp/tenantry-bench-healthz.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_up() { for _ in $(seq 300); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done; log "$1 did not start"; exit 1; }

B_PORT=$(free_port)
"$BARE" "127.0.0.1:$B_PORT" >"$WORK/bare.log" 2>&1 &
BARE_PID=$!; PIDS+=("$BARE_PID")
start_tenantry() { # start_tenantry BIN NAME → sets T_PID, T_URL
  local port
  port=$(free_port)
  mkdir -p "$WORK/$2"
  TENANTRY_DATA_DIR=$WORK/$2 TENANTRY_ROOT_KEY=bench-root-key-0123456789abcdefghijklmnop \
    TENANTRY_LISTEN=127.0.0.1:$port TENANTRY_LOG_LEVEL=$LOG_LEVEL "$1" serve >"$WORK/$2.log" 2>&1 &
  T_PID=$!; PIDS+=("$T_PID"); T_URL=http://127.0.0.1:$port
}
start_tenantry "$TENANTRY" tenantry; T1_PID=$T_PID T1_URL=$T_URL
if [ -n "$OTHER" ]; then start_tenantry "$OTHER" other; T2_PID=$T_PID T2_URL=$T_URL; fi
wait_up "http://127.0.0.1:$B_PORT"; wait_up "$T1_URL"; [ -z "$OTHER" ] || wait_up "$T2_URL"
body_bare=$(curl -sf "http://127.0.0.1:$B_PORT/healthz"); body_t=$(curl -sf "$T1_URL/healthz")
[ "$body_bare" = "$body_t" ] || { log "bodies differ: $body_bare vs $body_t"; exit 1; }

busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }

# run URL PID → "req/s server-µs-per-request machine-busy-cores"
run() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$1/healthz" >/dev/null
  local c0 c1 h0 h1 out
  c0=$(cpu_of "$2"); h0=$(busy)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$1/healthz")
  c1=$(cpu_of "$2"); h1=$(busy)
  awk -v out="$(awk '/^Requests\/sec/ {print $2} /^ +[0-9]+ requests in/ {print $1}' <<<"$out" | tr '\n' ' ')" \
    -v c0="$c0" -v c1="$c1" -v h0="$h0" -v h1="$h1" -v n="$(nproc)" 'BEGIN {
      split(out, o, " "); split(h0, a, " "); split(h1, b, " ");
      printf "%.0f %.1f %.2f\n", o[2], 1e6 * (c1 - c0) / o[1], n * (b[1] - a[1]) / (b[2] - a[2]) }'
}

log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | bare axum before (req/s, µs/req) | Tenantry (req/s, µs/req) | ratio | ${OTHER:+other (req/s, µs/req) | ratio |} bare axum after | machine busy (cores, of $(nproc)) |"
echo "|---|---:|---:|---:|${OTHER:+---:|---:|}---:|---|"
prev=$(run "http://127.0.0.1:$B_PORT" "$BARE_PID")
for r in $(seq "$ROUNDS"); do
  t=$(run "$T1_URL" "$T1_PID")
  o=; [ -z "$OTHER" ] || o=$(run "$T2_URL" "$T2_PID")
  next=$(run "http://127.0.0.1:$B_PORT" "$BARE_PID")
  read -r pb pbu pbb <<<"$prev"; read -r tr tu tb <<<"$t"; read -r nb nbu nbb <<<"$next"
  mean=$(awk -v a="$pb" -v b="$nb" 'BEGIN { print (a + b) / 2 }')
  ratio=$(awk -v t="$tr" -v m="$mean" 'BEGIN { printf "%.3f", t / m }')
  other=
  if [ -n "$o" ]; then
    read -r orr ou ob <<<"$o"
    other="$orr, $ou | $(awk -v t="$orr" -v m="$mean" 'BEGIN { printf "%.3f", t / m }') | "
  fi
  echo "| $r | $pb, $pbu | $tr, $tu | $ratio | $other$nb, $nbu | $pbb / $tb${o:+ / $ob} / $nbb |"
  prev=$next
done
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
