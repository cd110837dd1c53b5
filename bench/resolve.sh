#!/usr/bin/env bash
# Benchmarks the per-request hot path of Tenantry (key verification and
# tenant resolution) against /healthz, in one server session per backend.
#
#   bench/resolve.sh [sqlite|postgres|all]        (default: all)
#
# For each backend: seeds BENCH_TENANTS tenants with BENCH_KEYS_PER_TENANT
# keys each (`tenantry seed`, timed) into a fresh database, starts the release
# binary on a free port, then runs wrk (bench/resolve.lua) against it, endpoint
# after endpoint, /healthz first and again last; prints a Markdown table.
# PostgreSQL runs in a throw-away cluster started here (as in scripts/test,
# with fsync=off). Everything it starts is stopped and removed on exit.
#
# Environment (defaults in brackets):
#   BENCH_TENANTS [100000]  BENCH_KEYS_PER_TENANT [10]
#   BENCH_DURATION [10]     seconds per measured run
#   BENCH_WARMUP [3]        seconds of warm-up before each measured run
#   BENCH_COLD_MAX [120]    cap, in seconds, of a cold first pass
#   BENCH_THREADS [1]       wrk threads   BENCH_CONNECTIONS [16] connections
#   BENCH_SEED [1]          base seed of the random key/subdomain choices
#   BENCH_REV [HEAD]        the commit to measure: exported with `git archive`
#                           and built with `cargo build --release --locked` in
#                           target/bench (kept as a build cache), so edits in
#                           the working tree do not change what is measured;
#                           `worktree` builds the working tree (target/release)
#   BENCH_NO_BUILD          set to skip the build (uses an existing binary)
#   BENCH_QUIET_WAIT [10]   before each run, wait up to this many seconds for
#                           the machine to be idle (< BENCH_QUIET_CORES [0.3]
#                           cores busy); the CPU of other processes during each
#                           run is reported in the table either way
#   BENCH_NICE [0]          niceness for the server, PostgreSQL, the seeding and
#                           wrk, e.g. -10 (as root) on a machine shared with
#                           other work: the script then runs in a session of
#                           its own and sets that session's autogroup niceness
#                           too (with autogrouping, plain nice only ranks a
#                           session's own processes); the table's "other" CPU
#                           shows what other processes still took
#   BENCH_SETTLE_MIN [11]   after each run, seconds to watch for background
#   BENCH_SETTLE_MAX [120]  work it caused (key-usage flushes) and the most
#                           seconds to wait for the server to be idle again
#   BENCH_KEEP              a directory to copy raw wrk output and logs to
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

# With a niceness, run in a session (and so a scheduler autogroup) of our own;
# this outer copy only waits, and passes Ctrl-C / TERM on (the new session has
# no terminal), so that the inner copy still cleans up.
if [ "${BENCH_NICE:-0}" != 0 ] && [ -z "${BENCH_IN_SESSION:-}" ] && command -v setsid >/dev/null; then
  BENCH_IN_SESSION=1 setsid -w "$0" "$@" &
  inner=$!
  trap 'kill -TERM "$inner" 2>/dev/null; wait "$inner"; exit 130' INT TERM
  wait "$inner" && exit 0 || exit $?
fi
if [ "${BENCH_NICE:-0}" != 0 ] && [ -w /proc/self/autogroup ]; then
  echo "$BENCH_NICE" >/proc/self/autogroup 2>/dev/null || true
fi

TARGET=${1:-all}
case "$TARGET" in
  sqlite) BACKENDS=(sqlite) ;;
  postgres) BACKENDS=(postgres) ;;
  all) BACKENDS=(sqlite postgres) ;;
  *) echo "usage: $0 [sqlite|postgres|all]" >&2; exit 2 ;;
esac

TENANTS=${BENCH_TENANTS:-100000}
KEYS_PER_TENANT=${BENCH_KEYS_PER_TENANT:-10}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
COLD_MAX=${BENCH_COLD_MAX:-120}
THREADS=${BENCH_THREADS:-1}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
SEED=${BENCH_SEED:-1}
BASE_DOMAIN=bench.test
NICE=(nice -n "${BENCH_NICE:-0}")

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- Tools ---------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing wrk"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    die "wrk not found; install the wrk package"
  fi
