//! The Redis backend: the same algorithm in one Lua script on the Redis
//! server, with the server's clock, so every server process shares each
//! bucket exactly; when Redis cannot be reached, the [`FailurePolicy`].

use super::gcra::{Outcome, Params};
use super::{Decision, FailurePolicy, Policy};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Keys in Redis are `tenantry:rl:<key>`.
const REDIS_KEY_PREFIX: &str = "tenantry:rl:";
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

pub(super) struct RedisBackend {
    client: redis::Client,
    /// Opened on first use; it reconnects by itself once open.
    connection: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    pub(super) failure: FailurePolicy,
    /// The URL without its password, for logs and `Debug`.
    pub(super) display_url: String,
    /// The zero of the times below (a monotonic clock).
    epoch: Instant,
    pub(super) errors: AtomicU64,
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
    pub(super) fn new(client: redis::Client, failure: FailurePolicy) -> RedisBackend {
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
    pub(super) async fn warm_up(&self) {
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

    pub(super) async fn check(
        &self,
        key: &str,
        policy: Policy,
        params: Params,
        cost: u64,
    ) -> Decision {
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
