//! Conversations, messages and status histories, written inside a change:
//! each stored message and each status it reaches has its audit entry and
//! its event, and an inbound message counts once in `messages_inbound`.

use crate::app::AppState;
use crate::change::TenantChange;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use crate::limits::usage::CheckedEvent;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenantry_core::audit::AuditTarget;
use tenantry_core::tenant::TenantEventKind;
use tenantry_store::{NewStatus, StoreError, StoredConversation, StoredInboundMessage};

/// The meter inbound messages count in.
pub const INBOUND_METER: &str = "messages_inbound";

pub fn target(id: &str) -> AuditTarget {
    AuditTarget::new("message", id)
}

/// The statuses a message moves through, in order; `failed` ends it.
pub const STATUSES: [&str; 4] = ["sent", "delivered", "read", "failed"];

/// Where `status` stands in [`STATUSES`] (`received`, an inbound message's
/// own status, first).
fn rank(status: &str) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .map_or(0, |i| i + 1)
}

/// One inbound message to store under a conversation.
pub struct Inbound<'a> {
    pub channel: &'a str,
    pub provider: &'a str,
    pub account_id: &'a str,
    pub provider_message_id: &'a str,
    pub kind: &'a str,
    pub from: &'a str,
    /// The contact: its key in the conversation, and what is known of it.
    pub contact_key: &'a str,
    pub wa_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub profile_name: Option<&'a str>,
    pub sent_at: DateTime<Utc>,
    pub body: &'a Value,
}

/// What a delivery changed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub messages: usize,
    pub statuses: usize,
    /// Usage to count once the rows are written (in the same transaction).
    pub usage: Vec<CheckedEvent>,
}

/// Stores an inbound message unless the tenant has it already (a
/// redelivery changes nothing).
pub async fn store_inbound(
    state: &AppState,
    change: &mut TenantChange,
    m: &Inbound<'_>,
    outcome: &mut Outcome,
) -> Result<(), StoreError> {
    let now = state.clock.now();
    if change
        .tx()
        .message_by_provider_id(m.channel, m.account_id, m.provider_message_id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let conversation_id = change
        .tx()
        .touch_conversation(
            &state.ids.sortable("conv", millis(now)),
            m.channel,
            m.account_id,
            m.contact_key,
            m.wa_id,
            m.user_id,
            m.profile_name,
            m.sent_at,
        )
        .await?;
    let message = StoredInboundMessage {
        id: state.ids.sortable("msg", millis(now)),
        conversation_id: Some(conversation_id.clone()),
        direction: "inbound".into(),
        channel: m.channel.into(),
        provider: m.provider.into(),
        account_id: m.account_id.into(),
        provider_message_id: m.provider_message_id.into(),
        kind: m.kind.into(),
        sender: Some(m.from.into()),
        recipient: Some(m.account_id.into()),
        campaign_id: None,
        body: m.body.clone(),
        status: Some("received".into()),
        sent_at: Some(m.sent_at),
        created_at: now,
        updated_at: now,
    };
    // A concurrent redelivery may have stored it since the lookup: the
    // unique index decides, and the loser records nothing.
    if !change.tx().insert_message(&message).await? {
        return Ok(());
    }
    change.event(
        TenantEventKind::MessageReceived,
        json!({
            "message_id": message.id,
            "conversation_id": conversation_id,
            "channel": m.channel,
            "provider_message_id": m.provider_message_id,
            "type": m.kind,
            "from": m.from,
            "received_at": now,
        }),
    );
    change.audit(
        "message.received",
        vec![target(&message.id), AuditTarget::new("conversation", &conversation_id)],
        json!({ "after": { "channel": m.channel, "type": m.kind, "provider_message_id": m.provider_message_id } }),
    );
    outcome.messages += 1;
    outcome.usage.push(CheckedEvent {
        id: format!("{}:{}:{}", m.channel, m.account_id, m.provider_message_id),
        meter: INBOUND_METER.into(),
        aggregation: crate::limits::service::Aggregation::Sum,
        quantity: 1,
        occurred_at: now,
        subject: Some(conversation_id),
        properties: json!({ "channel": m.channel }),
    });
    Ok(())
}

/// One status report about a message.
pub struct Status<'a> {
    pub status: &'a str,
    pub occurred_at: DateTime<Utc>,
    /// `{code, title}` of a failure.
    pub error: Option<Value>,
    /// What else the provider said (conversation, pricing, …).
    pub detail: &'a Value,
}

