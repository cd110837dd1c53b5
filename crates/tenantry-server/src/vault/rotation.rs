//! Key rotation: activating a new key-encryption key (recorded in the
//! operator's audit chain), moving data keys to the active KEK (rewrap,
//! resumable: the backlog is whatever the database says is wrapped by
//! another KEK), and giving one tenant a new data key (re-encrypting its
//! secrets, recorded in the tenant's chain). Called by the API, the rewrap
//! worker and the `tenantry keys` commands alike.

use super::VaultError;
use super::{credentials, settings};
use crate::app::AppState;
use crate::grant::{OperatorGrant, TenantGrant};
use crate::http::problem::ApiError;
use serde_json::json;
pub use tenantry_api::keyring::{KekStatus, KeyringStatus};
use tenantry_core::audit::AuditTarget;
use tenantry_core::tenant::TenantEventKind;
use tenantry_crypto::WrappedKey;

/// The name the rewrap worker (and the commands' rewrap) acts under.
const REWRAP: &str = "rewrap";

/// Activates a new KEK in the keyring file and records it in the operator
/// chain. The change is opened first, so a database that is down refuses
/// the rotation before the file is touched; the file cannot roll back with
/// the transaction, so a commit that fails after it is reported, not
/// undone (the new key is in the file, and nothing is wrapped by it that
/// the file does not hold).
pub async fn rotate_keyring(state: &AppState, grant: &OperatorGrant) -> Result<String, ApiError> {
    let mut change = grant.change(state).await?;
    let (active, previous) = state.vault.rotate().await?;
    change.audit(
        "keyring.rotated",
        vec![AuditTarget::new("kek", active.as_str())],
        json!({ "active_kek": { "from": previous, "to": active } }),
    );
    if let Err(err) = change.commit().await {
        tracing::error!(kek_id = %active, error = %err, "the keyring was rotated but its audit entry could not be written");
        return Err(err.into());
    }
    tracing::info!(kek_id = %active, "key-encryption key rotated; rewrapping data keys");
    Ok(active)
}

/// Rewraps up to `batch` data keys not yet under the active KEK, and every
/// token-signing seed not under it, and up to `batch` webhook endpoints'
/// secrets. Returns how many were moved; 0 means the
/// backlog is empty (or only holds keys whose KEK is missing from the
/// keyring, which are reported, not lost). The keyring is read from disk
/// first: keys only ever move to a KEK that is durably in the keyring file,
/// and a process whose copy is stale never moves them back to an older one.
pub async fn rewrap_batch(state: &AppState, batch: i64) -> Result<usize, VaultError> {
    let vault = &state.vault;
    let keyring = vault.durable_keyring()?;
    let active = keyring.active().id().to_owned();
    #[allow(clippy::disallowed_methods)] // system grant: the rewrap worker's own authority
    let operator = OperatorGrant::system(REWRAP);
    let mut op = operator.read(state).await?;
    let pending = op.data_keys_not_wrapped_by(&active, batch).await?;
    let seeds_pending = op.signing_keys().await?.iter().any(|k| {
        k.sealed_seed
            .as_ref()
            .is_some_and(|(kek, _)| *kek != active)
    });
    op.commit().await?;
    let mut moved = 0;
    for (tenant, dek_id, kek_id) in pending {
        #[allow(clippy::disallowed_methods)] // system grant: rewraps every tenant's key
        let grant = TenantGrant::system(tenant.clone(), REWRAP);
        // Bookkeeping, not a change anyone made: the same data key, wrapped
        // by the KEK the recorded `keyring.rotated` activated; no secret,
        // no key id and no plaintext changes.
        #[allow(clippy::disallowed_methods)] // untracked write: bookkeeping (above)
        let mut tx = grant.untracked_write(state).await?;
        let keys = tx.data_keys().await?;
        let Some(stored) = keys
            .into_iter()
            .find(|k| k.id == dek_id && k.kek_id == kek_id)
        else {
            continue; // changed meanwhile
        };
        let dek = match vault.unwrap(&tenant, &stored) {
            Ok(dek) => dek,
            Err(err) => {
                tracing::error!(tenant_id = %tenant, dek_id, kek_id, error = %err, "cannot rewrap a data key");
                continue;
            }
        };
        let wrapped: WrappedKey = tenantry_crypto::wrap(&keyring, tenant.as_str(), &dek)?;
        if tx
            .rewrap_data_key(&dek_id, &kek_id, &wrapped.kek_id, &wrapped.ciphertext)
            .await?
        {
            moved += 1;
        }
        tx.commit().await?;
    }
    if seeds_pending {
        moved += rewrap_signing_seeds(state, &operator, &keyring).await?;
    }
    moved += rewrap_webhook_secrets(state, &operator, &keyring, batch).await?;
    moved += crate::audit::keys::rewrap_seed(&state.store, &state.vault, &keyring).await?;
    Ok(moved)
}

