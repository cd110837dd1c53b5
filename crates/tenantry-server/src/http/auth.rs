//! Who is calling, and what they may do.
//!
//! Handlers take a [`Caller`] (anyone authenticated) and ask it for a
//! capability: [`Caller::grant`] (in `crate::grant`) yields a `TenantGrant`
//! only when the caller may act on that tenant with that scope, and
//! [`Operator`] is an extractor that only yields for operators. Only grants
//! open transactions, so an unauthorised path to a store call does not
//! type-check.

use super::problem::ApiError;
use crate::app::AppState;
use crate::resolution::cache::TenantSnapshot;
use crate::resolution::{keys, tokens};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use std::sync::Arc;
use tenantry_core::TenantId;
use tenantry_core::keys::{Environment, KeyKind, Scope, Scopes, VerifyCode};
use tenantry_core::tenant::Actor;

pub use crate::root_key::RootKey;

/// The bearer token of a request, if any.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The credential of a request: `Authorization: Bearer …` or `X-API-Key: …`.
pub fn credential(headers: &axum::http::HeaderMap) -> Option<&str> {
    bearer(headers).or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty())
    })
}

/// Whether a request presents its credentials ambiguously: a repeated
/// `Authorization` or `X-API-Key` header (a gateway or the app could read
/// another copy than Tenantry did), or a bearer credential and an
/// `X-API-Key` that differ where only one is read. Such a request is `401`.
pub fn ambiguous_credentials(headers: &axum::http::HeaderMap) -> bool {
    headers.get_all(header::AUTHORIZATION).iter().count() > 1
        || headers.get_all("x-api-key").iter().count() > 1
}

