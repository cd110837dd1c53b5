//! Several nodes (issue 17): three real server processes over one
//! PostgreSQL database and one Redis, behind a real nginx upstream with
//! round robin (tests/support/cluster.rs). A representative part of the
//! suite runs through the balancer with the single-node tests' assertions;
//! rate limits and quotas stay exact under concurrent load spread over the
//! nodes; webhook deliveries and provisioning steps happen once; a node
//! killed with SIGKILL mid-request leaves exactly one effect for a client
//! that retries its `Idempotency-Key` through another node.
//!
//! PostgreSQL only (SQLite is one process by design): without `TEST_PG_URL`
//! each test says so and passes. Redis (`TEST_REDIS_URL`) and nginx are
//! required, as for tests/redis_limits.rs and tests/gateway.rs.
//!
//! `postgres_propagation_bench` (ignored; run by bench/propagation.sh)
//! measures how long a change takes to be honoured by every node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::cluster;
use crate::common;
use crate::provider_doubles;
use crate::webhook_receiver;

use cluster::{BASE_DOMAIN, Cluster, NODES, postgres_available};
use common::{DbLock, ROOT_KEY, Reply, TestServer, random_suffix};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use webhook_receiver::Receiver;

/// A tenant id of this test's own: Redis is shared by every test.
fn tenant_id(name: &str) -> String {
    format!("{name}-{}", random_suffix())
}

fn ok(reply: Reply) -> Reply {
    assert!(reply.status.is_success(), "{reply:?}");
    reply
}

async fn verify(server: &TestServer, key: &str) -> Value {
    let reply = server.post("/v1/keys/verify", json!({"key": key})).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body
}

/// The tenant's effective configuration in `server`'s resolution snapshot.
async fn snapshot_config(server: &TestServer, tenant: &str) -> Value {
    let reply = server
        .post(
            "/v1/resolve",
            json!({"host": format!("{tenant}.{BASE_DOMAIN}")}),
        )
        .await;
    reply.body["tenant"]["config"].clone()
}

