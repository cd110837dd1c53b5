//! The Redis rate limiter against a real Redis: exact across processes, and
//! following its failure policy through an outage.
//!
//! `./scripts/test` starts the shared redis-server (`TEST_REDIS_URL`); the
//! outage test starts and kills its own one (`TEST_REDIS_SERVER_BIN`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenantry_server::limits::ratelimit::{Decision, FailurePolicy, Policy, RateLimiter};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TEST_REDIS_URL is not set: run ./scripts/test, which starts redis-server")
    })
}

/// A key prefix of this test's own, so that runs and tests never share buckets.
fn prefix() -> String {
    format!("test-{:016x}", rand::random::<u64>())
}

const HOUR: Duration = Duration::from_secs(3600);

fn per_hour(limit: u64) -> Policy {
    Policy {
        limit,
        period: HOUR,
    }
}

/// Two limiters, standing in for two server processes.
async fn two_limiters() -> (Arc<RateLimiter>, Arc<RateLimiter>) {
    let url = redis_url();
    let a = RateLimiter::redis(&url, FailurePolicy::Closed)
        .await
        .unwrap();
    let b = RateLimiter::redis(&url, FailurePolicy::Closed)
        .await
        .unwrap();
    assert_eq!(a.backend(), "redis");
    (Arc::new(a), Arc::new(b))
}

