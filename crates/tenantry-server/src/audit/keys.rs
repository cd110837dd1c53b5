//! The Ed25519 keys that sign audit checkpoints. The seed lives in the
//! database only sealed by the vault's KEK (purpose [`SEED_PURPOSE`], bound to
//! the key id), and only for the active key; rotation retires the active key
//! (its seed erased, its public key kept for ever so the checkpoints it
//! signed stay verifiable) and makes a new one.
#![allow(clippy::disallowed_methods)] // The audit log's own bookkeeping (checkpoints, their key, retention, verification and export reads), run by the worker and the CLI on the server's authority and by handlers after their grant check; it records no change. Key rotation goes through the change path.

use crate::vault::{Vault, VaultError};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use rand::RngCore as _;
pub use tenantry_api::audit::PublicKeyOut;
use tenantry_crypto::note::{self, NoteVerifier};
use tenantry_crypto::{CryptoError, WrappedKey};
use tenantry_store::{Store, StoreError, StoredAuditKey};
use zeroize::Zeroizing;

/// The key name in signature lines and vkeys.
pub const KEY_NAME: &str = "tenantry.audit";

/// What a checkpoint key's seed is sealed for (part of its associated data).
pub const SEED_PURPOSE: &str = "audit-checkpoint-key";

/// The active key, able to sign. `Debug` shows its id only.
pub struct Signer {
    pub key_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn sign(&self, text: &str) -> Result<String, VaultError> {
        note::sign(text, KEY_NAME, &self.key).map_err(|e| {
            VaultError::Store(StoreError::Corrupt(format!(
                "cannot sign a checkpoint: {e}"
            )))
        })
    }
}

fn public_of(row: &StoredAuditKey) -> Option<NoteVerifier> {
    let public = <[u8; 32]>::try_from(row.public_key.as_slice()).ok()?;
    NoteVerifier::new(&row.name, &public).ok()
}

/// Every key that ever signed checkpoints, newest first.
pub async fn public_keys(store: &Store) -> Result<Vec<PublicKeyOut>, StoreError> {
    let mut op = store.operator_read().await?;
    let rows = op.audit_signing_keys().await?;
    op.commit().await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let v = public_of(row)?;
            Some(PublicKeyOut {
                name: v.name.clone(),
                key_id: v.id_hex(),
                vkey: v.vkey(),
                public_key: super::b64(v.key.as_bytes()),
                active: row.retired_at.is_none(),
                created_at: row.created_at,
                retired_at: row.retired_at,
            })
        })
        .collect())
}

/// The verifiers of every key that ever signed checkpoints.
pub async fn verifiers(store: &Store) -> Result<Vec<NoteVerifier>, StoreError> {
    let mut op = store.operator_read().await?;
    let rows = op.audit_signing_keys().await?;
    op.commit().await?;
    Ok(rows.iter().filter_map(public_of).collect())
}

fn new_key(vault: &Vault) -> Result<(StoredAuditKey, Zeroizing<[u8; 32]>), VaultError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut seed[..]);
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let key_id = hex::encode(note::key_id(KEY_NAME, &public));
    // Sealed only with the keyring as it is on disk now (never a stale copy).
    let keyring = vault.durable_keyring()?;
    let wrapped = tenantry_crypto::wrap_secret(&keyring, SEED_PURPOSE, &key_id, &seed)?;
    Ok((
        StoredAuditKey {
            key_id,
            name: KEY_NAME.to_owned(),
            public_key: public.to_vec(),
            sealed_seed: Some((wrapped.kek_id, wrapped.ciphertext)),
            created_at: Utc::now(),
            retired_at: None,
        },
        seed,
    ))
}

fn open_seed(vault: &Vault, row: &StoredAuditKey) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let Some((kek_id, ciphertext)) = &row.sealed_seed else {
        return Err(StoreError::Corrupt(format!(
            "the active audit checkpoint key {} has no sealed seed",
            row.key_id
        ))
        .into());
    };
    let wrapped = WrappedKey {
        kek_id: kek_id.clone(),
        ciphertext: ciphertext.clone(),
    };
    match tenantry_crypto::unwrap_secret(&vault.keyring(), SEED_PURPOSE, &row.key_id, &wrapped) {
        Err(CryptoError::UnknownKek(_)) if vault.reload()? => Ok(tenantry_crypto::unwrap_secret(
            &vault.keyring(),
            SEED_PURPOSE,
            &row.key_id,
            &wrapped,
        )?),
        other => Ok(other?),
    }
}

