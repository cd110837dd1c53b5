//! Running one step, recording a failure, compensating one step. Each is
//! one transaction that begins by locking the workflow row and checking
//! that this node still holds its lease and that the step is still to do:
//! two nodes (or a node and a cancellation) never both apply a step.

use super::{
    IssuedKey, KeySpec, OnFailure, Secrets, StepError, StepName, StepStatus, Workflow,
    WorkflowStatus, date, genesys, meta, millis, seal,
};
use crate::app::AppState;
use crate::change::{OperatorChange, TenantChange};
use crate::grant::{OperatorGrant, TenantGrant};
use crate::http::problem::ApiError;
use crate::resolution::cache::Invalidation;
use serde_json::{Map, Value, json};
use std::time::Duration;
use tenantry_core::audit::AuditTarget;
use tenantry_core::credentials::{CredentialKind, validate};
use tenantry_core::tenant::{NewTenant, TenantEventKind, TenantStatus};
use tenantry_core::values::{Metadata, PlanName, Region, Subdomain, TenantName};
use tenantry_store::StoreError;

/// The name the worker acts under in the audit log.
pub const WORKER: &str = "provisioning";

/// Why a step did not complete.
#[derive(Debug)]
pub enum Failure {
    /// The lease was lost or the workflow changed meanwhile (cancelled,
    /// already done): nothing was applied, nothing is recorded.
    Lost,
    /// The step failed; the provider may have asked to wait.
    Step(StepError, Option<Duration>),
    /// The database failed: try again later.
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        match e {
            ApiError::DatabaseUnavailable => {
                Failure::Store(StoreError::Setup("the database is unavailable".into()))
            }
            other => Failure::Step(api_error(&other), None),
        }
    }
}

impl From<crate::vault::VaultError> for Failure {
    fn from(e: crate::vault::VaultError) -> Failure {
        Failure::from(ApiError::from(e))
    }
}

