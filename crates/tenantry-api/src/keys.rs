//! `keys` wire types.

use crate::REDACTED;
use crate::formats::{DisplayName, Metadata};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::keys::ApiKey;
use tenantry_core::keys::Environment;
use tenantry_core::keys::Scope;
use tenantry_core::keys::VerifyCode;
use tenantry_core::tenant::TenantStatus;

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    #[schema(value_type = DisplayName)]
    pub name: String,
    /// e.g. `["tenant:read", "keys:write"]`.
    #[schema(value_type = Vec<Scope>)]
    pub scopes: Vec<String>,
    /// `live` (default) or `test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Environment>)]
    pub environment: Option<String>,
    /// In the future.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPatchIn {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DisplayName>)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Scope>>)]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// A time, or `null` to remove the expiry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// How long the old key keeps working, 0 to 30 days (default 0: at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2592000)]
    pub overlap_seconds: Option<i64>,
}

/// A key as listed: never the key itself nor its hash.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyOut {
    pub id: String,
    pub tenant_id: String,
    /// The first characters, for recognising the key.
    pub start: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub environment: Environment,
    pub enabled: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key this one replaced, when made by a rotation.
    pub rotated_from: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A newly made key: the only time `key` is shown.
#[derive(Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKeyOut {
    /// The key. Store it now: it cannot be shown again.
    pub key: String,
    #[serde(flatten)]
    pub details: KeyOut,
}

impl std::fmt::Debug for NewKeyOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKeyOut")
            .field("key", &REDACTED)
            .field("details", &self.details)
            .finish()
    }
}

#[derive(Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(as = KeyVerifyIn)]
pub struct VerifyIn {
    pub key: String,
    /// Scopes the key must grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for VerifyIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyIn")
            .field("key", &REDACTED)
            .field("scopes", &self.scopes)
            .finish()
    }
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyTenant {
    pub id: String,
    pub status: TenantStatus,
    pub plan: String,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyOut {
    pub valid: bool,
    pub code: VerifyCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<VerifyTenant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `null` is `Some(None)` (remove), a missing field `None` (keep).
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// The domain value as the API shows it.
impl From<&ApiKey> for KeyOut {
    fn from(k: &ApiKey) -> Self {
        KeyOut {
            id: k.id.clone(),
            tenant_id: k.tenant_id.to_string(),
            start: k.start.clone(),
            name: k.name.clone(),
            scopes: k.scopes.names().into_iter().map(str::to_owned).collect(),
            environment: k.environment,
            enabled: k.enabled,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            metadata: k.metadata.clone().into_value(),
            last_used_at: k.last_used_at,
            rotated_from: k.rotated_from.clone(),
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}
