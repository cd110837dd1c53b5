//! Quota checks: how much of a metered quota is used this period, and an
//! atomic consume that can never push usage past a hard limit.
//!
//! A consume is bookkeeping, not a change anyone made: it writes through an
//! untracked transaction and records no audit entry (the hot path).

use super::config::EffectiveConfig;
use super::service::{Aggregation, effective_config, meters};
use super::usage::{GRANULARITIES, alert_thresholds, next_period, period_start};
use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use crate::tenancy::or_tenant_not_found;
use chrono::{DateTime, Utc};
pub use tenantry_api::quotas::QuotaDecision;
use tenantry_core::ValidationError;
use tenantry_core::tenant::TenantStatus;
use tenantry_store::{StoreError, TenantTx};

/// Checks (and with `consume`, takes) `quantity` of `meter` for the current
/// month. The consume is one conditional statement: concurrent consumers
/// on any number of server processes never push usage past the ceiling.
/// (With leases on, consumes of quotas with a ceiling go through
/// [`super::leases`] instead, which keeps the same guarantee.)
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
    // Units this process leased and has not consumed are in the counter
    // but not used (other processes' leased units do count: see
    // docs/quotas.md).
    let held = state.quota_leases.held(tx.tenant_id(), meter, period);
    let (allowed, used) = match (consume, ceiling) {
        (false, None) => (true, tx.counter(meter, "month", period).await? - held),
        (false, Some(max)) => {
            let used = tx.counter(meter, "month", period).await? - held;
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
    state
        .metrics
        .quota_decision(meter, allowed, tx.tenant_id().as_str());
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

/// `POST /v1/quotas/check`: checks `quantity` of `meter` for the grant's
/// tenant this month, and with `consume` takes it atomically.
pub async fn check_for(
    state: &AppState,
    grant: &TenantGrant,
    meter: &str,
    quantity: i64,
    consume: bool,
) -> Result<QuotaDecision, ApiError> {
    if !(1..=1_000_000_000_000).contains(&quantity) {
        return Err(ValidationError::new(
            "quantity",
            "out_of_range",
            "must be a whole number from 1 to 10^12",
        )
        .into());
    }
    match meters(state).await?.get(meter) {
        Some(Aggregation::Sum) => {}
        Some(_) => {
            return Err(ValidationError::new(
                "meter",
                "not_consumable",
                "quotas apply to sum meters",
            )
            .into());
        }
        None => return Err(ValidationError::new("meter", "unknown_meter", "no such meter").into()),
    }
    if consume
        && let Some(decision) =
            super::leases::consume(state, grant.tenant(), meter, quantity).await?
    {
        return Ok(decision);
    }
    let now = state.clock.now();
    let mut tx = if consume {
        #[allow(clippy::disallowed_methods)]
        // quota consumption: metering, not a change anyone made
        let tx = grant.untracked_write(state).await?;
        tx
    } else {
        grant.read(state).await?
    };
    let t = tx.tenant().await.map_err(or_tenant_not_found)?;
    if t.status == TenantStatus::Deleted {
        return Err(ApiError::tenant_not_found());
    }
    let config = effective_config(state, &mut tx).await?;
    let decision = check(state, &mut tx, &config, meter, quantity, consume, now).await?;
    tx.commit().await?;
    Ok(decision)
}

/// Consumes one `api_calls` of the tenant's monthly quota for a call made
/// with one of its keys (the caller checks that a quota is configured).
pub async fn consume_api_call(
    state: &AppState,
    grant: &TenantGrant,
    config: &EffectiveConfig,
    now: DateTime<Utc>,
) -> Result<QuotaDecision, StoreError> {
    if let Some(decision) = super::leases::consume(state, grant.tenant(), "api_calls", 1).await? {
        return Ok(decision);
    }
    #[allow(clippy::disallowed_methods)]
    // quota consumption per call: metering, not a change anyone made
    let mut tx = grant.untracked_write(state).await?;
    let decision = check(state, &mut tx, config, "api_calls", 1, true, now).await?;
    tx.commit().await?;
    Ok(decision)
}
