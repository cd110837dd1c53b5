//! Access tokens: `POST /v1/tokens`, the public keys at
//! `/.well-known/jwks.json`, and signing-key rotation. The behaviour is in
//! [`crate::keys::tokens`] and [`crate::keys::signing`].

use crate::app::AppState;
use crate::http::auth::{Caller, Operator};
use crate::http::extract::ApiJson;
use crate::http::problem::{ApiError, Problem};
use crate::keys::{signing, tokens};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
pub use tenantry_api::tokens::{RotatedOut, TokenIn, TokenOut};

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
    let issued = tokens::issue(&state, &caller, input.ttl_seconds, input.scopes.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenOut {
            token: issued.token,
            token_type: "Bearer".to_owned(),
            expires_in: issued.expires_in,
            expires_at: issued.expires_at,
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
    operator: Operator,
) -> Result<Json<RotatedOut>, ApiError> {
    let kid = signing::rotate(&state, operator.grant()).await?;
    Ok(Json(RotatedOut { kid }))
}
