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

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// Keys in Redis are `tenantry:rl:<key>`.
const REDIS_KEY_PREFIX: &str = "tenantry:rl:";
/// Longest period honoured; longer ones are shortened to it. Keeps every time
/// in the Lua script (a double) an exact integer.
const MAX_PERIOD_US: u64 = 10 * 365 * 86_400 * 1_000_000;
/// Most buckets kept in memory; the least used are dropped beyond it.
const MEMORY_CAPACITY: u64 = 1_000_000;
/// One attempt to open a connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One command to Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// A whole check against Redis, connecting and one retry included.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1500);
/// After Redis could not be reached, one check per this interval tries it
/// again; the others follow the failure policy at once.
const PROBE_INTERVAL_US: u64 = 1_000_000;
/// At most one warning per this interval while Redis cannot be reached.
const WARN_INTERVAL_US: u64 = 5_000_000;
/// `retry_after_ms` of checks denied because Redis cannot be reached.
const CLOSED_RETRY_AFTER_MS: u64 = 1000;

/// GCRA in Redis. KEYS[1]: the bucket; ARGV: T (µs), tau (µs), cost.
/// Returns {allowed (0/1), remaining, reset_after (µs), retry_after (µs)}.
/// The TAT is stored in µs since the Unix epoch (the server's `TIME`) and
/// expires when the bucket is full again, so idle buckets cost nothing.
const GCRA_LUA: &str = r"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
if tat < now then tat = now end
local new_tat = tat + cost * t
local allow_at = new_tat - tau
if allow_at > now then
  return {0, math.max(0, math.floor((now + tau - tat) / t)), tat - now, allow_at - now}
end
if cost > 0 then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
end
return {1, math.max(0, math.floor((now + tau - new_tat) / t)), new_tat - now, 0}
";

/// A policy's emission interval and burst window, in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Params {
    t: u64,
    tau: u64,
}

