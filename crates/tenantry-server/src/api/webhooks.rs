//! `/v1/event-types`, `/v1/webhook-endpoints` (operator endpoints: every
//! tenant's events) and `/v1/tenants/{id}/webhook-endpoints` (a tenant's
//! own). Handlers parse, call [`crate::webhooks::endpoints`] and map; the
//! operator and tenant routes share everything but how they open the
//! change.

use super::tenants::or_tenant_not_found;
use super::{Page, cursor};
use crate::app::AppState;
use crate::change::{OperatorChange, TenantChange};
use crate::grant::{OperatorGrant, TenantGrant};
use crate::http::auth::{Caller, Operator};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::problem::{ApiError, Problem};
use crate::webhooks::endpoints::{
    self, EndpointChange, EndpointInput, EndpointPatch, EndpointView, endpoint_not_found,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::json;
pub use tenantry_api::webhooks::{
    AttemptOut, CreatedEndpointOut, EventTypeList, EventTypeOut, Jwks, MessageDetail, MessageOut,
    MessageParams, ReplayIn, ReplayOut, RotateSecretIn,
};
use tenantry_core::ValidationError;
use tenantry_core::keys::Scope;
use tenantry_core::tenant::TenantEventKind;
use tenantry_store::{MessageFilter, OperatorTx, StoredMessage, TenantTx, Webhooks};

/// The event catalogue: every event type and the JSON Schema of its data.
#[utoipa::path(get, path = "/v1/event-types", tag = "webhooks",
    responses((status = 200, body = EventTypeList)))]
pub async fn event_types(_caller: Caller) -> Json<EventTypeList> {
    Json(EventTypeList {
        data: crate::events::catalogue::CATALOGUE
            .iter()
            .map(|t| EventTypeOut {
                name: t.name.to_owned(),
                description: t.description.to_owned(),
                schema: t.schema(),
            })
            .collect(),
    })
}

impl From<endpoints::CreatedEndpoint> for CreatedEndpointOut {
    fn from(c: endpoints::CreatedEndpoint) -> Self {
        CreatedEndpointOut {
            endpoint: c.endpoint,
            secret: c.secret.expose().to_owned(),
        }
    }
}

fn at(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

pub fn message_out(m: StoredMessage) -> MessageOut {
    MessageOut {
        payload: serde_json::from_str(&m.body).unwrap_or(serde_json::Value::Null),
        next_attempt_at: (m.status == "pending")
            .then(|| at(m.next_attempt_ms))
            .flatten(),
        created_at: at(m.created_ms),
        delivered_at: m.delivered_ms.and_then(at),
        event_tenant_id: (!m.event_tenant_id.is_empty()).then_some(m.event_tenant_id),
        id: m.id,
        endpoint_id: m.endpoint_id,
        event_id: m.event_id,
        kind: m.kind,
        status: m.status,
        attempts: m.attempts,
        last_status: m.last_status,
        last_error: m.last_error,
    }
}

/// Whose endpoints a request is about.
enum Owner {
    Tenant(TenantGrant),
    Operator(OperatorGrant),
}

/// A change of either owner.
enum AnyChange {
    Tenant(TenantChange),
    Operator(OperatorChange),
}

impl EndpointChange for AnyChange {
    fn webhooks(&mut self) -> Webhooks<'_> {
        match self {
            AnyChange::Tenant(c) => EndpointChange::webhooks(c),
            AnyChange::Operator(c) => EndpointChange::webhooks(c),
        }
    }
    fn owner(&self) -> String {
        match self {
            AnyChange::Tenant(c) => c.owner(),
            AnyChange::Operator(c) => c.owner(),
        }
    }
    fn record(
        &mut self,
        kind: TenantEventKind,
        data: serde_json::Value,
        action: &str,
        id: &str,
        changes: serde_json::Value,
    ) {
        match self {
            AnyChange::Tenant(c) => c.record(kind, data, action, id, changes),
            AnyChange::Operator(c) => c.record(kind, data, action, id, changes),
        }
    }
}

impl AnyChange {
    fn audit(&mut self, action: &str, id: &str, changes: serde_json::Value) {
        let targets = vec![endpoints::target(id)];
        match self {
            AnyChange::Tenant(c) => c.audit(action, targets, changes),
            AnyChange::Operator(c) => c.audit(action, targets, changes),
        }
    }

    async fn commit(self) -> Result<(), ApiError> {
        match self {
            AnyChange::Tenant(c) => c.commit().await?,
            AnyChange::Operator(c) => c.commit().await?,
        }
        Ok(())
    }
}

enum AnyRead {
    Tenant(TenantTx),
    Operator(OperatorTx),
}

