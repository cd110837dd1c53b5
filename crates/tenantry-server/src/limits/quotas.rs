//! Quota checks: how much of a metered quota is used this period, and an
//! atomic consume that can never push usage past a hard limit.

use super::config::{EffectiveConfig, QuotaMode};
use super::usage::{GRANULARITIES, alert_thresholds, next_period, period_start};
use crate::app::AppState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantry_store::{StoreError, TenantTx};

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct QuotaDecision {
    pub allowed: bool,
    pub meter: String,
    /// Null: unlimited.
    pub limit: Option<i64>,
    pub used: i64,
    /// Null: unlimited.
    pub remaining: Option<i64>,
    /// `hard` or `soft` (soft allows `grace_percent` over the limit).
    pub mode: Option<QuotaMode>,
    pub resets_at: DateTime<Utc>,
}

/// Checks (and with `consume`, takes) `quantity` of `meter` for the current
/// month. The consume is one conditional statement: concurrent consumers
/// on any number of server processes never push usage past the ceiling.
pub async fn check(
    state: &AppState,
    tx: &mut TenantTx,
    config: &EffectiveConfig,
    meter: &str,
    quantity: i64,
    consume: bool,
    now: DateTime<Utc>,
) -> Result<QuotaDecision, StoreError> {
    let period = period_start("month", now);
    let quota = config.quota(meter);
    let ceiling = quota.and_then(|q| q.ceiling());
    let (allowed, used) = match (consume, ceiling) {
        (false, None) => (true, tx.counter(meter, "month", period).await?),
        (false, Some(max)) => {
            let used = tx.counter(meter, "month", period).await?;
            (used.saturating_add(quantity) <= max, used)
        }
        (true, None) => (
            true,
            tx.add_to_counter(meter, "month", period, quantity).await?,
        ),
        (true, Some(max)) => match tx
            .add_to_counter_within(meter, "month", period, quantity, max)
            .await?
        {
            Some(used) => (true, used),
            None => (false, tx.counter(meter, "month", period).await?),
        },
    };
    if consume && allowed {
        for granularity in GRANULARITIES.iter().filter(|g| **g != "month") {
            tx.add_to_counter(meter, granularity, period_start(granularity, now), quantity)
                .await?;
        }
        alert_thresholds(state, tx, config, meter, period, used, now).await?;
    }
    let limit = quota.and_then(|q| q.limit);
    Ok(QuotaDecision {
        allowed,
        meter: meter.to_owned(),
        limit,
        used,
        remaining: limit.map(|l| (l - used).max(0)),
        mode: quota.filter(|q| q.limit.is_some()).map(|q| q.mode),
        resets_at: next_period("month", now),
    })
}
