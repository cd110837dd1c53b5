//! The audit log's tamper evidence: signed checkpoints of every chain
//! (published on a schedule by `workers::audit`), the keys that sign them,
//! verification (of the stored chains, and of an export with no database),
//! export, and retention.
//!
//! A checkpoint is a C2SP signed note whose text is a tlog-checkpoint body:
//!
//! ```text
//! tenantry.audit/tenant/acme         (origin: tenantry.audit/operator for the operator chain)
//! 42                                 (size: the chain's first 42 entries)
//! 3q2+7w…=                           (base64 of the 32-byte hash of entry 42)
//! time 2026-12-01T14:00:00Z          (extension: when it was signed)
//!
//! — tenantry.audit AbCd…             (key id || Ed25519 signature)
//! ```
#![allow(clippy::disallowed_methods)] // The audit log's own bookkeeping (checkpoints, their key, retention, verification and export reads), run by the worker and the CLI on the server's authority and by handlers after their grant check; it records no change. Key rotation goes through the change path.

pub mod export;
pub mod keys;
pub mod retention;
pub mod verify;

use crate::vault::{Vault, VaultError};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use tenantry_core::TenantId;
use tenantry_core::audit::{AuditEntry, Chain, GENESIS_HASH};
use tenantry_crypto::note::Checkpoint;
use tenantry_store::{
    AuditHead, OperatorChain, OperatorTx, Store, StoreError, StoredCheckpoint, TenantTx,
};

/// The origin line of a chain's checkpoints.
pub fn origin(chain: &Chain) -> String {
    match chain {
        Chain::Tenant(id) => format!("tenantry.audit/tenant/{id}"),
        Chain::Operator => "tenantry.audit/operator".to_owned(),
    }
}

/// A chain's name in reports and exports: the tenant id, or `operator`.
pub fn chain_name(chain: &Chain) -> String {
    match chain {
        Chain::Tenant(id) => id.to_string(),
        Chain::Operator => "operator".to_owned(),
    }
}

/// The chain an origin line names.
pub fn chain_of_origin(origin: &str) -> Option<Chain> {
    if origin == "tenantry.audit/operator" {
        return Some(Chain::Operator);
    }
    let id = origin.strip_prefix("tenantry.audit/tenant/")?;
    TenantId::parse(id).ok().map(Chain::Tenant)
}

/// A transaction on one chain: the tenant's own for a tenant chain, the
/// operator path for the operator chain.
pub enum ChainTx {
    Tenant(TenantTx),
    Operator(OperatorTx),
}

impl ChainTx {
    pub async fn read(store: &Store, chain: &Chain) -> Result<ChainTx, StoreError> {
        Ok(match chain {
            Chain::Tenant(id) => ChainTx::Tenant(store.tenant_read(id).await?),
            Chain::Operator => ChainTx::Operator(store.operator_read().await?),
        })
    }

