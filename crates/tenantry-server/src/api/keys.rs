//! `/v1/tenants/{id}/api-keys` (a tenant's keys) and `/v1/keys/verify`.
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use super::tenants::{or_tenant_not_found, record};
use super::{Checks, Page, PageParams, cursor};
use crate::app::{AppState, announce};
use crate::http::auth::{Caller, insufficient_scope};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::resolution::cache::Invalidation;
use crate::resolution::keys::{check as verify_key, mint};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenantry_core::ValidationError;
use tenantry_core::keys::{ApiKey, ApiKeyPatch, Environment, KeyKind, Scope, Scopes, VerifyCode};
use tenantry_core::tenant::{TenantEventKind, TenantStatus};
use tenantry_core::values::Metadata;
use tenantry_store::StoreError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    pub name: String,
    /// e.g. `["tenant:read", "keys:write"]`.
    pub scopes: Vec<String>,
    /// `live` (default) or `test`.
    pub environment: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPatchIn {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// A time, or `null` to remove the expiry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub metadata: Option<serde_json::Value>,
}

fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// How long the old key keeps working, 0 to 30 days (default 0: at once).
    pub overlap_seconds: Option<i64>,
}

/// A key as listed: never the key itself nor its hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyOut {
    pub id: String,
    pub tenant_id: String,
    /// The first characters, for recognising the key.
    pub start: String,
    pub name: String,
    pub scopes: Vec<&'static str>,
    pub environment: Environment,
    pub enabled: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key this one replaced, when made by a rotation.
    pub rotated_from: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&ApiKey> for KeyOut {
    fn from(k: &ApiKey) -> Self {
        KeyOut {
            id: k.id.clone(),
            tenant_id: k.tenant_id.to_string(),
            start: k.start.clone(),
            name: k.name.clone(),
            scopes: k.scopes.names(),
            environment: k.environment,
            enabled: k.enabled,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            metadata: k.metadata.clone().into_value(),
            last_used_at: k.last_used_at,
            rotated_from: k.rotated_from.clone(),
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}

/// A newly made key: the only time `key` is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewKeyOut {
    /// The key. Store it now: it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub details: KeyOut,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyIn {
    pub key: String,
    /// Scopes the key must grant.
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyTenant {
    pub id: String,
    pub status: TenantStatus,
    pub plan: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyOut {
    pub valid: bool,
    pub code: VerifyCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<VerifyTenant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

fn key_not_found() -> ApiError {
    ApiError::NotFound {
        code: "key_not_found",
        detail: "this tenant has no such key".into(),
    }
}

fn key_missing(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => key_not_found(),
        other => other.into(),
    }
}

/// A tenant key may only hand out scopes it holds itself, and never an
/// operator-issued one (`resolve:trusted`): only operators mint those.
fn check_grantable(caller: &Caller, scopes: &Scopes) -> Result<(), ApiError> {
    if let Caller::Tenant { scopes: own, .. } = caller {
        if let Some(scope) = scopes.operator_issued() {
            return Err(ApiError::operator_required(format!(
                "only an operator can grant the scope '{scope}'"
            )));
        }
        if let Some(missing) = own.missing(scopes) {
            return Err(insufficient_scope(missing));
        }
    }
    Ok(())
}

/// A tenant key that expires cannot make a key that outlives it: every key
/// it creates, rotates or re-dates (itself included) must expire by then.
fn check_lifetime(caller: &Caller, expires_at: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    if let Caller::Tenant {
        expires_at: Some(own),
        ..
    } = caller
        && expires_at.is_none_or(|at| at > *own)
    {
        return Err(ApiError::key_outlives_caller());
    }
    Ok(())
}

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
    let access = caller.for_tenant(&id, Scope::KeysWrite)?;
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
    check_grantable(&caller, &scopes)?;
    check_lifetime(&caller, expires_at)?;

    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    let minted = mint(KeyKind::Tenant, environment);
    let key = ApiKey {
        id: state.ids.random("key"),
        tenant_id: access.tenant.clone(),
        key_hash: minted.hash,
        start: minted.start,
        name,
        scopes,
        environment,
        enabled: true,
        expires_at,
        revoked_at: None,
        metadata,
        last_used_at: None,
        rotated_from: None,
        created_at: now,
        updated_at: now,
    };
    tx.insert_key(&key).await?;
    record(
        &state,
        &mut tx,
        TenantEventKind::KeyCreated,
        &access.actor,
        json!({ "key_id": key.id, "name": key.name }),
    )
    .await?;
    let changes = [Invalidation::Key(key.key_hash)];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    tracing::info!(tenant_id = %access.tenant, key_id = %key.id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(NewKeyOut {
            key: minted.secret.expose().to_owned(),
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
    let access = caller.for_tenant(&id, Scope::KeysRead)?;
    let limit = page.limit()?;
    let after = page.after("keys")?;
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let found = tx.list_keys(after.as_deref(), limit).await?;
    tx.commit().await?;
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
    let access = caller.for_tenant(&id, Scope::KeysRead)?;
    let mut tx = state.store.tenant_read(&access.tenant).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let key = tx.get_key(&key_id).await.map_err(key_missing)?;
    tx.commit().await?;
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
    let access = caller.for_tenant(&id, Scope::KeysWrite)?;
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
    if let Some(scopes) = &patch.scopes {
        check_grantable(&caller, scopes)?;
    }
    if let Some(expires_at) = patch.expires_at {
        check_lifetime(&caller, expires_at)?;
    }
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    // Revocation is final: a revoked key is not edited (nor seemingly revived
    // by `enabled: true`).
    let existing = tx.get_key(&key_id).await.map_err(key_missing)?;
    if existing.revoked_at.is_some() {
        return Err(ApiError::Conflict {
            code: "key_revoked",
            detail: "a revoked key cannot be changed".into(),
            field: None,
        });
    }
    // A key is edited only by a caller that could have made it: one holding
    // every scope it has (and an operator for the operator-issued ones), so
    // a weaker key cannot re-enable or re-date a stronger one.
    check_grantable(&caller, &existing.scopes)?;
    // A rotated-out key is on its way out: a tenant key does not re-enable,
    // widen or re-date it (rotate its successor instead); an operator may.
    let revives =
        patch.enabled == Some(true) || patch.expires_at.is_some() || patch.scopes.is_some();
    if revives && !caller.is_operator() && tx.key_has_successor(&existing.id).await? {
        return Err(ApiError::Conflict {
            code: "key_already_rotated",
            detail: "this key was rotated: its successor is the one to change".into(),
            field: None,
        });
    }
    let key = tx
        .update_key(&key_id, &patch, now)
        .await
        .map_err(key_missing)?;
    record(
        &state,
        &mut tx,
        TenantEventKind::KeyUpdated,
        &access.actor,
        json!({ "key_id": key.id }),
    )
    .await?;
    let changes = [Invalidation::Key(key.key_hash)];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
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
    let access = caller.for_tenant(&id, Scope::KeysWrite)?;
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    let key = tx
        .revoke_key(&key_id, state.clock.now())
        .await
        .map_err(key_missing)?;
    record(
        &state,
        &mut tx,
        TenantEventKind::KeyRevoked,
        &access.actor,
        json!({ "key_id": key.id }),
    )
    .await?;
    let changes = [Invalidation::Key(key.key_hash)];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    tracing::info!(tenant_id = %access.tenant, key_id = %key.id, "API key revoked");
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
    let access = caller.for_tenant(&id, Scope::KeysWrite)?;
    let overlap = input.overlap_seconds.unwrap_or(0);
    if !(0..=30 * 86_400).contains(&overlap) {
        return Err(ValidationError::new(
            "overlap_seconds",
            "out_of_range",
            "must be between 0 and 2592000 (30 days)",
        )
        .into());
    }
    let now = state.clock.now();
    let mut tx = super::tenants::open_live_tenant(&state, &access.tenant).await?;
    let old = tx.get_key(&key_id).await.map_err(key_missing)?;
    if old.revoked_at.is_some() {
        return Err(ApiError::Conflict {
            code: "key_revoked",
            detail: "a revoked key cannot be rotated".into(),
            field: None,
        });
    }
    // A key is rotated once: otherwise a leaked key, still alive during its
    // overlap window, could mint fresh successors of itself. The tenant row
    // is locked, so concurrent rotations see each other's successor.
    if old.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::Conflict {
            code: "key_expired",
            detail: "an expired key cannot be rotated".into(),
            field: None,
        });
    }
    if tx.key_has_successor(&old.id).await? {
        return Err(ApiError::Conflict {
            code: "key_already_rotated",
            detail: "this key was rotated already: rotate its successor".into(),
            field: None,
        });
    }
    check_grantable(&caller, &old.scopes)?;
    check_lifetime(&caller, old.expires_at)?;
    // The new key keeps the old key's own expiry, not the overlap deadline.
    let original_expiry = old.expires_at;
    let old_ends = now + chrono::Duration::seconds(overlap);
    let old_expiry = Some(old.expires_at.map_or(old_ends, |at| at.min(old_ends)));
    let old = tx
        .update_key(
            &old.id,
            &ApiKeyPatch {
                expires_at: Some(old_expiry),
                ..ApiKeyPatch::default()
            },
            now,
        )
        .await?;
    let minted = mint(KeyKind::Tenant, old.environment);
    let key = ApiKey {
        id: state.ids.random("key"),
        key_hash: minted.hash,
        start: minted.start,
        enabled: true,
        expires_at: original_expiry,
        revoked_at: None,
        last_used_at: None,
        rotated_from: Some(old.id.clone()),
        created_at: now,
        updated_at: now,
        ..old.clone()
    };
    tx.insert_key(&key).await?;
    record(
        &state,
        &mut tx,
        TenantEventKind::KeyRotated,
        &access.actor,
        json!({ "key_id": old.id, "new_key_id": key.id, "old_key_expires_at": old.expires_at }),
    )
    .await?;
    let changes = [
        Invalidation::Key(old.key_hash),
        Invalidation::Key(key.key_hash),
    ];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    tracing::info!(tenant_id = %access.tenant, key_id = %old.id, new_key_id = %key.id, "API key rotated");
    Ok((
        StatusCode::CREATED,
        Json(NewKeyOut {
            key: minted.secret.expose().to_owned(),
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
    let mut verification = verify_key(
        &state,
        &input.key,
        required.as_ref().unwrap_or(&Scopes::default()),
    )
    .await?;
    if required.is_none() && verification.code == VerifyCode::Valid {
        verification.code = VerifyCode::InsufficientScopes;
    }
    let foreign = match (&caller, &verification.tenant) {
        (Caller::Tenant { tenant: own, .. }, Some(t)) => own.id != t.id,
        _ => false,
    };
    let (code, key, tenant) = match (foreign, verification.code) {
        (true, _) | (_, VerifyCode::NotFound) => (VerifyCode::NotFound, None, None),
        (false, code) => (code, verification.key, verification.tenant),
    };
    // Another tenant's key, answered NOT_FOUND, is not marked as used.
    if let (VerifyCode::Valid, Some(key)) = (code, &key) {
        crate::resolution::keys::record_use(&state, key);
    }
    Ok(Json(VerifyOut {
        valid: code == VerifyCode::Valid,
        code,
        key_id: key.as_ref().map(|k| k.id.clone()),
        tenant: tenant.map(|t| VerifyTenant {
            id: t.id.to_string(),
            status: t.status,
            plan: t.plan.clone(),
        }),
        scopes: key.as_ref().map(|k| k.scopes.names()),
        environment: key.as_ref().map(|k| k.environment),
        expires_at: key.as_ref().and_then(|k| k.expires_at),
    }))
}
