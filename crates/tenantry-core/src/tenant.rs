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
    /// Being set up by a provisioning workflow: not resolvable for traffic
    /// and its keys do not verify, until the workflow activates it.
    Provisioning,
    /// Its provisioning workflow failed: not resolvable for traffic either.
    ProvisioningFailed,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
            Self::Provisioning => "provisioning",
            Self::ProvisioningFailed => "provisioning_failed",
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
            "provisioning" => Ok(Self::Provisioning),
            "provisioning_failed" => Ok(Self::ProvisioningFailed),
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

/// The kinds of entries in a tenant's lifecycle history, named as in the
/// event catalogue (`GET /v1/event-types`): `resource.action`. The same
/// names are the `type` of outbound webhooks. Operator-level kinds
/// (`plan.updated`, `tenant.purged`, `webhook_endpoint.disabled` of an
/// operator endpoint) are recorded in the operator's event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum TenantEventKind {
    #[serde(rename = "tenant.created")]
    Created,
    #[serde(rename = "tenant.updated")]
    Updated,
    #[serde(rename = "tenant.suspended")]
    Suspended,
    #[serde(rename = "tenant.reactivated")]
    Reactivated,
    #[serde(rename = "tenant.deleted")]
    Deleted,
    #[serde(rename = "domain.added")]
    DomainAdded,
    #[serde(rename = "domain.removed")]
    DomainRemoved,
    #[serde(rename = "domain.verified")]
    DomainVerified,
    #[serde(rename = "api_key.created")]
    KeyCreated,
    #[serde(rename = "api_key.updated")]
    KeyUpdated,
    #[serde(rename = "api_key.revoked")]
    KeyRevoked,
    #[serde(rename = "api_key.rotated")]
    KeyRotated,
    #[serde(rename = "credential.created")]
    CredentialCreated,
    #[serde(rename = "credential.updated")]
    CredentialUpdated,
    #[serde(rename = "credential.deleted")]
    CredentialDeleted,
    #[serde(rename = "settings.updated")]
    SettingsUpdated,
    #[serde(rename = "keyring.rotated")]
    DataKeyRotated,
    #[serde(rename = "config.updated")]
    ConfigUpdated,
    #[serde(rename = "quota.threshold_reached")]
    QuotaThresholdReached,
    #[serde(rename = "tenant.purged")]
    TenantPurged,
    #[serde(rename = "api_key.expired")]
    KeyExpired,
    #[serde(rename = "credential.revealed")]
    CredentialRevealed,
    #[serde(rename = "plan.updated")]
    PlanUpdated,
    #[serde(rename = "quota.exceeded")]
    QuotaExceeded,
    #[serde(rename = "webhook_endpoint.created")]
    WebhookEndpointCreated,
    #[serde(rename = "webhook_endpoint.updated")]
    WebhookEndpointUpdated,
    #[serde(rename = "webhook_endpoint.deleted")]
    WebhookEndpointDeleted,
    #[serde(rename = "webhook_endpoint.disabled")]
    WebhookEndpointDisabled,
    #[serde(rename = "webhook_endpoint.secret_rotated")]
    WebhookEndpointSecretRotated,
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.status_updated")]
    MessageStatusUpdated,
    #[serde(rename = "provisioning.started")]
    ProvisioningStarted,
    #[serde(rename = "provisioning.step_succeeded")]
    ProvisioningStepSucceeded,
    #[serde(rename = "provisioning.step_failed")]
    ProvisioningStepFailed,
    #[serde(rename = "provisioning.completed")]
    ProvisioningCompleted,
    #[serde(rename = "provisioning.failed")]
    ProvisioningFailed,
    #[serde(rename = "provisioning.compensated")]
    ProvisioningCompensated,
}

