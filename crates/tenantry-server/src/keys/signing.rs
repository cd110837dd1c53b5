//! Rotating the keys that sign access tokens, recorded as
//! `signing_key.rotated` in the operator's audit chain (never a seed).

use crate::app::AppState;
use crate::grant::OperatorGrant;
use crate::http::problem::ApiError;
use crate::resolution::cache::Invalidation;
use crate::resolution::tokens::{MAX_TTL_SECONDS, new_signing_key};
use serde_json::json;
use tenantry_core::audit::AuditTarget;

/// Activates a new signing key and returns its `kid`; the previous one
/// keeps verifying until its tokens have expired, and keys retired long
/// enough ago are deleted. Every server process reloads its keys (this one
/// at once, the others on the change's notification).
pub async fn rotate(state: &AppState, grant: &OperatorGrant) -> Result<String, ApiError> {
    let now = state.clock.now();
    let (kid, seed, public) = new_signing_key();
    let wrapped = state.vault.wrap_signing_seed(&kid, &seed)?;
    let mut change = grant.change(state).await?;
    change.tx().lock_signing_keys().await?;
    change
        .tx()
        .add_signing_key(&kid, &wrapped.kek_id, &wrapped.ciphertext, &public, now)
        .await?;
    let pruned = change
        .tx()
        .prune_signing_keys(now - chrono::Duration::seconds(2 * MAX_TTL_SECONDS))
        .await?;
    change.audit_with(
        "signing_key.rotated",
        vec![AuditTarget::new("signing_key", &kid)],
        json!({ "after": { "kid": kid, "kek_id": wrapped.kek_id } }),
        json!({ "pruned_keys": pruned }),
    );
    change.invalidate(Invalidation::SigningKeys);
    change.commit().await?;
    state.tokens.load(&state.store, &state.vault, now).await?;
    tracing::info!(%kid, "token signing key rotated");
    Ok(kid)
}
