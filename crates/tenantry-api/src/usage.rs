//! `usage` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct EventResult {
    /// The event's id, when it had one.
    pub id: Option<String>,
    pub status: Outcome,
    /// For `duplicate`: the outcome the id got the first time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<Outcome>,
    /// For `rejected`: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct IngestOut {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// One result per event, in order.
    pub results: Vec<EventResult>,
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    #[param(min_length = 1, max_length = 63, pattern = "^[a-z0-9_]+$")]
    pub meter: String,
    /// RFC 3339; default: the start of the current month.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub from: Option<String>,
    /// RFC 3339, exclusive; default: now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub to: Option<String>,
    /// `hour`, `day` (default) or `month`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<crate::Granularity>)]
    pub granularity: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct UsagePoint {
    pub period_start: DateTime<Utc>,
    pub value: i64,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageOut {
    pub tenant_id: String,
    pub meter: String,
    pub aggregation: Aggregation,
    pub granularity: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Periods with usage, oldest first.
    pub series: Vec<UsagePoint>,
    /// Sum over the series (`last` meters: the latest value; `distinct`: the sum of each period's distinct count).
    pub total: i64,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct StatsOut {
    pub tenant_id: String,
    pub month_start: DateTime<Utc>,
    /// This month's totals per meter.
    #[schema(value_type = Object)]
    pub month: Map<String, Value>,
    /// Today's (UTC) counts per meter.
    #[schema(value_type = Object)]
    pub today: Map<String, Value>,
    /// Distinct conversations this month.
    pub active_conversations: i64,
    /// Quota use this month, per meter with a quota.
    #[schema(value_type = Object)]
    pub quotas: Map<String, Value>,
    /// Stored messages by channel, then by current status
    /// (`{"whatsapp": {"received": 3, "read": 1}}`; `unknown` before any).
    #[schema(value_type = Object)]
    pub messages: Map<String, Value>,
}

/// How a meter aggregates its events.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Quantities add up.
    Sum,
    /// A gauge: the latest value counts.
    Last,
    /// Distinct subjects per period.
    Distinct,
}

impl Aggregation {
    pub fn parse(value: &str) -> Option<Aggregation> {
        match value {
            "sum" => Some(Aggregation::Sum),
            "last" => Some(Aggregation::Last),
            "distinct" => Some(Aggregation::Distinct),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Last => "last",
            Aggregation::Distinct => "distinct",
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = UsageOutcome)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Rejected,
}
