//! The wire types of the Tenantry `/v1` API: every request and response
//! body, one module per resource, and the RFC 9457 problem document. The
//! server derives its OpenAPI document from these; `tenantry-client`
//! speaks them. No HTTP stack, no database: serde, utoipa and the
//! I/O-free domain enums of `tenantry-core`.

pub mod audit;
pub mod callbacks;
pub mod config;
pub mod credentials;
pub mod domains;
pub mod events;
pub mod formats;
pub mod health;
pub mod identity;
pub mod inbound;
pub mod keyring;
pub mod keys;
pub mod meters;
pub mod operator_keys;
pub mod plans;
pub mod problem;
pub mod provisioning;
pub mod quotas;
pub mod ratelimit;
pub mod resolve;
pub mod settings;
pub mod tenants;
pub mod tokens;
pub mod usage;
pub mod webhooks;
pub mod widgets;

pub use problem::{FieldError, Problem};
/// The domain enums that appear on the wire, re-exported so a client needs
/// only this crate.
pub use tenantry_core::audit::{ActorType, AuditActor, AuditTarget, RequestInfo};
pub use tenantry_core::credentials::CredentialKind;
pub use tenantry_core::keys::{Environment, VerifyCode};
pub use tenantry_core::tenant::{DomainStatus, TenantEventKind, TenantStatus};

use serde::{Deserialize, Serialize};

/// A page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What `Debug` shows in place of a secret (a key shown once, a revealed
/// credential, a webhook secret, a token).
pub(crate) const REDACTED: &str = "[redacted]";

/// The outcome filter of an audit listing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcomeName {
    Success,
    Denied,
    Error,
}

/// The format of an audit export.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

/// The buckets of a usage series.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Hour,
    Day,
    Month,
}
