//! A tenant's API keys: creating, listing, changing, revoking, rotating and
//! verifying them. Changes lock the tenant's registry row
//! ([`tenancy::open_live`]), so two changes to one tenant's keys (two
//! rotations of one key, say) see each other.

use super::{MintedKey, api_key_target, mint};
use crate::app::AppState;
use crate::change::TenantChange;
use crate::grant::TenantGrant;
use crate::http::auth::{Caller, insufficient_scope};
use crate::http::problem::ApiError;
use crate::resolution::cache::{Invalidation, TenantSnapshot};
use crate::resolution::keys::{check as check_key, record_use};
use crate::tenancy::{self, or_tenant_not_found};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;
use tenantry_core::SecretString;
use tenantry_core::keys::{ApiKey, ApiKeyPatch, Environment, KeyKind, Scopes, VerifyCode};
use tenantry_core::tenant::TenantEventKind;
use tenantry_core::values::Metadata;
use tenantry_store::{KeyPage, StoreError};

/// What a new key is made of (parsed by the caller).
#[derive(Debug)]
pub struct NewKey {
    pub name: String,
    pub scopes: Scopes,
    pub environment: Environment,
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: Metadata,
}

/// The longest overlap a rotation allows (30 days).
pub const MAX_OVERLAP_SECONDS: i64 = 30 * 86_400;

pub fn key_not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::KeyNotFound,
        detail: "this tenant has no such key".into(),
    }
}

fn key_missing(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => key_not_found(),
        other => other.into(),
    }
}

fn conflict(code: crate::http::codes::Code, detail: &'static str) -> ApiError {
    ApiError::Conflict {
        code,
        detail: detail.into(),
        field: None,
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

/// What the audit log shows of a key: never the key, its hash nor its
/// first characters.
fn described(key: &ApiKey) -> serde_json::Value {
    json!({
        "id": key.id,
        "name": key.name,
        "scopes": key.scopes.names(),
        "environment": key.environment,
        "enabled": key.enabled,
        "expires_at": key.expires_at,
        "metadata": key.metadata.clone().into_value(),
        "rotated_from": key.rotated_from,
    })
}

/// The fields that differ between two versions of a key, as `{field: {from, to}}`.
fn differences(before: &ApiKey, after: &ApiKey) -> serde_json::Map<String, serde_json::Value> {
    let mut changes = serde_json::Map::new();
    let mut note = |field: &str, from: serde_json::Value, to: serde_json::Value| {
        if from != to {
            changes.insert(field.to_owned(), json!({ "from": from, "to": to }));
        }
    };
    note("name", json!(before.name), json!(after.name));
    note(
        "scopes",
        json!(before.scopes.names()),
        json!(after.scopes.names()),
    );
    note("enabled", json!(before.enabled), json!(after.enabled));
    note(
        "expires_at",
        json!(before.expires_at),
        json!(after.expires_at),
    );
    note(
        "metadata",
        before.metadata.clone().into_value(),
        after.metadata.clone().into_value(),
    );
    note(
        "revoked_at",
        json!(before.revoked_at),
        json!(after.revoked_at),
    );
    changes
}

/// Makes a key for the grant's tenant; the secret is returned once.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    grant: &TenantGrant,
    new: NewKey,
) -> Result<(ApiKey, SecretString), ApiError> {
    check_grantable(caller, &new.scopes)?;
    check_lifetime(caller, new.expires_at)?;
    let mut change = tenancy::open_live(state, grant).await?;
    let (key, secret) = create_on(state, &mut change, new).await?;
    change.commit().await?;
    tracing::info!(tenant_id = %grant.tenant(), key_id = %key.id, "API key created");
    Ok((key, secret))
}

/// Makes a key on an open change of its tenant (recording its event, audit
/// entry and invalidation there, not committing): [`create`] without the
/// caller's checks, for a provisioning workflow's step, whose keys commit
/// with the step.
pub async fn create_on(
    state: &AppState,
    change: &mut TenantChange,
    new: NewKey,
) -> Result<(ApiKey, SecretString), ApiError> {
    let now = state.clock.now();
    let MintedKey {
        secret,
        hash,
        start,
    } = mint(KeyKind::Tenant, new.environment);
    let key = ApiKey {
        id: state.ids.random("key"),
        tenant_id: change.tx().tenant_id().clone(),
        key_hash: hash,
        start,
        name: new.name,
        scopes: new.scopes,
        environment: new.environment,
        enabled: true,
        expires_at: new.expires_at,
        revoked_at: None,
        metadata: new.metadata,
        last_used_at: None,
        rotated_from: None,
        created_at: now,
        updated_at: now,
    };
    change.tx().insert_key(&key).await?;
    change.event(
        TenantEventKind::KeyCreated,
        json!({ "key_id": key.id, "name": key.name }),
    );
    change.audit(
        "api_key.created",
        vec![api_key_target(&key.id)],
        json!({ "after": described(&key) }),
    );
    change.invalidate(Invalidation::Key(key.key_hash));
    Ok((key, secret))
}

/// One page of the tenant's keys.
pub async fn list(
    state: &AppState,
    grant: &TenantGrant,
    after: Option<&str>,
    limit: u32,
) -> Result<KeyPage, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let page = tx.list_keys(after, limit).await?;
    tx.commit().await?;
    Ok(page)
}

