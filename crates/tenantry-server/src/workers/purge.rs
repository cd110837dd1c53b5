//! Purges soft-deleted tenants once their grace period has ended: every row
//! of the tenant, in every tenant-scoped table.

use crate::app::AppState;
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
    #[allow(clippy::disallowed_methods)] // system grant: the purge worker
    let worker = crate::grant::OperatorGrant::system("purge");
    let mut op = worker.read(state).await?;
    let due = op.tenants_due_for_purge(cutoff).await?;
    op.commit().await?;
    let mut purged = 0;
    for id in due {
        let grant = worker.on_tenant(id);
        if crate::tenancy::purge_if_due(state, &grant, cutoff).await? {
            tracing::info!(tenant_id = %grant.tenant(), "tenant purged after its grace period");
            purged += 1;
        }
    }
    Ok(purged)
}