fi
REV=${BENCH_REV:-HEAD}
if [ "$REV" = worktree ]; then
  BIN="$REPO/target/release/tenantry"
  COMMIT="$(git rev-parse --short HEAD) + working tree"
  if [ -z "${BENCH_NO_BUILD:-}" ]; then
    log "building the release binary (working tree)"
    cargo build --release --locked -q
  fi
else
  COMMIT=$(git rev-parse --short "$REV^{commit}") || die "unknown revision $REV"
  BIN="$REPO/target/bench/$COMMIT/release/tenantry"
  if [ -z "${BENCH_NO_BUILD:-}" ]; then
    log "building the release binary of $COMMIT (git archive into a temporary directory)"
    SRC=$(mktemp -d /tmp/tenantry-bench-src.XXXXXX)
    git archive "$COMMIT" | tar -x -C "$SRC"
    # One shared cache of dependencies; the binary is copied per commit.
    (cd "$SRC" && CARGO_TARGET_DIR="$REPO/target/bench/cache" cargo build --release --locked -q) \
      || { rm -rf "$SRC"; die "build of $COMMIT failed"; }
    rm -rf "$SRC"
    mkdir -p "$(dirname "$BIN")"
    cp "$REPO/target/bench/cache/release/tenantry" "$BIN"
  fi
fi
[ -x "$BIN" ] || die "$BIN not found (build it, or unset BENCH_NO_BUILD)"

