//! Receives cache invalidations from other server processes (PostgreSQL
//! LISTEN/NOTIFY) and applies them here. If the connection drops, messages
//! may have been missed: everything cached is dropped once listening again.
//!
//! Any database user can NOTIFY this channel, so only messages signed with
//! the database's invalidation secret are applied (see
//! `tenantry_store::notify`); forged, stale and replayed ones are dropped
//! with a warning.

use crate::app::AppState;
use crate::resolution::cache::Invalidation;
use std::time::Duration;
use tokio::sync::watch;

/// Pause between attempts to listen again after a failure.
const RETRY: Duration = Duration::from_millis(500);

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut listener = match state.store.invalidation_listener().await {
        Ok(Some(listener)) => listener,
        Ok(None) => return, // SQLite: one process, nothing to hear.
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for cache invalidations; caches expire on their own only");
            // This node's change streams still hear this node's commits.
            state.changes.set_remote(false);
            return;
        }
    };
    // Ids of the messages applied lately: a replay within the accepted
    // window is dropped (older ones fail the timestamp check).
    let seen: moka::sync::Cache<String, ()> = moka::sync::Cache::builder()
        .max_capacity(1_000_000)
        .time_to_live(Duration::from_secs(
            2 * tenantry_store::notify::MAX_AGE_SECS.unsigned_abs() + 10,
        ))
        .build();
    loop {
        let received = tokio::select! {
            r = listener.try_recv() => r,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        match received {
            Ok(Some(notification)) => {
                let notice = match state
                    .store
                    .verify_invalidation(notification.payload(), state.clock.now())
                {
                    Ok(notice) => notice,
                    Err(why) => {
                        // The payload is not logged: it is the sender's text.
                        tracing::warn!(reason = %why, "dropping an unauthenticated cache invalidation");
                        continue;
                    }
                };
                if seen.contains_key(notice.id) {
                    tracing::warn!("dropping a replayed cache invalidation");
                    continue;
                }
                seen.insert(notice.id.to_owned(), ());
                apply(&state, notice.payload).await;
            }
            Ok(None) | Err(_) => {
                if let Err(err) = received {
                    tracing::warn!(error = %err, "invalidation listener failed; listening again");
                }
                // A new connection with LISTEN done, retried until it works
                // or the server stops. Meanwhile caches are dropped at every
                // attempt, so nothing cached is older than one retry.
                loop {
                    state.apply(&Invalidation::All);
                    match state.store.invalidation_listener().await {
                        Ok(Some(again)) => {
                            listener = again;
                            break;
                        }
                        Ok(None) => return,
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot listen for cache invalidations yet; retrying")
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = stop.wait_for(|stop| *stop) => return,
                    }
                }
                tracing::warn!("invalidation listener reconnected; dropping every cached entry");
                // Streams may have missed changes too: their clients reset.
                state.changes.reset();
                // Only now, with LISTEN in place again: an entry loaded while
                // the connection was down could have missed its notification,
                // and one loaded from here on will hear of any change.
                state.apply(&Invalidation::All);
                reload_signing_keys(&state).await;
            }
        }
    }
}

/// Applies one authenticated invalidation to this process, and tells this
/// node's change streams (the change may come from any node, this one
/// included).
async fn apply(state: &AppState, payload: &str) {
    let (tenant, payload) = crate::changes::unwire(payload);
    match Invalidation::decode(payload) {
        Some(Invalidation::SigningKeys) => {
            reload_signing_keys(state).await;
            state
                .changes
                .publish(tenant.as_ref(), &[Invalidation::SigningKeys]);
        }
        Some(change) => {
            state.apply(&change);
            state
                .changes
                .publish(tenant.as_ref(), std::slice::from_ref(&change));
        }
        None => tracing::warn!(payload, "unknown invalidation"),
    }
}

async fn reload_signing_keys(state: &AppState) {
    if let Err(err) = state
        .tokens
        .load(&state.store, &state.vault, state.clock.now())
        .await
    {
        tracing::warn!(error = %err, "could not reload token signing keys");
    }
}