impl AnyRead {
    fn webhooks(&mut self) -> Webhooks<'_> {
        match self {
            AnyRead::Tenant(tx) => tx.webhooks(),
            AnyRead::Operator(tx) => tx.webhooks(),
        }
    }
    async fn commit(self) -> Result<(), ApiError> {
        match self {
            AnyRead::Tenant(tx) => tx.commit().await?,
            AnyRead::Operator(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Owner {
    fn tenant_write(caller: &Caller, id: &str) -> Result<Owner, ApiError> {
        Ok(Owner::Tenant(caller.grant(id, Scope::WebhooksWrite)?))
    }

    /// `webhooks:read`, or `tenant:read`.
    fn tenant_read(caller: &Caller, id: &str) -> Result<Owner, ApiError> {
        caller
            .grant(id, Scope::WebhooksRead)
            .or_else(|_| caller.grant(id, Scope::TenantRead))
            .map(Owner::Tenant)
    }

    fn operator(op: &Operator) -> Owner {
        Owner::Operator(op.grant().clone())
    }

    async fn change(&self, state: &AppState) -> Result<AnyChange, ApiError> {
        Ok(match self {
            Owner::Tenant(grant) => {
                AnyChange::Tenant(crate::tenancy::open_live(state, grant).await?)
            }
            Owner::Operator(grant) => AnyChange::Operator(grant.change(state).await?),
        })
    }

    async fn read(&self, state: &AppState) -> Result<AnyRead, ApiError> {
        Ok(match self {
            Owner::Tenant(grant) => {
                let mut tx = grant.read(state).await?;
                tx.tenant().await.map_err(or_tenant_not_found)?;
                AnyRead::Tenant(tx)
            }
            Owner::Operator(grant) => AnyRead::Operator(grant.read(state).await?),
        })
    }
}

async fn create(
    state: &AppState,
    owner: Owner,
    input: EndpointInput,
) -> Result<(StatusCode, Json<CreatedEndpointOut>), ApiError> {
    let mut change = owner.change(state).await?;
    let created = endpoints::create(state, &mut change, input).await?;
    change.commit().await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

async fn list(
    state: &AppState,
    owner: Owner,
    page: super::PageParams,
) -> Result<Json<Page<EndpointView>>, ApiError> {
    let limit = page.limit()?;
    let after = page.after("webhook_endpoints")?;
    let mut tx = owner.read(state).await?;
    let mut found = tx.webhooks().endpoints(after.as_deref(), limit).await?;
    tx.commit().await?;
    let next_cursor = if found.len() > limit as usize {
        found.truncate(limit as usize);
        found.last().map(|e| cursor("webhook_endpoints", &e.id))
    } else {
        None
    };
    Ok(Json(Page {
        data: found
            .iter()
            .map(crate::webhooks::endpoints::endpoint_view)
            .collect(),
        next_cursor,
    }))
}

async fn get_one(state: &AppState, owner: Owner, id: &str) -> Result<Json<EndpointView>, ApiError> {
    let mut tx = owner.read(state).await?;
    let found = tx.webhooks().endpoint(id).await?;
    tx.commit().await?;
    found
        .map(|e| Json(crate::webhooks::endpoints::endpoint_view(&e)))
        .ok_or_else(endpoint_not_found)
}

async fn update(
    state: &AppState,
    owner: Owner,
    id: &str,
    patch: EndpointPatch,
) -> Result<Json<EndpointView>, ApiError> {
    let mut change = owner.change(state).await?;
    let view = endpoints::update(state, &mut change, id, patch).await?;
    change.commit().await?;
    Ok(Json(view))
}

async fn delete(state: &AppState, owner: Owner, id: &str) -> Result<StatusCode, ApiError> {
    let mut change = owner.change(state).await?;
    if !endpoints::delete(&mut change, id).await? {
        return Err(endpoint_not_found());
    }
    change.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate(
    state: &AppState,
    owner: Owner,
    id: &str,
    input: RotateSecretIn,
) -> Result<Json<CreatedEndpointOut>, ApiError> {
    let overlap = match input.overlap_seconds {
        None => state.config.webhook_secret_overlap,
        Some(s) if s <= 7 * 86_400 => std::time::Duration::from_secs(s),
        Some(_) => {
            return Err(ValidationError::new(
                "overlap_seconds",
                "out_of_range",
                "must be at most 604800 (7 days)",
            )
            .into());
        }
    };
    let mut change = owner.change(state).await?;
    let rotated = endpoints::rotate_secret(state, &mut change, id, overlap).await?;
    change.commit().await?;
    Ok(Json(rotated.into()))
}

async fn jwks(state: &AppState, owner: Owner, id: &str) -> Result<Json<Jwks>, ApiError> {
    let Json(view) = get_one(state, owner, id).await?;
    let keys = view
        .public_key
        .as_deref()
        .and_then(|k| k.strip_prefix(crate::webhooks::signing::PUBLIC_KEY_PREFIX))
        .and_then(|k| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(k).ok()
        })
        .map(|raw| {
            use base64::Engine;
            json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": view.id,
                "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
            })
        })
        .into_iter()
        .collect();
    Ok(Json(Jwks { keys }))
}

fn message_filter(params: &MessageParams) -> Result<MessageFilter, ApiError> {
    if let Some(status) = &params.status
        && !["pending", "delivered", "failed"].contains(&status.as_str())
    {
        return Err(ValidationError::new(
            "status",
            "invalid_status",
            "must be pending, delivered or failed",
        )
        .into());
    }
    Ok(MessageFilter {
        status: params.status.clone(),
        kind: params.event_type.clone(),
        since_ms: params.since.map(|t| t.timestamp_millis()),
        until_ms: params.until.map(|t| t.timestamp_millis()),
    })
}

async fn messages(
    state: &AppState,
    owner: Owner,
    id: &str,
    params: MessageParams,
) -> Result<Json<Page<MessageOut>>, ApiError> {
    let page = super::PageParams {
        limit: params.limit,
        cursor: params.cursor.clone(),
    };
    let limit = page.limit()?;
    let before = page.after("webhook_messages")?;
    let filter = message_filter(&params)?;
    let mut tx = owner.read(state).await?;
    if tx.webhooks().endpoint(id).await?.is_none() {
        return Err(endpoint_not_found());
    }
    let mut found = tx
        .webhooks()
        .messages(id, &filter, before.as_deref(), limit)
        .await?;
    tx.commit().await?;
    let next_cursor = if found.len() > limit as usize {
        found.truncate(limit as usize);
        found.last().map(|m| cursor("webhook_messages", &m.id))
    } else {
        None
    };
    Ok(Json(Page {
        data: found.into_iter().map(message_out).collect(),
        next_cursor,
    }))
}

fn message_not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::WebhookMessageNotFound,
        detail: "this endpoint has no such message".into(),
    }
}

