//! `meters` wire types.

use crate::usage::Aggregation;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct MeterOut {
    pub name: String,
    pub aggregation: Aggregation,
    pub description: String,
    pub builtin: bool,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct MeterList {
    pub data: Vec<MeterOut>,
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MeterIn {
    /// 1 to 63 characters of a-z, 0-9 and '_'.
    #[schema(min_length = 1, max_length = 63, pattern = "^[a-z0-9_]+$")]
    pub name: String,
    /// `sum` (default), `last` (a gauge) or `distinct` (distinct subjects per period).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Aggregation>)]
    pub aggregation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub description: Option<String>,
}
