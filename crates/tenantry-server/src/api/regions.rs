//! `/v1/tenants/{id}/move`: moving a tenant to another region, an operator
//! workflow (see docs/regions.md and [`crate::tenancy::regions`]).

use super::tenants::path_tenant;
use crate::app::AppState;
use crate::http::auth::Operator;
use crate::http::codes::Code;
use crate::http::extract::{ApiJson, ApiPath, TenantPathChecked};
use crate::http::problem::{ApiError, Problem};
use crate::tenancy::regions::{self, MoveStatus};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tenantry_core::ValidationError;
use tenantry_core::values::Region;

/// The region to move a tenant to.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveIn {
    /// A region of the region directory other than this node's.
    pub region: String,
}

/// Start moving a tenant to another region (operator): the tenant is frozen
/// (`503 tenant_moving` for its traffic) and copied in the background; see
/// the move's state with `GET`, then complete or abort it.
#[utoipa::path(post, path = "/v1/tenants/{id}/move", tag = "regions", params(("id" = String, Path)), request_body = MoveIn,
    responses(
        (status = 202, body = MoveStatus),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "a move in another direction, no database for the region, or not PostgreSQL", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
    _checked: TenantPathChecked,
    ApiJson(input): ApiJson<MoveIn>,
) -> Result<(StatusCode, Json<MoveStatus>), ApiError> {
    let tenant = path_tenant(&id)?;
    if state.config.regions.is_empty() {
        return Err(ApiError::Conflict {
            code: Code::MoveConflict,
            detail: "this node has no region directory (TENANTRY_REGIONS)".into(),
            field: None,
        });
    }
    let region = Region::parse("region", &input.region)?;
    if state.config.region_url(region.as_str()).is_none() {
        return Err(ValidationError::new(
            "region",
            "unknown_region",
            "not a region of the region directory",
        )
        .into());
    }
    if region == state.config.region {
        return Err(ValidationError::new(
            "region",
            "same_region",
            "the tenant already lives in this region",
        )
        .into());
    }
    let status = regions::start_move(&state, operator.grant(), &tenant, region.as_str()).await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// A tenant's move: where it stands (operator).
#[utoipa::path(get, path = "/v1/tenants/{id}/move", tag = "regions", params(("id" = String, Path)),
    responses((status = 200, body = MoveStatus), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn status(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MoveStatus>, ApiError> {
    let tenant = path_tenant(&id)?;
    Ok(Json(regions::move_status(&state, &tenant).await?))
}

/// Complete a copied move (operator): the target region serves the tenant
/// from now on, and its rows here are purged.
#[utoipa::path(post, path = "/v1/tenants/{id}/move/complete", tag = "regions", params(("id" = String, Path)),
    responses((status = 200, body = MoveStatus), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "not copied yet, or changed since", body = Problem, content_type = "application/problem+json")))]
pub async fn complete(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MoveStatus>, ApiError> {
    let tenant = path_tenant(&id)?;
    Ok(Json(regions::complete_move(&state, &tenant).await?))
}

/// Abort a move that was not completed (operator): the copy in the target
/// region is deleted, and this region serves the tenant again.
#[utoipa::path(post, path = "/v1/tenants/{id}/move/abort", tag = "regions", params(("id" = String, Path)),
    responses((status = 200, body = MoveStatus), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")))]
pub async fn abort(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MoveStatus>, ApiError> {
    let tenant = path_tenant(&id)?;
    Ok(Json(regions::abort_move(&state, &tenant).await?))
}
