//! `identity` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderList {
    pub data: Vec<ProviderOut>,
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MemberIn {
    /// `admin`, `member`, or custom roles of the user's provider.
    pub roles: Vec<String>,
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberOut {
    pub tenant_id: String,
    /// `idp_…:subject`: the issuer's subject, namespaced by its provider.
    pub subject: String,
    pub provider_id: String,
    pub roles: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberPage {
    pub data: Vec<MemberOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberTenants {
    /// The user's memberships, one per tenant.
    pub data: Vec<MemberOut>,
}

/// A signature algorithm an issuer may be trusted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Alg {
    RS256,
    ES256,
    EdDSA,
}

impl Alg {
    pub fn parse(text: &str) -> Option<Alg> {
        match text {
            "RS256" => Some(Alg::RS256),
            "ES256" => Some(Alg::ES256),
            "EdDSA" => Some(Alg::EdDSA),
            _ => None,
        }
    }
}

/// A provider's settings, as stored (JSON) and shown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderConfig {
    /// The `iss` its tokens carry, exactly.
    pub issuer: String,
    /// Where its JSON Web Key Set is fetched (https, or http to an
    /// allowlisted host).
    pub jwks_url: Option<String>,
    /// Its keys inline (a JSON Web Key Set), instead of `jwks_url`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Accepted `aud` values: a token must name one of them.
    pub audiences: Vec<String>,
    /// Accepted signature algorithms.
    pub algorithms: Vec<Alg>,
    /// The claim holding the user's id (a dotted path; default `sub`).
    pub subject_claim: String,
    /// The claim naming the user's tenant (a dotted path such as `org.id`).
    pub tenant_claim: Option<String>,
    /// The claim holding the user's roles at the issuer (an array, or a
    /// space-separated string).
    pub roles_claim: Option<String>,
    /// Their role → a Tenantry role (`admin`, `member` or a custom role).
    pub role_mapping: BTreeMap<String, String>,
    /// Their roles that make the user a super admin (an operator).
    pub operator_roles: Vec<String>,
    /// Resolve to the tenant claim's tenant without a membership.
    pub trust_tenant_claim: bool,
    /// Custom Tenantry roles and their scopes.
    pub custom_roles: BTreeMap<String, Vec<String>>,
}

/// `POST /v1/identity-providers` and `PUT /v1/identity-providers/{id}`.
#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ProviderIn {
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    pub audiences: Vec<String>,
    /// `RS256`, `ES256`, `EdDSA` (never `none` nor an HMAC algorithm).
    pub algorithms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_claim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_claim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles_claim: Option<String>,
    #[serde(default)]
    pub role_mapping: BTreeMap<String, String>,
    #[serde(default)]
    pub operator_roles: Vec<String>,
    #[serde(default)]
    pub trust_tenant_claim: bool,
    #[serde(default)]
    pub custom_roles: BTreeMap<String, Vec<String>>,
}

/// A provider, as the API shows it.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderOut {
    pub id: String,
    #[serde(flatten)]
    pub config: ProviderConfig,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
