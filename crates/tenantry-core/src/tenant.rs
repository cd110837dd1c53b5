//! The tenant registry's domain: a tenant, its lifecycle statuses and the
//! events of its history.

use crate::ids::TenantId;
use crate::values::{Metadata, PlanName, Region, Subdomain, TenantName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
}

impl FromStr for TenantStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "deleted" => Ok(Self::Deleted),
            _ => Err(()),
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: TenantName,
    pub subdomain: Subdomain,
    pub status: TenantStatus,
    pub plan: PlanName,
    pub region: Region,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when the tenant was soft-deleted; its rows are purged after the
    /// grace period that starts here.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What a new tenant is made of, all fields already validated.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: TenantId,
    pub name: TenantName,
    pub subdomain: Subdomain,
    pub plan: PlanName,
    pub region: Region,
    pub metadata: Metadata,
}

/// A change to a tenant's descriptive fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub name: Option<TenantName>,
    pub subdomain: Option<Subdomain>,
    pub plan: Option<PlanName>,
    pub region: Option<Region>,
    pub metadata: Option<Metadata>,
}

impl TenantPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.subdomain.is_none()
            && self.plan.is_none()
            && self.region.is_none()
            && self.metadata.is_none()
    }
}

/// The kinds of entries in a tenant's lifecycle history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantEventKind {
    Created,
    Updated,
    Suspended,
    Reactivated,
    Deleted,
    DomainAdded,
    DomainRemoved,
    DomainVerified,
    KeyCreated,
    KeyUpdated,
    KeyRevoked,
    KeyRotated,
    CredentialCreated,
    CredentialUpdated,
    CredentialDeleted,
    SettingsUpdated,
    DataKeyRotated,
    ConfigUpdated,
    #[serde(rename = "quota.threshold_reached")]
    QuotaThresholdReached,
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.status_updated")]
    MessageStatusUpdated,
}

impl TenantEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Suspended => "suspended",
            Self::Reactivated => "reactivated",
            Self::Deleted => "deleted",
            Self::DomainAdded => "domain_added",
            Self::DomainRemoved => "domain_removed",
            Self::DomainVerified => "domain_verified",
            Self::KeyCreated => "key_created",
            Self::KeyUpdated => "key_updated",
            Self::KeyRevoked => "key_revoked",
            Self::KeyRotated => "key_rotated",
            Self::CredentialCreated => "credential_created",
            Self::CredentialUpdated => "credential_updated",
            Self::CredentialDeleted => "credential_deleted",
            Self::SettingsUpdated => "settings_updated",
            Self::DataKeyRotated => "data_key_rotated",
            Self::ConfigUpdated => "config_updated",
            Self::QuotaThresholdReached => "quota.threshold_reached",
            Self::MessageReceived => "message.received",
            Self::MessageStatusUpdated => "message.status_updated",
        }
    }
}

impl FromStr for TenantEventKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "created" => Self::Created,
            "updated" => Self::Updated,
            "suspended" => Self::Suspended,
            "reactivated" => Self::Reactivated,
            "deleted" => Self::Deleted,
            "domain_added" => Self::DomainAdded,
            "domain_removed" => Self::DomainRemoved,
            "domain_verified" => Self::DomainVerified,
            "key_created" => Self::KeyCreated,
            "key_updated" => Self::KeyUpdated,
            "key_revoked" => Self::KeyRevoked,
            "key_rotated" => Self::KeyRotated,
            "credential_created" => Self::CredentialCreated,
            "credential_updated" => Self::CredentialUpdated,
            "credential_deleted" => Self::CredentialDeleted,
            "settings_updated" => Self::SettingsUpdated,
            "data_key_rotated" => Self::DataKeyRotated,
            "config_updated" => Self::ConfigUpdated,
            "quota.threshold_reached" => Self::QuotaThresholdReached,
            "message.received" => Self::MessageReceived,
            "message.status_updated" => Self::MessageStatusUpdated,
            _ => return Err(()),
        })
    }
}

/// Who did something: `operator:root`, later `key:key_…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Actor(String);

impl Actor {
    pub fn root() -> Self {
        Self("operator:root".to_owned())
    }

    pub fn system() -> Self {
        Self("system".to_owned())
    }

    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct TenantEvent {
    pub id: String,
    pub tenant_id: TenantId,
    pub kind: TenantEventKind,
    pub actor: Actor,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Whether a custom domain's ownership has been proven. Only `verified`
/// domains resolve; a `pending` one is a claim with a challenge to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DomainStatus {
    Pending,
    Verified,
}

impl DomainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
        }
    }
}

impl FromStr for DomainStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "pending" => Ok(Self::Pending),
            "verified" => Ok(Self::Verified),
            _ => Err(()),
        }
    }
}

/// The DNS name whose TXT record proves ownership of `domain`.
pub fn challenge_name(domain: &crate::values::Hostname) -> String {
    format!("_tenantry-challenge.{domain}")
}

#[derive(Debug, Clone)]
pub struct CustomDomain {
    pub tenant_id: TenantId,
    pub domain: crate::values::Hostname,
    pub status: DomainStatus,
    /// The value the TXT record at [`challenge_name`] must hold. Not a
    /// secret (it is published in DNS), but unique to this claim, so one
    /// tenant's proof never verifies another tenant's claim.
    pub verification_token: String,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
}
