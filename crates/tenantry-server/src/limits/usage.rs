//! Usage metering: idempotent events aggregated per hour, day and month
//! (UTC), for billing and quotas.

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

/// Records one checked event in the tenant's transaction: `Accepted`, or
/// `Duplicate` when its id was accepted before (then nothing is counted).
pub async fn record(
    state: &AppState,
    tx: &mut TenantTx,
    config: &EffectiveConfig,
    event: &CheckedEvent,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let inserted = tx
        .insert_usage_event(&NewUsageEvent {
            id: &event.id,
            meter: &event.meter,
            quantity: event.quantity,
            occurred_at: event.occurred_at,
            subject: event.subject.as_deref(),
            properties: &event.properties,
            received_at: now,
        })
        .await?;
    if !inserted {
        return Ok(Outcome::Duplicate);
    }
    let mut month_value = None;
    for granularity in GRANULARITIES {
        let start = period_start(granularity, event.occurred_at);
        let value = match event.aggregation {
            Aggregation::Sum => Some(
                tx.add_to_counter(&event.meter, granularity, start, event.quantity)
                    .await?,
            ),
            Aggregation::Last => {
                tx.set_gauge(
                    &event.meter,
                    granularity,
                    start,
                    event.quantity,
                    event.occurred_at,
                )
                .await?;
                None
            }
            Aggregation::Distinct => {
                let subject = event.subject.as_deref().unwrap_or("");
                if tx
                    .add_subject(&event.meter, granularity, start, subject)
                    .await?
                {
                    Some(
                        tx.add_to_counter(&event.meter, granularity, start, 1)
                            .await?,
                    )
                } else {
                    None
                }
            }
        };
        if granularity == "month" {
            month_value = value;
        }
    }
    if let Some(used) = month_value {
        alert_thresholds(
            state,
            tx,
            config,
            &event.meter,
            period_start("month", event.occurred_at),
            used,
            now,
        )
        .await?;
    }
    Ok(Outcome::Accepted)
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