/// The `X-Tenant-ID` of a request, if any.
pub fn tenant_header(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("x-tenant-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Whether a credential has the shape of a JWT (three base64url parts).
pub fn looks_like_token(credential: &str) -> bool {
    credential.starts_with("eyJ") && credential.bytes().filter(|b| *b == b'.').count() == 2
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The root key, an operator key, or a super admin's login token: acts
    /// on every tenant.
    Operator {
        actor: Actor,
        root: bool,
        /// The super admin, when the credential was an external token.
        user: Option<Arc<crate::identity::ExternalUser>>,
    },
    /// A tenant's API key or an access token made from one.
    Tenant {
        tenant: Arc<TenantSnapshot>,
        key_id: String,
        scopes: Scopes,
        environment: Option<Environment>,
        via_token: bool,
        /// The expiry of the key behind the credential (for a token: its
        /// key's): nothing this caller makes may outlive it.
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        /// The user, when the credential was an external login token.
        user: Option<Arc<crate::identity::ExternalUser>>,
    },
}

impl Caller {
    pub fn actor(&self) -> Actor {
        match self {
            Caller::Operator { actor, .. } => actor.clone(),
            Caller::Tenant {
                user: Some(user), ..
            } => Actor::from_trusted(format!("user:{}", user.member_key())),
            Caller::Tenant {
                key_id, via_token, ..
            } => Actor::from_trusted(format!(
                "{}:{key_id}",
                if *via_token { "token" } else { "key" }
            )),
        }
    }

    pub fn is_operator(&self) -> bool {
        matches!(self, Caller::Operator { .. })
    }

    /// Whether the caller may name a tenant directly (`X-Tenant-ID`).
    pub fn is_trusted_resolver(&self) -> bool {
        match self {
            Caller::Operator { .. } => true,
            Caller::Tenant { scopes, .. } => scopes.grants(Scope::ResolveTrusted),
        }
    }
}

pub fn insufficient_scope(scope: Scope) -> ApiError {
    ApiError::Forbidden {
        code: crate::http::codes::Code::InsufficientScope,
        detail: format!("this key lacks the scope '{scope}'").into(),
    }
}

/// Authenticates a credential (root key, operator key, tenant key or token)
/// for the API: any failure is a plain `401 unauthorized` (or `403
/// tenant_suspended`).
pub async fn authenticate(
    state: &AppState,
    credential: &str,
    tenant_hint: Option<&str>,
) -> Result<Caller, ApiError> {
    verify_credential_for(state, credential, tenant_hint)
        .await
        .map_err(|err| match err {
            ApiError::InvalidCredentials(_) => ApiError::Unauthorized,
            other => other,
        })
}

/// Verifies one credential, in the one order every path uses: the root key,
/// then operator keys (a well-formed `tnt_op_…` that is unknown or revoked
/// is refused, never passed over), then access tokens, then tenant keys.
/// Refusals are `401 invalid_credentials` with the reason, or `403
/// tenant_suspended`.
pub async fn verify_credential(state: &AppState, credential: &str) -> Result<Caller, ApiError> {
    verify_credential_for(state, credential, None).await
}

/// [`verify_credential`], with the tenant the request names (`X-Tenant-ID`
/// or its path's), which a login token of a user of several tenants needs.
/// A JWT from a registered identity provider is verified by
/// [`crate::identity`]; keys never get there.
pub async fn verify_credential_for(
    state: &AppState,
    credential: &str,
    tenant_hint: Option<&str>,
) -> Result<Caller, ApiError> {
    if state.root_key.matches(credential) {
        return Ok(Caller::Operator {
            actor: Actor::root(),
            root: true,
            user: None,
        });
    }
    if tenantry_core::keys::parse_key(credential).is_some_and(|p| p.kind == KeyKind::Operator) {
        return match keys::verify_operator_key(state, credential).await? {
            Some(key) => Ok(Caller::Operator {
                actor: Actor::from_trusted(format!("operator:{}", key.id)),
                root: false,
                user: None,
            }),
            None => Err(ApiError::InvalidCredentials(VerifyCode::NotFound)),
        };
    }
    if looks_like_token(credential) {
        if let Some(caller) = crate::identity::authenticate(state, credential, tenant_hint).await? {
            return Ok(caller);
        }
        let verified = state
            .tokens
            .verify(credential, state.clock.now())
            .map_err(|err| {
                ApiError::InvalidCredentials(match err {
                    tokens::TokenError::Expired => VerifyCode::Expired,
                    _ => VerifyCode::NotFound,
                })
            })?;
        crate::change::note_credential(
            &verified.tenant_id,
            crate::grant::Principal::token(&verified.key_id),
        );
        let Some(key) = tokens::live_key(state, &verified).await? else {
            return Err(ApiError::InvalidCredentials(VerifyCode::Revoked));
        };
        let tenant = keys::load_tenant(state, &verified.tenant_id)
            .await?
            .ok_or(ApiError::InvalidCredentials(VerifyCode::NotFound))?;
        crate::tenancy::regions::admit(state, tenant.id.as_str())?;
        return match tenant.status {
            tenantry_core::tenant::TenantStatus::Active => Ok(Caller::Tenant {
                tenant,
                scopes: verified.effective_scopes(&key),
                key_id: verified.key_id,
                environment: None,
                via_token: true,
                // A token is a credential of its own: nothing it makes may
                // outlive it, nor its key.
                expires_at: Some(
                    key.expires_at
                        .map_or(verified.expires_at, |at| at.min(verified.expires_at)),
                ),
                user: None,
            }),
            tenantry_core::tenant::TenantStatus::Suspended => Err(ApiError::TenantSuspended),
            // Not resolvable for traffic until provisioning activates it.
            tenantry_core::tenant::TenantStatus::Deleted
            | tenantry_core::tenant::TenantStatus::Provisioning
            | tenantry_core::tenant::TenantStatus::ProvisioningFailed => {
                Err(ApiError::InvalidCredentials(VerifyCode::NotFound))
            }
        };
    }
    let verification = keys::verify(state, credential, &Scopes::default()).await?;
    if let Some(key) = &verification.key {
        crate::change::note_credential(&key.tenant_id, crate::grant::Principal::api_key(&key.id));
    }
    if let (VerifyCode::Valid, Some(tenant)) = (verification.code, &verification.tenant) {
        crate::tenancy::regions::admit(state, tenant.id.as_str())?;
    }
    match (verification.code, verification.key, verification.tenant) {
        (VerifyCode::Valid, Some(key), Some(tenant)) => Ok(Caller::Tenant {
            tenant,
            key_id: key.id.clone(),
            scopes: key.scopes.clone(),
            environment: Some(key.environment),
            via_token: false,
            expires_at: key.expires_at,
            user: None,
        }),
        (VerifyCode::TenantSuspended, _, _) => Err(ApiError::TenantSuspended),
        (VerifyCode::Valid, _, _) => Err(ApiError::InvalidCredentials(VerifyCode::NotFound)),
        (code, _, _) => Err(ApiError::InvalidCredentials(code)),
    }
}

/// Where the API's own rate limiter leaves its decision for the response
/// headers (see `http::router`).
#[derive(Debug, Clone, Default)]
pub struct RateLimitSlot(pub Arc<std::sync::Mutex<Option<crate::limits::ratelimit::Decision>>>);

impl RateLimitSlot {
    pub fn take(&self) -> Option<crate::limits::ratelimit::Decision> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Authenticated once per request: other extractors (the tenant
        // access check of `ApiJson`/`ApiQuery`) ask again, and a call must
        // count once against the tenant's limits.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        if ambiguous_credentials(&parts.headers) {
            return Err(ApiError::Unauthorized);
        }
        // One credential per request: a bearer credential and a different
        // X-API-Key would leave one of them unchecked.
        let api_key = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty());
        if let (Some(bearer), Some(api_key)) = (bearer(&parts.headers), api_key)
            && bearer != api_key
        {
            return Err(ApiError::Unauthorized);
        }
        // The tenant a user of several tenants acts on: named by
        // `X-Tenant-ID`, else by the path (login tokens only: keys and the
        // root key name their own).
        let hint = match credential(&parts.headers).is_some_and(looks_like_token) {
            true => match tenant_header(&parts.headers).map(str::to_owned) {
                Some(named) => Some(named),
                None => super::extract::tenant_path_id(parts, state).await?,
            },
            false => None,
        };
        let caller = match credential(&parts.headers) {
            Some(credential) => authenticate(state, credential, hint.as_deref()).await?,
            None => return Err(ApiError::Unauthorized),
        };
        if let Caller::Tenant { tenant, .. } = &caller {
            hold_to_limits(state, parts, &tenant.id).await?;
        }
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// An authenticated operator: may act on every tenant. Tenant keys are
/// refused with `403 operator_required`.
#[derive(Debug, Clone)]
pub struct Operator {
    pub actor: Actor,
    /// Authenticated with the root key itself.
    pub root: bool,
    grant: crate::grant::OperatorGrant,
}

impl Operator {
    /// The operator's grant: what opens its transactions and changes.
    pub fn grant(&self) -> &crate::grant::OperatorGrant {
        &self.grant
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller {
            Caller::Operator {
                ref actor, root, ..
            } => Ok(Operator {
                actor: actor.clone(),
                root,
                grant: crate::grant::OperatorGrant::from_caller(&caller),
            }),
            // Another tenant's path is not found, before any scope says no.
            Caller::Tenant { tenant, .. }
                if super::extract::tenant_path_id(parts, state)
                    .await?
                    .is_some_and(|id| id != tenant.id.as_str()) =>
            {
                Err(ApiError::tenant_not_found())
            }
            Caller::Tenant { .. } => Err(ApiError::Forbidden {
                code: crate::http::codes::Code::OperatorRequired,
                detail: "this action needs an operator key".into(),
            }),
        }
    }
}

/// Tenant callers are held to their tenant's `api_calls_per_hour` rate
/// limit and, when one is configured, to its monthly `api_calls` quota
/// (each call consumes one; `429 quota_exceeded` with `Retry-After` until
/// the period resets once it is used up).
async fn hold_to_limits(
    state: &AppState,
    parts: &Parts,
    tenant: &TenantId,
) -> Result<(), ApiError> {
    let config = crate::limits::service::effective_config_of(state, tenant).await?;
    if let Some(rate) = config.rate_limit("api_calls_per_hour") {
        let policy = crate::limits::ratelimit::Policy {
            limit: rate.limit,
            period: std::time::Duration::from_secs(rate.period_seconds),
        };
        let decision = state
            .rate_limiter
            .check(&format!("t:{tenant}:api_calls_per_hour"), policy, 1)
            .await;
        if let Some(slot) = parts.extensions.get::<RateLimitSlot>() {
            *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(decision.clone());
        }
        if !decision.allowed {
            return Err(ApiError::RateLimited(decision));
        }
    }
    if config.quota("api_calls").is_some_and(|q| q.limit.is_some()) {
        let now = state.clock.now();
        // The server meters the call itself (before any permission check,
        // whatever the key's scopes): bookkeeping, not a change anyone made.
        #[allow(clippy::disallowed_methods)]
        // system grant: per-call quota metering of a tenant key
        let grant = crate::grant::TenantGrant::system(tenant.clone(), "api-call-metering");
        let decision = crate::limits::quotas::consume_api_call(state, &grant, &config, now).await?;
        if !decision.allowed {
            let retry_after = (decision.resets_at - now).num_seconds().max(1) as u64;
            return Err(ApiError::QuotaExceeded {
                meter: "api_calls",
                retry_after,
            });
        }
    }
    Ok(())
}
