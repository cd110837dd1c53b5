//! `tokens` wire types.

use crate::REDACTED;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// Lifetime in seconds, 1 to 3600 (default: the configured token_ttl).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3600)]
    pub ttl_seconds: Option<i64>,
    /// A subset of the key's scopes (default: all of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<tenantry_core::keys::Scope>>)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    pub token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for TokenOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenOut")
            .field("token", &REDACTED)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedOut {
    /// The new signing key's id (`kid`).
    pub kid: String,
}
