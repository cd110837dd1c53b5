//! What the API does with workflows: start one, read it (handing out its
//! generated keys once), list them, retry a held one, cancel one, and the
//! dry run that only checks credentials.

use super::{
    IssuedKey, Secrets, Spec, Step, StepError, StepName, StepStatus, Workflow, WorkflowStatus,
    genesys, meta, millis,
};
use crate::app::AppState;
use crate::change::{OperatorChange, TenantChange};
use crate::grant::OperatorGrant;
use crate::http::codes::Code;
use crate::http::problem::ApiError;
use serde_json::{Value, json};
use tenantry_core::TenantId;
use tenantry_core::audit::AuditTarget;
use tenantry_core::tenant::TenantStatus;
use tenantry_store::{StoreError, WorkflowPage};

pub fn workflow_not_found() -> ApiError {
    ApiError::NotFound {
        code: Code::WorkflowNotFound,
        detail: "no such provisioning workflow".into(),
    }
}

fn conflict(detail: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::Conflict {
        code: Code::WorkflowConflict,
        detail: detail.into(),
        field: None,
    }
}

fn targets(wf: &Workflow) -> Vec<AuditTarget> {
    vec![
        AuditTarget::new("provisioning_workflow", &wf.id),
        crate::tenancy::target(&wf.tenant_id),
    ]
}

/// What the audit log shows of a request: never a secret.
fn described(spec: &Spec) -> Value {
    json!({
        "tenant": { "id": spec.tenant.id, "name": spec.tenant.name, "subdomain": spec.tenant.subdomain,
                    "plan": spec.tenant.plan, "region": spec.tenant.region },
        "whatsapp": spec.whatsapp.as_ref().map(|w| json!({
            "phone_number_id": w.phone_number_id, "business_account_id": w.business_account_id,
        })),
        "genesys": spec.genesys.as_ref().map(|g| json!({ "region": g.region })),
        "api_keys": spec.api_keys.iter().map(|k| json!({ "name": k.name, "scopes": k.scopes })).collect::<Vec<_>>(),
        "webhook_endpoints": spec.webhook_endpoints.len(),
        "config": spec.config.is_some(),
        "on_failure": spec.on_failure,
    })
}

/// Stores a new workflow (the worker runs it).
pub async fn start(
    state: &AppState,
    grant: &OperatorGrant,
    spec: Spec,
    secrets: Secrets,
) -> Result<Workflow, ApiError> {
    let tenant_id = TenantId::from_trusted(spec.tenant.id.clone());
    crate::tenancy::require_plan(
        state,
        &tenantry_core::values::PlanName::from_trusted(spec.tenant.plan.clone()),
    )
    .await?;
    let now = millis(state.clock.now());
    let id = state
        .ids
        .sortable("prov", u64::try_from(now).unwrap_or_default());
    let sealed = if secrets.whatsapp.is_some() || secrets.genesys.is_some() {
        Some(super::seal(state, &id, "secrets", &secrets)?)
    } else {
        None
    };
    let wf = Workflow::new(id, spec, sealed, grant.audit_actor().id.clone(), now);
    let mut op = grant.change(state).await?;
    // Taken ids and subdomains are refused now; a tenant left
    // `provisioning_failed` may be provisioned again.
    match op.tx().get_tenant(&tenant_id).await? {
        Some(t) if t.status != TenantStatus::ProvisioningFailed => {
            return Err(StoreError::Conflict(tenantry_store::Conflict::TenantId).into());
        }
        _ => {}
    }
    if let Some(owner) = op
        .tx()
        .find_tenant_by_subdomain(&wf.spec.tenant.subdomain)
        .await?
        && owner != tenant_id
    {
        return Err(StoreError::Conflict(tenantry_store::Conflict::Subdomain).into());
    }
    op.tx()
        .insert_workflow(&wf.to_row())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                conflict("a provisioning workflow for this tenant id is not finished")
            }
            other => other.into(),
        })?;
    op.audit_with(
        "provisioning.requested",
        targets(&wf),
        json!({ "request": described(&wf.spec) }),
        json!({ "workflow_id": wf.id }),
    );
    op.commit().await?;
    state.provisioning.wake.notify_one();
    tracing::info!(workflow_id = %wf.id, tenant_id = %wf.tenant_id, "provisioning workflow started");
    Ok(wf)
}

