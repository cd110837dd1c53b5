//! Where secrets are sealed: the key-encryption keyring (KEKs, kept outside
//! the database), each tenant's data key (DEK, stored only wrapped by a KEK),
//! and sealing/opening of credential fields and settings with the DEK.
//!
//! Cipher and envelope format live in the `tenantry-crypto` crate; this
//! module decides which key to use and where keys come from.

pub mod credentials;
mod keyring_file;
pub mod rotation;
pub mod seal;
pub mod settings;

use crate::config::Config;
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tenantry_core::TenantId;
use tenantry_crypto::{CryptoError, DataKey, Keyring, WrappedKey};
use tenantry_store::{StoreError, StoredDataKey, TenantTx};

pub const MASTER_KEY_FILE: &str = "master.key";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the data key {0} of this tenant does not exist (crypto-shredded or never made)")]
    MissingDataKey(String),
    #[error(
        "the keyring comes from TENANTRY_MASTER_KEY and cannot be changed by the server; use TENANTRY_MASTER_KEY_FILE"
    )]
    ReadOnlyKeyring,
    /// The keyring could not be changed on disk (nothing was activated).
    #[error("cannot write the keyring: {0}")]
    KeyringWrite(String),
    /// The keyring file could not be read.
    #[error("cannot read the keyring: {0}")]
    KeyringRead(String),
}

/// What a token-signing seed is sealed for (part of its associated data).
pub const SIGNING_SEED: &str = "signing-key";

/// Where the keyring came from, which decides whether the server may write it.
#[derive(Debug, Clone)]
enum Source {
    /// `TENANTRY_MASTER_KEY`: read-only.
    Environment,
    /// `TENANTRY_MASTER_KEY_FILE`, or `<data dir>/master.key` in embedded mode.
    File(PathBuf),
}

pub struct Vault {
    keyring: RwLock<Arc<Keyring>>,
    source: Source,
    /// Unwrapped data keys, by (tenant, DEK id). Cleared with the other
    /// caches on purge, so a shredded key does not live on in memory.
    pub deks: moka::sync::Cache<(TenantId, String), Arc<DataKey>>,
    /// Wakes the rewrap worker after a rotation.
    pub rewrap_now: tokio::sync::Notify,
    /// One rotation at a time in this process (the file lock serializes
    /// processes).
    rotating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("keyring", &self.keyring())
            .field("source", &self.source)
            .finish()
    }
}

