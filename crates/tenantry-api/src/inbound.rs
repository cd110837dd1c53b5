//! `inbound` wire types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Meta's verification request.
#[derive(Debug, Serialize, Clone, Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct Handshake {
    /// Always `subscribe`.
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: Option<String>,
    /// The verify token configured in the Meta app, compared with the
    /// tenant's sealed one.
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// Echoed back on success.
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// What a delivery's acknowledgement says.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct Acknowledged {
    /// `false`: byte for byte the same delivery was stored before, or (on
    /// the one URL) no tenant has the ids it names.
    pub stored: bool,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationOut {
    pub id: String,
    pub channel: String,
    /// The tenant's account it is on (WhatsApp: the phone number id).
    pub account_id: String,
    pub contact: ContactOut,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactOut {
    /// The contact's WhatsApp id (phone number); absent when Meta sent only
    /// the business-scoped user id.
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub profile_name: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusOut {
    pub status: String,
    pub occurred_at: DateTime<Utc>,
    /// `delivered` implied by a `read`.
    pub inferred: bool,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = InboundMessageOut)]
pub struct MessageOut {
    pub id: String,
    pub conversation_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub channel: String,
    pub provider: String,
    pub provider_message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The provider's message object (text, or a media reference).
    #[schema(value_type = Object)]
    pub body: Value,
    /// The furthest status reached (`received` for inbound messages).
    pub status: Option<String>,
    pub statuses: Vec<StatusOut>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
