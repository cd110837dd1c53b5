//! `credentials` wire types.

use crate::REDACTED;
use crate::formats::DisplayName;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_core::credentials::CredentialKind;

#[derive(Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CredentialIn {
    /// `whatsapp`, `genesys`, `smtp`, `oauth_client` or `generic`.
    #[schema(value_type = CredentialKind)]
    pub kind: String,
    #[schema(value_type = DisplayName)]
    pub name: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl std::fmt::Debug for CredentialIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialIn")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("data", &REDACTED)
            .finish()
    }
}

#[derive(Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialPatchIn {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DisplayName>)]
    pub name: Option<String>,
    /// Fields to change; sealed fields left out keep their value; `null` removes an optional field.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

impl std::fmt::Debug for CredentialPatchIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialPatchIn")
            .field("name", &self.name)
            .field("data", &REDACTED)
            .field("is_active", &self.is_active)
            .finish()
    }
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct CredentialOut {
    pub id: String,
    pub tenant_id: String,
    pub kind: CredentialKind,
    pub name: String,
    /// Public fields as stored; sealed fields masked (`****` and at most the last 4 characters).
    #[schema(value_type = Object)]
    pub data: Value,
    /// Names of the sealed fields.
    pub sealed_fields: Vec<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_revealed_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct RevealedCredential {
    pub id: String,
    pub kind: CredentialKind,
    pub name: String,
    /// Every field in plaintext.
    #[schema(value_type = Object)]
    pub data: Value,
}

impl std::fmt::Debug for RevealedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevealedCredential")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("data", &REDACTED)
            .finish()
    }
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct CredentialList {
    pub data: Vec<CredentialOut>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessLogOut {
    pub id: String,
    pub action: String,
    pub actor: String,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessLogPage {
    pub data: Vec<AccessLogOut>,
    pub next_cursor: Option<String>,
}
