//! Writes keys' last-used times in batches, so that verifying a key costs no
//! database write. Runs every `key_usage_flush_interval`, and once more at
//! shutdown. Last-used times are bookkeeping, not a change anyone made:
//! they are written untracked (no event, no audit entry).

use crate::app::AppState;
use crate::grant::{OperatorGrant, TenantGrant};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(state.config.key_usage_flush_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = interval.tick() => false,
            _ = stop.wait_for(|stop| *stop) => true,
        };
        if let Err(err) = flush(&state).await {
            tracing::warn!(error = %err, "could not record key usage; will retry");
        }
        if stopping {
            break;
        }
    }
}

/// Writes the last-used times recorded since the last flush. What a failed
/// write could not record is put back for the next flush, not dropped.
pub async fn flush(state: &AppState) -> Result<(), tenantry_store::StoreError> {
    let (by_tenant, operator_keys) = state.key_usage.take();
    // Few transactions however many tenants: one per 500 tenants, re-scoped
    // (RLS context included) to each tenant in turn.
    let tenants: Vec<_> = by_tenant.into_iter().collect();
    let mut unwritten = tenants.as_slice();
    while !unwritten.is_empty() {
        let (chunk, rest) = unwritten.split_at(unwritten.len().min(500));
        if let Err(err) = write_tenant_keys(state, chunk).await {
            state.key_usage.restore(unwritten, &operator_keys);
            return Err(err);
        }
        unwritten = rest;
    }
    if !operator_keys.is_empty()
        && let Err(err) = write_operator_keys(state, &operator_keys).await
    {
        state.key_usage.restore(&[], &operator_keys);
        return Err(err);
    }
    Ok(())
}

async fn write_tenant_keys(
    state: &AppState,
    chunk: &[crate::resolution::keys::TenantUsage],
) -> Result<(), tenantry_store::StoreError> {
    let Some((first, _)) = chunk.first() else {
        return Ok(());
    };
    #[allow(clippy::disallowed_methods)] // system grant, untracked write: last-used bookkeeping
    let mut tx = TenantGrant::system(first.clone(), "key-usage")
        .untracked_write(state)
        .await?;
    for (tenant, used) in chunk {
        // One transaction for many tenants' bookkeeping (re-scoped, RLS
        // context included, to each in turn) rather than one per tenant.
        #[allow(clippy::disallowed_methods)] // untracked write re-scoped: records nothing
        let next = tx.rescope(tenant, state.store.request_role()).await?;
        tx = next;
        tx.touch_keys(used).await?;
    }
    tx.commit().await
}

async fn write_operator_keys(
    state: &AppState,
    used: &[(String, DateTime<Utc>)],
) -> Result<(), tenantry_store::StoreError> {
    #[allow(clippy::disallowed_methods)] // system grant, untracked write: last-used bookkeeping
    let mut op = OperatorGrant::system("key-usage")
        .untracked_write(state)
        .await?;
    op.touch_operator_keys(used).await?;
    op.commit().await
}
