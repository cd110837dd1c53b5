//! Inbound webhooks (`/v1/webhooks/…`, no API key: each delivery is
//! authenticated with the tenant's own secret) and the reads of what they
//! stored (`/v1/tenants/{id}/conversations`). The behaviour is in
//! [`crate::inbound`].

use super::{Page, PageParams, cursor};
use crate::app::AppState;
use crate::grant::Principal;
use crate::http::auth::Caller;
use crate::http::extract::{ApiPath, ApiQuery, RawBody};
use crate::http::problem::{ApiError, Problem};
use crate::inbound::messages::{self, HistoryRow};
use crate::inbound::whatsapp::{self, SOURCE};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::BTreeMap;
pub use tenantry_api::inbound::{
    Acknowledged, ContactOut, ConversationOut, Handshake, MessageOut, StatusOut,
};
use tenantry_core::TenantId;
use tenantry_core::keys::Scope;
use tenantry_core::tenant::TenantStatus;
use tenantry_store::{StoredConversation, StoredInboundMessage};

fn refused() -> ApiError {
    ApiError::Forbidden {
        code: crate::http::codes::Code::InvalidCredentials,
        detail: "the verify token does not match".into(),
    }
}

/// Meta's webhook verification: answers `hub.challenge` as `text/plain`
/// when `hub.mode` is `subscribe` and `hub.verify_token` is the tenant's.
#[utoipa::path(get, path = "/v1/webhooks/whatsapp/{tenant}", tag = "inbound", params(("tenant" = String, Path), Handshake), security(()),
    responses((status = 200, description = "the challenge", body = String, content_type = "text/plain"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn whatsapp_handshake(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(query): ApiQuery<Handshake>,
) -> Result<Response, ApiError> {
    let (tenant, status) = whatsapp::live_tenant(&state, &tenant).await?;
    let (Some("subscribe"), Some(token), Some(challenge)) = (
        query.mode.as_deref(),
        query.verify_token.as_deref(),
        query.challenge.as_deref(),
    ) else {
        return Err(refused());
    };
    // Meta's challenges are short digits; anything else is not echoed.
    if challenge.is_empty()
        || challenge.len() > 256
        || !challenge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(refused());
    }
    let secrets = whatsapp::secrets(&state, &tenant).await?;
    if !secrets.verify_token_matches(token) || status != TenantStatus::Active {
        crate::change::note_credential(&tenant, Principal::webhook(SOURCE));
        return Err(refused());
    }
    let mut response = challenge.to_owned().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

fn signature(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
}

/// Checks a delivery's signature with the tenant's app secrets; a refusal
/// is recorded in the tenant's audit log (by the router, bounded per
/// minute).
async fn verified(
    state: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<bool, ApiError> {
    let secrets = whatsapp::secrets(state, tenant).await?;
    Ok(secrets.signature_matches(signature(headers), body))
}

/// A WhatsApp Cloud API delivery for one tenant: `X-Hub-Signature-256`
/// must be the HMAC-SHA256 of the raw body with the tenant's app secret.
/// Answered `200` once the delivery is stored (a redelivery changes
/// nothing). A suspended tenant's deliveries are refused (`403`), so that
/// Meta retries them (for up to 7 days) rather than losing them.
#[utoipa::path(post, path = "/v1/webhooks/whatsapp/{tenant}", tag = "inbound", params(("tenant" = String, Path)), security(()),
    request_body(content = Object, description = "Meta's webhook payload, byte for byte as signed"),
    responses((status = 200, body = Acknowledged),
        (status = 401, description = "missing or bad signature", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "the tenant is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn whatsapp_receive(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Acknowledged>, ApiError> {
    let (tenant, status) = whatsapp::live_tenant(&state, &tenant).await?;
    crate::change::note_credential(&tenant, Principal::webhook(SOURCE));
    if !verified(&state, &tenant, &headers, &body).await? {
        return Err(ApiError::Unauthorized);
    }
    if status != TenantStatus::Active {
        return Err(ApiError::TenantSuspended);
    }
    let stored = whatsapp::store_delivery(&state, &tenant, &body).await?;
    Ok(Json(Acknowledged { stored }))
}

/// The tenant an entry is addressed to: by its WhatsApp Business Account
/// id, else by the phone number id of its changes.
async fn route(state: &AppState, entry: &Value) -> Result<Option<TenantId>, ApiError> {
    let mut op = crate::resolution::resolver().read(state).await?;
    let mut found = None;
    if let Some(waba) = entry.get("id").and_then(Value::as_str) {
        found = op.find_whatsapp_route("waba", waba).await?;
    }
    if found.is_none() {
        let phones = entry
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.pointer("/value/metadata/phone_number_id"))
            .filter_map(Value::as_str);
        for phone in phones {
            found = op.find_whatsapp_route("phone", phone).await?;
            if found.is_some() {
                break;
            }
        }
    }
    op.commit().await?;
    Ok(found)
}

/// A WhatsApp Cloud API delivery to the one URL of a Meta app serving many
/// businesses: each entry goes to the tenant that registered its WhatsApp
/// Business Account (`entry[].id`) or phone number id, and the signature
/// is checked with that tenant's app secret. Entries no tenant registered
/// are acknowledged and logged, never stored.
#[utoipa::path(post, path = "/v1/webhooks/whatsapp", tag = "inbound", security(()),
    request_body(content = Object, description = "Meta's webhook payload, byte for byte as signed"),
    responses((status = 200, body = Acknowledged),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "the signature verified with no addressed tenant's secret", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "an addressed tenant is suspended (Meta retries; the rest is stored once)", body = Problem, content_type = "application/problem+json")))]
