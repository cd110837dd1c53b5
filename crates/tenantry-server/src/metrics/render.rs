//! The Prometheus text format (0.0.4) of the process's metrics, and the
//! scrape: counters from memory, gauges of background work from one
//! operator read of the database.

use super::{CounterFamily, LATENCY_BUCKETS, Metrics};
use crate::app::AppState;
use crate::grant::OperatorGrant;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use tenantry_store::{BackgroundCounts, PoolStats};

/// What a scrape reads besides the counters of [`Metrics`].
#[derive(Debug, Default)]
pub struct Snapshot {
    pub pools: Vec<PoolStats>,
    /// Cache name, hits, misses.
    pub caches: Vec<(&'static str, u64, u64)>,
    /// Rate-limit decisions: allowed, denied.
    pub ratelimit: (u64, u64),
    pub ratelimit_backend: &'static str,
    pub redis_errors: u64,
    /// Background work, with the scrape time (ms); `None`: the database did
    /// not answer.
    pub background: Option<(BackgroundCounts, i64)>,
}

/// Reads everything and renders it. The database part is one read
/// transaction of aggregate counts; if it fails, the scrape still answers
/// (with `tenantry_background_up 0`) so an outage shows up in the metrics
/// instead of as a failed scrape.
pub async fn scrape(state: &AppState, grant: &OperatorGrant) -> String {
    let background = match background(state, grant).await {
        Ok(counts) => Some((counts, state.clock.now().timestamp_millis())),
        Err(err) => {
            tracing::warn!(error = %err, "metrics: cannot read background work counts");
            state.metrics.scrape_failed();
            None
        }
    };
    let c = &state.caches;
    // One read per cache, so a row's hits and misses come from one moment.
    let cache = |name, (hits, misses)| (name, hits, misses);
    let snapshot = Snapshot {
        pools: state.store.pool_stats(),
        caches: vec![
            cache("api_keys", c.keys.hits_and_misses()),
            cache("operator_keys", c.operator_keys.hits_and_misses()),
            cache("tenants", c.tenants.hits_and_misses()),
            cache("hosts", c.hosts.hits_and_misses()),
            cache("configs", c.configs.hits_and_misses()),
            cache("plans", c.plans.hits_and_misses()),
            cache("meters", c.meters.hits_and_misses()),
            cache("identity_providers", c.identity_providers.hits_and_misses()),
            cache("memberships", c.memberships.hits_and_misses()),
        ],
        ratelimit: state.rate_limiter.decisions(),
        ratelimit_backend: state.rate_limiter.backend(),
        redis_errors: state.rate_limiter.redis_errors(),
        background,
    };
    render(&state.metrics, &snapshot)
}

async fn background(
    state: &AppState,
    grant: &OperatorGrant,
) -> Result<BackgroundCounts, tenantry_store::StoreError> {
    let active = state.vault.keyring().active().id().to_owned();
    let mut tx = grant.read(state).await?;
    let counts = tx.background_counts(&active).await?;
    tx.commit().await?;
    Ok(counts)
}

/// Escapes a label value (backslash, double quote, newline).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A metric with one sample and no labels.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn family(out: &mut String, name: &str, help: &str, counters: &CounterFamily) {
    header(out, name, "counter", help);
    for (values, n) in counters.snapshot() {
        let pairs: Vec<(&str, &str)> = counters
            .labels
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str))
            .collect();
        let _ = writeln!(out, "{name}{} {n}", labels(&pairs));
    }
}

