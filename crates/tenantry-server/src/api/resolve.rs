//! `/v1/resolve`: which tenant a request belongs to. `POST` takes the inputs
//! in a body; `GET` reads them from its own headers, so nginx `auth_request`
//! or Envoy ext_authz can put Tenantry in front of any application.

use crate::app::AppState;
use crate::http::auth::{bearer, verify_credential};
use crate::http::extract::ApiJson;
use crate::http::problem::{ApiError, Problem};
use crate::resolution::cache::TenantSnapshot;
use crate::resolution::{Inputs, MatchedBy, resolve as run_chain, verify_credentials};
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
pub use tenantry_api::resolve::{ResolveIn, ResolveOut, ResolvedTenant};

async fn output(
    state: &AppState,
    tenant: &TenantSnapshot,
    matched_by: MatchedBy,
    trusted: bool,
) -> Result<ResolveOut, ApiError> {
    let mut out = ResolvedTenant {
        id: tenant.id.to_string(),
        status: tenant.status,
        plan: tenant.plan.clone(),
        name: None,
        region: None,
        subdomain: None,
        config: None,
    };
    if trusted {
        let config = crate::limits::service::effective_config_of(state, &tenant.id).await?;
        out.name = Some(tenant.name.clone());
        out.region = Some(tenant.region.clone());
        out.subdomain = Some(tenant.subdomain.clone());
        out.config = Some(config.summary());
    }
    Ok(ResolveOut {
        tenant: out,
        matched_by,
    })
}

/// The address a request comes from: the peer, or, when the peer is one of
/// `trusted_proxies`, the client address its `X-Real-IP` names.
pub struct SourceAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for SourceAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(SourceAddr(source_addr(state, parts)))
    }
}

pub(crate) fn source_addr(state: &AppState, parts: &Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())?;
    if state.config.trusted_proxies.contains(&peer)
        && let Some(real) = parts
            .headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return Some(real);
    }
    Some(peer)
}

/// Resolutions by callers that are not trusted are limited per source
/// address (`resolve_anonymous_per_minute`): `429` with `Retry-After` beyond.
/// Checked before any refusal is answered, so guessing keys is limited too.
async fn hold_anonymous(state: &AppState, source: &SourceAddr) -> Result<(), ApiError> {
    let limit = state.config.resolve_anonymous_per_minute;
    if limit == 0 {
        return Ok(());
    }
    // One bucket per IPv6 /64 (what one host or site usually holds), so an
    // attacker with a block of addresses gets one bucket, not billions that
    // would crowd other buckets out of the in-memory limiter.
    let source = match source.0 {
        Some(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_none() => {
            let prefix = u128::from(ip) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        Some(IpAddr::V6(ip)) => ip
            .to_ipv4_mapped()
            .map_or_else(|| ip.to_string(), |v4| v4.to_string()),
        Some(ip) => ip.to_string(),
        None => "unknown".to_owned(),
    };
    let policy = crate::limits::ratelimit::Policy {
        limit,
        period: std::time::Duration::from_secs(60),
    };
    let decision = state
        .rate_limiter
        .check(&format!("resolve-anon:{source}"), policy, 1)
        .await;
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited(decision))
    }
}

