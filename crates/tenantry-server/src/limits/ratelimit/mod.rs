//! Rate limiting with GCRA (generic cell rate algorithm), in this process or
//! in Redis.
//!
//! GCRA keeps one number per bucket: the theoretical arrival time (TAT), the
//! moment at which the bucket would be full again. A policy of `limit` units
//! per `period` has the emission interval `T = period / limit` and the burst
//! window `tau = limit × T`. Taking `cost` units moves the TAT forward by
//! `cost × T`; that is allowed when the new TAT lies at most `tau` ahead of
//! now. So a full bucket allows a burst of `limit` units at once, then one
//! unit every `T`.
//!
//! Times are whole microseconds: `T` is `period / limit` rounded down to a
//! microsecond (at least 1 µs), and `tau` is exactly `limit × T`, so a burst of
//! `limit` is always allowed exactly. Periods are capped at ten years.
//!
//! The in-memory backend is exact within one process. The Redis backend runs
//! the same algorithm in one Lua script on the Redis server, with the server's
//! clock, so any number of server processes share each bucket exactly. When
//! Redis cannot be reached, decisions follow the [`FailurePolicy`].
//!
//! One module per concern: the algorithm ([`gcra`]), the in-process
//! buckets ([`memory`]) and the Redis backend ([`redis_backend`]); this module holds
//! the policy types and the limiter that picks a backend.

mod buckets;
mod gcra;
mod memory;
mod redis_backend;

pub use self::buckets::take;
use self::gcra::Params;
use self::memory::Memory;
use self::redis_backend::RedisBackend;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A rate limit: at most `limit` units per `period`, enforced with GCRA
/// (generic cell rate algorithm): emission interval T = period / limit, burst = limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub limit: u64,
    pub period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    /// Units that could still be taken right now.
    pub remaining: u64,
    /// Until the bucket is completely full again (ms).
    pub reset_after_ms: u64,
    /// When denied: how long until `cost` units would be allowed (ms); 0 when allowed.
    /// `u64::MAX` when they never will be (`cost` > `limit`).
    pub retry_after_ms: u64,
}

/// What to do when Redis is configured but unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Allow every request (with `remaining` = `limit`).
    Open,
    /// Deny every request (with `retry_after_ms` = 1000).
    Closed,
}

/// Takes units from rate-limit buckets, in this process or in Redis.
pub struct RateLimiter {
    backend: Backend,
    /// Decisions taken, allowed and denied (for `/metrics`).
    allowed: AtomicU64,
    denied: AtomicU64,
}

enum Backend {
    Memory(Memory),
    Redis(Box<RedisBackend>),
}

impl RateLimiter {
    /// In-process limiter (one server process).
    pub fn in_memory() -> RateLimiter {
        RateLimiter {
            backend: Backend::Memory(Memory::new()),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        }
    }

    /// Redis-backed limiter: exact across server processes. Does not fail
    /// when Redis is down: it connects on first use (trying once here, for at
    /// most a second), reconnects when the connection drops, and follows
    /// `failure` meanwhile. `Err` only for a URL that cannot be parsed (or
    /// asks for TLS, which is not built in).
    pub async fn redis(url: &str, failure: FailurePolicy) -> anyhow::Result<RateLimiter> {
        let client = redis::Client::open(url)
            .map_err(|err| anyhow::anyhow!("invalid Redis URL for rate limiting: {err}"))?;
        let backend = RedisBackend::new(client, failure);
        backend.warm_up().await;
        Ok(RateLimiter {
            backend: Backend::Redis(Box::new(backend)),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        })
    }

    /// Takes `cost` units from bucket `key` (e.g. "t:acme:api_calls_per_hour").
    /// cost 0 = peek. cost > limit is never allowed.
    pub async fn check(&self, key: &str, policy: Policy, cost: u64) -> Decision {
        if policy.limit == 0 {
            return Decision {
                allowed: cost == 0,
                limit: 0,
                remaining: 0,
                reset_after_ms: 0,
                retry_after_ms: if cost == 0 { 0 } else { u64::MAX },
            };
        }
        let params = Params::of(policy);
        // More than the burst can never be taken: look, take nothing.
        let take = if cost > policy.limit { 0 } else { cost };
        let mut decision = match &self.backend {
            Backend::Memory(memory) => memory.check(key, params, take).decision(policy.limit),
            Backend::Redis(redis) => redis.check(key, policy, params, take).await,
        };
        if cost > policy.limit {
            decision.allowed = false;
            decision.retry_after_ms = u64::MAX;
        }
        let counter = if decision.allowed {
            &self.allowed
        } else {
            &self.denied
        };
        counter.fetch_add(1, Ordering::Relaxed);
        decision
    }

    /// Decisions taken so far: allowed, denied.
    pub fn decisions(&self) -> (u64, u64) {
        (
            self.allowed.load(Ordering::Relaxed),
            self.denied.load(Ordering::Relaxed),
        )
    }

