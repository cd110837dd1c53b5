//! A tenant's lifecycle history (tenant-scoped table `tenant_events`).

use crate::Result;
use crate::error::StoreError;
use crate::scope::{TenantTx, on_conn};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tenantry_core::tenant::{Actor, TenantEvent, TenantEventKind};

#[derive(Debug)]
pub struct EventPage {
    pub events: Vec<TenantEvent>,
    pub next_after: Option<String>,
}

type EventRow = (
    String,
    String,
    String,
    Json<serde_json::Value>,
    DateTime<Utc>,
);

impl TenantTx {
    /// Appends an event. `id` must sort after the tenant's earlier events
    /// (ids made by `tenantry_core::ids::sortable_id` do).
    pub async fn record_event(
        &mut self,
        id: String,
        kind: TenantEventKind,
        actor: &Actor,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<TenantEvent> {
        let sql = "INSERT INTO tenant_events (tenant_id, id, kind, actor, data, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(&id)
            .bind(kind.as_str())
            .bind(actor.as_str())
            .bind(Json(&data))
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected());
        // The outbox: the event is delivered to webhook endpoints if (and
        // only if) this transaction commits.
        let body = tenantry_core::tenant::webhook_body(kind, Some(&self.tenant), &data, now);
        self.queue_webhook(&id, kind.as_str(), &body, now.timestamp_millis())
            .await?;
        Ok(TenantEvent {
            id,
            tenant_id: self.tenant.clone(),
            kind,
            actor: actor.clone(),
            data,
            created_at: now,
        })
    }

    /// Events oldest first, after the event id `after`, at most `limit`.
    pub async fn list_events(&mut self, after: Option<&str>, limit: u32) -> Result<EventPage> {
        let sql = "SELECT id, kind, actor, data, created_at FROM tenant_events \
                   WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3";
        let rows: Vec<EventRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.tenant.as_str())
            .bind(after)
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut **c)
            .await?);
        let mut events = rows
            .into_iter()
            .map(|(id, kind, actor, data, created_at)| {
                let kind = kind
                    .parse::<TenantEventKind>()
                    .map_err(|()| StoreError::Corrupt(format!("event {id} has kind {kind:?}")))?;
                Ok(TenantEvent {
                    id,
                    tenant_id: self.tenant.clone(),
                    kind,
                    actor: Actor::from_trusted(actor),
                    data: data.0,
                    created_at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next_after = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| e.id.clone())
        } else {
            None
        };
        Ok(EventPage { events, next_after })
    }
}