async fn rewrap_signing_seeds(
    state: &AppState,
    grant: &OperatorGrant,
    keyring: &tenantry_crypto::Keyring,
) -> Result<usize, VaultError> {
    let vault = &state.vault;
    let active = keyring.active().id();
    // Bookkeeping like the data keys' rewrap: the same seeds under the KEK
    // the audited rotation activated.
    #[allow(clippy::disallowed_methods)] // untracked write: bookkeeping (above)
    let mut op = grant.untracked_write(state).await?;
    let mut moved = 0;
    for key in op.signing_keys().await? {
        let Some((kek_id, ciphertext)) = key.sealed_seed else {
            continue;
        };
        if kek_id == active {
            continue;
        }
        let seed = match vault.unwrap_signing_seed(
            &key.kid,
            &WrappedKey {
                kek_id: kek_id.clone(),
                ciphertext,
            },
        ) {
            Ok(seed) => seed,
            Err(err) => {
                tracing::error!(kid = %key.kid, kek_id, error = %err, "cannot rewrap a token signing seed");
                continue;
            }
        };
        let wrapped = tenantry_crypto::wrap_secret(keyring, super::SIGNING_SEED, &key.kid, &seed)?;
        if op
            .rewrap_signing_key(&key.kid, &kek_id, &wrapped.kek_id, &wrapped.ciphertext)
            .await?
        {
            moved += 1;
        }
    }
    op.commit().await?;
    Ok(moved)
}

/// Moves up to `batch` webhook endpoints' secrets (current, previous and
/// the Ed25519 seed) to the active KEK. An endpoint whose secret rotated
/// meanwhile is left alone: its new secret is under the active KEK already.
async fn rewrap_webhook_secrets(
    state: &AppState,
    grant: &OperatorGrant,
    keyring: &tenantry_crypto::Keyring,
    batch: i64,
) -> Result<usize, VaultError> {
    let active = keyring.active().id();
    // Bookkeeping like the data keys' rewrap: the same secrets, sealed
    // under the KEK the audited rotation activated.
    #[allow(clippy::disallowed_methods)] // untracked write: bookkeeping (above)
    let mut op = grant.untracked_write(state).await?;
    let mut moved = 0;
    for endpoint in op.endpoints_sealed_by_other_keks(active, batch).await? {
        let (owner, id) = (endpoint.tenant_id.as_str(), endpoint.id.as_str());
        let reseal = |sealed: &serde_json::Value| {
            crate::webhooks::reseal(state, keyring, owner, id, sealed)
                .map(|new| new.unwrap_or_else(|| sealed.clone()))
        };
        let resealed = reseal(&endpoint.secret).and_then(|secret| {
            let previous = endpoint.previous_secret.as_ref().map(reseal).transpose()?;
            let seed = endpoint.signing_seed.as_ref().map(reseal).transpose()?;
            Ok((secret, previous, seed))
        });
        let (secret, previous, seed) = match resealed {
            Ok(values) => values,
            Err(err) => {
                tracing::error!(owner, endpoint_id = id, error = %err, "cannot rewrap a webhook endpoint's secret");
                continue;
            }
        };
        if op
            .reseal_endpoint(&endpoint, &secret, previous.as_ref(), seed.as_ref())
            .await?
        {
            moved += 1;
        }
    }
    op.commit().await?;
    Ok(moved)
}

