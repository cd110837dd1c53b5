//! Publishes a signed checkpoint of every audit chain each
//! `audit_checkpoint_interval` (also of chains with no new entries), then
//! applies audit retention. Safe with several server processes: a chain has
//! at most one checkpoint per interval slot (the first process to write it
//! wins; the others' inserts do nothing).

use crate::app::AppState;
use tokio::sync::watch;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = state.config.audit_checkpoint_interval;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        if let Err(err) = pass(&state).await {
            tracing::warn!(error = %err, "audit checkpoint pass failed; will retry");
        }
    }
}

/// One pass: checkpoints for the current slot, then retention.
pub async fn pass(state: &AppState) -> anyhow::Result<()> {
    let now = state.clock.now();
    let made = crate::audit::publish_checkpoints(
        &state.store,
        &state.vault,
        now,
        state.config.audit_checkpoint_interval,
    )
    .await?;
    tracing::debug!(made, "audit checkpoints published");
    let removed = crate::audit::retention::prune_all(state).await?;
    if removed > 0 {
        tracing::info!(removed, "audit entries past their retention pruned");
    }
    Ok(())
}
