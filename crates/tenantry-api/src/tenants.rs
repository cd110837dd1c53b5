//! `tenants` wire types.

use crate::formats::{DisplayName, Metadata, PlanName, RegionName, Slug};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::tenant::Tenant;
use tenantry_core::tenant::TenantStatus;

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    /// The tenant's slug: 3–63 characters of a-z, 0-9 and inner '-'.
    #[schema(value_type = Slug)]
    pub id: String,
    #[schema(value_type = DisplayName)]
    pub name: String,
    /// Defaults to the id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Slug>)]
    pub subdomain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PlanName>)]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RegionName>)]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatchIn {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DisplayName>)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Slug>)]
    pub subdomain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PlanName>)]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<RegionName>)]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantOut {
    pub id: String,
    pub name: String,
    pub subdomain: String,
    pub status: TenantStatus,
    pub plan: String,
    pub region: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the tenant was soft-deleted; its data is purged after the grace period.
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ListTenantsParams {
    /// Only tenants with this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only tenants on this plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// `true` deletes every row of the tenant now instead of after the grace period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge: Option<bool>,
}

/// The domain value as the API shows it.
impl From<Tenant> for TenantOut {
    fn from(t: Tenant) -> Self {
        TenantOut {
            id: t.id.to_string(),
            name: t.name.to_string(),
            subdomain: t.subdomain.to_string(),
            status: t.status,
            plan: t.plan.to_string(),
            region: t.region.to_string(),
            metadata: t.metadata.into_value(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            deleted_at: t.deleted_at,
        }
    }
}
