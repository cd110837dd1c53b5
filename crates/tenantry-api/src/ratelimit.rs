//! `ratelimit` wire types.

use crate::formats::Slug;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RateLimitIn {
    /// Required with operator keys; a tenant key may leave it out (its own
    /// tenant is implied) or name its own tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Slug, required = true)]
    pub tenant_id: Option<String>,
    /// Limit per key instead of per tenant: 1 to 64 of a-z, A-Z, 0-9, '_'.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-zA-Z0-9_]+$")]
    pub key_id: Option<String>,
    /// A rate limit of the tenant's configuration, e.g. `messages_per_minute`.
    pub limit: String,
    /// Default 1; at most 10^9.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 1_000_000_000)]
    pub cost: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct RateLimitOut {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_after_ms: u64,
    pub retry_after_ms: u64,
}
