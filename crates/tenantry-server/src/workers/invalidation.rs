//! Receives cache invalidations from other server processes (PostgreSQL
//! LISTEN/NOTIFY) and applies them here. If the connection drops, messages
//! may have been missed: everything cached is dropped on reconnect.

use crate::app::AppState;
use crate::resolution::cache::Invalidation;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut listener = match state.store.invalidation_listener().await {
        Ok(Some(listener)) => listener,
        Ok(None) => return, // SQLite: one process, nothing to hear.
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for cache invalidations; caches expire on their own only");
            return;
        }
    };
    loop {
        let received = tokio::select! {
            r = listener.try_recv() => r,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        match received {
            Ok(Some(notification)) => match Invalidation::decode(notification.payload()) {
                Some(Invalidation::SigningKeys) => {
                    if let Err(err) = state
                        .tokens
                        .load(&state.store, &state.vault, state.clock.now())
                        .await
                    {
                        tracing::warn!(error = %err, "could not reload token signing keys");
                    }
                }
                Some(change) => state.apply(&change),
                None => tracing::warn!(payload = notification.payload(), "unknown invalidation"),
            },
            Ok(None) => {
                tracing::warn!("invalidation listener reconnected; dropping every cached entry");
                state.apply(&Invalidation::All);
                if let Err(err) = state
                    .tokens
                    .load(&state.store, &state.vault, state.clock.now())
                    .await
                {
                    tracing::warn!(error = %err, "could not reload token signing keys");
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "invalidation listener failed; retrying");
                state.apply(&Invalidation::All);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