pub async fn whatsapp_receive_any(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Acknowledged>, ApiError> {
    let root: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::MalformedJson(format!("line {} column {}", e.line(), e.column())))?;
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut by_tenant: BTreeMap<TenantId, Vec<Value>> = BTreeMap::new();
    let mut unknown = 0usize;
    for entry in entries {
        match route(&state, &entry).await? {
            Some(tenant) => by_tenant.entry(tenant).or_default().push(entry),
            None => {
                unknown += 1;
                tracing::warn!(entry_id = ?entry.get("id"), "a WhatsApp delivery names an account no tenant registered; acknowledged, not stored");
            }
        }
    }
    let whole = by_tenant.len() == 1 && unknown == 0;
    let (mut stored, mut any_verified, mut suspended) = (false, false, false);
    for (tenant, entries) in by_tenant {
        let Ok((tenant, status)) = whatsapp::live_tenant(&state, tenant.as_str()).await else {
            tracing::warn!(tenant_id = %tenant, "a WhatsApp delivery for a deleted tenant was dropped");
            continue;
        };
        if !verified(&state, &tenant, &headers, &body).await? {
            tracing::warn!(tenant_id = %tenant, "a WhatsApp delivery's signature did not verify with the addressed tenant's app secret");
            continue;
        }
        any_verified = true;
        if status != TenantStatus::Active {
            suspended = true;
            continue;
        }
        // The tenant's share of the delivery: the raw bytes when it is all
        // of it, else its own entries only (never another tenant's).
        let share = if whole {
            body.to_vec()
        } else {
            let mut part = serde_json::Map::new();
            part.insert(
                "object".into(),
                root.get("object").cloned().unwrap_or(Value::Null),
            );
            part.insert("entry".into(), Value::Array(entries));
            serde_json::to_vec(&Value::Object(part)).map_err(|_| ApiError::Internal)?
        };
        stored |= whatsapp::store_delivery(&state, &tenant, &share).await?;
    }
    if suspended {
        return Err(ApiError::TenantSuspended);
    }
    if !any_verified && unknown == 0 {
        return Err(ApiError::Unauthorized);
    }
    Ok(Json(Acknowledged { stored }))
}

pub fn conversation_out(c: StoredConversation) -> ConversationOut {
    ConversationOut {
        id: c.id,
        channel: c.channel,
        account_id: c.account_id,
        contact: ContactOut {
            wa_id: c.wa_id,
            user_id: c.user_id,
            profile_name: c.profile_name,
        },
        created_at: c.created_at,
        last_activity_at: c.last_activity_at,
    }
}

pub fn message_out((m, history): (StoredInboundMessage, Vec<HistoryRow>)) -> MessageOut {
    MessageOut {
        id: m.id,
        conversation_id: m.conversation_id,
        direction: m.direction,
        channel: m.channel,
        provider: m.provider,
        provider_message_id: m.provider_message_id,
        kind: m.kind,
        from: m.sender,
        to: m.recipient,
        body: m.body,
        status: m.status,
        statuses: history
            .into_iter()
            .map(|(status, occurred_at, inferred, error)| StatusOut {
                status,
                occurred_at,
                inferred,
                error,
            })
            .collect(),
        sent_at: m.sent_at,
        created_at: m.created_at,
    }
}

fn next<T>(rows: &[T], limit: u32, kind: &str, id: impl Fn(&T) -> &str) -> Option<String> {
    if rows.len() < limit as usize {
        return None;
    }
    rows.last().map(|last| cursor(kind, id(last)))
}

/// A tenant's conversations, oldest first.
#[utoipa::path(get, path = "/v1/tenants/{id}/conversations", tag = "inbound", params(("id" = String, Path), PageParams),
    responses((status = 200, body = Page<ConversationOut>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn conversations(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<ConversationOut>>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let limit = page.limit()?;
    let after = page.after("conversations")?;
    let rows = messages::conversations(&state, &grant, after.as_deref(), limit).await?;
    Ok(Json(Page {
        next_cursor: next(&rows, limit, "conversations", |c| &c.id),
        data: rows.into_iter().map(conversation_out).collect(),
    }))
}

/// A conversation's messages, oldest first, each with its status history.
#[utoipa::path(get, path = "/v1/tenants/{id}/conversations/{cid}/messages", tag = "inbound",
    params(("id" = String, Path), ("cid" = String, Path), PageParams),
    responses((status = 200, body = Page<MessageOut>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn conversation_messages(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, cid)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<MessageOut>>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let limit = page.limit()?;
    let after = page.after("messages")?;
    let rows = messages::messages(&state, &grant, &cid, after.as_deref(), limit).await?;
    Ok(Json(Page {
        next_cursor: next(&rows, limit, "messages", |(m, _)| &m.id),
        data: rows.into_iter().map(message_out).collect(),
    }))
}
