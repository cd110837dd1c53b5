//! Usage metering: idempotent events aggregated per hour, day and month
//! (UTC), for billing and quotas.
//!
//! Metering is not a change anyone made: it writes through untracked
//! transactions ([`TenantGrant::untracked_write`]) and records no audit
//! entry (it is the hot path).

use super::config::{ALERT_THRESHOLDS, EffectiveConfig};
use super::service::Aggregation;
use super::service::effective_config;
use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use crate::tenancy::or_tenant_not_found;
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
pub use tenantry_api::usage::Outcome;
use tenantry_core::tenant::{Actor, TenantEventKind, TenantStatus};
use tenantry_store::{CounterAdd, NewUsageEvent, StoreError, TenantTx};

pub const GRANULARITIES: [&str; 3] = ["hour", "day", "month"];
pub const MAX_BATCH: usize = 1000;
/// How far in the future an event's timestamp may be.
pub const MAX_FUTURE: Duration = Duration::minutes(5);

/// The start of the period containing `t`.
pub fn period_start(granularity: &str, t: DateTime<Utc>) -> DateTime<Utc> {
    let start = match granularity {
        "hour" => Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), t.hour(), 0, 0),
        "day" => Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0),
        _ => Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0),
    };
    start.single().unwrap_or(t)
}

/// The start of the period after the one containing `t`.
pub fn next_period(granularity: &str, t: DateTime<Utc>) -> DateTime<Utc> {
    let start = period_start(granularity, t);
    match granularity {
        "hour" => start + Duration::hours(1),
        "day" => start + Duration::days(1),
        _ => {
            let (y, m) = if start.month() == 12 {
                (start.year() + 1, 1)
            } else {
                (start.year(), start.month() + 1)
            };
            Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                .single()
                .unwrap_or(start + Duration::days(31))
        }
    }
}

/// One checked event, ready to record.
#[derive(Debug, Clone)]
pub struct CheckedEvent {
    pub id: String,
    pub meter: String,
    pub aggregation: Aggregation,
    pub quantity: i64,
    pub occurred_at: DateTime<Utc>,
    pub subject: Option<String>,
    pub properties: Value,
}

/// (meter, granularity, period start).
type PeriodKey<'a> = (&'a str, &'static str, DateTime<Utc>);

