//! `/v1/plans`: the plan catalog.

use crate::app::AppState;
use crate::http::auth::{Caller, Operator};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::{ApiError, Problem};
use crate::limits::config::Plan;
use crate::limits::plans;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::Value;
pub use tenantry_api::plans::{PlanList, PlanOut};

fn plan_out(plan: &Plan, updated_at: DateTime<Utc>) -> PlanOut {
    let def = plan.to_json();
    PlanOut {
        name: plan.name.clone(),
        description: plan.description.clone(),
        quotas: def["quotas"].clone(),
        limits: def["limits"].clone(),
        rate_limits: def["rate_limits"].clone(),
        features: def["features"].clone(),
        updated_at,
    }
}

/// The plan catalog.
#[utoipa::path(get, path = "/v1/plans", tag = "plans", responses((status = 200, body = PlanList)))]
pub async fn list_plans(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<PlanList>, ApiError> {
    let data = plans::list(&state)
        .await?
        .iter()
        .map(|(plan, updated_at)| plan_out(plan, *updated_at))
        .collect();
    Ok(Json(PlanList { data }))
}

/// Create or replace a plan (operators). Takes effect at once for every
/// tenant on it, on every server process.
#[utoipa::path(put, path = "/v1/plans/{name}", tag = "plans", params(("name" = String, Path)), request_body(content = Object),
    responses((status = 200, body = PlanOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_plan(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(definition): ApiJson<Value>,
) -> Result<Json<PlanOut>, ApiError> {
    let (plan, updated_at) = plans::put(&state, operator.grant(), &name, &definition).await?;
    Ok(Json(plan_out(&plan, updated_at)))
}
