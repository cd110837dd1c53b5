//! `/v1/tenants`: the tenant registry and each tenant's lifecycle.

use super::{Checks, Page, PageParams, cursor};
use crate::app::AppState;
use crate::app::announce;
use crate::http::auth::{Caller, Operator};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::resolution::cache::{Invalidation, subdomain_key};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenantry_core::keys::Scope;
use tenantry_core::tenant::Actor;
use tenantry_core::tenant::{NewTenant, Tenant, TenantEventKind, TenantPatch, TenantStatus};
use tenantry_core::values::{Metadata, PlanName, Region, Subdomain, TenantName};
use tenantry_core::{TenantId, ValidationError};
use tenantry_store::{StoreError, TenantFilter, TenantTx};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    /// The tenant's slug: 3–63 characters of a-z, 0-9 and inner '-'.
    pub id: String,
    pub name: String,
    /// Defaults to the id.
    pub subdomain: Option<String>,
    pub plan: Option<String>,
    pub region: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatchIn {
    pub name: Option<String>,
    pub subdomain: Option<String>,
    pub plan: Option<String>,
    pub region: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantOut {
    pub id: String,
    pub name: String,
    pub subdomain: String,
    pub status: TenantStatus,
    pub plan: String,
    pub region: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the tenant was soft-deleted; its data is purged after the grace period.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<Tenant> for TenantOut {
    fn from(t: Tenant) -> Self {
        TenantOut {
            id: t.id.to_string(),
            name: t.name.to_string(),
            subdomain: t.subdomain.to_string(),
            status: t.status,
            plan: t.plan.to_string(),
            region: t.region.to_string(),
            metadata: t.metadata.into_value(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            deleted_at: t.deleted_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTenantsParams {
    /// Only tenants with this status.
    pub status: Option<String>,
    /// Only tenants on this plan.
    pub plan: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// `true` deletes every row of the tenant now instead of after the grace period.
    pub purge: Option<bool>,
}

/// A tenant id taken from a path: one that cannot be valid cannot exist.
pub fn path_tenant(id: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(id).map_err(|_| ApiError::tenant_not_found())
}

/// Maps "no such row" to "no such tenant" for registry lookups.
pub fn or_tenant_not_found(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => ApiError::tenant_not_found(),
        other => other.into(),
    }
}

fn tenant_deleted() -> ApiError {
    ApiError::Conflict {
        code: "tenant_deleted",
        detail: "the tenant is deleted; reactivate it first".into(),
        field: None,
    }
}

/// Opens a write transaction on an existing tenant, locking its registry row.
async fn lock_tenant(state: &AppState, id: &TenantId) -> Result<(TenantTx, Tenant), ApiError> {
    let mut tx = state.store.tenant_write(id).await?;
    let tenant = tx.tenant_for_update().await.map_err(or_tenant_not_found)?;
    Ok((tx, tenant))
}

pub async fn record(
    state: &AppState,
    tx: &mut TenantTx,
    kind: TenantEventKind,
    actor: &Actor,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let id = state
        .ids
        .sortable("evt", now.timestamp_millis().max(0) as u64);
    tx.record_event(id, kind, actor, data, now).await?;
    Ok(())
}

/// Create a tenant.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = TenantIn,
    responses(
        (status = 201, body = TenantOut),
        (status = 409, description = "id or subdomain taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid input", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(input): ApiJson<TenantIn>,
) -> Result<Response, ApiError> {
    let mut checks = Checks::default();
    let id = checks.check(TenantId::parse(&input.id));
    let name = checks.check(TenantName::parse("name", &input.name));
    let subdomain = match &input.subdomain {
        Some(s) => checks.check(Subdomain::parse("subdomain", s)),
        // The id follows the subdomain rules; an invalid id is reported once.
        None => id
            .as_ref()
            .map(|id| Subdomain::from_trusted(id.to_string())),
    };
    let plan = match &input.plan {
        Some(p) => checks.check(PlanName::parse("plan", p)),
        None => Some(state.config.default_plan.clone()),
    };
    let region = match &input.region {
        Some(r) => checks.check(Region::parse("region", r)),
        None => Some(state.config.default_region.clone()),
    };
    let metadata = match input.metadata {
        Some(m) => checks.check(Metadata::parse("metadata", m)),
        None => Some(Metadata::empty()),
    };
    checks.finish()?;
    let (Some(id), Some(name), Some(subdomain), Some(plan), Some(region), Some(metadata)) =
        (id, name, subdomain, plan, region, metadata)
    else {
        return Err(ApiError::Internal);
    };
    require_plan(&state, &plan).await?;
    let new = NewTenant {
        id,
        name,
        subdomain,
        plan,
        region,
        metadata,
    };

    let now = state.clock.now();
    let mut op = state.store.operator_write().await?;
    let tenant = op.insert_tenant(&new, now).await?;
    let mut tx = op.scope_to(&tenant.id).await?;
    record(&state, &mut tx, TenantEventKind::Created, &operator.actor, json!({
        "name": tenant.name, "subdomain": tenant.subdomain, "plan": tenant.plan, "region": tenant.region,
    }))
    .await?;
    let changes = [
        Invalidation::Tenant(tenant.id.clone()),
        Invalidation::Host(subdomain_key(tenant.subdomain.as_str())),
    ];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    tracing::info!(tenant_id = %tenant.id, "tenant created");
    Ok((StatusCode::CREATED, Json(TenantOut::from(tenant))).into_response())
}

/// List tenants, in id order.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListTenantsParams),
    responses((status = 200, body = Page<TenantOut>), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(params): ApiQuery<ListTenantsParams>,
) -> Result<Json<Page<TenantOut>>, ApiError> {
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = page.limit()?;
    let after = page.after("tenants")?;
    let mut checks = Checks::default();
    let status = match &params.status {
        Some(s) => checks.check(s.parse::<TenantStatus>().map(Some).map_err(|()| {
            ValidationError::new(
                "status",
                "invalid_value",
                "must be one of active, suspended, deleted",
            )
        })),
        None => Some(None),
    };
    let plan = match &params.plan {
        Some(p) => checks.check(PlanName::parse("plan", p).map(Some)),
        None => Some(None),
    };
    checks.finish()?;
    let filter = TenantFilter {
        status: status.flatten(),
        plan: plan.flatten(),
    };
    let mut op = state.store.operator_read().await?;
    let found = op.list_tenants(&filter, after.as_deref(), limit).await?;
    op.commit().await?;
    Ok(Json(Page {
        next_cursor: found.next_after.map(|id| cursor("tenants", id.as_str())),
        data: found.tenants.into_iter().map(TenantOut::from).collect(),
    }))
}

/// Get a tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let id = caller.for_tenant(&id, Scope::TenantRead)?.tenant;
    let mut op = state.store.operator_read().await?;
    let tenant = op
        .get_tenant(&id)
        .await?
        .ok_or_else(ApiError::tenant_not_found)?;
    op.commit().await?;
    Ok(Json(tenant.into()))
}

/// Change a tenant's name, subdomain, plan, region or metadata.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)), request_body = TenantPatchIn,
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TenantPatchIn>,
) -> Result<Json<TenantOut>, ApiError> {
    let id = path_tenant(&id)?;
    let mut checks = Checks::default();
    let patch = TenantPatch {
        name: input
            .name
            .as_deref()
            .and_then(|n| checks.check(TenantName::parse("name", n))),
        subdomain: input
            .subdomain
            .as_deref()
            .and_then(|s| checks.check(Subdomain::parse("subdomain", s))),
        plan: input
            .plan
            .as_deref()
            .and_then(|p| checks.check(PlanName::parse("plan", p))),
        region: input
            .region
            .as_deref()
            .and_then(|r| checks.check(Region::parse("region", r))),
        metadata: input
            .metadata
            .and_then(|m| checks.check(Metadata::parse("metadata", m))),
    };
    checks.finish()?;
    if let Some(plan) = &patch.plan {
        require_plan(&state, plan).await?;
    }

    let (mut tx, before) = lock_tenant(&state, &id).await?;
    if before.status == TenantStatus::Deleted {
        return Err(tenant_deleted());
    }
    if patch.is_empty() {
        return Ok(Json(before.into()));
    }
    let after = tx.update_tenant(&patch, state.clock.now()).await?;
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
        changes.insert("metadata".into(), json!({ "changed": true }));
    }
    if !changes.is_empty() {
        record(
            &state,
            &mut tx,
            TenantEventKind::Updated,
            &operator.actor,
            json!({ "changes": changes }),
        )
        .await?;
    }
    let changes = [
        Invalidation::Tenant(id.clone()),
        Invalidation::Host(subdomain_key(before.subdomain.as_str())),
        Invalidation::Host(subdomain_key(after.subdomain.as_str())),
    ];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    Ok(Json(after.into()))
}

/// Suspend a tenant: its requests are refused until it is reactivated.
#[utoipa::path(post, path = "/v1/tenants/{id}/suspend", tag = "tenants", params(("id" = String, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the tenant is deleted", body = Problem, content_type = "application/problem+json")))]
pub async fn suspend(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let id = path_tenant(&id)?;
    let (mut tx, tenant) = lock_tenant(&state, &id).await?;
    match tenant.status {
        TenantStatus::Suspended => Ok(Json(tenant.into())),
        TenantStatus::Deleted => Err(tenant_deleted()),
        TenantStatus::Active => {
            let tenant = tx
                .set_status(TenantStatus::Suspended, None, state.clock.now())
                .await?;
            record(
                &state,
                &mut tx,
                TenantEventKind::Suspended,
                &operator.actor,
                json!({}),
            )
            .await?;
            let changes = [Invalidation::Tenant(id.clone())];
            announce(&mut tx, &changes).await?;
            tx.commit().await?;
            state.forget(&changes);
            tracing::info!(tenant_id = %id, "tenant suspended");
            Ok(Json(tenant.into()))
        }
    }
}

/// Reactivate a suspended tenant, or restore a deleted one within its grace period.
#[utoipa::path(post, path = "/v1/tenants/{id}/reactivate", tag = "tenants", params(("id" = String, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn reactivate(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let id = path_tenant(&id)?;
    let (mut tx, tenant) = lock_tenant(&state, &id).await?;
    if tenant.status == TenantStatus::Active {
        return Ok(Json(tenant.into()));
    }
    let from = tenant.status;
    let tenant = tx
        .set_status(TenantStatus::Active, None, state.clock.now())
        .await?;
    record(
        &state,
        &mut tx,
        TenantEventKind::Reactivated,
        &operator.actor,
        json!({ "from": from }),
    )
    .await?;
    let changes = [Invalidation::Tenant(id.clone())];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    tracing::info!(tenant_id = %id, "tenant reactivated");
    Ok(Json(tenant.into()))
}

/// Delete a tenant: a soft delete (status `deleted`, data kept for the grace
/// period), or with `purge=true` every row of the tenant at once.
#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path), DeleteParams),
    responses((status = 200, description = "soft-deleted", body = TenantOut), (status = 204, description = "purged"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> Result<Response, ApiError> {
    let id = path_tenant(&id)?;
    let (mut tx, tenant) = lock_tenant(&state, &id).await?;
    if params.purge == Some(true) {
        purge(&state, tx).await?;
        tracing::info!(tenant_id = %id, "tenant purged");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if tenant.status == TenantStatus::Deleted {
        return Ok(Json(TenantOut::from(tenant)).into_response());
    }
    let now = state.clock.now();
    let tenant = tx.set_status(TenantStatus::Deleted, Some(now), now).await?;
    let purge_after = chrono::Duration::from_std(state.config.deletion_grace_period)
        .ok()
        .and_then(|grace| now.checked_add_signed(grace));
    record(
        &state,
        &mut tx,
        TenantEventKind::Deleted,
        &operator.actor,
        json!({ "purge_after": purge_after }),
    )
    .await?;
    let changes = [Invalidation::Tenant(id.clone())];
    announce(&mut tx, &changes).await?;
    tx.commit().await?;
    state.forget(&changes);
    tracing::info!(tenant_id = %id, "tenant deleted (soft)");
    Ok(Json(TenantOut::from(tenant)).into_response())
}

/// Deletes every row of a tenant, and everything cached about it on every
/// server process (its keys, hosts and snapshot).
pub async fn purge(state: &AppState, mut tx: TenantTx) -> Result<(), StoreError> {
    announce(&mut tx, &[Invalidation::All]).await?;
    tx.purge().await?;
    state.forget(&[Invalidation::All]);
    // SQLite: the deleted rows were zeroed (secure_delete); empty the WAL
    // too, whose older frames still hold the wrapped data key.
    if !state.store.shred_checkpoint().await? {
        tracing::warn!(
            "the write-ahead log could not be emptied after a purge; it will be at the next checkpoint"
        );
    }
    Ok(())
}

/// A tenant's plan must be in the catalog (`GET /v1/plans`).
async fn require_plan(state: &AppState, plan: &PlanName) -> Result<(), ApiError> {
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

/// Opens a write transaction on a tenant that exists and is not deleted,
/// its registry row locked: where changes to a tenant's own rows begin.
pub async fn open_live_tenant(state: &AppState, id: &TenantId) -> Result<TenantTx, ApiError> {
    let (tx, tenant) = lock_tenant(state, id).await?;
    if tenant.status == TenantStatus::Deleted {
        return Err(ApiError::Conflict {
            code: "tenant_deleted",
            detail: "the tenant is deleted".into(),
            field: None,
        });
    }
    Ok(tx)
}