async fn message(
    state: &AppState,
    owner: Owner,
    id: &str,
    message_id: &str,
) -> Result<Json<MessageDetail>, ApiError> {
    let mut tx = owner.read(state).await?;
    let found = tx
        .webhooks()
        .message(id, message_id)
        .await?
        .ok_or_else(message_not_found)?;
    let attempts = tx.webhooks().attempts(message_id).await?;
    tx.commit().await?;
    Ok(Json(MessageDetail {
        message: message_out(found),
        attempt_log: attempts
            .into_iter()
            .map(|a| AttemptOut {
                attempt: a.attempt,
                started_at: at(a.started_ms),
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                response_body: a.response_body,
                error: a.error,
            })
            .collect(),
    }))
}

async fn replay(
    state: &AppState,
    owner: Owner,
    id: &str,
    message_id: Option<&str>,
    range: Option<ReplayIn>,
) -> Result<(StatusCode, Json<ReplayOut>), ApiError> {
    let now = state.clock.now();
    let (since, until) = match &range {
        Some(r) => {
            let until = r.until.unwrap_or(now);
            if until <= r.since {
                return Err(
                    ValidationError::new("until", "out_of_range", "must be after since").into(),
                );
            }
            (
                Some(r.since.timestamp_millis()),
                Some(until.timestamp_millis()),
            )
        }
        None => (None, None),
    };
    let mut change = owner.change(state).await?;
    if change.webhooks().endpoint(id).await?.is_none() {
        return Err(endpoint_not_found());
    }
    if let Some(m) = message_id
        && change.webhooks().message(id, m).await?.is_none()
    {
        return Err(message_not_found());
    }
    let replayed = change
        .webhooks()
        .replay(id, message_id, since, until, now.timestamp_millis())
        .await?;
    change.audit(
        "webhook_message.replayed",
        id,
        json!({ "message_id": message_id, "since": range.as_ref().map(|r| r.since),
                "until": range.as_ref().map(|r| r.until.unwrap_or(now)), "replayed": replayed }),
    );
    change.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(ReplayOut { replayed })))
}

// ---- operator routes ------------------------------------------------------

