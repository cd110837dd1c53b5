#!/usr/bin/env bash
# Propagation across three nodes (issue 17): over CHANGES changes (1,000 by
# default: key revocations, tenant suspensions/reactivations, configuration
# changes, widget disables/enables, in turn) made through nginx to a cluster
# of three nodes over one PostgreSQL and one Redis, the delay from the
# write's acknowledgement until every node honours it, each node polled
# directly: p50/p99/max. The target is p99 <= 1 s.
#
# Runs the ignored test `postgres_propagation_bench` of
# crates/tenantry/tests/multinode.rs (its cluster harness:
# tests/support/cluster.rs). It needs TEST_PG_URL and TEST_REDIS_URL, as
# the suite does (scripts/test sets them); nginx from TEST_NGINX_BIN or PATH.
# PROFILE=release builds and runs the release binaries (default: the debug
# build the tests use).
# Usage: bench/propagation.sh [CHANGES]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TEST_PG_URL:?set TEST_PG_URL (a superuser URL of a throw-away PostgreSQL cluster)}"
: "${TEST_REDIS_URL:?set TEST_REDIS_URL (a throw-away Redis)}"
export PROPAGATION_CHANGES=${1:-1000}
profile=()
[ "${PROFILE:-debug}" = release ] && profile=(--release)
echo "commit $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load before: $(uptime)"
cargo test --locked "${profile[@]}" -p tenantry --test multinode -- \
  --ignored --exact postgres_propagation_bench --nocapture 2>&1 \
  | grep -E '^(changes:|\|)|panicked|FAILED|test result'
echo "load after: $(uptime)"
