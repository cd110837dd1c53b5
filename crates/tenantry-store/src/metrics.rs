//! What `GET /metrics` reads from the database at scrape time: backlogs of
//! the background work, counted across tenants in one operator read (cheap
//! aggregate queries on indexed or small tables).

use crate::Result;
use crate::scope::{OperatorTx, on_conn};

/// Background work waiting, across every tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackgroundCounts {
    /// Data keys (and token-signing seeds) not yet wrapped by the active KEK.
    pub rewrap_backlog: i64,
    /// Events committed but not yet fanned out to endpoints.
    pub outbox_depth: i64,
    /// Oldest queued event (ms since the epoch).
    pub outbox_oldest_ms: Option<i64>,
    /// Webhook messages still to be delivered (first attempt or retry).
    pub pending_messages: i64,
    /// Oldest pending message (ms since the epoch).
    pub pending_oldest_ms: Option<i64>,
    /// Provisioning workflows by status.
    pub workflows: Vec<(String, i64)>,
    /// Audit entries not yet covered by a signed checkpoint, all chains.
    pub audit_uncheckpointed: i64,
}

impl OperatorTx {
    /// Counts the background work waiting (see [`BackgroundCounts`]).
    pub async fn background_counts(&mut self, active_kek: &str) -> Result<BackgroundCounts> {
        let rewrap_sql = "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT kek_id FROM tenant_data_keys \
                          UNION ALL SELECT kek_id FROM signing_keys WHERE kek_id IS NOT NULL) AS wrapped \
                          WHERE kek_id <> $1";
        let (rewrap_backlog,): (i64,) = on_conn!(&mut self.conn, |c| sqlx::query_as(rewrap_sql)
            .bind(active_kek)
            .fetch_one(&mut **c)
            .await?);
        let (outbox_depth, outbox_oldest_ms): (i64, Option<i64>) =
            on_conn!(&mut self.conn, |c| sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT), MIN(created_ms) FROM webhook_outbox"
            )
            .fetch_one(&mut **c)
            .await?);
        let (pending_messages, pending_oldest_ms): (i64, Option<i64>) =
            on_conn!(&mut self.conn, |c| sqlx::query_as(
                "SELECT CAST(COUNT(*) AS BIGINT), MIN(created_ms) FROM webhook_messages \
                 WHERE status = 'pending'"
            )
            .fetch_one(&mut **c)
            .await?);
        let workflows: Vec<(String, i64)> = on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT status, CAST(COUNT(*) AS BIGINT) FROM provisioning_workflows \
             GROUP BY status ORDER BY status"
        )
        .fetch_all(&mut **c)
        .await?);
        let (audit_uncheckpointed,): (i64,) = on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(h.size - COALESCE(cp.size, 0)), 0) AS BIGINT) \
             FROM audit_heads h LEFT JOIN (SELECT tenant_id, MAX(size) AS size \
             FROM audit_checkpoints GROUP BY tenant_id) cp ON cp.tenant_id = h.tenant_id"
        )
        .fetch_one(&mut **c)
        .await?);
        Ok(BackgroundCounts {
            rewrap_backlog,
            outbox_depth,
            outbox_oldest_ms,
            pending_messages,
            pending_oldest_ms,
            workflows,
            audit_uncheckpointed,
        })
    }
}
