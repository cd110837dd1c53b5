//! `/v1/tenants/{id}/domains`: custom domains that resolve to a tenant once
//! its ownership of them is proven.
//!
//! A claim starts `pending` with a token of its own; it becomes `verified`
//! when the TXT record `_tenantry-challenge.<domain>` holds that token (or an
//! operator forces it), and only then resolves. Several tenants may claim a
//! domain while it is pending; the first to prove it holds it, the others'
//! claims are dropped in the same transaction, and nobody can claim it again
//! while it is held. Names under the base domain (the tenants' subdomains)
//! and reserved names are never accepted.
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use super::tenants::{or_tenant_not_found, record};
use crate::app::AppState;
use crate::app::announce;
use crate::dns::DnsResolver;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath, TenantPathChecked, parse_json};
use crate::http::problem::{ApiError, Problem};
use crate::resolution::cache::{Invalidation, domain_key};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenantry_core::TenantId;
use tenantry_core::keys::Scope;
use tenantry_core::tenant::{
    Actor, CustomDomain, DomainStatus, TenantEventKind, TenantStatus, challenge_name,
};
use tenantry_core::values::Hostname;
use tenantry_store::StoreError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainIn {
    /// A hostname such as `support.acme.com`.
    pub domain: String,
}

/// The DNS record that proves ownership of a domain.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DnsChallenge {
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `_tenantry-challenge.<domain>`.
    pub name: String,
    /// The claim's `verification_token`.
    pub value: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainOut {
    pub domain: String,
    /// `pending` until verified; only `verified` domains resolve.
    pub status: DomainStatus,
    /// Unique to this claim; the TXT record must hold exactly this value.
    pub verification_token: String,
    /// The record to create at the domain's DNS provider.
    pub dns_record: DnsChallenge,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
}

