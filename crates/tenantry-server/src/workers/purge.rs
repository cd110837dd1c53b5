//! Purges soft-deleted tenants once their grace period has ended: every row
//! of the tenant, in every tenant-scoped table.

use crate::app::AppState;
use tenantry_core::tenant::TenantStatus;
use tenantry_store::StoreError;
use tokio::sync::watch;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(state.config.purge_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        match purge_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "purged tenants past their grace period"),
            Err(err) => tracing::warn!(error = %err, "purge pass failed; will retry"),
        }
    }
}

/// One pass: purges every tenant whose grace period is over.
pub async fn purge_due(state: &AppState) -> Result<usize, StoreError> {
    let grace = chrono::Duration::from_std(state.config.deletion_grace_period)
        .unwrap_or(chrono::Duration::MAX);
    let Some(cutoff) = state.clock.now().checked_sub_signed(grace) else {
        return Ok(0);
    };
    let mut op = state.store.operator_read().await?;
    let due = op.tenants_due_for_purge(cutoff).await?;
    op.commit().await?;
    let mut purged = 0;
    for id in due {
        let mut tx = state.store.tenant_write(&id).await?;
        // Re-check under the lock: the tenant may have been restored since.
        let tenant = match tx.tenant_for_update().await {
            Ok(t) => t,
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(e),
        };
        if tenant.status == TenantStatus::Deleted
            && tenant.deleted_at.is_some_and(|at| at <= cutoff)
        {
            crate::api::tenants::purge(state, tx).await?;
            tracing::info!(tenant_id = %id, "tenant purged after its grace period");
            purged += 1;
        }
    }
    Ok(purged)
}