pub async fn get(state: &AppState, grant: &TenantGrant, key_id: &str) -> Result<ApiKey, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let key = tx.get_key(key_id).await.map_err(key_missing)?;
    tx.commit().await?;
    Ok(key)
}

/// Changes a key's name, scopes, enabled flag, expiry or metadata. A patch
/// that changes nothing records nothing.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    grant: &TenantGrant,
    key_id: &str,
    patch: &ApiKeyPatch,
) -> Result<ApiKey, ApiError> {
    if let Some(scopes) = &patch.scopes {
        check_grantable(caller, scopes)?;
    }
    if let Some(expires_at) = patch.expires_at {
        check_lifetime(caller, expires_at)?;
    }
    let mut change = tenancy::open_live(state, grant).await?;
    // Revocation is final: a revoked key is not edited (nor seemingly revived
    // by `enabled: true`).
    let existing = change.tx().get_key(key_id).await.map_err(key_missing)?;
    if existing.revoked_at.is_some() {
        return Err(conflict(
            crate::http::codes::Code::KeyRevoked,
            "a revoked key cannot be changed",
        ));
    }
    // A key is edited only by a caller that could have made it: one holding
    // every scope it has (and an operator for the operator-issued ones), so
    // a weaker key cannot re-enable or re-date a stronger one.
    check_grantable(caller, &existing.scopes)?;
    // A rotated-out key is on its way out: a tenant key does not re-enable,
    // widen or re-date it (rotate its successor instead); an operator may.
    let revives =
        patch.enabled == Some(true) || patch.expires_at.is_some() || patch.scopes.is_some();
    if revives && !caller.is_operator() && change.tx().key_has_successor(&existing.id).await? {
        return Err(conflict(
            crate::http::codes::Code::KeyAlreadyRotated,
            "this key was rotated: its successor is the one to change",
        ));
    }
    let key = change
        .tx()
        .update_key(key_id, patch, state.clock.now())
        .await
        .map_err(key_missing)?;
    let changes = differences(&existing, &key);
    if changes.is_empty() {
        // Nothing changed: the transaction rolls back, nothing is recorded.
        return Ok(existing);
    }
    change.event(TenantEventKind::KeyUpdated, json!({ "key_id": key.id }));
    change.audit(
        "api_key.updated",
        vec![api_key_target(&key.id)],
        serde_json::Value::Object(changes),
    );
    change.invalidate(Invalidation::Key(key.key_hash));
    change.commit().await?;
    Ok(key)
}

/// Revokes a key: it stops working at once, for good. Revoking a revoked
/// key changes (and records) nothing.
pub async fn revoke(
    state: &AppState,
    grant: &TenantGrant,
    key_id: &str,
) -> Result<ApiKey, ApiError> {
    let mut change = tenancy::open_live(state, grant).await?;
    let (key, changed) = revoke_on(state, &mut change, key_id).await?;
    if changed {
        change.commit().await?;
        tracing::info!(tenant_id = %grant.tenant(), key_id = %key.id, "API key revoked");
    }
    Ok(key)
}

/// Revokes a key on an open change of its tenant (not committing); `true`
/// when it was not revoked yet (and the change records its revocation).
pub async fn revoke_on(
    state: &AppState,
    change: &mut TenantChange,
    key_id: &str,
) -> Result<(ApiKey, bool), ApiError> {
    let existing = change.tx().get_key(key_id).await.map_err(key_missing)?;
    if existing.revoked_at.is_some() {
        return Ok((existing, false));
    }
    let key = change
        .tx()
        .revoke_key(key_id, state.clock.now())
        .await
        .map_err(key_missing)?;
    change.event(TenantEventKind::KeyRevoked, json!({ "key_id": key.id }));
    change.audit(
        "api_key.revoked",
        vec![api_key_target(&key.id)],
        serde_json::Value::Object(differences(&existing, &key)),
    );
    change.invalidate(Invalidation::Key(key.key_hash));
    Ok((key, true))
}