/// The active signing key, made on first use. Under a lock across server
/// processes, so two nodes starting at once agree on one key; a seed still
/// under an older KEK is moved to the active one on the way.
pub async fn active_signer(
    store: &Store,
    vault: &Vault,
    now: DateTime<Utc>,
) -> Result<Signer, VaultError> {
    // Fast path: an active key under the active KEK, read without the lock.
    let mut op = store.operator_read().await?;
    let rows = op.audit_signing_keys().await?;
    op.commit().await?;
    let active_kek = vault.keyring().active().id().to_owned();
    if let Some(row) = rows.iter().find(|r| r.retired_at.is_none())
        && row
            .sealed_seed
            .as_ref()
            .is_some_and(|(k, _)| *k == active_kek)
    {
        let seed = open_seed(vault, row)?;
        return Ok(Signer {
            key_id: row.key_id.clone(),
            key: SigningKey::from_bytes(&seed),
        });
    }
    let mut op = store.operator_write().await?;
    op.lock_audit_signing_keys().await?;
    let rows = op.audit_signing_keys().await?;
    let signer = match rows.iter().find(|r| r.retired_at.is_none()) {
        Some(row) => {
            let seed = open_seed(vault, row)?;
            let keyring = vault.durable_keyring()?;
            if let Some((kek_id, _)) = &row.sealed_seed
                && kek_id != keyring.active().id()
            {
                let wrapped =
                    tenantry_crypto::wrap_secret(&keyring, SEED_PURPOSE, &row.key_id, &seed)?;
                op.rewrap_audit_signing_key(
                    &row.key_id,
                    kek_id,
                    &wrapped.kek_id,
                    &wrapped.ciphertext,
                )
                .await?;
            }
            Signer {
                key_id: row.key_id.clone(),
                key: SigningKey::from_bytes(&seed),
            }
        }
        None => {
            let (row, seed) = new_key(vault)?;
            op.add_audit_signing_key(&row, now).await?;
            Signer {
                key_id: row.key_id,
                key: SigningKey::from_bytes(&seed),
            }
        }
    };
    op.commit().await?;
    Ok(signer)
}

/// Retires the active key (its public key stays listed and verifying) and
/// makes a new one: a change on the operator path, recorded in the
/// operator's chain by its commit. Returns the new key's id.
pub async fn rotate(
    state: &crate::app::AppState,
    grant: &crate::grant::OperatorGrant,
) -> Result<String, VaultError> {
    let (row, _seed) = new_key(&state.vault)?;
    let mut change = grant.change(state).await?;
    change.tx().lock_audit_signing_keys().await?;
    let previous = change
        .tx()
        .audit_signing_keys()
        .await?
        .into_iter()
        .find(|r| r.retired_at.is_none())
        .map(|r| r.key_id);
    change
        .tx()
        .add_audit_signing_key(&row, state.clock.now())
        .await?;
    change.audit(
        "audit_signing_key.rotated",
        vec![tenantry_core::audit::AuditTarget::new(
            "audit_signing_key",
            row.key_id.clone(),
        )],
        serde_json::json!({"before": {"active_key_id": previous}, "after": {"active_key_id": row.key_id}}),
    );
    change.commit().await?;
    Ok(row.key_id)
}

/// Moves the active key's seed to `keyring`'s active KEK (the rewrap worker
/// calls this with a keyring just read from disk). Returns how many moved.
pub async fn rewrap_seed(
    store: &Store,
    vault: &Vault,
    keyring: &tenantry_crypto::Keyring,
) -> Result<usize, VaultError> {
    let active = keyring.active().id();
    let mut op = store.operator_read().await?;
    let pending = op
        .audit_signing_keys()
        .await?
        .into_iter()
        .any(|r| r.sealed_seed.as_ref().is_some_and(|(k, _)| k != active));
    op.commit().await?;
    if !pending {
        return Ok(0);
    }
    let mut op = store.operator_write().await?;
    op.lock_audit_signing_keys().await?;
    let mut moved = 0;
    for row in op.audit_signing_keys().await? {
        let Some((kek_id, _)) = &row.sealed_seed else {
            continue;
        };
        if kek_id == active {
            continue;
        }
        let seed = match open_seed(vault, &row) {
            Ok(seed) => seed,
            Err(err) => {
                tracing::error!(key_id = %row.key_id, kek_id, error = %err, "cannot rewrap the audit checkpoint key");
                continue;
            }
        };
        let wrapped = tenantry_crypto::wrap_secret(keyring, SEED_PURPOSE, &row.key_id, &seed)?;
        if op
            .rewrap_audit_signing_key(&row.key_id, kek_id, &wrapped.kek_id, &wrapped.ciphertext)
            .await?
        {
            moved += 1;
        }
    }
    op.commit().await?;
    Ok(moved)
}
