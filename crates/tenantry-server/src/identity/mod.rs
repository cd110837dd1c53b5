//! Users of the products Tenantry serves, who log in through their own
//! identity provider: the trusted issuers ([`providers`]), the verification
//! of their bearer JWTs ([`jwt`], with key sets from [`jwks`]), and the
//! memberships that tie a user to tenants ([`members`]).
//!
//! Where a credential is accepted, a JWT whose `iss` is a registered issuer
//! is verified here ([`authenticate`]) and becomes a [`Caller`]: a super
//! admin (an operator role from the issuer) acts as an operator; anyone
//! else acts on one tenant, chosen by the token's tenant claim or by the
//! user's memberships, with the scopes of their roles there. API keys never
//! come here (their shape differs), so their path costs what it did.

pub mod jwks;
pub mod jwt;
pub mod members;
pub mod providers;

use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::problem::ApiError;
use crate::resolution::MatchedBy;
use crate::resolution::cache::Entry;
use jwt::{Jwk, JwtError, Unverified};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::TenantId;
use tenantry_core::keys::{Scope, Scopes, VerifyCode};
use tenantry_core::tenant::{Actor, TenantStatus};

/// A trusted issuer, as the server uses it.
#[derive(Debug)]
pub struct Provider {
    pub id: String,
    pub config: providers::ProviderConfig,
    /// Parsed inline keys (`jwks`), when the provider has no `jwks_url`.
    inline_keys: Option<Arc<Vec<Jwk>>>,
    /// Custom role → its scopes.
    custom_scopes: HashMap<String, Scopes>,
}

/// Every provider, by issuer.
#[derive(Debug, Default)]
pub struct Registry {
    by_issuer: HashMap<String, Arc<Provider>>,
}

impl Registry {
    pub fn get(&self, issuer: &str) -> Option<&Arc<Provider>> {
        self.by_issuer.get(issuer)
    }

    pub fn providers(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.by_issuer.values()
    }
}

/// One tenant a user belongs to, with their roles there.
#[derive(Debug, Clone)]
pub struct Membership {
    pub tenant: TenantId,
    pub roles: Vec<String>,
}

/// The person behind a caller authenticated by an external token.
#[derive(Debug, Clone)]
pub struct ExternalUser {
    pub provider_id: String,
    pub issuer: String,
    pub subject: String,
    /// Acting as an operator (an operator role from the issuer).
    pub super_admin: bool,
    /// How the tenant was chosen (tenant callers).
    pub matched_by: Option<MatchedBy>,
}

impl ExternalUser {
    /// The user's name in Tenantry: the issuer's subject namespaced by the
    /// provider (`idp_…:subject`), as member paths spell it.
    pub fn member_key(&self) -> String {
        member_key(&self.provider_id, &self.subject)
    }
}

pub fn member_key(provider_id: &str, subject: &str) -> String {
    format!("{provider_id}:{subject}")
}

/// What a verified token says, cached by the token's hash until it expires.
#[derive(Debug)]
struct Verified {
    provider_id: String,
    subject: String,
    tenant: Option<String>,
    roles: Vec<String>,
    exp: i64,
}

/// The identity state of one server process: key sets and verified tokens.
pub struct Identity {
    pub key_sets: Arc<jwks::KeySets>,
    verified: moka::sync::Cache<[u8; 32], Arc<Verified>>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            key_sets: Arc::default(),
            verified: moka::sync::Cache::builder()
                .max_capacity(100_000)
                // Entries are also checked against their token's `exp`.
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity")
    }
}

impl Identity {
    /// Providers changed: what was verified under their old settings goes.
    pub fn providers_changed(&self) {
        self.verified.invalidate_all();
    }
}

/// The providers, from the cache or the database.
pub async fn registry(state: &AppState) -> Result<Arc<Registry>, ApiError> {
    if let Some(Entry::Found(registry)) = state.caches.identity_providers.get(&()) {
        return Ok(registry);
    }
    let generation = state.caches.generation();
    let mut op = crate::resolution::resolver().read(state).await?;
    let rows = op.identity_providers().await?;
    op.commit().await?;
    let mut by_issuer = HashMap::new();
    for row in rows {
        match providers::from_row(&row) {
            Ok(provider) => {
                by_issuer.insert(provider.config.issuer.clone(), Arc::new(provider));
            }
            Err(why) => {
                tracing::error!(provider = %row.id, reason = %why, "an identity provider's stored settings are invalid; its tokens are refused")
            }
        }
    }
    let ids: Vec<&str> = by_issuer.values().map(|p| p.id.as_str()).collect();
    state.identity.key_sets.retain(&ids);
    let registry = Arc::new(Registry { by_issuer });
    state.caches.store(
        &state.caches.identity_providers,
        generation,
        (),
        Entry::Found(registry.clone()),
    );
    Ok(registry)
}

