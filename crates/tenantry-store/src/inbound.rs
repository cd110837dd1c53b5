//! Inbound traffic (tenant-scoped tables `whatsapp_routes`,
//! `inbound_payloads`, `conversations`, `messages`, `message_statuses`):
//! raw deliveries, the conversations and messages parsed from them, and
//! each message's status history.

use crate::Result;
use crate::error::{Conflict, StoreError, unique_violation};
use crate::scope::{OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tenantry_core::TenantId;

/// A conversation with one contact on one of the tenant's accounts.
#[derive(Debug, Clone)]
pub struct StoredConversation {
    pub id: String,
    pub channel: String,
    pub account_id: String,
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub profile_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
}

/// A message, inbound or outbound.
#[derive(Debug, Clone)]
pub struct StoredInboundMessage {
    pub id: String,
    pub conversation_id: Option<String>,
    pub direction: String,
    pub channel: String,
    pub provider: String,
    pub account_id: String,
    pub provider_message_id: String,
    pub kind: String,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub campaign_id: Option<String>,
    pub body: serde_json::Value,
    pub status: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One status a message reached.
#[derive(Debug, Clone)]
pub struct NewStatus<'a> {
    pub message_id: &'a str,
    pub status: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub inferred: bool,
    pub error: Option<&'a serde_json::Value>,
    pub detail: &'a serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

type ConversationRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);
const CONVERSATION_COLUMNS: &str =
    "id, channel, account_id, wa_id, user_id, profile_name, created_at, last_activity_at";

fn conversation(row: ConversationRow) -> StoredConversation {
    let (id, channel, account_id, wa_id, user_id, profile_name, created_at, last_activity_at) = row;
    StoredConversation {
        id,
        channel,
        account_id,
        wa_id,
        user_id,
        profile_name,
        created_at,
        last_activity_at,
    }
}

const MESSAGE_COLUMNS: &str = "id, conversation_id, direction, channel, provider, account_id, \
     provider_message_id, type, sender, recipient, campaign_id, body, status, sent_at, created_at, updated_at";

type MessageFlat = (
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Json<serde_json::Value>,
    Option<String>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn message(m: MessageFlat) -> StoredInboundMessage {
    StoredInboundMessage {
        id: m.0,
        conversation_id: m.1,
        direction: m.2,
        channel: m.3,
        provider: m.4,
        account_id: m.5,
        provider_message_id: m.6,
        kind: m.7,
        sender: m.8,
        recipient: m.9,
        campaign_id: m.10,
        body: m.11.0,
        status: m.12,
        sent_at: m.13,
        created_at: m.14,
        updated_at: m.15,
    }
}

/// (status, occurred_at, inferred, error) of one status a message reached.
pub type HistoryRow = (String, DateTime<Utc>, bool, Option<serde_json::Value>);
type StatusRow = (String, DateTime<Utc>, bool, Option<Json<serde_json::Value>>);

impl TenantTx {
    /// Replaces this tenant's WhatsApp routes with `routes` ((kind, id)
    /// pairs, `kind` `waba` or `phone`). `Conflict::WhatsappId` if another
    /// tenant holds one of them.
    pub async fn replace_whatsapp_routes(&mut self, routes: &[(&str, &str)]) -> Result<()> {
        let delete = "DELETE FROM whatsapp_routes WHERE tenant_id = $1";
        on_conn!(&mut self.conn, |c| sqlx::query(delete)
            .bind(self.tenant.as_str())
            .execute(&mut **c)
            .await?
            .rows_affected());
        let insert = "INSERT INTO whatsapp_routes (tenant_id, kind, external_id) VALUES ($1, $2, $3) \
                      ON CONFLICT (tenant_id, kind, external_id) DO NOTHING";
        for (kind, id) in routes {
            on_conn!(&mut self.conn, |c| sqlx::query(insert)
                .bind(self.tenant.as_str())
                .bind(*kind)
                .bind(*id)
                .execute(&mut **c)
                .await
                .map_err(|e| match unique_violation(&e) {
                    Some(_) => StoreError::Conflict(Conflict::WhatsappId),
                    None => StoreError::Database(e),
                })?
                .rows_affected());
        }
        Ok(())
    }

    /// Stores a raw delivery; `false` if a byte-identical one (same source
    /// and digest) is stored already.
    pub async fn insert_inbound_payload(
        &mut self,
        id: &str,
        source: &str,
        digest: &str,
        body: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = "INSERT INTO inbound_payloads (tenant_id, id, source, digest, body, received_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, source, digest) DO NOTHING";
        let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(id)
            .bind(source)
            .bind(digest)
            .bind(body)
            .bind(received_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Notes why a stored delivery could not be parsed.
    pub async fn mark_payload_unparsed(&mut self, id: &str, error: &str) -> Result<()> {
        let sql = "UPDATE inbound_payloads SET parse_error = $3 WHERE tenant_id = $1 AND id = $2";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(id)
            .bind(error)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The conversation with `contact_key` on `account_id`, created (with
    /// `new_id`) if there is none; its last activity moved to `at` if later,
    /// and its identity fields filled in where they were missing. Returns
    /// the conversation's id.
    #[allow(clippy::too_many_arguments)]
    pub async fn touch_conversation(
        &mut self,
        new_id: &str,
        channel: &str,
        account_id: &str,
        contact_key: &str,
        wa_id: Option<&str>,
        user_id: Option<&str>,
        profile_name: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<String> {
        let sql = "INSERT INTO conversations (tenant_id, id, channel, account_id, contact_key, wa_id, user_id, \
                   profile_name, created_at, last_activity_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                   ON CONFLICT (tenant_id, channel, account_id, contact_key) DO UPDATE SET \
                   wa_id = COALESCE(conversations.wa_id, excluded.wa_id), \
                   user_id = COALESCE(conversations.user_id, excluded.user_id), \
                   profile_name = COALESCE(excluded.profile_name, conversations.profile_name), \
                   last_activity_at = CASE WHEN excluded.last_activity_at > conversations.last_activity_at \
                   THEN excluded.last_activity_at ELSE conversations.last_activity_at END \
                   RETURNING id";
        let (id,): (String,) = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.tenant.as_str())
            .bind(new_id)
            .bind(channel)
            .bind(account_id)
            .bind(contact_key)
            .bind(wa_id)
            .bind(user_id)
            .bind(profile_name)
            .bind(at)
            .fetch_one(&mut **c)
            .await?);
        Ok(id)
    }

    /// Stores a message; `false` if the tenant has one with the same
    /// (channel, account, provider id) already (a redelivery).
    pub async fn insert_message(&mut self, m: &StoredInboundMessage) -> Result<bool> {
        let sql = format!(
            "INSERT INTO messages (tenant_id, {MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (tenant_id, channel, account_id, provider_message_id) DO NOTHING"
        );
        let n = on_conn!(&mut self.conn, |c| sqlx::query(&sql)
            .bind(self.tenant.as_str())
            .bind(&m.id)
            .bind(&m.conversation_id)
            .bind(&m.direction)
            .bind(&m.channel)
            .bind(&m.provider)
            .bind(&m.account_id)
            .bind(&m.provider_message_id)
            .bind(&m.kind)
            .bind(&m.sender)
            .bind(&m.recipient)
            .bind(&m.campaign_id)
            .bind(Json(&m.body))
            .bind(&m.status)
            .bind(m.sent_at)
            .bind(m.created_at)
            .bind(m.updated_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// The tenant's message with this provider identity.
    pub async fn message_by_provider_id(
        &mut self,
        channel: &str,
        account_id: &str,
        provider_message_id: &str,
    ) -> Result<Option<StoredInboundMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND channel = $2 \
             AND account_id = $3 AND provider_message_id = $4"
        );
        let row: Option<MessageFlat> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(channel)
            .bind(account_id)
            .bind(provider_message_id)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(message))
    }

    /// Records a status in a message's history; `false` if the message had
    /// reached it already.
    pub async fn insert_status(&mut self, s: &NewStatus<'_>) -> Result<bool> {
        let sql = "INSERT INTO message_statuses (tenant_id, message_id, status, occurred_at, inferred, error, \
                   detail, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                   ON CONFLICT (tenant_id, message_id, status) DO NOTHING";
        let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(s.message_id)
            .bind(s.status)
            .bind(s.occurred_at)
            .bind(s.inferred)
            .bind(s.error.map(Json))
            .bind(Json(s.detail))
            .bind(s.recorded_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Sets a message's current status.
    pub async fn set_message_status(
        &mut self,
        id: &str,
        status: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql =
            "UPDATE messages SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The statuses a message reached: (status, occurred_at, inferred, error).
    pub async fn message_statuses(&mut self, message_id: &str) -> Result<Vec<HistoryRow>> {
        let sql = "SELECT status, occurred_at, inferred, error FROM message_statuses \
                   WHERE tenant_id = $1 AND message_id = $2 ORDER BY occurred_at, status";
        let rows: Vec<StatusRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.tenant.as_str())
            .bind(message_id)
            .fetch_all(&mut **c)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(s, at, inferred, e)| (s, at, inferred, e.map(|j| j.0)))
            .collect())
    }

    /// Conversations after the id `after`, by id (creation order).
    pub async fn list_conversations(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredConversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE tenant_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        );
        let rows: Vec<ConversationRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(conversation).collect())
    }

    pub async fn conversation(&mut self, id: &str) -> Result<StoredConversation> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<ConversationRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **c)
            .await?);
        row.map(conversation).ok_or(StoreError::NotFound)
    }

    /// A conversation's messages after the id `after`, by id.
    pub async fn list_messages(
        &mut self,
        conversation_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredInboundMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
             AND id > $3 ORDER BY id LIMIT $4"
        );
        let rows: Vec<MessageFlat> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(conversation_id)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(message).collect())
    }

    /// How many messages the tenant has, by (channel, status).
    pub async fn message_counts(&mut self) -> Result<Vec<(String, Option<String>, i64)>> {
        let sql = "SELECT channel, status, COUNT(*) FROM messages WHERE tenant_id = $1 \
                   GROUP BY channel, status ORDER BY channel, status";
        let rows: Vec<(String, Option<String>, i64)> =
            on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
                .bind(self.tenant.as_str())
                .fetch_all(&mut **c)
                .await?);
        Ok(rows)
    }
}

