//! Quota leases (issue 16): blocks of a hard quota leased to each server
//! process and consumed in memory, exact across processes, never over the
//! limit, after a crash short by at most one lease.
#![allow(clippy::disallowed_methods)] // The lease table is read below the API on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use std::time::Duration;

/// The most one process leases at a time in these tests.
const LEASE_MAX: &str = "50";
const LEASE_MAX_UNITS: i64 = 50;

on_both_backends!(
    concurrent_consumers_are_exact_and_used_is_truthful,
    graceful_shutdown_returns_the_lease,
    kill_9_loses_at_most_one_lease_and_never_over_admits,
    a_quota_change_reaches_the_lease,
    another_tenant_cannot_consume_or_see_a_lease,
    the_direct_path_is_still_there,
);

async fn start(db: &TestDb, node: &str) -> TestServer {
    TestServer::start_with(
        db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_QUOTA_LEASE_MAX", LEASE_MAX),
            ("TENANTRY_NODE_ID", node),
        ],
    )
    .await
}

async fn set_limit(server: &TestServer, tenant: &str, limit: i64) {
    let reply = server
        .patch(
            &format!("/v1/tenants/{tenant}/config"),
            json!({"quotas": {"messages_outbound": {"limit": limit}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
}

async fn consume(server: &TestServer, tenant: &str, quantity: i64) -> Value {
    let reply = server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": tenant, "meter": "messages_outbound", "quantity": quantity, "consume": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body
}

async fn used(server: &TestServer, tenant: &str) -> i64 {
    let reply = server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": tenant, "meter": "messages_outbound"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["used"].as_i64().unwrap()
}

/// `n` consumes of one unit from `tasks` concurrent clients: how many were
/// allowed.
async fn hammer(server: &TestServer, tenant: &str, tasks: usize, n: usize) -> i64 {
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (client, url) = (server.client.clone(), server.url("/v1/quotas/check"));
        let tenant = tenant.to_owned();
        handles.push(tokio::spawn(async move {
            let mut allowed = 0;
            for _ in 0..n / tasks {
                let r: Value = client
                    .post(&url)
                    .bearer_auth(ROOT_KEY)
                    .json(&json!({"tenant_id": tenant, "meter": "messages_outbound", "consume": true}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(r["allowed"].is_boolean(), "{r}");
                if r["allowed"] == true {
                    allowed += 1;
                }
            }
            allowed
        }));
    }
    let mut allowed = 0;
    for h in handles {
        allowed += h.await.unwrap();
    }
    allowed
}

/// The month counter and the lease rows of `tenant` (holder, granted,
/// consumed, returned), read below the API.
async fn ledger(db: &TestDb, tenant: &str) -> (i64, Vec<(String, i64, i64, i64)>) {
    let counter_sql = "SELECT CAST(COALESCE(SUM(value), 0) AS BIGINT) FROM usage_counters WHERE tenant_id = $1 AND meter = 'messages_outbound' AND granularity = 'month'";
    let leases_sql = "SELECT holder, granted, consumed, returned FROM quota_leases WHERE tenant_id = $1 AND meter = 'messages_outbound' ORDER BY holder";
    macro_rules! read {
        ($pool:expr) => {{
            let pool = $pool;
            let (counter,): (i64,) = sqlx::query_as(counter_sql)
                .bind(tenant)
                .fetch_one(&pool)
                .await
                .unwrap();
            let leases = sqlx::query_as(leases_sql)
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            (counter, leases)
        }};
    }
    match db.backend {
        Backend::Sqlite => read!(db.sqlite_reader().await),
        Backend::Postgres => read!(db.pg_superuser().await),
    }
}

/// Polls until `check` holds (a background return, an invalidation), at
/// most 10 s; no timing is asserted.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

async fn concurrent_consumers_are_exact_and_used_is_truthful(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, "node-a").await;
    server.create_tenant("acme").await;
    set_limit(&server, "acme", 300).await;
    // One unit then ten: `used` counts what was consumed, not what is leased.
    assert_eq!(consume(&server, "acme", 1).await["used"], 1);
    let ten = consume(&server, "acme", 10).await;
    assert_eq!(
        (
            ten["allowed"].clone(),
            ten["used"].clone(),
            ten["remaining"].clone()
        ),
        (json!(true), json!(11), json!(289))
    );
    assert_eq!(used(&server, "acme").await, 11);
    let (counter, leases) = ledger(&db, "acme").await;
    assert!(
        counter >= 11,
        "the counter bounds what was admitted: {counter}"
    );
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert!(leases[0].0.starts_with("node-a/"), "{leases:?}");

    // 16 clients ask for 400 units of the 289 left: exactly 289 allowed.
    let allowed = hammer(&server, "acme", 16, 400).await;
    assert_eq!(allowed, 289, "exactly the limit was admitted");
    assert_eq!(used(&server, "acme").await, 300);
    let over = consume(&server, "acme", 1).await;
    assert_eq!(
        (
            over["allowed"].clone(),
            over["used"].clone(),
            over["remaining"].clone()
        ),
        (json!(false), json!(300), json!(0))
    );
    let (counter, _) = ledger(&db, "acme").await;
    assert_eq!(counter, 300);

    if backend == Backend::Postgres {
        // Two processes on one database: together never over the limit, and
        // once the idle leases went back, exactly the limit.
        let other = start(&db, "node-b").await;
        server.create_tenant("globex").await;
        set_limit(&server, "globex", 1000).await;
        let (a, b) = tokio::join!(
            hammer(&server, "globex", 8, 560),
            hammer(&other, "globex", 8, 560)
        );
        assert!(a + b <= 1000, "{a} + {b} passed the limit");
        let (counter, leases) = ledger(&db, "globex").await;
        assert!(counter <= 1000, "{counter}");
        let held: i64 = leases.iter().map(|(_, g, _, r)| g - r).sum::<i64>() - (a + b);
        assert!(
            1000 - (a + b) <= 2 * LEASE_MAX_UNITS,
            "under-admitted by more than one lease per process: {a} + {b}"
        );
        assert!(held >= 0, "{leases:?}");
        // Idle leases go back: then the rest can be had, on either node.
        eventually("idle leases returned", || async {
            ledger(&db, "globex").await.0 == a + b
        })
        .await;
        let rest = hammer(&other, "globex", 1, 1000 - (a + b) as usize + 5).await;
        assert_eq!(a + b + rest, 1000, "exact once leases are back");
        assert_eq!(used(&server, "globex").await, 1000);
        assert_eq!(used(&other, "globex").await, 1000);
    }
}

async fn graceful_shutdown_returns_the_lease(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = start(&db, "node-a").await;
    server.create_tenant("acme").await;
    set_limit(&server, "acme", 10_000).await;
    for _ in 0..5 {
        assert_eq!(consume(&server, "acme", 2).await["allowed"], true);
    }
    let (counter, leases) = ledger(&db, "acme").await;
    assert!(counter > 10, "units are leased ahead: {counter}");
    assert_eq!(server.stop().await, Some(0));
    let (counter, leases_after) = ledger(&db, "acme").await;
    assert_eq!(counter, 10, "the unused units went back: {leases:?}");
    let (_, granted, consumed, returned) = leases_after[0].clone();
    assert_eq!((consumed, granted - returned), (10, 10), "{leases_after:?}");
    // A new process starts from exactly what was used.
    let server = start(&db, "node-a").await;
    assert_eq!(used(&server, "acme").await, 10);
    // Its own lease is a new holder: node-a's earlier row is left as it was.
    consume(&server, "acme", 1).await;
    let (_, leases) = ledger(&db, "acme").await;
    assert_eq!(leases.len(), 2, "{leases:?}");
    assert!(leases.contains(&leases_after[0]), "{leases:?}");
}

async fn kill_9_loses_at_most_one_lease_and_never_over_admits(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = start(&db, "node-a").await;
    server.create_tenant("acme").await;
    set_limit(&server, "acme", 200).await;
    let first = hammer(&server, "acme", 4, 60).await;
    assert_eq!(first, 60);
    server.kill9().await;
    let (counter, leases) = ledger(&db, "acme").await;
    let unreturned: i64 = leases.iter().map(|(_, g, _, r)| g - r).sum();
    let lost = counter - first;
    assert!(
        (0..=LEASE_MAX_UNITS).contains(&lost),
        "lost {lost} units: more than one lease ({leases:?})"
    );
    assert!(
        unreturned >= lost,
        "the lease row shows the loss: {leases:?}"
    );

    let server = start(&db, "node-a").await;
    let second = hammer(&server, "acme", 4, 240).await;
    let admitted = first + second;
    assert!(admitted <= 200, "over-admitted after a crash: {admitted}");
    assert_eq!(
        admitted,
        200 - lost,
        "short by exactly what the dead node held"
    );
    assert_eq!(consume(&server, "acme", 1).await["allowed"], false);
}

async fn a_quota_change_reaches_the_lease(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, "node-a").await;
    // On PostgreSQL the change is made through another process, which the
    // lease holder hears of through the invalidation channel.
    let other = match backend {
        Backend::Postgres => Some(start(&db, "node-b").await),
        Backend::Sqlite => None,
    };
    let changer = other.as_ref().unwrap_or(&server);
    server.create_tenant("acme").await;
    set_limit(changer, "acme", 1000).await;
    assert_eq!(consume(&server, "acme", 5).await["allowed"], true);
    assert!(ledger(&db, "acme").await.0 > 5, "a lease is held");
    // Lowered under what is used: the holder admits nothing more.
    set_limit(changer, "acme", 5).await;
    eventually("the lowered limit reached the lease holder", || async {
        let r = consume(&server, "acme", 1).await;
        assert!(r["allowed"] == false || r["limit"] == 1000, "{r}");
        r["allowed"] == false && r["limit"] == 5
    })
    .await;
    assert_eq!(ledger(&db, "acme").await.0, 5, "the held units went back");
    assert_eq!(used(&server, "acme").await, 5);
    // Raised again: admitted again, up to the new limit only.
    set_limit(changer, "acme", 8).await;
    eventually("the raised limit reached the lease holder", || async {
        consume(&server, "acme", 1).await["allowed"] == true
    })
    .await;
    assert_eq!(hammer(&server, "acme", 2, 10).await, 2);
    assert_eq!(used(&server, "acme").await, 8);
    // Raised well past one lease: a consume bigger than any block is one
    // block of its own size.
    set_limit(changer, "acme", 2000).await;
    eventually("the raised limit reached the lease holder", || async {
        let r = consume(&server, "acme", 1000).await;
        r["allowed"] == true
    })
    .await;
    assert_eq!(used(&server, "acme").await, 1008);
    assert!(ledger(&db, "acme").await.0 <= 2000);
}

async fn another_tenant_cannot_consume_or_see_a_lease(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, "node-a").await;
    for tenant in ["acme", "globex"] {
        server.create_tenant(tenant).await;
        set_limit(&server, tenant, 100).await;
    }
    assert_eq!(consume(&server, "acme", 3).await["allowed"], true);
    let key = server
        .post(
            "/v1/tenants/globex/api-keys",
            json!({"name": "k", "scopes": ["usage:write", "usage:read"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // globex's key names acme: not found, nothing consumed.
    let reply = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/quotas/check",
            Some(json!({"tenant_id": "acme", "meter": "messages_outbound", "consume": true})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
    // Its own quota is its own, whatever acme's lease holds.
    let own = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/quotas/check",
            Some(json!({"meter": "messages_outbound", "quantity": 100, "consume": true})),
        )
        .await;
    assert_eq!(
        (own.body["allowed"].clone(), own.body["used"].clone()),
        (json!(true), json!(100)),
        "{own:?}"
    );
    assert_eq!(used(&server, "acme").await, 3);
    let anonymous = server
        .call_as(
            None,
            Method::POST,
            "/v1/quotas/check",
            Some(json!({"tenant_id": "acme", "meter": "messages_outbound", "consume": true})),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{anonymous:?}");

    if backend == Backend::Postgres {
        // Row-level security as the role requests run as: globex's context
        // sees no lease of acme, and cannot write one.
        let admin = db.pg_superuser().await;
        let (forced,): (bool,) = sqlx::query_as(
            "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'quota_leases'",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        assert!(forced);
        let mut conn = admin.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute("SET LOCAL ROLE tenantry_app").await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', 'globex', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let visible: Vec<(String,)> = sqlx::query_as("SELECT tenant_id FROM quota_leases")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert!(visible.iter().all(|(t,)| t == "globex"), "{visible:?}");
        let stolen =
            sqlx::query("UPDATE quota_leases SET returned = granted WHERE tenant_id = 'acme'")
                .execute(&mut *tx)
                .await
                .unwrap();
        assert_eq!(stolen.rows_affected(), 0);
        let err = sqlx::query(
            "INSERT INTO quota_leases (tenant_id, meter, period_start, holder, node_id, granted, consumed, returned, created_at, updated_at) \
             VALUES ('acme', 'messages_outbound', now(), 'evil', 'evil', 0, 0, 0, now(), now())",
        )
        .execute(&mut *tx)
        .await
        .expect_err("RLS refuses another tenant's lease");
        assert!(err.to_string().contains("row-level security"), "{err}");
        tx.rollback().await.unwrap();
        drop(conn);
        admin.close().await;
    }
}

/// `TENANTRY_QUOTA_LEASE_MAX=0`: the direct path, one statement per
/// consume, exact as before and no lease row.
async fn the_direct_path_is_still_there(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_QUOTA_LEASE_MAX", "0"),
        ],
    )
    .await;
    server.create_tenant("acme").await;
    set_limit(&server, "acme", 20).await;
    assert_eq!(hammer(&server, "acme", 4, 40).await, 20);
    let (counter, leases) = ledger(&db, "acme").await;
    assert_eq!((counter, leases.len()), (20, 0));
}
