//! Liveness and readiness.

use crate::app::AppState;
use crate::http::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
pub use tenantry_api::health::Health;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, body = Health)))]
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
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
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

/// Prometheus metrics (text format 0.0.4): requests by route template and
/// status, caches, decisions, the database pool and background backlogs.
/// Needs an operator key unless `TENANTRY_METRICS_PUBLIC=true`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn metrics(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    use axum::extract::FromRequestParts;
    let body = if state.config.metrics_public {
        // Public metrics read the background counts on the server's own
        // authority: aggregate numbers, no tenant's data.
        #[allow(clippy::disallowed_methods)] // system grant: the metrics scrape
        let grant = crate::grant::OperatorGrant::system("metrics");
        crate::metrics::scrape(&state, &grant).await
    } else {
        let (mut parts, _body) = request.into_parts();
        let operator = crate::http::auth::Operator::from_request_parts(&mut parts, &state).await?;
        crate::metrics::scrape(&state, operator.grant()).await
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
