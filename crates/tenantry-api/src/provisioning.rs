//! `provisioning` wire types.

use crate::REDACTED;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningTenantIn {
    pub id: String,
    pub name: String,
    /// Defaults to the id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

#[derive(Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WhatsappIn {
    pub phone_number_id: String,
    pub business_account_id: String,
    pub access_token: String,
    pub app_secret: String,
    pub verify_token: String,
}

impl std::fmt::Debug for WhatsappIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsappIn")
            .field("phone_number_id", &self.phone_number_id)
            .field("business_account_id", &self.business_account_id)
            .field("access_token", &REDACTED)
            .field("app_secret", &REDACTED)
            .field("verify_token", &REDACTED)
            .finish()
    }
}

#[derive(Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct GenesysIn {
    /// A Genesys Cloud region, by name (`us_east_1`) or domain (`mypurecloud.com`).
    pub region: String,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for GenesysIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenesysIn")
            .field("region", &self.region)
            .field("client_id", &self.client_id)
            .field("client_secret", &REDACTED)
            .finish()
    }
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    pub name: String,
    pub scopes: Vec<String>,
    /// `live` (default) or `test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

#[derive(Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningIn {
    pub tenant: ProvisioningTenantIn,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<WhatsappIn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genesys: Option<GenesysIn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<Vec<ApiKeyIn>>,
    /// Webhook endpoints to create (the body of `POST` on the tenant's
    /// webhook endpoints).
    #[schema(value_type = Option<Vec<Object>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_endpoints: Option<Vec<Value>>,
    /// A merge patch of the tenant's configuration (as `PATCH /v1/tenants/{id}/config`).
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// Only check the credentials against Meta and Genesys Cloud; store nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// What a step that fails for good leads to (default `compensate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkflowOut {
    /// Null for a dry run, which stores nothing.
    pub id: Option<String>,
    pub tenant_id: String,
    pub status: WorkflowStatus,
    pub dry_run: bool,
    pub on_failure: OnFailure,
    pub steps: Vec<Step>,
    /// When the next attempt of the current step is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The generated API keys: returned once, to the principal that started
    /// the workflow, on its first read after they were made. Never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<Vec<IssuedKey>>,
    /// Whether generated keys are still waiting to be handed out.
    pub api_keys_pending: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkflowList {
    pub data: Vec<WorkflowOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only workflows in this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// The steps, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    CreateTenant,
    StoreCredentials,
    VerifyWhatsapp,
    VerifyGenesys,
    GenerateApiKeys,
    ConfigureWebhooks,
    InitializeConfig,
    Activate,
}

impl StepName {
    pub const ALL: [StepName; 8] = [
        StepName::CreateTenant,
        StepName::StoreCredentials,
        StepName::VerifyWhatsapp,
        StepName::VerifyGenesys,
        StepName::GenerateApiKeys,
        StepName::ConfigureWebhooks,
        StepName::InitializeConfig,
        StepName::Activate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepName::CreateTenant => "create_tenant",
            StepName::StoreCredentials => "store_credentials",
            StepName::VerifyWhatsapp => "verify_whatsapp",
            StepName::VerifyGenesys => "verify_genesys",
            StepName::GenerateApiKeys => "generate_api_keys",
            StepName::ConfigureWebhooks => "configure_webhooks",
            StepName::InitializeConfig => "initialize_config",
            StepName::Activate => "activate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Compensated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowStatus {
    /// Waiting for a worker (or for its next attempt).
    Pending,
    Running,
    /// Every step succeeded; the tenant is active.
    Succeeded,
    /// A step failed for good and `on_failure` is `hold`: nothing was
    /// undone; `retry` resumes from the failed step, `cancel` compensates.
    Failed,
    /// Undoing the completed steps, in reverse order.
    Compensating,
    /// A failure's compensation is complete.
    Compensated,
    /// A cancellation's compensation is complete.
    Cancelled,
}

impl WorkflowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Pending => "pending",
            WorkflowStatus::Running => "running",
            WorkflowStatus::Succeeded => "succeeded",
            WorkflowStatus::Failed => "failed",
            WorkflowStatus::Compensating => "compensating",
            WorkflowStatus::Compensated => "compensated",
            WorkflowStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<WorkflowStatus> {
        [
            WorkflowStatus::Pending,
            WorkflowStatus::Running,
            WorkflowStatus::Succeeded,
            WorkflowStatus::Failed,
            WorkflowStatus::Compensating,
            WorkflowStatus::Compensated,
            WorkflowStatus::Cancelled,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
    }
}

/// What happens when a step fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Undo the completed steps; the tenant is left `provisioning_failed`.
    #[default]
    Compensate,
    /// Undo the completed steps and (soft-)delete the tenant.
    CompensateAndDelete,
    /// Undo nothing: the tenant is left `provisioning_failed` and the
    /// workflow `failed`, to be retried (after fixing the stored
    /// credentials) or cancelled.
    Hold,
}

/// A step's failure, in the provider's own words where a provider failed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepError {
    pub code: String,
    pub message: String,
    /// Trying again with the same input cannot succeed.
    pub permanent: bool,
    /// What else the provider said (status, codes, trace id).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub details: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    pub name: StepName,
    pub status: StepStatus,
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the step found or made (the verified WhatsApp name, the Genesys
    /// organization, the ids of the keys and credentials), never a secret.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub result: Value,
    /// The last attempt's error.
    pub error: Option<StepError>,
    /// How undoing the step went, once compensation reached it.
    #[schema(value_type = Option<Object>)]
    pub compensation: Option<Value>,
}

impl Step {
    pub fn new(name: StepName) -> Step {
        Step {
            name,
            status: StepStatus::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            result: Value::Null,
            error: None,
            compensation: None,
        }
    }
}

/// A generated key, as handed out once.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub id: String,
    pub name: String,
    /// The key. Store it now: it is shown once.
    pub key: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ProvisioningIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningIn")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}