/// Registers an operator endpoint: it receives every tenant's events.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", request_body = EndpointInput,
    responses((status = 201, body = CreatedEndpointOut), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_create(
    State(state): State<AppState>,
    op: Operator,
    ApiJson(input): ApiJson<EndpointInput>,
) -> Result<(StatusCode, Json<CreatedEndpointOut>), ApiError> {
    create(&state, Owner::operator(&op), input).await
}

/// The operator's endpoints.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", params(super::PageParams),
    responses((status = 200, body = Page<EndpointView>)))]
pub async fn operator_list(
    State(state): State<AppState>,
    op: Operator,
    ApiQuery(page): ApiQuery<super::PageParams>,
) -> Result<Json<Page<EndpointView>>, ApiError> {
    list(&state, Owner::operator(&op), page).await
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{eid}", tag = "webhooks", params(("eid" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_get(
    State(state): State<AppState>,
    op: Operator,
    ApiPath(eid): ApiPath<String>,
) -> Result<Json<EndpointView>, ApiError> {
    get_one(&state, Owner::operator(&op), &eid).await
}

#[utoipa::path(patch, path = "/v1/webhook-endpoints/{eid}", tag = "webhooks", params(("eid" = String, Path)), request_body = EndpointPatch,
    responses((status = 200, body = EndpointView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_update(
    State(state): State<AppState>,
    op: Operator,
    ApiPath(eid): ApiPath<String>,
    ApiJson(patch): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointView>, ApiError> {
    update(&state, Owner::operator(&op), &eid, patch).await
}

#[utoipa::path(delete, path = "/v1/webhook-endpoints/{eid}", tag = "webhooks", params(("eid" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_delete(
    State(state): State<AppState>,
    op: Operator,
    ApiPath(eid): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    delete(&state, Owner::operator(&op), &eid).await
}

/// A new secret; the old one keeps signing for the overlap.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{eid}/secret/rotate", tag = "webhooks", params(("eid" = String, Path)), request_body = RotateSecretIn,
    responses((status = 200, body = CreatedEndpointOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_rotate(
    State(state): State<AppState>,
    op: Operator,
    ApiPath(eid): ApiPath<String>,
    ApiJson(input): ApiJson<RotateSecretIn>,
) -> Result<Json<CreatedEndpointOut>, ApiError> {
    rotate(&state, Owner::operator(&op), &eid, input).await
}

/// The endpoint's `v1a` public key as a JWKS (empty if it signs with HMAC only).
#[utoipa::path(get, path = "/v1/webhook-endpoints/{eid}/jwks.json", tag = "webhooks", params(("eid" = String, Path)),
    responses((status = 200, body = Jwks), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_jwks(
    State(state): State<AppState>,
    op: Operator,
    ApiPath(eid): ApiPath<String>,
) -> Result<Json<Jwks>, ApiError> {
    jwks(&state, Owner::operator(&op), &eid).await
}

/// The endpoint's messages, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{eid}/messages", tag = "webhooks", params(("eid" = String, Path), MessageParams),
    responses((status = 200, body = Page<MessageOut>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_messages(
    State(state): State<AppState>,
    op: Operator,
    ApiPath(eid): ApiPath<String>,
    ApiQuery(params): ApiQuery<MessageParams>,
) -> Result<Json<Page<MessageOut>>, ApiError> {
    messages(&state, Owner::operator(&op), &eid, params).await
}

/// One message and its attempts.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{eid}/messages/{mid}", tag = "webhooks", params(("eid" = String, Path), ("mid" = String, Path)),
    responses((status = 200, body = MessageDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_message(
    State(state): State<AppState>,
    op: Operator,
    ApiPath((eid, mid)): ApiPath<(String, String)>,
) -> Result<Json<MessageDetail>, ApiError> {
    message(&state, Owner::operator(&op), &eid, &mid).await
}

/// Delivers a message again (same `webhook-id`).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{eid}/messages/{mid}/replay", tag = "webhooks", params(("eid" = String, Path), ("mid" = String, Path)),
    responses((status = 202, body = ReplayOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_replay(
    State(state): State<AppState>,
    op: Operator,
    ApiPath((eid, mid)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<ReplayOut>), ApiError> {
    replay(&state, Owner::operator(&op), &eid, Some(&mid), None).await
}

/// Delivers again every message of a time range.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{eid}/replay", tag = "webhooks", params(("eid" = String, Path)), request_body = ReplayIn,
    responses((status = 202, body = ReplayOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn operator_replay_range(
    State(state): State<AppState>,
    op: Operator,
    ApiPath(eid): ApiPath<String>,
    ApiJson(range): ApiJson<ReplayIn>,
) -> Result<(StatusCode, Json<ReplayOut>), ApiError> {
    replay(&state, Owner::operator(&op), &eid, None, Some(range)).await
}

// ---- tenant routes --------------------------------------------------------

/// Registers a tenant endpoint: it receives this tenant's events only.
#[utoipa::path(post, path = "/v1/tenants/{id}/webhook-endpoints", tag = "webhooks", params(("id" = String, Path)), request_body = EndpointInput,
    responses((status = 201, body = CreatedEndpointOut), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<EndpointInput>,
) -> Result<(StatusCode, Json<CreatedEndpointOut>), ApiError> {
    create(&state, Owner::tenant_write(&caller, &id)?, input).await
}

#[utoipa::path(get, path = "/v1/tenants/{id}/webhook-endpoints", tag = "webhooks", params(("id" = String, Path), super::PageParams),
    responses((status = 200, body = Page<EndpointView>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<super::PageParams>,
) -> Result<Json<Page<EndpointView>>, ApiError> {
    list(&state, Owner::tenant_read(&caller, &id)?, page).await
}

#[utoipa::path(get, path = "/v1/tenants/{id}/webhook-endpoints/{eid}", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid)): ApiPath<(String, String)>,
) -> Result<Json<EndpointView>, ApiError> {
    get_one(&state, Owner::tenant_read(&caller, &id)?, &eid).await
}

#[utoipa::path(patch, path = "/v1/tenants/{id}/webhook-endpoints/{eid}", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path)), request_body = EndpointPatch,
    responses((status = 200, body = EndpointView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid)): ApiPath<(String, String)>,
    ApiJson(patch): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointView>, ApiError> {
    update(&state, Owner::tenant_write(&caller, &id)?, &eid, patch).await
}

#[utoipa::path(delete, path = "/v1/tenants/{id}/webhook-endpoints/{eid}", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete(&state, Owner::tenant_write(&caller, &id)?, &eid).await
}

#[utoipa::path(post, path = "/v1/tenants/{id}/webhook-endpoints/{eid}/secret/rotate", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path)), request_body = RotateSecretIn,
    responses((status = 200, body = CreatedEndpointOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_rotate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<RotateSecretIn>,
) -> Result<Json<CreatedEndpointOut>, ApiError> {
    rotate(&state, Owner::tenant_write(&caller, &id)?, &eid, input).await
}

#[utoipa::path(get, path = "/v1/tenants/{id}/webhook-endpoints/{eid}/jwks.json", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path)),
    responses((status = 200, body = Jwks), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_jwks(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid)): ApiPath<(String, String)>,
) -> Result<Json<Jwks>, ApiError> {
    jwks(&state, Owner::tenant_read(&caller, &id)?, &eid).await
}

#[utoipa::path(get, path = "/v1/tenants/{id}/webhook-endpoints/{eid}/messages", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path), MessageParams),
    responses((status = 200, body = Page<MessageOut>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_messages(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid)): ApiPath<(String, String)>,
    ApiQuery(params): ApiQuery<MessageParams>,
) -> Result<Json<Page<MessageOut>>, ApiError> {
    messages(&state, Owner::tenant_read(&caller, &id)?, &eid, params).await
}

#[utoipa::path(get, path = "/v1/tenants/{id}/webhook-endpoints/{eid}/messages/{mid}", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path), ("mid" = String, Path)),
    responses((status = 200, body = MessageDetail), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_message(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid, mid)): ApiPath<(String, String, String)>,
) -> Result<Json<MessageDetail>, ApiError> {
    message(&state, Owner::tenant_read(&caller, &id)?, &eid, &mid).await
}

#[utoipa::path(post, path = "/v1/tenants/{id}/webhook-endpoints/{eid}/messages/{mid}/replay", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path), ("mid" = String, Path)),
    responses((status = 202, body = ReplayOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_replay(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid, mid)): ApiPath<(String, String, String)>,
) -> Result<(StatusCode, Json<ReplayOut>), ApiError> {
    replay(
        &state,
        Owner::tenant_write(&caller, &id)?,
        &eid,
        Some(&mid),
        None,
    )
    .await
}

#[utoipa::path(post, path = "/v1/tenants/{id}/webhook-endpoints/{eid}/replay", tag = "webhooks", params(("id" = String, Path), ("eid" = String, Path)), request_body = ReplayIn,
    responses((status = 202, body = ReplayOut), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn tenant_replay_range(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, eid)): ApiPath<(String, String)>,
    ApiJson(range): ApiJson<ReplayIn>,
) -> Result<(StatusCode, Json<ReplayOut>), ApiError> {
    replay(
        &state,
        Owner::tenant_write(&caller, &id)?,
        &eid,
        None,
        Some(range),
    )
    .await
}
