//! Retention: entries older than a chain's retention are removed, but only
//! up to a sequence a signed checkpoint covers. The head row records that
//! checkpoint's size and hash as the chain's anchor (`pruned_through`,
//! `pruned_hash`), the checkpoint itself is kept, and verification starts
//! from it, so the remainder still verifies.
#![allow(clippy::disallowed_methods)] // The audit log's own bookkeeping (checkpoints, their key, retention, verification and export reads), run by the worker and the CLI on the server's authority and by handlers after their grant check; it records no change. Key rotation goes through the change path.

use super::ChainTx;
use crate::app::AppState;
use chrono::{DateTime, Utc};
use tenantry_core::audit::Chain;
use tenantry_store::{Store, StoreError};

/// Prunes one chain to keep `days` days of entries (0: keep everything).
/// Returns how many entries were removed.
pub async fn prune_chain(
    store: &Store,
    chain: &Chain,
    days: i64,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if days <= 0 {
        return Ok(0);
    }
    let Some(cutoff) = now.checked_sub_signed(chrono::Duration::days(days)) else {
        return Ok(0);
    };
    let mut tx = ChainTx::write(store, chain).await?;
    let head = tx.lock_chain().await?;
    let expired = tx.last_before(cutoff).await?;
    if expired <= head.pruned_through {
        tx.commit().await?;
        return Ok(0);
    }
    // The newest checkpoint within the expired prefix, whose hash must be
    // the stored entry's: the anchor is only ever a vouched-for point.
    let Some(cp) = tx.checkpoint_at_most(expired).await? else {
        tx.commit().await?;
        return Ok(0);
    };
    if cp.size <= head.pruned_through {
        tx.commit().await?;
        return Ok(0);
    }
    let Some(entry) = tx.entry_at(cp.size).await? else {
        tx.commit().await?;
        return Ok(0);
    };
    if entry.hash != cp.head_hash || entry.compute_hash() != entry.hash {
        tracing::warn!(chain = %super::chain_name(chain), size = cp.size,
            "audit retention: the checkpoint does not match the stored entry; not pruning (run tenantry audit verify)");
        tx.commit().await?;
        return Ok(0);
    }
    let removed = tx.prune(cp.size, &cp.head_hash).await?;
    tx.commit().await?;
    Ok(removed)
}

/// One pass over every chain: each tenant's retention from its
/// configuration (`retention_policy.audit_retention_days`), else the
/// operator default (`TENANTRY_AUDIT_RETENTION_DAYS`).
pub async fn prune_all(state: &AppState) -> Result<u64, StoreError> {
    let now = state.clock.now();
    let default_days = i64::from(state.config.audit_retention_days);
    let mut removed = 0;
    for chain in super::chains(&state.store).await? {
        let days = match &chain {
            Chain::Tenant(id) => match crate::limits::service::effective_config_of(state, id).await
            {
                Ok(config) => config.audit_retention_days().unwrap_or(default_days),
                // Purged meanwhile: its chain went with it.
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e),
            },
            Chain::Operator => default_days,
        };
        removed += prune_chain(&state.store, &chain, days, now).await?;
    }
    Ok(removed)
}