fn refused(err: JwtError) -> ApiError {
    tracing::debug!(reason = ?err, "external token refused");
    ApiError::InvalidCredentials(match err {
        JwtError::Expired => VerifyCode::Expired,
        _ => VerifyCode::NotFound,
    })
}

/// Authenticates a bearer JWT from a registered issuer. `Ok(None)` when the
/// token names no registered issuer (it may be one of Tenantry's own).
/// `tenant_hint`: the tenant the request names (`X-Tenant-ID`, or the
/// tenant of its path), for a user of several tenants.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    tenant_hint: Option<&str>,
) -> Result<Option<Caller>, ApiError> {
    let Ok(unverified) = Unverified::parse(token) else {
        return Ok(None);
    };
    let Some(issuer) = unverified.issuer() else {
        return Ok(None);
    };
    let registry = registry(state).await?;
    let Some(provider) = registry.get(issuer).cloned() else {
        return Ok(None);
    };
    let now = state.clock.now().timestamp();
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let verified = match state.identity.verified.get(&hash) {
        Some(v) if v.provider_id == provider.id && v.exp + jwt::LEEWAY_SECONDS > now => v,
        _ => {
            let v = Arc::new(verify(state, &provider, unverified, now).await?);
            state.identity.verified.insert(hash, v.clone());
            v
        }
    };
    caller_for(state, &provider, &verified, tenant_hint)
        .await
        .map(Some)
}

async fn verify(
    state: &AppState,
    provider: &Provider,
    token: Unverified<'_>,
    now: i64,
) -> Result<Verified, ApiError> {
    let config = &provider.config;
    let alg = token.alg(&config.algorithms).map_err(refused)?;
    let keys = match (&provider.inline_keys, &config.jwks_url) {
        (Some(keys), _) => keys.clone(),
        (None, Some(url)) => {
            let want = match &token.kid {
                Some(kid) => jwks::Want::Kid(kid),
                None => jwks::Want::Any,
            };
            state
                .identity
                .key_sets
                .keys(
                    &state.outbound,
                    &provider.id,
                    url,
                    want,
                    state.config.identity_jwks_refetch_interval,
                )
                .await
                .map_err(|_| ApiError::Unavailable("the identity provider's key set"))?
        }
        (None, None) => return Err(refused(JwtError::UnknownKey)),
    };
    let key = token
        .pick(alg, &keys)
        .ok_or(JwtError::UnknownKey)
        .map_err(refused)?;
    let claims = token
        .verify(key, &config.issuer, &config.audiences, now)
        .map_err(refused)?;
    let subject = jwt::claim(&claims, &config.subject_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control))
        .ok_or(JwtError::Subject)
        .map_err(refused)?
        .to_owned();
    let tenant = config
        .tenant_claim
        .as_deref()
        .and_then(|path| jwt::claim(&claims, path))
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
    let roles = config
        .roles_claim
        .as_deref()
        .and_then(|path| jwt::claim(&claims, path))
        .map(|v| match v {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    Ok(Verified {
        provider_id: provider.id.clone(),
        subject,
        tenant,
        roles,
        exp: jwt::numeric(claims.get("exp")).unwrap_or(now),
    })
}

/// A tenant that does not exist, is not the user's, or is ambiguous.
fn no_tenant(detail: &'static str) -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::TenantNotFound,
        detail: detail.into(),
    }
}

