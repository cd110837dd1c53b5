//! Provisioning workflows: one request onboards a tenant (creates it,
//! stores its WhatsApp and Genesys credentials, checks them against Meta
//! and Genesys Cloud, generates its API keys, sets its webhook endpoints
//! and configuration, activates it), durably.
//!
//! The workflow lives in the database (`provisioning_workflows`); a worker
//! on any node leases it and runs its steps in order ([`steps`],
//! [`worker`]). Every step's effect is a change (audit entry + event) that
//! commits in the same transaction as the step's `succeeded`, after the
//! workflow row was locked and the lease checked: a step either happened
//! and is recorded as done, or neither, whatever crashes when. Provider
//! calls happen outside any transaction; a crash after one only means it is
//! made again.
//!
//! Secrets: the request's secrets are sealed in the workflow row (a fresh
//! data key wrapped by the keyring's active KEK) until `store_credentials`
//! moves them into the vault, in the same transaction that erases them from
//! the row. Generated API keys are sealed the same way, and handed out once:
//! the first `GET` of the workflow by the principal that started it returns
//! them and erases them in one transaction (recorded as
//! `provisioning.keys_delivered`). Nothing secret reaches an event, an
//! audit entry, a log line or a step result.

pub mod genesys;
pub mod meta;
pub mod provider;
pub mod service;
pub mod steps;
pub mod worker;

use crate::app::AppState;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
pub use tenantry_api::provisioning::{
    IssuedKey, OnFailure, Step, StepError, StepName, StepStatus, WorkflowStatus,
};
use tenantry_core::TenantId;
use tenantry_crypto::{Binding, DataKey, WrappedKey};
use tenantry_store::WorkflowRow;

impl From<provider::ProviderError> for StepError {
    fn from(e: provider::ProviderError) -> StepError {
        StepError {
            code: e.code,
            message: e.message,
            permanent: e.permanent,
            details: e.details,
        }
    }
}

/// The tenant the workflow creates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantSpec {
    pub id: String,
    pub name: String,
    pub subdomain: String,
    pub plan: String,
    pub region: String,
    pub metadata: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhatsappSpec {
    pub phone_number_id: String,
    pub business_account_id: String,
    pub credential_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenesysSpec {
    /// The region's name (`us_east_1`).
    pub region: String,
    pub credential_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeySpec {
    pub name: String,
    pub scopes: Vec<String>,
    pub environment: String,
}

/// The request, secrets left out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub tenant: TenantSpec,
    pub whatsapp: Option<WhatsappSpec>,
    pub genesys: Option<GenesysSpec>,
    #[serde(default)]
    pub api_keys: Vec<KeySpec>,
    #[serde(default)]
    pub webhook_endpoints: Vec<Value>,
    pub config: Option<Value>,
    #[serde(default)]
    pub on_failure: OnFailure,
    /// A cancellation was asked for: compensation ends `cancelled`.
    #[serde(default)]
    pub cancel_requested: bool,
}

/// The request's secrets, sealed in the workflow until they are stored.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Secrets {
    pub whatsapp: Option<WhatsappSecrets>,
    pub genesys: Option<GenesysSecrets>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([sealed])")
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct WhatsappSecrets {
    pub access_token: String,
    pub app_secret: String,
    pub verify_token: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct GenesysSecrets {
    pub client_id: String,
    pub client_secret: String,
}

/// A workflow as the domain sees it.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub id: String,
    pub tenant_id: TenantId,
    pub status: WorkflowStatus,
    pub spec: Spec,
    pub steps: Vec<Step>,
    pub secrets: Option<String>,
    pub issued_keys: Option<String>,
    pub created_by: String,
    pub next_run_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

fn corrupt(what: &str) -> tenantry_store::StoreError {
    tenantry_store::StoreError::Corrupt(format!("provisioning workflow: {what}"))
}

impl Workflow {
    pub fn new(
        id: String,
        spec: Spec,
        secrets: Option<String>,
        created_by: String,
        now_ms: i64,
    ) -> Workflow {
        Workflow {
            id,
            tenant_id: TenantId::from_trusted(spec.tenant.id.clone()),
            status: WorkflowStatus::Pending,
            spec,
            steps: StepName::ALL.into_iter().map(Step::new).collect(),
            secrets,
            issued_keys: None,
            created_by,
            next_run_ms: now_ms,
            lease_owner: None,
            lease_expires_ms: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }

    pub fn from_row(row: WorkflowRow) -> Result<Workflow, tenantry_store::StoreError> {
        Ok(Workflow {
            status: WorkflowStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            spec: serde_json::from_str(&row.spec).map_err(|_| corrupt("spec"))?,
            steps: serde_json::from_str(&row.steps).map_err(|_| corrupt("steps"))?,
            tenant_id: TenantId::from_trusted(row.tenant_id),
            id: row.id,
            secrets: row.secrets,
            issued_keys: row.issued_keys,
            created_by: row.created_by,
            next_run_ms: row.next_run_ms,
            lease_owner: row.lease_owner,
            lease_expires_ms: row.lease_expires_ms,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
        })
    }

    pub fn to_row(&self) -> WorkflowRow {
        WorkflowRow {
            tenant_id: self.tenant_id.as_str().to_owned(),
            id: self.id.clone(),
            status: self.status.as_str().to_owned(),
            spec: serde_json::to_string(&self.spec).unwrap_or_else(|_| "{}".into()),
            steps: serde_json::to_string(&self.steps).unwrap_or_else(|_| "[]".into()),
            secrets: self.secrets.clone(),
            issued_keys: self.issued_keys.clone(),
            created_by: self.created_by.clone(),
            next_run_ms: self.next_run_ms,
            lease_owner: self.lease_owner.clone(),
            lease_expires_ms: self.lease_expires_ms,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        }
    }

    pub fn step(&self, name: StepName) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    pub fn step_mut(&mut self, name: StepName) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| s.name == name)
    }

    /// The first step that has not succeeded, while the workflow runs.
    pub fn next_step(&self) -> Option<StepName> {
        self.steps
            .iter()
            .find(|s| s.status != StepStatus::Succeeded)
            .map(|s| s.name)
    }

    /// Whether the tenant row exists (its creation succeeded, and was not
    /// undone by deleting it... which is a soft delete: the row stays).
    pub fn tenant_exists(&self) -> bool {
        self.step(StepName::CreateTenant)
            .is_some_and(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::Compensated))
    }

    /// `{workflow_id, tenant_id}`, the start of every event's data.
    pub fn event_data(&self) -> serde_json::Map<String, Value> {
        let mut data = serde_json::Map::new();
        data.insert("workflow_id".into(), json!(self.id));
        data.insert("tenant_id".into(), json!(self.tenant_id.as_str()));
        data
    }
}

