//! Outbound webhooks: endpoints (tenant and operator), their signed
//! deliveries and the delivery log.
//!
//! The outbox is written with every event, in the change's transaction
//! (`tenant_events` and `operator_events` each queue a `webhook_outbox`
//! row): no delivery for a change that rolled back, no change without its
//! delivery. The delivery worker ([`delivery`]) fans queued events out to
//! the matching endpoints' messages and delivers them, claiming rows with
//! `FOR UPDATE SKIP LOCKED` and a lease on PostgreSQL so several nodes
//! share the work.
//!
//! Secrets (the HMAC key of `v1` signatures and the Ed25519 seed of `v1a`)
//! are sealed under the keyring, bound to (owner, endpoint, slot), for
//! tenant and operator endpoints alike: the worker signs for every owner
//! without opening a tenant transaction, and a tenant's data-key rotation
//! (which re-encrypts only credentials and settings) cannot strand them.

pub mod delivery;
pub mod endpoints;
pub mod signing;

use crate::app::AppState;
use crate::http::problem::ApiError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tenantry_crypto::{CryptoError, WrappedKey};
use zeroize::Zeroizing;

const PURPOSE: &str = "webhook-secret";

fn binding(owner: &str, endpoint: &str, slot: &str) -> String {
    format!("{owner}/{endpoint}/{slot}")
}

/// Seals a 32-byte secret of an endpoint under the keyring's active KEK.
pub fn seal(
    state: &AppState,
    owner: &str,
    endpoint: &str,
    secret: &[u8; 32],
) -> Result<serde_json::Value, ApiError> {
    let keyring = state.vault.durable_keyring()?;
    let slot = state.ids.random("sl");
    let wrapped =
        tenantry_crypto::wrap_secret(&keyring, PURPOSE, &binding(owner, endpoint, &slot), secret)
            .map_err(crate::vault::VaultError::from)?;
    Ok(serde_json::json!({
        "kek": wrapped.kek_id, "slot": slot, "v": STANDARD.encode(wrapped.ciphertext),
    }))
}

/// `sealed` (by [`seal`]) sealed anew under `keyring`'s active KEK, same
/// slot and binding; `None` when that KEK sealed it already. The keyring
/// rotation's rewrap moves endpoint secrets with this, so a retired KEK
/// strands no endpoint.
pub fn reseal(
    state: &AppState,
    keyring: &tenantry_crypto::Keyring,
    owner: &str,
    endpoint: &str,
    sealed: &serde_json::Value,
) -> Result<Option<serde_json::Value>, crate::vault::VaultError> {
    if sealed.get("kek").and_then(serde_json::Value::as_str) == Some(keyring.active().id()) {
        return Ok(None);
    }
    let Some(slot) = sealed.get("slot").and_then(serde_json::Value::as_str) else {
        return Err(CryptoError::Malformed.into());
    };
    let secret = open(state, owner, endpoint, sealed)?;
    let wrapped =
        tenantry_crypto::wrap_secret(keyring, PURPOSE, &binding(owner, endpoint, slot), &secret)?;
    Ok(Some(serde_json::json!({
        "kek": wrapped.kek_id, "slot": slot, "v": STANDARD.encode(wrapped.ciphertext),
    })))
}

/// Opens a secret sealed by [`seal`], re-reading the keyring once if its KEK
/// is unknown (another process may have rotated it).
pub fn open(
    state: &AppState,
    owner: &str,
    endpoint: &str,
    sealed: &serde_json::Value,
) -> Result<Zeroizing<[u8; 32]>, crate::vault::VaultError> {
    let field = |name: &str| sealed.get(name).and_then(serde_json::Value::as_str);
    let (Some(kek), Some(slot), Some(v)) = (field("kek"), field("slot"), field("v")) else {
        return Err(CryptoError::Malformed.into());
    };
    let wrapped = WrappedKey {
        kek_id: kek.to_owned(),
        ciphertext: STANDARD.decode(v).map_err(|_| CryptoError::Malformed)?,
    };
    let id = binding(owner, endpoint, slot);
    match tenantry_crypto::unwrap_secret(&state.vault.keyring(), PURPOSE, &id, &wrapped) {
        Err(CryptoError::UnknownKek(_)) if state.vault.reload()? => Ok(
            tenantry_crypto::unwrap_secret(&state.vault.keyring(), PURPOSE, &id, &wrapped)?,
        ),
        other => Ok(other?),
    }
}
