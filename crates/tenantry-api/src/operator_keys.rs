//! `operator_keys` wire types.

use crate::REDACTED;
use crate::formats::DisplayName;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::keys::Environment;
use tenantry_core::keys::OperatorKey;

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct OperatorKeyIn {
    #[schema(value_type = DisplayName)]
    pub name: String,
    /// `live` (default) or `test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Environment>)]
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct OperatorKeyOut {
    pub id: String,
    pub start: String,
    pub name: String,
    pub environment: Environment,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct NewOperatorKeyOut {
    /// The key. Store it now: it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub details: OperatorKeyOut,
}

impl std::fmt::Debug for NewOperatorKeyOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOperatorKeyOut")
            .field("key", &REDACTED)
            .field("details", &self.details)
            .finish()
    }
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct OperatorKeyList {
    pub data: Vec<OperatorKeyOut>,
}

/// The domain value as the API shows it.
impl From<&OperatorKey> for OperatorKeyOut {
    fn from(k: &OperatorKey) -> Self {
        OperatorKeyOut {
            id: k.id.clone(),
            start: k.start.clone(),
            name: k.name.clone(),
            environment: k.environment,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
        }
    }
}