    pub async fn write(store: &Store, chain: &Chain) -> Result<ChainTx, StoreError> {
        Ok(match chain {
            Chain::Tenant(id) => ChainTx::Tenant(store.tenant_write(id).await?),
            Chain::Operator => ChainTx::Operator(store.operator_write().await?),
        })
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.commit().await,
            ChainTx::Operator(tx) => tx.commit().await,
        }
    }

    pub async fn head(&mut self) -> Result<Option<AuditHead>, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.audit_head().await,
            ChainTx::Operator(tx) => tx.audit_head(&Chain::Operator).await,
        }
    }

    pub async fn range(&mut self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.audit_range(after, limit).await,
            ChainTx::Operator(tx) => tx.audit_range(&Chain::Operator, after, limit).await,
        }
    }

    pub async fn list(
        &mut self,
        filter: &tenantry_store::AuditFilter,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.audit_list(filter, before, limit).await,
            ChainTx::Operator(tx) => tx.audit_list(&Chain::Operator, filter, before, limit).await,
        }
    }

    pub async fn span(
        &mut self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.audit_sequence_span(from, to).await,
            ChainTx::Operator(tx) => tx.audit_sequence_span(&Chain::Operator, from, to).await,
        }
    }

    pub async fn checkpoints_by_size(
        &mut self,
        after: Option<(u64, i64)>,
        min_size: u64,
        max_size: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        match self {
            ChainTx::Tenant(tx) => {
                tx.audit_checkpoints_by_size(after, min_size, max_size, limit)
                    .await
            }
            ChainTx::Operator(tx) => {
                tx.audit_checkpoints_by_size(&Chain::Operator, after, min_size, max_size, limit)
                    .await
            }
        }
    }

    pub async fn checkpoints(
        &mut self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.audit_checkpoints(before, limit).await,
            ChainTx::Operator(tx) => tx.audit_checkpoints(&Chain::Operator, before, limit).await,
        }
    }

    pub async fn lock_chain(&mut self) -> Result<AuditHead, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.lock_audit_chain().await,
            ChainTx::Operator(tx) => OperatorChain(tx).lock_audit_chain().await,
        }
    }

    pub async fn insert_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<bool, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.insert_audit_checkpoint(cp).await,
            ChainTx::Operator(tx) => OperatorChain(tx).insert_audit_checkpoint(cp).await,
        }
    }

    pub async fn last_before(&mut self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.audit_last_before(cutoff).await,
            ChainTx::Operator(tx) => OperatorChain(tx).audit_last_before(cutoff).await,
        }
    }

    pub async fn entry_at(&mut self, sequence: u64) -> Result<Option<AuditEntry>, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.audit_entry_at(sequence).await,
            ChainTx::Operator(tx) => OperatorChain(tx).audit_entry_at(sequence).await,
        }
    }

    pub async fn checkpoint_at_most(
        &mut self,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.audit_checkpoint_at_most(size).await,
            ChainTx::Operator(tx) => OperatorChain(tx).audit_checkpoint_at_most(size).await,
        }
    }

    pub async fn prune(&mut self, through: u64, hash: &str) -> Result<u64, StoreError> {
        match self {
            ChainTx::Tenant(tx) => tx.prune_audit(through, hash).await,
            ChainTx::Operator(tx) => OperatorChain(tx).prune_audit(through, hash).await,
        }
    }
}

/// Every chain: each tenant's, then the operator's.
pub async fn chains(store: &Store) -> Result<Vec<Chain>, StoreError> {
    let mut op = store.operator_read().await?;
    let tenants = op.audit_tenant_chains().await?;
    op.commit().await?;
    let mut chains: Vec<Chain> = tenants.into_iter().map(Chain::Tenant).collect();
    chains.push(Chain::Operator);
    Ok(chains)
}

/// The 32 bytes of a hex hash (the genesis hash for anything malformed, which
/// then fails verification rather than crashing).
pub fn hash_bytes(hex_hash: &str) -> [u8; 32] {
    hex::decode(hex_hash)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .unwrap_or([0; 32])
}

/// The time slot of `now` for checkpoints published every `interval`.
pub fn slot(now: DateTime<Utc>, interval: std::time::Duration) -> i64 {
    let every = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    now.timestamp_millis().div_euclid(every)
}

/// Publishes one checkpoint of every chain for the slot of `now`, also for
/// chains with no new entries (a verifier proves completeness from regular
/// checkpoints). Each chain's checkpoint is written with its head locked, so
/// it commits to exactly the chain as it is; a slot that already has one
/// (another server process was first) keeps it. Returns how many were made.
pub async fn publish_checkpoints(
    store: &Store,
    vault: &Vault,
    now: DateTime<Utc>,
    interval: std::time::Duration,
) -> Result<usize, VaultError> {
    let signer = keys::active_signer(store, vault, now).await?;
    let slot = slot(now, interval);
    let mut made = 0;
    for chain in chains(store).await? {
        let mut tx = ChainTx::write(store, &chain).await?;
        let head = tx.lock_chain().await?;
        let body = Checkpoint {
            origin: origin(&chain),
            size: head.size,
            hash: hash_bytes(&head.head_hash),
            extensions: vec![format!(
                "time {}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )],
        };
        let note = signer.sign(&body.to_text())?;
        let cp = StoredCheckpoint {
            slot,
            size: head.size,
            head_hash: head.head_hash.clone(),
            created_at: now,
            key_id: signer.key_id.clone(),
            note,
        };
        if tx.insert_checkpoint(&cp).await? {
            made += 1;
        }
        tx.commit().await?;
    }
    Ok(made)
}

/// The hash a chain of `size` entries ends in, when it has none.
pub fn empty_hash() -> &'static str {
    GENESIS_HASH
}

/// Standard base64, as in notes and vkeys.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
