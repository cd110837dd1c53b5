//! Where the server counts what it does: the counters behind `GET /metrics`
//! and their Prometheus text rendering (format 0.0.4).
//!
//! The hot path is atomic adds: a request finds its series under read locks
//! by borrowed keys (route template, method, status), and allocates only the
//! first time a series appears. Routes are labelled by their template
//! (`/v1/tenants/{id}`), never by the raw path, so the number of series is
//! bounded by the router. Gauges of background work are read from the
//! database at scrape time (see [`render`]).

mod render;

pub use render::{Snapshot, render, scrape};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the request-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram: cumulative-at-render bucket counts, in atomics.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    /// Sum of observations, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b)
            && let Some(bucket) = self.buckets.get(i)
        {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// (cumulative bucket counts, count, sum in seconds).
    fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        let mut running = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        (
            cumulative,
            self.count.load(Ordering::Relaxed),
            self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

/// One request series: method and status of one route.
struct RequestSeries {
    method: &'static str,
    status: u16,
    latency: Histogram,
}

/// Every series of one route template.
type RouteSeries = RwLock<Vec<Arc<RequestSeries>>>;

/// Counters keyed by a tuple of label values (the label names are fixed per
/// family). Label values come from closed sets (codes, decisions, meter
/// names of the catalogue) or, when configured, tenant ids. The key is the
/// values joined by a separator no label value contains.
pub struct CounterFamily {
    labels: &'static [&'static str],
    values: RwLock<HashMap<String, Arc<AtomicU64>>>,
}

const SEPARATOR: char = '\u{1f}';

impl CounterFamily {
    fn new(labels: &'static [&'static str]) -> Self {
        CounterFamily {
            labels,
            values: RwLock::new(HashMap::new()),
        }
    }

    /// Adds one to the series with these label values (in the order of the
    /// family's label names).
    pub fn inc(&self, values: &[&str]) {
        let mut key = String::with_capacity(values.iter().map(|v| v.len() + 1).sum());
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                key.push(SEPARATOR);
            }
            key.extend(value.chars().filter(|c| *c != SEPARATOR));
        }
        {
            let map = self.values.read().unwrap_or_else(|p| p.into_inner());
            if let Some(counter) = map.get(&key) {
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.values.write().unwrap_or_else(|p| p.into_inner());
        map.entry(key)
            .or_insert_with(|| Arc::new(AtomicU64::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<(Vec<String>, u64)> {
        let map = self.values.read().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<(Vec<String>, u64)> = map
            .iter()
            .map(|(k, v)| {
                (
                    k.split(SEPARATOR).map(str::to_owned).collect(),
                    v.load(Ordering::Relaxed),
                )
            })
            .collect();
        rows.sort();
        rows
    }
}

/// The process's metrics (one per [`crate::app::AppState`]).
pub struct Metrics {
    /// `TENANTRY_METRICS_TENANT_LABELS`: per-tenant series.
    tenant_labels: bool,
    /// Route template → its series by method and status.
    requests: RwLock<HashMap<Box<str>, Arc<RouteSeries>>>,
    problems: CounterFamily,
    verify: CounterFamily,
    verify_by_tenant: CounterFamily,
    quota: CounterFamily,
    quota_by_tenant: CounterFamily,
    db_unavailable: AtomicU64,
    scrape_errors: AtomicU64,
    /// Usage group commit: transactions, and the requests they carried.
    usage_rounds: AtomicU64,
    usage_round_requests: AtomicU64,
}

/// The label value of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

impl Metrics {
    pub fn new(tenant_labels: bool) -> Self {
        Metrics {
            tenant_labels,
            requests: RwLock::new(HashMap::new()),
            problems: CounterFamily::new(&["code"]),
            verify: CounterFamily::new(&["code"]),
            verify_by_tenant: CounterFamily::new(&["code", "tenant"]),
            quota: CounterFamily::new(&["meter", "decision"]),
            quota_by_tenant: CounterFamily::new(&["meter", "decision", "tenant"]),
            db_unavailable: AtomicU64::new(0),
            scrape_errors: AtomicU64::new(0),
            usage_rounds: AtomicU64::new(0),
            usage_round_requests: AtomicU64::new(0),
        }
    }

    /// Records one finished request.
    pub fn request(
        &self,
        route: &str,
        method: &axum::http::Method,
        status: u16,
        elapsed: std::time::Duration,
    ) {
        let method = method_label(method);
        let series = {
            let routes = self.requests.read().unwrap_or_else(|p| p.into_inner());
            routes.get(route).cloned()
        };
        let series = match series {
            Some(series) => series,
            None => {
                let mut routes = self.requests.write().unwrap_or_else(|p| p.into_inner());
                routes.entry(route.into()).or_default().clone()
            }
        };
        let found = {
            let list = series.read().unwrap_or_else(|p| p.into_inner());
            list.iter()
                .find(|s| s.status == status && s.method == method)
                .cloned()
        };
        let one = match found {
            Some(one) => one,
            None => {
                let mut list = series.write().unwrap_or_else(|p| p.into_inner());
                match list
                    .iter()
                    .find(|s| s.status == status && s.method == method)
                {
                    Some(one) => one.clone(),
                    None => {
                        let one = Arc::new(RequestSeries {
                            method,
                            status,
                            latency: Histogram::default(),
                        });
                        list.push(one.clone());
                        one
                    }
                }
            }
        };
        one.latency.observe(elapsed);
    }

    /// Records a problem response's code (and a database outage).
    pub fn problem(&self, code: &str) {
        self.problems.inc(&[code]);
        if code == crate::http::codes::Code::DatabaseUnavailable.as_str() {
            self.db_unavailable.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One usage transaction shared by `requests` requests.
    pub fn usage_round(&self, requests: usize) {
        self.usage_rounds.fetch_add(1, Ordering::Relaxed);
        self.usage_round_requests
            .fetch_add(requests as u64, Ordering::Relaxed);
    }

    /// Records the outcome of a key verification.
    pub fn verified(&self, code: tenantry_core::keys::VerifyCode, tenant: Option<&str>) {
        let code = verify_label(code);
        self.verify.inc(&[code]);
        if self.tenant_labels {
            self.verify_by_tenant.inc(&[code, tenant.unwrap_or("")]);
        }
    }

    /// Records a quota decision.
    pub fn quota_decision(&self, meter: &str, allowed: bool, tenant: &str) {
        let decision = if allowed { "allowed" } else { "denied" };
        self.quota.inc(&[meter, decision]);
        if self.tenant_labels {
            self.quota_by_tenant.inc(&[meter, decision, tenant]);
        }
    }

    fn scrape_failed(&self) {
        self.scrape_errors.fetch_add(1, Ordering::Relaxed);
    }
}

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn verify_label(code: tenantry_core::keys::VerifyCode) -> &'static str {
    use tenantry_core::keys::VerifyCode;
    match code {
        VerifyCode::Valid => "VALID",
        VerifyCode::NotFound => "NOT_FOUND",
        VerifyCode::Expired => "EXPIRED",
        VerifyCode::Revoked => "REVOKED",
        VerifyCode::Disabled => "DISABLED",
        VerifyCode::InsufficientScopes => "INSUFFICIENT_SCOPES",
        VerifyCode::TenantSuspended => "TENANT_SUSPENDED",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_accumulate() {
        let m = Metrics::new(false);
        let get = axum::http::Method::GET;
        m.request(
            "/v1/tenants",
            &get,
            200,
            std::time::Duration::from_millis(3),
        );
        m.request("/v1/tenants", &get, 200, std::time::Duration::from_secs(30));
        m.request(
            "/v1/tenants",
            &get,
            404,
            std::time::Duration::from_millis(1),
        );
        m.problem("not_found");
        m.problem("not_found");
        let text = render(&m, &render::Snapshot::default());
        assert!(text.contains(
            "tenantry_http_requests_total{method=\"GET\",route=\"/v1/tenants\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "tenantry_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/tenants\",status=\"200\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "tenantry_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/tenants\",status=\"200\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("tenantry_http_problems_total{code=\"not_found\"} 2"));
    }

    #[test]
    fn tenant_labels_only_when_configured() {
        use tenantry_core::keys::VerifyCode;
        let off = Metrics::new(false);
        off.verified(VerifyCode::Valid, Some("acme"));
        off.quota_decision("api_calls", true, "acme");
        let text = render(&off, &render::Snapshot::default());
        assert!(!text.contains("acme"), "{text}");
        let on = Metrics::new(true);
        on.verified(VerifyCode::Valid, Some("acme"));
        let text = render(&on, &render::Snapshot::default());
        assert!(text.contains("tenant=\"acme\""), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(render::escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
