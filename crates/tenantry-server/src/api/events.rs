//! `/v1/tenants/{id}/events`: a tenant's lifecycle history.

use super::tenants::or_tenant_not_found;
use super::{Page, PageParams, cursor};
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
pub use tenantry_api::events::EventOut;
use tenantry_core::keys::Scope;

/// A tenant's lifecycle events, oldest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/events", tag = "tenants", params(("id" = String, Path), PageParams),
    responses((status = 200, body = Page<EventOut>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<EventOut>>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let limit = page.limit()?;
    let after = page.after("events")?;
    let mut tx = grant.read(&state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let found = tx.list_events(after.as_deref(), limit).await?;
    tx.commit().await?;
    Ok(Json(Page {
        next_cursor: found.next_after.map(|last| cursor("events", &last)),
        data: found.events.into_iter().map(EventOut::from).collect(),
    }))
}
