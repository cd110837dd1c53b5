#!/usr/bin/env bash
# Issue 16, "flat at a million tenants": verify and resolve latency on a small
# and a large database under the same fixed-rate load, and the server's
# memory per cached key and per cached tenant.
#
#   bench/scale.sh [sqlite|postgres|all]        (default: all)
#
# Per backend: seeds two databases with `tenantry seed` (timed), SMALL and
# LARGE tenants with KEYS_PER_TENANT keys each; then, one server at a time
# on the small, then the large database, the same runs at the same request
# rate (wrk2 -R: a fixed rate, latency corrected for coordinated omission):
#   verify (POST /v1/keys/verify) and resolve (POST /v1/resolve by api_key),
#   keys drawn at random from a hot set (SCALE_HOT keys spread over as many
#   tenants, as bench/resolve.sh does), and drawn uniformly from all keys
#   (the large database: SCALE_UNIFORM keys, more than the key cache holds,
#   so most lookups go to the database: the honest worst case).
# The rate is SCALE_RATE, or 70% of the small database's verify saturation
# (plain wrk, same connections, hot set) measured first.
# Then memory, on a fresh server on the large database: VmRSS before and
# after resolving SCALE_MEM_TENANTS distinct tenants by subdomain (host and
# tenant entries), then after verifying 2 keys of each of them (key entries;
# their tenants are cached already).
# PostgreSQL runs in a throw-away cluster (fsync=off, settings printed).
# Everything is removed on exit, databases included.
#
# Environment (defaults in brackets):
#   SCALE_SMALL [10000]  SCALE_LARGE [1000000]  SCALE_KEYS_PER_TENANT [10]
#   SCALE_HOT [10000]    SCALE_UNIFORM [2000000] keys of the large database
#                        written out for the uniform run
#   SCALE_RATE           requests/s of every fixed-rate run [70% of saturation]
#   SCALE_DURATION [20]  SCALE_WARMUP [5] seconds
#   SCALE_THREADS [1]    SCALE_CONNECTIONS [32]
#   SCALE_MEM_TENANTS [100000]
#   SCALE_PG_SHARED_BUFFERS [128MB]
#   SCALE_WORK [/tmp]    where the databases go (a few GB for the large one)
#   BENCH_BIN [target/release/tenantry]  (built with --release if missing)
#   SCALE_SEED_BIN [BENCH_BIN]  the binary whose `tenantry seed` loads the data
#   WRK2 [wrk2 in PATH]  a wrk2 binary (github.com/giltene/wrk2, built with make)
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

SMALL=${SCALE_SMALL:-10000}
LARGE=${SCALE_LARGE:-1000000}
KPT=${SCALE_KEYS_PER_TENANT:-10}
HOT=${SCALE_HOT:-10000}
UNIFORM=${SCALE_UNIFORM:-2000000}
DURATION=${SCALE_DURATION:-20}
WARMUP=${SCALE_WARMUP:-5}
THREADS=${SCALE_THREADS:-1}
CONNECTIONS=${SCALE_CONNECTIONS:-32}
MEM_TENANTS=${SCALE_MEM_TENANTS:-100000}
SHARED_BUFFERS=${SCALE_PG_SHARED_BUFFERS:-128MB}
BASE_DOMAIN=bench.test
RATE=${SCALE_RATE:-}

log() { printf '\033[1m[scale]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- Tools ---------------------------------------------------------------
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
WRK2=${WRK2:-$(command -v wrk2 || true)}
[ -n "$WRK2" ] && [ -x "$WRK2" ] || die "wrk2 not found: build github.com/giltene/wrk2 (make; needs libssl-dev, zlib1g-dev) and set WRK2=/path/to/wrk2/wrk"

BIN=${BENCH_BIN:-$REPO/target/release/tenantry}
if [ ! -x "$BIN" ]; then
  log "building the release binary"
  cargo build --release --locked -q -p tenantry
fi
SEED_BIN=${SCALE_SEED_BIN:-$BIN}
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' + working tree')"

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
WORK=$(mktemp -d "${SCALE_WORK:-/tmp}/tenantry-scale.XXXXXX")
SERVER_PID=
PG_DIR=
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
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
cleanup() { stop_server; stop_pg; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

PG_SETTINGS="fsync=off synchronous_commit=off full_page_writes=off max_connections=200 shared_buffers=$SHARED_BUFFERS"
start_pg() {
  PG_BIN=$(find_pg_bin) || die "PostgreSQL server binaries not found"
  PG_DIR=$(mktemp -d "$WORK/pg.XXXXXX")
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
  PG_PORT=$(free_port)
  local opts="-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" s
  for s in $PG_SETTINGS; do opts="$opts -c $s"; done
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 -o "$opts" start >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; exit 1; }
  log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT ($PG_SETTINGS)"
}

