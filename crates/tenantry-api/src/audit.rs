//! `audit` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::audit::AuditActor;
use tenantry_core::audit::AuditEntry;
use tenantry_core::audit::AuditTarget;
use tenantry_core::audit::{Outcome, RequestInfo};

/// An audit entry as stored and hashed.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntryOut {
    pub id: String,
    /// Null for the operator chain.
    pub tenant_id: Option<String>,
    pub sequence: u64,
    pub occurred_at: DateTime<Utc>,
    pub actor: AuditActor,
    /// Dotted, e.g. `credential.revealed`.
    pub action: String,
    pub targets: Vec<AuditTarget>,
    pub outcome: Outcome,
    pub request: RequestInfo,
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Hex SHA-256 of the previous entry.
    pub prev_hash: String,
    /// Hex SHA-256 of this entry's canonical JSON.
    pub hash: String,
}

/// A signed checkpoint.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckpointOut {
    pub origin: String,
    /// How many entries of the chain it commits to.
    pub size: u64,
    /// Hex hash of entry `size` (all zeros for an empty chain).
    pub head_hash: String,
    pub created_at: DateTime<Utc>,
    /// Hex id of the key that signed it (see `/v1/audit/keys`).
    pub key_id: String,
    /// The C2SP signed note (tlog-checkpoint body and signature line).
    pub note: String,
}

/// Filters and page of an audit listing.
#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exact action, e.g. `api_key.created`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1, max_length = 100, pattern = "^[a-z0-9_.]+$")]
    pub action: Option<String>,
    /// The actor's id (`root`, a key id, a worker's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub actor: Option<String>,
    /// A target as `type:id`, e.g. `api_key:key_…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^[a-z_]{1,50}:[^\\x00-\\x1f\\x7f-\\x9f]{1,200}$")]
    pub target: Option<String>,
    /// `success`, `denied` or `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<crate::AuditOutcomeName>)]
    pub outcome: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub from: Option<String>,
    /// Entries before this time (RFC 3339), later than `from`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub to: Option<String>,
    /// How many entries to return, 1–200 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `limit` and `cursor` of the checkpoint list.
#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct CheckpointQuery {
    /// How many checkpoints to return, 1–200 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// Format and time range of an export.
#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `ndjson` (default; verifiable offline) or `csv`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<crate::ExportFormat>)]
    pub format: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub from: Option<String>,
    /// Entries before this time (RFC 3339), later than `from`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditKeyRotatedOut {
    /// The new active key's id.
    pub key_id: String,
}

/// What a verification found.
#[derive(Debug, Deserialize, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    /// The tenant id, or `operator`.
    pub chain: String,
    /// The chain's size as recomputed (the last verified sequence).
    pub size: u64,
    /// The recomputed head hash (hex).
    pub head_hash: String,
    /// Where the retained entries start (after retention pruned a prefix).
    pub pruned_through: u64,
    /// The first sequence that does not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_sequence: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Signed checkpoints whose signature and (size, hash) were checked.
    pub checkpoints_checked: u64,
}

/// A public key, as `GET /v1/audit/keys` lists it.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicKeyOut {
    pub name: String,
    /// 8 hex digits: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || key).
    pub key_id: String,
    /// The signed-note verifier key: `name+key_id+base64(0x01 || key)`.
    pub vkey: String,
    /// The raw Ed25519 public key, base64.
    pub public_key: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// The domain value as the API shows it.
impl From<AuditEntry> for AuditEntryOut {
    fn from(e: AuditEntry) -> Self {
        AuditEntryOut {
            id: e.id,
            tenant_id: e.tenant_id,
            sequence: e.sequence,
            occurred_at: e.occurred_at,
            actor: e.actor,
            action: e.action,
            targets: e.targets,
            outcome: e.outcome,
            request: e.request,
            changes: e.changes,
            metadata: e.metadata,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}
