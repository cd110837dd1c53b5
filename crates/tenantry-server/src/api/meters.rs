//! `/v1/meters`: what usage is counted in.

use crate::app::AppState;
use crate::http::auth::{Caller, Operator};
use crate::http::extract::ApiJson;
use crate::http::problem::{ApiError, Problem};
use crate::limits::meters::{self, Meter};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
pub use tenantry_api::meters::{MeterIn, MeterList, MeterOut};

impl From<Meter> for MeterOut {
    fn from(m: Meter) -> Self {
        MeterOut {
            name: m.name,
            aggregation: m.aggregation,
            description: m.description,
            builtin: m.builtin,
        }
    }
}

/// Every meter.
#[utoipa::path(get, path = "/v1/meters", tag = "usage", responses((status = 200, body = MeterList)))]
pub async fn list_meters(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<MeterList>, ApiError> {
    let data = meters::list(&state)
        .await?
        .into_iter()
        .map(MeterOut::from)
        .collect();
    Ok(Json(MeterList { data }))
}

/// Register a custom meter (operators).
#[utoipa::path(post, path = "/v1/meters", tag = "usage", request_body = MeterIn,
    responses((status = 201, body = MeterOut), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_meter(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(input): ApiJson<MeterIn>,
) -> Result<(StatusCode, Json<MeterOut>), ApiError> {
    let meter = meters::create(
        &state,
        operator.grant(),
        &input.name,
        input.aggregation.as_deref(),
        input.description,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(meter.into())))
}