/// The milliseconds of `at` since the epoch.
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A millisecond time as a date.
pub fn date(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

const SEALED_KIND: &str = "provisioning";

fn label(workflow: &str) -> String {
    format!("provisioning:{workflow}")
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kek_id: String,
    wrapped: String,
    envelope: String,
}

/// Seals `value` for the workflow `workflow` (its `field`): a fresh data
/// key, wrapped by the keyring's active KEK; bound to the workflow and the
/// field, so a sealed value moved elsewhere does not open.
pub fn seal<T: Serialize>(
    state: &AppState,
    workflow: &str,
    field: &str,
    value: &T,
) -> Result<String, crate::vault::VaultError> {
    let malformed = || crate::vault::VaultError::Crypto(tenantry_crypto::CryptoError::Malformed);
    let label = label(workflow);
    let dek = DataKey::generate(tenantry_core::ids::prefixed_id("pwk", rand::random()));
    let wrapped = tenantry_crypto::wrap(&state.vault.keyring(), &label, &dek)?;
    let plaintext = zeroize::Zeroizing::new(serde_json::to_vec(value).map_err(|_| malformed())?);
    let envelope = tenantry_crypto::seal(&dek, &binding(&label, workflow, field), &plaintext)?;
    serde_json::to_string(&Sealed {
        kek_id: wrapped.kek_id,
        wrapped: STANDARD.encode(&wrapped.ciphertext),
        envelope,
    })
    .map_err(|_| malformed())
}

fn binding<'a>(label: &'a str, workflow: &'a str, field: &'a str) -> Binding<'a> {
    Binding {
        tenant_id: label,
        record_id: workflow,
        kind: SEALED_KIND,
        field,
    }
}

/// Opens what [`seal`] sealed.
pub fn open<T: serde::de::DeserializeOwned>(
    state: &AppState,
    workflow: &str,
    field: &str,
    sealed: &str,
) -> Result<T, crate::vault::VaultError> {
    let malformed = || crate::vault::VaultError::Crypto(tenantry_crypto::CryptoError::Malformed);
    let label = label(workflow);
    let stored: Sealed = serde_json::from_str(sealed).map_err(|_| malformed())?;
    let wrapped = WrappedKey {
        kek_id: stored.kek_id,
        ciphertext: STANDARD.decode(&stored.wrapped).map_err(|_| malformed())?,
    };
    let dek_id = tenantry_crypto::envelope_dek_id(&stored.envelope)?;
    let dek = match tenantry_crypto::unwrap(&state.vault.keyring(), &label, dek_id, &wrapped) {
        Err(tenantry_crypto::CryptoError::UnknownKek(_))
            if state.vault.reload().unwrap_or(false) =>
        {
            tenantry_crypto::unwrap(&state.vault.keyring(), &label, dek_id, &wrapped)?
        }
        other => other?,
    };
    let plaintext = zeroize::Zeroizing::new(tenantry_crypto::open(
        &dek,
        &binding(&label, workflow, field),
        &stored.envelope,
    )?);
    serde_json::from_slice(&plaintext).map_err(|_| malformed())
}

/// This process's provisioning runtime: its node id (the lease owner) and
/// the bell that wakes its worker when a workflow is started here.
pub struct Runtime {
    pub node: String,
    pub wake: tokio::sync::Notify,
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime {
            node: tenantry_core::ids::prefixed_id("node", rand::random()),
            wake: tokio::sync::Notify::new(),
        }
    }
}
