//! `/v1/operator/keyring`: the key-encryption keys, their use, and rotation
//! (of the keyring, or of one tenant's data key). Handlers call
//! [`crate::vault::rotation`].

use crate::app::AppState;
use crate::http::auth::Operator;
use crate::http::extract::ApiPath;
use crate::http::problem::{ApiError, Problem};
use crate::vault::rotation::{self, KeyringStatus};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
pub use tenantry_api::keyring::TenantKeyRotated;

/// The keyring: which KEK is active, how many data keys each wraps, and the
/// rewrap backlog.
#[utoipa::path(get, path = "/v1/operator/keyring", tag = "credentials",
    responses((status = 200, body = KeyringStatus), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn status(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<Json<KeyringStatus>, ApiError> {
    Ok(Json(rotation::status(&state, operator.grant()).await?))
}

/// Activate a new KEK (written to the keyring file); data keys are rewrapped
/// in the background, with no failed reads meanwhile.
#[utoipa::path(post, path = "/v1/operator/keyring/rotate", tag = "credentials",
    responses((status = 202, body = KeyringStatus), (status = 409, description = "keyring_read_only", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "keyring_write_failed: the keyring file could not be changed; nothing was activated", body = Problem, content_type = "application/problem+json")))]
pub async fn rotate(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<(StatusCode, Json<KeyringStatus>), ApiError> {
    rotation::rotate_keyring(&state, operator.grant()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(rotation::status(&state, operator.grant()).await?),
    ))
}

/// Give a tenant a new data key and re-encrypt all its secrets with it.
#[utoipa::path(post, path = "/v1/operator/tenants/{id}/data-key/rotate", tag = "credentials", params(("id" = String, Path)),
    responses((status = 200, body = TenantKeyRotated), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_tenant(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantKeyRotated>, ApiError> {
    let tenant = crate::api::tenants::path_tenant(&id)?;
    let dek = rotation::rotate_tenant(&state, &operator.grant().on_tenant(tenant.clone())).await?;
    Ok(Json(TenantKeyRotated {
        tenant_id: tenant.to_string(),
        data_key_id: dek,
    }))
}
