//! Operator keys: keys that act on every tenant, made and revoked with the
//! root key and recorded in the operator's audit chain.

use super::{MintedKey, mint};
use crate::app::AppState;
use crate::grant::OperatorGrant;
use crate::http::problem::ApiError;
use crate::resolution::cache::Invalidation;
use serde_json::json;
use tenantry_core::SecretString;
use tenantry_core::audit::AuditTarget;
use tenantry_core::keys::{Environment, KeyKind, OperatorKey};
use tenantry_store::StoreError;

fn target(id: &str) -> AuditTarget {
    AuditTarget::new("operator_key", id)
}

/// Makes an operator key; the secret is returned once. The caller checked
/// that the operator may (the root key only).
pub async fn create(
    state: &AppState,
    grant: &OperatorGrant,
    name: String,
    environment: Environment,
) -> Result<(OperatorKey, SecretString), ApiError> {
    let MintedKey {
        secret,
        hash,
        start,
    } = mint(KeyKind::Operator, environment);
    let key = OperatorKey {
        id: state.ids.random("opk"),
        key_hash: hash,
        start,
        name,
        environment,
        revoked_at: None,
        last_used_at: None,
        created_at: state.clock.now(),
    };
    let mut change = grant.change(state).await?;
    change.tx().insert_operator_key(&key).await?;
    change.audit(
        "operator_key.created",
        vec![target(&key.id)],
        json!({ "after": { "id": key.id, "name": key.name, "environment": key.environment } }),
    );
    change.invalidate(Invalidation::OperatorKey(key.key_hash));
    change.commit().await?;
    tracing::info!(key_id = %key.id, "operator key created");
    Ok((key, secret))
}

pub async fn list(state: &AppState, grant: &OperatorGrant) -> Result<Vec<OperatorKey>, ApiError> {
    let mut op = grant.read(state).await?;
    let keys = op.list_operator_keys().await?;
    op.commit().await?;
    Ok(keys)
}

/// Revokes an operator key at once, for good. Revoking a revoked key
/// changes (and records) nothing.
pub async fn revoke(
    state: &AppState,
    grant: &OperatorGrant,
    key_id: &str,
) -> Result<OperatorKey, ApiError> {
    let now = state.clock.now();
    let mut change = grant.change(state).await?;
    let Some(key) = change.tx().revoke_live_operator_key(key_id, now).await? else {
        // Unknown, or revoked already: nothing changes and nothing is
        // recorded (this change rolls back).
        return change
            .tx()
            .revoke_operator_key(key_id, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ApiError::NotFound {
                    code: crate::http::codes::Code::KeyNotFound,
                    detail: "no such operator key".into(),
                },
                other => other.into(),
            });
    };
    change.audit(
        "operator_key.revoked",
        vec![target(&key.id)],
        json!({ "revoked_at": { "from": null, "to": now } }),
    );
    change.invalidate(Invalidation::OperatorKey(key.key_hash));
    change.commit().await?;
    tracing::info!(key_id = %key.id, "operator key revoked");
    Ok(key)
}
