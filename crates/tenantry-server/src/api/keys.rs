//! `/v1/tenants/{id}/api-keys` (a tenant's keys) and `/v1/keys/verify`:
//! parsing and answering; the behaviour is in [`crate::keys::tenant_keys`].

use super::{Checks, Page, PageParams, cursor};
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::keys::tenant_keys::{self, MAX_OVERLAP_SECONDS, NewKey};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
pub use tenantry_api::keys::{
    KeyIn, KeyOut, KeyPatchIn, NewKeyOut, RotateIn, VerifyIn, VerifyOut, VerifyTenant,
};
use tenantry_core::ValidationError;
use tenantry_core::keys::{ApiKeyPatch, Environment, Scope, Scopes, VerifyCode};
use tenantry_core::values::Metadata;

fn future(
    field: &'static str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    match at {
        Some(t) if t <= now => Err(ValidationError::new(
            field,
            "in_the_past",
            "must be in the future",
        )),
        other => Ok(other),
    }
}

/// Create an API key for a tenant. The key is in the response, once.
#[utoipa::path(post, path = "/v1/tenants/{id}/api-keys", tag = "keys", params(("id" = String, Path)), request_body = KeyIn,
    responses((status = 201, body = NewKeyOut), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<KeyIn>,
) -> Result<(StatusCode, Json<NewKeyOut>), ApiError> {
    let grant = caller.grant(&id, Scope::KeysWrite)?;
    let now = state.clock.now();
    let mut checks = Checks::default();
    let name = checks.check(super::parse_name(&input.name));
    let scopes = checks.check(Scopes::parse("scopes", &input.scopes));
    let environment = match &input.environment {
        Some(e) => checks.check(Environment::parse("environment", e)),
        None => Some(Environment::Live),
    };
    let expires_at = checks.check(future("expires_at", input.expires_at, now));
    let metadata = match input.metadata {
        Some(m) => checks.check(Metadata::parse("metadata", m)),
        None => Some(Metadata::empty()),
    };
    checks.finish()?;
    let (Some(name), Some(scopes), Some(environment), Some(expires_at), Some(metadata)) =
        (name, scopes, environment, expires_at, metadata)
    else {
        return Err(ApiError::Internal);
    };
    let new = NewKey {
        name,
        scopes,
        environment,
        expires_at,
        metadata,
    };
    let (key, secret) = tenant_keys::create(&state, &caller, &grant, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKeyOut {
            key: secret.expose().to_owned(),
            details: KeyOut::from(&key),
        }),
    ))
}

