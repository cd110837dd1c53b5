//! Background workers. Each stops when the shutdown channel says so.

pub mod audit;
pub mod idempotency;
pub mod invalidation;
pub mod key_usage;
pub mod purge;
pub mod rewrap;

use crate::app::AppState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub fn spawn_all(state: &AppState, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(purge::run(state.clone(), stop.clone())),
        tokio::spawn(key_usage::run(state.clone(), stop.clone())),
        tokio::spawn(rewrap::run(state.clone(), stop.clone())),
        tokio::spawn(audit::run(state.clone(), stop.clone())),
        tokio::spawn(idempotency::run(state.clone(), stop.clone())),
        tokio::spawn(crate::provisioning::worker::run(
            state.clone(),
            stop.clone(),
        )),
        tokio::spawn(crate::webhooks::delivery::run(state.clone(), stop.clone())),
        tokio::spawn(crate::changes::close_on_stop(
            state.changes.clone(),
            stop.clone(),
        )),
        tokio::spawn(crate::tenancy::regions::run(state.clone(), stop.clone())),
        tokio::spawn(crate::limits::leases::run(state.clone(), stop.clone())),
        tokio::spawn(invalidation::run(state.clone(), stop)),
    ]
}
