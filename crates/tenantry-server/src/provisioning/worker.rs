//! The provisioning worker: every `provisioning_poll_interval` (or at once
//! when a workflow is started on this node) it leases the workflows that
//! are due, and drives each, step after step, until it completes, fails,
//! waits for its next attempt, or its lease is lost. A node that dies
//! holding a lease (kill -9) only delays the workflow until the lease
//! expires; the next node resumes it from the step that was running.

use super::steps::{self, Failure, duration_ms};
use super::{Workflow, WorkflowStatus, millis};
use crate::app::AppState;
use crate::grant::OperatorGrant;
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};

/// Workflows one node drives at the same time.
const CONCURRENCY: usize = 64;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(state.config.provisioning_poll_interval) => {}
            _ = state.provisioning.wake.notified() => {}
        }
        if *stop.borrow() {
            return;
        }
        // Lease as many as there are free slots, again while there are.
        loop {
            let free = slots.available_permits();
            if free == 0 {
                break;
            }
            let ids = match lease(&state, free).await {
                Ok(ids) => ids,
                // An outage is reported by the request path and /readyz;
                // the worker just tries again at its next poll.
                Err(e) if e.is_unavailable() => {
                    tracing::debug!(error = %e, "provisioning: database unavailable; not leasing");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "provisioning: could not lease workflows");
                    break;
                }
            };
            let leased = ids.len();
            for id in ids {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    drive(&state, &id).await;
                    drop(permit);
                });
            }
            if leased < free {
                break;
            }
        }
    }
}

async fn lease(state: &AppState, limit: usize) -> Result<Vec<String>, tenantry_store::StoreError> {
    #[allow(clippy::disallowed_methods)] // system grant: the worker's own bookkeeping
    let grant = OperatorGrant::system(steps::WORKER);
    let now = millis(state.clock.now());
    let mut read = grant.read(state).await?;
    let due = read.any_workflow_due(now).await?;
    read.commit().await?;
    if !due {
        return Ok(Vec::new());
    }
    #[allow(clippy::disallowed_methods)] // leases: nobody's change
    let mut tx = grant.untracked_write(state).await?;
    let until = now + duration_ms(state.config.provisioning_lease);
    let ids = tx
        .lease_workflows(
            &state.provisioning.node,
            now,
            until,
            u32::try_from(limit).unwrap_or(u32::MAX),
        )
        .await?;
    tx.commit().await?;
    Ok(ids)
}

async fn load(state: &AppState, id: &str) -> Result<Option<Workflow>, tenantry_store::StoreError> {
    #[allow(clippy::disallowed_methods)] // system grant: the worker reads the workflow it leased
    let grant = OperatorGrant::system(steps::WORKER);
    let mut tx = grant.read(state).await?;
    let row = tx.get_workflow(id).await?;
    tx.commit().await?;
    row.map(Workflow::from_row).transpose()
}

/// Runs one leased workflow as far as it goes now.
pub async fn drive(state: &AppState, id: &str) {
    let mut retry_at = None;
    loop {
        let wf = match load(state, id).await {
            Ok(Some(wf)) => wf,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(workflow_id = %id, error = %e, "provisioning: could not load the workflow");
                break;
            }
        };
        if wf.lease_owner.as_deref() != Some(state.provisioning.node.as_str()) {
            return;
        }
        let outcome = match wf.status {
            WorkflowStatus::Pending | WorkflowStatus::Running => {
                let Some(step) = wf.next_step() else { break };
                match steps::mark_attempt(state, id, step).await {
                    Ok(Some(wf)) => match steps::run(state, &wf, step).await {
                        Ok(()) => Ok(true),
                        Err(Failure::Step(error, asked)) => {
                            steps::record_failure(state, &wf, step, error, asked)
                                .await
                                .map(|stop| !stop)
                        }
                        Err(other) => Err(other),
                    },
                    Ok(None) => break,
                    Err(e) => Err(Failure::Store(e)),
                }
            }
            WorkflowStatus::Compensating => steps::compensate_next(state, &wf).await,
            _ => return,
        };
        match outcome {
            Ok(true) => continue,
            Ok(false) => return,
            Err(Failure::Lost) => break,
            Err(Failure::Step(error, _)) => {
                tracing::warn!(workflow_id = %id, code = %error.code, "provisioning: compensation failed; trying again later");
                retry_at = Some(steps::backoff(state, 3, None));
                break;
            }
            Err(Failure::Store(e)) => {
                tracing::warn!(workflow_id = %id, error = %e, "provisioning: database error; trying again later");
                retry_at = Some(steps::backoff(state, 3, None));
                break;
            }
        }
    }
    let next = retry_at.map(|wait| millis(state.clock.now()) + duration_ms(wait));
    if let Err(e) = steps::release(state, id, next).await {
        tracing::warn!(workflow_id = %id, error = %e, "provisioning: could not give the lease up");
    }
}