/// Renders the metrics in the Prometheus text format.
pub fn render(m: &Metrics, s: &Snapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Requests, by route template, method and status.
    let mut rows = Vec::new();
    {
        let routes = m.requests.read().unwrap_or_else(|p| p.into_inner());
        for (route, series) in routes.iter() {
            let list = series.read().unwrap_or_else(|p| p.into_inner());
            for one in list.iter() {
                rows.push((
                    route.to_string(),
                    one.method,
                    one.status,
                    one.latency.snapshot(),
                ));
            }
        }
    }
    rows.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
    header(
        &mut out,
        "tenantry_http_requests_total",
        "counter",
        "HTTP requests answered, by route template, method and status.",
    );
    for (route, method, status, (_, count, _)) in &rows {
        let status = status.to_string();
        let l = labels(&[("method", method), ("route", route), ("status", &status)]);
        let _ = writeln!(out, "tenantry_http_requests_total{l} {count}");
    }
    header(
        &mut out,
        "tenantry_http_request_duration_seconds",
        "histogram",
        "Time from a request's arrival to its response, by route template, method and status.",
    );
    for (route, method, status, (buckets, count, sum)) in &rows {
        let status = status.to_string();
        let base = [
            ("method", *method),
            ("route", route.as_str()),
            ("status", status.as_str()),
        ];
        for (bound, n) in LATENCY_BUCKETS.iter().zip(buckets) {
            let le = bound.to_string();
            let mut pairs = base.to_vec();
            pairs.push(("le", &le));
            let _ = writeln!(
                out,
                "tenantry_http_request_duration_seconds_bucket{} {n}",
                labels(&pairs)
            );
        }
        let mut pairs = base.to_vec();
        pairs.push(("le", "+Inf"));
        let _ = writeln!(
            out,
            "tenantry_http_request_duration_seconds_bucket{} {count}",
            labels(&pairs)
        );
        let l = labels(&base);
        let _ = writeln!(out, "tenantry_http_request_duration_seconds_sum{l} {sum}");
        let _ = writeln!(
            out,
            "tenantry_http_request_duration_seconds_count{l} {count}"
        );
    }
    family(
        &mut out,
        "tenantry_http_problems_total",
        "Problem responses (application/problem+json), by stable code.",
        &m.problems,
    );

    // Resolution and lookup caches.
    header(
        &mut out,
        "tenantry_cache_lookups_total",
        "counter",
        "In-memory cache lookups, by cache and result (hit: answered from memory, found or known missing; miss: loaded from the database).",
    );
    for (cache, hits, misses) in &s.caches {
        for (result, n) in [("hit", hits), ("miss", misses)] {
            let l = labels(&[("cache", cache), ("result", result)]);
            let _ = writeln!(out, "tenantry_cache_lookups_total{l} {n}");
        }
    }

    // Decisions.
    family(
        &mut out,
        "tenantry_key_verifications_total",
        "API key verifications (POST /v1/keys/verify), by outcome code.",
        &m.verify,
    );
    if m.tenant_labels {
        family(
            &mut out,
            "tenantry_tenant_key_verifications_total",
            "API key verifications by outcome code and tenant (TENANTRY_METRICS_TENANT_LABELS).",
            &m.verify_by_tenant,
        );
    }
    family(
        &mut out,
        "tenantry_quota_decisions_total",
        "Quota checks and consumptions, by meter and decision.",
        &m.quota,
    );
    if m.tenant_labels {
        family(
            &mut out,
            "tenantry_tenant_quota_decisions_total",
            "Quota decisions by meter, decision and tenant (TENANTRY_METRICS_TENANT_LABELS).",
            &m.quota_by_tenant,
        );
    }
    header(
        &mut out,
        "tenantry_ratelimit_decisions_total",
        "counter",
        "Rate-limit decisions (API calls, POST /v1/ratelimit, anonymous resolutions), by decision.",
    );
    let _ = writeln!(
        out,
        "tenantry_ratelimit_decisions_total{{decision=\"allowed\"}} {}",
        s.ratelimit.0
    );
    let _ = writeln!(
        out,
        "tenantry_ratelimit_decisions_total{{decision=\"denied\"}} {}",
        s.ratelimit.1
    );
    single(
        &mut out,
        "tenantry_ratelimit_redis_errors_total",
        "counter",
        "Rate-limit decisions taken without Redis because it was unreachable.",
        s.redis_errors,
    );
    header(
        &mut out,
        "tenantry_ratelimit_backend",
        "gauge",
        "The rate limiter's backend (1 for the one in use).",
    );
    let _ = writeln!(
        out,
        "tenantry_ratelimit_backend{} 1",
        labels(&[("backend", s.ratelimit_backend)])
    );

    // The database.
    header(
        &mut out,
        "tenantry_db_pool_connections",
        "gauge",
        "Database pool connections, by pool and state (idle, in_use) and the pool's maximum (max).",
    );
    for p in &s.pools {
        let in_use = p.size.saturating_sub(p.idle).to_string();
        let idle = p.idle.to_string();
        let max = p.max.to_string();
        for (state, n) in [("idle", &idle), ("in_use", &in_use), ("max", &max)] {
            let l = labels(&[("pool", p.name), ("state", state)]);
            let _ = writeln!(out, "tenantry_db_pool_connections{l} {n}");
        }
    }
    header(
        &mut out,
        "tenantry_db_errors_total",
        "counter",
        "Requests answered 503 database_unavailable (the database unreachable, its pool exhausted or its lock held).",
    );
    let _ = writeln!(
        out,
        "tenantry_db_errors_total{{kind=\"unavailable\"}} {}",
        m.db_unavailable.load(Ordering::Relaxed)
    );

    single(
        &mut out,
        "tenantry_usage_commits_total",
        "counter",
        "Usage ingestion transactions (group commit: concurrent requests of one tenant share one).",
        m.usage_rounds.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "tenantry_usage_commit_requests_total",
        "counter",
        "Usage ingestion requests carried by those transactions.",
        m.usage_round_requests.load(Ordering::Relaxed),
    );

    // Background work, read at scrape time.
    single(
        &mut out,
        "tenantry_background_up",
        "gauge",
        "1 if this scrape could read the background work counts from the database.",
        u8::from(s.background.is_some()),
    );
    single(
        &mut out,
        "tenantry_background_scrape_errors_total",
        "counter",
        "Scrapes whose background work counts could not be read.",
        m.scrape_errors.load(Ordering::Relaxed),
    );
    if let Some((b, now_ms)) = &s.background {
        let age = |oldest: Option<i64>| -> f64 {
            oldest.map_or(0.0, |t| (now_ms.saturating_sub(t)).max(0) as f64 / 1000.0)
        };
        let gauges: [(&str, &str, String); 6] = [
            (
                "tenantry_rewrap_backlog",
                "Data keys and signing seeds not yet rewrapped under the active key-encryption key.",
                b.rewrap_backlog.to_string(),
            ),
            (
                "tenantry_webhook_outbox_depth",
                "Committed events not yet fanned out to webhook endpoints.",
                b.outbox_depth.to_string(),
            ),
            (
                "tenantry_webhook_pending_messages",
                "Webhook messages waiting for delivery (first attempt or retry).",
                b.pending_messages.to_string(),
            ),
            (
                "tenantry_webhook_delivery_lag_seconds",
                "Age of the oldest webhook message still pending (0 when none).",
                age(b.pending_oldest_ms).to_string(),
            ),
            (
                "tenantry_webhook_outbox_lag_seconds",
                "Age of the oldest event not yet fanned out (0 when none).",
                age(b.outbox_oldest_ms).to_string(),
            ),
            (
                "tenantry_audit_uncheckpointed_entries",
                "Audit entries (all chains) not yet covered by a signed checkpoint.",
                b.audit_uncheckpointed.to_string(),
            ),
        ];
        for (name, help, value) in gauges {
            header(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
        header(
            &mut out,
            "tenantry_provisioning_workflows",
            "gauge",
            "Provisioning workflows, by state.",
        );
        for state in [
            "pending",
            "running",
            "succeeded",
            "failed",
            "compensating",
            "compensated",
            "cancelled",
        ] {
            let n = b
                .workflows
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(
                out,
                "tenantry_provisioning_workflows{} {n}",
                labels(&[("state", state)])
            );
        }
    }
    out
}