impl From<CustomDomain> for DomainOut {
    fn from(d: CustomDomain) -> Self {
        DomainOut {
            dns_record: DnsChallenge {
                kind: "TXT",
                name: challenge_name(&d.domain),
                value: d.verification_token.clone(),
            },
            domain: d.domain.to_string(),
            status: d.status,
            verification_token: d.verification_token,
            created_at: d.created_at,
            verified_at: d.verified_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainList {
    pub data: Vec<DomainOut>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyIn {
    /// Mark the domain verified without a DNS check: operator keys only.
    #[serde(default)]
    pub force: bool,
}

fn domain_not_found() -> ApiError {
    ApiError::NotFound {
        code: "domain_not_found",
        detail: "this tenant has no such domain".into(),
    }
}

fn domain_taken() -> ApiError {
    ApiError::Conflict {
        code: "domain_taken",
        detail: "this domain is verified by another tenant".into(),
        field: Some("domain"),
    }
}

fn tenant_deleted() -> ApiError {
    ApiError::Conflict {
        code: "tenant_deleted",
        detail: "the tenant is deleted".into(),
        field: None,
    }
}

fn verification_token() -> String {
    format!(
        "tenantry-verification={}",
        hex::encode(rand::random::<[u8; 16]>())
    )
}

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
    let access = caller.for_tenant(&id, Scope::TenantAdmin)?;
    let id = access.tenant;
    let domain = Hostname::parse("domain", &input.domain)?;
    domain.check_claimable("domain", state.config.base_domain.as_ref())?;
    // A domain held (verified) by a tenant is not open to claims. Checked
    // up front for a clear answer; a claim that races a verification stays
    // pending and can never verify (the unique index refuses it).
    let mut op = state.store.operator_read().await?;
    let owner = op.find_domain_owner(&domain).await?;
    op.commit().await?;
    if owner.is_some() {
        return Err(domain_taken());
    }
    let mut tx = state.store.tenant_write(&id).await?;
    let tenant = tx.tenant_for_update().await.map_err(or_tenant_not_found)?;
    if tenant.status == TenantStatus::Deleted {
        return Err(tenant_deleted());
    }
    let added = tx
        .add_domain(&domain, &verification_token(), state.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict {
                code: "domain_taken",
                detail: "this tenant has claimed this domain already".into(),
                field: Some("domain"),
            },
            other => other.into(),
        })?;
    record(
        &state,
        &mut tx,
        TenantEventKind::DomainAdded,
        &access.actor,
        json!({ "domain": domain }),
    )
    .await?;
    // A pending domain resolves nowhere: no cache entry changes.
    tx.commit().await?;
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
    let id = caller.for_tenant(&id, Scope::TenantRead)?.tenant;
    let mut tx = state.store.tenant_read(&id).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let domains = tx.list_domains().await?;
    tx.commit().await?;
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
    let access = caller.for_tenant(&id, Scope::TenantAdmin)?;
    let id = access.tenant;
    // Read after the tenant check, so a foreign tenant's path reveals
    // nothing through its body's validation.
    let input: VerifyIn = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyIn::default()
    } else {
        parse_json(&body)?
    };
    if input.force && !caller.is_operator() {
        return Err(ApiError::Forbidden {
            code: "operator_required",
            detail: "only an operator key may force-verify a domain".into(),
        });
    }
    let domain = Hostname::parse("domain", &domain).map_err(|_| domain_not_found())?;

    let mut tx = state.store.tenant_read(&id).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let claim = tx.domain(&domain).await?.ok_or_else(domain_not_found)?;
    tx.commit().await?;
    if claim.status == DomainStatus::Verified {
        return Ok(Json(claim.into()));
    }
    // The base domain may have changed since the claim was made (or the
    // claim predates these rules): check again.
    domain.check_claimable("domain", state.config.base_domain.as_ref())?;

    // The DNS lookup runs outside any transaction.
    if !input.force {
        check_challenge(&state, &claim).await?;
    }

    let now = state.clock.now();
    let mut op = state.store.operator_write().await?;
    op.lock_domain(&domain).await?;
    match op.find_domain_owner(&domain).await? {
        // A concurrent verification of this same claim won the lock.
        Some(owner) if owner == id => {
            op.commit().await?;
            let mut tx = state.store.tenant_read(&id).await?;
            let claim = tx.domain(&domain).await?.ok_or_else(domain_not_found)?;
            tx.commit().await?;
            return Ok(Json(claim.into()));
        }
        Some(_) => return Err(domain_taken()),
        None => {}
    }
    let others: Vec<TenantId> = op
        .pending_domain_claimants(&domain)
        .await?
        .into_iter()
        .filter(|other| *other != id)
        .collect();
    let mut tx = op.scope_to(&id).await?;
    let tenant = tx.tenant_for_update().await.map_err(or_tenant_not_found)?;
    if tenant.status == TenantStatus::Deleted {
        return Err(tenant_deleted());
    }
    tx.verify_domain(&domain, &claim.verification_token, now)
        .await
        .map_err(|e| match e {
            // Removed (or removed and claimed again, with a new token) since
            // it was read: the proof was for a claim that is gone.
            StoreError::NotFound => domain_not_found(),
            StoreError::Conflict(_) => domain_taken(),
            other => other.into(),
        })?;
    record(
        &state,
        &mut tx,
        TenantEventKind::DomainVerified,
        &access.actor,
        json!({ "domain": domain, "forced": input.force }),
    )
    .await?;
    let changes = [Invalidation::Host(domain_key(domain.as_str()))];
    announce(&mut tx, &changes).await?;
    // The other tenants' claims lose: dropped in the same transaction, each
    // in its own tenant's scope, with a line in its history (by `system`:
    // the winner's key id is not theirs to see).
    for other in &others {
        tx = tx.rescope(other, state.store.request_role()).await?;
        if tx.drop_pending_domain(&domain).await? {
            record(
                &state,
                &mut tx,
                TenantEventKind::DomainRemoved,
                &Actor::system(),
                json!({ "domain": domain, "reason": "verified_by_another_tenant" }),
            )
            .await?;
        }
    }
    tx.commit().await?;
    state.forget(&changes);
    Ok(Json(
        CustomDomain {
            status: DomainStatus::Verified,
            verified_at: Some(now),
            ..claim
        }
        .into(),
    ))
}

/// Looks up the claim's TXT record: `Ok` when one of the values found is
/// its token, `422 domain_verification_failed` saying what was found, `503
/// dns_unavailable` when the resolver does not answer.
async fn check_challenge(state: &AppState, claim: &CustomDomain) -> Result<(), ApiError> {
    let name = challenge_name(&claim.domain);
    let resolver = DnsResolver::new(state.config.dns_resolver);
    let values = resolver.txt(&name).await.map_err(|err| {
        tracing::warn!(error = %err, domain = %claim.domain, "domain verification: DNS unavailable");
        ApiError::DnsUnavailable
    })?;
    if values.iter().any(|v| v.trim() == claim.verification_token) {
        return Ok(());
    }
    let detail = if values.is_empty() {
        format!(
            "no TXT record found at {name}; create one with the value {}",
            claim.verification_token
        )
    } else {
        // Not echoed: the values are whatever the zone holds.
        format!(
            "found {} TXT record(s) at {name}, none holding this claim's token {}",
            values.len(),
            claim.verification_token
        )
    };
    Err(ApiError::Unprocessable {
        code: "domain_verification_failed",
        detail: detail.into(),
        field: None,
    })
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
