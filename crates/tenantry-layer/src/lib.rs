//! Tower middleware for apps behind Tenantry.
//!
//! [`TenantryLayer`] resolves each request's tenant through Tenantry's
//! `POST /v1/resolve` (by host, API key or token, as configured), caches the
//! answer locally (keyed by a SHA-256 of the credential, never its
//! plaintext) and puts a [`TenantContext`] in the request's extensions and in
//! a tokio task-local ([`TenantContext::current`]) for code deep in the call
//! stack. A request that does not resolve gets a `401`, `403` or `404`
//! `application/problem+json` answer and never reaches the app.
//!
//! The cache is fresh through push invalidation: a background task follows
//! Tenantry's `GET /v1/changes` stream and evicts what each change makes
//! wrong. Entries are cached only while that stream is connected; on
//! disconnect (or a `reset` event) the whole cache is dropped and the task
//! reconnects with backoff.
//!
//! Helpers: [`cache_key`] (tenant-prefixed keys for the app's own caches),
//! [`spawn_in_tenant`] and [`TenantJob`] (carry the tenant into spawned
//! tasks and serialized jobs) and, with the `sqlx` feature,
//! [`db::begin_tenant_tx`] (a PostgreSQL transaction with
//! `set_config('app.tenant_id', …, true)`).

mod cache;
mod client;
pub mod config;
pub mod context;
#[cfg(feature = "sqlx")]
pub mod db;
pub mod jobs;
mod problem;
mod service;
mod shared;
mod stream;

pub use config::{LayerConfig, ServiceKey, Strategy};
pub use context::{TenantContext, TenantInfo, cache_key, spawn_in_tenant, with_tenant};
pub use jobs::TenantJob;
pub use problem::Refusal;
pub use service::{TenantryLayer, TenantryService};

/// Why the layer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("the Tenantry URL is not valid: {0}")]
    Url(String),
    #[error("the layer needs a tokio runtime (its change-stream task runs on it)")]
    NoRuntime,
    #[error("the HTTP client could not be built")]
    Client,
    #[error("no resolution strategy is configured")]
    NoStrategy,
}
