//! `/v1/quotas/check`: quota checks and atomic consumption (metering: no
//! audit entry).

use super::usage::body_grant;
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::ApiJson;
use crate::http::problem::{ApiError, Problem};
use crate::limits::quotas::{self, QuotaDecision};
use axum::Json;
use axum::extract::State;
pub use tenantry_api::quotas::QuotaCheckIn;
use tenantry_core::keys::Scope;

/// Check a quota for this month, and with `consume` take from it
/// atomically: concurrent consumers never push usage past a hard limit.
#[utoipa::path(post, path = "/v1/quotas/check", tag = "usage", request_body = QuotaCheckIn,
    responses((status = 200, body = QuotaDecision), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn check_quota(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<QuotaCheckIn>,
) -> Result<Json<QuotaDecision>, ApiError> {
    let consume = input.consume.unwrap_or(false);
    let scope = if consume {
        Scope::UsageWrite
    } else {
        Scope::UsageRead
    };
    let grant = body_grant(&caller, input.tenant_id.as_deref(), scope)?;
    let quantity = input.quantity.unwrap_or(1);
    let decision = quotas::check_for(&state, &grant, &input.meter, quantity, consume).await?;
    Ok(Json(decision))
}
