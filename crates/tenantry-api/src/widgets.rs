//! `widgets` wire types.

use crate::REDACTED;
use crate::formats::DisplayName;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WidgetIn {
    #[schema(value_type = DisplayName)]
    pub name: String,
    /// `scheme://host[:port]` exactly, or `scheme://*.domain[:port]` for
    /// its subdomains (not the domain itself). Empty: no origin.
    #[schema(max_items = 100, value_type = Vec<crate::formats::Origin>)]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetPatchIn {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DisplayName>)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 100, value_type = Option<Vec<crate::formats::Origin>>)]
    pub allowed_origins: Option<Vec<String>>,
    /// `false` revokes every token of the widget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct WidgetOut {
    pub id: String,
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct WidgetList {
    pub data: Vec<WidgetOut>,
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WidgetTokenIn {
    /// The page's origin; one of the widget's allowed origins.
    pub origin: String,
    /// 1 to 900 (default 300).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 900)]
    pub ttl_seconds: Option<i64>,
}

#[derive(Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct WidgetTokenOut {
    /// An EdDSA JWT (`typ: widget+jwt`, `kid` in its header).
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for WidgetTokenOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetTokenOut")
            .field("token", &REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(as = WidgetVerifyIn)]
pub struct VerifyIn {
    pub token: String,
    /// The origin the widget runs on; must match the `Origin` header when
    /// a browser sends one.
    pub origin: String,
}

impl std::fmt::Debug for VerifyIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyIn")
            .field("token", &REDACTED)
            .field("origin", &self.origin)
            .finish()
    }
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct WidgetContextOut {
    pub tenant_id: String,
    pub widget_id: String,
    pub origin: String,
    pub expires_at: DateTime<Utc>,
}
