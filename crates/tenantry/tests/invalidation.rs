//! Cache invalidation across server processes: two servers on one PostgreSQL
//! database, every kind of change made through A and honoured by B, which
//! had the entry cached, within a bound (LISTEN/NOTIFY). SQLite has a single
//! process, so these run on PostgreSQL only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, Reply, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// How long B may take to honour a change made through A.
const BOUND: Duration = Duration::from_secs(2);
/// How long B may take to notice its lost LISTEN connection and listen again.
const RECONNECT_BOUND: Duration = Duration::from_secs(20);

async fn start(db: &TestDb) -> TestServer {
    TestServer::start_with(
        db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_BASE_DOMAIN", "example.test"),
        ],
    )
    .await
}

async fn two_servers() -> (TestDb, TestServer, TestServer) {
    let db = TestDb::new(Backend::Postgres).await;
    let a = start(&db).await;
    let b = start(&db).await;
    (db, a, b)
}

async fn create_key(server: &TestServer, tenant: &str, scopes: &[&str]) -> Value {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "k", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body
}

async fn verify(server: &TestServer, key: &str, scopes: &[&str]) -> Value {
    let reply = server
        .post("/v1/keys/verify", json!({"key": key, "scopes": scopes}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body
}

/// Resolves as the operator: the full snapshot, whatever an anonymous
/// caller may be shown.
async fn resolve(server: &TestServer, body: Value) -> Reply {
    server.post("/v1/resolve", body).await
}

async fn resolve_host(server: &TestServer, host: &str) -> Reply {
    resolve(server, json!({ "host": host })).await
}

/// Which tenant `host` resolves to on `server`, if any.
async fn tenant_of(server: &TestServer, host: &str) -> Option<String> {
    let reply = resolve_host(server, host).await;
    (reply.status == StatusCode::OK)
        .then(|| reply.body["tenant"]["id"].as_str().unwrap().to_owned())
}

fn ok(reply: Reply) -> Reply {
    assert!(reply.status.is_success(), "{reply:?}");
    reply
}

/// Keys: disable, scopes, expiry, rotation; token signing keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_key_changes_reach_every_process() {
    let (_db, a, b) = two_servers().await;
    a.create_tenant("acme").await;
    let created = create_key(&a, "acme", &["tenant:read"]).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let path = format!(
        "/v1/tenants/acme/api-keys/{}",
        created["id"].as_str().unwrap()
    );
    assert_eq!(verify(&b, &key, &[]).await["code"], "VALID");

    // Disable, enable.
    ok(a.patch(&path, json!({"enabled": false})).await);
    within!(
        BOUND,
        "disable",
        verify(&b, &key, &[]).await["code"] == "DISABLED"
    );
    ok(a.patch(&path, json!({"enabled": true})).await);
    within!(
        BOUND,
        "enable",
        verify(&b, &key, &[]).await["code"] == "VALID"
    );

    // Scopes, widened then narrowed.
    assert_eq!(
        verify(&b, &key, &["keys:read"]).await["code"],
        "INSUFFICIENT_SCOPES"
    );
    ok(
        a.patch(&path, json!({"scopes": ["tenant:read", "keys:read"]}))
            .await,
    );
    within!(
        BOUND,
        "widened scopes",
        verify(&b, &key, &["keys:read"]).await["code"] == "VALID"
    );
    ok(a.patch(&path, json!({"scopes": ["tenant:read"]})).await);
    within!(
        BOUND,
        "narrowed scopes",
        verify(&b, &key, &["keys:read"]).await["code"] == "INSUFFICIENT_SCOPES"
    );

    // Expiry set, then removed.
    assert!(verify(&b, &key, &[]).await["expires_at"].is_null());
    ok(
        a.patch(&path, json!({"expires_at": "2999-01-01T00:00:00Z"}))
            .await,
    );
    within!(
        BOUND,
        "expiry set",
        verify(&b, &key, &[]).await["expires_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2999-01-01"))
    );
    ok(a.patch(&path, json!({"expires_at": null})).await);
    within!(
        BOUND,
        "expiry removed",
        verify(&b, &key, &[]).await["expires_at"].is_null()
    );

    // Rotation without overlap: the old key ends at once, the new one works.
    let rotated = ok(a.post(&format!("{path}/rotate"), json!({})).await).body;
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    within!(
        BOUND,
        "rotation",
        verify(&b, &key, &[]).await["code"] == "EXPIRED"
    );
    assert_eq!(verify(&b, &new_key, &[]).await["code"], "VALID");

    // A token signed by a new signing key on A verifies on B.
    let before = token_of(&a, &new_key).await;
    assert_eq!(
        b.call_as(Some(&before), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
    let kid = ok(a.post("/v1/operator/signing-keys/rotate", json!({})).await).body["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let after = token_of(&a, &new_key).await;
    assert!(
        jwt_kid(&after) == kid && jwt_kid(&before) != kid,
        "A signs with the new key"
    );
    within!(
        BOUND,
        "new signing key",
        b.call_as(Some(&after), Method::GET, "/v1/tenants/acme", None)
            .await
            .status
            == StatusCode::OK
    );
    // And B signs with it too.
    assert_eq!(jwt_kid(&token_of(&b, &new_key).await), kid);
}

async fn token_of(server: &TestServer, key: &str) -> String {
    let reply = server
        .call_as(Some(key), Method::POST, "/v1/tokens", Some(json!({})))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["token"].as_str().unwrap().to_owned()
}

fn jwt_kid(token: &str) -> String {
    use base64::Engine;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Tenants and hosts: negative entries, subdomain change, custom domains,
/// configuration and plan changes, delete and purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tenant_changes_reach_every_process() {
    let (_db, a, b) = two_servers().await;

    // Negative entries: unknown on B (cached as such), then created on A.
    for _ in 0..2 {
        assert_eq!(tenant_of(&b, "acme.example.test").await, None);
        assert_eq!(tenant_of(&b, "support.acme.com").await, None);
    }
    ok(a.post(
        "/v1/tenants",
        json!({"id": "acme", "name": "Acme", "plan": "starter"}),
    )
    .await);
    within!(
        Duration::from_secs(1),
        "a new tenant's subdomain",
        tenant_of(&b, "acme.example.test").await.as_deref() == Some("acme")
    );

    // Subdomain change: the old host goes, the new one comes.
    ok(
        a.patch("/v1/tenants/acme", json!({"subdomain": "acme-inc"}))
            .await,
    );
    within!(
        BOUND,
        "subdomain change",
        tenant_of(&b, "acme.example.test").await.is_none()
            && tenant_of(&b, "acme-inc.example.test").await.as_deref() == Some("acme")
    );

    // Custom domain: a pending claim stays unknown on B; verified, it
    // resolves; removed, it goes.
    ok(a.post(
        "/v1/tenants/acme/domains",
        json!({"domain": "support.acme.com"}),
    )
    .await);
    assert_eq!(tenant_of(&b, "support.acme.com").await, None);
    ok(a.post(
        "/v1/tenants/acme/domains/support.acme.com/verify",
        json!({"force": true}),
    )
    .await);
    within!(
        Duration::from_secs(1),
        "a verified domain",
        tenant_of(&b, "support.acme.com").await.as_deref() == Some("acme")
    );
    ok(a.delete("/v1/tenants/acme/domains/support.acme.com").await);
    within!(
        BOUND,
        "a removed domain",
        tenant_of(&b, "support.acme.com").await.is_none()
    );

    // Configuration: B's snapshot carries the tenant's effective config.
    let config = |reply: Reply| reply.body["tenant"]["config"].clone();
    assert_eq!(
        config(resolve_host(&b, "acme-inc.example.test").await)["features"]["analytics"],
        false
    );
    ok(a.patch(
        "/v1/tenants/acme/config",
        json!({"features": {"analytics": true}}),
    )
    .await);
    within!(
        BOUND,
        "a configuration change",
        config(resolve_host(&b, "acme-inc.example.test").await)["features"]["analytics"] == true
    );

    // Plan: a tenant on plan gold, cached on B, then gold changes on A.
    let gold = |agents: u32| {
        json!({"description": "Gold", "quotas": {"messages_outbound": 50000},
               "limits": {"agents": agents}, "rate_limits": {"api_calls_per_hour": 5000},
               "features": {"analytics": true}})
    };
    ok(a.call(Method::PUT, "/v1/plans/gold", Some(gold(7))).await);
    ok(a.post(
        "/v1/tenants",
        json!({"id": "globex", "name": "Globex", "plan": "gold"}),
    )
    .await);
    within!(
        BOUND,
        "a new tenant",
        config(resolve_host(&b, "globex.example.test").await)["limits"]["agents"] == 7
    );
    ok(a.call(Method::PUT, "/v1/plans/gold", Some(gold(9))).await);
    within!(
        BOUND,
        "a plan change",
        config(resolve_host(&b, "globex.example.test").await)["limits"]["agents"] == 9
    );

    // Delete: host and key stop resolving on B.
    let key = create_key(&a, "globex", &[]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(verify(&b, &key, &[]).await["code"], "VALID");
    ok(a.delete("/v1/tenants/globex").await);
    within!(
        BOUND,
        "a deleted tenant",
        tenant_of(&b, "globex.example.test").await.is_none()
            && verify(&b, &key, &[]).await["code"] == "NOT_FOUND"
    );
    // Restored (within its grace period), then purged: gone on B, and a new
    // tenant of the same id does not bring the old key back.
    ok(a.post("/v1/tenants/globex/reactivate", json!({})).await);
    within!(
        BOUND,
        "a restored tenant",
        verify(&b, &key, &[]).await["code"] == "VALID"
    );
    ok(
        a.call(Method::DELETE, "/v1/tenants/globex?purge=true", None)
            .await,
    );
    within!(
        BOUND,
        "a purged tenant",
        verify(&b, &key, &[]).await["code"] == "NOT_FOUND"
            && tenant_of(&b, "globex.example.test").await.is_none()
    );
    a.create_tenant("globex").await;
    within!(
        BOUND,
        "a re-created tenant",
        tenant_of(&b, "globex.example.test").await.as_deref() == Some("globex")
    );
    assert_eq!(verify(&b, &key, &[]).await["code"], "NOT_FOUND");
}

/// PIDs of the backends listening for invalidations on this database.
async fn listeners(admin: &sqlx::PgPool, database: &str) -> Vec<i32> {
    sqlx::query_as::<_, (i32,)>(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%' ORDER BY pid",
    )
    .bind(database)
    .fetch_all(admin)
    .await
    .unwrap()
    .into_iter()
    .map(|(pid,)| pid)
    .collect()
}

/// B's LISTEN connection is killed: B drops everything it cached (it may
/// have missed notifications) and keeps honouring changes once reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_listener_reconnect_drops_caches() {
    let db = TestDb::new(Backend::Postgres).await;
    let database = db.pg_database.clone().unwrap();
    let admin = db.pg_superuser().await;
    let a = start(&db).await;
    let mut of_a: Vec<i32>;
    within!(Duration::from_secs(10), "A's listener", {
        of_a = listeners(&admin, &database).await;
        !of_a.is_empty()
    });
    let b = start(&db).await;
    b.expect_warning("invalidation listener");
    b.expect_warning("cannot listen for cache invalidations yet");
    let mut of_b: Vec<i32>;
    within!(Duration::from_secs(10), "B's listener", {
        of_b = listeners(&admin, &database)
            .await
            .into_iter()
            .filter(|pid| !of_a.contains(pid))
            .collect();
        !of_b.is_empty()
    });

    a.create_tenant("acme").await;
    let name = |reply: Reply| reply.body["tenant"]["name"].clone();
    within!(
        BOUND,
        "the tenant",
        name(resolve_host(&b, "acme.example.test").await) == "Tenant acme"
    );
    // A change behind Tenantry's back (no notification): B keeps its cache.
    let renamed = sqlx::query("UPDATE tenants SET name = 'Renamed' WHERE id = 'acme'")
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(renamed.rows_affected(), 1);
    assert_eq!(
        name(resolve_host(&b, "acme.example.test").await),
        "Tenant acme"
    );

    for pid in &of_b {
        let (killed,): (bool,) = sqlx::query_as("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&admin)
            .await
            .unwrap();
        assert!(killed);
    }
    // Reconnecting takes a new connection and its LISTEN: under load that
    // can take longer than a notification's BOUND, so a generous one here.
    within!(
        RECONNECT_BOUND,
        "caches dropped after the reconnect",
        name(resolve_host(&b, "acme.example.test").await) == "Renamed"
    );
    // Listening again: changes through A still reach B.
    within!(RECONNECT_BOUND, "B listening again", {
        let now = listeners(&admin, &database).await;
        now.iter()
            .any(|pid| !of_a.contains(pid) && !of_b.contains(pid))
    });
    ok(a.post("/v1/tenants/acme/suspend", json!({})).await);
    within!(
        BOUND,
        "a suspension after the reconnect",
        resolve_host(&b, "acme.example.test").await.status == StatusCode::FORBIDDEN
    );
    assert!(
        b.logs().contains("invalidation listener reconnected"),
        "{}",
        b.logs()
    );
}
