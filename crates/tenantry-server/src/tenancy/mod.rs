//! The tenant lifecycle: creating, changing, suspending, reactivating,
//! deleting and purging tenants. Called by the API, the purge worker and
//! the CLI alike; every operation is one change (see [`crate::change`]).

pub mod domains;
pub mod regions;

use crate::app::AppState;
use crate::change::TenantChange;
use crate::grant::{OperatorGrant, TenantGrant};
use crate::http::problem::ApiError;
use crate::resolution::cache::{Invalidation, subdomain_key};
use serde_json::json;
use tenantry_core::audit::AuditTarget;
use tenantry_core::tenant::{NewTenant, Tenant, TenantEventKind, TenantPatch, TenantStatus};
use tenantry_core::values::PlanName;
use tenantry_core::{TenantId, ValidationError};
use tenantry_store::StoreError;

/// Maps "no such row" to "no such tenant" for registry lookups.
pub fn or_tenant_not_found(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => ApiError::tenant_not_found(),
        other => other.into(),
    }
}

fn tenant_deleted(detail: &'static str) -> ApiError {
    ApiError::Conflict {
        code: crate::http::codes::Code::TenantDeleted,
        detail: detail.into(),
        field: None,
    }
}

pub fn target(id: &TenantId) -> AuditTarget {
    AuditTarget::new("tenant", id.as_str())
}

/// Opens a change on an existing tenant, its registry row locked.
pub async fn lock(
    state: &AppState,
    grant: &TenantGrant,
) -> Result<(TenantChange, Tenant), ApiError> {
    let mut change = grant.change(state).await?;
    let tenant = change
        .tx()
        .tenant_for_update()
        .await
        .map_err(or_tenant_not_found)?;
    Ok((change, tenant))
}

/// Opens a change on a tenant that exists and is not deleted, its registry
/// row locked: where changes to a tenant's own rows begin.
pub async fn open_live(state: &AppState, grant: &TenantGrant) -> Result<TenantChange, ApiError> {
    let (change, tenant) = lock(state, grant).await?;
    if tenant.status == TenantStatus::Deleted {
        return Err(tenant_deleted("the tenant is deleted"));
    }
    Ok(change)
}

/// A tenant's plan must be in the catalog (`GET /v1/plans`).
pub async fn require_plan(state: &AppState, plan: &PlanName) -> Result<(), ApiError> {
    match crate::limits::service::load_plan(state, plan.as_str()).await? {
        Some(_) => Ok(()),
        None => {
            Err(
                ValidationError::new("plan", "unknown_plan", "no such plan; see GET /v1/plans")
                    .into(),
            )
        }
    }
}

pub async fn create(
    state: &AppState,
    grant: &OperatorGrant,
    new: &NewTenant,
) -> Result<Tenant, ApiError> {
    require_plan(state, &new.plan).await?;
    let now = state.clock.now();
    let mut op = grant.change(state).await?;
    let tenant = op.tx().insert_tenant(new, now).await?;
    if !state.config.regions.is_empty() {
        // This region's directory says where the tenant lives from the start.
        let home = tenantry_store::regions::DirectoryEntry {
            tenant: tenant.id.to_string(),
            region: tenant.region.to_string(),
            moving_to: None,
            move_state: None,
            move_report: None,
            updated_at: now,
        };
        op.tx().put_region_entry(&home).await?;
    }
    let mut change = op.scope_to(&tenant.id).await?;
    record_created(&mut change, &tenant);
    change.commit().await?;
    tracing::info!(tenant_id = %tenant.id, "tenant created");
    regions::record_created(state, &tenant.id).await;
    Ok(tenant)
}

/// Records a tenant's creation (event, audit entry, invalidations) on the
/// change that inserted it.
pub fn record_created(change: &mut TenantChange, tenant: &Tenant) {
    let fields = json!({
        "name": tenant.name, "subdomain": tenant.subdomain, "plan": tenant.plan, "region": tenant.region,
    });
    change.event(TenantEventKind::Created, fields.clone());
    change.audit(
        "tenant.created",
        vec![target(&tenant.id)],
        json!({ "after": fields }),
    );
    change.invalidate(Invalidation::Tenant(tenant.id.clone()));
    change.invalidate(Invalidation::Host(subdomain_key(tenant.subdomain.as_str())));
}

pub async fn update(
    state: &AppState,
    grant: &TenantGrant,
    patch: &TenantPatch,
) -> Result<Tenant, ApiError> {
    if let Some(plan) = &patch.plan {
        require_plan(state, plan).await?;
    }
    let (mut change, before) = lock(state, grant).await?;
    if before.status == TenantStatus::Deleted {
        return Err(tenant_deleted("the tenant is deleted; reactivate it first"));
    }
    if patch.is_empty() {
        return Ok(before);
    }
    let after = change.tx().update_tenant(patch, state.clock.now()).await?;
    let mut changes = serde_json::Map::new();
    let mut note = |field: &str, from: serde_json::Value, to: serde_json::Value| {
        if from != to {
            changes.insert(field.to_owned(), json!({ "from": from, "to": to }));
        }
    };
    note("name", json!(before.name), json!(after.name));
    note("subdomain", json!(before.subdomain), json!(after.subdomain));
    note("plan", json!(before.plan), json!(after.plan));
    note("region", json!(before.region), json!(after.region));
    if before.metadata != after.metadata {
        changes.insert(
            "metadata".into(),
            json!({ "from": before.metadata.clone().into_value(), "to": after.metadata.clone().into_value() }),
        );
    }
    if changes.is_empty() {
        return Ok(after);
    }
    let mut event_changes = changes.clone();
    if event_changes.contains_key("metadata") {
        // The event history has always said only that metadata changed.
        event_changes.insert("metadata".into(), json!({ "changed": true }));
    }
    change.event(
        TenantEventKind::Updated,
        json!({ "changes": event_changes }),
    );
    change.audit(
        "tenant.updated",
        vec![target(grant.tenant())],
        serde_json::Value::Object(changes),
    );
    change.invalidate(Invalidation::Tenant(grant.tenant().clone()));
    change.invalidate(Invalidation::Host(subdomain_key(before.subdomain.as_str())));
    change.invalidate(Invalidation::Host(subdomain_key(after.subdomain.as_str())));
    change.commit().await?;
    Ok(after)
}

