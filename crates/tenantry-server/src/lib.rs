//! The Tenantry server. `main.rs` of the `tenantry` binary is a thin shell
//! over [`run`], so tests can start the real server on any listener.

pub mod api;
pub mod app;
pub mod audit;
pub mod change;
pub mod changes;
pub mod config;
pub mod console;
pub mod dns;
pub mod events;
pub mod grant;
pub mod http;
pub mod identity;
pub mod ids;
pub mod inbound;
pub mod keys;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod provisioning;
pub mod resolution;
pub mod root_key;
pub mod seed;
pub mod tenancy;
pub mod vault;
pub mod webhooks;
pub mod widgets;
pub mod workers;

use crate::app::AppState;
use crate::config::Config;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use tenantry_core::SystemClock;
use tenantry_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connects to the configured database and applies its migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let mut store = Store::connect(&config.database())
        .await
        .context("cannot connect to the database")?;
    store.migrate().await?;
    Ok(store)
}

/// Serves on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (up to the configured timeout) and stops the workers.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    tracing::info!(backend = store.backend_name(), "database ready");
    let root_key = root_key::load_or_create(&config)?;
    let shutdown_timeout = config.shutdown_timeout;
    let vault = vault::Vault::load(&config)?;
    let rate_limiter = match &config.redis_url {
        Some(url) => limits::ratelimit::RateLimiter::redis(url.expose(), config.redis_failure)
            .await
            .context("TENANTRY_REDIS_URL")?,
        None => limits::ratelimit::RateLimiter::in_memory(),
    };
    tracing::info!(backend = rate_limiter.backend(), "rate limiter ready");
    let state = AppState::new(
        store.clone(),
        Arc::new(SystemClock),
        config,
        root_key,
        vault,
        rate_limiter,
    )?;
    state
        .tokens
        .load(&state.store, &state.vault, state.clock.now())
        .await
        .context("cannot load token signing keys")?;

    if !state.config.regions.is_empty() {
        tenancy::regions::refresh(&state)
            .await
            .context("cannot read the region directory")?;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = workers::spawn_all(&state, stop_rx.clone());

    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "listening on http://{local}");
    let limits = http::serve::ConnectionLimits {
        header_read_timeout: state.config.header_read_timeout,
        idle_timeout: state.config.idle_timeout,
        write_timeout: state.config.write_timeout,
        max_connections: state.config.max_connections,
    };
    let app = http::router::router(state.clone());
    let stop_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop_signal.send(true);
    });
    let server = http::serve::serve(listener, app, limits, stop_rx.clone());
    let mut stopping = stop_rx.clone();
    tokio::select! {
        () = server => {},
        () = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(shutdown_timeout).await;
        } => tracing::warn!("shutdown timeout reached; dropping remaining connections"),
    }
    let _ = stop_tx.send(true);
    // After the last request: leased quota units go back to the database.
    limits::leases::return_all(&state).await;
    drop(state);
    for worker in workers {
        let _ = worker.await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
