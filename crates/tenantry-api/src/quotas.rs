//! `quotas` wire types.

use crate::formats::Slug;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct QuotaCheckIn {
    /// Required with operator keys; a tenant key may leave it out (its own
    /// tenant is implied) or name its own tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Slug, required = true)]
    pub tenant_id: Option<String>,
    /// A meter (see `GET /v1/meters`).
    #[schema(min_length = 1, max_length = 63, pattern = "^[a-z0-9_]+$")]
    pub meter: String,
    /// Default 1; 1 to 10^12.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
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