/// Resolve the tenant of a request from the given inputs. The chain, first
/// match wins: custom domain → subdomain → API key → token → tenant_id
/// (trusted callers only) → default tenant.
#[utoipa::path(post, path = "/v1/resolve", tag = "resolution", security((), ("bearer" = [])), request_body = ResolveIn,
    responses((status = 200, body = ResolveOut), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "tenant_suspended, tenant_mismatch", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "tenant_not_found", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: too many resolutions from this address by callers that are not trusted", body = Problem, content_type = "application/problem+json")))]
pub async fn resolve_post(
    State(state): State<AppState>,
    source: SourceAddr,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ResolveIn>,
) -> Result<Json<ResolveOut>, ApiError> {
    if crate::http::auth::ambiguous_credentials(&headers) {
        return Err(ApiError::InvalidCredentials(
            tenantry_core::keys::VerifyCode::NotFound,
        ));
    }
    // The caller's own credential (if any) decides trust; the body's key and
    // token are the request being resolved. Every one of them is verified.
    let caller_trusted = match crate::http::auth::credential(&headers) {
        Some(credential) => verify_credential(&state, credential)
            .await
            .map(|caller| caller.is_trusted_resolver()),
        None => Ok(false),
    };
    if !caller_trusted.as_ref().is_ok_and(|t| *t) {
        hold_anonymous(&state, &source).await?;
    }
    let trusted = caller_trusted?;
    let presented: Vec<&str> = [input.api_key.as_deref(), input.token.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let credentials = verify_credentials(&state, &presented, input.tenant_id.as_deref()).await?;
    let inputs = Inputs {
        host: input.host.as_deref(),
        tenant_id: input.tenant_id.as_deref(),
        trusted,
    };
    let (tenant, matched_by) = run_chain(&state, &inputs, credentials).await?;
    Ok(Json(output(&state, &tenant, matched_by, trusted).await?))
}

/// Resolve the tenant of this very request, from `X-Forwarded-Host` or
/// `Host`, `X-API-Key`, `Authorization: Bearer` and `X-Tenant-ID`. Answers
/// with `X-Tenant-Id` and `X-Tenant-Plan` headers, for gateways.
#[utoipa::path(get, path = "/v1/resolve", tag = "resolution", security((), ("bearer" = [])),
    responses((status = 200, body = ResolveOut, headers(("X-Tenant-Id" = String), ("X-Tenant-Plan" = String))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "tenant_suspended, tenant_mismatch (also in the X-Tenantry-Code header, for gateways that see only headers)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: too many resolutions from this address by callers that are not trusted", body = Problem, content_type = "application/problem+json")))]
pub async fn resolve_get(State(state): State<AppState>, parts: Parts) -> Response {
    match resolve_this_request(state, parts).await {
        Ok(response) => response,
        Err(err) => {
            // nginx's auth_request sees a denial's headers, not its body:
            // the problem's code travels in a header too, so the gateway
            // can tell tenant_mismatch from tenant_suspended.
            let code = err.to_problem().1.code;
            let mut response = err.into_response();
            if let Ok(value) = HeaderValue::from_str(&code) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static("x-tenantry-code"), value);
            }
            response
        }
    }
}

async fn resolve_this_request(state: AppState, parts: Parts) -> Result<Response, ApiError> {
    let source = SourceAddr(source_addr(&state, &parts));
    let headers = &parts.headers;
    // A repeated credential header: the app behind the gateway could read
    // another copy than the one verified here.
    if crate::http::auth::ambiguous_credentials(headers) {
        return Err(ApiError::InvalidCredentials(
            tenantry_core::keys::VerifyCode::NotFound,
        ));
    }
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
    // Every credential header is verified: `X-API-Key` and the bearer
    // credential (a key or a token) both, and they must agree on the tenant.
    // The root key, an operator key or a `resolve:trusted` one makes the
    // request trusted (`X-Tenant-ID`, the full view).
    let presented: Vec<&str> = [text("x-api-key"), bearer(&parts.headers)]
        .into_iter()
        .flatten()
        .collect();
    let verified = verify_credentials(&state, &presented, text("x-tenant-id")).await;
    let trusted = verified.as_ref().is_ok_and(|c| c.trusted);
    if !trusted {
        hold_anonymous(&state, &source).await?;
    }
    let credentials = verified?;
    let inputs = Inputs {
        host,
        tenant_id: text("x-tenant-id"),
        trusted,
    };
    let (tenant, matched_by) = run_chain(&state, &inputs, credentials).await?;
    let mut response = Json(output(&state, &tenant, matched_by, trusted).await?).into_response();
    let out = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(tenant.id.as_str()) {
        out.insert(HeaderName::from_static("x-tenant-id"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&tenant.plan) {
        out.insert(HeaderName::from_static("x-tenant-plan"), v);
    }
    Ok(response)
}
