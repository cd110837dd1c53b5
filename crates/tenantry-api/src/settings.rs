//! `settings` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct SettingsOut {
    pub category: String,
    /// Sensitive values masked (or in plaintext, from `reveal`).
    #[schema(value_type = Object)]
    pub data: Value,
    pub updated_at: DateTime<Utc>,
}