# --- Helpers -------------------------------------------------------------
field() { # field NAME LINE
  tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2; exit }'
}
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$SERVER_PID/status"; }
# api_keys cache hits and misses so far ("hits misses").
key_cache() {
  curl -fsS -H "Authorization: Bearer $ROOT_KEY" "http://$ADDR/metrics" |
    awk '/^tenantry_cache_lookups_total\{cache="api_keys",result="hit"\}/ { h = $2 }
         /^tenantry_cache_lookups_total\{cache="api_keys",result="miss"\}/ { m = $2 }
         END { print h + 0, m + 0 }'
}

# server_env DB_NAME: the settings of a server (or seed) on that database.
server_env() {
  local name=$1
  ENV=(TENANTRY_DATA_DIR="$WORK/$BACKEND-$name" TENANTRY_ROOT_KEY="$ROOT_KEY" TENANTRY_LOG_LEVEL=warn
    TENANTRY_BASE_DOMAIN="$BASE_DOMAIN" TENANTRY_RESOLVE_ANONYMOUS_PER_MINUTE=0 TENANTRY_MASTER_KEY="$MASTER_KEY")
  if [ "$BACKEND" = postgres ]; then
    ENV+=(TENANTRY_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$name")
  fi
}

db_size() { # db_size NAME
  if [ "$BACKEND" = sqlite ]; then
    du -sh "$WORK/$BACKEND-$1" | cut -f1
  else
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -Atc \
      "SELECT pg_size_pretty(pg_database_size(current_database()))"
  fi
}

seed_db() { # seed_db NAME TENANTS SAMPLE
  local name=$1 tenants=$2 sample=$3 t0 t1
  mkdir -p "$WORK/$BACKEND-$name"
  if [ "$BACKEND" = postgres ]; then
    "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE $name" >/dev/null
  fi
  server_env "$name"
  log "$BACKEND/$name: seeding $tenants tenants x $KPT keys"
  t0=$(date +%s.%N)
  (cd "$WORK/$BACKEND-$name" && env "${ENV[@]}" "$SEED_BIN" seed --tenants "$tenants" --keys-per-tenant "$KPT" \
    --sample "$sample" --out "$WORK/$BACKEND-$name-seed" >"$WORK/$BACKEND-$name-seed.log" 2>&1) \
    || { cat "$WORK/$BACKEND-$name-seed.log" >&2; die "seeding failed"; }
  t1=$(date +%s.%N)
  SEED_S[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
  SIZE[$name]=$(db_size "$name")
  log "$BACKEND/$name: seeded in ${SEED_S[$name]} s, database ${SIZE[$name]}, load $(cut -d' ' -f1-3 /proc/loadavg)"
  local valid="$WORK/$BACKEND-$name-seed/valid-keys.txt" n
  n=$(wc -l <"$valid")
  # The hot set: HOT keys spread evenly over the sample (so over the tenants).
  awk -v step="$(( n / HOT > 0 ? n / HOT : 1 ))" -v hot="$HOT" 'NR % step == 1 || step == 1 { if (c++ < hot) print }' \
    "$valid" >"$WORK/$BACKEND-$name-hot.txt"
}

start_server() { # start_server NAME
  server_env "$1"
  ADDR="127.0.0.1:$(free_port)"
  (cd "$WORK/$BACKEND-$1" && exec env "${ENV[@]}" TENANTRY_LISTEN="$ADDR" "$BIN" serve) \
    >"$WORK/$BACKEND-$1-server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do
    curl -fsS "http://$ADDR/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/$BACKEND-$1-server.log" >&2; die "server exited"; }
    sleep 0.1
  done
  die "server not ready"
}

lua_env() { # lua_env MODE FILE LABEL CHECK
  LUA_ENV=(BENCH_MODE="$1" BENCH_FILE="$2" BENCH_LABEL="$3" BENCH_CHECK="$4" BENCH_ROOT_KEY="$ROOT_KEY" BENCH_SEED=1
    BENCH_BASE_DOMAIN="$BASE_DOMAIN" BENCH_THREADS="$THREADS")
}

# fixed MODE FILE LABEL: a checked warm-up, then the measured fixed-rate run.
fixed() {
  local mode=$1 file=$2 label=$3 out before after
  lua_env "$mode" "$file" "$label-warmup" 1
  out=$(env "${LUA_ENV[@]}" "$WRK2" -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -R"$RATE" \
    -s bench/scale.lua "http://$ADDR" | grep BENCHRESULT)
  [ "$(field bad "$out")" = 0 ] || log "WARNING: $label: $(field bad "$out")/$(field checked "$out") unexpected responses in the warm-up"
  before=$(key_cache)
  lua_env "$mode" "$file" "$label" 0
  out=$(env "${LUA_ENV[@]}" "$WRK2" -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -R"$RATE" \
    -s bench/scale.lua "http://$ADDR" | grep BENCHRESULT)
  after=$(key_cache)
  local hit_ratio
  hit_ratio=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " ");
    h = y[1] - x[1]; m = y[2] - x[2]; if (h + m > 0) printf "%.1f%%", 100 * h / (h + m); else print "-" }')
  ROWS+=("$label|$out key_hits=$hit_ratio load=$(cut -d' ' -f1 /proc/loadavg)")
  log "$label: $(field rps "$out") req/s, p50 $(field p50_us "$out") µs, p99 $(field p99_us "$out") µs, max $(field max_us "$out") µs, key cache hits $hit_ratio"
}

