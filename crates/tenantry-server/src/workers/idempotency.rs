//! Prunes expired idempotency keys (tenants' and operators'), on the purge
//! worker's interval. Expired keys are already ignored by requests; this
//! only reclaims their rows.

use crate::app::AppState;
use tenantry_store::StoreError;
use tokio::sync::watch;

/// Tenants handled per pass at most (the next pass takes the rest).
const TENANTS_PER_PASS: i64 = 500;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(state.config.purge_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        match prune_expired(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "pruned expired idempotency keys"),
            Err(err) => tracing::warn!(error = %err, "idempotency key pruning failed; will retry"),
        }
    }
}

/// One pass: deletes every expired key of the operators and of up to
/// [`TENANTS_PER_PASS`] tenants. Returns how many rows went.
// Pruning expired idempotency records is bookkeeping: a system grant and
// untracked writes.
#[allow(clippy::disallowed_methods)]
pub async fn prune_expired(state: &AppState) -> Result<u64, StoreError> {
    use crate::grant::{OperatorGrant, TenantGrant};
    let now = state.clock.now().timestamp_millis();
    let mut op = OperatorGrant::system("idempotency-pruner")
        .untracked_write(state)
        .await?;
    let mut pruned = op.idempotency_prune(now).await?;
    let tenants = op
        .tenants_with_expired_idempotency_keys(now, TENANTS_PER_PASS)
        .await?;
    op.commit().await?;
    for tenant in tenants {
        let mut tx = TenantGrant::system(tenant, "idempotency-pruner")
            .untracked_write(state)
            .await?;
        pruned += tx.idempotency_prune(now).await?;
        tx.commit().await?;
    }
    Ok(pruned)
}
