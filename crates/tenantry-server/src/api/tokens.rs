//! Access tokens: `POST /v1/tokens`, the public keys at
//! `/.well-known/jwks.json`, and signing-key rotation.

use crate::app::AppState;
use crate::http::auth::{Caller, Operator};
use crate::http::extract::ApiJson;
use crate::http::problem::{ApiError, Problem};
use crate::resolution::cache::Invalidation;
use crate::resolution::tokens::{Claims, MAX_TTL_SECONDS, TokenKeys};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::ValidationError;
use tenantry_core::keys::Scopes;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// Lifetime in seconds, 1 to 3600 (default: the configured token_ttl).
    pub ttl_seconds: Option<i64>,
    /// A subset of the key's scopes (default: all of them).
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    pub token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedOut {
    /// The new signing key's id (`kid`).
    pub kid: String,
}

/// Make a short-lived access token (JWT, EdDSA) from a tenant API key. It
/// carries the key's tenant, id and scopes, and expires by the key's own
/// expiry; it is worth no more than what its key still grants.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = TokenIn,
    responses((status = 201, body = TokenOut), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<TokenIn>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let Caller::Tenant {
        tenant,
        key_id,
        scopes,
        via_token: false,
        expires_at: key_expires_at,
        ..
    } = caller
    else {
        return Err(ApiError::Forbidden {
            code: "api_key_required",
            detail: "access tokens are made from a tenant API key".into(),
        });
    };
    let ttl = match input.ttl_seconds {
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
    let scopes = match &input.scopes {
        None => scopes,
        Some(names) => {
            let wanted = Scopes::parse("scopes", names)?;
            if let Some(missing) = scopes.missing(&wanted) {
                return Err(crate::http::auth::insufficient_scope(missing));
            }
            wanted
        }
    };
    let now = state.clock.now();
    // A token never outlives its key.
    let mut expires_at = now + chrono::Duration::seconds(ttl);
    if let Some(key_ends) = key_expires_at
        && key_ends < expires_at
    {
        expires_at = key_ends;
    }
    let ttl = (expires_at - now).num_seconds().max(0);
    let claims = Claims {
        iss: "tenantry".into(),
        sub: key_id.clone(),
        tenant_id: tenant.id.to_string(),
        key_id,
        scopes: scopes.names().into_iter().map(str::to_owned).collect(),
        iat: now.timestamp(),
        exp: expires_at.timestamp(),
    };
    let token = state
        .tokens
        .sign(&claims)
        .ok_or(ApiError::Unavailable("token signing"))?;
    Ok((
        StatusCode::CREATED,
        Json(TokenOut {
            token,
            token_type: "Bearer",
            expires_in: ttl,
            expires_at,
        }),
    ))
}

/// The public keys that verify access tokens (JSON Web Key Set).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens", security(()),
    responses((status = 200, description = "JWK Set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.tokens.jwks())
}

/// Start signing tokens with a new key; the previous key keeps verifying
/// until its tokens have expired.
#[utoipa::path(post, path = "/v1/operator/signing-keys/rotate", tag = "tokens",
    responses((status = 200, body = RotatedOut), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<RotatedOut>, ApiError> {
    let kid = TokenKeys::rotate(&state.store, &state.vault, state.clock.now()).await?;
    state
        .tokens
        .load(&state.store, &state.vault, state.clock.now())
        .await?;
    state.forget(&[Invalidation::SigningKeys]);
    tracing::info!(%kid, "token signing key rotated");
    Ok(Json(RotatedOut { kid }))
}