measure_db() { # measure_db NAME UNIFORM_FILE
  local name=$1 uniform=$2 hot="$WORK/$BACKEND-$1-hot.txt"
  start_server "$name"
  log "$BACKEND/$name: server pid $SERVER_PID on $ADDR, RSS $(( $(rss_kib) / 1024 )) MiB"
  if [ -z "$RATE" ]; then
    local out
    lua_env verify "$hot" saturation 0
    env "${LUA_ENV[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/scale.lua "http://$ADDR" >/dev/null
    out=$(env "${LUA_ENV[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/scale.lua "http://$ADDR" | grep BENCHRESULT)
    RATE=$(awk -v r="$(field rps "$out")" 'BEGIN { printf "%d", 0.7 * r }')
    SATURATION="$(field rps "$out") req/s (verify, hot set, wrk -t$THREADS -c$CONNECTIONS, $BACKEND/$name; load $(cut -d' ' -f1 /proc/loadavg))"
    log "saturation $SATURATION: fixed rate $RATE req/s"
  fi
  local mode
  for mode in verify resolve-key; do
    fixed "$mode" "$hot" "$name $mode hot"
    fixed "$mode" "$uniform" "$name $mode uniform"
  done
  RSS_AFTER[$name]=$(( $(rss_kib) / 1024 ))
  stop_server
}

memory() { # memory NAME: RSS per cached tenant and per cached key
  local name=$1 seed="$WORK/$BACKEND-$1-seed"
  start_server "$name"
  sleep 3
  head -n "$MEM_TENANTS" "$seed/subdomains.txt" >"$WORK/mem-subdomains.txt"
  # The sample holds keys spread evenly over the tenants, in tenant order.
  local per_tenant_sampled=$(( UNIFORM / LARGE ))
  head -n "$(( MEM_TENANTS * per_tenant_sampled ))" "$seed/valid-keys.txt" >"$WORK/mem-keys.txt"
  local r0 r1 r2 nkeys
  nkeys=$(wc -l <"$WORK/mem-keys.txt")
  r0=$(rss_kib)
  lua_env resolve-host "$WORK/mem-subdomains.txt" mem-tenants 1
  env "${LUA_ENV[@]}" BENCH_ORDER=seq wrk -t1 -c16 -d600s -s bench/resolve.lua "http://$ADDR" >/dev/null
  sleep 2; r1=$(rss_kib)
  lua_env verify "$WORK/mem-keys.txt" mem-keys 1
  env "${LUA_ENV[@]}" BENCH_ORDER=seq wrk -t1 -c16 -d600s -s bench/resolve.lua "http://$ADDR" >/dev/null
  # Past a key-usage flush, so that its pending batch is not counted.
  sleep 12; r2=$(rss_kib)
  MEMORY="fresh server on $name: VmRSS $((r0 / 1024)) MiB; after resolving $MEM_TENANTS tenants by subdomain $((r1 / 1024)) MiB"
  MEMORY="$MEMORY ($(( (r1 - r0) * 1024 / MEM_TENANTS )) bytes per tenant: host entry + tenant snapshot);"
  MEMORY="$MEMORY after verifying $nkeys keys of those tenants $((r2 / 1024)) MiB ($(( (r2 - r1) * 1024 / nkeys )) bytes per key)"
  PER_TENANT=$(( (r1 - r0) * 1024 / MEM_TENANTS ))
  PER_KEY=$(( (r2 - r1) * 1024 / nkeys ))
  R0=$r0
  stop_server
}

us_ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }

