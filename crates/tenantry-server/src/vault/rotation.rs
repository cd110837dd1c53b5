//! Key rotation: moving data keys to the active KEK (rewrap, resumable: the
//! backlog is whatever the database says is wrapped by another KEK), and
//! giving one tenant a new data key (re-encrypting its secrets).
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use super::seal::{
    envelope_of, open_value, seal_settings, seal_value, sealed_field, settings_envelopes,
};
use super::{Vault, VaultError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::TenantId;
use tenantry_core::credentials::CredentialKind;
use tenantry_crypto::{Binding, WrappedKey};
use tenantry_store::Store;

/// Rewraps up to `batch` data keys not yet under the active KEK, and every
/// token-signing seed not under it. Returns how many were moved; 0 means the
/// backlog is empty (or only holds keys whose KEK is missing from the
/// keyring, which are reported, not lost). The keyring is read from disk
/// first: keys only ever move to a KEK that is durably in the keyring file,
/// and a process whose copy is stale never moves them back to an older one.
pub async fn rewrap_batch(store: &Store, vault: &Vault, batch: i64) -> Result<usize, VaultError> {
    let keyring = vault.durable_keyring()?;
    let active = keyring.active().id().to_owned();
    let mut op = store.operator_read().await?;
    let pending = op.data_keys_not_wrapped_by(&active, batch).await?;
    let seeds_pending = op.signing_keys().await?.iter().any(|k| {
        k.sealed_seed
            .as_ref()
            .is_some_and(|(kek, _)| *kek != active)
    });
    op.commit().await?;
    let mut moved = 0;
    for (tenant, dek_id, kek_id) in pending {
        let mut tx = store.tenant_write(&tenant).await?;
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
        moved += rewrap_signing_seeds(store, vault, &keyring).await?;
    }
    moved += crate::audit::keys::rewrap_seed(store, vault, &keyring).await?;
    Ok(moved)
}

async fn rewrap_signing_seeds(
    store: &Store,
    vault: &Vault,
    keyring: &tenantry_crypto::Keyring,
) -> Result<usize, VaultError> {
    let active = keyring.active().id();
    let mut op = store.operator_write().await?;
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

/// Rewraps until nothing is left to move.
pub async fn rewrap_all(store: &Store, vault: &Vault) -> Result<usize, VaultError> {
    let mut total = 0;
    loop {
        let moved = rewrap_batch(store, vault, 500).await?;
        if moved == 0 {
            return Ok(total);
        }
        total += moved;
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KekStatus {
    pub id: String,
    pub active: bool,
    /// Whether this server's keyring holds it.
    pub in_keyring: bool,
    /// Keys it wraps: tenants' data keys and token-signing seeds. A
    /// non-active KEK at 0 can be removed from the keyring.
    pub data_keys: i64,
    pub retirable: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyringStatus {
    pub active_kek: String,
    pub keks: Vec<KekStatus>,
    /// Keys (data keys and signing seeds) still wrapped by a KEK other than the active one.
    pub rewrap_pending: i64,
    /// Whether the server can rotate the keyring itself (a keyring file).
    pub writable: bool,
}

pub async fn status(store: &Store, vault: &Vault) -> Result<KeyringStatus, VaultError> {
    // The file as it is now (the CLI may have rotated it); if it cannot be
    // read, the status still answers, from the keyring in memory.
    if let Err(err) = vault.reload() {
        tracing::warn!(error = %err, "cannot re-read the keyring; showing the one in memory");
    }
    let keyring = vault.keyring();
    let active = keyring.active().id().to_owned();
    let mut op = store.operator_read().await?;
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
/// it, in one transaction; the old keys are then deleted.
pub async fn rotate_tenant(
    store: &Store,
    vault: &Vault,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<String, VaultError> {
    let mut tx = store.tenant_write(tenant).await?;
    tx.tenant_for_update().await?;
    let old_keys = tx.data_keys().await?;
    let new = vault.new_dek(&mut tx, now).await?;
    let mut old = std::collections::HashMap::new();
    for stored in &old_keys {
        old.insert(stored.id.clone(), vault.unwrap(tenant, stored)?);
    }
    let open = |envelope: &str, binding: &Binding<'_>| -> Result<serde_json::Value, VaultError> {
        let dek_id = tenantry_crypto::envelope_dek_id(envelope)?;
        let dek = old
            .get(dek_id)
            .ok_or_else(|| VaultError::MissingDataKey(dek_id.to_owned()))?;
        open_value(dek, binding, envelope)
    };
    for mut cred in tx.list_credentials().await? {
        let kind = CredentialKind::parse(&cred.kind)
            .map_err(|_| VaultError::Crypto(tenantry_crypto::CryptoError::Malformed))?;
        let names: Vec<String> = cred.sealed.keys().cloned().collect();
        for name in names {
            let binding = Binding {
                tenant_id: tenant.as_str(),
                record_id: &cred.id,
                kind: kind.as_str(),
                field: &name,
            };
            let envelope = cred
                .sealed
                .get(&name)
                .and_then(envelope_of)
                .ok_or(VaultError::Crypto(tenantry_crypto::CryptoError::Malformed))?;
            let value = open(envelope, &binding)?;
            let (envelope, mask) = seal_value(&new, &binding, &value)?;
            cred.sealed.insert(name, sealed_field(envelope, mask));
        }
        tx.update_credential(&cred).await?;
    }
    for (category, stored) in tx.all_settings().await? {
        let mut envelopes = Vec::new();
        settings_envelopes(&stored, "", &mut envelopes);
        if envelopes.is_empty() {
            continue;
        }
        let plain = super::seal::open_settings(&stored, "", &mut |pointer, envelope| {
            let binding = Binding {
                tenant_id: tenant.as_str(),
                record_id: &category,
                kind: "settings",
                field: pointer,
            };
            open(envelope, &binding)
        })?;
        let resealed = seal_settings(&new, tenant.as_str(), &category, "", &plain)?;
        tx.put_settings(&category, &resealed, now).await?;
    }
    for stored in &old_keys {
        tx.delete_data_key(&stored.id).await?;
    }
    tx.commit().await?;
    for stored in &old_keys {
        vault.deks.invalidate(&(tenant.clone(), stored.id.clone()));
    }
    Ok(new.id().to_owned())
}