find_pg_bin() {
  local candidate
  for candidate in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

# --- Cleanup -------------------------------------------------------------
WORK=$(mktemp -d /tmp/tenantry-bench.XXXXXX)
SERVER_PID=
PG_DIR=
PG_BIN=
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
stop_pg() {
  if [ -n "$PG_DIR" ]; then
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  PG_DIR=
}
cleanup() {
  stop_server
  stop_pg
  if [ -n "${BENCH_KEEP:-}" ]; then
    local dir
    for dir in "$WORK"/*/; do
      mkdir -p "$BENCH_KEEP/$(basename "$dir")"
      find "$dir" -maxdepth 1 \( -name '*.txt' -o -name '*.log' \) -exec cp {} "$BENCH_KEEP/$(basename "$dir")/" \; 2>/dev/null || true
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_pg() {
  PG_BIN=$(find_pg_bin) || die "PostgreSQL server binaries (initdb, pg_ctl) not found; install the postgresql package"
  PG_DIR=$(mktemp -d /tmp/tenantry-bench-pg.XXXXXX)
  local port
  port=$(free_port)
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
  log "starting PostgreSQL ($PG_BIN) on port $port (fsync=off, synchronous_commit=off, full_page_writes=off)"
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
  "${NICE[@]}" "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; exit 1; }
  DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# --- One measurement -----------------------------------------------------
# Server CPU time (user+system, seconds) so far.
server_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"
}

# CPU time (seconds) of the PostgreSQL cluster: the postmaster, its live
# children and the children it has reaped.
pg_cpu() {
  [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || { echo 0; return; }
  local pm pids
  pm=$(head -1 "$PG_DIR/data/postmaster.pid")
  pids=$(ps --ppid "$pm" -o pid= | tr '\n' ' ')
  # shellcheck disable=SC2086
  (cat "/proc/$pm/stat"; for p in $pids; do cat "/proc/$p/stat" 2>/dev/null; done) |
    awk -v hz="$(getconf CLK_TCK)" -v pm="$pm" '{ t += $14 + $15; if ($1 == pm) t += $16 + $17 } END { print t / hz }'
}

QUIET_WAIT=${BENCH_QUIET_WAIT:-10}
QUIET_CORES=${BENCH_QUIET_CORES:-0.3}
# Waits (up to QUIET_WAIT s) until the machine is idle: other work on these
# 2 cores would be measured as the server's slowness.
wait_quiet() {
  local waited=0 a b busy
  while :; do
    a=$(host_cpu); sleep 1; b=$(host_cpu)
    busy=$(awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", n * (y[1] - x[1]) / (y[2] - x[2]) }')
    if awk -v b="$busy" -v q="$QUIET_CORES" 'BEGIN { exit !(b < q) }'; then return 0; fi
    waited=$((waited + 1))
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      log "machine still busy ($busy cores) after ${QUIET_WAIT}s; measuring anyway"
      ps -eo pcpu=,comm= --sort=-pcpu | head -3 | sed 's/^/[bench]   /' >&2 || true
      return 0
    fi
  done
}

# Busy, total, and interrupt (irq + softirq: loopback TCP is mostly that)
# jiffies of the whole machine (all CPUs).
host_cpu() {
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $7 + $8 }' /proc/stat
}

# wrk_run NAME MODE ORDER SECONDS CHECK [FILE]: sets WRK_RESULT to the
# BENCHRESULT line followed by " server_cpu=<cores> db_cpu=<cores>
# wrk_cpu=<cores> other_cpu=<cores>" (CPU time used during the run over its
# wall time; other = the whole machine's busy time minus those three).
RUN_NO=0
wrk_run() {
  local name=$1 mode=$2 order=$3 seconds=$4 check=$5 file=${6:-}
  RUN_NO=$((RUN_NO + 1))
  local out="$RUN_DIR/wrk-$RUN_NO-${name//[^A-Za-z0-9-]/_}.txt"
  local cpu0 cpu1 t0 t1 host0 host1 pg0 pg1 wrk_init wpid
  wait_quiet
  env BENCH_MODE="$mode" BENCH_ORDER="$order" BENCH_CHECK="$check" \
    BENCH_FILE="$file" BENCH_ROOT_KEY="$ROOT_KEY" BENCH_BASE_DOMAIN="$BASE_DOMAIN" \
    BENCH_SEED="$((SEED * 100 + RUN_NO))" BENCH_THREADS="$THREADS" BENCH_LABEL="${name// /_}" \
    "${NICE[@]}" stdbuf -oL wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency \
    -s "$REPO/bench/resolve.lua" "http://$ADDR" >"$out" 2>&1 &
  wpid=$!
  # The CPU figures cover the run itself: wrk prints "Running" once its
  # threads have loaded and formatted their requests, then starts its clock.
  # (A cold pass is measured from its launch, setup included: it may be over
  # before "Running" is seen.)
  times >"$out.times0"
  host0=$(host_cpu); cpu0=$(server_cpu); pg0=$(pg_cpu); t0=$(date +%s.%N); wrk_init=0
  while ! grep -q '^Running' "$out" 2>/dev/null && kill -0 "$wpid" 2>/dev/null; do sleep 0.01; done
  if [ "$order" != seq ] && kill -0 "$wpid" 2>/dev/null; then
    host0=$(host_cpu); cpu0=$(server_cpu); pg0=$(pg_cpu); t0=$(date +%s.%N)
    wrk_init=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$wpid/stat" 2>/dev/null || echo 0)
    times >"$out.times0"
  fi
  wait "$wpid" || true
  times >"$out.times1"
  t1=$(date +%s.%N); pg1=$(pg_cpu); cpu1=$(server_cpu); host1=$(host_cpu)
  local line
  line=$(grep '^BENCHRESULT' "$out" || true)
  [ -n "$line" ] || { cat "$out" >&2; die "wrk produced no result for $name"; }
  if grep -q '^\[' "$out"; then grep '^\[' "$out" | head -3 >&2 || true; fi
  # `times`: the second line is the CPU of this shell's reaped children.
  local children
  children=$(cat "$out.times0" "$out.times1" | awk 'function s(t,  m) { m = t; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", t); sub(/s$/, "", t); return m * 60 + t }
    NR == 2 { a = s($1) + s($2) } NR == 4 { b = s($1) + s($2) } END { print b - a }')
  WRK_RESULT=$(awk -v a="$cpu0" -v b="$cpu1" -v t0="$t0" -v t1="$t1" -v w="$children" -v wi="$wrk_init" -v l="$line" \
    -v h0="$host0" -v h1="$host1" -v p0="$pg0" -v p1="$pg1" -v ncpu="$(nproc)" 'BEGIN {
    wall = t1 - t0; split(h0, x, " "); split(h1, y, " ");
    # (A PostgreSQL process that exits between two samples can make db
    # slightly negative: shown as 0.)
    server = (b - a) / wall; db = (p1 - p0) / wall; client = (w - wi) / wall;
    if (db < 0) { db = 0; p1 = p0 }
    host = ncpu * (y[1] - x[1]) / (y[2] - x[2]); irq = ncpu * (y[3] - x[3]) / (y[2] - x[2]);
    other = host - server - db - client - irq;
    printf "%s server_cpu=%.2f db_cpu=%.2f wrk_cpu=%.2f irq_cpu=%.2f other_cpu=%.2f server_cpu_s=%.3f db_cpu_s=%.3f wall_s=%.3f\n",
      l, server, db, (client < 0 ? 0 : client), irq, (other < 0 ? 0 : other), b - a, p1 - p0, wall }')
}

field() { # field NAME LINE
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"
}

# After a run: the server's background work it caused. Verified keys have
# their last-used time written by a worker every 10 s (key_usage_flush_interval),
# so this waits for one such tick (SETTLE_MIN s), then until the server and
# the database are idle (< 0.05 cores over a second; at most SETTLE_MAX s).
# Sets SETTLE to " after_s=… after_server_s=… after_db_s=…" (wall seconds,
# CPU seconds), and the next run starts on an idle server.
SETTLE_MIN=${BENCH_SETTLE_MIN:-11}
SETTLE_MAX=${BENCH_SETTLE_MAX:-120}
settle() {
  local t0 a0 p0 t1 a1 p1 a b pa pb n=0
  t0=$(date +%s.%N); a0=$(server_cpu); p0=$(pg_cpu)
  sleep "$SETTLE_MIN"
  while [ "$n" -lt "$SETTLE_MAX" ]; do
    a=$(server_cpu); pa=$(pg_cpu); sleep 1; b=$(server_cpu); pb=$(pg_cpu); n=$((n + 1))
    awk -v a="$a" -v b="$b" -v pa="$pa" -v pb="$pb" 'BEGIN { exit !((b - a) + (pb - pa) < 0.05) }' && break
  done
  t1=$(date +%s.%N); a1=$(server_cpu); p1=$(pg_cpu)
  # Less the last idle second, which is not background work.
  SETTLE=$(awk -v t0="$t0" -v t1="$t1" -v a0="$a0" -v a1="$a1" -v p0="$p0" -v p1="$p1" \
    'BEGIN { d = p1 - p0; printf " after_s=%.0f after_server_s=%.2f after_db_s=%.2f", t1 - t0 - 1, a1 - a0, (d < 0 ? 0 : d) }')
}

# A measured run after a warm-up (responses checked during the warm-up).
measure() { # measure NAME MODE [FILE]
  local name=$1 mode=$2 file=${3:-}
  local warm
  wrk_run "$name warm-up" "$mode" random "$WARMUP" 1 "$file"
  warm=$WRK_RESULT
  [ "$(field bad "$warm")" = 0 ] || log "WARNING: $name: $(field bad "$warm") unexpected responses in warm-up"
  wrk_run "$name" "$mode" random "$DURATION" 0 "$file"
  settle
  RESULTS+=("$name|$WRK_RESULT warm_checked=$(field checked "$warm") warm_bad=$(field bad "$warm")$SETTLE")
  log "$name: $(field rps "$WRK_RESULT") req/s, p50 $(field p50_us "$WRK_RESULT") µs, p99 $(field p99_us "$WRK_RESULT") µs, $(field status_errors "$WRK_RESULT") non-2xx"
}

# A cold first pass: every line of FILE once, in order, responses checked.
cold() { # cold NAME MODE FILE
  local name=$1 mode=$2 file=$3
  wrk_run "$name" "$mode" seq "$COLD_MAX" 1 "$file"
  settle
  RESULTS+=("$name|$WRK_RESULT warm_checked=- warm_bad=-$SETTLE")
  log "$name: $(field requests "$WRK_RESULT") requests, $(field rps "$WRK_RESULT") req/s, p50 $(field p50_us "$WRK_RESULT") µs, p99 $(field p99_us "$WRK_RESULT") µs, $(field bad "$WRK_RESULT") bad"
}

# --- One backend ---------------------------------------------------------
run_backend() {
  local backend=$1
  RUN_DIR="$WORK/$backend"
  mkdir -p "$RUN_DIR/data"
  ROOT_KEY=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
  DATABASE_URL=
  [ "$backend" = postgres ] && start_pg
  local env=(TENANTRY_DATA_DIR="$RUN_DIR/data" TENANTRY_ROOT_KEY="$ROOT_KEY" TENANTRY_LOG_LEVEL=warn
    TENANTRY_BASE_DOMAIN="$BASE_DOMAIN")
  [ -n "$DATABASE_URL" ] && env+=(TENANTRY_DATABASE_URL="$DATABASE_URL")
  # Newer servers need a master key (sealed credentials) with PostgreSQL;
  # older ones refuse unknown settings, so it is set only where it exists.
  local settings
  settings=$("$BIN" settings 2>/dev/null || true)
  if grep -q '^TENANTRY_MASTER_KEY\b' <<<"$settings"; then
    env+=(TENANTRY_MASTER_KEY="$(head -c 32 /dev/urandom | base64)")
  fi
  # wrk resolves anonymously from one address, far past the per-address limit
  # on anonymous resolution of newer servers: the benchmark measures
  # resolution, not that limit.
  if grep -q '^TENANTRY_RESOLVE_ANONYMOUS_PER_MINUTE\b' <<<"$settings"; then
    env+=(TENANTRY_RESOLVE_ANONYMOUS_PER_MINUTE=0)
  fi

  log "$backend: seeding $TENANTS tenants x $KEYS_PER_TENANT keys"
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$RUN_DIR" && "${NICE[@]}" env "${env[@]}" "$BIN" seed --tenants "$TENANTS" --keys-per-tenant "$KEYS_PER_TENANT" \
    --out "$RUN_DIR/seed" >"$RUN_DIR/seed.log" 2>&1) || { cat "$RUN_DIR/seed.log" >&2; die "seeding failed"; }
  t1=$(date +%s.%N)
  SEED_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  log "$backend: seeded in ${SEED_SECONDS}s ($(tail -1 "$RUN_DIR/seed.log"))"
  local db_size
  if [ "$backend" = sqlite ]; then
    db_size=$(du -sh "$RUN_DIR/data" | cut -f1)
  else
    db_size=$("$PG_BIN/psql" "$DATABASE_URL" -Atc "SELECT pg_size_pretty(pg_database_size(current_database()))" 2>/dev/null || echo "?")
  fi

  local port
  port=$(free_port)
  ADDR="127.0.0.1:$port"
  (cd "$RUN_DIR" && exec "${NICE[@]}" env "${env[@]}" TENANTRY_LISTEN="$ADDR" "$BIN" serve) >"$RUN_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do
    curl -fsS "http://$ADDR/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RUN_DIR/server.log" >&2; die "server exited"; }
    sleep 0.1
  done
  curl -fsS "http://$ADDR/readyz" >/dev/null || die "server not ready"
  log "$backend: server pid $SERVER_PID on $ADDR (database $db_size)"

  # Spot checks, recorded with the results.
  local valid unknown sub
  valid=$(head -1 "$RUN_DIR/seed/valid-keys.txt")
  unknown=$(head -1 "$RUN_DIR/seed/unknown-keys.txt")
  sub=$(head -1 "$RUN_DIR/seed/subdomains.txt")
  {
    echo "verify valid:   $(curl -sS -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' -d "{\"key\":\"$valid\"}" "http://$ADDR/v1/keys/verify")"
    echo "verify unknown: $(curl -sS -H "Authorization: Bearer $ROOT_KEY" -H 'Content-Type: application/json' -d "{\"key\":\"$unknown\"}" "http://$ADDR/v1/keys/verify")"
    echo "resolve host:   $(curl -sS -H "X-Forwarded-Host: $sub.$BASE_DOMAIN" "http://$ADDR/v1/resolve")"
    echo "resolve key:    $(curl -sS -H 'Content-Type: application/json' -d "{\"api_key\":\"$valid\"}" "http://$ADDR/v1/resolve")"
  } >"$RUN_DIR/spot-checks.log"

  RESULTS=()
  local seed_dir="$RUN_DIR/seed"
  measure "healthz" healthz
  cold "verify valid key: cold first pass" verify "$seed_dir/valid-keys.txt"
  measure "verify valid key" verify "$seed_dir/valid-keys.txt"
  cold "resolve by subdomain (GET): cold first pass" resolve-host "$seed_dir/subdomains.txt"
  measure "resolve by subdomain (GET)" resolve-host "$seed_dir/subdomains.txt"
  # The same on 1,000 tenants only, whose every cache entry stays warm.
  head -1000 "$seed_dir/subdomains.txt" >"$seed_dir/subdomains-1000.txt"
  measure "resolve by subdomain (GET), 1,000 hot tenants" resolve-host "$seed_dir/subdomains-1000.txt"
  measure "verify unknown key (unknown-keys.txt)" verify-unknown "$seed_dir/unknown-keys.txt"
  measure "verify unknown key (fresh each request)" verify-fresh "$seed_dir/unknown-keys.txt"
  measure "verify bad-checksum key" verify-badsum
  measure "resolve by API key (POST)" resolve-key "$seed_dir/valid-keys.txt"
  measure "healthz (again)" healthz

  local rss
  rss=$(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$SERVER_PID/status")
  stop_server
  [ "$backend" = postgres ] && stop_pg
  # Warnings and errors the server logged, by message, with counts.
  LOG_SUMMARY=$(sed 's/\x1b\[[0-9;]*m//g' "$RUN_DIR/server.log" | grep -E ' (WARN|ERROR) ' |
    sed -E 's/^[^ ]+ +//' | sort | uniq -c | sort -rn | head -5 || true)

  print_table "$backend" "$rss" "$db_size"
}

us_ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }

print_table() {
  local backend=$1 rss=$2 db_size=$3 floor=
  local entry name line
  for entry in "${RESULTS[@]}"; do
    [ "${entry%%|*}" = healthz ] && floor=$(field rps "${entry#*|}")
  done
  echo
  echo "### $backend"
  echo
  echo "Commit $COMMIT. $TENANTS tenants, $((TENANTS * KEYS_PER_TENANT)) keys; seeded in ${SEED_SECONDS} s; database $db_size; server peak RSS $rss."
  echo "wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s per measured run after a ${WARMUP}s warm-up; cold passes: each line once; niceness ${BENCH_NICE:-0}."
  echo
  echo "| endpoint | req/s | ratio vs healthz | p50 | p99 | p99.9 | target (≥70%, p99<2ms) | CPU (cores): server / db / wrk / irq / other | CPU µs per request: server / db | background work after the run: CPU s, server / db | errors |"
  echo "|---|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---|"
  for entry in "${RESULTS[@]}"; do
    name=${entry%%|*}; line=${entry#*|}
    local rps p50 p99 p999 ratio ok errs
    rps=$(field rps "$line"); p50=$(field p50_us "$line"); p99=$(field p99_us "$line"); p999=$(field p999_us "$line")
    ratio=$(awk -v r="$rps" -v f="$floor" 'BEGIN { printf "%.0f%%", 100 * r / f }')
    if [[ "$name" == *cold* ]] || [[ "$name" == healthz* ]]; then
      ok="—"
    else
      ok=$(awk -v r="$rps" -v f="$floor" -v p="$p99" 'BEGIN { print (r >= 0.7 * f && p < 2000) ? "yes" : "**no**" }')
    fi
    errs="$(field status_errors "$line") non-2xx, $(field socket_errors "$line") socket"
    if [ "$(field warm_bad "$line")" != "-" ]; then
      errs="$errs; warm-up: $(field warm_bad "$line")/$(field warm_checked "$line") bad bodies"
    else
      errs="$errs; $(field bad "$line")/$(field checked "$line") bad bodies"
    fi
    local per_req
    per_req=$(awk -v s="$(field server_cpu_s "$line")" -v d="$(field db_cpu_s "$line")" -v n="$(field requests "$line")" \
      'BEGIN { printf "%.0f / %.0f", 1e6 * s / n, 1e6 * d / n }')
    local after
    after=$(awk -v s="$(field after_s "$line")" -v a="$(field after_server_s "$line")" -v d="$(field after_db_s "$line")" \
      'BEGIN { if (a + d < 0.2) print "—"; else printf "%.1f / %.1f (idle after %s s)", a, d, s }')
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" \
      "$(awk -v r="$rps" 'BEGIN { printf "%.0f", r }')" "$ratio" "$(us_ms "$p50")" "$(us_ms "$p99")" \
      "$(us_ms "$p999")" "$ok" "$(field server_cpu "$line") / $(field db_cpu "$line") / $(field wrk_cpu "$line") / $(field irq_cpu "$line") / $(field other_cpu "$line")" "$per_req" "$after" "$errs"
  done
  echo
  if [ -n "$LOG_SUMMARY" ]; then
    echo "Server log (level warn), by message:"
    echo
    echo '```'
    echo "$LOG_SUMMARY"
    echo '```'
  else
    echo "Server log: no warnings or errors."
  fi
  echo
  echo "<details><summary>raw ($backend)</summary>"
  echo
  echo '```'
  for entry in "${RESULTS[@]}"; do echo "${entry#*|}"; done
  cat "$RUN_DIR/spot-checks.log"
  echo '```'
  echo
  echo "</details>"
}

log "results in $WORK (removed on exit)"
for backend in "${BACKENDS[@]}"; do
  run_backend "$backend"
done