/// `tasks` tasks per limiter, each making `calls` checks on `key`; the
/// decisions made.
async fn hammer(
    limiters: &[Arc<RateLimiter>],
    key: &str,
    policy: Policy,
    tasks: usize,
    calls: usize,
) -> Vec<Decision> {
    let mut handles = Vec::new();
    for limiter in limiters {
        for _ in 0..tasks {
            let limiter = limiter.clone();
            let key = key.to_owned();
            handles.push(tokio::spawn(async move {
                let mut decisions = Vec::with_capacity(calls);
                for _ in 0..calls {
                    decisions.push(limiter.check(&key, policy, 1).await);
                }
                decisions
            }));
        }
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_bucket_exactly() {
    let (a, b) = two_limiters().await;
    let key = format!("{}:t:acme:api_calls_per_hour", prefix());
    // 2 × 200 calls (8 concurrent tasks of 25 per limiter) at 50 per hour.
    let decisions = hammer(&[a.clone(), b.clone()], &key, per_hour(50), 8, 25).await;
    assert_eq!(decisions.len(), 400);
    let allowed = decisions.iter().filter(|d| d.allowed).count();
    assert_eq!(allowed, 50, "exactly the limit, across both limiters");
    for d in &decisions {
        assert_eq!(d.limit, 50);
        if d.allowed {
            assert_eq!(d.retry_after_ms, 0);
        } else {
            assert_eq!(d.remaining, 0);
            // One emission interval is 72 s; the test takes far less.
            assert!(
                d.retry_after_ms > 60_000 && d.retry_after_ms <= 72_000,
                "{d:?}"
            );
        }
    }
    // Every remaining count from 49 down to 0 was handed out exactly once.
    let mut remaining: Vec<u64> = decisions
        .iter()
        .filter(|d| d.allowed)
        .map(|d| d.remaining)
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..50).collect::<Vec<_>>());
    // Both see the same empty bucket afterwards.
    for limiter in [&a, &b] {
        let peek = limiter.check(&key, per_hour(50), 0).await;
        assert_eq!(peek.remaining, 0);
        assert!(peek.reset_after_ms > 3_500_000 && peek.reset_after_ms <= 3_600_000);
        assert!(!limiter.check(&key, per_hour(50), 1).await.allowed);
    }
    assert_eq!(a.redis_errors() + b.redis_errors(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_are_independent_and_shared_by_name() {
    let (a, b) = two_limiters().await;
    let prefix = prefix();
    let key_a = format!("{prefix}:t:acme:calls");
    let key_b = format!("{prefix}:t:globex:calls");
    let policy = per_hour(5);
    let (only_a, only_b) = ([a.clone()], [b.clone()]);
    let (on_a, on_b) = tokio::join!(
        hammer(&only_a, &key_a, policy, 2, 10),
        hammer(&only_b, &key_b, policy, 2, 10),
    );
    assert_eq!(on_a.iter().filter(|d| d.allowed).count(), 5);
    assert_eq!(on_b.iter().filter(|d| d.allowed).count(), 5);
    // Each limiter sees what the other took on the other key.
    assert_eq!(a.check(&key_b, policy, 0).await.remaining, 0);
    assert_eq!(b.check(&key_a, policy, 0).await.remaining, 0);
    // A third key is untouched; costs and peeks behave as in memory.
    let key_c = format!("{prefix}:t:initech:calls");
    let d = a.check(&key_c, policy, 3).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 2);
    assert_eq!(b.check(&key_c, policy, 0).await.remaining, 2);
    let too_much = b.check(&key_c, policy, 6).await;
    assert!(!too_much.allowed);
    assert_eq!(too_much.retry_after_ms, u64::MAX);
    assert_eq!(too_much.remaining, 2);
    let over = b.check(&key_c, policy, 3).await;
    assert!(!over.allowed);
    assert!(over.retry_after_ms > 0 && over.retry_after_ms <= 720_000);
    assert!(b.check(&key_c, policy, 2).await.allowed);
    assert!(!a.check(&key_c, policy, 1).await.allowed);
    assert_eq!(a.redis_errors() + b.redis_errors(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refills_on_the_servers_clock() {
    let (a, b) = two_limiters().await;
    let key = format!("{}:t:acme:burst", prefix());
    // 2 per 6 s: T = 3 s, far longer than three checks take even on a
    // loaded machine, so the third is denied.
    let policy = Policy {
        limit: 2,
        period: Duration::from_secs(6),
    };
    assert!(a.check(&key, policy, 1).await.allowed);
    assert!(b.check(&key, policy, 1).await.allowed);
    let denied = a.check(&key, policy, 1).await;
    assert!(!denied.allowed, "the burst is used up: {denied:?}");
    assert_eq!(denied.remaining, 0, "{denied:?}");
    assert!(
        denied.retry_after_ms > 0 && denied.retry_after_ms <= 3000,
        "at most one emission interval: {denied:?}"
    );
    // Once the interval has passed on the Redis server's clock, the other
    // process gets a unit again.
    tokio::time::sleep(Duration::from_millis(denied.retry_after_ms + 100)).await;
    let refilled = b.check(&key, policy, 1).await;
    assert!(refilled.allowed, "refilled: {refilled:?}");
    assert_eq!(a.redis_errors() + b.redis_errors(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shrunk_policy_never_reports_a_huge_remaining() {
    let (a, _) = two_limiters().await;
    let key = format!("{}:t:acme:shrunk", prefix());
    // Drain a bucket of 100 per hour (its TAT an hour ahead), then ask with
    // a policy of 2 per 10 minutes: the stored TAT lies 50 minutes beyond the
    // new window, so the script's `remaining` is negative, which must read as
    // 0 (not as 2^64 - n, nor as the limit).
    assert!(a.check(&key, per_hour(100), 100).await.allowed);
    let shrunk = Policy {
        limit: 2,
        period: Duration::from_secs(600),
    };
    for cost in [1, 0] {
        let d = a.check(&key, shrunk, cost).await;
        assert_eq!(d.remaining, 0, "cost {cost}: {d:?}");
        assert_eq!(d.limit, 2);
        if cost == 1 {
            assert!(!d.allowed, "{d:?}");
            assert!(d.retry_after_ms > 0 && d.retry_after_ms < u64::MAX, "{d:?}");
        }
    }
    assert_eq!(
        a.redis_errors(),
        0,
        "decided by Redis, not the failure policy"
    );
}

/// A redis-server of this test's own, killed when dropped.
struct Server {
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn start(port: u16) -> Server {
        let bin = std::env::var("TEST_REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {bin} ({err}): run ./scripts/test, which installs redis-server"
                )
            });
        let mut server = Server {
            port,
            child: Some(child),
        };
        server.wait_until_up();
        server
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Checks on a new key each time until `recovered` holds, for at most 10 s.
async fn until(limiter: &RateLimiter, recovered: impl Fn(&Decision) -> bool) -> Duration {
    let start = Instant::now();
    let prefix = prefix();
    for attempt in 0.. {
        let d = limiter
            .check(&format!("{prefix}:{attempt}"), per_hour(3), 1)
            .await;
        if recovered(&d) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no recovery within 10 s: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

/// Exactly 3 of 5 checks allowed on a new key: Redis counts again.
async fn counts(limiter: &RateLimiter) {
    let key = format!("{}:counted", prefix());
    let mut allowed = 0;
    for _ in 0..5 {
        if limiter.check(&key, per_hour(3), 1).await.allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_follows_the_failure_policy_then_recovers() {
    let port = free_port();
    let mut server = Server::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let open = RateLimiter::redis(&url, FailurePolicy::Open).await.unwrap();
    let closed = RateLimiter::redis(&url, FailurePolicy::Closed)
        .await
        .unwrap();
    let key = format!("{}:t:acme:calls", prefix());
    let policy = per_hour(3);

    // Up: both count, on one bucket.
    assert_eq!(open.check(&key, policy, 1).await.remaining, 2);
    assert_eq!(closed.check(&key, policy, 1).await.remaining, 1);
    assert_eq!(open.redis_errors() + closed.redis_errors(), 0);

    // Down.
    server.kill();
    let d = open.check(&key, policy, 1).await;
    assert!(d.allowed, "fail open: {d:?}");
    assert_eq!(d.remaining, 3);
    assert!(open.redis_errors() > 0);
    let d = closed.check(&key, policy, 1).await;
    assert!(!d.allowed, "fail closed: {d:?}");
    assert_eq!(d.retry_after_ms, 1000);
    assert!(closed.redis_errors() > 0);
    // Checks while it is down answer at once and keep counting.
    let before = open.redis_errors();
    let start = Instant::now();
    for _ in 0..100 {
        assert!(open.check(&key, policy, 1).await.allowed);
        assert!(!closed.check(&key, policy, 1).await.allowed);
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(open.redis_errors() >= before + 100);

    // Back (empty: it keeps nothing on disk), on the same port.
    let _server = Server::start(port);
    // The open limiter counts again: its decisions come from Redis
    // (`remaining` below the limit) rather than from the failure policy.
    let took = until(&open, |d| d.allowed && d.remaining == 2).await;
    eprintln!("fail-open limiter recovered after {took:?}");
    let took = until(&closed, |d| d.allowed).await;
    eprintln!("fail-closed limiter recovered after {took:?}");
    counts(&open).await;
    counts(&closed).await;
    // And errors stop.
    let (open_errors, closed_errors) = (open.redis_errors(), closed.redis_errors());
    assert!(open.check(&key, policy, 0).await.allowed);
    closed.check(&key, policy, 0).await;
    assert_eq!(open.redis_errors(), open_errors);
    assert_eq!(closed.redis_errors(), closed_errors);

    // A restart between two checks goes unnoticed: the dropped connection is
    // replaced, and the check retried on the new one.
    drop(_server);
    let _server = Server::start(port);
    counts(&open).await;
    counts(&closed).await;
    assert_eq!(open.redis_errors(), open_errors);
    assert_eq!(closed.redis_errors(), closed_errors);
}

#[tokio::test]
async fn starts_while_redis_is_down() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let limiter = RateLimiter::redis(&url, FailurePolicy::Closed)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!limiter.check("k", per_hour(3), 1).await.allowed);
    assert!(limiter.redis_errors() > 0);
    let _server = Server::start(port);
    until(&limiter, |d| d.allowed).await;
    counts(&limiter).await;
}
