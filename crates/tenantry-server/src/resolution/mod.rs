//! Where the tenant is decided: from a request's host, API key, token or
//! trusted header, through a chain where the first match wins, backed by
//! in-memory caches that every change invalidates. Reads only: its lookups
//! across tenants go through one system grant, [`resolver`].

pub mod cache;
pub mod keys;
pub mod tokens;

use crate::app::AppState;
use crate::grant::OperatorGrant;
use crate::http::auth::{Caller, verify_credential_for};
use crate::http::problem::ApiError;
use cache::{Entry, TenantSnapshot, domain_key, subdomain_key};
use std::sync::{Arc, LazyLock};
pub use tenantry_api::resolve::MatchedBy;
use tenantry_core::TenantId;
use tenantry_core::tenant::TenantStatus;
use tenantry_core::values::Hostname;
use tenantry_store::StoreError;

/// The server's own authority for the lookups every request makes before
/// anyone is authenticated (a key's or host's tenant, a tenant's snapshot):
/// made once, so the hot path costs no more than it did. It only reads.
pub(crate) fn resolver() -> &'static OperatorGrant {
    #[allow(clippy::disallowed_methods)] // system grant: resolution reads across tenants by design
    fn make() -> OperatorGrant {
        OperatorGrant::system("resolution")
    }
    static RESOLVER: LazyLock<OperatorGrant> = LazyLock::new(make);
    &RESOLVER
}

/// The inputs of a resolution.
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    pub host: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    /// Whether the caller may name a tenant directly (`X-Tenant-ID`).
    pub trusted: bool,
}

/// What the presented keys and tokens say, once every one of them verified.
#[derive(Debug, Default)]
pub struct Credentials {
    /// The tenant the tenant keys and tokens belong to (all the same one).
    pub tenant: Option<(Arc<TenantSnapshot>, MatchedBy)>,
    /// Whether one of them makes its bearer a trusted resolver (the root
    /// key, an operator key, or a key or token granting `resolve:trusted`).
    pub trusted: bool,
}

/// Verifies every presented key and token, each in the one order of
/// [`crate::http::auth::verify_credential`]: any that does not verify is `401` (an unknown
/// operator key too), and all those of tenants must be of one tenant (`403
/// tenant_mismatch` otherwise). Operator credentials name no tenant.
/// `tenant_hint`: the tenant the request names, for a login token of a
/// user of several tenants.
pub async fn verify_credentials(
    state: &AppState,
    presented: &[&str],
    tenant_hint: Option<&str>,
) -> Result<Credentials, ApiError> {
    let mut out = Credentials::default();
    for credential in presented.iter().filter(|c| !c.is_empty()) {
        let caller = verify_credential_for(state, credential, tenant_hint).await?;
        out.trusted |= caller.is_trusted_resolver();
        if let Caller::Tenant {
            tenant,
            via_token,
            user,
            ..
        } = caller
        {
            let by = match (user.and_then(|u| u.matched_by), via_token) {
                (Some(by), _) => by,
                (None, true) => MatchedBy::Token,
                (None, false) => MatchedBy::ApiKey,
            };
            match &out.tenant {
                Some((other, _)) if other.id != tenant.id => return Err(tenant_mismatch()),
                Some(_) => {}
                None => out.tenant = Some((tenant, by)),
            }
        }
    }
    Ok(out)
}

fn tenant_mismatch() -> ApiError {
    ApiError::Forbidden {
        code: crate::http::codes::Code::TenantMismatch,
        detail: "the keys, tokens or host of this request belong to different tenants".into(),
    }
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
    let mut op = resolver().read(state).await?;
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
/// `tenant_id` → default tenant. The presented keys and tokens were all
/// verified first ([`verify_credentials`]), even when the host decides, and
/// must belong to the host's tenant. A tenant that is suspended is `403
/// tenant_suspended`; deleted or unmatched, `404 tenant_not_found`; a
/// `tenant_id` from a caller that is not trusted, `404` too (never the
/// default tenant instead).
pub async fn resolve(
    state: &AppState,
    inputs: &Inputs<'_>,
    credentials: Credentials,
) -> Result<(Arc<TenantSnapshot>, MatchedBy), ApiError> {
    let found = |snapshot: Option<Arc<TenantSnapshot>>,
                 by: MatchedBy|
     -> Result<(Arc<TenantSnapshot>, MatchedBy), ApiError> {
        if let Some(t) = &snapshot {
            crate::tenancy::regions::admit(state, t.id.as_str())?;
        }
        match snapshot {
            Some(t) if t.status == TenantStatus::Suspended => Err(ApiError::TenantSuspended),
            Some(t) if t.status == TenantStatus::Active => Ok((t, by)),
            // Deleted (or gone between lookups).
            _ => Err(ApiError::tenant_not_found()),
        }
    };

    // The tenant of the presented keys and tokens, checked whether or not it
    // decides the tenant: a gateway that resolves by host must not pass
    // along a bad key, or another tenant's.
    let credential = credentials.tenant;

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
                code: crate::http::codes::Code::TenantMismatch,
                detail: "the key or token belongs to another tenant than the host".into(),
            });
        }
        return Ok(tenant);
    }
    if let Some((tenant, matched_by)) = credential {
        return found(Some(tenant), matched_by);
    }

    if let Some(id) = inputs.tenant_id {
        if !inputs.trusted {
            return Err(ApiError::tenant_not_found());
        }
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
