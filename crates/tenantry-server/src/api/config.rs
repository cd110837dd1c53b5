//! `/v1/tenants/{id}/config`: a tenant's configuration and its history.

use super::PageParams;
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::limits::config::EffectiveConfig;
use crate::limits::tenant_config;
use axum::Json;
use axum::extract::State;
use serde_json::Value;
pub use tenantry_api::config::{ConfigOut, ConfigVersionList, ConfigVersionOut};
use tenantry_core::TenantId;
use tenantry_core::keys::Scope;

fn config_out(tenant: &TenantId, config: &EffectiveConfig) -> ConfigOut {
    ConfigOut {
        tenant_id: tenant.to_string(),
        config: serde_json::to_value(config).unwrap_or(Value::Null),
    }
}

/// A tenant's effective configuration: its plan's defaults overridden by its own.
#[utoipa::path(get, path = "/v1/tenants/{id}/config", tag = "plans", params(("id" = String, Path)),
    responses((status = 200, body = ConfigOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_config(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConfigOut>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let config = tenant_config::get(&state, &grant).await?;
    Ok(Json(config_out(grant.tenant(), &config)))
}

/// Change a tenant's configuration (a JSON merge patch of its overrides:
/// `null` removes one). Stores a new version; in force at once everywhere.
/// Tenant admins may change `branding` and `retention_policy`; rate limits,
/// quotas and features need an operator.
#[utoipa::path(patch, path = "/v1/tenants/{id}/config", tag = "plans", params(("id" = String, Path)), request_body(content = Object),
    responses((status = 200, body = ConfigOut), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn patch_config(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<ConfigOut>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantAdmin)?;
    let config = tenant_config::patch(&state, &grant, &patch, caller.is_operator()).await?;
    Ok(Json(config_out(grant.tenant(), &config)))
}

/// The history of a tenant's configuration, newest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/config/versions", tag = "plans", params(("id" = String, Path), PageParams),
    responses((status = 200, body = ConfigVersionList), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn config_versions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ConfigVersionList>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let limit = page.limit()?;
    let before = match page.after("versions")? {
        Some(v) => Some(v.parse::<i64>().map_err(|_| super::invalid_cursor())?),
        None => None,
    };
    let mut rows = tenant_config::versions(&state, &grant, before, limit + 1).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| super::cursor("versions", &r.version.to_string()))
    } else {
        None
    };
    Ok(Json(ConfigVersionList {
        data: rows
            .into_iter()
            .map(|v| ConfigVersionOut {
                version: v.version,
                overrides: v.overrides,
                actor: v.actor,
                created_at: v.created_at,
            })
            .collect(),
        next_cursor,
    }))
}
