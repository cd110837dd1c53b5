//! `/v1/resolve`: which tenant a request belongs to. `POST` takes the inputs
//! in a body; `GET` reads them from its own headers, so nginx `auth_request`
//! or Envoy ext_authz can put Tenantry in front of any application.

use crate::app::AppState;
use crate::http::auth::{Caller, authenticate, bearer, looks_like_token};
use crate::http::extract::ApiJson;
use crate::http::problem::{ApiError, Problem};
use crate::resolution::cache::TenantSnapshot;
use crate::resolution::{Inputs, MatchedBy, resolve as run_chain};
use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tenantry_core::tenant::TenantStatus;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveIn {
    /// The request's host (`acme.example.com`, `support.acme.com`).
    pub host: Option<String>,
    pub api_key: Option<String>,
    pub token: Option<String>,
    /// Honoured only for callers with an operator key or scope `resolve:trusted`.
    pub tenant_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResolvedTenant {
    pub id: String,
    pub name: String,
    pub status: TenantStatus,
    pub plan: String,
    pub region: String,
    pub subdomain: String,
    /// The effective features, limits, rate limits and quotas (see
    /// `GET /v1/tenants/{id}/config`).
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResolveOut {
    pub tenant: ResolvedTenant,
    pub matched_by: MatchedBy,
}

async fn output(
    state: &AppState,
    tenant: &TenantSnapshot,
    matched_by: MatchedBy,
) -> Result<ResolveOut, ApiError> {
    let config = crate::limits::service::effective_config_of(state, &tenant.id).await?;
    Ok(ResolveOut {
        tenant: ResolvedTenant {
            id: tenant.id.to_string(),
            name: tenant.name.clone(),
            status: tenant.status,
            plan: tenant.plan.clone(),
            region: tenant.region.clone(),
            subdomain: tenant.subdomain.clone(),
            config: config.summary(),
        },
        matched_by,
    })
}

/// The request's own credential, if it authenticates; a bad one is ignored
/// here (it only decides whether `tenant_id` is honoured).
async fn trusted_caller(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(credential) = crate::http::auth::credential(headers) else {
        return false;
    };
    matches!(authenticate(state, credential).await, Ok(c) if Caller::is_trusted_resolver(&c))
}

/// Resolve the tenant of a request from the given inputs. The chain, first
/// match wins: custom domain → subdomain → API key → token → tenant_id
/// (trusted callers only) → default tenant.
#[utoipa::path(post, path = "/v1/resolve", tag = "resolution", request_body = ResolveIn,
    responses((status = 200, body = ResolveOut), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "tenant_suspended", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json")))]
pub async fn resolve_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ResolveIn>,
) -> Result<Json<ResolveOut>, ApiError> {
    let trusted = input.tenant_id.is_some() && trusted_caller(&state, &headers).await;
    let inputs = Inputs {
        host: input.host.as_deref(),
        api_key: input.api_key.as_deref(),
        token: input.token.as_deref(),
        tenant_id: input.tenant_id.as_deref(),
        trusted,
    };
    let (tenant, matched_by) = run_chain(&state, &inputs).await?;
    Ok(Json(output(&state, &tenant, matched_by).await?))
}

/// Resolve the tenant of this very request, from `X-Forwarded-Host` or
/// `Host`, `X-API-Key`, `Authorization: Bearer` and `X-Tenant-ID`. Answers
/// with `X-Tenant-Id` and `X-Tenant-Plan` headers, for gateways.
#[utoipa::path(get, path = "/v1/resolve", tag = "resolution",
    responses((status = 200, body = ResolveOut, headers(("X-Tenant-Id" = String), ("X-Tenant-Plan" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn resolve_get(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let headers = &parts.headers;
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let host = text("x-forwarded-host")
        .map(|h| h.split(',').next().unwrap_or(h).trim())
        .or_else(|| text("host"));
    let bearer = bearer(&parts.headers);
    let (token, bearer_key) = match bearer {
        Some(b) if looks_like_token(b) => (Some(b), None),
        other => (None, other),
    };
    let api_key = text("x-api-key").or(bearer_key);
    let tenant_id = text("x-tenant-id");
    let trusted = tenant_id.is_some() && trusted_caller(&state, headers).await;
    let inputs = Inputs {
        host,
        api_key,
        token,
        tenant_id,
        trusted,
    };
    let (tenant, matched_by) = run_chain(&state, &inputs).await?;
    let mut response = Json(output(&state, &tenant, matched_by).await?).into_response();
    let out = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tenant.id.as_str()) {
        out.insert(HeaderName::from_static("x-tenant-id"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&tenant.plan) {
        out.insert(HeaderName::from_static("x-tenant-plan"), v);
    }
    Ok(response)
}