/// Moves the locked tenant of `change` from `from` to `to` (not `deleted`,
/// whose audit entry carries the purge date): the status, its audit entry
/// under `action` and the cross-node invalidation, in the change's
/// transaction.
pub async fn change_status(
    change: &mut TenantChange,
    from: TenantStatus,
    to: TenantStatus,
    action: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Tenant, StoreError> {
    let tenant = change.tx().set_status(to, None, now).await?;
    let id = change.tenant_id().clone();
    change.audit(
        action,
        vec![target(&id)],
        json!({ "status": { "from": from, "to": to } }),
    );
    change.invalidate(Invalidation::Tenant(id));
    Ok(tenant)
}

pub async fn suspend(state: &AppState, grant: &TenantGrant) -> Result<Tenant, ApiError> {
    let (mut change, tenant) = lock(state, grant).await?;
    match tenant.status {
        TenantStatus::Suspended => Ok(tenant),
        TenantStatus::Deleted => Err(tenant_deleted("the tenant is deleted; reactivate it first")),
        TenantStatus::Provisioning | TenantStatus::ProvisioningFailed => Err(ApiError::Conflict {
            code: crate::http::codes::Code::TenantProvisioning,
            detail: "the tenant is being provisioned; see GET /v1/provisioning".into(),
            field: None,
        }),
        TenantStatus::Active => {
            change.event(TenantEventKind::Suspended, json!({}));
            let tenant = change_status(
                &mut change,
                TenantStatus::Active,
                TenantStatus::Suspended,
                "tenant.suspended",
                state.clock.now(),
            )
            .await?;
            change.commit().await?;
            tracing::info!(tenant_id = %grant.tenant(), "tenant suspended");
            Ok(tenant)
        }
    }
}

pub async fn reactivate(state: &AppState, grant: &TenantGrant) -> Result<Tenant, ApiError> {
    let (mut change, tenant) = lock(state, grant).await?;
    if tenant.status == TenantStatus::Active {
        return Ok(tenant);
    }
    if matches!(
        tenant.status,
        TenantStatus::Provisioning | TenantStatus::ProvisioningFailed
    ) {
        // Only its workflow's last step activates a tenant being provisioned.
        return Err(ApiError::Conflict {
            code: crate::http::codes::Code::TenantProvisioning,
            detail: "the tenant is being provisioned; see GET /v1/provisioning".into(),
            field: None,
        });
    }
    let from = tenant.status;
    change.event(TenantEventKind::Reactivated, json!({ "from": from }));
    let tenant = change_status(
        &mut change,
        from,
        TenantStatus::Active,
        "tenant.reactivated",
        state.clock.now(),
    )
    .await?;
    change.commit().await?;
    tracing::info!(tenant_id = %grant.tenant(), "tenant reactivated");
    Ok(tenant)
}

/// A soft delete: status `deleted`, data kept for the grace period.
pub async fn delete(state: &AppState, grant: &TenantGrant) -> Result<Tenant, ApiError> {
    let (mut change, tenant) = lock(state, grant).await?;
    if tenant.status == TenantStatus::Deleted {
        return Ok(tenant);
    }
    let from = tenant.status;
    let now = state.clock.now();
    let tenant = change
        .tx()
        .set_status(TenantStatus::Deleted, Some(now), now)
        .await?;
    let purge_after = chrono::Duration::from_std(state.config.deletion_grace_period)
        .ok()
        .and_then(|grace| now.checked_add_signed(grace));
    change.event(
        TenantEventKind::Deleted,
        json!({ "purge_after": purge_after }),
    );
    change.audit_with(
        "tenant.deleted",
        vec![target(grant.tenant())],
        json!({ "status": { "from": from, "to": "deleted" } }),
        json!({ "purge_after": purge_after }),
    );
    change.invalidate(Invalidation::Tenant(grant.tenant().clone()));
    change.commit().await?;
    tracing::info!(tenant_id = %grant.tenant(), "tenant deleted (soft)");
    Ok(tenant)
}

/// Deletes every row of a tenant now, and everything cached about it on
/// every server process (its keys, hosts and snapshot).
pub async fn purge_now(state: &AppState, grant: &TenantGrant) -> Result<(), ApiError> {
    let (change, _) = lock(state, grant).await?;
    change.purge().await?;
    tracing::info!(tenant_id = %grant.tenant(), "tenant purged");
    Ok(())
}

/// Purges `id` if it is still deleted since `cutoff` or earlier (the purge
/// worker: the tenant may have been restored since it was listed).
pub async fn purge_if_due(
    state: &AppState,
    grant: &TenantGrant,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    let mut change = grant.change(state).await?;
    let tenant = match change.tx().tenant_for_update().await {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    if tenant.status == TenantStatus::Deleted && tenant.deleted_at.is_some_and(|at| at <= cutoff) {
        change.purge().await?;
        return Ok(true);
    }
    Ok(false)
}