impl Params {
    /// For a policy with `limit` > 0.
    fn of(policy: Policy) -> Params {
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
struct Outcome {
    allowed: bool,
    /// The TAT after this step (never before `now`).
    tat: u64,
    remaining: u64,
    reset_after_us: u64,
    retry_after_us: u64,
}

/// Takes `cost` units at `now` from a bucket whose stored TAT is `stored`
/// (0 for a new bucket). All times in µs on one clock.
fn gcra(now: u64, stored: u64, params: Params, cost: u64) -> Outcome {
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

fn ceil_ms(us: u64) -> u64 {
    us.div_ceil(1000)
}

impl Outcome {
    fn decision(&self, limit: u64) -> Decision {
        Decision {
            allowed: self.allowed,
            limit,
            remaining: self.remaining.min(limit),
            reset_after_ms: ceil_ms(self.reset_after_us),
            retry_after_ms: ceil_ms(self.retry_after_us),
        }
    }
}

/// Takes units from rate-limit buckets, in this process or in Redis.
pub struct RateLimiter {
    backend: Backend,
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
        decision
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

// --- In memory ---------------------------------------------------------------

/// One bucket: its TAT in µs since [`Memory::epoch`], updated by
/// compare-and-swap, so concurrent checks on one key are atomic without a lock.
struct Bucket {
    tat: AtomicU64,
    /// How long the bucket may stay unused before it is dropped (µs): after
    /// its burst window it is full again, the same as absent.
    idle_us: AtomicU64,
}

impl Bucket {
    fn idle(&self) -> Duration {
        Duration::from_micros(self.idle_us.load(Ordering::Relaxed))
    }
}

/// Drops each bucket once unused for its own burst window.
struct BucketExpiry;

impl moka::Expiry<String, Arc<Bucket>> for BucketExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        bucket: &Arc<Bucket>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(bucket.idle())
    }

    fn expire_after_read(
        &self,
        _key: &String,
        bucket: &Arc<Bucket>,
        _read_at: Instant,
        _duration_until_expiry: Option<Duration>,
        _last_modified_at: Instant,
    ) -> Option<Duration> {
        Some(bucket.idle())
    }

    fn expire_after_update(
        &self,
        _key: &String,
        bucket: &Arc<Bucket>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(bucket.idle())
    }
}

struct Memory {
    /// The monotonic clock's zero.
    epoch: Instant,
    buckets: moka::sync::Cache<String, Arc<Bucket>>,
}

impl Memory {
    fn new() -> Memory {
        Memory {
            epoch: Instant::now(),
            buckets: moka::sync::Cache::builder()
                .max_capacity(MEMORY_CAPACITY)
                .expire_after(BucketExpiry)
                .build(),
        }
    }

    fn check(&self, key: &str, params: Params, cost: u64) -> Outcome {
        // A second of slack beyond the burst window covers the moment between
        // the cache's read and the TAT's update.
        let idle_us = params.tau.saturating_add(1_000_000);
        let bucket = self
            .buckets
            .entry_by_ref(key)
            .or_insert_with(|| {
                Arc::new(Bucket {
                    tat: AtomicU64::new(0),
                    idle_us: AtomicU64::new(idle_us),
                })
            })
            .into_value();
        if bucket.idle_us.fetch_max(idle_us, Ordering::Relaxed) < idle_us {
            // The policy's window grew: re-arm the expiry with the new one.
            self.buckets.insert(key.to_owned(), bucket.clone());
        }
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut stored = bucket.tat.load(Ordering::Acquire);
        loop {
            let outcome = gcra(now, stored, params, cost);
            if !outcome.allowed || cost == 0 {
                return outcome;
            }
            match bucket.tat.compare_exchange_weak(
                stored,
                outcome.tat,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return outcome,
                Err(current) => stored = current,
            }
        }
    }
}

// --- Redis -------------------------------------------------------------------

struct RedisBackend {
    client: redis::Client,
    /// Opened on first use; it reconnects by itself once open.
    connection: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    failure: FailurePolicy,
    /// The URL without its password, for logs and `Debug`.
    display_url: String,
    /// The zero of the times below (a monotonic clock).
    epoch: Instant,
    errors: AtomicU64,
    /// While Redis is unreachable: µs since `epoch` until which checks do not
    /// try it; 0 while it is reachable.
    retry_at_us: AtomicU64,
    /// µs since `epoch` of the last warning (0: none yet).
    warned_at_us: AtomicU64,
}

/// Why a check against Redis failed.
enum CheckError {
    Redis(redis::RedisError),
    TimedOut,
}

impl CheckError {
    /// Whether Redis itself is unreachable (rather than a command failing).
    fn unreachable(&self) -> bool {
        match self {
            CheckError::Redis(err) => connection_error(err),
            CheckError::TimedOut => true,
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Redis(err) => write!(f, "{err}"),
            CheckError::TimedOut => write!(f, "no answer within {CHECK_TIMEOUT:?}"),
        }
    }
}

fn connection_error(err: &redis::RedisError) -> bool {
    err.is_io_error() || err.is_timeout() || err.is_unrecoverable_error()
}

/// `redis://user:***@host:port/db`: the URL without its password.
fn display_url(info: &redis::ConnectionInfo) -> String {
    let user = info.redis.username.as_deref().unwrap_or("");
    let auth = match (user, info.redis.password.is_some()) {
        ("", false) => String::new(),
        (user, false) => format!("{user}@"),
        (user, true) => format!("{user}:***@"),
    };
    let db = info.redis.db;
    match &info.addr {
        redis::ConnectionAddr::Unix(path) => format!("unix://{auth}{}?db={db}", path.display()),
        addr => format!("redis://{auth}{addr}/{db}"),
    }
}

impl RedisBackend {
    fn new(client: redis::Client, failure: FailurePolicy) -> RedisBackend {
        RedisBackend {
            display_url: display_url(client.get_connection_info()),
            client,
            connection: tokio::sync::OnceCell::new(),
            script: redis::Script::new(GCRA_LUA),
            failure,
            epoch: Instant::now(),
            errors: AtomicU64::new(0),
            retry_at_us: AtomicU64::new(0),
            warned_at_us: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The connection, opened on first use. Reconnecting is the manager's
    /// job; each of its attempts is a single try, so that no check waits
    /// through a back-off: checks meanwhile follow the failure policy.
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let manager = self
            .connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT);
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    /// Connects ahead of the first check; logs (and does not fail) when Redis
    /// is not there.
    async fn warm_up(&self) {
        let result = match tokio::time::timeout(CONNECT_TIMEOUT, self.connection()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(CheckError::Redis(err)),
            Err(_) => Err(CheckError::TimedOut),
        };
        match result {
            Ok(()) => tracing::info!(redis = %self.display_url, "rate limiter connected to Redis"),
            Err(err) => {
                let now = self.now_us();
                self.retry_at_us
                    .store(now.saturating_add(PROBE_INTERVAL_US), Ordering::Relaxed);
                self.warned_at_us.store(now.max(1), Ordering::Relaxed);
                tracing::warn!(
                    redis = %self.display_url,
                    error = %err,
                    failure = ?self.failure,
                    "rate limiter cannot reach Redis yet; it keeps trying, following the failure policy meanwhile"
                );
            }
        }
    }

    async fn check(&self, key: &str, policy: Policy, params: Params, cost: u64) -> Decision {
        let now = self.now_us();
        if !self.may_try(now) {
            return self.fail(policy, now, None);
        }
        let result = match tokio::time::timeout(CHECK_TIMEOUT, self.eval(key, params, cost)).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(err)) => Err(CheckError::Redis(err)),
            Err(_) => Err(CheckError::TimedOut),
        };
        match result {
            Ok(outcome) => {
                if self.retry_at_us.swap(0, Ordering::Relaxed) != 0 {
                    tracing::info!(redis = %self.display_url, "rate limiter reaches Redis again");
                }
                outcome.decision(policy.limit)
            }
            Err(err) => {
                if err.unreachable() {
                    self.retry_at_us
                        .store(now.saturating_add(PROBE_INTERVAL_US), Ordering::Relaxed);
                }
                self.fail(policy, now, Some(&err))
            }
        }
    }

    /// Whether this check may use Redis: yes while it is reachable; while it
    /// is not, only the first check after each probe interval tries it.
    fn may_try(&self, now: u64) -> bool {
        let retry_at = self.retry_at_us.load(Ordering::Relaxed);
        retry_at == 0
            || (now >= retry_at
                && self
                    .retry_at_us
                    .compare_exchange(
                        retry_at,
                        now.saturating_add(PROBE_INTERVAL_US),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok())
    }

    async fn eval(&self, key: &str, params: Params, cost: u64) -> redis::RedisResult<Outcome> {
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(format!("{REDIS_KEY_PREFIX}{key}"))
            .arg(params.t)
            .arg(params.tau)
            .arg(cost);
        let mut connection = self.connection().await?;
        // Signed on the wire: a bucket whose TAT lies beyond the window (its
        // policy shrank) would give a negative `remaining`, which must read
        // as 0, never as a huge unsigned number.
        let reply: Vec<i64> = match invocation.invoke_async(&mut connection).await {
            Ok(reply) => reply,
            // A dropped connection (Redis restarted, say) is replaced by the
            // manager as it fails: try once more on the new one.
            Err(err) if connection_error(&err) => invocation.invoke_async(&mut connection).await?,
            Err(err) => return Err(err),
        };
        let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
        match reply[..] {
            [allowed, remaining, reset_after_us, retry_after_us] => Ok(Outcome {
                allowed: allowed == 1,
                tat: 0,
                remaining: unsigned(remaining),
                reset_after_us: unsigned(reset_after_us),
                retry_after_us: unsigned(retry_after_us),
            }),
            _ => Err(redis::RedisError::from((
                redis::ErrorKind::TypeError,
                "unexpected reply from the rate-limit script",
            ))),
        }
    }

    /// The failure policy's decision, counted and (now and then) logged.
    fn fail(&self, policy: Policy, now: u64, err: Option<&CheckError>) -> Decision {
        let errors = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        let warned_at = self.warned_at_us.load(Ordering::Relaxed);
        if (warned_at == 0 || now >= warned_at.saturating_add(WARN_INTERVAL_US))
            && self
                .warned_at_us
                .compare_exchange(warned_at, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let error = match err {
                Some(err) => err.to_string(),
                None => "still unreachable".to_owned(),
            };
            tracing::warn!(
                redis = %self.display_url,
                error,
                redis_errors = errors,
                failure = ?self.failure,
                "rate limiter cannot use Redis; following the failure policy"
            );
        }
        match self.failure {
            FailurePolicy::Open => Decision {
                allowed: true,
                limit: policy.limit,
                remaining: policy.limit,
                reset_after_ms: 0,
                retry_after_ms: 0,
            },
            FailurePolicy::Closed => Decision {
                allowed: false,
                limit: policy.limit,
                remaining: 0,
                reset_after_ms: CLOSED_RETRY_AFTER_MS,
                retry_after_ms: CLOSED_RETRY_AFTER_MS,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

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