/// An error of Tenantry's own (a taken subdomain, invalid input) as a
/// step's error: permanent, except an outage.
pub fn api_error(e: &ApiError) -> StepError {
    let (code, message) = match e {
        ApiError::Conflict { code, detail, .. }
        | ApiError::NotFound { code, detail }
        | ApiError::Forbidden { code, detail }
        | ApiError::Unprocessable { code, detail, .. } => (code.as_str(), detail.to_string()),
        ApiError::Validation(errors) => (
            "validation_failed",
            errors
                .iter()
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ApiError::DecryptionFailed => (
            "decryption_failed",
            "a sealed secret could not be opened".into(),
        ),
        _ => ("internal_error", "the step failed inside Tenantry".into()),
    };
    StepError {
        code: code.to_owned(),
        message,
        permanent: !matches!(e, ApiError::DatabaseUnavailable | ApiError::Unavailable(_)),
        details: json!({}),
    }
}

fn permanent(code: &str, message: impl Into<String>) -> Failure {
    Failure::Step(
        StepError {
            code: code.to_owned(),
            message: message.into(),
            permanent: true,
            details: json!({}),
        },
        None,
    )
}

/// The transaction a step commits in: the tenant's own once it exists,
/// else the operator path (and its audit chain).
enum Ctx {
    Tenant(TenantChange),
    Operator(OperatorChange),
}

impl Ctx {
    async fn open(state: &AppState, wf: &Workflow) -> Result<Ctx, StoreError> {
        if wf.tenant_exists() {
            #[allow(clippy::disallowed_methods)]
            // system grant: the worker runs a workflow an operator started
            let grant = TenantGrant::system(wf.tenant_id.clone(), WORKER);
            Ok(Ctx::Tenant(grant.change(state).await?))
        } else {
            #[allow(clippy::disallowed_methods)]
            // system grant: the worker runs a workflow an operator started
            let grant = OperatorGrant::system(WORKER);
            Ok(Ctx::Operator(grant.change(state).await?))
        }
    }

    async fn lock(&mut self, id: &str) -> Result<Option<Workflow>, StoreError> {
        let row = match self {
            Ctx::Tenant(c) => c.tx().lock_workflow(id).await?,
            Ctx::Operator(c) => c.tx().lock_workflow(id).await?,
        };
        row.map(Workflow::from_row).transpose()
    }

    async fn save(&mut self, wf: &Workflow) -> Result<(), StoreError> {
        let row = wf.to_row();
        match self {
            Ctx::Tenant(c) => c.tx().save_workflow(&row).await,
            Ctx::Operator(c) => c.tx().save_workflow(&row).await,
        }
    }

    /// Tenant events exist once the tenant does.
    fn event(&mut self, kind: TenantEventKind, data: Map<String, Value>) {
        if let Ctx::Tenant(c) = self {
            c.event(kind, Value::Object(data));
        }
    }

    fn audit(&mut self, wf: &Workflow, action: &str, changes: Value) {
        let targets = vec![
            AuditTarget::new("provisioning_workflow", &wf.id),
            crate::tenancy::target(&wf.tenant_id),
        ];
        let metadata = json!({ "workflow_id": wf.id, "started_by": wf.created_by });
        match self {
            Ctx::Tenant(c) => c.audit_with(action, targets, changes, metadata),
            Ctx::Operator(c) => c.audit_with(action, targets, changes, metadata),
        }
    }

    fn tenant(&mut self) -> Result<&mut TenantChange, Failure> {
        match self {
            Ctx::Tenant(c) => Ok(c),
            Ctx::Operator(_) => Err(Failure::Store(StoreError::Corrupt(
                "a provisioning step needs its tenant, which does not exist".into(),
            ))),
        }
    }

    async fn commit(self) -> Result<(), StoreError> {
        match self {
            Ctx::Tenant(c) => c.commit().await,
            Ctx::Operator(c) => c.commit().await,
        }
    }
}

/// Opens the step's transaction: the workflow locked, still leased by this
/// node and in one of `statuses`.
async fn begin(
    state: &AppState,
    wf: &Workflow,
    statuses: &[WorkflowStatus],
) -> Result<(Ctx, Workflow), Failure> {
    let mut ctx = Ctx::open(state, wf).await?;
    let Some(current) = ctx.lock(&wf.id).await? else {
        return Err(Failure::Lost);
    };
    if current.lease_owner.as_deref() != Some(state.provisioning.node.as_str())
        || !statuses.contains(&current.status)
    {
        return Err(Failure::Lost);
    }
    Ok((ctx, current))
}

const RUNNING: &[WorkflowStatus] = &[WorkflowStatus::Pending, WorkflowStatus::Running];

fn lease_until(state: &AppState) -> i64 {
    millis(state.clock.now()) + duration_ms(state.config.provisioning_lease)
}

pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Records `step` as succeeded with `result` on the open transaction and
/// commits it with the step's effect.
async fn finish(
    state: &AppState,
    mut ctx: Ctx,
    mut wf: Workflow,
    step: StepName,
    result: Value,
) -> Result<(), Failure> {
    let now = state.clock.now();
    let Some(s) = wf.step_mut(step) else {
        return Err(Failure::Lost);
    };
    if s.status == StepStatus::Succeeded {
        return Err(Failure::Lost);
    }
    s.status = StepStatus::Succeeded;
    s.finished_at = Some(now);
    s.result = result.clone();
    s.error = None;
    wf.updated_ms = millis(now);
    if step == StepName::Activate {
        wf.status = WorkflowStatus::Succeeded;
        wf.secrets = None;
        wf.lease_owner = None;
        wf.lease_expires_ms = 0;
    } else {
        wf.status = WorkflowStatus::Running;
        wf.lease_expires_ms = lease_until(state);
    }
    ctx.save(&wf).await?;
    let mut data = wf.event_data();
    data.insert("step".into(), json!(step));
    ctx.event(TenantEventKind::ProvisioningStepSucceeded, data);
    ctx.audit(
        &wf,
        "provisioning.step_succeeded",
        json!({ "step": step, "result": result }),
    );
    if step == StepName::Activate {
        ctx.event(TenantEventKind::ProvisioningCompleted, wf.event_data());
        ctx.audit(&wf, "provisioning.completed", json!({}));
    }
    ctx.commit().await?;
    tracing::info!(workflow_id = %wf.id, tenant_id = %wf.tenant_id, step = step.as_str(), "provisioning step succeeded");
    Ok(())
}

/// Runs `step` of `wf` (leased by this node).
pub async fn run(state: &AppState, wf: &Workflow, step: StepName) -> Result<(), Failure> {
    match step {
        StepName::CreateTenant => create_tenant(state, wf).await,
        StepName::StoreCredentials => store_credentials(state, wf).await,
        StepName::VerifyWhatsapp => {
            let result = match &wf.spec.whatsapp {
                None => json!({ "skipped": true }),
                Some(w) => {
                    let data = stored_secrets(state, wf, &w.credential_id).await?;
                    let token = field(&data, "access_token")?;
                    meta::verify_phone_number(state, &w.phone_number_id, &token)
                        .await
                        .map_err(provider_failure)?
                }
            };
            let (ctx, current) = begin(state, wf, RUNNING).await?;
            finish(state, ctx, current, step, result).await
        }
        StepName::VerifyGenesys => {
            let result = match &wf.spec.genesys {
                None => json!({ "skipped": true }),
                Some(g) => {
                    let data = stored_secrets(state, wf, &g.credential_id).await?;
                    let id = field(&data, "client_id")?;
                    let secret = field(&data, "client_secret")?;
                    genesys::verify_client(state, &g.region, &id, &secret)
                        .await
                        .map_err(provider_failure)?
                }
            };
            let (ctx, current) = begin(state, wf, RUNNING).await?;
            finish(state, ctx, current, step, result).await
        }
        StepName::GenerateApiKeys => generate_api_keys(state, wf).await,
        StepName::ConfigureWebhooks => configure_webhooks(state, wf).await,
        StepName::InitializeConfig => {
            let (mut ctx, current) = begin(state, wf, RUNNING).await?;
            let result = match &current.spec.config {
                None => json!({ "skipped": true }),
                Some(patch) => {
                    crate::limits::tenant_config::patch_on(state, ctx.tenant()?, patch).await?;
                    json!({ "applied": true })
                }
            };
            finish(state, ctx, current, step, result).await
        }
        StepName::Activate => {
            let (mut ctx, current) = begin(state, wf, RUNNING).await?;
            let change = ctx.tenant()?;
            let before = change
                .tx()
                .tenant_for_update()
                .await
                .map_err(crate::tenancy::or_tenant_not_found)?;
            if before.status != TenantStatus::Provisioning {
                return Err(permanent(
                    "tenant_not_provisioning",
                    format!("the tenant is {}, not provisioning", before.status),
                ));
            }
            crate::tenancy::change_status(
                change,
                TenantStatus::Provisioning,
                TenantStatus::Active,
                "tenant.activated",
                state.clock.now(),
            )
            .await?;
            finish(state, ctx, current, step, json!({ "status": "active" })).await
        }
    }
}

fn provider_failure(e: super::provider::ProviderError) -> Failure {
    let wait = e.retry_after;
    Failure::Step(e.into(), wait)
}

fn field(data: &Map<String, Value>, name: &str) -> Result<String, Failure> {
    data.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            permanent(
                "credential_incomplete",
                format!("the stored credential has no {name}"),
            )
        })
}

