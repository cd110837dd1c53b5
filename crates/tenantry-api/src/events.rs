//! `events` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::tenant::TenantEvent;
use tenantry_core::tenant::TenantEventKind;

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    pub id: String,
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub kind: TenantEventKind,
    /// Who caused it: `operator:root`, `system`, …
    pub actor: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The domain value as the API shows it.
impl From<TenantEvent> for EventOut {
    fn from(e: TenantEvent) -> Self {
        EventOut {
            id: e.id,
            tenant_id: e.tenant_id.to_string(),
            kind: e.kind,
            actor: e.actor.as_str().to_owned(),
            data: e.data,
            created_at: e.created_at,
        }
    }
}