/// Records a batch of checked events of one tenant in its transaction, in
/// few statements: the events in multi-row inserts, then one counter update
/// per meter and period. Returns an outcome per event, in order: an id
/// accepted before (or earlier in the batch) is a `Duplicate`, not counted.
pub async fn record_batch(
    state: &AppState,
    tx: &mut TenantTx,
    config: &EffectiveConfig,
    events: &[CheckedEvent],
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>, StoreError> {
    use std::collections::{BTreeMap, HashSet};
    let rows: Vec<NewUsageEvent<'_>> = events
        .iter()
        .map(|e| NewUsageEvent {
            id: &e.id,
            meter: &e.meter,
            quantity: e.quantity,
            occurred_at: e.occurred_at,
            subject: e.subject.as_deref(),
            properties: &e.properties,
            received_at: now,
        })
        .collect();
    let mut new_ids = tx.insert_usage_events(&rows).await?;
    let mut outcomes = Vec::with_capacity(events.len());
    let mut accepted = Vec::new();
    for event in events {
        // The first occurrence of a new id is the accepted one.
        if new_ids.remove(&event.id) {
            outcomes.push(Outcome::Accepted);
            accepted.push(event);
        } else {
            outcomes.push(Outcome::Duplicate);
        }
    }
    // Aggregate per (meter, granularity, period) before touching counters.
    let mut sums: BTreeMap<PeriodKey<'_>, i64> = BTreeMap::new();
    let mut gauges: BTreeMap<PeriodKey<'_>, (DateTime<Utc>, i64)> = BTreeMap::new();
    let mut subjects: BTreeMap<PeriodKey<'_>, HashSet<&str>> = BTreeMap::new();
    for event in &accepted {
        for granularity in GRANULARITIES {
            let key = (
                event.meter.as_str(),
                granularity,
                period_start(granularity, event.occurred_at),
            );
            match event.aggregation {
                Aggregation::Sum => *sums.entry(key).or_insert(0) += event.quantity,
                Aggregation::Last => {
                    let slot = gauges
                        .entry(key)
                        .or_insert((event.occurred_at, event.quantity));
                    if event.occurred_at >= slot.0 {
                        *slot = (event.occurred_at, event.quantity);
                    }
                }
                Aggregation::Distinct => {
                    subjects
                        .entry(key)
                        .or_default()
                        .insert(event.subject.as_deref().unwrap_or(""));
                }
            }
        }
    }
    let mut month_values: BTreeMap<(&str, DateTime<Utc>), i64> = BTreeMap::new();
    let adds: Vec<CounterAdd<'_>> = sums
        .iter()
        .map(
            |(&(meter, granularity, period_start), &quantity)| CounterAdd {
                meter,
                granularity,
                period_start,
                quantity,
            },
        )
        .collect();
    if !adds.is_empty() {
        let values = tx.add_to_counters(&adds).await?;
        for (add, value) in adds.iter().zip(values) {
            if add.granularity == "month" {
                month_values.insert((add.meter, add.period_start), value);
            }
        }
    }
    for ((meter, granularity, start), (at, value)) in gauges {
        tx.set_gauge(meter, granularity, start, value, at).await?;
    }
    for ((meter, granularity, start), set) in subjects {
        let list: Vec<&str> = set.into_iter().collect();
        let new = tx.add_subjects(meter, granularity, start, &list).await?;
        if new > 0 {
            let value = tx.add_to_counter(meter, granularity, start, new).await?;
            if granularity == "month" {
                month_values.insert((meter, start), value);
            }
        }
    }
    for ((meter, start), used) in month_values {
        alert_thresholds(state, tx, config, meter, start, used, now).await?;
    }
    Ok(outcomes)
}

/// Records a `quota.threshold_reached` event the first time usage of a
/// metered quota crosses each threshold in a period.
pub async fn alert_thresholds(
    state: &AppState,
    tx: &mut TenantTx,
    config: &EffectiveConfig,
    meter: &str,
    period: DateTime<Utc>,
    used: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(limit) = config.quota(meter).and_then(|q| q.limit).filter(|l| *l > 0) else {
        return Ok(());
    };
    for threshold in ALERT_THRESHOLDS {
        if used.saturating_mul(100) >= limit.saturating_mul(i64::from(*threshold))
            && tx
                .record_quota_alert(meter, period, *threshold, now)
                .await?
        {
            // Crossing a threshold is a fact of metering, not a change
            // anyone made: it stays in the tenant's event history and out of
            // the audit log. HOOK (webhooks issue): this is where a
            // `quota.threshold_reached` outbound event belongs, written in
            // this same transaction so it is emitted once per period.
            let id = state
                .ids
                .sortable("evt", now.timestamp_millis().max(0) as u64);
            #[allow(clippy::disallowed_methods)] // metering writes no change: see above
            tx.record_event(
                id,
                TenantEventKind::QuotaThresholdReached,
                &Actor::system(),
                json!({ "meter": meter, "threshold_percent": threshold, "used": used, "limit": limit, "period_start": period }),
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// What became of one event handed to [`ingest`].
#[derive(Debug, Clone)]
pub enum Ingested {
    /// Recorded (`Accepted`) or known already (`Duplicate`).
    Counted(Outcome),
    /// Not recorded: which field, and why.
    Refused {
        field: &'static str,
        reason: &'static str,
    },
}

/// Records checked events of the grant's tenant in one untracked write
/// (usage is bookkeeping, not a change: no audit entry). Returns what
/// became of each event, in order. A tenant that is gone or deleted
/// refuses them all; events older than its retention window are refused.
pub async fn ingest(
    state: &AppState,
    grant: &TenantGrant,
    events: &[CheckedEvent],
    now: DateTime<Utc>,
) -> Result<Vec<Ingested>, StoreError> {
    let no_tenant = || Ingested::Refused {
        field: "tenant_id",
        reason: "no such tenant",
    };
    #[allow(clippy::disallowed_methods)] // usage counters: metering, not a change anyone made
    let mut tx = grant.untracked_write(state).await?;
    let active = match tx.tenant().await {
        Ok(t) => t.status != TenantStatus::Deleted,
        Err(StoreError::NotFound) => false,
        Err(e) => return Err(e),
    };
    if !active {
        return Ok(events.iter().map(|_| no_tenant()).collect());
    }
    let config = effective_config(state, &mut tx).await?;
    let oldest = now - Duration::days(config.retention_days());
    let (kept, too_old): (Vec<_>, Vec<_>) = events
        .iter()
        .enumerate()
        .partition(|(_, e)| e.occurred_at >= oldest);
    let mut results: Vec<Option<Ingested>> = events.iter().map(|_| None).collect();
    let too_old_count = too_old.len();
    for (i, _) in too_old {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(Ingested::Refused {
                field: "timestamp",
                reason: "is older than the tenant's retention window",
            });
        }
    }
    let outcomes = if too_old_count == 0 {
        record_batch(state, &mut tx, &config, events, now).await?
    } else {
        let batch: Vec<CheckedEvent> = kept.iter().map(|(_, e)| (*e).clone()).collect();
        record_batch(state, &mut tx, &config, &batch, now).await?
    };
    for ((i, _), outcome) in kept.into_iter().zip(outcomes) {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(Ingested::Counted(outcome));
        }
    }
    tx.commit().await?;
    Ok(results
        .into_iter()
        .map(|r| {
            r.unwrap_or(Ingested::Refused {
                field: "event",
                reason: "not processed",
            })
        })
        .collect())
}

/// A meter's counters of `granularity` from the period starting at `from`
/// up to `to` (exclusive), oldest first.
pub async fn series(
    state: &AppState,
    grant: &TenantGrant,
    meter: &str,
    granularity: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i64)>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let rows = tx.counter_series(meter, granularity, from, to).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Per meter: this month's totals and today's (UTC), with the configuration
/// in force (its quotas), read in one transaction.
pub async fn totals(
    state: &AppState,
    grant: &TenantGrant,
    now: DateTime<Utc>,
) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>, Arc<EffectiveConfig>), ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let month = tx
        .counters_of_period("month", period_start("month", now))
        .await?;
    let today = tx
        .counters_of_period("day", period_start("day", now))
        .await?;
    let config = effective_config(state, &mut tx).await?;
    tx.commit().await?;
    Ok((month, today, config))
}