async fn quota(server: &TestServer, body: Value) -> Value {
    let reply = server.post("/v1/quotas/check", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body
}

/// Patches the tenant's configuration through the balancer and waits until
/// every node's snapshot has `section.name` at `value` (a plain number, or
/// a limit object).
async fn configure(
    cluster: &Cluster,
    tenant: &str,
    patch: Value,
    (section, name, value): (&str, &str, u64),
) {
    ok(cluster
        .front
        .patch(&format!("/v1/tenants/{tenant}/config"), patch)
        .await);
    cluster
        .on_every_node("a configuration change", |node| async move {
            let entry = snapshot_config(node, tenant).await[section][name].clone();
            entry == value || entry["limit"] == value
        })
        .await;
}

/// Every node got some of the requests nginx passed on.
fn assert_spread(cluster: &Cluster) {
    let per = cluster.requests_per_node();
    assert!(
        per.iter().all(|n| *n > 0),
        "round robin reached every node: {per:?}\n{}",
        cluster.nginx_logs()
    );
}

/// Tenants, keys, vault, limits and audit through the balancer, with the
/// assertions of tests/tenants.rs, keys.rs, vault.rs, limits.rs, audit.rs;
/// changes checked on every node directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_suite_passes_through_the_balancer() {
    if !postgres_available("postgres_the_suite_passes_through_the_balancer") {
        return;
    }
    let cluster = Cluster::start(&[]).await;
    let server = &cluster.front;
    let acme = tenant_id("acme");

    // Tenants (tests/tenants.rs lifecycle).
    let created = server
        .post(
            "/v1/tenants",
            json!({"id": acme, "name": "Acme Insurance", "plan": "professional", "region": "eu-west-1", "metadata": {"crm": "x"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let t = &created.body;
    assert_eq!(t["id"], acme.as_str());
    assert_eq!(t["subdomain"], acme.as_str());
    assert_eq!(t["status"], "active");
    assert_eq!(t["plan"], "professional");
    assert_eq!(t["region"], "eu-west-1");
    assert_eq!(t["metadata"], json!({"crm": "x"}));
    assert_eq!(t["created_at"], t["updated_at"]);
    for node in cluster.running() {
        let got = node.get(&format!("/v1/tenants/{acme}")).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.body, created.body, "every node reads the same tenant");
    }
    let patched = server
        .patch(
            &format!("/v1/tenants/{acme}"),
            json!({"name": "Acme Ltd", "metadata": {"crm": "y"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");
    assert_eq!(patched.body["name"], "Acme Ltd");
    assert_eq!(
        patched.body["plan"], "professional",
        "fields left out keep their value"
    );
    assert_eq!(patched.body["metadata"], json!({"crm": "y"}));

    // Keys (tests/keys.rs): valid on every node; revoked, refused on every node.
    let created = server
        .post(
            &format!("/v1/tenants/{acme}/api-keys"),
            json!({"name": "backend", "scopes": ["tenant:read", "keys:write"], "environment": "test"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let key = created.body["key"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("tnt_sk_test_") && key.len() == 50, "{key}");
    assert_eq!(created.body["start"], &key[..16]);
    for node in cluster.running() {
        let v = verify(node, &key).await;
        assert_eq!(
            (&v["valid"], &v["code"]),
            (&json!(true), &json!("VALID")),
            "{v}"
        );
        assert_eq!(v["tenant"]["id"], acme.as_str());
    }
    let other = server
        .post(
            &format!("/v1/tenants/{acme}/api-keys"),
            json!({"name": "other", "scopes": ["tenant:read"]}),
        )
        .await;
    let other = other.body["key"].as_str().unwrap().to_owned();
    ok(server
        .post(
            &format!("/v1/tenants/{acme}/api-keys/{key_id}/revoke"),
            json!({}),
        )
        .await);
    cluster
        .on_every_node("a revocation", |node| {
            let key = key.clone();
            async move {
                let v = verify(node, &key).await;
                v["valid"] == false && v["code"] == "REVOKED"
            }
        })
        .await;
    // Cross-tenant: another tenant's key is not found through any node.
    let globex = tenant_id("globex");
    server.create_tenant(&globex).await;
    for node in cluster.running() {
        node.get(&format!("/v1/tenants/{acme}/api-keys/key_nope"))
            .await
            .assert_problem(404, "key_not_found");
        let reply = node
            .call_as(
                Some(&other),
                reqwest::Method::GET,
                &format!("/v1/tenants/{globex}"),
                None,
            )
            .await;
        reply.assert_problem(404, "tenant_not_found");
    }

    // Suspension, honoured everywhere; then reactivation.
    let suspended = server
        .post(&format!("/v1/tenants/{acme}/suspend"), json!({}))
        .await;
    assert_eq!(suspended.body["status"], "suspended");
    cluster
        .on_every_node("a suspension", |node| {
            let other = other.clone();
            async move { verify(node, &other).await["code"] == "TENANT_SUSPENDED" }
        })
        .await;
    let reactivated = server
        .post(&format!("/v1/tenants/{acme}/reactivate"), json!({}))
        .await;
    assert_eq!(reactivated.body["status"], "active");
    cluster
        .on_every_node("a reactivation", |node| {
            let other = other.clone();
            async move { verify(node, &other).await["code"] == "VALID" }
        })
        .await;

    // Vault (tests/vault.rs): put through the balancer, reveal on every node;
    // the secret changed and the tenant's data key rotated, every node
    // reveals the new one.
    // A WhatsApp number is one tenant's: this tenant's own, from its id.
    let n = acme
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % 1_000_000;
    let credential = server
        .post(
            &format!("/v1/tenants/{acme}/credentials"),
            json!({"kind": "whatsapp", "name": "Main number", "data": {
                "business_account_id": format!("102290129{n:06}"),
                "phone_number_id": format!("106540352{n:06}"),
                "access_token": "EAAGm0PX4ZCpsBAKZCZBvery-secret-access-token-4242",
                "app_secret": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "verify_token": "a-verify-token"}}),
        )
        .await;
    assert_eq!(credential.status, StatusCode::CREATED, "{credential:?}");
    assert_eq!(credential.body["data"]["verify_token"], "****oken");
    let cred = credential.body["id"].as_str().unwrap().to_owned();
    let reveal_path = format!("/v1/tenants/{acme}/credentials/{cred}/reveal");
    for node in cluster.running() {
        let plain = node.post(&reveal_path, json!({})).await;
        assert_eq!(plain.status, StatusCode::OK, "{plain:?}");
        assert_eq!(
            plain.body["data"]["access_token"],
            "EAAGm0PX4ZCpsBAKZCZBvery-secret-access-token-4242"
        );
    }
    ok(server
        .patch(
            &format!("/v1/tenants/{acme}/credentials/{cred}"),
            json!({"data": {"access_token": "EAArotated-access-token-000111222333"}}),
        )
        .await);
    let rotated = server
        .post(
            &format!("/v1/operator/tenants/{acme}/data-key/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    assert!(
        rotated.body["data_key_id"]
            .as_str()
            .unwrap()
            .starts_with("dek_")
    );
    for node in cluster.running() {
        let plain = node.post(&reveal_path, json!({})).await;
        assert_eq!(plain.status, StatusCode::OK, "{plain:?}");
        assert_eq!(
            plain.body["data"]["access_token"],
            "EAArotated-access-token-000111222333"
        );
        assert_eq!(
            plain.body["data"]["app_secret"],
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
        );
    }

    // Limits (tests/limits.rs): a rate limit and a hard quota, decided
    // through the balancer once every node has the configuration.
    configure(
        &cluster,
        &acme,
        json!({"rate_limits": {"messages_per_minute": 5},
               "quotas": {"messages_outbound": {"limit": 10}}}),
        ("rate_limits", "messages_per_minute", 5),
    )
    .await;
    let mut allowed = 0;
    let mut last = Value::Null;
    for _ in 0..8 {
        let r = server
            .post(
                "/v1/ratelimit",
                json!({"tenant_id": acme, "limit": "messages_per_minute"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        if r.body["allowed"] == true {
            allowed += 1;
        }
        last = r.body;
    }
    assert_eq!(allowed, 5);
    assert_eq!(last["remaining"], 0);
    assert_eq!(last["limit"], 5);
    let peek = quota(
        server,
        json!({"tenant_id": acme, "meter": "messages_outbound", "quantity": 4}),
    )
    .await;
    assert_eq!(
        (
            &peek["allowed"],
            &peek["used"],
            &peek["remaining"],
            &peek["limit"]
        ),
        (&json!(true), &json!(0), &json!(10), &json!(10))
    );
    let take = quota(
        server,
        json!({"tenant_id": acme, "meter": "messages_outbound", "quantity": 8, "consume": true}),
    )
    .await;
    assert_eq!(
        (&take["allowed"], &take["used"], &take["remaining"]),
        (&json!(true), &json!(8), &json!(2))
    );
    let over = quota(
        server,
        json!({"tenant_id": acme, "meter": "messages_outbound", "quantity": 3, "consume": true}),
    )
    .await;
    assert_eq!(
        (&over["allowed"], &over["used"]),
        (&json!(false), &json!(8)),
        "a hard limit denies"
    );

    // Events of the tenant, in order, whichever node wrote them.
    let events = server
        .get(&format!("/v1/tenants/{acme}/events?limit=100"))
        .await;
    let types: Vec<&str> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        types[..3],
        ["tenant.created", "tenant.updated", "api_key.created"],
        "{types:?}"
    );
    assert!(types.contains(&"tenant.suspended"), "{types:?}");

    // Audit (tests/audit.rs): entries written by all three nodes form one
    // chain, verified by the API and by `tenantry audit verify`.
    assert_spread(&cluster);
    let report = server
        .get(&format!("/v1/tenants/{acme}/audit/verify"))
        .await;
    assert_eq!(report.status, StatusCode::OK, "{report:?}");
    assert_eq!(report.body["ok"], true, "{report:?}");
    assert!(report.body["size"].as_u64().unwrap() >= 8, "{report:?}");
    let (code, out, err) = cluster
        .db
        .run_command(&["audit", "verify", "--database", "--tenant", &acme], &[])
        .await;
    let cli: Value = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("CLI output: {out} {err}"));
    assert_eq!((code, &cli["ok"]), (0, &json!(true)), "{cli}");
    let rows = cluster.db.audit_rows(&acme).await;
    let sequences: Vec<i64> = rows
        .iter()
        .map(|r| r["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sequences,
        (1..=sequences.len() as i64).collect::<Vec<_>>(),
        "one gapless chain"
    );
}

/// N concurrent requests through the balancer, spread over the three nodes:
/// `true` for each admitted.
async fn concurrently(cluster: &Cluster, n: usize, path: &str, body: Value) -> usize {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (client, url, body) = (
            cluster.front.client.clone(),
            cluster.front.url(path),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(ROOT_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let r: Value = r.json().await.unwrap();
            r["allowed"] == true
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        if t.await.unwrap() {
            admitted += 1;
        }
    }
    admitted
}

/// How far a node may under-admit a hard quota: one lease per node when
/// quota leases are configured (`TENANTRY_QUOTA_LEASE`, units a node
/// reserves at a time), none without.
fn quota_lease_bound(cluster: &Cluster) -> usize {
    let lease: usize = cluster
        .env("TENANTRY_QUOTA_LEASE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    lease * NODES
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_limits_are_exact_across_three_nodes() {
    if !postgres_available("postgres_limits_are_exact_across_three_nodes") {
        return;
    }
    let cluster = Cluster::start(&[]).await;
    let tenant = tenant_id("rl");
    cluster.front.create_tenant(&tenant).await;
    configure(
        &cluster,
        &tenant,
        json!({"rate_limits": {"sends_per_hour": 40},
               "quotas": {"messages_outbound": {"limit": 25}}}),
        ("quotas", "messages_outbound", 25),
    )
    .await;
    let before = cluster.requests_per_node();

    // A Redis rate limit: exactly the limit, whichever node decides.
    let admitted = concurrently(
        &cluster,
        120,
        "/v1/ratelimit",
        json!({"tenant_id": tenant, "limit": "sends_per_hour"}),
    )
    .await;
    assert_eq!(
        admitted, 40,
        "three nodes together admitted exactly the limit"
    );

    // A hard quota: never over; under only by what leases allow.
    let admitted = concurrently(
        &cluster,
        60,
        "/v1/quotas/check",
        json!({"tenant_id": tenant, "meter": "messages_outbound", "quantity": 1, "consume": true}),
    )
    .await;
    let bound = quota_lease_bound(&cluster);
    assert!(admitted <= 25, "a hard quota was passed: {admitted} of 25");
    assert!(
        25 - admitted <= bound,
        "{admitted} of 25 admitted; leases allow {bound} fewer"
    );
    let used = cluster
        .front
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": tenant, "meter": "messages_outbound"}),
        )
        .await;
    assert_eq!(used.body["used"], admitted, "{used:?}");
    let after = cluster.requests_per_node();
    assert!(
        before.iter().zip(&after).all(|(b, a)| a > b),
        "the load was spread over every node: {before:?} → {after:?}"
    );
}

/// Webhook deliveries and provisioning steps with three nodes running the
/// workers: each message delivered once, each provider call made once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deliveries_and_provisioning_steps_happen_once() {
    if !postgres_available("postgres_deliveries_and_provisioning_steps_happen_once") {
        return;
    }
    let double = provider_doubles::Double::start().await;
    let mut env = double.env();
    env.push(("TENANTRY_WEBHOOK_POLL_INTERVAL".into(), "50ms".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cluster = Cluster::start(&env).await;
    let server = &cluster.front;

    // Webhooks (tests/webhooks.rs): one endpoint, N events made through the
    // balancer, each delivered once (by webhook-id and by content).
    let acme = tenant_id("acme");
    server.create_tenant(&acme).await;
    let receiver = Receiver::start(vec![]).await;
    let endpoint = server
        .post(
            &format!("/v1/tenants/{acme}/webhook-endpoints"),
            json!({"url": receiver.url, "event_types": ["tenant.updated"]}),
        )
        .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{endpoint:?}");
    let secret = endpoint.body["secret"].as_str().unwrap().to_owned();
    let endpoint = endpoint.body["id"].as_str().unwrap().to_owned();
    const EVENTS: usize = 30;
    for i in 0..EVENTS {
        ok(server
            .patch(
                &format!("/v1/tenants/{acme}"),
                json!({"name": format!("Acme {i}")}),
            )
            .await);
    }
    let delivered = format!(
        "/v1/tenants/{acme}/webhook-endpoints/{endpoint}/messages?status=delivered&limit=100"
    );
    for _ in 0..600 {
        if server.get(&delivered).await.body["data"]
            .as_array()
            .map_or(0, Vec::len)
            == EVENTS
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past every delivery: a second sending would have had time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let hits = receiver.hits();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for hit in &hits {
        assert!(
            hit.ok && webhook_receiver::signed_with(&secret, hit),
            "{hit:?}"
        );
        *by_id.entry(hit.id.clone()).or_default() += 1;
        let body: Value = serde_json::from_str(&hit.body).unwrap();
        let name = body["data"]["changes"]["name"]["to"]
            .as_str()
            .unwrap()
            .to_owned();
        *by_name.entry(name).or_default() += 1;
    }
    assert_eq!(by_id.len(), EVENTS, "events lost: {by_id:?}");
    assert!(by_id.values().all(|c| *c == 1), "sent twice: {by_id:?}");
    assert_eq!(by_name.len(), EVENTS, "{by_name:?}");
    assert!(by_name.values().all(|c| *c == 1), "{by_name:?}");

    // Provisioning (tests/provisioning.rs): workflows started through the
    // balancer, run by the three nodes' workers; no step done twice.
    const WORKFLOWS: usize = 12;
    let mut ids = Vec::new();
    let mut tenants = Vec::new();
    for i in 0..WORKFLOWS {
        let tenant = tenant_id(&format!("prov{i}"));
        let mut body = provider_doubles::request(&tenant);
        body["api_keys"] = json!([]);
        let reply = server.post("/v1/provisioning", body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
        tenants.push(tenant);
    }
    for id in &ids {
        let mut status = Value::Null;
        for _ in 0..600 {
            status = server.get(&format!("/v1/provisioning/{id}")).await.body;
            if status["status"] == "succeeded" || status["status"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status["status"], "succeeded", "{status:#}");
    }
    assert_eq!(
        double.with(|s| s.meta_calls),
        WORKFLOWS,
        "one Meta call each"
    );
    assert_eq!(
        double.with(|s| s.token_calls),
        WORKFLOWS,
        "one token request each"
    );
    for tenant in &tenants {
        let succeeded = cluster
            .db
            .audit_rows(tenant)
            .await
            .iter()
            .filter(|r| r["action"] == "provisioning.step_succeeded")
            .count();
        assert_eq!(succeeded, 8, "{tenant}");
    }
    let workers = cluster
        .running()
        .filter(|s| s.logs().contains("provisioning step succeeded"))
        .count();
    assert!(workers >= 2, "the nodes shared the work ({workers} worked)");
    assert_spread(&cluster);
}

/// A node killed with SIGKILL while it handles a keyed POST: the client's
/// retry through the balancer is answered `409 idempotency_key_in_progress`
/// (with Retry-After) while the dead node's reservation is fresh; once it
/// counts as abandoned (not renewed for twice the request timeout) the
/// retry runs the request, once: exactly one key exists, and later retries
/// replay that answer. The killed node, restarted, rejoins the balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_mid_request_has_one_effect() {
    if !postgres_available("postgres_kill_9_mid_request_has_one_effect") {
        return;
    }
    let mut cluster = Cluster::start(&[("TENANTRY_REQUEST_TIMEOUT", "3s")]).await;
    let acme = tenant_id("acme");
    cluster.front.create_tenant(&acme).await;
    let path = format!("/v1/tenants/{acme}/api-keys");
    let body = json!({"name": "svc", "scopes": ["tenant:read"]});
    let client = cluster.front.client.clone();
    let send = move |base: String| {
        let request = client
            .post(format!("{base}{path}"))
            .bearer_auth(ROOT_KEY)
            .header("Idempotency-Key", "create-svc")
            .json(&body);
        async move { request.send().await }
    };

    // Node 0 reserves the key, then waits on the api_keys table (locked
    // here): the request is in flight when the node dies.
    let lock = DbLock::take(&cluster.db, "api_keys").await;
    let in_flight = tokio::spawn(send(cluster.node(0).base.clone()));
    // In flight: its reservation committed (the operator's keys), its
    // handler's INSERT waiting for the lock.
    let pg = cluster.db.pg_superuser().await;
    until_sql(&pg, "node 0 in the middle of the request", IN_FLIGHT).await;
    cluster.kill9(0).await;
    assert!(
        in_flight.await.unwrap().is_err(),
        "the killed node answered"
    );
    lock.release().await;

    // The retry, through the balancer (which skips the dead node).
    let first = Reply::from(send(cluster.front.base.clone()).await.unwrap()).await;
    first.assert_problem(409, "idempotency_key_in_progress");
    let retry_after: u64 = first.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut answer = first;
    for _ in 0..60 {
        if answer.status != StatusCode::CONFLICT {
            break;
        }
        answer.assert_problem(409, "idempotency_key_in_progress");
        tokio::time::sleep(Duration::from_secs(retry_after)).await;
        answer = Reply::from(send(cluster.front.base.clone()).await.unwrap()).await;
    }
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    assert_eq!(
        cluster.db.count_rows("api_keys", &acme).await,
        1,
        "one effect"
    );
    let again = Reply::from(send(cluster.front.base.clone()).await.unwrap()).await;
    assert_eq!(again.headers["idempotent-replayed"], "true", "{again:?}");
    assert_eq!(again.text, answer.text);
    assert_eq!(
        cluster.db.count_rows("api_keys", &acme).await,
        1,
        "one effect"
    );

    // Node 0 again, on its port: it serves the shared state and nginx
    // sends it requests again.
    cluster.restart(0).await;
    let key = answer.body["key"].as_str().unwrap().to_owned();
    assert_eq!(verify(cluster.node(0), &key).await["code"], "VALID");
    let before = cluster.requests_per_node()[0];
    let mut rejoined = false;
    for _ in 0..100 {
        ok(cluster.front.get(&format!("/v1/tenants/{acme}")).await);
        if cluster.requests_per_node()[0] > before {
            rejoined = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rejoined, "nginx never sent node 0 a request again");
}

/// Node 0's keyed request is in flight: its reservation committed (the
/// operator's keys), its handler's INSERT waiting for the api_keys lock.
const IN_FLIGHT: &str = "SELECT (SELECT count(*) FROM operator_idempotency_keys WHERE state = 'pending') = 1 \
     AND (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
          AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO api_keys%') = 1";

/// Polls a boolean query (as the superuser) until it is true, bounded.
async fn until_sql(pg: &sqlx::PgPool, what: &str, sql: &str) {
    for _ in 0..500 {
        let (done,): (bool,) = sqlx::query_as(sql).fetch_one(pg).await.unwrap();
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never: {what}");
}

/// The worst moment: node 0 has committed the new key but not yet stored
/// the response under the Idempotency-Key when it dies. Its reservation is
/// then taken over once abandoned and the retry runs the handler again: a
/// second key. A known gap (the response is stored in a transaction of its
/// own, after the change's); ignored until the change and its response
/// commit together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known gap: kill -9 between the change's commit and its stored response gives a second effect"]
async fn postgres_kill_9_after_the_commit_has_one_effect() {
    if !postgres_available("postgres_kill_9_after_the_commit_has_one_effect") {
        return;
    }
    let mut cluster = Cluster::start(&[("TENANTRY_REQUEST_TIMEOUT", "3s")]).await;
    let acme = tenant_id("acme");
    cluster.front.create_tenant(&acme).await;
    let url = |base: &str| format!("{base}/v1/tenants/{acme}/api-keys");
    let client = cluster.front.client.clone();
    let send = move |url: String| {
        client
            .post(url)
            .bearer_auth(ROOT_KEY)
            .header("Idempotency-Key", "create-svc")
            .json(&json!({"name": "svc", "scopes": ["tenant:read"]}))
            .send()
    };
    let keys = DbLock::take(&cluster.db, "api_keys").await;
    let in_flight = tokio::spawn(send(url(&cluster.node(0).base)));
    let pg = cluster.db.pg_superuser().await;
    until_sql(&pg, "node 0 in the middle of the request", IN_FLIGHT).await;
    // Hold the idempotency table, then let the change commit: the response
    // cannot be stored.
    let responses = DbLock::take(&cluster.db, "operator_idempotency_keys").await;
    keys.release().await;
    until_sql(
        &pg,
        "the new key committed",
        &format!("SELECT count(*) = 1 FROM api_keys WHERE tenant_id = '{acme}'"),
    )
    .await;
    cluster.kill9(0).await;
    assert!(
        in_flight.await.unwrap().is_err(),
        "the killed node answered"
    );
    responses.release().await;
    let mut answer = Reply::from(send(url(&cluster.front.base)).await.unwrap()).await;
    for _ in 0..60 {
        if answer.status != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        answer = Reply::from(send(url(&cluster.front.base)).await.unwrap()).await;
    }
    assert_eq!(
        cluster.db.count_rows("api_keys", &acme).await,
        1,
        "one effect: {answer:?}"
    );
}

// --- Propagation (bench/propagation.sh) -------------------------------------

const SHOP: &str = "https://shop.acme.test";

/// Polls every node directly, all at once, until `honoured` holds on
/// each; returns the delay from `acknowledged` to the last node's first
/// honouring answer.
async fn until_every_node<'a, F, Fut>(
    cluster: &'a Cluster,
    what: &str,
    acknowledged: Instant,
    honoured: F,
) -> Duration
where
    F: Fn(&'a TestServer) -> Fut,
    Fut: std::future::Future<Output = bool> + 'a,
{
    let honoured = &honoured;
    let polls = cluster.running().map(|node| async move {
        loop {
            if honoured(node).await {
                return acknowledged.elapsed();
            }
            assert!(
                acknowledged.elapsed() < Duration::from_secs(30),
                "a node never honoured a change: {what}"
            );
        }
    });
    futures_util::future::join_all(polls)
        .await
        .into_iter()
        .max()
        .unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Over `PROPAGATION_CHANGES` changes (1,000 by default: key revocations,
/// suspensions and reactivations, configuration changes, widget disables
/// and enables, in turn), the delay from the write's acknowledgement until
/// every node honours it, each node polled directly. Prints p50/p99/max.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: run by bench/propagation.sh"]
async fn postgres_propagation_bench() {
    if !postgres_available("postgres_propagation_bench") {
        return;
    }
    let changes: usize = std::env::var("PROPAGATION_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cluster = Cluster::start(&[]).await;
    let front = &cluster.front;
    let tenant = tenant_id("prop");
    front.create_tenant(&tenant).await;
    let key_of = |reply: Reply| reply.body["key"].as_str().unwrap().to_owned();
    // Suspensions toggle a tenant of their own: a suspended tenant does not
    // resolve, and the other changes read the first one's snapshot.
    let suspendable = tenant_id("prop-susp");
    front.create_tenant(&suspendable).await;
    let probe = key_of(ok(front
        .post(
            &format!("/v1/tenants/{suspendable}/api-keys"),
            json!({"name": "probe", "scopes": []}),
        )
        .await));
    let widget = ok(front
        .post(
            &format!("/v1/tenants/{tenant}/widgets"),
            json!({"name": "Chat", "allowed_origins": [SHOP]}),
        )
        .await)
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A widget token, issued while the widget is enabled (at most 900 s).
    let issue = || async {
        ok(front
            .post(
                &format!("/v1/tenants/{tenant}/widgets/{widget}/tokens"),
                json!({"origin": SHOP, "ttl_seconds": 900}),
            )
            .await)
        .body["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let widget_verifies = |node: &TestServer, token: String| {
        let request = node
            .client
            .post(node.url("/v1/widgets/verify"))
            .json(&json!({"token": token, "origin": SHOP}));
        async move { request.send().await.unwrap().status() }
    };
    let mut token = String::new();

    let mut by_kind: HashMap<&str, Vec<Duration>> = HashMap::new();
    let mut baseline = Vec::new();
    let started = Instant::now();
    for i in 0..changes {
        let round = i / 4;
        let (kind, delay) = match i % 4 {
            0 => {
                // A key, cached as valid on every node, then revoked.
                let created = ok(front
                    .post(
                        &format!("/v1/tenants/{tenant}/api-keys"),
                        json!({"name": format!("k{i}"), "scopes": []}),
                    )
                    .await);
                let (key, id) = (
                    created.body["key"].as_str().unwrap().to_owned(),
                    created.body["id"].as_str().unwrap().to_owned(),
                );
                for node in cluster.running() {
                    assert_eq!(verify(node, &key).await["code"], "VALID");
                }
                ok(front
                    .post(
                        &format!("/v1/tenants/{tenant}/api-keys/{id}/revoke"),
                        json!({}),
                    )
                    .await);
                let at = Instant::now();
                let check = |node| {
                    let key = key.clone();
                    async move { verify(node, &key).await["code"] == "REVOKED" }
                };
                let d = until_every_node(&cluster, "a key revocation", at, &check).await;
                // The floor: the same polls once the change is honoured.
                let floor =
                    until_every_node(&cluster, "a key revocation", Instant::now(), &check).await;
                baseline.push(floor);
                ("key revocation", d)
            }
            1 => {
                // Suspension on even rounds, reactivation on odd ones.
                let (action, code) = if round % 2 == 0 {
                    ("suspend", "TENANT_SUSPENDED")
                } else {
                    ("reactivate", "VALID")
                };
                ok(front
                    .post(&format!("/v1/tenants/{suspendable}/{action}"), json!({}))
                    .await);
                let at = Instant::now();
                let check = |node| {
                    let probe = probe.clone();
                    async move { verify(node, &probe).await["code"] == code }
                };
                let d =
                    until_every_node(&cluster, "a suspension or reactivation", at, &check).await;
                // The floor: the same polls once the change is honoured.
                let floor = until_every_node(
                    &cluster,
                    "a suspension or reactivation",
                    Instant::now(),
                    &check,
                )
                .await;
                baseline.push(floor);
                ("suspension / reactivation", d)
            }
            2 => {
                let limit = 1000 + round;
                ok(front
                    .patch(
                        &format!("/v1/tenants/{tenant}/config"),
                        json!({"rate_limits": {"sends_per_hour": limit}}),
                    )
                    .await);
                let at = Instant::now();
                let check = |node| {
                    let tenant = tenant.clone();
                    async move {
                        let config = snapshot_config(node, &tenant).await;
                        config["rate_limits"]["sends_per_hour"] == limit
                            || config["rate_limits"]["sends_per_hour"]["limit"] == limit
                    }
                };
                let d = until_every_node(&cluster, "a configuration change", at, &check).await;
                // The floor: the same polls once the change is honoured.
                let floor =
                    until_every_node(&cluster, "a configuration change", Instant::now(), &check)
                        .await;
                baseline.push(floor);
                ("configuration change", d)
            }
            _ => {
                let enabled = round % 2 == 1;
                if !enabled {
                    // A fresh token, accepted (and cached) by every node.
                    token = issue().await;
                    for node in cluster.running() {
                        assert_eq!(widget_verifies(node, token.clone()).await, StatusCode::OK);
                    }
                }
                ok(front
                    .patch(
                        &format!("/v1/tenants/{tenant}/widgets/{widget}"),
                        json!({"enabled": enabled}),
                    )
                    .await);
                let want = if enabled {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                };
                let at = Instant::now();
                let check = |node| {
                    let check = widget_verifies(node, token.clone());
                    async move { check.await == want }
                };
                let d = until_every_node(&cluster, "a widget change", at, &check).await;
                // The floor: the same polls once the change is honoured.
                let floor =
                    until_every_node(&cluster, "a widget change", Instant::now(), &check).await;
                baseline.push(floor);
                ("widget disable / enable", d)
            }
        };
        by_kind.entry(kind).or_default().push(delay);
    }
    let elapsed = started.elapsed();
    let mut all: Vec<Duration> = by_kind.values().flatten().copied().collect();
    all.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("changes: {changes} in {:.1} s", elapsed.as_secs_f64());
    println!("| change | n | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by_key(|(k, _)| *k);
    for (kind, mut delays) in kinds {
        delays.sort();
        println!(
            "| {kind} | {} | {:.1} | {:.1} | {:.1} |",
            delays.len(),
            ms(percentile(&delays, 50.0)),
            ms(percentile(&delays, 99.0)),
            ms(*delays.last().unwrap())
        );
    }
    println!(
        "| **all** | {} | {:.1} | {:.1} | {:.1} |",
        all.len(),
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        ms(*all.last().unwrap())
    );
    baseline.sort();
    println!(
        "| baseline: the same polls of every node, change already honoured | {} | {:.1} | {:.1} | {:.1} |",
        baseline.len(),
        ms(percentile(&baseline, 50.0)),
        ms(percentile(&baseline, 99.0)),
        ms(*baseline.last().unwrap())
    );
    assert!(
        percentile(&all, 99.0) <= Duration::from_secs(1),
        "p99 over the 1 s target"
    );
}
