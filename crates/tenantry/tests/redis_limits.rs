//! Two real `tenantry` processes sharing one PostgreSQL database and one
//! Redis: rate limits are exact across them; when Redis goes away the
//! servers stay up and follow the configured failure policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TEST_REDIS_URL is not set: run ./scripts/test, which starts redis-server")
    })
}

async fn decide(server: &TestServer, tenant: &str) -> Value {
    let r = server
        .post(
            "/v1/ratelimit",
            json!({"tenant_id": tenant, "limit": "sends_per_hour"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_limit_through_redis() {
    let db = TestDb::new(Backend::Postgres).await;
    let env = [
        ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
        ("TENANTRY_REDIS_URL", &redis_url()),
    ];
    let a = TestServer::start_with(&db, &env).await;
    let b = TestServer::start_with(&db, &env).await;
    let tenant = format!("rl-{}", common::random_suffix());
    a.create_tenant(&tenant).await;
    a.patch(
        &format!("/v1/tenants/{tenant}/config"),
        json!({"rate_limits": {"sends_per_hour": 40}}),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..120 {
        let (client, url) = if i % 2 == 0 {
            (a.client.clone(), a.url("/v1/ratelimit"))
        } else {
            (b.client.clone(), b.url("/v1/ratelimit"))
        };
        let tenant = tenant.clone();
        tasks.push(tokio::spawn(async move {
            let r: Value = client
                .post(url)
                .bearer_auth(common::ROOT_KEY)
                .json(&json!({"tenant_id": tenant, "limit": "sends_per_hour"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["allowed"] == true
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 40,
        "the two processes together admitted exactly the limit"
    );
    let metrics = a
        .client
        .get(a.url("/metrics"))
        .bearer_auth(common::ROOT_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tenantry_ratelimit_backend{backend=\"redis\"} 1"),
        "{metrics}"
    );
}

/// A Redis of this test's own, killed mid-run.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// Kills this Redis (all its counters gone, as after a crash without
    /// persistence) and starts a fresh one on the same port.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self = Self::start_on(self.port);
    }

    fn start_on(port: u16) -> OwnRedis {
        let bin = std::env::var("TEST_REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = std::process::Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnRedis { child, port }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fail_open_and_fail_closed() {
    let mut redis = OwnRedis::start();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let db = TestDb::new(Backend::Postgres).await;
    let open = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_REDIS_URL", &url),
        ],
    )
    .await;
    let closed = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_REDIS_URL", &url),
            ("TENANTRY_REDIS_FAILURE", "closed"),
        ],
    )
    .await;
    for server in [&open, &closed] {
        server.expect_warning("rate limiter cannot use Redis");
    }
    open.create_tenant("acme").await;
    open.patch(
        "/v1/tenants/acme/config",
        json!({"rate_limits": {"sends_per_hour": 2}}),
    )
    .await;
    assert_eq!(decide(&open, "acme").await["allowed"], true);
    assert_eq!(decide(&closed, "acme").await["allowed"], true);
    assert_eq!(
        decide(&open, "acme").await["allowed"],
        false,
        "the shared limit of 2 is used up"
    );

    // Redis goes away mid-run.
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    for _ in 0..3 {
        assert_eq!(
            decide(&open, "acme").await["allowed"],
            true,
            "fail-open admits"
        );
        assert_eq!(
            decide(&closed, "acme").await["allowed"],
            false,
            "fail-closed refuses"
        );
    }
    // Both servers are still up and serve everything else.
    assert_eq!(open.get("/readyz").await.status, StatusCode::OK);
    assert_eq!(closed.get("/v1/tenants/acme").await.status, StatusCode::OK);
    let metrics = open
        .client
        .get(open.url("/metrics"))
        .bearer_auth(common::ROOT_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let errors: u64 = metrics
        .lines()
        .find(|l| l.starts_with("tenantry_ratelimit_redis_errors_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(errors >= 3, "{metrics}");
    // The limiter's own warning, not just any WARN line: a JSON line at
    // level WARN whose message says Redis cannot be used, naming the policy.
    let is_redis_warning = |line: &str| {
        serde_json::from_str::<Value>(line).is_ok_and(|v| {
            let message = v["message"].as_str().unwrap_or("");
            v["level"] == "WARN"
                && (message == "rate limiter cannot use Redis; following the failure policy"
                    || message.starts_with("rate limiter cannot reach Redis yet"))
                && v["failure"] == "Open"
        })
    };
    let mut found = false;
    for _ in 0..40 {
        if open.logs().lines().any(is_redis_warning) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found, "the Redis warning is logged:\n{}", open.logs());

    // Redis is back (empty): both servers use it again by themselves, and a
    // limit shared by the two is exact again. A fail-open decision reports
    // the whole limit remaining; the first one taken from Redis, one less.
    redis.restart();
    open.patch(
        "/v1/tenants/acme/config",
        json!({"rate_limits": {"sends_per_hour": 5}}),
    )
    .await;
    let mut back = false;
    for _ in 0..200 {
        let d = decide(&open, "acme").await;
        if d["remaining"] == 4 {
            back = true;
            break;
        }
        assert_eq!(d["allowed"], true, "fail-open until Redis is back: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        back,
        "the fail-open server uses Redis again:\n{}",
        open.logs()
    );
    let mut back = false;
    for _ in 0..200 {
        if decide(&closed, "acme").await["allowed"] == true {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        back,
        "the fail-closed server admits again:\n{}",
        closed.logs()
    );
    // 2 of 5 taken: exactly 3 more, across both servers.
    let mut admitted = 0;
    for i in 0..10 {
        let server = if i % 2 == 0 { &open } else { &closed };
        if decide(server, "acme").await["allowed"] == true {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 3, "the limit is exact again after the restart");
}