impl TenantEventKind {
    /// Every kind, in catalogue order.
    pub const ALL: [TenantEventKind; 37] = [
        Self::Created,
        Self::Updated,
        Self::Suspended,
        Self::Reactivated,
        Self::Deleted,
        Self::DomainAdded,
        Self::DomainRemoved,
        Self::DomainVerified,
        Self::KeyCreated,
        Self::KeyUpdated,
        Self::KeyRevoked,
        Self::KeyRotated,
        Self::CredentialCreated,
        Self::CredentialUpdated,
        Self::CredentialDeleted,
        Self::SettingsUpdated,
        Self::DataKeyRotated,
        Self::ConfigUpdated,
        Self::QuotaThresholdReached,
        Self::TenantPurged,
        Self::KeyExpired,
        Self::CredentialRevealed,
        Self::PlanUpdated,
        Self::QuotaExceeded,
        Self::WebhookEndpointCreated,
        Self::WebhookEndpointUpdated,
        Self::WebhookEndpointDeleted,
        Self::WebhookEndpointDisabled,
        Self::WebhookEndpointSecretRotated,
        Self::MessageReceived,
        Self::MessageStatusUpdated,
        Self::ProvisioningStarted,
        Self::ProvisioningStepSucceeded,
        Self::ProvisioningStepFailed,
        Self::ProvisioningCompleted,
        Self::ProvisioningFailed,
        Self::ProvisioningCompensated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "tenant.created",
            Self::Updated => "tenant.updated",
            Self::Suspended => "tenant.suspended",
            Self::Reactivated => "tenant.reactivated",
            Self::Deleted => "tenant.deleted",
            Self::DomainAdded => "domain.added",
            Self::DomainRemoved => "domain.removed",
            Self::DomainVerified => "domain.verified",
            Self::KeyCreated => "api_key.created",
            Self::KeyUpdated => "api_key.updated",
            Self::KeyRevoked => "api_key.revoked",
            Self::KeyRotated => "api_key.rotated",
            Self::CredentialCreated => "credential.created",
            Self::CredentialUpdated => "credential.updated",
            Self::CredentialDeleted => "credential.deleted",
            Self::SettingsUpdated => "settings.updated",
            Self::DataKeyRotated => "keyring.rotated",
            Self::ConfigUpdated => "config.updated",
            Self::QuotaThresholdReached => "quota.threshold_reached",
            Self::TenantPurged => "tenant.purged",
            Self::KeyExpired => "api_key.expired",
            Self::CredentialRevealed => "credential.revealed",
            Self::PlanUpdated => "plan.updated",
            Self::QuotaExceeded => "quota.exceeded",
            Self::WebhookEndpointCreated => "webhook_endpoint.created",
            Self::WebhookEndpointUpdated => "webhook_endpoint.updated",
            Self::WebhookEndpointDeleted => "webhook_endpoint.deleted",
            Self::WebhookEndpointDisabled => "webhook_endpoint.disabled",
            Self::WebhookEndpointSecretRotated => "webhook_endpoint.secret_rotated",
            Self::MessageReceived => "message.received",
            Self::MessageStatusUpdated => "message.status_updated",
            Self::ProvisioningStarted => "provisioning.started",
            Self::ProvisioningStepSucceeded => "provisioning.step_succeeded",
            Self::ProvisioningStepFailed => "provisioning.step_failed",
            Self::ProvisioningCompleted => "provisioning.completed",
            Self::ProvisioningFailed => "provisioning.failed",
            Self::ProvisioningCompensated => "provisioning.compensated",
        }
    }
}

impl FromStr for TenantEventKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or(())
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

/// The body of an outbound webhook for an event, per the Standard Webhooks
/// spec (`type`, `timestamp`, `data`), plus the tenant it happened to
/// (`null` for an operator-level event) so operator endpoints, which
/// receive every tenant's events, can tell them apart. Built once, when the
/// event is recorded: every attempt sends (and signs) these same bytes.
pub fn webhook_body(
    kind: TenantEventKind,
    tenant: Option<&TenantId>,
    data: &serde_json::Value,
    at: DateTime<Utc>,
) -> String {
    serde_json::json!({
        "type": kind.as_str(),
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "tenant_id": tenant.map(TenantId::as_str),
        "data": data,
    })
    .to_string()
}
