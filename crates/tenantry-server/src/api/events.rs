//! `/v1/tenants/{id}/events`: a tenant's lifecycle history.
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use super::tenants::or_tenant_not_found;
use super::{Page, PageParams, cursor};
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_core::keys::Scope;
use tenantry_core::tenant::{TenantEvent, TenantEventKind};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    pub id: String,
    pub tenant_id: String,
    #[serde(rename = "type")]
    pub kind: TenantEventKind,
    /// Who caused it: `operator:root`, `system`, …
    pub actor: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl From<TenantEvent> for EventOut {
    fn from(e: TenantEvent) -> Self {
        EventOut {
            id: e.id,
            tenant_id: e.tenant_id.to_string(),
            kind: e.kind,
            actor: e.actor.as_str().to_owned(),
            data: e.data,
            created_at: e.created_at,
        }
    }
}

/// A tenant's lifecycle events, oldest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/events", tag = "tenants", params(("id" = String, Path), PageParams),
    responses((status = 200, body = Page<EventOut>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<EventOut>>, ApiError> {
    let id = caller.for_tenant(&id, Scope::TenantRead)?.tenant;
    let limit = page.limit()?;
    let after = page.after("events")?;
    let mut tx = state.store.tenant_read(&id).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let found = tx.list_events(after.as_deref(), limit).await?;
    tx.commit().await?;
    Ok(Json(Page {
        next_cursor: found.next_after.map(|last| cursor("events", &last)),
        data: found.events.into_iter().map(EventOut::from).collect(),
    }))
}
