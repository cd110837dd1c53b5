//! Outbound message registration (`POST /v1/tenants/{id}/messages`) and the
//! providers' status callbacks (`POST /v1/webhooks/{twilio,sendgrid,generic}`,
//! no API key: each is authenticated with the addressed tenant's
//! credential). The behaviour is in [`crate::inbound::callbacks`].

use super::inbound::MessageOut;
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath, RawBody};
use crate::http::problem::{ApiError, Problem};
use crate::inbound::callbacks::{self, Delivered, NewMessage, Report};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
pub use tenantry_api::callbacks::{CallbackAck, MessageIn};
use tenantry_core::ValidationError;
use tenantry_core::keys::Scope;

/// Register an outbound message the tenant's app sent through a provider,
/// so that the provider's status callbacks find it.
#[utoipa::path(post, path = "/v1/tenants/{id}/messages", tag = "inbound", params(("id" = String, Path)), request_body = MessageIn,
    responses((status = 201, body = MessageOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the provider message id is registered already", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<MessageIn>,
) -> Result<(StatusCode, Json<MessageOut>), ApiError> {
    let grant = caller.grant(&id, Scope::UsageWrite)?;
    let message = callbacks::register(
        &state,
        &grant,
        &NewMessage {
            channel: &input.channel,
            provider: &input.provider,
            provider_message_id: &input.provider_message_id,
            campaign_id: input.campaign_id.as_deref(),
            recipient: input.recipient.as_deref(),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(super::inbound::message_out((message, Vec::new()))),
    ))
}

fn answer(d: Delivered) -> Result<Json<CallbackAck>, ApiError> {
    if d.refused > 0 && d.verified == 0 {
        return Err(ApiError::Unauthorized);
    }
    if d.suspended {
        return Err(ApiError::TenantSuspended);
    }
    Ok(Json(CallbackAck {
        applied: d.applied,
        unknown: d.unknown,
    }))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Twilio's status callback, as far as Tenantry reads it (Twilio sends more
/// parameters; all are covered by the signature).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, non_snake_case)] // documents the form; it is read as pairs
pub struct TwilioCallback {
    /// The message (or `SmsSid`, or `CallSid` for a call): one is required.
    MessageSid: String,
    MessageStatus: Option<String>,
    ErrorCode: Option<String>,
    ErrorMessage: Option<String>,
}

/// A Twilio SMS or voice status callback (form-encoded): `MessageSid` or
/// `CallSid` names the message, `MessageStatus` or `CallStatus` its status;
/// `X-Twilio-Signature` must verify with the addressed tenant's auth token
/// over the public URL (setting `public_url`) and the sorted parameters.
#[utoipa::path(post, path = "/v1/webhooks/twilio", tag = "inbound", security(()),
    request_body(content = TwilioCallback, content_type = "application/x-www-form-urlencoded", description = "Twilio's status callback parameters"),
    responses((status = 200, body = CallbackAck),
        (status = 401, description = "missing or bad signature", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "the tenant is suspended", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "no MessageSid, SmsSid or CallSid", body = Problem, content_type = "application/problem+json")))]
pub async fn twilio(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<CallbackAck>, ApiError> {
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    // No NUL anywhere, as in every other body.
    if let Some((name, _)) = params
        .iter()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ValidationError::new(
            name.replace('\0', "\\u0000"),
            "invalid_character",
            "must not contain a NUL character (U+0000)",
        )
        .into());
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let base = match &state.config.public_url {
        Some(url) => url.clone(),
        None => format!(
            "http://{}",
            header_str(&headers, "host").unwrap_or_default()
        ),
    };
    let url = format!(
        "{base}{}",
        uri.path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/v1/webhooks/twilio")
    );
    let sid = param("MessageSid")
        .or_else(|| param("SmsSid"))
        .or_else(|| param("CallSid"));
    let status = param("MessageStatus")
        .or_else(|| param("SmsStatus"))
        .or_else(|| param("CallStatus"));
    // Twilio names the message or call in every callback.
    let Some(sid) = sid else {
        return Err(ValidationError::new(
            "MessageSid",
            "required",
            "one of MessageSid, SmsSid or CallSid is required",
        )
        .into());
    };
    let mut reports = Vec::new();
    {
        reports.push(Report {
            provider_message_id: sid.to_owned(),
            status: status.and_then(callbacks::twilio_status),
            occurred_at: state.clock.now(),
            error: param("ErrorCode").map(|c| json!({ "code": c, "title": param("ErrorMessage") })),
            detail: json!({ "provider_status": status }),
        });
    }
    let signature = header_str(&headers, "x-twilio-signature").unwrap_or_default();
    let verify =
        |token: &[u8]| callbacks::twilio_signature_matches(token, &url, &params, signature);
    answer(callbacks::deliver(&state, "twilio", "auth_token", reports, &verify).await?)
}