    /// "memory" or "redis".
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// How many checks could not reach Redis and were decided by the failure
    /// policy (for a metric). Always 0 in memory.
    pub fn redis_errors(&self) -> u64 {
        match &self.backend {
            Backend::Memory(_) => 0,
            Backend::Redis(redis) => redis.errors.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("RateLimiter");
        out.field("backend", &self.backend());
        match &self.backend {
            Backend::Memory(memory) => out.field("buckets", &memory.buckets.entry_count()),
            Backend::Redis(redis) => out
                .field("url", &redis.display_url)
                .field("failure", &redis.failure)
                .field("redis_errors", &redis.errors.load(Ordering::Relaxed)),
        };
        out.finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::gcra::{MAX_PERIOD_US, Params, ceil_ms, gcra};
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    const SECOND: u64 = 1_000_000;

    fn policy(limit: u64, period: Duration) -> Policy {
        Policy { limit, period }
    }

    // --- The algorithm, on a clock the test moves ----------------------------

    #[test]
    fn ratelimit_gcra_burst_then_one_per_interval() {
        // 5 per 10 s: T = 2 s, tau = 10 s.
        let params = Params::of(policy(5, Duration::from_secs(10)));
        assert_eq!(
            params,
            Params {
                t: 2 * SECOND,
                tau: 10 * SECOND
            }
        );
        let start = 1_000 * SECOND;
        let mut tat = 0;
        for taken in 1..=5 {
            let step = gcra(start, tat, params, 1);
            assert!(step.allowed, "unit {taken} of the burst");
            assert_eq!(step.remaining, 5 - taken);
            assert_eq!(step.reset_after_us, taken * 2 * SECOND);
            assert_eq!(step.retry_after_us, 0);
            tat = step.tat;
        }
        let denied = gcra(start, tat, params, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.tat, tat, "a denial takes nothing");
        assert_eq!(denied.remaining, 0);
        assert_eq!(denied.retry_after_us, 2 * SECOND, "one emission interval");
        assert_eq!(denied.reset_after_us, 10 * SECOND);
        // Just before the interval: still denied; at it: one unit, not two.
        assert!(!gcra(start + 2 * SECOND - 1, tat, params, 1).allowed);
        let refilled = gcra(start + 2 * SECOND, tat, params, 1);
        assert!(refilled.allowed);
        assert_eq!(refilled.remaining, 0);
        assert!(!gcra(start + 2 * SECOND, refilled.tat, params, 1).allowed);
        // After the whole window the bucket is full again.
        let full = gcra(start + 100 * SECOND, refilled.tat, params, 0);
        assert_eq!(
            (full.allowed, full.remaining, full.reset_after_us),
            (true, 5, 0)
        );
    }

    #[test]
    fn ratelimit_gcra_costs_and_peeks() {
        let params = Params::of(policy(10, Duration::from_secs(10))); // T = 1 s
        let now = 50 * SECOND;
        let first = gcra(now, 0, params, 4);
        assert!(first.allowed);
        assert_eq!(first.remaining, 6);
        let peek = gcra(now, first.tat, params, 0);
        assert_eq!(
            (peek.allowed, peek.remaining, peek.tat),
            (true, 6, first.tat)
        );
        let second = gcra(now, first.tat, params, 6);
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        let third = gcra(now + SECOND, second.tat, params, 3);
        assert!(!third.allowed);
        assert_eq!(third.remaining, 1);
        assert_eq!(
            third.retry_after_us,
            2 * SECOND,
            "two more units after two intervals"
        );
        assert!(gcra(now + 3 * SECOND, second.tat, params, 3).allowed);
    }

    #[test]
    fn ratelimit_params_round_to_an_exact_burst() {
        // 7 per hour does not divide: T rounds down, the burst stays exactly 7.
        let params = Params::of(policy(7, Duration::from_secs(3600)));
        assert_eq!(params.t, 3_600_000_000 / 7);
        assert_eq!(params.tau, params.t * 7);
        let mut tat = 0;
        for _ in 0..7 {
            let step = gcra(SECOND, tat, params, 1);
            assert!(step.allowed);
            tat = step.tat;
        }
        assert!(!gcra(SECOND, tat, params, 1).allowed);
        // Sub-microsecond intervals and absurd periods stay well defined.
        let fast = Params::of(policy(10_000_000, Duration::from_secs(1)));
        assert_eq!(
            fast,
            Params {
                t: 1,
                tau: 10_000_000
            }
        );
        let long = Params::of(policy(1, Duration::MAX));
        assert_eq!(long.tau, MAX_PERIOD_US);
        assert_eq!(ceil_ms(0), 0);
        assert_eq!(ceil_ms(1), 1);
        assert_eq!(ceil_ms(1000), 1);
        assert_eq!(ceil_ms(1001), 2);
    }

    // --- The in-memory limiter -----------------------------------------------

    #[tokio::test]
    async fn ratelimit_memory_burst_then_denied() {
        let limiter = RateLimiter::in_memory();
        assert_eq!(limiter.backend(), "memory");
        // 5 per 50 s: T = 10 s, far longer than this test may take.
        let p = policy(5, Duration::from_secs(50));
        for expected_remaining in (0..5).rev() {
            let d = limiter.check("t:acme:calls", p, 1).await;
            assert!(d.allowed);
            assert_eq!(d.limit, 5);
            assert_eq!(d.remaining, expected_remaining);
            assert_eq!(d.retry_after_ms, 0);
        }
        let denied = limiter.check("t:acme:calls", p, 1).await;
        assert!(!denied.allowed);
        assert_eq!(denied.remaining, 0);
        assert!(
            denied.retry_after_ms <= 10_000 && denied.retry_after_ms >= 5_000,
            "about one emission interval: {denied:?}"
        );
        assert!(denied.reset_after_ms <= 50_000 && denied.reset_after_ms >= 45_000);
        assert_eq!(limiter.redis_errors(), 0);
    }

    #[tokio::test]
    async fn ratelimit_memory_costs_peeks_and_keys() {
        let limiter = RateLimiter::in_memory();
        let p = policy(10, Duration::from_secs(3600));
        let d = limiter.check("k", p, 3).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, 7);
        // Peeks take nothing, however often.
        for _ in 0..3 {
            let peek = limiter.check("k", p, 0).await;
            assert!(peek.allowed);
            assert_eq!(peek.remaining, 7);
        }
        // More than the limit: never allowed, and takes nothing.
        let too_much = limiter.check("k", p, 11).await;
        assert!(!too_much.allowed);
        assert_eq!(too_much.retry_after_ms, u64::MAX);
        assert_eq!(too_much.remaining, 7);
        // More than what is left: denied, takes nothing.
        let d = limiter.check("k", p, 8).await;
        assert!(!d.allowed);
        assert_eq!(d.remaining, 7);
        assert!(d.retry_after_ms > 0);
        let d = limiter.check("k", p, 7).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(!limiter.check("k", p, 1).await.allowed);
        // Another key is untouched.
        let other = limiter.check("k2", p, 10).await;
        assert!(other.allowed);
        assert_eq!(other.remaining, 0);
        // The whole limit at once on a fresh key, and limit 0.
        assert!(limiter.check("k3", p, 10).await.allowed);
        let zero = limiter
            .check("k4", policy(0, Duration::from_secs(1)), 1)
            .await;
        assert!(!zero.allowed);
        assert!(
            limiter
                .check("k4", policy(0, Duration::from_secs(1)), 0)
                .await
                .allowed
        );
    }

    #[tokio::test]
    async fn ratelimit_memory_refills_after_an_interval() {
        let limiter = RateLimiter::in_memory();
        // 2 per 200 ms: T = 100 ms.
        let p = policy(2, Duration::from_millis(200));
        assert!(limiter.check("refill", p, 1).await.allowed);
        assert!(limiter.check("refill", p, 1).await.allowed);
        let denied = limiter.check("refill", p, 1).await;
        if !denied.allowed {
            assert!(denied.retry_after_ms <= 100);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(limiter.check("refill", p, 1).await.allowed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ratelimit_memory_is_exact_under_concurrency() {
        let limiter = Arc::new(RateLimiter::in_memory());
        let p = policy(100, Duration::from_secs(3600));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let mut allowed = 0;
                    for _ in 0..100 {
                        if limiter.check("shared", p, 1).await.allowed {
                            allowed += 1;
                        }
                        tokio::task::yield_now().await;
                    }
                    allowed
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        assert_eq!(total, 100);
    }

    #[test]
    fn ratelimit_memory_keeps_busy_buckets_and_drops_idle_ones() {
        let memory = Memory::new();
        // 100 per 100 ms: each bucket lives 1.1 s past its last use.
        let params = Params::of(policy(100, Duration::from_millis(100)));
        memory.check("busy", params, 1);
        memory.check("idle", params, 1);
        let busy = memory.buckets.get("busy").unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(2500) {
            memory.check("busy", params, 1);
            std::thread::sleep(Duration::from_millis(100));
        }
        let still = memory.buckets.get("busy").unwrap();
        assert!(Arc::ptr_eq(&busy, &still), "a bucket in use is kept");
        assert!(
            memory.buckets.get("idle").is_none(),
            "an idle one is dropped"
        );
    }

    #[tokio::test]
    async fn ratelimit_redis_url_is_checked_and_its_password_never_shown() {
        assert!(
            RateLimiter::redis("not a url", FailurePolicy::Open)
                .await
                .is_err()
        );
        let err = RateLimiter::redis("redis://ops:s3cret@127.0.0.1:port/0", FailurePolicy::Open)
            .await
            .unwrap_err();
        assert!(!format!("{err:#}").contains("s3cret"), "{err:#}");
        // Nothing listens on port 1: the limiter is still made.
        let limiter = RateLimiter::redis("redis://ops:s3cret@127.0.0.1:1/2", FailurePolicy::Open)
            .await
            .unwrap();
        assert_eq!(limiter.backend(), "redis");
        let shown = format!("{limiter:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("redis://ops:***@127.0.0.1:1/2"), "{shown}");
        let d = limiter
            .check("k", policy(3, Duration::from_secs(60)), 1)
            .await;
        assert!(d.allowed);
        assert_eq!(d.remaining, 3);
        assert!(limiter.redis_errors() >= 1);
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RateLimiter>();
    }
}
