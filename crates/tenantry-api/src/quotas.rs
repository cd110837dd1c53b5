//! `quotas` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct QuotaCheckIn {
    /// Required with operator keys; implied by tenant keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub meter: String,
    /// Default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    /// Take the quantity when allowed (atomic). Default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consume: Option<bool>,
}

#[derive(Debug, Deserialize, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct QuotaDecision {
    pub allowed: bool,
    pub meter: String,
    /// Null: unlimited.
    pub limit: Option<i64>,
    pub used: i64,
    /// Null: unlimited.
    pub remaining: Option<i64>,
    /// `hard` or `soft` (soft allows `grace_percent` over the limit).
    pub mode: Option<QuotaMode>,
    pub resets_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaMode {
    Hard,
    Soft,
}
