//! Where the tenant is decided: from a request's host, API key, token or
//! trusted header, through a chain where the first match wins, backed by
//! in-memory caches that every change invalidates.

pub mod cache;
pub mod keys;
pub mod tokens;

use crate::app::AppState;
use crate::http::problem::ApiError;
use cache::{Entry, TenantSnapshot, domain_key, subdomain_key};
use serde::Serialize;
use std::sync::Arc;
use tenantry_core::TenantId;
use tenantry_core::keys::{Scopes, VerifyCode};
use tenantry_core::tenant::TenantStatus;
use tenantry_core::values::Hostname;
use tenantry_store::StoreError;

/// Which link of the chain matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    CustomDomain,
    Subdomain,
    ApiKey,
    Token,
    Header,
    Default,
}

/// The inputs of a resolution.
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    pub host: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub token: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    /// Whether the caller may name a tenant directly (`X-Tenant-ID`).
    pub trusted: bool,
}

/// Strips a port and one trailing dot, folds case.
fn normalize_host(host: &str) -> Option<Hostname> {
    let host = host.trim();
    let without_port = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    Hostname::parse("host", without_port).ok()
}

async fn lookup_host(
    state: &AppState,
    cache_key: String,
    load: HostLoad<'_>,
) -> Result<Option<TenantId>, StoreError> {
    let caches = &state.caches;
    if let Some(entry) = caches.hosts.get(&cache_key) {
        return Ok(match entry {
            Entry::Found(id) => Some((*id).clone()),
            Entry::Missing => None,
        });
    }
    let generation = caches.generation();
    let mut op = state.store.operator_read().await?;
    let found = match load {
        HostLoad::Domain(domain) => op.find_domain_owner(domain).await?,
        HostLoad::Subdomain(label) => op.find_tenant_by_subdomain(label).await?,
    };
    op.commit().await?;
    let entry = found
        .clone()
        .map(|id| Entry::Found(Arc::new(id)))
        .unwrap_or(Entry::Missing);
    caches.store(&caches.hosts, generation, cache_key, entry);
    Ok(found)
}

enum HostLoad<'a> {
    Domain(&'a Hostname),
    Subdomain(&'a str),
}

/// Runs the chain: custom domain → subdomain → API key → token → trusted
/// `tenant_id` → default tenant. A presented key or token is verified even
/// when the host decides, and must belong to the same tenant. A tenant that is suspended is `403 tenant_suspended`;
/// deleted or unmatched, `404 tenant_not_found`.
pub async fn resolve(
    state: &AppState,
    inputs: &Inputs<'_>,
) -> Result<(Arc<TenantSnapshot>, MatchedBy), ApiError> {
    let found = |snapshot: Option<Arc<TenantSnapshot>>,
                 by: MatchedBy|
     -> Result<(Arc<TenantSnapshot>, MatchedBy), ApiError> {
        match snapshot {
            Some(t) if t.status == TenantStatus::Suspended => Err(ApiError::TenantSuspended),
            Some(t) if t.status == TenantStatus::Active => Ok((t, by)),
            // Deleted (or gone between lookups).
            _ => Err(ApiError::tenant_not_found()),
        }
    };

    // The tenant the presented credential (key or token) belongs to, checked
    // whether or not it decides the tenant: a gateway that resolves by host
    // must not pass along a bad key, or another tenant's.
    let credential = credential_tenant(state, inputs).await?;

    let mut by_host = None;
    if let Some(host) = inputs.host.and_then(normalize_host) {
        // A name under the base domain is a subdomain, never a custom domain
        // (claims of such names are refused, and one that predates the rule
        // or a change of base domain must not shadow a tenant's subdomain).
        let under_base = state
            .config
            .base_domain
            .as_ref()
            .is_some_and(|base| host.is_within(base));
        if !under_base
            && let Some(id) =
                lookup_host(state, domain_key(host.as_str()), HostLoad::Domain(&host)).await?
        {
            by_host = Some((id, MatchedBy::CustomDomain));
        } else if let Some(base) = &state.config.base_domain
            && let Some(label) = host
                .as_str()
                .strip_suffix(base.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
            && !label.contains('.')
            && let Some(id) =
                lookup_host(state, subdomain_key(label), HostLoad::Subdomain(label)).await?
        {
            by_host = Some((id, MatchedBy::Subdomain));
        }
    }
    if let Some((id, matched_by)) = by_host {
        let tenant = found(keys::load_tenant(state, &id).await?, matched_by)?;
        if let Some((other, _)) = &credential
            && other.id != tenant.0.id
        {
            return Err(ApiError::Forbidden {
                code: "tenant_mismatch",
                detail: "the key or token belongs to another tenant than the host".into(),
            });
        }
        return Ok(tenant);
    }
    if let Some((tenant, matched_by)) = credential {
        return found(Some(tenant), matched_by);
    }

    if inputs.trusted
        && let Some(id) = inputs.tenant_id
    {
        let Ok(id) = TenantId::parse(id) else {
            return Err(ApiError::tenant_not_found());
        };
        return found(keys::load_tenant(state, &id).await?, MatchedBy::Header);
    }

    if let Some(id) = &state.config.default_tenant {
        return found(keys::load_tenant(state, id).await?, MatchedBy::Default);
    }
    Err(ApiError::tenant_not_found())
}

/// Verifies the key or token among the inputs, if any: `Some` with its
/// tenant, an error if it does not verify.
async fn credential_tenant(
    state: &AppState,
    inputs: &Inputs<'_>,
) -> Result<Option<(Arc<TenantSnapshot>, MatchedBy)>, ApiError> {
    // An operator credential names no tenant: it only makes the caller trusted.
    let tenant_key = inputs.api_key.filter(|k| {
        !k.is_empty()
            && !state.root_key.matches(k)
            && tenantry_core::keys::parse_key(k)
                .is_none_or(|p| p.kind == tenantry_core::keys::KeyKind::Tenant)
    });
    if let Some(key) = tenant_key {
        let verification = keys::verify(state, key, &Scopes::default()).await?;
        return match (verification.code, verification.tenant) {
            (VerifyCode::Valid, Some(tenant)) => Ok(Some((tenant, MatchedBy::ApiKey))),
            (VerifyCode::TenantSuspended, _) => Err(ApiError::TenantSuspended),
            (code, _) => Err(ApiError::InvalidCredentials(code)),
        };
    }
    if let Some(token) = inputs.token.filter(|t| !t.is_empty()) {
        let verified = state
            .tokens
            .verify(token, state.clock.now())
            .map_err(|_| ApiError::InvalidCredentials(VerifyCode::NotFound))?;
        if !tokens::key_still_valid(state, &verified).await? {
            return Err(ApiError::InvalidCredentials(VerifyCode::Revoked));
        }
        return match keys::load_tenant(state, &verified.tenant_id).await? {
            Some(tenant) => Ok(Some((tenant, MatchedBy::Token))),
            None => Err(ApiError::InvalidCredentials(VerifyCode::NotFound)),
        };
    }
    Ok(None)
}
