//! `/v1/ratelimit`: taking from a tenant's rate limits (metering: no audit
//! entry, nothing written to the database).

use super::usage::body_grant;
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::ApiJson;
use crate::http::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tenantry_core::keys::Scope;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitIn {
    /// Required with operator keys; implied by tenant keys.
    pub tenant_id: Option<String>,
    /// Limit per key instead of per tenant.
    pub key_id: Option<String>,
    /// A rate limit of the tenant's configuration, e.g. `messages_per_minute`.
    pub limit: String,
    /// Default 1.
    pub cost: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RateLimitOut {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_after_ms: u64,
    pub retry_after_ms: u64,
}

/// Take from a rate limit (GCRA), per tenant or per key. Exact across
/// server processes when Redis is configured.
#[utoipa::path(post, path = "/v1/ratelimit", tag = "usage", request_body = RateLimitIn,
    responses((status = 200, body = RateLimitOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn ratelimit(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<RateLimitIn>,
) -> Result<Json<RateLimitOut>, ApiError> {
    let grant = body_grant(&caller, input.tenant_id.as_deref(), Scope::UsageWrite)?;
    let d = crate::limits::ratelimit::take(
        &state,
        &grant,
        input.key_id.as_deref(),
        &input.limit,
        input.cost.unwrap_or(1),
    )
    .await?;
    Ok(Json(RateLimitOut {
        allowed: d.allowed,
        limit: d.limit,
        remaining: d.remaining,
        reset_after_ms: d.reset_after_ms,
        retry_after_ms: d.retry_after_ms,
    }))
}