/// Records a status in a message's history (once per status; a `read`
/// implies `delivered`), and moves the message's current status forward
/// when the new one is further along: statuses arriving out of order never
/// move it back.
pub async fn apply_status(
    state: &AppState,
    change: &mut TenantChange,
    message: &StoredInboundMessage,
    s: &Status<'_>,
    outcome: &mut Outcome,
) -> Result<(), StoreError> {
    let now = state.clock.now();
    let mut reached = vec![(s.status, false)];
    if s.status == "read" {
        reached.push(("delivered", true));
    }
    let mut recorded = false;
    for (status, inferred) in reached {
        let new = NewStatus {
            message_id: &message.id,
            status,
            occurred_at: s.occurred_at,
            inferred,
            error: s.error.as_ref(),
            detail: s.detail,
            recorded_at: now,
        };
        if change.tx().insert_status(&new).await? {
            recorded = true;
            change.audit_with(
                "message.status_recorded",
                vec![target(&message.id)],
                json!({ "after": { "status": status } }),
                json!({ "inferred": inferred, "provider": message.provider }),
            );
        }
    }
    if !recorded {
        return Ok(());
    }
    outcome.statuses += 1;
    let previous = message.status.as_deref().filter(|p| *p != "received");
    if previous.is_some_and(|p| rank(p) >= rank(s.status)) {
        return Ok(());
    }
    change
        .tx()
        .set_message_status(&message.id, s.status, now)
        .await?;
    change.event(
        TenantEventKind::MessageStatusUpdated,
        json!({
            "message_id": message.id,
            "channel": message.channel,
            "provider": message.provider,
            "provider_message_id": message.provider_message_id,
            "status": s.status,
            "previous_status": previous,
            "error": s.error,
        }),
    );
    Ok(())
}

/// Counts the delivery's new inbound messages (their ids make a count
/// idempotent too).
pub async fn count_usage(
    state: &AppState,
    change: &mut TenantChange,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    if outcome.usage.is_empty() {
        return Ok(());
    }
    let config = crate::limits::service::effective_config(state, change.tx()).await?;
    let now = state.clock.now();
    crate::limits::usage::record_batch(state, change.tx(), &config, &outcome.usage, now).await?;
    Ok(())
}

/// A page of the tenant's conversations.
pub async fn conversations(
    state: &AppState,
    grant: &TenantGrant,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<StoredConversation>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    let rows = tx.list_conversations(after, limit).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The tenant's messages by channel, then by current status.
pub async fn counts(
    state: &AppState,
    grant: &TenantGrant,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let mut tx = grant.read(state).await?;
    let rows = tx.message_counts().await?;
    tx.commit().await?;
    let mut out = serde_json::Map::new();
    for (channel, status, n) in rows {
        if let Value::Object(by_status) = out.entry(channel).or_insert_with(|| json!({})) {
            by_status.insert(status.unwrap_or_else(|| "unknown".into()), json!(n));
        }
    }
    Ok(out)
}

pub fn conversation_not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::ConversationNotFound,
        detail: "this tenant has no such conversation".into(),
    }
}

/// A page of one conversation's messages, with each one's status history.
pub async fn messages(
    state: &AppState,
    grant: &TenantGrant,
    conversation: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<(StoredInboundMessage, Vec<HistoryRow>)>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    tx.conversation(conversation).await.map_err(|e| match e {
        StoreError::NotFound => conversation_not_found(),
        other => other.into(),
    })?;
    let rows = tx.list_messages(conversation, after, limit).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let history = tx.message_statuses(&row.id).await?;
        out.push((row, history));
    }
    tx.commit().await?;
    Ok(out)
}

pub use tenantry_store::HistoryRow;

pub(crate) fn millis(now: DateTime<Utc>) -> u64 {
    now.timestamp_millis().max(0) as u64
}