/// Replaces a key with a new one of the same name, scopes, environment,
/// expiry and metadata; the old one keeps working for `overlap_seconds`
/// (0 to [`MAX_OVERLAP_SECONDS`]). One audit entry targets both keys.
pub async fn rotate(
    state: &AppState,
    caller: &Caller,
    grant: &TenantGrant,
    key_id: &str,
    overlap_seconds: i64,
) -> Result<(ApiKey, SecretString), ApiError> {
    let now = state.clock.now();
    let mut change = tenancy::open_live(state, grant).await?;
    let old = change.tx().get_key(key_id).await.map_err(key_missing)?;
    if old.revoked_at.is_some() {
        return Err(conflict(
            crate::http::codes::Code::KeyRevoked,
            "a revoked key cannot be rotated",
        ));
    }
    // A key is rotated once: otherwise a leaked key, still alive during its
    // overlap window, could mint fresh successors of itself. The tenant row
    // is locked, so concurrent rotations see each other's successor.
    if old.expires_at.is_some_and(|at| at <= now) {
        return Err(conflict(
            crate::http::codes::Code::KeyExpired,
            "an expired key cannot be rotated",
        ));
    }
    if change.tx().key_has_successor(&old.id).await? {
        return Err(conflict(
            crate::http::codes::Code::KeyAlreadyRotated,
            "this key was rotated already: rotate its successor",
        ));
    }
    check_grantable(caller, &old.scopes)?;
    check_lifetime(caller, old.expires_at)?;
    // The new key keeps the old key's own expiry, not the overlap deadline.
    let before = old.clone();
    let original_expiry = old.expires_at;
    let old_ends = now + chrono::Duration::seconds(overlap_seconds);
    let old_expiry = Some(old.expires_at.map_or(old_ends, |at| at.min(old_ends)));
    let old = change
        .tx()
        .update_key(
            &old.id,
            &ApiKeyPatch {
                expires_at: Some(old_expiry),
                ..ApiKeyPatch::default()
            },
            now,
        )
        .await?;
    let MintedKey {
        secret,
        hash,
        start,
    } = mint(KeyKind::Tenant, old.environment);
    let key = ApiKey {
        id: state.ids.random("key"),
        key_hash: hash,
        start,
        enabled: true,
        expires_at: original_expiry,
        revoked_at: None,
        last_used_at: None,
        rotated_from: Some(old.id.clone()),
        created_at: now,
        updated_at: now,
        ..old.clone()
    };
    change.tx().insert_key(&key).await?;
    change.event(
        TenantEventKind::KeyRotated,
        json!({ "key_id": old.id, "new_key_id": key.id, "old_key_expires_at": old.expires_at }),
    );
    change.audit_with(
        "api_key.rotated",
        vec![api_key_target(&old.id), api_key_target(&key.id)],
        json!({
            "old_key": differences(&before, &old),
            "new_key": { "after": described(&key) },
        }),
        json!({ "overlap_seconds": overlap_seconds }),
    );
    change.invalidate(Invalidation::Key(old.key_hash));
    change.invalidate(Invalidation::Key(key.key_hash));
    change.commit().await?;
    tracing::info!(tenant_id = %grant.tenant(), key_id = %old.id, new_key_id = %key.id, "API key rotated");
    Ok((key, secret))
}

/// The answer to "is this key good?", as a caller may learn it.
#[derive(Debug)]
pub struct Verdict {
    pub code: VerifyCode,
    pub key: Option<Arc<ApiKey>>,
    pub tenant: Option<Arc<TenantSnapshot>>,
}

/// Verifies a presented tenant key for `caller`: `required` is `None` when
/// the scopes asked for do not exist (they cannot be granted). A key of
/// another tenant than a tenant caller's own is `NOT_FOUND`, and is not
/// marked as used. Reads only (the last-used time is bookkeeping).
pub async fn verify(
    state: &AppState,
    caller: &Caller,
    presented: &str,
    required: Option<&Scopes>,
) -> Result<Verdict, ApiError> {
    let mut verification =
        check_key(state, presented, required.unwrap_or(&Scopes::default())).await?;
    if required.is_none() && verification.code == VerifyCode::Valid {
        verification.code = VerifyCode::InsufficientScopes;
    }
    let foreign = match (caller, &verification.tenant) {
        (Caller::Tenant { tenant: own, .. }, Some(t)) => own.id != t.id,
        _ => false,
    };
    let verdict = match (foreign, verification.code) {
        (true, _) | (_, VerifyCode::NotFound) => Verdict {
            code: VerifyCode::NotFound,
            key: None,
            tenant: None,
        },
        (false, code) => Verdict {
            code,
            key: verification.key,
            tenant: verification.tenant,
        },
    };
    if let (VerifyCode::Valid, Some(key)) = (verdict.code, &verdict.key) {
        record_use(state, key);
    }
    Ok(verdict)
}
