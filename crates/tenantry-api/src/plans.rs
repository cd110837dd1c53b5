//! `plans` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanOut {
    pub name: String,
    pub description: String,
    /// Monthly quotas per meter (null: unlimited).
    #[schema(value_type = Object)]
    pub quotas: Value,
    /// Other limits, e.g. `agents` (null: unlimited).
    #[schema(value_type = Object)]
    pub limits: Value,
    /// `{limit, period_seconds}` per rate limit.
    #[schema(value_type = Object)]
    pub rate_limits: Value,
    #[schema(value_type = Object)]
    pub features: Value,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanList {
    pub data: Vec<PlanOut>,
}
