//! Issuing access tokens: short-lived JWTs made from a tenant API key,
//! recorded as `token.issued` in the tenant's audit chain (never the token).

use crate::app::AppState;
use crate::grant::OperatorGrant;
use crate::http::auth::{Caller, insufficient_scope};
use crate::http::problem::ApiError;
use crate::resolution::tokens::{Claims, MAX_TTL_SECONDS};
use chrono::{DateTime, Utc};
use serde_json::json;
use tenantry_core::ValidationError;
use tenantry_core::keys::Scopes;

/// A token, as shown once to its caller.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub expires_at: DateTime<Utc>,
}

fn api_key_required() -> ApiError {
    ApiError::Forbidden {
        code: crate::http::codes::Code::ApiKeyRequired,
        detail: "access tokens are made from a tenant API key".into(),
    }
}

/// Makes a token from the caller's own API key: `ttl_seconds` 1 to
/// [`MAX_TTL_SECONDS`] (default: the configured `token_ttl`), `scopes` a
/// subset of the key's (default: all of them). It expires by the key's own
/// expiry. The token is signed before the change commits and returned only
/// after it did: no token without its audit entry.
pub async fn issue(
    state: &AppState,
    caller: &Caller,
    ttl_seconds: Option<i64>,
    scopes: Option<&[String]>,
) -> Result<IssuedToken, ApiError> {
    let Caller::Tenant {
        tenant,
        key_id,
        scopes: key_scopes,
        via_token: false,
        expires_at: key_expires_at,
        ..
    } = caller
    else {
        return Err(api_key_required());
    };
    let ttl = match ttl_seconds {
        None => state.config.token_ttl.as_secs() as i64,
        Some(t) if (1..=MAX_TTL_SECONDS).contains(&t) => t,
        Some(_) => {
            return Err(ValidationError::new(
                "ttl_seconds",
                "out_of_range",
                "must be between 1 and 3600",
            )
            .into());
        }
    };
    let scopes = match scopes {
        None => key_scopes.clone(),
        Some(names) => {
            let wanted = Scopes::parse("scopes", names)?;
            if let Some(missing) = key_scopes.missing(&wanted) {
                return Err(insufficient_scope(missing));
            }
            wanted
        }
    };
    let now = state.clock.now();
    // A token never outlives its key.
    let mut expires_at = now + chrono::Duration::seconds(ttl);
    if let Some(key_ends) = *key_expires_at
        && key_ends < expires_at
    {
        expires_at = key_ends;
    }
    let ttl = (expires_at - now).num_seconds().max(0);
    let claims = Claims {
        iss: "tenantry".into(),
        sub: key_id.clone(),
        tenant_id: tenant.id.to_string(),
        key_id: key_id.clone(),
        scopes: scopes.names().into_iter().map(str::to_owned).collect(),
        iat: now.timestamp(),
        exp: expires_at.timestamp(),
    };
    let token = state
        .tokens
        .sign(&claims)
        .ok_or(ApiError::Unavailable("token signing"))?;
    // Any API key may make tokens of its own tenant, whatever its scopes, so
    // there is no scope to check: the grant is the caller's own, on its own
    // tenant (the key's principal, so the entry names the key as actor).
    let grant = OperatorGrant::from_caller(caller).on_tenant(tenant.id.clone());
    let mut change = grant.change(state).await?;
    change.audit_with(
        "token.issued",
        vec![super::api_key_target(key_id)],
        json!({}),
        json!({ "scopes": scopes.names(), "expires_at": expires_at }),
    );
    change.commit().await?;
    Ok(IssuedToken {
        token,
        expires_in: ttl,
        expires_at,
    })
}