/// List a tenant's keys (never the keys themselves).
#[utoipa::path(get, path = "/v1/tenants/{id}/api-keys", tag = "keys", params(("id" = String, Path), PageParams),
    responses((status = 200, body = Page<KeyOut>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<KeyOut>>, ApiError> {
    let grant = caller.grant(&id, Scope::KeysRead)?;
    let limit = page.limit()?;
    let after = page.after("keys")?;
    let found = tenant_keys::list(&state, &grant, after.as_deref(), limit).await?;
    Ok(Json(Page {
        next_cursor: found.next_after.map(|last| cursor("keys", &last)),
        data: found.keys.iter().map(KeyOut::from).collect(),
    }))
}

/// Get one key.
#[utoipa::path(get, path = "/v1/tenants/{id}/api-keys/{key_id}", tag = "keys", params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 200, body = KeyOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> Result<Json<KeyOut>, ApiError> {
    let grant = caller.grant(&id, Scope::KeysRead)?;
    let key = tenant_keys::get(&state, &grant, &key_id).await?;
    Ok(Json(KeyOut::from(&key)))
}

/// Change a key's name, scopes, enabled flag, expiry or metadata.
#[utoipa::path(patch, path = "/v1/tenants/{id}/api-keys/{key_id}", tag = "keys", params(("id" = String, Path), ("key_id" = String, Path)),
    request_body = KeyPatchIn,
    responses((status = 200, body = KeyOut), (status = 403, description = "insufficient_scope, operator_required, key_outlives_caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<KeyPatchIn>,
) -> Result<Json<KeyOut>, ApiError> {
    let grant = caller.grant(&id, Scope::KeysWrite)?;
    let now = state.clock.now();
    let mut checks = Checks::default();
    let patch = ApiKeyPatch {
        name: input
            .name
            .as_deref()
            .and_then(|n| checks.check(super::parse_name(n))),
        scopes: input
            .scopes
            .as_deref()
            .and_then(|s| checks.check(Scopes::parse("scopes", s))),
        enabled: input.enabled,
        expires_at: match input.expires_at {
            Some(at) => checks.check(future("expires_at", at, now)),
            None => None,
        },
        metadata: input
            .metadata
            .and_then(|m| checks.check(Metadata::parse("metadata", m))),
    };
    checks.finish()?;
    let key = tenant_keys::update(&state, &caller, &grant, &key_id, &patch).await?;
    Ok(Json(KeyOut::from(&key)))
}

/// Revoke a key: it stops working at once, for good.
#[utoipa::path(post, path = "/v1/tenants/{id}/api-keys/{key_id}/revoke", tag = "keys", params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 200, body = KeyOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> Result<Json<KeyOut>, ApiError> {
    let grant = caller.grant(&id, Scope::KeysWrite)?;
    let key = tenant_keys::revoke(&state, &grant, &key_id).await?;
    Ok(Json(KeyOut::from(&key)))
}

/// Replace a key with a new one of the same name, scopes, environment,
/// expiry and metadata; the old one keeps working for `overlap_seconds`.
#[utoipa::path(post, path = "/v1/tenants/{id}/api-keys/{key_id}/rotate", tag = "keys", params(("id" = String, Path), ("key_id" = String, Path)),
    request_body = RotateIn,
    responses((status = 201, body = NewKeyOut), (status = 403, description = "insufficient_scope, operator_required, key_outlives_caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the key is revoked", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<RotateIn>,
) -> Result<(StatusCode, Json<NewKeyOut>), ApiError> {
    let grant = caller.grant(&id, Scope::KeysWrite)?;
    let overlap = input.overlap_seconds.unwrap_or(0);
    if !(0..=MAX_OVERLAP_SECONDS).contains(&overlap) {
        return Err(ValidationError::new(
            "overlap_seconds",
            "out_of_range",
            "must be between 0 and 2592000 (30 days)",
        )
        .into());
    }
    let (key, secret) = tenant_keys::rotate(&state, &caller, &grant, &key_id, overlap).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKeyOut {
            key: secret.expose().to_owned(),
            details: KeyOut::from(&key),
        }),
    ))
}

/// Verify a tenant key. Always answers 200 with `valid` and a `code`; a
/// tenant key caller can only verify keys of its own tenant.
#[utoipa::path(post, path = "/v1/keys/verify", tag = "keys", request_body = VerifyIn,
    responses((status = 200, body = VerifyOut), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<VerifyIn>,
) -> Result<Json<VerifyOut>, ApiError> {
    // A scope that does not exist cannot be granted.
    let required = match &input.scopes {
        Some(names) => Scopes::parse("scopes", names).ok(),
        None => Some(Scopes::default()),
    };
    let verdict = tenant_keys::verify(&state, &caller, &input.key, required.as_ref()).await?;
    let (code, key, tenant) = (verdict.code, verdict.key, verdict.tenant);
    state
        .metrics
        .verified(code, tenant.as_ref().map(|t| t.id.as_str()));
    Ok(Json(VerifyOut {
        valid: code == VerifyCode::Valid,
        code,
        key_id: key.as_ref().map(|k| k.id.clone()),
        tenant: tenant.map(|t| VerifyTenant {
            id: t.id.to_string(),
            status: t.status,
            plan: t.plan.clone(),
        }),
        scopes: key
            .as_ref()
            .map(|k| k.scopes.names().into_iter().map(str::to_owned).collect()),
        environment: key.as_ref().map(|k| k.environment),
        expires_at: key.as_ref().and_then(|k| k.expires_at),
    }))
}