/// The fields of a stored credential, its secrets opened (to use them, not
/// to show them: nothing is recorded, nothing leaves the server but the
/// provider call).
async fn stored_secrets(
    state: &AppState,
    wf: &Workflow,
    credential_id: &str,
) -> Result<Map<String, Value>, Failure> {
    #[allow(clippy::disallowed_methods)] // system grant: the worker reads the credentials it checks
    let grant = TenantGrant::system(wf.tenant_id.clone(), WORKER);
    let mut tx = grant.read(state).await?;
    let stored = match tx.get_credential(credential_id).await {
        Ok(stored) => stored,
        Err(StoreError::NotFound) => {
            return Err(permanent(
                "credential_not_found",
                "the credential this workflow stored is gone",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let keys = crate::vault::credentials::keys_for(state, &mut tx, &stored).await?;
    let data = crate::vault::credentials::open_fields(&keys, wf.tenant_id.as_str(), &stored)?;
    tx.commit().await?;
    Ok(data)
}

async fn create_tenant(state: &AppState, wf: &Workflow) -> Result<(), Failure> {
    let t = &wf.spec.tenant;
    let new = NewTenant {
        id: wf.tenant_id.clone(),
        name: TenantName::from_trusted(t.name.clone()),
        subdomain: Subdomain::from_trusted(t.subdomain.clone()),
        plan: PlanName::from_trusted(t.plan.clone()),
        region: Region::from_trusted(t.region.clone()),
        metadata: match &t.metadata {
            Value::Object(m) => Metadata::from_trusted(m.clone()),
            _ => Metadata::empty(),
        },
    };
    crate::tenancy::require_plan(state, &new.plan).await?;
    let (ctx, current) = begin(state, wf, RUNNING).await?;
    let Ctx::Operator(mut op) = ctx else {
        return Err(Failure::Lost);
    };
    let existing = op.tx().get_tenant(&new.id).await?;
    let mut change = match existing {
        None => {
            let tenant = op
                .tx()
                .insert_tenant_as(&new, TenantStatus::Provisioning, state.clock.now())
                .await
                .map_err(ApiError::from)?;
            let mut change = op.scope_to(&tenant.id).await?;
            crate::tenancy::record_created(&mut change, &tenant);
            change
        }
        // A tenant left `provisioning_failed` by this id's earlier workflow
        // is taken up again.
        Some(t) if t.status == TenantStatus::ProvisioningFailed => {
            let mut change = op.scope_to(&t.id).await?;
            crate::tenancy::change_status(
                &mut change,
                TenantStatus::ProvisioningFailed,
                TenantStatus::Provisioning,
                "tenant.provisioning_resumed",
                state.clock.now(),
            )
            .await?;
            change
        }
        Some(_) => {
            return Err(Failure::from(ApiError::from(StoreError::Conflict(
                tenantry_store::Conflict::TenantId,
            ))));
        }
    };
    change.event(
        TenantEventKind::ProvisioningStarted,
        Value::Object(current.event_data()),
    );
    finish(
        state,
        Ctx::Tenant(change),
        current,
        StepName::CreateTenant,
        json!({ "tenant_id": wf.tenant_id.as_str(), "status": "provisioning" }),
    )
    .await
}

async fn store_credentials(state: &AppState, wf: &Workflow) -> Result<(), Failure> {
    let (mut ctx, mut current) = begin(state, wf, RUNNING).await?;
    let secrets: Secrets = match &current.secrets {
        Some(sealed) => super::open(state, &current.id, "secrets", sealed)?,
        None => Secrets::default(),
    };
    let change = ctx.tenant()?;
    let mut stored = Vec::new();
    if let Some(w) = &current.spec.whatsapp {
        let Some(s) = &secrets.whatsapp else {
            return Err(permanent(
                "secrets_missing",
                "the WhatsApp secrets are gone",
            ));
        };
        let data = json!({
            "phone_number_id": w.phone_number_id,
            "business_account_id": w.business_account_id,
            "access_token": s.access_token,
            "app_secret": s.app_secret,
            "verify_token": s.verify_token,
        });
        stored.push(
            put_credential(
                state,
                change,
                &w.credential_id,
                CredentialKind::Whatsapp,
                "WhatsApp",
                data,
            )
            .await?,
        );
    }
    if let Some(g) = &current.spec.genesys {
        let Some(s) = &secrets.genesys else {
            return Err(permanent("secrets_missing", "the Genesys secrets are gone"));
        };
        let data = json!({
            "region": g.region,
            "client_id": s.client_id,
            "client_secret": s.client_secret,
        });
        stored.push(
            put_credential(
                state,
                change,
                &g.credential_id,
                CredentialKind::Genesys,
                "Genesys Cloud",
                data,
            )
            .await?,
        );
    }
    // The secrets now live in the vault only.
    current.secrets = None;
    finish(
        state,
        ctx,
        current,
        StepName::StoreCredentials,
        json!({ "credentials": stored }),
    )
    .await
}

async fn put_credential(
    state: &AppState,
    change: &mut TenantChange,
    id: &str,
    kind: CredentialKind,
    name: &str,
    data: Value,
) -> Result<Value, Failure> {
    let Value::Object(data) = data else {
        return Err(permanent(
            "internal_error",
            "credential data is not an object",
        ));
    };
    validate(kind, &data, None).map_err(ApiError::Validation)?;
    crate::vault::credentials::create_on(state, change, id.to_owned(), kind, name.to_owned(), data)
        .await?;
    Ok(json!({ "id": id, "kind": kind }))
}

async fn generate_api_keys(state: &AppState, wf: &Workflow) -> Result<(), Failure> {
    let (mut ctx, mut current) = begin(state, wf, RUNNING).await?;
    let change = ctx.tenant()?;
    let mut issued = Vec::new();
    let mut described = Vec::new();
    for spec in current.spec.api_keys.clone() {
        let KeySpec {
            name,
            scopes,
            environment,
        } = spec;
        let scopes =
            tenantry_core::keys::Scopes::parse("scopes", &scopes).map_err(ApiError::from)?;
        let environment = tenantry_core::keys::Environment::parse("environment", &environment)
            .map_err(ApiError::from)?;
        let new = crate::keys::tenant_keys::NewKey {
            name,
            scopes,
            environment,
            expires_at: None,
            metadata: Metadata::empty(),
        };
        let (key, secret) = crate::keys::tenant_keys::create_on(state, change, new).await?;
        described.push(json!({
            "id": key.id, "name": key.name, "scopes": key.scopes.names(), "start": key.start,
        }));
        issued.push(IssuedKey {
            id: key.id.clone(),
            name: key.name.clone(),
            key: secret.expose().to_owned(),
        });
    }
    current.issued_keys = if issued.is_empty() {
        None
    } else {
        Some(seal(state, &current.id, "issued_keys", &issued)?)
    };
    finish(
        state,
        ctx,
        current,
        StepName::GenerateApiKeys,
        json!({ "keys": described }),
    )
    .await
}

/// Registers the request's webhook endpoints; their signing secrets join
/// the generated keys, sealed, to be handed out once.
async fn configure_webhooks(state: &AppState, wf: &Workflow) -> Result<(), Failure> {
    let (mut ctx, mut current) = begin(state, wf, RUNNING).await?;
    if current.spec.webhook_endpoints.is_empty() {
        return finish(
            state,
            ctx,
            current,
            StepName::ConfigureWebhooks,
            json!({ "skipped": true }),
        )
        .await;
    }
    let change = ctx.tenant()?;
    let mut issued: Vec<IssuedKey> = match &current.issued_keys {
        Some(sealed) => super::open(state, &current.id, "issued_keys", sealed)?,
        None => Vec::new(),
    };
    let mut described = Vec::new();
    for body in current.spec.webhook_endpoints.clone() {
        let input: crate::webhooks::endpoints::EndpointInput = serde_json::from_value(body)
            .map_err(|e| permanent("validation_failed", format!("a webhook endpoint: {e}")))?;
        let created =
            crate::webhooks::endpoints::create_tenant_endpoint(state, change, input).await?;
        described.push(json!({ "id": created.endpoint.id, "url": created.endpoint.url }));
        issued.push(IssuedKey {
            id: created.endpoint.id.clone(),
            name: format!("webhook endpoint {}", created.endpoint.url),
            key: created.secret.expose().to_owned(),
        });
    }
    current.issued_keys = Some(seal(state, &current.id, "issued_keys", &issued)?);
    finish(
        state,
        ctx,
        current,
        StepName::ConfigureWebhooks,
        json!({ "endpoints": described }),
    )
    .await
}

/// Counts an attempt of `step` and marks it running (bookkeeping, before
/// the attempt; its outcome is recorded by the step or by
/// [`record_failure`]). `None` when the lease or the step is no longer this
/// node's.
pub async fn mark_attempt(
    state: &AppState,
    id: &str,
    step: StepName,
) -> Result<Option<Workflow>, StoreError> {
    #[allow(clippy::disallowed_methods)] // system grant: the worker's own bookkeeping
    let grant = OperatorGrant::system(WORKER);
    #[allow(clippy::disallowed_methods)] // an attempt counter and a lease renewal: nobody's change
    let mut tx = grant.untracked_write(state).await?;
    let Some(row) = tx.lock_workflow(id).await? else {
        return Ok(None);
    };
    let mut wf = Workflow::from_row(row)?;
    if wf.lease_owner.as_deref() != Some(state.provisioning.node.as_str())
        || !RUNNING.contains(&wf.status)
    {
        return Ok(None);
    }
    let now = state.clock.now();
    let Some(s) = wf.step_mut(step) else {
        return Ok(None);
    };
    s.attempts += 1;
    s.status = StepStatus::Running;
    if s.started_at.is_none() {
        s.started_at = Some(now);
    }
    wf.status = WorkflowStatus::Running;
    wf.lease_expires_ms = lease_until(state);
    wf.updated_ms = millis(now);
    tx.save_workflow(&wf.to_row()).await?;
    tx.commit().await?;
    Ok(Some(wf))
}

/// Gives the lease up (this node's only), for another attempt at
/// `next_run_ms` if given.
pub async fn release(
    state: &AppState,
    id: &str,
    next_run_ms: Option<i64>,
) -> Result<(), StoreError> {
    #[allow(clippy::disallowed_methods)] // system grant: the worker's own bookkeeping
    let grant = OperatorGrant::system(WORKER);
    #[allow(clippy::disallowed_methods)] // a lease given up: nobody's change
    let mut tx = grant.untracked_write(state).await?;
    let Some(row) = tx.lock_workflow(id).await? else {
        return Ok(());
    };
    let mut wf = Workflow::from_row(row)?;
    if wf.lease_owner.as_deref() != Some(state.provisioning.node.as_str()) {
        return Ok(());
    }
    wf.lease_owner = None;
    wf.lease_expires_ms = 0;
    if let Some(at) = next_run_ms {
        wf.next_run_ms = at;
    }
    tx.save_workflow(&wf.to_row()).await?;
    tx.commit().await?;
    Ok(())
}

/// The wait before attempt `attempts + 1`: exponential from
/// `provisioning_backoff`, at most 5 minutes, with full jitter over its
/// upper half; never shorter than what the provider asked for.
pub fn backoff(state: &AppState, attempts: u32, asked: Option<Duration>) -> Duration {
    let base = state.config.provisioning_backoff;
    let exp = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = exp.min(Duration::from_secs(300));
    let half = capped / 2;
    let jitter = half.mul_f64(rand::random::<f64>());
    (half + jitter).max(asked.unwrap_or_default())
}

/// Records a failed attempt of `step`. A transient failure with attempts
/// left schedules the next one and gives the lease up (`true`: stop
/// here); otherwise the step and the workflow fail, and the workflow is
/// held or moves on to compensation (`false`: go on).
pub async fn record_failure(
    state: &AppState,
    wf: &Workflow,
    step: StepName,
    error: StepError,
    asked: Option<Duration>,
) -> Result<bool, Failure> {
    let (mut ctx, mut current) = begin(state, wf, RUNNING).await?;
    let now = state.clock.now();
    let max = state.config.provisioning_max_attempts;
    let on_failure = current.spec.on_failure;
    let Some(s) = current.step_mut(step) else {
        return Err(Failure::Lost);
    };
    let attempts = s.attempts;
    let terminal = error.permanent || attempts >= max;
    s.error = Some(error.clone());
    s.status = if terminal {
        StepStatus::Failed
    } else {
        StepStatus::Pending
    };
    if terminal {
        s.finished_at = Some(now);
    }
    current.updated_ms = millis(now);
    let stop = if !terminal {
        let wait = backoff(state, attempts, asked);
        current.next_run_ms = millis(now) + duration_ms(wait);
        current.lease_owner = None;
        current.lease_expires_ms = 0;
        true
    } else if on_failure == OnFailure::Hold {
        current.status = WorkflowStatus::Failed;
        current.lease_owner = None;
        current.lease_expires_ms = 0;
        true
    } else {
        current.status = WorkflowStatus::Compensating;
        current.lease_expires_ms = lease_until(state);
        false
    };
    let error_data = json!({ "code": error.code, "message": error.message });
    let mut data = current.event_data();
    data.insert("step".into(), json!(step));
    data.insert("error".into(), error_data.clone());
    data.insert("permanent".into(), json!(error.permanent));
    ctx.event(TenantEventKind::ProvisioningStepFailed, data);
    ctx.audit(
        &current,
        "provisioning.step_failed",
        json!({ "step": step, "error": error, "attempts": attempts, "terminal": terminal }),
    );
    if terminal {
        let mut data = current.event_data();
        data.insert("step".into(), json!(step));
        data.insert("error".into(), error_data);
        ctx.event(TenantEventKind::ProvisioningFailed, data);
        ctx.audit(&current, "provisioning.failed", json!({ "step": step }));
        if on_failure == OnFailure::Hold
            && let Ctx::Tenant(change) = &mut ctx
        {
            mark_tenant_failed(state, change).await?;
        }
    }
    ctx.save(&current).await?;
    ctx.commit().await?;
    tracing::warn!(
        workflow_id = %current.id, step = step.as_str(), code = %error.code,
        permanent = error.permanent, attempts, terminal, "provisioning step failed"
    );
    Ok(stop)
}

async fn mark_tenant_failed(state: &AppState, change: &mut TenantChange) -> Result<(), Failure> {
    let before = change
        .tx()
        .tenant_for_update()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    if before.status != TenantStatus::Provisioning {
        return Ok(());
    }
    crate::tenancy::change_status(
        change,
        TenantStatus::Provisioning,
        TenantStatus::ProvisioningFailed,
        "tenant.provisioning_failed",
        state.clock.now(),
    )
    .await?;
    Ok(())
}

/// Undoes the last completed step (`true`: more to do), or, when none is
/// left, ends the compensation (`false`).
pub async fn compensate_next(state: &AppState, wf: &Workflow) -> Result<bool, Failure> {
    const COMPENSATING: &[WorkflowStatus] = &[WorkflowStatus::Compensating];
    let (mut ctx, mut current) = begin(state, wf, COMPENSATING).await?;
    let now = state.clock.now();
    let target = current
        .steps
        .iter()
        .rev()
        .find(|s| s.status == StepStatus::Succeeded)
        .map(|s| (s.name, s.result.clone()));
    let Some((step, result)) = target else {
        current.status = if current.spec.cancel_requested {
            WorkflowStatus::Cancelled
        } else {
            WorkflowStatus::Compensated
        };
        current.secrets = None;
        current.issued_keys = None;
        current.lease_owner = None;
        current.lease_expires_ms = 0;
        current.updated_ms = millis(now);
        let undone: Vec<StepName> = current
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Compensated)
            .map(|s| s.name)
            .collect();
        let mut data = current.event_data();
        data.insert("steps".into(), json!(undone));
        ctx.event(TenantEventKind::ProvisioningCompensated, data);
        ctx.audit(
            &current,
            "provisioning.compensated",
            json!({ "steps": undone, "status": current.status }),
        );
        ctx.save(&current).await?;
        ctx.commit().await?;
        tracing::info!(workflow_id = %current.id, status = current.status.as_str(), "provisioning compensated");
        return Ok(false);
    };
    let undone = undo(state, &mut ctx, &current, step, &result).await?;
    if matches!(
        step,
        StepName::GenerateApiKeys | StepName::ConfigureWebhooks
    ) {
        // Nothing undone is handed out any more.
        current.issued_keys = None;
    }
    if let Some(s) = current.step_mut(step) {
        s.status = StepStatus::Compensated;
        s.compensation = Some(json!({ "status": "succeeded", "at": now, "undone": undone }));
    }
    current.lease_expires_ms = lease_until(state);
    current.updated_ms = millis(now);
    ctx.audit(
        &current,
        "provisioning.step_compensated",
        json!({ "step": step, "undone": undone }),
    );
    ctx.save(&current).await?;
    ctx.commit().await?;
    Ok(true)
}

/// Undoes one step's effect on the open transaction; says what it undid.
async fn undo(
    state: &AppState,
    ctx: &mut Ctx,
    wf: &Workflow,
    step: StepName,
    result: &Value,
) -> Result<Value, Failure> {
    let ids = |list: &str| -> Vec<String> {
        result
            .get(list)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(match step {
        StepName::GenerateApiKeys => {
            let change = ctx.tenant()?;
            let mut revoked = Vec::new();
            for id in ids("keys") {
                match crate::keys::tenant_keys::revoke_on(state, change, &id).await {
                    Ok(_) => revoked.push(id),
                    Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            json!({ "revoked_keys": revoked })
        }
        StepName::StoreCredentials => {
            let change = ctx.tenant()?;
            let mut deleted = Vec::new();
            for id in ids("credentials") {
                match crate::vault::credentials::delete_on(change, &id).await {
                    Ok(()) => deleted.push(id),
                    Err(ApiError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            json!({ "deleted_credentials": deleted })
        }
        StepName::CreateTenant => {
            let change = ctx.tenant()?;
            let before = change
                .tx()
                .tenant_for_update()
                .await
                .map_err(crate::tenancy::or_tenant_not_found)?;
            let now = state.clock.now();
            if wf.spec.on_failure == OnFailure::CompensateAndDelete {
                if before.status != TenantStatus::Deleted {
                    change
                        .tx()
                        .set_status(TenantStatus::Deleted, Some(now), now)
                        .await?;
                    change.event(TenantEventKind::Deleted, json!({ "by": "provisioning" }));
                    change.audit(
                        "tenant.deleted",
                        vec![crate::tenancy::target(&wf.tenant_id)],
                        json!({ "status": { "from": before.status, "to": "deleted" } }),
                    );
                }
                change.invalidate(Invalidation::Tenant(wf.tenant_id.clone()));
                json!({ "tenant": "deleted" })
            } else {
                if before.status == TenantStatus::Provisioning {
                    mark_tenant_failed(state, change).await?;
                }
                json!({ "tenant": "provisioning_failed" })
            }
        }
        StepName::ConfigureWebhooks => {
            let change = ctx.tenant()?;
            let mut deleted = Vec::new();
            for id in ids("endpoints") {
                if crate::webhooks::endpoints::delete_tenant_endpoint(state, change, &id).await? {
                    deleted.push(id);
                }
            }
            json!({ "deleted_webhook_endpoints": deleted })
        }
        // Checks and configuration leave nothing that outlives the tenant.
        StepName::VerifyWhatsapp
        | StepName::VerifyGenesys
        | StepName::InitializeConfig
        | StepName::Activate => json!({ "nothing_to_undo": true }),
    })
}

/// When the workflow's next attempt is due, for display.
pub fn next_attempt(wf: &Workflow) -> Option<chrono::DateTime<chrono::Utc>> {
    matches!(wf.status, WorkflowStatus::Pending | WorkflowStatus::Running)
        .then(|| date(wf.next_run_ms))
}
