//! Quota leases (issue 16): the blocks of a tenant's monthly quota each
//! server process holds. The block itself is taken with
//! [`TenantTx::add_to_counter_within`] on the month's counter; these rows
//! say who holds what, so that a return happens once and a crashed holder's
//! possible loss is visible (`granted - consumed - returned`).

use crate::Result;
use crate::scope::{TenantTx, on_conn};
use chrono::{DateTime, Utc};

/// What one holder's lease of one meter and period changes by: units newly
/// granted, consumed since the last report, and returned unused.
#[derive(Debug, Clone, Copy)]
pub struct LeaseDelta<'a> {
    pub meter: &'a str,
    pub period_start: DateTime<Utc>,
    pub holder: &'a str,
    pub node_id: &'a str,
    pub granted: i64,
    pub consumed: i64,
    pub returned: i64,
}

/// A stored lease: meter, period, holder, node, granted, consumed, returned.
pub type QuotaLeaseRow = (String, DateTime<Utc>, String, String, i64, i64, i64);

impl TenantTx {
    /// Adds `delta` to its holder's lease row, creating it.
    pub async fn record_quota_lease(
        &mut self,
        delta: &LeaseDelta<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_conn!(&mut self.conn, |c| {
            sqlx::query(
                "INSERT INTO quota_leases (tenant_id, meter, period_start, holder, node_id, granted, consumed, returned, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (tenant_id, meter, period_start, holder) DO UPDATE SET \
                 granted = quota_leases.granted + excluded.granted, \
                 consumed = quota_leases.consumed + excluded.consumed, \
                 returned = quota_leases.returned + excluded.returned, \
                 updated_at = excluded.updated_at",
            )
            .bind(self.tenant.as_str())
            .bind(delta.meter)
            .bind(delta.period_start)
            .bind(delta.holder)
            .bind(delta.node_id)
            .bind(delta.granted)
            .bind(delta.consumed)
            .bind(delta.returned)
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Takes `quantity` off a counter (unused leased units given back),
    /// never below zero; returns the new value.
    pub async fn subtract_from_counter(
        &mut self,
        meter: &str,
        granularity: &str,
        period_start: DateTime<Utc>,
        quantity: i64,
    ) -> Result<i64> {
        let row: Option<(i64,)> = on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
                "UPDATE usage_counters SET value = CASE WHEN value > $5 THEN value - $5 ELSE 0 END \
                 WHERE tenant_id = $1 AND meter = $2 AND granularity = $3 AND period_start = $4 \
                 RETURNING value",
            )
            .bind(self.tenant.as_str())
            .bind(meter)
            .bind(granularity)
            .bind(period_start)
            .bind(quantity)
            .fetch_optional(&mut **c)
            .await?
        });
        Ok(row.map_or(0, |(v,)| v))
    }

    /// The tenant's lease rows, newest period first.
    pub async fn quota_leases(&mut self) -> Result<Vec<QuotaLeaseRow>> {
        Ok(on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT meter, period_start, holder, node_id, granted, consumed, returned FROM quota_leases \
             WHERE tenant_id = $1 ORDER BY period_start DESC, meter, holder"
        )
        .bind(self.tenant.as_str())
        .fetch_all(&mut **c)
        .await?
        }))
    }
}
