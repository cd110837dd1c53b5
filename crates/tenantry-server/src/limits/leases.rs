//! Quota leases (issue 16): a process takes a block of a tenant's remaining
//! monthly quota from the database in one transaction, adding the whole
//! block to the month's counter, and then admits consumes from it in
//! memory. The counter is therefore always at least what was admitted, on
//! every process together: a hard limit can never be passed. Unused units
//! go back (the counter lowered, once) when the lease goes stale (a quota
//! change, the month ends, the slot is idle, the server shuts down). A
//! process killed while holding units never returns them: the tenant is
//! under-admitted by at most `quota_lease_max` units per process.
//!
//! Blocks are sized from the recent consumption rate (about half a second's
//! worth), never above a quarter of what is left, so the last units of a
//! quota are not stranded on one process; near the limit blocks shrink to
//! the quantity asked for, which is the direct, one-statement consume.
//!
//! See docs/quotas.md for the design, what `used` means and the failure
//! behaviour.

use super::config::Quota;
use super::service::effective_config;
use super::usage::{GRANULARITIES, alert_thresholds, next_period, period_start};
use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::resolution::cache::{Entry, Invalidation};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
pub use tenantry_api::quotas::QuotaDecision;
use tenantry_core::TenantId;
use tenantry_core::tenant::TenantStatus;
use tenantry_store::{LeaseDelta, StoreError};
use tokio::sync::watch;

/// The first block of a slot, before any rate is known.
const FIRST_BLOCK: i64 = 16;
/// How much consumption a block should last at the recent rate.
const BLOCK_DURATION_MS: i64 = 500;
/// Units unused this long go back, so other processes can have them.
const IDLE_RETURN: Duration = Duration::from_secs(2);
/// Consumption is reported (hour and day counters, the lease row) at least
/// this often while a slot is busy.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often the maintenance worker looks at the slots.
const TICK: Duration = Duration::from_millis(250);
/// An empty slot nobody used this long is dropped from memory.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// This process's leases, one slot per (tenant, meter) in use.
pub struct QuotaLeases {
    /// This process incarnation: `node_id/random`, so a restarted node
    /// never mistakes a dead incarnation's lease for its own.
    holder: String,
    node_id: String,
    max: i64,
    /// Set at shutdown: from then on every consume is direct.
    closed: AtomicBool,
    slots: Mutex<HashMap<TenantId, HashMap<String, Arc<Slot>>>>,
}