/// Rewraps until nothing is left to move.
pub async fn rewrap_all(state: &AppState) -> Result<usize, VaultError> {
    let mut total = 0;
    loop {
        let moved = rewrap_batch(state, 500).await?;
        if moved == 0 {
            return Ok(total);
        }
        total += moved;
    }
}

pub async fn status(state: &AppState, grant: &OperatorGrant) -> Result<KeyringStatus, VaultError> {
    let vault = &state.vault;
    // The file as it is now (the CLI may have rotated it); if it cannot be
    // read, the status still answers, from the keyring in memory.
    if let Err(err) = vault.reload() {
        tracing::warn!(error = %err, "cannot re-read the keyring; showing the one in memory");
    }
    let keyring = vault.keyring();
    let active = keyring.active().id().to_owned();
    let mut op = grant.read(state).await?;
    let counts = op.data_keys_per_kek().await?;
    op.commit().await?;
    let mut keks: Vec<KekStatus> = keyring
        .ids()
        .into_iter()
        .map(|id| {
            let data_keys = counts
                .iter()
                .find(|(k, _)| *k == id)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            KekStatus {
                active: id == active,
                in_keyring: true,
                retirable: id != active && data_keys == 0,
                data_keys,
                id,
            }
        })
        .collect();
    for (id, n) in &counts {
        if !keks.iter().any(|k| &k.id == id) {
            keks.push(KekStatus {
                id: id.clone(),
                active: false,
                in_keyring: false,
                data_keys: *n,
                retirable: false,
            });
        }
    }
    let rewrap_pending = counts
        .iter()
        .filter(|(id, _)| *id != active)
        .map(|(_, n)| n)
        .sum();
    Ok(KeyringStatus {
        active_kek: active,
        keks,
        rewrap_pending,
        writable: vault.writable(),
    })
}

/// Gives a tenant a new data key and re-encrypts every secret it has with
/// it, in one change (recorded in the tenant's chain and event history);
/// the old keys are then deleted. The tenant's row is locked first, so
/// rotations, reveals and writes of its secrets queue behind each other.
pub async fn rotate_tenant(state: &AppState, grant: &TenantGrant) -> Result<String, ApiError> {
    let now = state.clock.now();
    let (mut change, _) = crate::tenancy::lock(state, grant).await?;
    let tenant = grant.tenant().clone();
    let old_keys = change.tx().data_keys().await?;
    let previous = old_keys.iter().find(|k| k.active).map(|k| k.id.clone());
    let new = state.vault.new_dek(change.tx(), now).await?;
    let (mut credentials_done, mut settings_done) = (0, 0);
    for mut cred in change.tx().list_credentials().await? {
        if cred.sealed.is_empty() {
            continue;
        }
        let keys = credentials::keys_for(state, change.tx(), &cred).await?;
        credentials::reseal(&keys, &new, tenant.as_str(), &mut cred)?;
        change.tx().update_credential(&cred).await?;
        credentials_done += 1;
    }
    for (category, stored) in change.tx().all_settings().await? {
        let keys = settings::keys_for(state, change.tx(), &stored).await?;
        if let Some(resealed) = settings::reseal(&keys, &new, tenant.as_str(), &category, &stored)?
        {
            change.tx().put_settings(&category, &resealed, now).await?;
            settings_done += 1;
        }
    }
    for stored in &old_keys {
        change.tx().delete_data_key(&stored.id).await?;
    }
    let dek = new.id().to_owned();
    change.event(
        TenantEventKind::DataKeyRotated,
        json!({ "data_key_id": dek }),
    );
    change.audit_with(
        "data_key.rotated",
        vec![
            crate::tenancy::target(&tenant),
            AuditTarget::new("data_key", dek.as_str()),
        ],
        json!({ "active_data_key": { "from": previous, "to": dek } }),
        json!({ "reencrypted": { "credentials": credentials_done, "settings": settings_done } }),
    );
    change.commit().await?;
    for stored in &old_keys {
        state
            .vault
            .deks
            .invalidate(&(tenant.clone(), stored.id.clone()));
    }
    Ok(dek)
}
