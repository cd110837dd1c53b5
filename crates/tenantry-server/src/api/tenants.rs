//! `/v1/tenants`: the tenant registry and each tenant's lifecycle.

use super::{Checks, Page, PageParams, cursor};
use crate::app::AppState;
use crate::http::auth::{Caller, Operator};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tenantry_core::keys::Scope;
use tenantry_core::tenant::{NewTenant, TenantPatch, TenantStatus};
use tenantry_core::values::{Metadata, PlanName, Region, Subdomain, TenantName};
use tenantry_core::{TenantId, ValidationError};
use tenantry_store::TenantFilter;

/// A tenant id taken from a path: one that cannot be valid cannot exist.
pub fn path_tenant(id: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(id).map_err(|_| ApiError::tenant_not_found())
}

pub use crate::tenancy::or_tenant_not_found;
pub use tenantry_api::tenants::{
    DeleteParams, ListTenantsParams, TenantIn, TenantOut, TenantPatchIn,
};

/// Create a tenant.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = TenantIn,
    responses(
        (status = 201, body = TenantOut),
        (status = 409, description = "id or subdomain taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(input): ApiJson<TenantIn>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let id = checks.check(TenantId::parse(&input.id));
    let name = checks.check(TenantName::parse("name", &input.name));
    let subdomain = match &input.subdomain {
        Some(s) => checks.check(Subdomain::parse("subdomain", s)),
        // The id follows the subdomain rules; an invalid id is reported once.
        None => id
            .as_ref()
            .map(|id| Subdomain::from_trusted(id.to_string())),
    };
    let plan = match &input.plan {
        Some(p) => checks.check(PlanName::parse("plan", p)),
        None => Some(state.config.default_plan.clone()),
    };
    let region = match &input.region {
        Some(r) => checks.check(Region::parse("region", r)),
        None => Some(state.config.region.clone()),
    };
    let metadata = match input.metadata {
        Some(m) => checks.check(Metadata::parse("metadata", m)),
        None => Some(Metadata::empty()),
    };
    checks.finish()?;
    let (Some(id), Some(name), Some(subdomain), Some(plan), Some(region), Some(metadata)) =
        (id, name, subdomain, plan, region, metadata)
    else {
        return Err(ApiError::Internal);
    };
    let new = NewTenant {
        id,
        name,
        subdomain,
        plan,
        region,
        metadata,
    };
    if !state.config.regions.is_empty() && new.region != state.config.region {
        // A tenant's data is written only in its home region: create it there.
        if state.config.region_url(new.region.as_str()).is_none() {
            return Err(ValidationError::new(
                "region",
                "unknown_region",
                "not a region of the region directory",
            )
            .into());
        }
        return Err(crate::tenancy::regions::wrong_region(
            &state,
            new.region.as_str(),
        ));
    }
    let tenant = crate::tenancy::create(&state, operator.grant(), &new).await?;
    Ok((StatusCode::CREATED, Json(TenantOut::from(tenant))).into_response())
}

/// List tenants, in id order.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListTenantsParams),
    responses((status = 200, body = Page<TenantOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(params): ApiQuery<ListTenantsParams>,
) -> Result<Json<Page<TenantOut>>, ApiError> {
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = page.limit()?;
    let after = page.after("tenants")?;
    let mut checks = Checks::default();
    let status = match &params.status {
        Some(s) => checks.check(s.parse::<TenantStatus>().map(Some).map_err(|()| {
            ValidationError::new(
                "status",
                "invalid_value",
                "must be one of active, suspended, deleted, provisioning, provisioning_failed",
            )
        })),
        None => Some(None),
    };
    let plan = match &params.plan {
        Some(p) => checks.check(PlanName::parse("plan", p).map(Some)),
        None => Some(None),
    };
    checks.finish()?;
    let filter = TenantFilter {
        status: status.flatten(),
        plan: plan.flatten(),
    };
    let mut op = operator.grant().read(&state).await?;
    let found = op.list_tenants(&filter, after.as_deref(), limit).await?;
    op.commit().await?;
    Ok(Json(Page {
        next_cursor: found.next_after.map(|id| cursor("tenants", id.as_str())),
        data: found.tenants.into_iter().map(TenantOut::from).collect(),
    }))
}

/// Get a tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let mut tx = grant.read(&state).await?;
    let tenant = tx
        .tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    tx.commit().await?;
    Ok(Json(tenant.into()))
}

/// Change a tenant's name, subdomain, plan, region or metadata.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)), request_body = TenantPatchIn,
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TenantPatchIn>,
) -> Result<Json<TenantOut>, ApiError> {
    let mut checks = Checks::default();
    let patch = TenantPatch {
        name: input
            .name
            .as_deref()
            .and_then(|n| checks.check(TenantName::parse("name", n))),
        subdomain: input
            .subdomain
            .as_deref()
            .and_then(|s| checks.check(Subdomain::parse("subdomain", s))),
        plan: input
            .plan
            .as_deref()
            .and_then(|p| checks.check(PlanName::parse("plan", p))),
        region: input
            .region
            .as_deref()
            .and_then(|r| checks.check(Region::parse("region", r))),
        metadata: input
            .metadata
            .and_then(|m| checks.check(Metadata::parse("metadata", m))),
    };
    checks.finish()?;
    let grant = operator.grant().on_tenant(path_tenant(&id)?);
    Ok(Json(
        crate::tenancy::update(&state, &grant, &patch).await?.into(),
    ))
}

/// Suspend a tenant: its requests are refused until it is reactivated.
#[utoipa::path(post, path = "/v1/tenants/{id}/suspend", tag = "tenants", params(("id" = String, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the tenant is deleted", body = Problem, content_type = "application/problem+json")))]
pub async fn suspend(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let grant = operator.grant().on_tenant(path_tenant(&id)?);
    Ok(Json(crate::tenancy::suspend(&state, &grant).await?.into()))
}

/// Reactivate a suspended tenant, or restore a deleted one within its grace period.
#[utoipa::path(post, path = "/v1/tenants/{id}/reactivate", tag = "tenants", params(("id" = String, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn reactivate(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let grant = operator.grant().on_tenant(path_tenant(&id)?);
    Ok(Json(
        crate::tenancy::reactivate(&state, &grant).await?.into(),
    ))
}

/// Delete a tenant: a soft delete (status `deleted`, data kept for the grace
/// period), or with `purge=true` every row of the tenant at once.
#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path), DeleteParams),
    responses((status = 200, description = "soft-deleted", body = TenantOut), (status = 204, description = "purged"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> Result<Response, ApiError> {
    let grant = operator.grant().on_tenant(path_tenant(&id)?);
    if params.purge == Some(true) {
        crate::tenancy::purge_now(&state, &grant).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let tenant = crate::tenancy::delete(&state, &grant).await?;
    Ok(Json(TenantOut::from(tenant)).into_response())
}