async fn load(state: &AppState, grant: &OperatorGrant, id: &str) -> Result<Workflow, ApiError> {
    let mut tx = grant.read(state).await?;
    let row = tx.get_workflow(id).await?.ok_or_else(workflow_not_found)?;
    tx.commit().await?;
    Ok(Workflow::from_row(row)?)
}

/// A change that can lock and save the workflow: the tenant's once it
/// exists, else the operator's.
enum Changing {
    Tenant(TenantChange),
    Operator(OperatorChange),
}

impl Changing {
    async fn open(
        state: &AppState,
        grant: &OperatorGrant,
        wf: &Workflow,
    ) -> Result<Changing, ApiError> {
        Ok(if wf.tenant_exists() {
            Changing::Tenant(grant.on_tenant(wf.tenant_id.clone()).change(state).await?)
        } else {
            Changing::Operator(grant.change(state).await?)
        })
    }

    async fn lock(&mut self, id: &str) -> Result<Workflow, ApiError> {
        let row = match self {
            Changing::Tenant(c) => c.tx().lock_workflow(id).await?,
            Changing::Operator(c) => c.tx().lock_workflow(id).await?,
        };
        Ok(Workflow::from_row(row.ok_or_else(workflow_not_found)?)?)
    }

    async fn save(&mut self, wf: &Workflow) -> Result<(), ApiError> {
        let row = wf.to_row();
        match self {
            Changing::Tenant(c) => c.tx().save_workflow(&row).await?,
            Changing::Operator(c) => c.tx().save_workflow(&row).await?,
        }
        Ok(())
    }

    fn audit(&mut self, wf: &Workflow, action: &str, changes: Value) {
        let metadata = json!({ "workflow_id": wf.id });
        match self {
            Changing::Tenant(c) => c.audit_with(action, targets(wf), changes, metadata),
            Changing::Operator(c) => c.audit_with(action, targets(wf), changes, metadata),
        }
    }

    async fn commit(self) -> Result<(), ApiError> {
        match self {
            Changing::Tenant(c) => c.commit().await?,
            Changing::Operator(c) => c.commit().await?,
        }
        Ok(())
    }
}

/// The workflow; to the principal that started it, the first read after
/// its keys were generated also returns them (and they are erased, in the
/// same transaction: whoever reads them first is the only one).
pub async fn get(
    state: &AppState,
    grant: &OperatorGrant,
    id: &str,
) -> Result<(Workflow, Option<Vec<IssuedKey>>), ApiError> {
    let wf = load(state, grant, id).await?;
    if wf.issued_keys.is_none() || wf.created_by != grant.audit_actor().id {
        return Ok((wf, None));
    }
    let mut change = Changing::open(state, grant, &wf).await?;
    let mut current = change.lock(id).await?;
    let Some(sealed) = current.issued_keys.take() else {
        return Ok((current, None));
    };
    let keys: Vec<IssuedKey> = super::open(state, &current.id, "issued_keys", &sealed)?;
    change.save(&current).await?;
    change.audit(
        &current,
        "provisioning.keys_delivered",
        json!({ "keys": keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>() }),
    );
    change.commit().await?;
    Ok((current, Some(keys)))
}

