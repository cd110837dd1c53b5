//! `config` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ConfigOut {
    pub tenant_id: String,
    /// Every value with `value` and `source` (`plan`, `tenant` or `default`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub config: Value,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ConfigVersionOut {
    pub version: i64,
    /// The tenant's overrides as of this version.
    #[schema(value_type = Object)]
    pub overrides: Value,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ConfigVersionList {
    pub data: Vec<ConfigVersionOut>,
    pub next_cursor: Option<String>,
}
