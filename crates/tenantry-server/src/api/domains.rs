//! `/v1/tenants/{id}/domains`: custom domains that resolve to a tenant.

use super::tenants::{or_tenant_not_found, record};
use crate::app::AppState;
use crate::app::announce;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::{ApiError, Problem};
use crate::resolution::cache::{Invalidation, domain_key};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenantry_core::keys::Scope;
use tenantry_core::tenant::{CustomDomain, TenantEventKind, TenantStatus};
use tenantry_core::values::Hostname;
use tenantry_store::StoreError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainIn {
    /// A hostname such as `support.acme.com`.
    pub domain: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainOut {
    pub domain: String,
    pub created_at: DateTime<Utc>,
}

impl From<CustomDomain> for DomainOut {
    fn from(d: CustomDomain) -> Self {
        DomainOut {
            domain: d.domain.to_string(),
            created_at: d.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainList {
    pub data: Vec<DomainOut>,
}

fn domain_not_found() -> ApiError {
    ApiError::NotFound {
        code: "domain_not_found",
        detail: "this tenant has no such domain".into(),
    }
}

/// Attach a custom domain to a tenant.
#[utoipa::path(post, path = "/v1/tenants/{id}/domains", tag = "domains", params(("id" = String, Path)), request_body = DomainIn,
    responses((status = 201, body = DomainOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the domain belongs to a tenant already", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<DomainIn>,
) -> Result<(StatusCode, Json<DomainOut>), ApiError> {
    let access = caller.for_tenant(&id, Scope::TenantAdmin)?;
    let id = access.tenant;
    let domain = Hostname::parse("domain", &input.domain)?;
    let mut tx = state.store.tenant_write(&id).await?;
    let tenant = tx.tenant_for_update().await.map_err(or_tenant_not_found)?;
    if tenant.status == TenantStatus::Deleted {
        return Err(ApiError::Conflict {
            code: "tenant_deleted",
            detail: "the tenant is deleted".into(),
            field: None,
        });
    }
    let added = tx.add_domain(&domain, state.clock.now()).await?;
    record(
        &state,
        &mut tx,
        TenantEventKind::DomainAdded,
        &access.actor,
        json!({ "domain": domain }),
    )
    .await?;
    let changes = [Invalidation::Host(domain_key(domain.as_str()))];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// List a tenant's custom domains.
#[utoipa::path(get, path = "/v1/tenants/{id}/domains", tag = "domains", params(("id" = String, Path)),
    responses((status = 200, body = DomainList), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DomainList>, ApiError> {
    let id = caller.for_tenant(&id, Scope::TenantRead)?.tenant;
    let mut tx = state.store.tenant_read(&id).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let domains = tx.list_domains().await?;
    tx.commit().await?;
    Ok(Json(DomainList {
        data: domains.into_iter().map(DomainOut::from).collect(),
    }))
}

/// Detach a custom domain from a tenant.
#[utoipa::path(delete, path = "/v1/tenants/{id}/domains/{domain}", tag = "domains",
    params(("id" = String, Path), ("domain" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, domain)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let access = caller.for_tenant(&id, Scope::TenantAdmin)?;
    let id = access.tenant;
    let domain = Hostname::parse("domain", &domain).map_err(|_| domain_not_found())?;
    let mut tx = state.store.tenant_write(&id).await?;
    tx.tenant_for_update().await.map_err(or_tenant_not_found)?;
    tx.remove_domain(&domain).await.map_err(|e| match e {
        StoreError::NotFound => domain_not_found(),
        other => other.into(),
    })?;
    record(
        &state,
        &mut tx,
        TenantEventKind::DomainRemoved,
        &access.actor,
        json!({ "domain": domain }),
    )
    .await?;
    let changes = [Invalidation::Host(domain_key(domain.as_str()))];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    Ok(StatusCode::NO_CONTENT)
}