async fn caller_for(
    state: &AppState,
    provider: &Provider,
    verified: &Verified,
    hint: Option<&str>,
) -> Result<Caller, ApiError> {
    let config = &provider.config;
    let mut user = ExternalUser {
        provider_id: provider.id.clone(),
        issuer: config.issuer.clone(),
        subject: verified.subject.clone(),
        super_admin: false,
        matched_by: None,
    };
    let actor = Actor::from_trusted(format!("user:{}", user.member_key()));
    if verified
        .roles
        .iter()
        .any(|role| config.operator_roles.contains(role))
    {
        user.super_admin = true;
        return Ok(Caller::Operator {
            actor,
            root: false,
            user: Some(Arc::new(user)),
        });
    }
    let memberships = members::memberships_of(state, &provider.id, &verified.subject).await?;
    let member_of = |id: &str| memberships.iter().find(|m| m.tenant.as_str() == id);
    let (tenant_id, member_roles, matched_by) = match (&verified.tenant, hint) {
        (Some(claimed), Some(named)) if claimed != named => {
            return Err(no_tenant("the token names another tenant"));
        }
        (Some(claimed), _) => match member_of(claimed) {
            Some(m) => (m.tenant.clone(), m.roles.clone(), MatchedBy::TokenClaim),
            None if config.trust_tenant_claim => (
                TenantId::parse(claimed).map_err(|_| no_tenant("no such tenant"))?,
                Vec::new(),
                MatchedBy::TokenClaim,
            ),
            None => return Err(no_tenant("the user is not a member of this tenant")),
        },
        (None, Some(named)) => match member_of(named) {
            Some(m) => (m.tenant.clone(), m.roles.clone(), MatchedBy::Membership),
            None => return Err(no_tenant("the user is not a member of this tenant")),
        },
        (None, None) => match memberships.as_slice() {
            [only] => (
                only.tenant.clone(),
                only.roles.clone(),
                MatchedBy::Membership,
            ),
            [] => return Err(no_tenant("the user is a member of no tenant")),
            _ => {
                return Err(no_tenant(
                    "the user is a member of several tenants: name one with X-Tenant-ID",
                ));
            }
        },
    };
    user.matched_by = Some(matched_by);
    let tenant = crate::resolution::keys::load_tenant(state, &tenant_id)
        .await?
        .ok_or_else(|| no_tenant("no such tenant"))?;
    match tenant.status {
        TenantStatus::Active => {}
        TenantStatus::Suspended => return Err(ApiError::TenantSuspended),
        // Not resolvable for traffic until provisioning activates it.
        TenantStatus::Deleted | TenantStatus::Provisioning | TenantStatus::ProvisioningFailed => {
            return Err(no_tenant("no such tenant"));
        }
    }
    // Roles: the membership's, and the issuer's roles through the mapping.
    let mut roles: Vec<&str> = member_roles.iter().map(String::as_str).collect();
    roles.extend(
        verified
            .roles
            .iter()
            .filter_map(|r| config.role_mapping.get(r).map(String::as_str)),
    );
    let scopes = scopes_of(provider, &roles);
    let user = Arc::new(user);
    crate::change::note_credential(&tenant.id, crate::grant::Principal::user(&user));
    Ok(Caller::Tenant {
        tenant,
        key_id: format!("user:{}", user.member_key()),
        scopes,
        environment: None,
        via_token: true,
        // A person's authority is their membership, not this one login:
        // what they make (an API key from the console) may outlive it.
        expires_at: None,
        user: Some(user),
    })
}

/// What a member's roles let them do in their tenant: `admin` is
/// `tenant:admin` (never an operator-issued scope), `member` the read
/// scopes, a custom role what its provider says; unknown roles nothing.
pub fn scopes_of(provider: &Provider, roles: &[&str]) -> Scopes {
    let mut names: Vec<&'static str> = Vec::new();
    let mut custom: Vec<&Scopes> = Vec::new();
    for role in roles {
        match *role {
            "admin" => names.push(Scope::TenantAdmin.as_str()),
            "member" => names.extend(MEMBER_SCOPES.iter().map(|s| s.as_str())),
            other => custom.extend(provider.custom_scopes.get(other)),
        }
    }
    let mut all: Vec<String> = names.into_iter().map(str::to_owned).collect();
    for scopes in custom {
        all.extend(
            Scope::ALL
                .iter()
                .filter(|s| scopes.grants(**s) && !s.operator_issued())
                .map(|s| s.as_str().to_owned()),
        );
    }
    Scopes::from_trusted(all.iter().map(String::as_str))
}

/// The scopes of the `member` role: reading, never changing.
pub const MEMBER_SCOPES: [Scope; 5] = [
    Scope::TenantRead,
    Scope::KeysRead,
    Scope::CredentialsRead,
    Scope::UsageRead,
    Scope::AuditRead,
];

/// The built-in roles.
pub const BUILTIN_ROLES: [&str; 2] = ["admin", "member"];
