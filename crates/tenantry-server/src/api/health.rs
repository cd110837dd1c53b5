//! Liveness and readiness.

use crate::app::AppState;
use crate::http::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
pub use tenantry_api::health::Health;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// How long the readiness check waits for the database: a load balancer
/// must hear "not ready" quickly, not time out on a hung pool.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// The process can serve requests: its database answers (and, on SQLite,
/// its write lock is free).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(Health {
            status: "ready".to_owned(),
        })),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(ApiError::DatabaseUnavailable)
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            Err(ApiError::DatabaseUnavailable)
        }
    }
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()), responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let limiter = &state.rate_limiter;
    let body = format!(
        "# HELP tenantry_ratelimit_redis_errors_total Rate-limit decisions taken without Redis because it was unreachable.\n\
         # TYPE tenantry_ratelimit_redis_errors_total counter\n\
         tenantry_ratelimit_redis_errors_total {}\n\
         # HELP tenantry_ratelimit_backend The rate limiter's backend (1 for the one in use).\n\
         # TYPE tenantry_ratelimit_backend gauge\n\
         tenantry_ratelimit_backend{{backend=\"{}\"}} 1\n",
        limiter.redis_errors(),
        limiter.backend()
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}
