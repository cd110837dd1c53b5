//! Usage metering: idempotent events aggregated per hour, day and month
//! (UTC), for billing and quotas.
#![allow(clippy::disallowed_methods)] // Not yet on the change path (issue 9): transactions opened directly.

use super::config::{ALERT_THRESHOLDS, EffectiveConfig};
use super::service::Aggregation;
use crate::app::AppState;
use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tenantry_core::tenant::{Actor, TenantEventKind};
use tenantry_store::{NewUsageEvent, StoreError, TenantTx};

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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Duplicate,
    Rejected,
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
    for ((meter, granularity, start), quantity) in sums {
        let value = tx
            .add_to_counter(meter, granularity, start, quantity)
            .await?;
        if granularity == "month" {
            month_values.insert((meter, start), value);
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
            let id = state
                .ids
                .sortable("evt", now.timestamp_millis().max(0) as u64);
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