impl Vault {
    /// Loads the keyring the configuration names. In embedded (SQLite) mode
    /// with none configured, the first start generates one into
    /// `<data dir>/master.key`; with PostgreSQL a key must be given.
    pub fn load(config: &Config) -> anyhow::Result<Vault> {
        let (keyring, source) = match (&config.master_key, &config.master_key_file) {
            (Some(text), Some(path)) => (
                Keyring::parse(text.expose()).context("TENANTRY_MASTER_KEY_FILE")?,
                Source::File(path.clone()),
            ),
            (Some(text), None) => (
                Keyring::parse(text.expose()).context("TENANTRY_MASTER_KEY")?,
                Source::Environment,
            ),
            (None, _) if config.database_url.is_some() => bail!(
                "refusing to start: with PostgreSQL a master key must be given (TENANTRY_MASTER_KEY or \
                 TENANTRY_MASTER_KEY_FILE: base64 256-bit keys, one per line); several servers must share it, \
                 so it is never generated in this mode"
            ),
            (None, _) => {
                let path = config.data_dir.join(MASTER_KEY_FILE);
                tenantry_store::private_dir(&config.data_dir)
                    .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
                let (keyring, generated) = keyring_file::load_or_generate(&path)
                    .with_context(|| format!("{}", path.display()))?;
                tenantry_store::tighten_file(&path)
                    .with_context(|| format!("{}", path.display()))?;
                if generated {
                    let warning = format!(
                        "generated a new master key in {} — BACK IT UP: without it no credential \
                         stored by this server can ever be decrypted",
                        path.display()
                    );
                    eprintln!("\n  !!! {warning}\n");
                    tracing::warn!("{warning}");
                }
                (keyring, Source::File(path))
            }
        };
        tracing::info!(
            active_kek = keyring.active().id(),
            keks = keyring.ids().len(),
            "keyring loaded"
        );
        Ok(Vault {
            keyring: RwLock::new(Arc::new(keyring)),
            source,
            deks: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
            rewrap_now: tokio::sync::Notify::new(),
            rotating: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether the server may write the keyring (it came from a file).
    pub fn writable(&self) -> bool {
        matches!(self.source, Source::File(_))
    }

    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_keyring(&self, keyring: Keyring) {
        *self.keyring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keyring);
    }

    /// Re-reads a file keyring (another process may have rotated it).
    /// Returns whether it changed. The file is the truth: keys an operator
    /// removed from it are dropped from memory too.
    pub fn reload(&self) -> Result<bool, VaultError> {
        let Source::File(path) = &self.source else {
            return Ok(false);
        };
        let fresh = keyring_file::read(path)?;
        let changed = fresh.ids() != self.keyring().ids();
        if changed {
            tracing::info!(active_kek = fresh.active().id(), "keyring reloaded");
            self.set_keyring(fresh);
        }
        Ok(changed)
    }

    /// The keyring to wrap with: for a keyring file, as read from disk now,
    /// so nothing is ever wrapped by a key that is not durably in the file
    /// (another process may have rotated it, an operator may have edited it).
    pub fn durable_keyring(&self) -> Result<Arc<Keyring>, VaultError> {
        self.reload()?;
        Ok(self.keyring())
    }

    /// Activates a new KEK: added to the keyring file under its lock (the
    /// old keys kept after it, starting from the file as it is on disk),
    /// read back and checked, and only then used for new wraps; the rewrap
    /// worker moves existing data keys to it. Returns the new KEK's id and
    /// the one it replaced as active.
    pub async fn rotate(&self) -> Result<(String, Option<String>), VaultError> {
        let Source::File(path) = &self.source else {
            return Err(VaultError::ReadOnlyKeyring);
        };
        let _in_process = self.rotating.lock().await;
        let path = path.clone();
        let keyring = tokio::task::spawn_blocking(move || keyring_file::rotate(&path))
            .await
            .map_err(|e| VaultError::KeyringWrite(format!("the rotation did not finish: {e}")))??;
        let id = keyring.active().id().to_owned();
        let previous = keyring.ids().get(1).cloned();
        self.set_keyring(keyring);
        self.rewrap_now.notify_one();
        Ok((id, previous))
    }

    /// Seals a token-signing seed under the durable keyring's active KEK.
    pub fn wrap_signing_seed(&self, kid: &str, seed: &[u8; 32]) -> Result<WrappedKey, VaultError> {
        let keyring = self.durable_keyring()?;
        Ok(tenantry_crypto::wrap_secret(
            &keyring,
            SIGNING_SEED,
            kid,
            seed,
        )?)
    }

    /// Opens a sealed token-signing seed, re-reading the keyring once if
    /// its KEK is unknown.
    pub fn unwrap_signing_seed(
        &self,
        kid: &str,
        wrapped: &WrappedKey,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, VaultError> {
        match tenantry_crypto::unwrap_secret(&self.keyring(), SIGNING_SEED, kid, wrapped) {
            Err(CryptoError::UnknownKek(_)) if self.reload()? => Ok(
                tenantry_crypto::unwrap_secret(&self.keyring(), SIGNING_SEED, kid, wrapped)?,
            ),
            other => Ok(other?),
        }
    }

    /// Unwraps a stored data key, re-reading the keyring once if its KEK is
    /// unknown (another process may have rotated it).
    pub fn unwrap(&self, tenant: &TenantId, stored: &StoredDataKey) -> Result<DataKey, VaultError> {
        let wrapped = WrappedKey {
            kek_id: stored.kek_id.clone(),
            ciphertext: stored.wrapped.clone(),
        };
        match tenantry_crypto::unwrap(&self.keyring(), tenant.as_str(), &stored.id, &wrapped) {
            Err(CryptoError::UnknownKek(_)) if self.reload()? => Ok(tenantry_crypto::unwrap(
                &self.keyring(),
                tenant.as_str(),
                &stored.id,
                &wrapped,
            )?),
            other => Ok(other?),
        }
    }

    /// The tenant's active data key, made (and stored wrapped) on first use.
    pub async fn active_dek(
        &self,
        tx: &mut TenantTx,
        now: DateTime<Utc>,
    ) -> Result<Arc<DataKey>, VaultError> {
        let tenant = tx.tenant_id().clone();
        let keys = tx.data_keys().await?;
        if let Some(active) = keys.iter().find(|k| k.active) {
            return self.cached(&tenant, active);
        }
        self.new_dek(tx, now).await
    }

    /// Makes a new active data key for the tenant (the previous one stays
    /// until re-encryption deletes it).
    pub async fn new_dek(
        &self,
        tx: &mut TenantTx,
        now: DateTime<Utc>,
    ) -> Result<Arc<DataKey>, VaultError> {
        let tenant = tx.tenant_id().clone();
        let dek = DataKey::generate(tenantry_core::ids::prefixed_id("dek", rand::random()));
        let wrapped = tenantry_crypto::wrap(&*self.durable_keyring()?, tenant.as_str(), &dek)?;
        tx.insert_data_key(&StoredDataKey {
            id: dek.id().to_owned(),
            kek_id: wrapped.kek_id,
            wrapped: wrapped.ciphertext,
            active: true,
            created_at: now,
        })
        .await?;
        let dek = Arc::new(dek);
        self.deks.insert((tenant, dek.id().to_owned()), dek.clone());
        Ok(dek)
    }

    fn cached(
        &self,
        tenant: &TenantId,
        stored: &StoredDataKey,
    ) -> Result<Arc<DataKey>, VaultError> {
        let cache_key = (tenant.clone(), stored.id.clone());
        if let Some(dek) = self.deks.get(&cache_key) {
            return Ok(dek);
        }
        let dek = Arc::new(self.unwrap(tenant, stored)?);
        self.deks.insert(cache_key, dek.clone());
        Ok(dek)
    }

    /// The data key with this id, for opening an envelope.
    pub async fn dek(&self, tx: &mut TenantTx, dek_id: &str) -> Result<Arc<DataKey>, VaultError> {
        let tenant = tx.tenant_id().clone();
        if let Some(dek) = self.deks.get(&(tenant.clone(), dek_id.to_owned())) {
            return Ok(dek);
        }
        let keys = tx.data_keys().await?;
        let stored = keys
            .iter()
            .find(|k| k.id == dek_id)
            .ok_or_else(|| VaultError::MissingDataKey(dek_id.to_owned()))?;
        self.cached(&tenant, stored)
    }
}

/// The data keys that open a set of envelopes, loaded once (through the
/// vault's cache) from the tenant's own transaction, so opening is then
/// pure computation: every reveal and every re-encryption opens with this.
pub struct DataKeys(HashMap<String, Arc<DataKey>>);

impl DataKeys {
    /// The keys named by `envelopes`; an envelope whose key is gone (the
    /// tenant was crypto-shredded) fails here.
    pub async fn for_envelopes(
        vault: &Vault,
        tx: &mut TenantTx,
        envelopes: &[&str],
    ) -> Result<DataKeys, VaultError> {
        let mut keys = HashMap::new();
        for envelope in envelopes {
            let dek_id = tenantry_crypto::envelope_dek_id(envelope)?;
            if !keys.contains_key(dek_id) {
                let dek = vault.dek(tx, dek_id).await?;
                keys.insert(dek_id.to_owned(), dek);
            }
        }
        Ok(DataKeys(keys))
    }

    /// Opens one envelope with the key it names.
    pub fn open(
        &self,
        binding: &tenantry_crypto::Binding<'_>,
        envelope: &str,
    ) -> Result<serde_json::Value, VaultError> {
        let dek_id = tenantry_crypto::envelope_dek_id(envelope)?;
        let dek = self
            .0
            .get(dek_id)
            .ok_or_else(|| VaultError::MissingDataKey(dek_id.to_owned()))?;
        seal::open_value(dek, binding, envelope)
    }
}
