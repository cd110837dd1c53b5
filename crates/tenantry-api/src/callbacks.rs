//! `callbacks` wire types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    /// `email`, `sms`, `voice` or `whatsapp`.
    #[schema(value_type = Channel)]
    pub channel: String,
    /// `twilio`, `sendgrid` or `generic`: whose callbacks report on it.
    #[schema(value_type = StatusProvider)]
    pub provider: String,
    /// The provider's id of the message (Twilio's `MessageSid`/`CallSid`,
    /// SendGrid's `X-Message-Id`); unique per provider across tenants.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub provider_message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub campaign_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 320,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub recipient: Option<String>,
}

/// What a status callback did.
#[derive(Debug, Deserialize, Clone, Serialize, utoipa::ToSchema)]
pub struct CallbackAck {
    /// Statuses newly recorded (`0` for a repeated callback).
    pub applied: usize,
    /// Reports naming a message id no tenant registered (acknowledged,
    /// logged and counted, never stored).
    pub unknown: usize,
}

/// The channel of a registered message.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Voice,
    Whatsapp,
}

/// Whose status callbacks report on a registered message.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusProvider {
    Twilio,
    Sendgrid,
    Generic,
}
