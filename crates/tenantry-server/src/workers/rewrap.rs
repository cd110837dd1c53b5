//! Moves data keys to the active key-encryption key after a rotation (or a
//! restart with a new keyring). Resumable: the backlog is read from the
//! database on every pass.

use crate::app::AppState;
use crate::vault::rotation::rewrap_batch;
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        match rewrap_batch(&state, 200).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    rewrapped = n,
                    "data keys moved to the active key-encryption key"
                );
                continue;
            }
            Err(err) => tracing::warn!(error = %err, "rewrap pass failed; will retry"),
        }
        tokio::select! {
            _ = state.vault.rewrap_now.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
}