report() {
  echo
  echo "### $BACKEND"
  echo
  echo "Commit $COMMIT (server $BIN, seeding $SEED_BIN). Small: $SMALL tenants, $((SMALL * KPT)) keys, seeded in ${SEED_S[small]} s, database ${SIZE[small]}."
  echo "Large: $LARGE tenants, $((LARGE * KPT)) keys, seeded in ${SEED_S[large]} s, database ${SIZE[large]}."
  [ "$BACKEND" = postgres ] && echo "PostgreSQL cluster: $PG_SETTINGS."
  echo "Fixed rate $RATE req/s (wrk2 -R, -t$THREADS -c$CONNECTIONS, ${DURATION}s after a ${WARMUP}s checked warm-up); saturation: $SATURATION."
  echo "Hot: $HOT keys of as many tenants; uniform: every key of the small database, $UNIFORM keys (of $((LARGE * KPT))) of the large one."
  echo
  echo "| run | small p50 | small p99 | small max | large p50 | large p99 | large max | p99 large/small | key cache hits small / large | errors (non-2xx, socket) small / large | load 1-min small / large |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local run s l
  for run in "verify hot" "verify uniform" "resolve-key hot" "resolve-key uniform"; do
    s=$(row "small $run"); l=$(row "large $run")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s, %s / %s, %s | %s / %s |\n' "$run" \
      "$(us_ms "$(field p50_us "$s")")" "$(us_ms "$(field p99_us "$s")")" "$(us_ms "$(field max_us "$s")")" \
      "$(us_ms "$(field p50_us "$l")")" "$(us_ms "$(field p99_us "$l")")" "$(us_ms "$(field max_us "$l")")" \
      "$(awk -v a="$(field p99_us "$l")" -v b="$(field p99_us "$s")" 'BEGIN { printf "%.2f", a / b }')" \
      "$(field key_hits "$s")" "$(field key_hits "$l")" \
      "$(field status_errors "$s")" "$(field socket_errors "$s")" "$(field status_errors "$l")" "$(field socket_errors "$l")" \
      "$(field load "$s")" "$(field load "$l")"
  done
  echo
  echo "Server VmRSS after the runs: small ${RSS_AFTER[small]} MiB, large ${RSS_AFTER[large]} MiB."
  echo "Memory: $MEMORY."
  echo "Cache capacities (resolution/cache.rs): 1,000,000 keys, 200,000 tenants, 200,000 hosts;"
  echo "at the caps: about $(( (R0 + (1000000 * PER_KEY + 200000 * PER_TENANT) / 1024) / 1024 )) MiB (fresh RSS + 1M keys + 200k tenants at the rates above)."
  echo
  echo "<details><summary>raw ($BACKEND)</summary>"
  echo
  echo '```'
  for run in "${ROWS[@]}"; do echo "${run#*|}"; done
  echo '```'
  echo
  echo "</details>"
}
row() { local r; for r in "${ROWS[@]}"; do [ "${r%%|*}" = "$1" ] && { echo "${r#*|}"; return; }; done; }

declare -A SEED_S SIZE RSS_AFTER
log "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(df -h "$WORK" | awk 'NR==2 { print $4 }') free in $WORK"
for BACKEND in "${BACKENDS[@]}"; do
  ROWS=()
  ROOT_KEY=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
  MASTER_KEY=$(head -c 32 /dev/urandom | base64)
  [ "$BACKEND" = postgres ] && start_pg
  seed_db small "$SMALL" "$((SMALL * KPT))"
  seed_db large "$LARGE" "$UNIFORM"
  measure_db small "$WORK/$BACKEND-small-seed/valid-keys.txt"
  measure_db large "$WORK/$BACKEND-large-seed/valid-keys.txt"
  memory large
  report
  rm -rf "$WORK/$BACKEND"-*
  [ "$BACKEND" = postgres ] && stop_pg
  # The next backend measures its own saturation unless a rate was given.
  RATE=${SCALE_RATE:-}
done
