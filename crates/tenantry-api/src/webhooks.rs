//! `webhooks` wire types.

use crate::REDACTED;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    /// JSON Schema of the event's `data`.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct EventTypeList {
    pub data: Vec<EventTypeOut>,
}

/// A new endpoint, with its secret shown this once.
#[derive(Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpointOut {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify signatures with it. Not shown again.
    pub secret: String,
}

impl std::fmt::Debug for CreatedEndpointOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEndpointOut")
            .field("endpoint", &self.endpoint)
            .field("secret", &REDACTED)
            .finish()
    }
}

#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretIn {
    /// How long the old secret keeps signing too (default
    /// `webhook_secret_overlap`), at most 7 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap_seconds: Option<u64>,
}

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct MessageParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// `pending`, `delivered` or `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Created at or after (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookMessageOut)]
pub struct MessageOut {
    pub id: String,
    pub endpoint_id: String,
    /// The `webhook-id` header of every attempt: the event's id.
    pub event_id: String,
    /// The tenant the event happened to; null for an operator-level event.
    pub event_tenant_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body sent (the Standard Webhooks envelope).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub attempt: i64,
    pub started_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status; null if no answer came.
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    /// The receiver's answer, truncated to 4 KiB.
    pub response_body: String,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub message: MessageOut,
    pub attempt_log: Vec<AttemptOut>,
}

#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// Replay the messages created at or after this time.
    pub since: DateTime<Utc>,
    /// …and before this one (default: now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayOut {
    /// How many delivered or failed messages were queued again.
    pub replayed: u64,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct Jwks {
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// Delivery order of an endpoint's messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Messages are delivered as they come, retries independently.
    #[default]
    None,
    /// Strictly in event order: a failing message holds the ones behind it.
    Fifo,
}

/// The body of `POST …/webhook-endpoints`.
#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// `https://…` (plain `http` only to hosts in `outbound_allowlist`).
    pub url: String,
    /// Event types delivered (see `GET /v1/event-types`); empty: all.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// At most this many deliveries a second, across all nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// `none` (default) or `fifo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering: Option<Ordering>,
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Also sign with Ed25519 (`v1a`); the public key is in the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asymmetric_signing: Option<bool>,
}

/// The body of `PATCH …/webhook-endpoints/{id}`: fields left out keep their
/// value; `rate_limit_per_second: 0` removes the limit. Enabling a
/// disabled endpoint clears why it was disabled.
#[derive(Debug, Serialize, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering: Option<Ordering>,
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: String,
    /// The owning tenant; `null` for an operator endpoint (it receives
    /// every tenant's events).
    pub tenant_id: Option<String>,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why delivery disabled it (`gone`: the receiver answered 410;
    /// `failing`: it failed for longer than `webhook_disable_after`).
    pub disabled_reason: Option<String>,
    pub rate_limit_per_second: Option<u32>,
    pub ordering: Ordering,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The Ed25519 public key of `v1a` signatures (`whpk_…`), if enabled.
    pub public_key: Option<String>,
    /// While a rotated-out secret still signs too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::None => "none",
            Ordering::Fifo => "fifo",
        }
    }
}
