#!/usr/bin/env bash
# Issue 16's hot path, in one run per backend, against baselines of the same
# run: a bare axum server (crates/tenantry-server/examples/bare_axum.rs)
# answering `GET /healthz` and `POST /echo` (the verify requests' own bytes,
# rotating: the ceiling of the client and the HTTP stack for requests with
# rotating bodies), then Tenantry's `GET /healthz`, `POST /v1/keys/verify`
# and `GET /v1/resolve` by `X-API-Key`, keys drawn at random from the seeded
# ones (wrk + bench/resolve.lua). Rounds are interleaved (baselines, Tenantry,
# baselines), and each Tenantry row's ratio is over the mean of the baseline
# runs just before and after it.
#
# Then latency at a fixed rate: each Tenantry endpoint at BENCH_FIXED_SHARE
# (70 %) of the rate wrk just saturated it at, with wrk2 if there is one
# (`WRK2=/path/to/wrk` or `wrk2` in PATH: `-R`, a fixed rate with latency
# corrected for coordinated omission, the same rotating keys through
# bench/resolve.lua), else `oha` (`-q`, `--latency-correction`) or `hey`
# (`-q`: a rate per worker; the Debian package is installed if missing);
# oha and hey send one fixed key. p99 of that run is printed.
#
#   bench/hotpath.sh [sqlite|postgres|all]     (default: all)
#
# Environment (defaults in brackets):
#   BENCH_TENANTS [10000]   BENCH_KEYS_PER_TENANT [1]  (the keys drawn from)
#   BENCH_DURATION [8]      seconds per wrk run   BENCH_WARMUP [2]
#   BENCH_THREADS [1]       BENCH_CONNECTIONS [16]
#   BENCH_ROUNDS [2]        interleaved rounds
#   BENCH_FIXED_SECONDS [10]  BENCH_FIXED_SHARE [0.7]
#   BENCH_PG_URL            a PostgreSQL server to create a throw-away
#                           database on (dropped at exit); without it, the
#                           postgres backend is skipped
#   BENCH_NO_BUILD          use the existing target/release binaries
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

TARGET=${1:-all}
case "$TARGET" in
  sqlite) BACKENDS=(sqlite) ;;
  postgres) BACKENDS=(postgres) ;;
  all) BACKENDS=(sqlite postgres) ;;
  *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
esac
TENANTS=${BENCH_TENANTS:-10000}
KEYS_PER_TENANT=${BENCH_KEYS_PER_TENANT:-1}
DURATION=${BENCH_DURATION:-8}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
ROUNDS=${BENCH_ROUNDS:-2}
FIXED_SECONDS=${BENCH_FIXED_SECONDS:-10}
FIXED_SHARE=${BENCH_FIXED_SHARE:-0.7}

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

command -v wrk >/dev/null || die "wrk not found; install the wrk package"
WRK2=${WRK2:-$(command -v wrk2 || true)}
if [ -n "$WRK2" ]; then
  FIXED_TOOL=wrk2
elif command -v oha >/dev/null; then
  FIXED_TOOL=oha
