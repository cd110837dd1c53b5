#!/usr/bin/env bash
# What `tenantry app-db isolate` costs the app's queries: a tenant's query on
# an RLS-isolated table (the one line + no WHERE) against the same query on an
# identical table with the tenant filter written by hand (the baseline), as
# the app's ordinary role, with pgbench, in the same run. Also the one line
# alone (set_config in the transaction, hand-written filter), to separate its
# round trip from the policy's cost.
# Uses BENCH_PG_URL (a superuser URL) if set, else a throw-away cluster
# started here (fsync=off, as in the tests) and removed on exit.
# Needs a built binary: cargo build (debug is fine: the binary only installs
# the policy). Env: SECONDS_EACH (default 10), CLIENTS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-10}
CLIENTS=${CLIENTS:-2}
TENANTRY=${TENANTRY:-target/debug/tenantry}
[ -x "$TENANTRY" ] || { echo "build first: cargo build ($TENANTRY missing)" >&2; exit 1; }
PG_BIN=$(pg_config --bindir 2>/dev/null || true)
[ -x "$PG_BIN/pgbench" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
DIR=$(mktemp -d /tmp/tenantry-bench-appdb.XXXXXX)
as_pg=() STARTED=
cleanup() {
  if [ -n "$STARTED" ]; then "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT
if [ -z "${BENCH_PG_URL:-}" ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR"; as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" start >/dev/null
  STARTED=1
  BENCH_PG_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
fi
SUFFIX=$$
DB=bench_appdb_$SUFFIX ROLE=bench_app_$SUFFIX
BASE=${BENCH_PG_URL%/*}
OWNER_URL="$BASE/$DB"
APP_URL="${BASE/\/\/*@/\/\/$ROLE@}/$DB"
psql -qX "$BENCH_PG_URL" -c "CREATE DATABASE $DB" -c "CREATE ROLE $ROLE LOGIN NOSUPERUSER NOBYPASSRLS"
trap 'psql -qX "$BENCH_PG_URL" -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1 || true; cleanup' EXIT
psql -qX "$OWNER_URL" <<SQL
CREATE TABLE leads_plain (id bigserial PRIMARY KEY, organization_id text NOT NULL, name text NOT NULL);
CREATE TABLE leads_rls (LIKE leads_plain INCLUDING ALL);
INSERT INTO leads_plain (organization_id, name)
  SELECT 't' || (i % 100), 'lead ' || i FROM generate_series(1, 100000) i;
INSERT INTO leads_rls SELECT * FROM leads_plain;
CREATE INDEX ON leads_plain (organization_id);
GRANT SELECT ON leads_plain, leads_rls TO $ROLE;
ANALYZE;
SQL
"$TENANTRY" app-db isolate --database-url "$OWNER_URL" --table leads_rls --column organization_id --role "$ROLE"
psql -qX "$OWNER_URL" -c "ANALYZE"
# The same answer both ways, as the app role.
a=$(psql -qtAX "$APP_URL" -c "SELECT count(*) FROM leads_plain WHERE organization_id = 't7'")
b=$(psql -qtAX "$APP_URL" -c "BEGIN" -c "SELECT set_config('app.tenant_id', 't7', true)" \
  -c "SELECT count(*) FROM leads_rls" -c "COMMIT" | grep -E '^[0-9]+$')
[ "$a" = "$b" ] && [ "$a" -gt 0 ] || { echo "different answers: $a vs $b" >&2; exit 1; }

cat >"$DIR/baseline.sql" <<'SQL'
\set t random(0, 99)
BEGIN;
SELECT count(*) FROM leads_plain WHERE organization_id = 't' || :t;
COMMIT;
SQL
cat >"$DIR/one_line.sql" <<'SQL'
\set t random(0, 99)
BEGIN;
SELECT set_config('app.tenant_id', 't' || :t, true);
SELECT count(*) FROM leads_plain WHERE organization_id = 't' || :t;
COMMIT;
SQL
cat >"$DIR/rls.sql" <<'SQL'
\set t random(0, 99)
BEGIN;
SELECT set_config('app.tenant_id', 't' || :t, true);
SELECT count(*) FROM leads_rls;
COMMIT;
SQL
tps() {
  "$PG_BIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_EACH" -f "$DIR/$1.sql" "$APP_URL" 2>&1 \
    | awk '/^tps/ {print $3; exit}'
}
echo "machine: $(nproc) cores; $(date -u +%FT%TZ); $CLIENTS clients, ${SECONDS_EACH}s each; 100 tenants x 1000 rows"
base=$(tps baseline); one=$(tps one_line); rls=$(tps rls)
python3 - "$base" "$one" "$rls" <<'PY'
import sys
base, one, rls = map(float, sys.argv[1:])
print(f"baseline (hand-written WHERE, no setting)   {base:10.0f} tx/s  1.00")
print(f"the one line + hand-written WHERE           {one:10.0f} tx/s  {one/base:.2f}")
print(f"RLS (the one line, no WHERE)                {rls:10.0f} tx/s  {rls/base:.2f}")
PY
