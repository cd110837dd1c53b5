//! `/v1/tenants/{id}/settings/{category}`: per-tenant settings whose
//! sensitive values are sealed, shown masked, and revealed only through an
//! explicit, scoped, audited call. Handlers parse, call
//! [`crate::vault::settings`] and map the result.

use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::{ApiError, Problem};
use crate::vault::seal::mask_settings;
use crate::vault::settings::{self as vault, parse_category};
use axum::Json;
use axum::extract::State;
use serde_json::Value;
pub use tenantry_api::settings::SettingsOut;
use tenantry_core::keys::Scope;

/// Replace a settings category. Every value whose key is sensitive
/// (password, secret, token, key, …), at any depth, is sealed.
#[utoipa::path(put, path = "/v1/tenants/{id}/settings/{category}", tag = "credentials", params(("id" = String, Path), ("category" = String, Path)),
    request_body(content = Object),
    responses((status = 200, body = SettingsOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, category)): ApiPath<(String, String)>,
    ApiJson(data): ApiJson<Value>,
) -> Result<Json<SettingsOut>, ApiError> {
    let grant = caller.grant(&id, Scope::CredentialsWrite)?;
    let category = parse_category(&category)?;
    vault::check(&data)?;
    let (sealed, updated_at) = vault::put(&state, &grant, &category, &data).await?;
    Ok(Json(SettingsOut {
        category,
        data: mask_settings(&sealed),
        updated_at,
    }))
}

/// A settings category, sensitive values masked.
#[utoipa::path(get, path = "/v1/tenants/{id}/settings/{category}", tag = "credentials", params(("id" = String, Path), ("category" = String, Path)),
    responses((status = 200, body = SettingsOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, category)): ApiPath<(String, String)>,
) -> Result<Json<SettingsOut>, ApiError> {
    let grant = caller.grant(&id, Scope::CredentialsRead)?;
    let category = parse_category(&category)?;
    let (stored, updated_at) = vault::get(&state, &grant, &category).await?;
    Ok(Json(SettingsOut {
        category,
        data: mask_settings(&stored),
        updated_at,
    }))
}

/// A settings category in plaintext (scope `credentials:reveal`; logged).
#[utoipa::path(post, path = "/v1/tenants/{id}/settings/{category}/reveal", tag = "credentials", params(("id" = String, Path), ("category" = String, Path)),
    responses((status = 200, body = SettingsOut), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn reveal_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, category)): ApiPath<(String, String)>,
) -> Result<Json<SettingsOut>, ApiError> {
    let grant = caller.grant(&id, Scope::CredentialsReveal)?;
    let category = parse_category(&category)?;
    let (data, updated_at) = vault::reveal(&state, &grant, &category).await?;
    Ok(Json(SettingsOut {
        category,
        data,
        updated_at,
    }))
}
