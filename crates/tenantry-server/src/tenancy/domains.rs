//! Custom domains: a tenant's claims on hostnames, which resolve to it once
//! its ownership of them is proven.
//!
//! A claim starts `pending` with a token of its own; it becomes `verified`
//! when the TXT record `_tenantry-challenge.<domain>` holds that token (or an
//! operator forces it), and only then resolves. Several tenants may claim a
//! domain while it is pending; the first to prove it holds it, and nobody
//! can claim it again while it is held. Names under the base domain (the
//! tenants' subdomains) and reserved names are never accepted. Every
//! operation is one change in the tenant's audit chain.

use super::{lock, open_live, or_tenant_not_found};
use crate::app::AppState;
use crate::change::OperatorChange;
use crate::dns::DnsResolver;
use crate::grant::{OperatorGrant, Principal, TenantGrant};
use crate::http::problem::ApiError;
use crate::resolution::cache::{Invalidation, domain_key};
use serde_json::json;
use tenantry_core::TenantId;
use tenantry_core::audit::AuditTarget;
use tenantry_core::tenant::{
    CustomDomain, DomainStatus, TenantEventKind, TenantStatus, challenge_name,
};
use tenantry_core::values::Hostname;
use tenantry_store::StoreError;

pub fn domain_not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::DomainNotFound,
        detail: "this tenant has no such domain".into(),
    }
}

fn domain_taken() -> ApiError {
    ApiError::Conflict {
        code: crate::http::codes::Code::DomainTaken,
        detail: "this domain is verified by another tenant".into(),
        field: Some("domain"),
    }
}

fn tenant_deleted() -> ApiError {
    ApiError::Conflict {
        code: crate::http::codes::Code::TenantDeleted,
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

pub fn target(domain: &Hostname) -> AuditTarget {
    AuditTarget::new("domain", domain.as_str())
}

/// The server's own authority over the domain registry: who holds a domain
/// is a cross-tenant question (answered only as "taken").
fn registry() -> OperatorGrant {
    #[allow(clippy::disallowed_methods)] // system grant: cross-tenant lookup of a domain's holder
    OperatorGrant::system("domain-registry")
}

/// Claims `domain` for the grant's tenant: `pending`, with a fresh token.
pub async fn add(
    state: &AppState,
    grant: &TenantGrant,
    domain: &Hostname,
) -> Result<CustomDomain, ApiError> {
    domain.check_claimable("domain", state.config.base_domain.as_ref())?;
    // A domain held (verified) by a tenant is not open to claims. Checked
    // up front for a clear answer; a claim that races a verification stays
    // pending and can never verify (the unique index refuses it).
    let mut op = registry().read(state).await?;
    let owner = op.find_domain_owner(domain).await?;
    op.commit().await?;
    if owner.is_some() {
        return Err(domain_taken());
    }
    let mut change = open_live(state, grant).await?;
    let added = change
        .tx()
        .add_domain(domain, &verification_token(), state.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict {
                code: crate::http::codes::Code::DomainTaken,
                detail: "this tenant has claimed this domain already".into(),
                field: Some("domain"),
            },
            other => other.into(),
        })?;
    change.event(TenantEventKind::DomainAdded, json!({ "domain": domain }));
    change.audit(
        "domain.added",
        vec![target(domain)],
        json!({ "after": { "domain": domain, "status": added.status } }),
    );
    // A pending domain resolves nowhere: no cache entry changes.
    change.commit().await?;
    Ok(added)
}

/// The grant's tenant's domains, pending and verified.
pub async fn list(state: &AppState, grant: &TenantGrant) -> Result<Vec<CustomDomain>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let domains = tx.list_domains().await?;
    tx.commit().await?;
    Ok(domains)
}

/// One of the grant's tenant's domains.
async fn claim(
    state: &AppState,
    grant: &TenantGrant,
    domain: &Hostname,
) -> Result<CustomDomain, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let claim = tx.domain(domain).await?.ok_or_else(domain_not_found)?;
    tx.commit().await?;
    Ok(claim)
}

/// A change by the grant's actor that starts on the operator path (the
/// domain registry is cross-tenant) and continues on the grant's own tenant
/// in the same transaction ([`OperatorChange::scope_to`]).
async fn registry_change(
    state: &AppState,
    grant: &TenantGrant,
) -> Result<OperatorChange, StoreError> {
    #[allow(clippy::disallowed_methods)]
    // the registry lock of a verification: continued as this grant's own change, by its actor
    let tx = state.store.operator_write().await?;
    let principal = Principal {
        audit: grant.audit_actor().clone(),
        legacy: grant.actor().clone(),
    };
    Ok(OperatorChange::new(state, tx, principal))
}

