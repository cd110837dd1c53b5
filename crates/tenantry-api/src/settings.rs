//! `settings` wire types.

use crate::REDACTED;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct SettingsOut {
    pub category: String,
    /// Sensitive values masked (or in plaintext, from `reveal`).
    #[schema(value_type = Object)]
    pub data: Value,
    pub updated_at: DateTime<Utc>,
}

/// `data` holds plaintext secrets when it comes from `reveal`: never shown.
impl std::fmt::Debug for SettingsOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsOut")
            .field("category", &self.category)
            .field("data", &REDACTED)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}