/// One tenant's meter on this process.
struct Slot {
    local: Mutex<Local>,
    /// Held while the slot talks to the database (one lease transaction at
    /// a time per slot); never taken while holding a transaction.
    refill: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Local {
    /// The month the held units belong to (`None`: nothing leased yet).
    period: Option<DateTime<Utc>>,
    /// The quota in force when the units were leased.
    quota: Option<Quota>,
    /// Units held and not yet consumed.
    remaining: i64,
    /// Consumed since the last report to the database.
    unreported: i64,
    /// The month's counter as of this slot's last transaction (it includes
    /// `remaining`): what `used` is computed from.
    counter: i64,
    /// A change to the tenant's configuration arrived: nothing more is
    /// admitted from these units; they go back.
    stale: bool,
    /// Bumped by every invalidation, so a lease transaction that ran under
    /// an older configuration leaves the slot stale.
    epoch: u64,
    /// A refill ahead of time is under way.
    refilling: bool,
    last_block: i64,
    granted_at: Instant,
    consumed_since_grant: i64,
    last_used: Instant,
    reported_at: Instant,
}

/// Units taken out of a slot for one lease transaction.
#[derive(Debug, Default)]
struct Out {
    period: Option<DateTime<Utc>>,
    remaining: i64,
    unreported: i64,
    stale: bool,
    epoch: u64,
}

impl QuotaLeases {
    pub fn new(node_id: Option<&str>, max: i64) -> QuotaLeases {
        let node_id = node_id.map_or_else(
            || tenantry_core::ids::prefixed_id("node", rand::random()),
            str::to_owned,
        );
        let incarnation: u64 = rand::random();
        QuotaLeases {
            holder: format!("{node_id}/{incarnation:016x}"),
            node_id,
            max,
            closed: AtomicBool::new(false),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// This process incarnation's name in the lease rows.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn enabled(&self) -> bool {
        self.max > 0 && !self.closed.load(Ordering::Acquire)
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<TenantId, HashMap<String, Arc<Slot>>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot(&self, tenant: &TenantId, meter: &str) -> Arc<Slot> {
        let mut slots = self.slots();
        if let Some(slot) = slots.get(tenant).and_then(|m| m.get(meter)) {
            return slot.clone();
        }
        let slot = Arc::new(Slot::new());
        slots
            .entry(tenant.clone())
            .or_default()
            .insert(meter.to_owned(), slot.clone());
        slot
    }

    /// Units this process holds unconsumed for `meter` in `period`: what a
    /// read of the counter must not count as used.
    pub fn held(&self, tenant: &TenantId, meter: &str, period: DateTime<Utc>) -> i64 {
        let slot = self.slots().get(tenant).and_then(|m| m.get(meter)).cloned();
        slot.map_or(0, |s| {
            let local = s.lock();
            if local.period == Some(period) {
                local.remaining
            } else {
                0
            }
        })
    }

    /// A change to a tenant's configuration (or to everything): its units
    /// are admitted no more, and go back at the next transaction.
    pub fn apply(&self, change: &Invalidation) {
        let slots = self.slots();
        let mark = |slot: &Arc<Slot>| {
            let mut local = slot.lock();
            local.stale = true;
            local.epoch += 1;
        };
        match change {
            Invalidation::Tenant(id) => slots
                .get(id)
                .into_iter()
                .flatten()
                .for_each(|(_, s)| mark(s)),
            Invalidation::All => slots.values().flatten().for_each(|(_, s)| mark(s)),
            _ => {}
        }
    }

    fn all(&self) -> Vec<(TenantId, String, Arc<Slot>)> {
        self.slots()
            .iter()
            .flat_map(|(t, m)| m.iter().map(|(k, s)| (t.clone(), k.clone(), s.clone())))
            .collect()
    }

    /// Drops slots that hold nothing and nobody used for a while (only when
    /// no request holds them, so no unit is ever left in a forgotten slot).
    fn forget_idle(&self) {
        let mut slots = self.slots();
        for meters in slots.values_mut() {
            meters.retain(|_, slot| {
                if Arc::strong_count(slot) > 1 {
                    return true;
                }
                let local = slot.lock();
                !(local.remaining == 0
                    && local.unreported == 0
                    && local.last_used.elapsed() >= FORGET_AFTER)
            });
        }
        slots.retain(|_, meters| !meters.is_empty());
    }
}

impl Slot {
    fn new() -> Slot {
        let now = Instant::now();
        Slot {
            local: Mutex::new(Local {
                period: None,
                quota: None,
                remaining: 0,
                unreported: 0,
                counter: 0,
                stale: false,
                epoch: 0,
                refilling: false,
                last_block: 0,
                granted_at: now,
                consumed_since_grant: 0,
                last_used: now,
                reported_at: now,
            }),
            refill: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Local {
    /// Takes `quantity` from the held units: `(used, refill now?)`.
    fn take(&mut self, period: DateTime<Utc>, quantity: i64) -> Option<(Quota, i64, bool)> {
        let quota = self.quota?;
        if self.stale || self.period != Some(period) || self.remaining < quantity {
            return None;
        }
        self.remaining -= quantity;
        self.unreported += quantity;
        self.consumed_since_grant += quantity;
        self.last_used = Instant::now();
        let low = !self.refilling && self.remaining < (self.last_block / 2).max(1);
        if low {
            self.refilling = true;
        }
        Some((quota, self.counter - self.remaining, low))
    }

    /// The next block: about `BLOCK_DURATION_MS` of the recent rate.
    fn target(&self, max: i64) -> i64 {
        if self.last_block == 0 {
            return FIRST_BLOCK.min(max);
        }
        let elapsed = (self.granted_at.elapsed().as_millis() as i64).max(1);
        (self.consumed_since_grant.saturating_mul(BLOCK_DURATION_MS) / elapsed).clamp(1, max)
    }

    /// Everything held, for a transaction to return or reuse.
    fn take_out(&mut self) -> Out {
        let out = Out {
            period: self.period,
            remaining: std::mem::take(&mut self.remaining),
            unreported: std::mem::take(&mut self.unreported),
            stale: self.stale,
            epoch: self.epoch,
        };
        self.reported_at = Instant::now();
        out
    }

    /// Puts back what a failed transaction took out.
    fn restore(&mut self, out: &Out) {
        self.remaining += out.remaining;
        self.unreported += out.unreported;
    }
}

fn decision(
    meter: &str,
    quota: Quota,
    allowed: bool,
    used: i64,
    now: DateTime<Utc>,
) -> QuotaDecision {
    QuotaDecision {
        allowed,
        meter: meter.to_owned(),
        limit: quota.limit,
        used,
        remaining: quota.limit.map(|l| (l - used).max(0)),
        mode: quota.limit.map(|_| quota.mode),
        resets_at: next_period("month", now),
    }
}

/// Consumes `quantity` of `meter` through this process's lease. `None`:
/// no lease applies (leases are off, the quota has no ceiling, the tenant
/// is deleted) and the caller consumes directly.
pub async fn consume(
    state: &AppState,
    tenant: &TenantId,
    meter: &str,
    quantity: i64,
) -> Result<Option<QuotaDecision>, StoreError> {
    let leases = &state.quota_leases;
    if !leases.enabled() {
        return Ok(None);
    }
    if let Some(Entry::Found(config)) = state.caches.configs.get(tenant)
        && config.quota(meter).and_then(|q| q.ceiling()).is_none()
    {
        return Ok(None);
    }
    let now = state.clock.now();
    let period = period_start("month", now);
    let slot = leases.slot(tenant, meter);
    if let Some(decision) = take(state, &slot, tenant, meter, quantity, now) {
        return Ok(Some(decision));
    }
    let _one_at_a_time = slot.refill.lock().await;
    // Another request may have refilled the slot meanwhile.
    if let Some(decision) = take(state, &slot, tenant, meter, quantity, now) {
        return Ok(Some(decision));
    }
    let out = slot.lock().take_out();
    match lease(state, &slot, tenant, meter, quantity, period, now, out).await {
        Ok(decision) => Ok(decision),
        Err((err, out)) => {
            slot.lock().restore(&out);
            Err(err)
        }
    }
}

/// The in-memory path: no database, no await.
fn take(
    state: &AppState,
    slot: &Arc<Slot>,
    tenant: &TenantId,
    meter: &str,
    quantity: i64,
    now: DateTime<Utc>,
) -> Option<QuotaDecision> {
    let (quota, used, low) = slot.lock().take(period_start("month", now), quantity)?;
    if low {
        tokio::spawn(refill_ahead(
            state.clone(),
            slot.clone(),
            tenant.clone(),
            meter.to_owned(),
        ));
    }
    state.metrics.quota_decision(meter, true, tenant.as_str());
    Some(decision(meter, quota, true, used, now))
}

/// Leases the next block before the held units run out, so that the
/// requests after this one do not wait for the database.
async fn refill_ahead(state: AppState, slot: Arc<Slot>, tenant: TenantId, meter: String) {
    let _one_at_a_time = slot.refill.lock().await;
    let now = state.clock.now();
    let period = period_start("month", now);
    let out = {
        let mut local = slot.lock();
        local.refilling = false;
        if local.stale || local.period != Some(period) {
            // The next request returns these units and leases anew.
            return;
        }
        // The held units stay in use; only the consumption report moves.
        Out {
            period: local.period,
            remaining: 0,
            unreported: std::mem::take(&mut local.unreported),
            stale: false,
            epoch: local.epoch,
        }
    };
    if let Err((err, out)) = lease(&state, &slot, &tenant, &meter, 0, period, now, out).await {
        slot.lock().restore(&out);
        tracing::warn!(error = %err, tenant = %tenant, meter, "could not lease quota ahead of time; the next request will");
    }
}

/// One lease transaction: reports what `out` consumed, returns what it
/// cannot reuse, and leases a block big enough for `quantity` (0: a refill
/// ahead of time). On failure `out` comes back to be restored.
#[allow(clippy::too_many_arguments)]
async fn lease(
    state: &AppState,
    slot: &Slot,
    tenant: &TenantId,
    meter: &str,
    quantity: i64,
    period: DateTime<Utc>,
    now: DateTime<Utc>,
    out: Out,
) -> Result<Option<QuotaDecision>, (StoreError, Out)> {
    #[allow(clippy::disallowed_methods)]
    // system grant, untracked write: quota leasing is metering, not a change anyone made
    let grant = TenantGrant::system(tenant.clone(), "quota-leases");
    let result: Result<_, StoreError> = async {
        #[allow(clippy::disallowed_methods)] // quota leasing is metering: see the grant above
        let mut tx = grant.untracked_write(state).await?;
        match tx.tenant().await {
            Ok(t) if t.status != TenantStatus::Deleted => {}
            // Deleted or purged: the caller's direct path answers.
            Ok(_) | Err(StoreError::NotFound) => return Ok(None),
            Err(err) => return Err(err),
        }
        let config = effective_config(state, &mut tx).await?;
        let quota = config.quota(meter);
        let ceiling = quota.and_then(|q| q.ceiling());
        // Held units of this month under the configuration they were leased
        // with are reused for this request; any others go back.
        let keep = match ceiling {
            Some(_) if !out.stale && out.period == Some(period) => out.remaining,
            _ => 0,
        };
        report(state, &mut tx, meter, &out, out.remaining - keep, now).await?;
        let (Some(quota), Some(max)) = (quota, ceiling) else {
            tx.commit().await?;
            return Ok(Some(Granted::Direct));
        };
        let need = (quantity - keep).max(0);
        let counter = tx.counter(meter, "month", period).await?;
        let available = max - counter;
        let held = if quantity == 0 {
            slot.lock().remaining
        } else {
            keep
        };
        let mut granted = None;
        if need <= available {
            let target = slot.lock().target(state.quota_leases.max);
            let block = target
                .min(available / 4)
                .min(state.quota_leases.max - held)
                .max(need)
                .min(available);
            if block > 0 {
                granted = tx
                    .add_to_counter_within(meter, "month", period, block, max)
                    .await?
                    .map(|c| (block, c));
                if granted.is_none() && block > need && need > 0 {
                    granted = tx
                        .add_to_counter_within(meter, "month", period, need, max)
                        .await?
                        .map(|c| (need, c));
                }
            }
        }
        if let Some((block, new)) = granted {
            tx.record_quota_lease(
                &LeaseDelta {
                    meter,
                    period_start: period,
                    holder: state.quota_leases.holder(),
                    node_id: &state.quota_leases.node_id,
                    granted: block,
                    consumed: 0,
                    returned: 0,
                },
                now,
            )
            .await?;
            alert_thresholds(state, &mut tx, &config, meter, period, new, now).await?;
        }
        tx.commit().await?;
        Ok(Some(Granted::Lease {
            quota,
            keep,
            counter,
            granted,
        }))
    }
    .await;
    let granted = match result {
        Ok(Some(granted)) => granted,
        // A deleted tenant: the caller's direct path answers.
        Ok(None) => {
            slot.lock().restore(&out);
            return Ok(None);
        }
        Err(err) => return Err((err, out)),
    };
    let Granted::Lease {
        quota,
        keep,
        counter,
        granted,
    } = granted
    else {
        // No ceiling any more: the units went back, consumes are direct.
        let mut local = slot.lock();
        local.period = None;
        local.quota = None;
        return Ok(None);
    };
    let mut local = slot.lock();
    if local.period != Some(period) {
        local.period = Some(period);
        local.remaining = 0;
    }
    local.quota = Some(quota);
    local.stale = local.epoch != out.epoch;
    local.remaining += keep;
    let allowed = granted.is_some();
    match granted {
        Some((block, new)) => {
            local.remaining += block - quantity;
            local.unreported += quantity;
            local.counter = new;
            local.last_block = block;
            local.granted_at = Instant::now();
            local.consumed_since_grant = quantity;
        }
        None => local.counter = counter,
    }
    local.last_used = Instant::now();
    let used = local.counter - local.remaining;
    drop(local);
    if quantity == 0 {
        return Ok(None);
    }
    state
        .metrics
        .quota_decision(meter, allowed, tenant.as_str());
    Ok(Some(decision(meter, quota, allowed, used, now)))
}

enum Granted {
    /// The quota has no ceiling now.
    Direct,
    Lease {
        quota: Quota,
        keep: i64,
        counter: i64,
        granted: Option<(i64, i64)>,
    },
}

/// Writes what `out` consumed (hour and day counters, the lease row) and
/// gives `returned` unused units back to the month they were leased in.
async fn report(
    state: &AppState,
    tx: &mut tenantry_store::TenantTx,
    meter: &str,
    out: &Out,
    returned: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(leased_in) = out.period else {
        return Ok(());
    };
    if out.unreported == 0 && returned == 0 {
        return Ok(());
    }
    if returned > 0 {
        tx.subtract_from_counter(meter, "month", leased_in, returned)
            .await?;
    }
    if out.unreported > 0 {
        for granularity in GRANULARITIES.iter().filter(|g| **g != "month") {
            tx.add_to_counter(
                meter,
                granularity,
                period_start(granularity, now),
                out.unreported,
            )
            .await?;
        }
    }
    tx.record_quota_lease(
        &LeaseDelta {
            meter,
            period_start: leased_in,
            holder: state.quota_leases.holder(),
            node_id: &state.quota_leases.node_id,
            granted: 0,
            consumed: out.unreported,
            returned,
        },
        now,
    )
    .await
}

/// Gives back everything a slot holds (or, with `keep_held`, only reports
/// its consumption).
async fn give_back(state: &AppState, tenant: &TenantId, meter: &str, slot: &Slot, keep_held: bool) {
    let out = {
        let mut local = slot.lock();
        if keep_held {
            let unreported = std::mem::take(&mut local.unreported);
            local.reported_at = Instant::now();
            Out {
                period: local.period,
                remaining: 0,
                unreported,
                stale: local.stale,
                epoch: local.epoch,
            }
        } else {
            local.take_out()
        }
    };
    if out.remaining == 0 && out.unreported == 0 {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    // system grant, untracked write: returning leased quota is metering
    let grant = TenantGrant::system(tenant.clone(), "quota-leases");
    let result: Result<(), StoreError> = async {
        #[allow(clippy::disallowed_methods)] // quota leasing is metering: see the grant above
        let mut tx = grant.untracked_write(state).await?;
        match tx.tenant().await {
            Ok(_) => {}
            // Purged: its counters are gone, there is nothing to return to.
            Err(StoreError::NotFound) => return Ok(()),
            Err(err) => return Err(err),
        }
        report(
            state,
            &mut tx,
            meter,
            &out,
            out.remaining,
            state.clock.now(),
        )
        .await?;
        tx.commit().await
    }
    .await;
    let mut local = slot.lock();
    match result {
        Ok(()) => local.counter -= out.remaining,
        Err(err) => {
            local.restore(&out);
            tracing::warn!(error = %err, tenant = %tenant, meter, "could not return leased quota; will retry");
        }
    }
}

/// Whether a slot's units should go back now, or only its consumption be
/// reported.
fn due(slot: &Slot, period: DateTime<Utc>) -> Option<bool> {
    let local = slot.lock();
    let idle = local.last_used.elapsed() >= IDLE_RETURN;
    if local.remaining > 0 && (local.stale || local.period != Some(period) || idle) {
        Some(false)
    } else if local.unreported > 0 && (idle || local.reported_at.elapsed() >= REPORT_EVERY) {
        Some(true)
    } else {
        None
    }
}

/// Returns stale, last month's and idle units, reports consumption, and
/// forgets unused slots; at shutdown [`return_all`] runs after the last
/// request.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let period = period_start("month", state.clock.now());
        for (tenant, meter, slot) in state.quota_leases.all() {
            let Some(keep_held) = due(&slot, period) else {
                continue;
            };
            // A slot busy with its own transaction reports there.
            let Ok(_one_at_a_time) = slot.refill.try_lock() else {
                continue;
            };
            give_back(&state, &tenant, &meter, &slot, keep_held).await;
        }
        state.quota_leases.forget_idle();
    }
}

/// At shutdown, once requests are done: every held unit goes back, and any
/// consume still coming is direct.
pub async fn return_all(state: &AppState) {
    state.quota_leases.closed.store(true, Ordering::Release);
    for (tenant, meter, slot) in state.quota_leases.all() {
        let _one_at_a_time = slot.refill.lock().await;
        give_back(state, &tenant, &meter, &slot, false).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn held(remaining: i64, period: DateTime<Utc>) -> Local {
        let slot = Slot::new();
        let mut local = slot.local.into_inner().unwrap();
        local.period = Some(period);
        local.quota = Some(Quota {
            limit: Some(100),
            mode: tenantry_api::quotas::QuotaMode::Hard,
            grace_percent: 0,
        });
        local.remaining = remaining;
        local.counter = 40;
        local.last_block = remaining;
        local
    }

    #[test]
    fn takes_from_held_units_of_the_same_month_only() {
        let december = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let january = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let mut local = held(10, december);
        // used = the counter minus what is still held here.
        assert_eq!(local.take(december, 4).map(|t| t.1), Some(34));
        assert_eq!(local.unreported, 4);
        // A new month: last month's units admit nothing.
        assert!(local.take(january, 1).is_none());
        // More than is held: the database decides.
        assert!(local.take(december, 7).is_none());
        assert_eq!(local.remaining, 6);
    }

    #[test]
    fn a_stale_slot_admits_nothing_and_low_units_ask_for_a_refill_once() {
        let december = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let mut local = held(10, december);
        let (_, _, low) = local.take(december, 6).unwrap();
        assert!(low, "4 left of a block of 10");
        let (_, _, again) = local.take(december, 1).unwrap();
        assert!(!again, "one refill at a time");
        local.stale = true;
        assert!(local.take(december, 1).is_none());
    }

    #[test]
    fn blocks_follow_the_rate_within_the_maximum() {
        let december = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let mut local = held(0, december);
        local.last_block = 0;
        assert_eq!(local.target(1000), FIRST_BLOCK);
        local.last_block = 16;
        local.consumed_since_grant = 1_000_000;
        assert_eq!(local.target(1000), 1000);
        local.consumed_since_grant = 0;
        assert_eq!(local.target(1000), 1);
    }
}