pub async fn list(
    state: &AppState,
    grant: &OperatorGrant,
    status: Option<WorkflowStatus>,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Workflow>, Option<String>), ApiError> {
    let mut tx = grant.read(state).await?;
    let WorkflowPage {
        workflows,
        next_after,
    } = tx
        .list_workflows(status.map(WorkflowStatus::as_str), after, limit)
        .await?;
    tx.commit().await?;
    let workflows = workflows
        .into_iter()
        .map(Workflow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((workflows, next_after))
}

/// Resumes a held workflow from its failed step (after its stored
/// credentials were corrected, say).
pub async fn retry(
    state: &AppState,
    grant: &OperatorGrant,
    id: &str,
) -> Result<Workflow, ApiError> {
    let wf = load(state, grant, id).await?;
    let mut change = Changing::open(state, grant, &wf).await?;
    let mut current = change.lock(id).await?;
    if current.status != WorkflowStatus::Failed {
        return Err(conflict(format!(
            "only a failed workflow can be retried; this one is {}",
            current.status.as_str()
        )));
    }
    let now = state.clock.now();
    let mut failed = None;
    for s in current
        .steps
        .iter_mut()
        .filter(|s| s.status == StepStatus::Failed)
    {
        s.status = StepStatus::Pending;
        s.attempts = 0;
        s.finished_at = None;
        failed = Some(s.name);
    }
    current.status = WorkflowStatus::Pending;
    current.next_run_ms = millis(now);
    current.updated_ms = millis(now);
    if let Changing::Tenant(c) = &mut change {
        let tenant = c
            .tx()
            .tenant_for_update()
            .await
            .map_err(crate::tenancy::or_tenant_not_found)?;
        if tenant.status == TenantStatus::ProvisioningFailed {
            crate::tenancy::change_status(
                c,
                TenantStatus::ProvisioningFailed,
                TenantStatus::Provisioning,
                "tenant.provisioning_resumed",
                now,
            )
            .await?;
        }
    }
    change.save(&current).await?;
    change.audit(&current, "provisioning.retried", json!({ "step": failed }));
    change.commit().await?;
    state.provisioning.wake.notify_one();
    Ok(current)
}

/// Cancels a workflow that has not completed: its completed steps are
/// compensated, then it is `cancelled`.
pub async fn cancel(
    state: &AppState,
    grant: &OperatorGrant,
    id: &str,
) -> Result<Workflow, ApiError> {
    let wf = load(state, grant, id).await?;
    let mut change = Changing::open(state, grant, &wf).await?;
    let mut current = change.lock(id).await?;
    match current.status {
        WorkflowStatus::Succeeded => {
            return Err(conflict(
                "the workflow completed; delete the tenant instead",
            ));
        }
        WorkflowStatus::Compensating | WorkflowStatus::Compensated | WorkflowStatus::Cancelled => {
            return Ok(current);
        }
        WorkflowStatus::Pending | WorkflowStatus::Running | WorkflowStatus::Failed => {}
    }
    let now = millis(state.clock.now());
    let from = current.status;
    current.status = WorkflowStatus::Compensating;
    current.spec.cancel_requested = true;
    current.next_run_ms = now;
    current.updated_ms = now;
    for s in current
        .steps
        .iter_mut()
        .filter(|s| s.status == StepStatus::Running)
    {
        s.status = StepStatus::Pending;
    }
    change.save(&current).await?;
    change.audit(
        &current,
        "provisioning.cancelled",
        json!({ "status": { "from": from, "to": "compensating" } }),
    );
    change.commit().await?;
    state.provisioning.wake.notify_one();
    Ok(current)
}

/// Checks the given credentials against Meta and Genesys Cloud, once
/// each, storing nothing: the verification steps as they would end.
pub async fn dry_run(
    state: &AppState,
    spec: &Spec,
    secrets: &Secrets,
) -> (WorkflowStatus, Vec<Step>) {
    let mut out = Vec::new();
    let now = state.clock.now();
    let mut outcome = |name: StepName, result: Result<Value, StepError>| {
        let mut step = Step::new(name);
        step.attempts = 1;
        step.started_at = Some(now);
        step.finished_at = Some(state.clock.now());
        match result {
            Ok(v) => {
                step.status = StepStatus::Succeeded;
                step.result = v;
            }
            Err(e) => {
                step.status = StepStatus::Failed;
                step.error = Some(e);
            }
        }
        out.push(step);
    };
    let whatsapp = match (&spec.whatsapp, &secrets.whatsapp) {
        (Some(w), Some(s)) => meta::verify_phone_number(state, &w.phone_number_id, &s.access_token)
            .await
            .map_err(StepError::from),
        _ => Ok(json!({ "skipped": true })),
    };
    outcome(StepName::VerifyWhatsapp, whatsapp);
    let genesys = match (&spec.genesys, &secrets.genesys) {
        (Some(g), Some(s)) => {
            genesys::verify_client(state, &g.region, &s.client_id, &s.client_secret)
                .await
                .map_err(StepError::from)
        }
        _ => Ok(json!({ "skipped": true })),
    };
    outcome(StepName::VerifyGenesys, genesys);
    let status = if out.iter().all(|s| s.status == StepStatus::Succeeded) {
        WorkflowStatus::Succeeded
    } else {
        WorkflowStatus::Failed
    };
    (status, out)
}
