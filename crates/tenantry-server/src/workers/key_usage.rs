//! Writes keys' last-used times in batches, so that verifying a key costs no
//! database write. Runs every `key_usage_flush_interval`, and once more at
//! shutdown.
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use crate::app::AppState;
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
    let mut tx = state.store.tenant_write(first).await?;
    for (tenant, used) in chunk {
        tx = tx.rescope(tenant, state.store.request_role()).await?;
        tx.touch_keys(used).await?;
    }
    tx.commit().await
}

async fn write_operator_keys(
    state: &AppState,
    used: &[(String, DateTime<Utc>)],
) -> Result<(), tenantry_store::StoreError> {
    let mut op = state.store.operator_write().await?;
    op.touch_operator_keys(used).await?;
    op.commit().await
}
