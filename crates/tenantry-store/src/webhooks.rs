//! Outbound webhooks: endpoints, the outbox, messages and their attempts
//! (tables `webhook_*`, `operator_events`).
//!
//! An endpoint, message or attempt belongs to an owner: a tenant, or the
//! operator (stored under tenant id `''`). [`TenantTx::webhooks`] reaches
//! its own tenant's rows only; [`OperatorTx::webhooks`] the operator's. The
//! delivery workers' cross-owner queries are on [`OperatorTx`] (in
//! PostgreSQL, policy `operator_all` of migration 0012 lets the operator
//! path claim and update every owner's rows).

use crate::Result;
use crate::scope::{Conn, OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::types::Json;

/// The owner id of the operator's own rows.
pub const OPERATOR_OWNER: &str = "";

#[derive(Debug, Clone)]
pub struct StoredEndpoint {
    /// The owner: a tenant id, or `""` for an operator endpoint.
    pub tenant_id: String,
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub rate_limit_per_second: Option<i64>,
    pub ordering: String,
    pub metadata: serde_json::Value,
    /// Sealed: `{"kek": …, "v": base64}`.
    pub secret: serde_json::Value,
    pub previous_secret: Option<serde_json::Value>,
    pub previous_until_ms: Option<i64>,
    pub signing_seed: Option<serde_json::Value>,
    pub signing_public_key: Option<String>,
    pub disabled_reason: Option<String>,
    pub failing_since_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "tenant_id, id, url, description, event_types, enabled, \
    rate_limit_per_second, ordering, metadata, secret, previous_secret, previous_until_ms, \
    signing_seed, signing_public_key, disabled_reason, failing_since_ms, created_at, updated_at";

macro_rules! endpoint_from_row {
    ($row:expr) => {{
        let row = $row;
        StoredEndpoint {
            tenant_id: row.try_get("tenant_id")?,
            id: row.try_get("id")?,
            url: row.try_get("url")?,
            description: row.try_get("description")?,
            event_types: row.try_get::<Json<Vec<String>>, _>("event_types")?.0,
            enabled: row.try_get("enabled")?,
            rate_limit_per_second: row.try_get("rate_limit_per_second")?,
            ordering: row.try_get("ordering")?,
            metadata: row.try_get::<Json<serde_json::Value>, _>("metadata")?.0,
            secret: row.try_get::<Json<serde_json::Value>, _>("secret")?.0,
            previous_secret: row
                .try_get::<Option<Json<serde_json::Value>>, _>("previous_secret")?
                .map(|j| j.0),
            previous_until_ms: row.try_get("previous_until_ms")?,
            signing_seed: row
                .try_get::<Option<Json<serde_json::Value>>, _>("signing_seed")?
                .map(|j| j.0),
            signing_public_key: row.try_get("signing_public_key")?,
            disabled_reason: row.try_get("disabled_reason")?,
            failing_since_ms: row.try_get("failing_since_ms")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub tenant_id: String,
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_tenant_id: String,
    pub kind: String,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub delivered_ms: Option<i64>,
}

const MESSAGE_COLUMNS: &str = "tenant_id, id, endpoint_id, event_id, event_tenant_id, kind, body, \
    status, attempts, next_attempt_ms, last_status, last_error, created_ms, delivered_ms";

macro_rules! message_from_row {
    ($row:expr) => {{
        let row = $row;
        StoredMessage {
            tenant_id: row.try_get("tenant_id")?,
            id: row.try_get("id")?,
            endpoint_id: row.try_get("endpoint_id")?,
            event_id: row.try_get("event_id")?,
            event_tenant_id: row.try_get("event_tenant_id")?,
            kind: row.try_get("kind")?,
            body: row.try_get("body")?,
            status: row.try_get("status")?,
            attempts: row.try_get("attempts")?,
            next_attempt_ms: row.try_get("next_attempt_ms")?,
            last_status: row.try_get("last_status")?,
            last_error: row.try_get("last_error")?,
            created_ms: row.try_get("created_ms")?,
            delivered_ms: row.try_get("delivered_ms")?,
        }
    }};
}

#[derive(Debug, Clone)]
pub struct StoredAttempt {
    pub attempt: i64,
    pub started_ms: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response_body: String,
    pub error: Option<String>,
}

/// An event waiting to be fanned out.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub tenant_id: String,
    pub event_id: String,
    pub kind: String,
    pub body: String,
    pub created_ms: i64,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: i64,
    pub started_ms: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response_body: String,
    pub error: Option<String>,
    /// `delivered`, `failed` (given up) or `pending` (retry at `next_attempt_ms`).
    pub status: &'static str,
    pub next_attempt_ms: i64,
}

/// Filters of a message list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// One owner's webhook rows, in the transaction they were reached from.
pub struct Webhooks<'a> {
    conn: &'a mut Conn,
    owner: &'a str,
}

impl TenantTx {
    pub fn webhooks(&mut self) -> Webhooks<'_> {
        Webhooks {
            conn: &mut self.conn,
            owner: self.tenant.as_str(),
        }
    }

    /// Queues an event for delivery (in the change's transaction).
    pub async fn queue_webhook(
        &mut self,
        event_id: &str,
        kind: &str,
        body: &str,
        created_ms: i64,
    ) -> Result<()> {
        let owner = self.tenant.as_str().to_owned();
        queue(&mut self.conn, &owner, event_id, kind, body, created_ms).await
    }
}

async fn queue(
    conn: &mut Conn,
    owner: &str,
    event_id: &str,
    kind: &str,
    body: &str,
    created_ms: i64,
) -> Result<()> {
    let sql = "INSERT INTO webhook_outbox (tenant_id, event_id, kind, body, created_ms) \
               VALUES ($1, $2, $3, $4, $5)";
    on_conn!(conn, |c| sqlx::query(sql)
        .bind(owner)
        .bind(event_id)
        .bind(kind)
        .bind(body)
        .bind(created_ms)
        .execute(&mut **c)
        .await?
        .rows_affected());
    Ok(())
}

impl OperatorTx {
    /// The operator's own endpoints and messages.
    pub fn webhooks(&mut self) -> Webhooks<'_> {
        Webhooks {
            conn: &mut self.conn,
            owner: OPERATOR_OWNER,
        }
    }

    /// Records an event with no tenant in the operator's event stream and
    /// queues it for delivery to operator endpoints.
    pub async fn record_operator_event(
        &mut self,
        id: &str,
        kind: &str,
        actor: &str,
        data: &serde_json::Value,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO operator_events (id, kind, actor, data, created_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(id)
            .bind(kind)
            .bind(actor)
            .bind(Json(data))
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected());
        queue(
            &mut self.conn,
            OPERATOR_OWNER,
            id,
            kind,
            body,
            now.timestamp_millis(),
        )
        .await
    }

    /// Whether there are queued events, and messages due at `now_ms` (a
    /// read, so an idle worker never asks for SQLite's write lock).
    pub async fn webhook_work(&mut self, now_ms: i64) -> Result<(bool, bool)> {
        let sql = "SELECT EXISTS (SELECT 1 FROM webhook_outbox), \
                   EXISTS (SELECT 1 FROM webhook_messages WHERE status = 'pending' \
                   AND next_attempt_ms <= $1 AND (lease_until_ms IS NULL OR lease_until_ms <= $1))";
        let (queued, due): (bool, bool) = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(now_ms)
            .fetch_one(&mut **c)
            .await?);
        Ok((queued, due))
    }

    /// Takes up to `limit` queued events, oldest first, locked until this
    /// transaction ends (other nodes skip them).
    pub async fn claim_outbox(&mut self, limit: i64) -> Result<Vec<OutboxRow>> {
        let base = "SELECT tenant_id, event_id, kind, body, created_ms FROM webhook_outbox \
                    ORDER BY created_ms, event_id LIMIT $1";
        let rows: Vec<(String, String, String, String, i64)> = match &mut self.conn {
            Conn::Sqlite(c) => sqlx::query_as(base).bind(limit).fetch_all(&mut **c).await?,
            Conn::Postgres(c) => {
                sqlx::query_as(&format!("{base} FOR UPDATE SKIP LOCKED"))
                    .bind(limit)
                    .fetch_all(&mut **c)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(tenant_id, event_id, kind, body, created_ms)| OutboxRow {
                tenant_id,
                event_id,
                kind,
                body,
                created_ms,
            })
            .collect())
    }

    pub async fn remove_outbox(&mut self, tenant_id: &str, event_id: &str) -> Result<()> {
        let sql = "DELETE FROM webhook_outbox WHERE tenant_id = $1 AND event_id = $2";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(tenant_id)
            .bind(event_id)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The enabled endpoints that receive events of `event_tenant`: its own
    /// and the operator's (every operator event goes to operator endpoints
    /// only).
    pub async fn endpoints_receiving(&mut self, event_tenant: &str) -> Result<Vec<StoredEndpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE enabled AND tenant_id IN ($1, '') ORDER BY tenant_id, id"
        );
        Ok(on_conn!(&mut self.conn, |c| {
            let rows = sqlx::query(&sql)
                .bind(event_tenant)
                .fetch_all(&mut **c)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(endpoint_from_row!(row));
            }
            out
        }))
    }

    /// Makes the message of one event for one endpoint (once: a second
    /// fan-out of the same event is a no-op).
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_message(
        &mut self,
        owner: &str,
        id: &str,
        endpoint_id: &str,
        event: &OutboxRow,
        now_ms: i64,
    ) -> Result<()> {
        let sql = "INSERT INTO webhook_messages (tenant_id, id, endpoint_id, event_id, event_tenant_id, \
                   kind, body, status, attempts, next_attempt_ms, created_ms) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9) \
                   ON CONFLICT (tenant_id, endpoint_id, event_id) DO NOTHING";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(owner)
            .bind(id)
            .bind(endpoint_id)
            .bind(&event.event_id)
            .bind(&event.tenant_id)
            .bind(&event.kind)
            .bind(&event.body)
            .bind(now_ms)
            .bind(event.created_ms)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Claims up to `limit` messages that are due, leasing them until
    /// `lease_until_ms`: another worker (on this or another node) takes a
    /// message only once its lease has run out. A `fifo` endpoint's message
    /// is due only when no earlier message of that endpoint is pending.
    pub async fn claim_due_messages(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<StoredMessage>> {
        let base = "SELECT m.tenant_id, m.id FROM webhook_messages m \
               JOIN webhook_endpoints e ON e.tenant_id = m.tenant_id AND e.id = m.endpoint_id \
              WHERE m.status = 'pending' AND m.next_attempt_ms <= $1 \
                AND (m.lease_until_ms IS NULL OR m.lease_until_ms <= $1) AND e.enabled \
                AND (e.ordering = 'none' OR NOT EXISTS (SELECT 1 FROM webhook_messages o \
                     WHERE o.tenant_id = m.tenant_id AND o.endpoint_id = m.endpoint_id \
                       AND o.status = 'pending' AND o.event_id < m.event_id)) \
              ORDER BY m.next_attempt_ms, m.event_id LIMIT $2";
        let ids: Vec<(String, String)> = match &mut self.conn {
            Conn::Sqlite(c) => {
                sqlx::query_as(base)
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(&mut **c)
                    .await?
            }
            Conn::Postgres(c) => {
                sqlx::query_as(&format!("{base} FOR UPDATE OF m SKIP LOCKED"))
                    .bind(now_ms)
                    .bind(limit)
                    .fetch_all(&mut **c)
                    .await?
            }
        };
        let mut claimed = Vec::with_capacity(ids.len());
        let sql = format!(
            "UPDATE webhook_messages SET lease_until_ms = $3 WHERE tenant_id = $1 AND id = $2 \
             RETURNING {MESSAGE_COLUMNS}"
        );
        for (owner, id) in ids {
            let message = on_conn!(&mut self.conn, |c| {
                let row = sqlx::query(&sql)
                    .bind(&owner)
                    .bind(&id)
                    .bind(lease_until_ms)
                    .fetch_one(&mut **c)
                    .await?;
                message_from_row!(&row)
            });
            claimed.push(message);
        }
        Ok(claimed)
    }

    /// Gives a claimed message back without an attempt (its endpoint's rate
    /// limit): due again at `next_attempt_ms`.
    pub async fn release_message(
        &mut self,
        owner: &str,
        id: &str,
        next_attempt_ms: i64,
    ) -> Result<()> {
        let sql = "UPDATE webhook_messages SET lease_until_ms = NULL, next_attempt_ms = $3 \
                   WHERE tenant_id = $1 AND id = $2 AND status = 'pending'";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(owner)
            .bind(id)
            .bind(next_attempt_ms)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Records an attempt and what it decided for the message.
    pub async fn record_attempt(
        &mut self,
        owner: &str,
        message_id: &str,
        outcome: &AttemptOutcome,
    ) -> Result<()> {
        let sql = "INSERT INTO webhook_attempts (tenant_id, message_id, attempt, started_ms, \
                   status_code, latency_ms, response_body, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                   ON CONFLICT (tenant_id, message_id, attempt) DO NOTHING";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(owner)
            .bind(message_id)
            .bind(outcome.attempt)
            .bind(outcome.started_ms)
            .bind(outcome.status_code)
            .bind(outcome.latency_ms)
            .bind(&outcome.response_body)
            .bind(&outcome.error)
            .execute(&mut **c)
            .await?
            .rows_affected());
        let delivered_ms =
            (outcome.status == "delivered").then_some(outcome.started_ms + outcome.latency_ms);
        let sql = "UPDATE webhook_messages SET status = $3, attempts = $4, next_attempt_ms = $5, \
                   lease_until_ms = NULL, last_status = $6, last_error = $7, delivered_ms = $8 \
                   WHERE tenant_id = $1 AND id = $2";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(owner)
            .bind(message_id)
            .bind(outcome.status)
            .bind(outcome.attempt)
            .bind(outcome.next_attempt_ms)
            .bind(outcome.status_code)
            .bind(&outcome.error)
            .bind(delivered_ms)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Notes a success (`failing_since` cleared) or a failure of an
    /// endpoint; returns since when it has been failing.
    pub async fn note_endpoint_health(
        &mut self,
        owner: &str,
        id: &str,
        ok: bool,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let sql = if ok {
            "UPDATE webhook_endpoints SET failing_since_ms = NULL WHERE tenant_id = $1 AND id = $2 \
             RETURNING failing_since_ms"
        } else {
            "UPDATE webhook_endpoints SET failing_since_ms = COALESCE(failing_since_ms, $3) \
             WHERE tenant_id = $1 AND id = $2 RETURNING failing_since_ms"
        };
        let row: Option<(Option<i64>,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(owner)
            .bind(id)
            .bind(now_ms)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.and_then(|(since,)| since))
    }

    /// Disables an endpoint (410 Gone, or failing for too long); true if it
    /// was enabled.
    pub async fn disable_endpoint(
        &mut self,
        owner: &str,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $3, updated_at = $4 \
                   WHERE tenant_id = $1 AND id = $2 AND enabled";
        let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(owner)
            .bind(id)
            .bind(reason)
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Endpoints (of every owner) with a secret or signing seed sealed by a
    /// KEK other than `kek_id`, at most `limit`: the rewrap backlog.
    pub async fn endpoints_sealed_by_other_keks(
        &mut self,
        kek_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredEndpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE secret->>'kek' <> $1 OR COALESCE(previous_secret->>'kek', $1) <> $1 \
             OR COALESCE(signing_seed->>'kek', $1) <> $1 \
             ORDER BY tenant_id, id LIMIT $2"
        );
        Ok(on_conn!(&mut self.conn, |c| {
            let mut endpoints = Vec::new();
            for row in sqlx::query(&sql)
                .bind(kek_id)
                .bind(limit)
                .fetch_all(&mut **c)
                .await?
            {
                endpoints.push(endpoint_from_row!(&row));
            }
            endpoints
        }))
    }

    /// Replaces `before`'s sealed secrets with the same secrets sealed
    /// anew, unless they changed since `before` was read (a rotation won:
    /// its secret is sealed by the active KEK already). True if written.
    pub async fn reseal_endpoint(
        &mut self,
        before: &StoredEndpoint,
        secret: &serde_json::Value,
        previous_secret: Option<&serde_json::Value>,
        signing_seed: Option<&serde_json::Value>,
    ) -> Result<bool> {
        let ciphertext = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.get("v"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let sql = "UPDATE webhook_endpoints SET secret = $3, previous_secret = $4, signing_seed = $5 \
                   WHERE tenant_id = $1 AND id = $2 AND secret->>'v' = $6 \
                   AND COALESCE(previous_secret->>'v', '') = $7 AND COALESCE(signing_seed->>'v', '') = $8";
        let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(&before.tenant_id)
            .bind(&before.id)
            .bind(Json(secret))
            .bind(previous_secret.map(Json))
            .bind(signing_seed.map(Json))
            .bind(ciphertext(Some(&before.secret)))
            .bind(ciphertext(before.previous_secret.as_ref()))
            .bind(ciphertext(before.signing_seed.as_ref()))
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// The endpoint a message belongs to, whoever owns it.
    pub async fn endpoint_of(&mut self, owner: &str, id: &str) -> Result<Option<StoredEndpoint>> {
        Webhooks {
            conn: &mut self.conn,
            owner,
        }
        .endpoint(id)
        .await
    }
}

/// Binds an endpoint's fields from `url` to `failing_since_ms`, in the order of
/// `ENDPOINT_COLUMNS` after `tenant_id, id`, shared by insert and update.
macro_rules! bind_endpoint_fields {
    ($query:expr, $e:expr) => {
        $query
            .bind(&$e.url)
            .bind(&$e.description)
            .bind(Json(&$e.event_types))
            .bind($e.enabled)
            .bind($e.rate_limit_per_second)
            .bind(&$e.ordering)
            .bind(Json(&$e.metadata))
            .bind(Json(&$e.secret))
            .bind($e.previous_secret.as_ref().map(Json))
            .bind($e.previous_until_ms)
            .bind($e.signing_seed.as_ref().map(Json))
            .bind(&$e.signing_public_key)
            .bind(&$e.disabled_reason)
            .bind($e.failing_since_ms)
    };
}

impl Webhooks<'_> {
    pub async fn insert_endpoint(&mut self, e: &StoredEndpoint) -> Result<()> {
        let sql = format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        );
        on_conn!(&mut self.conn, |c| bind_endpoint_fields!(
            sqlx::query(&sql).bind(self.owner).bind(&e.id),
            e
        )
        .bind(e.created_at)
        .bind(e.updated_at)
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Writes every mutable field of `e` back.
    pub async fn update_endpoint(&mut self, e: &StoredEndpoint) -> Result<bool> {
        let sql = "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, \
                   enabled = $6, rate_limit_per_second = $7, ordering = $8, metadata = $9, secret = $10, \
                   previous_secret = $11, previous_until_ms = $12, signing_seed = $13, \
                   signing_public_key = $14, disabled_reason = $15, failing_since_ms = $16, updated_at = $17 \
                   WHERE tenant_id = $1 AND id = $2";
        let n = on_conn!(&mut self.conn, |c| bind_endpoint_fields!(
            sqlx::query(sql).bind(self.owner).bind(&e.id),
            e
        )
        .bind(e.updated_at)
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    pub async fn endpoint(&mut self, id: &str) -> Result<Option<StoredEndpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
        );
        Ok(on_conn!(&mut self.conn, |c| {
            match sqlx::query(&sql)
                .bind(self.owner)
                .bind(id)
                .fetch_optional(&mut **c)
                .await?
            {
                Some(row) => Some(endpoint_from_row!(&row)),
                None => None,
            }
        }))
    }

    /// Endpoints by id after `after`, at most `limit` (+1 to tell if more).
    pub async fn endpoints(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredEndpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        Ok(on_conn!(&mut self.conn, |c| {
            let rows = sqlx::query(&sql)
                .bind(self.owner)
                .bind(after)
                .bind(i64::from(limit) + 1)
                .fetch_all(&mut **c)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(endpoint_from_row!(row));
            }
            out
        }))
    }

    /// Deletes an endpoint and its messages; false if there was none.
    pub async fn delete_endpoint(&mut self, id: &str) -> Result<bool> {
        for sql in [
            "DELETE FROM webhook_attempts WHERE tenant_id = $1 AND message_id IN \
             (SELECT id FROM webhook_messages WHERE tenant_id = $1 AND endpoint_id = $2)",
            "DELETE FROM webhook_messages WHERE tenant_id = $1 AND endpoint_id = $2",
        ] {
            on_conn!(&mut self.conn, |c| sqlx::query(sql)
                .bind(self.owner)
                .bind(id)
                .execute(&mut **c)
                .await?
                .rows_affected());
        }
        let n = on_conn!(&mut self.conn, |c| sqlx::query(
            "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
        )
        .bind(self.owner)
        .bind(id)
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// An endpoint's messages, newest first, before the message id `before`.
    pub async fn messages(
        &mut self,
        endpoint_id: &str,
        filter: &MessageFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM webhook_messages \
             WHERE tenant_id = $1 AND endpoint_id = $2 AND ($3 IS NULL OR id < $3) \
               AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR kind = $5) \
               AND ($6 IS NULL OR created_ms >= $6) AND ($7 IS NULL OR created_ms < $7) \
             ORDER BY id DESC LIMIT $8"
        );
        Ok(on_conn!(&mut self.conn, |c| {
            let rows = sqlx::query(&sql)
                .bind(self.owner)
                .bind(endpoint_id)
                .bind(before)
                .bind(&filter.status)
                .bind(&filter.kind)
                .bind(filter.since_ms)
                .bind(filter.until_ms)
                .bind(i64::from(limit) + 1)
                .fetch_all(&mut **c)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(message_from_row!(row));
            }
            out
        }))
    }

    pub async fn message(&mut self, endpoint_id: &str, id: &str) -> Result<Option<StoredMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM webhook_messages \
             WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3"
        );
        Ok(on_conn!(&mut self.conn, |c| {
            match sqlx::query(&sql)
                .bind(self.owner)
                .bind(endpoint_id)
                .bind(id)
                .fetch_optional(&mut **c)
                .await?
            {
                Some(row) => Some(message_from_row!(&row)),
                None => None,
            }
        }))
    }

    pub async fn attempts(&mut self, message_id: &str) -> Result<Vec<StoredAttempt>> {
        let sql = "SELECT attempt, started_ms, status_code, latency_ms, response_body, error \
                   FROM webhook_attempts WHERE tenant_id = $1 AND message_id = $2 ORDER BY attempt";
        type AttemptRow = (i64, i64, Option<i64>, i64, String, Option<String>);
        let rows: Vec<AttemptRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.owner)
            .bind(message_id)
            .fetch_all(&mut **c)
            .await?);
        Ok(rows
            .into_iter()
            .map(
                |(attempt, started_ms, status_code, latency_ms, response_body, error)| {
                    StoredAttempt {
                        attempt,
                        started_ms,
                        status_code,
                        latency_ms,
                        response_body,
                        error,
                    }
                },
            )
            .collect())
    }

    /// Queues messages of an endpoint again (a replay): those with `id`, or
    /// those created in [`since_ms`, `until_ms`). Returns how many.
    pub async fn replay(
        &mut self,
        endpoint_id: &str,
        id: Option<&str>,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<u64> {
        let sql = "UPDATE webhook_messages SET status = 'pending', next_attempt_ms = $6, \
                   lease_until_ms = NULL \
                   WHERE tenant_id = $1 AND endpoint_id = $2 AND ($3 IS NULL OR id = $3) \
                     AND ($4 IS NULL OR created_ms >= $4) AND ($5 IS NULL OR created_ms < $5) \
                     AND status <> 'pending'";
        Ok(on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.owner)
            .bind(endpoint_id)
            .bind(id)
            .bind(since_ms)
            .bind(until_ms)
            .bind(now_ms)
            .execute(&mut **c)
            .await?
            .rows_affected()))
    }
}