/// Verifies a pending claim: the TXT record must hold its token, unless
/// `force` (which the caller has checked is an operator's). Verified
/// already: answered as it is, nothing recorded.
pub async fn verify(
    state: &AppState,
    grant: &TenantGrant,
    domain: &Hostname,
    force: bool,
) -> Result<CustomDomain, ApiError> {
    let claim = claim(state, grant, domain).await?;
    if claim.status == DomainStatus::Verified {
        return Ok(claim);
    }
    // The base domain may have changed since the claim was made (or the
    // claim predates these rules): check again.
    domain.check_claimable("domain", state.config.base_domain.as_ref())?;
    // The DNS lookup runs outside any transaction.
    if !force {
        check_challenge(state, &claim).await?;
    }
    let id = grant.tenant();
    let now = state.clock.now();
    let mut op = registry_change(state, grant).await?;
    op.tx().lock_domain(domain).await?;
    match op.tx().find_domain_owner(domain).await? {
        // A concurrent verification of this same claim won the lock.
        Some(owner) if owner == *id => {
            drop(op);
            return claim_of(state, grant, domain).await;
        }
        Some(_) => return Err(domain_taken()),
        None => {}
    }
    let others: Vec<TenantId> = op
        .tx()
        .pending_domain_claimants(domain)
        .await?
        .into_iter()
        .filter(|other| other != id)
        .collect();
    let mut change = op.scope_to(id).await?;
    let tenant = change
        .tx()
        .tenant_for_update()
        .await
        .map_err(or_tenant_not_found)?;
    if tenant.status == TenantStatus::Deleted {
        return Err(tenant_deleted());
    }
    change
        .tx()
        .verify_domain(domain, &claim.verification_token, now)
        .await
        .map_err(|e| match e {
            // Removed (or removed and claimed again, with a new token) since
            // it was read: the proof was for a claim that is gone.
            StoreError::NotFound => domain_not_found(),
            StoreError::Conflict(_) => domain_taken(),
            other => other.into(),
        })?;
    change.event(
        TenantEventKind::DomainVerified,
        json!({ "domain": domain, "forced": force }),
    );
    change.audit_with(
        "domain.verified",
        vec![target(domain)],
        json!({ "status": { "from": "pending", "to": "verified" } }),
        json!({ "forced": force }),
    );
    change.invalidate(Invalidation::Host(domain_key(domain.as_str())));
    change.commit().await?;
    drop_losing_claims(state, domain, &others).await;
    Ok(CustomDomain {
        status: DomainStatus::Verified,
        verified_at: Some(now),
        ..claim
    })
}

async fn claim_of(
    state: &AppState,
    grant: &TenantGrant,
    domain: &Hostname,
) -> Result<CustomDomain, ApiError> {
    let mut tx = grant.read(state).await?;
    let claim = tx.domain(domain).await?.ok_or_else(domain_not_found)?;
    tx.commit().await?;
    Ok(claim)
}

/// The other tenants' pending claims on a domain just verified lose: each
/// is dropped by the server in its own tenant's change, with a line in that
/// tenant's history and audit chain (by `system`: the winner's key id is
/// not theirs to see). After the verification's commit: a crash in between
/// leaves those claims pending, and a pending claim on a held domain can
/// never verify (the unique index refuses it), so nothing resolves wrongly.
async fn drop_losing_claims(state: &AppState, domain: &Hostname, others: &[TenantId]) {
    for other in others {
        #[allow(clippy::disallowed_methods)]
        // system grant: the server drops claims another tenant's verification defeated
        let grant = TenantGrant::system(other.clone(), "domain-verification");
        let result: Result<(), StoreError> = async {
            let mut change = grant.change(state).await?;
            if change.tx().drop_pending_domain(domain).await? {
                change.event(
                    TenantEventKind::DomainRemoved,
                    json!({ "domain": domain, "reason": "verified_by_another_tenant" }),
                );
                change.audit_with(
                    "domain.removed",
                    vec![target(domain)],
                    json!({ "before": { "domain": domain, "status": "pending" } }),
                    json!({ "reason": "verified_by_another_tenant" }),
                );
                change.commit().await?;
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, tenant_id = %other, domain = %domain, "a defeated domain claim was not dropped; it stays pending and cannot verify");
        }
    }
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
        code: crate::http::codes::Code::DomainVerificationFailed,
        detail: detail.into(),
        field: None,
    })
}

/// Detaches one of the grant's tenant's domains.
pub async fn remove(
    state: &AppState,
    grant: &TenantGrant,
    domain: &Hostname,
) -> Result<(), ApiError> {
    let (mut change, _) = lock(state, grant).await?;
    let before = change
        .tx()
        .domain(domain)
        .await?
        .ok_or_else(domain_not_found)?;
    change
        .tx()
        .remove_domain(domain)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => domain_not_found(),
            other => other.into(),
        })?;
    change.event(TenantEventKind::DomainRemoved, json!({ "domain": domain }));
    change.audit(
        "domain.removed",
        vec![target(domain)],
        json!({ "before": { "domain": domain, "status": before.status } }),
    );
    change.invalidate(Invalidation::Host(domain_key(domain.as_str())));
    change.commit().await?;
    Ok(())
}
