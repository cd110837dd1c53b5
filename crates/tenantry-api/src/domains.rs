//! `domains` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_core::tenant::DomainStatus;
use tenantry_core::tenant::{CustomDomain, challenge_name};

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DomainIn {
    /// A hostname such as `support.acme.com`.
    #[schema(value_type = crate::formats::Hostname)]
    pub domain: String,
}

/// The DNS record that proves ownership of a domain.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct DnsChallenge {
    /// Always `TXT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `_tenantry-challenge.<domain>`.
    pub name: String,
    /// The claim's `verification_token`.
    pub value: String,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct DomainOut {
    pub domain: String,
    /// `pending` until verified; only `verified` domains resolve.
    pub status: DomainStatus,
    /// Unique to this claim; the TXT record must hold exactly this value.
    pub verification_token: String,
    /// The record to create at the domain's DNS provider.
    pub dns_record: DnsChallenge,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct DomainList {
    pub data: Vec<DomainOut>,
}

#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DomainVerifyIn)]
pub struct VerifyIn {
    /// Mark the domain verified without a DNS check: operator keys only.
    #[serde(default)]
    pub force: bool,
}

/// The domain value as the API shows it.
impl From<CustomDomain> for DomainOut {
    fn from(d: CustomDomain) -> Self {
        DomainOut {
            dns_record: DnsChallenge {
                kind: "TXT".to_owned(),
                name: challenge_name(&d.domain),
                value: d.verification_token.clone(),
            },
            domain: d.domain.to_string(),
            status: d.status,
            verification_token: d.verification_token,
            created_at: d.created_at,
            verified_at: d.verified_at,
        }
    }
}