impl OperatorTx {
    /// Which tenant registered a WhatsApp Business Account (`waba`) or
    /// phone number id (`phone`): an explicit cross-tenant lookup.
    pub async fn find_whatsapp_route(&mut self, kind: &str, id: &str) -> Result<Option<TenantId>> {
        let sql = "SELECT tenant_id FROM whatsapp_routes WHERE kind = $1 AND external_id = $2";
        let row: Option<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(kind)
            .bind(id)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(|(t,)| TenantId::from_trusted(t)))
    }
}

impl TenantTx {
    /// Claims `(provider, provider_message_id)` for this tenant's outbound
    /// message `message_id`: `false` if any tenant registered it before
    /// (the unique index spans tenants).
    pub async fn insert_message_route(
        &mut self,
        provider: &str,
        provider_message_id: &str,
        message_id: &str,
    ) -> Result<bool> {
        let sql = "INSERT INTO message_routes (tenant_id, provider, provider_message_id, message_id) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
        let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(provider)
            .bind(provider_message_id)
            .bind(message_id)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// The tenant's outbound message registered under
    /// `(provider, provider_message_id)`.
    pub async fn routed_message(
        &mut self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<StoredInboundMessage>> {
        let sql = "SELECT message_id FROM message_routes WHERE tenant_id = $1 AND provider = $2 \
                   AND provider_message_id = $3";
        let row: Option<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.tenant.as_str())
            .bind(provider)
            .bind(provider_message_id)
            .fetch_optional(&mut **c)
            .await?);
        let Some((id,)) = row else {
            return Ok(None);
        };
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2");
        let row: Option<MessageFlat> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(&id)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(message))
    }
}

impl OperatorTx {
    /// Which tenant registered `(provider, provider_message_id)`: an
    /// explicit cross-tenant lookup.
    pub async fn find_message_route(
        &mut self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<TenantId>> {
        let sql =
            "SELECT tenant_id FROM message_routes WHERE provider = $1 AND provider_message_id = $2";
        let row: Option<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(provider)
            .bind(provider_message_id)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(|(t,)| TenantId::from_trusted(t)))
    }
}
