//! `/v1/ratelimit`: taking from a tenant's rate limits (metering: no audit
//! entry, nothing written to the database).

use super::usage::body_grant;
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::ApiJson;
use crate::http::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
pub use tenantry_api::ratelimit::{RateLimitIn, RateLimitOut};
use tenantry_core::keys::Scope;

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
