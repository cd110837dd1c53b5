//! `resolve` wire types.

use crate::REDACTED;
use serde::{Deserialize, Serialize};
use tenantry_core::tenant::TenantStatus;

#[derive(Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveIn {
    /// The request's host (`acme.example.com`, `support.acme.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Honoured only for callers with an operator key or scope `resolve:trusted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

impl std::fmt::Debug for ResolveIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolveIn")
            .field("host", &self.host)
            .field("api_key", &self.api_key.as_ref().map(|_| REDACTED))
            .field("token", &self.token.as_ref().map(|_| REDACTED))
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

/// The resolved tenant. Callers that are not trusted (no operator key, no
/// `resolve:trusted`) get only what a gateway needs: `id`, `status` and
/// `plan`.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ResolvedTenant {
    pub id: String,
    pub status: TenantStatus,
    pub plan: String,
    /// Trusted callers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Trusted callers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Trusted callers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// Trusted callers only: the effective features, limits, rate limits and
    /// quotas (see `GET /v1/tenants/{id}/config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ResolveOut {
    pub tenant: ResolvedTenant,
    pub matched_by: MatchedBy,
}

/// Which link of the chain matched.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    CustomDomain,
    Subdomain,
    ApiKey,
    Token,
    Header,
    Default,
    /// A login token's user, by their membership of the tenant.
    Membership,
    /// A login token's tenant claim.
    TokenClaim,
}