fn unix(value: Option<&Value>) -> Option<DateTime<Utc>> {
    match value? {
        Value::Number(n) => DateTime::from_timestamp(n.as_i64()?, 0),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

/// The body as JSON, refusing a NUL character anywhere in it like every
/// other body of the API (`http::extract::refuse_nul`).
fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let value = serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedJson(format!("line {} column {}", e.line(), e.column())))?;
    crate::http::extract::refuse_nul(&value)?;
    Ok(value)
}

/// SendGrid's event webhook (a JSON array of events): each event's
/// `sg_message_id` up to its first `.` is the registered `X-Message-Id`;
/// `X-Twilio-Email-Event-Webhook-Signature` must verify (ECDSA P-256,
/// SHA-256) over `X-Twilio-Email-Event-Webhook-Timestamp` and the raw body
/// with the addressed tenant's public key.
#[utoipa::path(post, path = "/v1/webhooks/sendgrid", tag = "inbound", security(()),
    request_body(content = Vec<Object>, description = "SendGrid's events (a JSON array of objects), byte for byte as signed"),
    responses((status = 200, body = CallbackAck),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "missing or bad signature", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "the tenant is suspended", body = Problem, content_type = "application/problem+json")))]
pub async fn sendgrid(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<CallbackAck>, ApiError> {
    let events = parse_json(&body)?;
    if !events
        .as_array()
        .is_some_and(|e| e.iter().all(Value::is_object))
    {
        return Err(ValidationError::new(
            "body",
            "invalid_type",
            "must be a JSON array of event objects",
        )
        .into());
    }
    let now = state.clock.now();
    let reports = events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let id = e.get("sg_message_id")?.as_str()?.split('.').next()?;
            let event = e.get("event").and_then(Value::as_str);
            Some(Report {
                provider_message_id: id.to_owned(),
                status: event.and_then(callbacks::sendgrid_status),
                occurred_at: unix(e.get("timestamp")).unwrap_or(now),
                error: e
                    .get("reason")
                    .map(|r| json!({ "code": event, "title": r })),
                detail: json!({ "provider_status": event }),
            })
        })
        .collect();
    let signature =
        header_str(&headers, "x-twilio-email-event-webhook-signature").unwrap_or_default();
    let timestamp =
        header_str(&headers, "x-twilio-email-event-webhook-timestamp").unwrap_or_default();
    let verify = |key: &[u8]| {
        !signature.is_empty()
            && callbacks::sendgrid_signature_matches(key, timestamp, &body, signature)
    };
    answer(callbacks::deliver(&state, "sendgrid", "public_key", reports, &verify).await?)
}

/// The generic status report; also `timestamp` (RFC 3339 or Unix seconds)
/// and `error` (any JSON), read when present.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the body; it is read as JSON for its signature
pub struct GenericReport {
    provider_message_id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    status: Option<String>,
}

/// The generic status callback: `{provider_message_id, status, timestamp,
/// error?}` (status one of sent, delivered, read, failed; timestamp RFC 3339
/// or Unix seconds), `X-Tenantry-Signature: sha256=<hex HMAC-SHA256 of the
/// raw body>` with the addressed tenant's `secret`.
#[utoipa::path(post, path = "/v1/webhooks/generic", tag = "inbound", security(()),
    request_body(content = GenericReport, description = "the status report, byte for byte as signed"),
    responses((status = 200, body = CallbackAck),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "missing or bad signature", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "the tenant is suspended", body = Problem, content_type = "application/problem+json")))]
pub async fn generic(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<CallbackAck>, ApiError> {
    let report = parse_json(&body)?;
    if !report.is_object() {
        return Err(ValidationError::new("body", "invalid_type", "must be a JSON object").into());
    }
    let Some(id) = report.get("provider_message_id").and_then(Value::as_str) else {
        return Err(ValidationError::new(
            "provider_message_id",
            "required",
            "must be the provider's message id, a string",
        )
        .into());
    };
    let status = match report.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(ValidationError::new("status", "invalid_type", "must be a string").into());
        }
    };
    let mut reports = Vec::new();
    {
        reports.push(Report {
            provider_message_id: id.to_owned(),
            status: status.and_then(callbacks::generic_status),
            occurred_at: unix(report.get("timestamp")).unwrap_or(state.clock.now()),
            error: report.get("error").filter(|e| !e.is_null()).cloned(),
            detail: json!({ "provider_status": status }),
        });
    }
    let signature = header_str(&headers, "x-tenantry-signature").unwrap_or_default();
    let verify = |secret: &[u8]| callbacks::generic_signature_matches(secret, &body, signature);
    answer(callbacks::deliver(&state, "generic", "secret", reports, &verify).await?)
}
