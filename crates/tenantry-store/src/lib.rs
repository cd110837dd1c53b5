//! Where Tenantry's data is stored: SQLite (embedded, the default) or
//! PostgreSQL, chosen once at start-up.
//!
//! Every query runs inside one of two kinds of transaction:
//! - [`TenantTx`]: bound to one [`TenantId`]. Tenant-scoped tables (those with
//!   a `tenant_id` column) are only reachable through methods of this type,
//!   which bind its tenant id themselves; in PostgreSQL the transaction also
//!   sets `app.tenant_id`, so row-level security enforces the same boundary.
//! - [`OperatorTx`]: the explicit operator path, for the tenant registry and
//!   read-only cross-tenant lookups.
//!
//! Adding a tenant-scoped table: create it in both `migrations/` folders with
//! a `tenant_id` column leading its primary key (and, in PostgreSQL,
//! `SELECT tenantry_isolate('table')`), then add its queries as methods on
//! `TenantTx` in a module of its own. Purge, `tenantry doctor` and the region
//! move (`regions::copy_tenant`) discover it.

mod audit;
mod audit_checkpoints;
mod backend;
mod bulk;
pub mod citus;
pub mod doctor;
mod domains;
mod error;
mod events;
mod files;
mod idempotency;
mod identity;
mod inbound;
mod keys;
mod limits;
mod metrics;
mod migrations;
pub mod notify;
mod provisioning;
pub mod regions;

mod quota_leases;
mod scope;
mod tenants;
mod values;
mod vault;
mod webhooks;
mod widgets;

pub use audit::AuditHead;
pub use audit_checkpoints::{AuditFilter, OperatorChain, StoredAuditKey, StoredCheckpoint};
pub use backend::{DatabaseOptions, PoolStats, Store};
pub use bulk::BulkPath;
pub use error::{Conflict, StorageFault, StoreError};
pub use events::EventPage;
pub use files::{private_dir, tighten_file};
pub use idempotency::{IdempotencyRow, Reservation, StoredResponse};
pub use identity::{MemberRow, ProviderRow};
pub use inbound::{HistoryRow, NewStatus, StoredConversation, StoredInboundMessage};
pub use keys::{KeyPage, StoredSigningKey};
pub use limits::{ConfigVersionRow, CounterAdd, MeterRow, NewUsageEvent, PlanRow};
pub use metrics::BackgroundCounts;
pub use notify::{NoticeRejected, VerifiedNotice};
pub use provisioning::{WorkflowPage, WorkflowRow};
pub use quota_leases::{LeaseDelta, QuotaLeaseRow};
pub use scope::{OperatorTx, TenantTx};
pub use tenants::{TenantFilter, TenantPage};
pub use vault::{StoredCredential, StoredDataKey};
pub use webhooks::{
    AttemptOutcome, MessageFilter, OPERATOR_OWNER, OutboxRow, StoredAttempt, StoredEndpoint,
    StoredMessage, Webhooks,
};
pub use widgets::StoredWidget;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