else
  if ! command -v hey >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing hey (oha is not installed: \`cargo install oha --locked\` to use it)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hey >/dev/null || true
  fi
  command -v hey >/dev/null || die "neither oha nor hey found"
  FIXED_TOOL=hey
fi
if [ -z "${BENCH_NO_BUILD:-}" ]; then
  log "building release binaries (tenantry, bare_axum)"
  # (Two builds: naming an example restricts a build to its examples.)
  cargo build --release --locked -q -p tenantry --bin tenantry
  cargo build --release --locked -q -p tenantry-server --example bare_axum
fi
BIN=$REPO/target/release/tenantry BARE=$REPO/target/release/examples/bare_axum

WORK=$(mktemp -d /tmp/tenantry-bench-hotpath.XXXXXX)
PIDS=()
PG_DB=
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ -n "$PG_DB" ]; then psql "$BENCH_PG_URL" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_up() { for _ in $(seq 600); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done; die "$1 did not start"; }

B_PORT=$(free_port)
"$BARE" "127.0.0.1:$B_PORT" >"$WORK/bare.log" 2>&1 &
BARE_PID=$!; PIDS+=("$BARE_PID")
BARE_URL=http://127.0.0.1:$B_PORT

cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }

# wrk_run URL PID MODE FILE → "rps p99_us server_µs_per_request"
wrk_run() {
  local url=$1 pid=$2 mode=$3 file=$4 out c0 c1
  env BENCH_MODE="$mode" BENCH_FILE="$file" BENCH_ROOT_KEY="$ROOT_KEY" BENCH_CHECK=1 BENCH_LABEL=warm \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$REPO/bench/resolve.lua" "$url" >"$WORK/warm.txt" 2>&1
  grep -q ' bad=0 ' "$WORK/warm.txt" || { cat "$WORK/warm.txt" >&2; die "$mode: unexpected answers in the warm-up"; }
  c0=$(cpu_of "$pid")
  out=$(env BENCH_MODE="$mode" BENCH_FILE="$file" BENCH_ROOT_KEY="$ROOT_KEY" BENCH_LABEL="$mode" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$REPO/bench/resolve.lua" "$url" | grep '^BENCHRESULT')
  c1=$(cpu_of "$pid")
  awk -v l="$out" -v c0="$c0" -v c1="$c1" 'BEGIN {
    n = split(l, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
    if (v["status_errors"] + v["socket_errors"] > 0) { print "errors in " l > "/dev/stderr" }
    printf "%.0f %d %.1f\n", v["rps"], v["p99_us"], 1e6 * (c1 - c0) / v["requests"] }'
}

# fixed_run URL RATE KIND KEY KEYS_FILE → p99 in µs
fixed_run() {
  local url=$1 rate=$2 kind=$3 key=$4 file=$5 args=() out mode
  if [ "$FIXED_TOOL" = wrk2 ]; then
    mode=$kind; [ "$kind" = resolve ] && mode=resolve-key-header
    out=$(env BENCH_MODE="$mode" BENCH_FILE="$file" BENCH_ROOT_KEY="$ROOT_KEY" BENCH_LABEL="fixed-$kind" \
      "$WRK2" -t"$THREADS" -c"$CONNECTIONS" -d"${FIXED_SECONDS}s" -R"$rate" --latency -s "$REPO/bench/resolve.lua" "$url" \
      | grep '^BENCHRESULT')
    awk -v l="$out" 'BEGIN { n = split(l, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
      if (v["status_errors"] + v["socket_errors"] > 0) { print "errors in " l > "/dev/stderr" }
      print v["p99_us"] }'
    return
  fi
  if [ "$kind" = verify ]; then
    args=(-m POST -H "Authorization: Bearer $ROOT_KEY" -H "Content-Type: application/json" -d "{\"key\":\"$key\"}")
    url=$url/v1/keys/verify
  else
    args=(-H "X-API-Key: $key")
    url=$url/v1/resolve
  fi
  if [ "$FIXED_TOOL" = oha ]; then
    out=$(oha --no-tui -z "${FIXED_SECONDS}s" -c "$CONNECTIONS" -q "$rate" --latency-correction --disable-keepalive=false "${args[@]}" "$url")
    awk '/99.00%/ { v = $3; u = $4; print (u ~ /^ms/) ? v * 1000 : (u ~ /^s/ ? v * 1e6 : v) }' <<<"$out" | head -1
  else
    # hey: -q is per worker.
    out=$(hey -z "${FIXED_SECONDS}s" -c "$CONNECTIONS" -q "$(awk -v r="$rate" -v c="$CONNECTIONS" 'BEGIN { printf "%d", r / c }')" "${args[@]}" "$url")
    grep -q '\[200\]' <<<"$out" || { echo "$out" >&2; die "$kind at a fixed rate: no 200 answers"; }
    if grep -A20 'Status code distribution' <<<"$out" | grep -v '\[200\]' | grep -q '\[[0-9]*\]'; then
      log "WARNING: $kind at a fixed rate: other statuses: $(grep -A20 'Status code distribution' <<<"$out" | tr '\n' ' ')"
    fi
    awk '/ 99% in / { printf "%.0f\n", $3 * 1e6 }' <<<"$out"
  fi
}

ratio() { awk -v t="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.3f", t / ((a + b) / 2) }'; }

run_backend() {
  local backend=$1 dir=$WORK/$backend
  mkdir -p "$dir/data"
  ROOT_KEY=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
  local env=(TENANTRY_DATA_DIR="$dir/data" TENANTRY_ROOT_KEY="$ROOT_KEY" TENANTRY_LOG_LEVEL=warn
    TENANTRY_BASE_DOMAIN=bench.test TENANTRY_RESOLVE_ANONYMOUS_PER_MINUTE=0)
  if [ "$backend" = postgres ]; then
    PG_DB=hotpath_bench_$$
    psql "$BENCH_PG_URL" -qc "CREATE DATABASE $PG_DB" >/dev/null
    env+=(TENANTRY_DATABASE_URL="${BENCH_PG_URL%/*}/$PG_DB" TENANTRY_MASTER_KEY="$(head -c 32 /dev/urandom | base64)")
  fi
  log "$backend: seeding $TENANTS tenants x $KEYS_PER_TENANT keys"
  (cd "$dir" && env "${env[@]}" "$BIN" seed --tenants "$TENANTS" --keys-per-tenant "$KEYS_PER_TENANT" --out "$dir/seed" \
    >"$dir/seed.log" 2>&1) || { cat "$dir/seed.log" >&2; die "seeding failed"; }
  local port; port=$(free_port)
  (cd "$dir" && exec env "${env[@]}" TENANTRY_LISTEN="127.0.0.1:$port" "$BIN" serve) >"$dir/server.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  local url=http://127.0.0.1:$port
  wait_up "$url"
  local keys=$dir/seed/valid-keys.txt
  # Every seeded key once, so that the measured runs find them all cached.
  env BENCH_MODE=verify BENCH_FILE="$keys" BENCH_ROOT_KEY="$ROOT_KEY" BENCH_ORDER=seq BENCH_LABEL=cold \
    wrk -t1 -c"$CONNECTIONS" -d120s -s "$REPO/bench/resolve.lua" "$url" >/dev/null 2>&1 || true

  echo
  echo "### $backend ($TENANTS tenants × $KEYS_PER_TENANT keys, wrk -t$THREADS -c$CONNECTIONS ${DURATION}s, load at start $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  echo "| round | bare healthz | bare echo | Tenantry healthz (÷ bare healthz) | verify (÷ echo) | resolve by X-API-Key (÷ echo) | server µs/req: bare healthz / echo / healthz / verify / resolve |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  local prev_h prev_e next_h next_e th tv tr vmax=0 rmax=0
  prev_h=$(wrk_run "$BARE_URL" "$BARE_PID" healthz "")
  prev_e=$(wrk_run "$BARE_URL" "$BARE_PID" echo "$keys")
  for r in $(seq "$ROUNDS"); do
    th=$(wrk_run "$url" "$pid" healthz "")
    tv=$(wrk_run "$url" "$pid" verify "$keys")
    tr=$(wrk_run "$url" "$pid" resolve-key-header "$keys")
    next_h=$(wrk_run "$BARE_URL" "$BARE_PID" healthz "")
    next_e=$(wrk_run "$BARE_URL" "$BARE_PID" echo "$keys")
    local a b c d e f g
    read -r a _ ua <<<"$prev_h"; read -r b _ ub <<<"$prev_e"; read -r c _ uc <<<"$th"
    read -r d _ ud <<<"$tv"; read -r e _ ue <<<"$tr"; read -r f _ <<<"$next_h"; read -r g _ <<<"$next_e"
    echo "| $r | $a → $f | $b → $g | $c ($(ratio "$c" "$a" "$f")) | $d ($(ratio "$d" "$b" "$g")) | $e ($(ratio "$e" "$b" "$g")) | $ua / $ub / $uc / $ud / $ue |"
    [ "$d" -gt "$vmax" ] && vmax=$d
    [ "$e" -gt "$rmax" ] && rmax=$e
    prev_h=$next_h prev_e=$next_e
  done
  echo
  local key vrate rrate vp99 rp99
  key=$(head -1 "$keys")
  vrate=$(awk -v m="$vmax" -v s="$FIXED_SHARE" 'BEGIN { printf "%d", m * s }')
  rrate=$(awk -v m="$rmax" -v s="$FIXED_SHARE" 'BEGIN { printf "%d", m * s }')
  vp99=$(fixed_run "$url" "$vrate" verify "$key" "$keys")
  rp99=$(fixed_run "$url" "$rrate" resolve "$key" "$keys")
  echo "Fixed rate ($FIXED_TOOL, -c$CONNECTIONS, ${FIXED_SECONDS}s, ${FIXED_SHARE} × the best wrk rate above, load $(cut -d' ' -f1-3 /proc/loadavg)):"
  echo
  echo "| endpoint | rate (req/s) | p99 |"
  echo "|---|---:|---:|"
  echo "| POST /v1/keys/verify | $vrate | $(awk -v u="$vp99" 'BEGIN { printf "%.2f ms", u / 1000 }') |"
  echo "| GET /v1/resolve (X-API-Key) | $rrate | $(awk -v u="$rp99" 'BEGIN { printf "%.2f ms", u / 1000 }') |"
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  if [ -n "$PG_DB" ]; then psql "$BENCH_PG_URL" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true; PG_DB=; fi
}

wait_up "$BARE_URL"
echo "Commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' + working tree'); $(nproc) CPUs."
for backend in "${BACKENDS[@]}"; do
  if [ "$backend" = postgres ] && [ -z "${BENCH_PG_URL:-}" ]; then log "postgres skipped: set BENCH_PG_URL"; continue; fi
  run_backend "$backend"
done
