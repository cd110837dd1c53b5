//! GCRA, one step at a time: the in-memory backend runs it here, the Redis
//! backend runs its twin in Lua (see [`super::redis_backend`]).

use super::{Decision, Policy};

/// Longest period honoured; longer ones are shortened to it. Keeps every time
/// in the Lua script (a double) an exact integer.
pub(super) const MAX_PERIOD_US: u64 = 10 * 365 * 86_400 * 1_000_000;

/// A policy's emission interval and burst window, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Params {
    pub(super) t: u64,
    pub(super) tau: u64,
}

impl Params {
    /// For a policy with `limit` > 0.
    pub(super) fn of(policy: Policy) -> Params {
        let period = u64::try_from(policy.period.as_micros())
            .unwrap_or(u64::MAX)
            .min(MAX_PERIOD_US);
        let t = (period / policy.limit.max(1)).max(1);
        Params {
            t,
            tau: t.saturating_mul(policy.limit),
        }
    }
}

/// One GCRA step, the Lua script's twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outcome {
    pub(super) allowed: bool,
    /// The TAT after this step (never before `now`).
    pub(super) tat: u64,
    pub(super) remaining: u64,
    pub(super) reset_after_us: u64,
    pub(super) retry_after_us: u64,
}

/// Takes `cost` units at `now` from a bucket whose stored TAT is `stored`
/// (0 for a new bucket). All times in µs on one clock.
pub(super) fn gcra(now: u64, stored: u64, params: Params, cost: u64) -> Outcome {
    let tat = stored.max(now);
    let new_tat = tat.saturating_add(cost.saturating_mul(params.t));
    let allow_at = new_tat.saturating_sub(params.tau);
    let (allowed, tat, retry_after_us) = if allow_at > now {
        (false, tat, allow_at - now)
    } else {
        (true, new_tat, 0)
    };
    Outcome {
        allowed,
        tat,
        remaining: now.saturating_add(params.tau).saturating_sub(tat) / params.t,
        reset_after_us: tat - now,
        retry_after_us,
    }
}

pub(super) fn ceil_ms(us: u64) -> u64 {
    us.div_ceil(1000)
}

impl Outcome {
    pub(super) fn decision(&self, limit: u64) -> Decision {
        Decision {
            allowed: self.allowed,
            limit,
            remaining: self.remaining.min(limit),
            reset_after_ms: ceil_ms(self.reset_after_us),
            retry_after_ms: ceil_ms(self.retry_after_us),
        }
    }
}
