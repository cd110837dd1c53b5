//! `/v1/tenants/{id}/domains`: custom domains that resolve to a tenant once
//! its ownership of them is proven (the behaviour is in
//! [`crate::tenancy::domains`]).

use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath, TenantPathChecked, parse_json};
use crate::http::problem::{ApiError, Problem};
use crate::tenancy::domains::{self, domain_not_found};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
pub use tenantry_api::domains::{DnsChallenge, DomainIn, DomainList, DomainOut, VerifyIn};
use tenantry_core::keys::Scope;
use tenantry_core::values::Hostname;

/// Claim a custom domain for a tenant: answers it `pending`, with the TXT
/// record that proves ownership.
#[utoipa::path(post, path = "/v1/tenants/{id}/domains", tag = "domains", params(("id" = String, Path)), request_body = DomainIn,
    responses((status = 201, body = DomainOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the domain is verified by a tenant already, or this tenant claimed it already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "not a hostname, under the base domain, or reserved", body = Problem, content_type = "application/problem+json")))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<DomainIn>,
) -> Result<(StatusCode, Json<DomainOut>), ApiError> {
    let grant = caller.grant(&id, Scope::TenantAdmin)?;
    let domain = Hostname::parse("domain", &input.domain)?;
    let added = domains::add(&state, &grant, &domain).await?;
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// List a tenant's custom domains, pending and verified.
#[utoipa::path(get, path = "/v1/tenants/{id}/domains", tag = "domains", params(("id" = String, Path)),
    responses((status = 200, body = DomainList), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DomainList>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let domains = domains::list(&state, &grant).await?;
    Ok(Json(DomainList {
        data: domains.into_iter().map(DomainOut::from).collect(),
    }))
}

/// Verify a pending domain: looks up the TXT record
/// `_tenantry-challenge.<domain>` and marks the domain verified when it holds
/// the claim's token. `{"force": true}` (operator keys only) skips the check.
/// The body may be empty.
#[utoipa::path(post, path = "/v1/tenants/{id}/domains/{domain}/verify", tag = "domains",
    params(("id" = String, Path), ("domain" = String, Path)), request_body(content = Option<VerifyIn>),
    responses((status = 200, description = "verified (or verified already)", body = DomainOut),
        (status = 403, description = "`force` with a tenant key", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "verified by another tenant meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`domain_verification_failed`: the TXT record is missing or holds another value; or the name is reserved", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`dns_unavailable`: the resolver did not answer (with Retry-After)", body = Problem, content_type = "application/problem+json")))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, domain)): ApiPath<(String, String)>,
    _checked: TenantPathChecked,
    body: Bytes,
) -> Result<Json<DomainOut>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantAdmin)?;
    // Read after the tenant check, so a foreign tenant's path reveals
    // nothing through its body's validation.
    // The body is optional: none, or JSON `null`, is `{}`.
    let input: VerifyIn =
        if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
            VerifyIn::default()
        } else {
            parse_json(&body)?
        };
    if input.force && !caller.is_operator() {
        return Err(ApiError::Forbidden {
            code: crate::http::codes::Code::OperatorRequired,
            detail: "only an operator key may force-verify a domain".into(),
        });
    }
    let domain = Hostname::parse("domain", &domain).map_err(|_| domain_not_found())?;
    let verified = domains::verify(&state, &grant, &domain, input.force).await?;
    Ok(Json(verified.into()))
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
    let grant = caller.grant(&id, Scope::TenantAdmin)?;
    let domain = Hostname::parse("domain", &domain).map_err(|_| domain_not_found())?;
    domains::remove(&state, &grant, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
