//! Outbound webhooks against local receivers, on both backends: every
//! delivery is verified with an implementation of the Standard Webhooks
//! signature written here (HMAC-SHA256 and Ed25519 from their own crates,
//! checked against the spec's published test vector), tenant isolation,
//! retries of a flaky receiver, 410, rotation overlap, fifo under failure,
//! replay, SSRF refusals, cross-tenant 404s, and a kill -9 mid-delivery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::webhook_receiver;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use webhook_receiver::{Answer, Hit, Receiver, signed_with};

on_both_backends!(
    deliveries_are_signed_and_tenants_isolated,
    a_flaky_receiver_is_retried_and_gone_disables,
    rotation_overlap_signs_with_both_secrets,
    fifo_holds_behind_a_failure_and_replay_redelivers,
    internal_addresses_are_refused,
    other_tenants_endpoints_are_not_found,
    kill_9_mid_delivery_loses_nothing,
    two_nodes_share_the_work,
    rate_limit_spaces_deliveries_and_failing_endpoints_are_disabled,
    secrets_survive_the_retirement_of_their_kek,
);

#[test]
fn the_verifier_passes_the_spec_test_vector() {
    let hit = Hit {
        ok: true,
        id: "msg_p5jXN8AQM9LWM0D4loKWxJek".into(),
        timestamp: "1614265330".into(),
        signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
        body: r#"{"test": 2432232314}"#.into(),
    };
    assert!(signed_with("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &hit));
    assert!(!signed_with("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &hit));
}

const ALLOW: (&str, &str) = ("TENANTRY_OUTBOUND_ALLOWLIST", "127.0.0.1/32");
const FAST: (&str, &str) = ("TENANTRY_WEBHOOK_POLL_INTERVAL", "50ms");

async fn server(db: &TestDb, extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![("TENANTRY_ROOT_KEY", ROOT_KEY), ALLOW, FAST];
    env.extend_from_slice(extra);
    TestServer::start_with(db, &env).await
}

async fn endpoint(server: &TestServer, path: &str, body: Value) -> (String, String) {
    let reply = server.post(path, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let secret = reply.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert!(STANDARD.decode(&secret[6..]).unwrap().len() >= 24);
    (reply.body["id"].as_str().unwrap().to_owned(), secret)
}

/// A receiver behind an operator endpoint for one event type.
async fn operator_receiver(server: &TestServer, kind: &str) -> Receiver {
    let r = Receiver::start(vec![]).await;
    endpoint(
        server,
        "/v1/webhook-endpoints",
        json!({ "url": r.url, "event_types": [kind] }),
    )
    .await;
    r
}

/// An endpoint of tenant acme for one event type.
async fn acme_endpoint(server: &TestServer, r: &Receiver, kind: &str) -> (String, String) {
    endpoint(
        server,
        "/v1/tenants/acme/webhook-endpoints",
        json!({ "url": r.url, "event_types": [kind] }),
    )
    .await
}

async fn rename(server: &TestServer, tenant: &str, name: &str) {
    let reply = server
        .patch(&format!("/v1/tenants/{tenant}"), json!({ "name": name }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
}

fn body(hit: &Hit) -> Value {
    serde_json::from_str(&hit.body).unwrap()
}

async fn deliveries_are_signed_and_tenants_isolated(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db, &[]).await;
    let types = server.get("/v1/event-types").await;
    let names: Vec<&str> = types.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in [
        "tenant.created",
        "message.received",
        "provisioning.step_failed",
        "keyring.rotated",
    ] {
        assert!(names.contains(&name), "{name} missing");
    }
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let a = Receiver::start(vec![]).await;
    let op = Receiver::start(vec![]).await;
    let (a_id, a_secret) = endpoint(
        &server,
        "/v1/tenants/acme/webhook-endpoints",
        json!({ "url": a.url, "event_types": ["tenant.updated"], "asymmetric_signing": true }),
    )
    .await;
    let (_, op_secret) = endpoint(
        &server,
        "/v1/webhook-endpoints",
        json!({ "url": op.url, "event_types": ["tenant.updated"] }),
    )
    .await;
    // Unknown event types are refused.
    server
        .post(
            "/v1/tenants/acme/webhook-endpoints",
            json!({ "url": a.url, "event_types": ["tenant.exploded"] }),
        )
        .await
        .assert_invalid("event_types[0]");
    rename(&server, "globex", "Globex 2").await;
    rename(&server, "acme", "Acme 2").await;
    let op_hits = op.wait_for(2).await;
    let a_hits = a.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Tenant A's endpoint never receives B's events.
    let a_hits_now = a.hits();
    assert_eq!(a_hits_now.len(), 1, "{a_hits_now:?}");
    assert_eq!(body(&a_hits[0])["tenant_id"], "acme");
    assert_eq!(body(&a_hits[0])["type"], "tenant.updated");
    assert!(body(&a_hits[0])["data"]["changes"]["name"].is_object());
    assert!(signed_with(&a_secret, &a_hits[0]));
    assert!(!signed_with(&op_secret, &a_hits[0]));
    // v1a: verifies with the published public key.
    let view = server
        .get(&format!("/v1/tenants/acme/webhook-endpoints/{a_id}"))
        .await;
    let public = view.body["public_key"].as_str().unwrap();
    let public = STANDARD
        .decode(public.strip_prefix("whpk_").unwrap())
        .unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
    let v1a = a_hits[0]
        .signature
        .split(' ')
        .find_map(|s| s.strip_prefix("v1a,"))
        .expect("a v1a signature");
    let sig = ed25519_dalek::Signature::from_slice(&STANDARD.decode(v1a).unwrap()).unwrap();
    let content = format!(
        "{}.{}.{}",
        a_hits[0].id, a_hits[0].timestamp, a_hits[0].body
    );
    assert!(key.verify_strict(content.as_bytes(), &sig).is_ok());
    let jwks = server
        .get(&format!(
            "/v1/tenants/acme/webhook-endpoints/{a_id}/jwks.json"
        ))
        .await;
    assert_eq!(jwks.body["keys"][0]["crv"], "Ed25519");
    // The operator endpoint gets both tenants' events.
    let tenants: Vec<Value> = op_hits
        .iter()
        .map(|h| body(h)["tenant_id"].clone())
        .collect();
    assert!(tenants.contains(&json!("acme")) && tenants.contains(&json!("globex")));
    assert!(op_hits.iter().all(|h| signed_with(&op_secret, h)));
    // The webhook-id is the event's id in the tenant's history.
    let events = server.get("/v1/tenants/acme/events").await;
    let ids: Vec<&str> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&a_hits[0].id.as_str()), "{ids:?}");
    // The delivery log.
    let log = server
        .get(&format!(
            "/v1/tenants/acme/webhook-endpoints/{a_id}/messages?status=delivered"
        ))
        .await;
    assert_eq!(log.status, StatusCode::OK, "{log:?}");
    let message = &log.body["data"][0];
    assert_eq!(message["event_id"], a_hits[0].id.as_str());
    let detail = server
        .get(&format!(
            "/v1/tenants/acme/webhook-endpoints/{a_id}/messages/{}",
            message["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(detail.body["attempt_log"][0]["status_code"], 200);
    assert_eq!(detail.body["attempt_log"][0]["response_body"], "ok");
    // The secret is in no response after creation, and not in the audit log.
    assert!(!view.text.contains(&a_secret[6..]));
    for row in db.audit_rows("acme").await {
        assert!(!row.to_string().contains(&a_secret[6..]));
    }
}

async fn a_flaky_receiver_is_retried_and_gone_disables(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(
        &db,
        &[
            (
                "TENANTRY_WEBHOOK_RETRY_SCHEDULE",
                "0s,100ms,100ms,100ms,100ms",
            ),
            ("TENANTRY_WEBHOOK_TIMEOUT", "1s"),
            ("TENANTRY_WEBHOOK_LEASE", "5s"),
        ],
    )
    .await;
    server.expect_warning("webhook endpoint disabled");
    server.create_tenant("acme").await;
    let flaky = Receiver::start(vec![
        Answer::Status(500, vec![]),
        Answer::Hang(Duration::from_secs(3)),
        Answer::Status(429, vec![("retry-after", "1".into())]),
        Answer::Status(503, vec![]),
    ])
    .await;
    let ops = operator_receiver(&server, "webhook_endpoint.disabled").await;
    let (id, secret) = acme_endpoint(&server, &flaky, "tenant.updated").await;
    rename(&server, "acme", "Acme 2").await;
    let hits = flaky.wait_for(5).await;
    // The same webhook-id on every retry, each signed.
    assert!(hits.iter().all(|h| h.id == hits[0].id), "{hits:?}");
    assert!(hits.iter().all(|h| signed_with(&secret, h)));
    // 429 Retry-After: 1 held the next attempt back at least a second.
    let t3: i64 = hits[3].timestamp.parse().unwrap();
    let t2: i64 = hits[2].timestamp.parse().unwrap();
    assert!(t3 - t2 >= 1, "{hits:?}");
    let path = format!("/v1/tenants/acme/webhook-endpoints/{id}/messages");
    let mut delivered = Value::Null;
    for _ in 0..100 {
        let page = server.get(&path).await;
        if page.body["data"][0]["status"] == "delivered" {
            delivered = page.body["data"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered["attempts"], 5, "{delivered}");
    let detail = server
        .get(&format!("{path}/{}", delivered["id"].as_str().unwrap()))
        .await;
    let log = detail.body["attempt_log"].as_array().unwrap();
    assert_eq!(log[0]["status_code"], 500);
    assert!(log[1]["status_code"].is_null() && log[1]["error"].as_str().is_some());
    assert_eq!(log[2]["status_code"], 429);
    assert_eq!(log[4]["status_code"], 200);
    // 410 Gone disables the endpoint at once, with an operator event.
    flaky
        .script
        .lock()
        .unwrap()
        .push_back(Answer::Status(410, vec![]));
    rename(&server, "acme", "Acme 3").await;
    let op_hits = ops.wait_for(1).await;
    let event = body(&op_hits[0]);
    assert_eq!(event["type"], "webhook_endpoint.disabled");
    assert_eq!(event["data"]["endpoint_id"], id.as_str());
    assert_eq!(event["data"]["reason"], "gone");
    assert!(event["tenant_id"].is_null());
    let view = server
        .get(&format!("/v1/tenants/acme/webhook-endpoints/{id}"))
        .await;
    assert_eq!(view.body["enabled"], false);
    assert_eq!(view.body["disabled_reason"], "gone");
    rename(&server, "acme", "Acme 4").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        flaky.hits().len(),
        6,
        "a disabled endpoint received a delivery"
    );
}

async fn rotation_overlap_signs_with_both_secrets(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db, &[]).await;
    server.create_tenant("acme").await;
    let r = Receiver::start(vec![]).await;
    let (id, old) = acme_endpoint(&server, &r, "tenant.updated").await;
    let rotated = server
        .post(
            &format!("/v1/tenants/acme/webhook-endpoints/{id}/secret/rotate"),
            json!({ "overlap_seconds": 3600 }),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    rename(&server, "acme", "Acme 2").await;
    let hit = &r.wait_for(1).await[0];
    assert!(signed_with(&new, hit) && signed_with(&old, hit), "{hit:?}");
    // With no overlap the old secret stops signing at once.
    let again = server
        .post(
            &format!("/v1/tenants/acme/webhook-endpoints/{id}/secret/rotate"),
            json!({ "overlap_seconds": 0 }),
        )
        .await;
    let newest = again.body["secret"].as_str().unwrap().to_owned();
    rename(&server, "acme", "Acme 3").await;
    let hit = &r.wait_for(2).await[1];
    assert!(signed_with(&newest, hit));
    assert!(!signed_with(&new, hit) && !signed_with(&old, hit));
}

async fn fifo_holds_behind_a_failure_and_replay_redelivers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(
        &db,
        &[("TENANTRY_WEBHOOK_RETRY_SCHEDULE", "0s,300ms,300ms,300ms")],
    )
    .await;
    server.create_tenant("acme").await;
    let r = Receiver::start(vec![
        Answer::Status(500, vec![]),
        Answer::Status(500, vec![]),
    ])
    .await;
    let (id, _) = endpoint(
        &server,
        "/v1/tenants/acme/webhook-endpoints",
        json!({ "url": r.url, "event_types": ["tenant.updated"], "ordering": "fifo" }),
    )
    .await;
    for i in 0..4 {
        rename(&server, "acme", &format!("Acme {i}")).await;
    }
    let hits = r.wait_for(6).await;
    // The first event failed twice; nothing behind it went out meanwhile.
    let names: Vec<String> = hits
        .iter()
        .map(|h| {
            body(h)["data"]["changes"]["name"]["to"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        ["Acme 0", "Acme 0", "Acme 0", "Acme 1", "Acme 2", "Acme 3"]
    );
    // Replay one message: the same webhook-id again.
    let page = server
        .get(&format!("/v1/tenants/acme/webhook-endpoints/{id}/messages"))
        .await;
    let newest = &page.body["data"][0];
    for _ in 0..100 {
        let page = server
            .get(&format!(
                "/v1/tenants/acme/webhook-endpoints/{id}/messages?status=delivered"
            ))
            .await;
        if page.body["data"].as_array().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let replay = server
        .post(
            &format!(
                "/v1/tenants/acme/webhook-endpoints/{id}/messages/{}/replay",
                newest["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(replay.status, StatusCode::ACCEPTED, "{replay:?}");
    let hits = r.wait_for(7).await;
    assert_eq!(hits[6].id, newest["event_id"].as_str().unwrap());
    // A time range: everything again.
    let range = server
        .post(
            &format!("/v1/tenants/acme/webhook-endpoints/{id}/replay"),
            json!({ "since": "2000-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(range.status, StatusCode::ACCEPTED, "{range:?}");
    r.wait_for(7 + range.body["replayed"].as_u64().unwrap() as usize)
        .await;
}

async fn internal_addresses_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    // No allowlist: the addresses are those of a production server.
    let server = TestServer::start_with(&db, &[("TENANTRY_ROOT_KEY", ROOT_KEY), FAST]).await;
    server.create_tenant("acme").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/",
        "https://100.64.0.1/",
    ] {
        server
            .post("/v1/tenants/acme/webhook-endpoints", json!({ "url": url }))
            .await
            .assert_invalid("url");
    }
    // A name that resolves to 127.0.0.1 is refused when dialled.
    let (id, _) = endpoint(
        &server,
        "/v1/tenants/acme/webhook-endpoints",
        json!({ "url": "https://localhost:9/hook", "event_types": ["tenant.updated"] }),
    )
    .await;
    rename(&server, "acme", "Acme 2").await;
    let path = format!("/v1/tenants/acme/webhook-endpoints/{id}/messages");
    let mut message = Value::Null;
    for _ in 0..200 {
        let page = server.get(&path).await;
        if page.body["data"][0]["status"] == "failed" {
            message = page.body["data"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = message["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("127.0.0.1"), "{message}");
    drop(server);
    // A redirect to an internal address is not followed.
    let target = Receiver::start(vec![]).await;
    let redirect = Receiver::start(vec![Answer::Status(
        302,
        vec![("location", target.url.clone())],
    )])
    .await;
    let server = server_with_schedule(&db, "0s").await;
    let (id, _) = acme_endpoint(&server, &redirect, "tenant.updated").await;
    rename(&server, "acme", "Acme 3").await;
    redirect.wait_for(1).await;
    let path = format!("/v1/tenants/acme/webhook-endpoints/{id}/messages");
    for _ in 0..100 {
        if server.get(&path).await.body["data"][0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = server.get(&path).await;
    assert_eq!(page.body["data"][0]["last_status"], 302, "{page:?}");
    assert!(target.hits().is_empty(), "the redirect was followed");
}

/// An allowlisted server (the redirect test needs to reach its receiver)
/// that gives up after the schedule's attempts.
async fn server_with_schedule(db: &TestDb, schedule: &str) -> TestServer {
    server(db, &[("TENANTRY_WEBHOOK_RETRY_SCHEDULE", schedule)]).await
}

async fn other_tenants_endpoints_are_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db, &[]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let r = Receiver::start(vec![]).await;
    let (id, _) = endpoint(
        &server,
        "/v1/tenants/acme/webhook-endpoints",
        json!({ "url": r.url }),
    )
    .await;
    let key = server
        .post(
            "/v1/tenants/globex/api-keys",
            json!({ "name": "b", "scopes": ["tenant:admin"] }),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    let own = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tenants/globex/webhook-endpoints",
            Some(json!({ "url": r.url })),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{own:?}");
    let routes = [
        (
            Method::GET,
            "/v1/tenants/acme/webhook-endpoints".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/v1/tenants/acme/webhook-endpoints".to_owned(),
            Some(json!({ "url": r.url })),
        ),
        (
            Method::GET,
            format!("/v1/tenants/acme/webhook-endpoints/{id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/acme/webhook-endpoints/{id}"),
            Some(json!({ "enabled": false })),
        ),
        (
            Method::DELETE,
            format!("/v1/tenants/acme/webhook-endpoints/{id}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/acme/webhook-endpoints/{id}/secret/rotate"),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/tenants/acme/webhook-endpoints/{id}/jwks.json"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/tenants/acme/webhook-endpoints/{id}/messages"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/tenants/acme/webhook-endpoints/{id}/messages/msg_x"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/acme/webhook-endpoints/{id}/messages/msg_x/replay"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/tenants/acme/webhook-endpoints/{id}/replay"),
            Some(json!({ "since": "2000-01-01T00:00:00Z" })),
        ),
    ];
    for (method, path, body) in routes.clone() {
        let reply = server
            .call_as(Some(&key), method.clone(), &path, body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {reply:?}"
        );
    }
    // The same endpoint id under globex's own path is not found either.
    let reply = server
        .call_as(
            Some(&key),
            Method::GET,
            &format!("/v1/tenants/globex/webhook-endpoints/{id}"),
            None,
        )
        .await;
    reply.assert_problem(404, "webhook_endpoint_not_found");
    // Tenant keys cannot reach operator endpoints.
    let reply = server
        .call_as(Some(&key), Method::GET, "/v1/webhook-endpoints", None)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    // Acme's endpoint is untouched.
    let view = server
        .get(&format!("/v1/tenants/acme/webhook-endpoints/{id}"))
        .await;
    assert_eq!(view.body["enabled"], true);
    // A retried creation with the same Idempotency-Key makes one endpoint
    // and answers the same secret.
    let create = || async {
        let resp = server
            .client
            .post(server.url("/v1/tenants/globex/webhook-endpoints"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "create-once")
            .json(&json!({ "url": r.url, "description": "once" }))
            .send()
            .await
            .unwrap();
        common::Reply::from(resp).await
    };
    let (first, again) = (create().await, create().await);
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert_eq!(first.body["id"], again.body["id"]);
    assert_eq!(first.body["secret"], again.body["secret"]);
    let list = server.get("/v1/tenants/globex/webhook-endpoints").await;
    let once = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["description"] == "once")
        .count();
    assert_eq!(once, 1);
}

/// Each event's `name` and how many times it was answered 2xx.
fn answered_ok(r: &Receiver) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for h in r.hits() {
        let name = body(&h)["data"]["changes"]["name"]["to"]
            .as_str()
            .unwrap()
            .to_owned();
        *out.entry(name).or_insert(0) += usize::from(h.ok);
    }
    out
}

/// Waits (bounded) until all `n` events were answered 2xx, then a little
/// longer for a duplicate to show.
async fn every_event_once(r: &Receiver, n: usize) {
    for _ in 0..1200 {
        if answered_ok(r).values().filter(|c| **c > 0).count() == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = answered_ok(r);
    assert_eq!(seen.len(), n, "events lost: {seen:?}");
    assert!(
        seen.values().all(|c| *c == 1),
        "answered 2xx twice: {seen:?}"
    );
}

const SCHEDULE: (&str, &str) = (
    "TENANTRY_WEBHOOK_RETRY_SCHEDULE",
    "0s,500ms,500ms,500ms,500ms,500ms",
);

async fn kill_9_mid_delivery_loses_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut first = server(
        &db,
        &[
            ("TENANTRY_WEBHOOK_TIMEOUT", "5s"),
            ("TENANTRY_WEBHOOK_LEASE", "6s"),
            SCHEDULE,
        ],
    )
    .await;
    first.create_tenant("acme").await;
    // Five deliveries are answered 200; then the receiver stops answering,
    // so the kill lands with messages claimed and requests in flight, and
    // no 2xx given whose attempt is not yet recorded.
    let r = Receiver::start(vec![Answer::Status(200, vec![]); 5]).await;
    *r.default.lock().unwrap() = Answer::Hang(Duration::from_secs(60));
    let (id, _) = acme_endpoint(&first, &r, "tenant.updated").await;
    const N: usize = 20;
    for i in 0..N {
        rename(&first, "acme", &format!("Acme {i}")).await;
    }
    let delivered = format!("/v1/tenants/acme/webhook-endpoints/{id}/messages?status=delivered");
    for _ in 0..600 {
        let page = first.get(&delivered).await;
        if page.body["data"].as_array().map_or(0, Vec::len) == 5 && r.hits().len() > 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        first.get(&delivered).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    first.kill9().await;
    *r.default.lock().unwrap() = Answer::Status(200, vec![]);
    let _second = server(
        &db,
        &[
            ("TENANTRY_WEBHOOK_TIMEOUT", "2s"),
            ("TENANTRY_WEBHOOK_LEASE", "3s"),
            SCHEDULE,
        ],
    )
    .await;
    every_event_once(&r, N).await;
}

async fn two_nodes_share_the_work(backend: Backend) {
    if backend == Backend::Sqlite {
        return; // one process delivers on SQLite
    }
    let db = TestDb::new(backend).await;
    let a = server(&db, &[]).await;
    let b = server(&db, &[]).await;
    a.create_tenant("acme").await;
    let r = Receiver::start(vec![]).await;
    acme_endpoint(&a, &r, "tenant.updated").await;
    const N: usize = 40;
    for i in 0..N {
        let node = if i % 2 == 0 { &a } else { &b };
        rename(node, "acme", &format!("Acme {i}")).await;
    }
    every_event_once(&r, N).await;
}

async fn rate_limit_spaces_deliveries_and_failing_endpoints_are_disabled(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Retries every 100 ms for far longer than the second it takes to be
    // disabled.
    let schedule = format!("0s{}", ",100ms".repeat(49));
    let server = server(
        &db,
        &[
            ("TENANTRY_WEBHOOK_RETRY_SCHEDULE", schedule.as_str()),
            ("TENANTRY_WEBHOOK_DISABLE_AFTER", "1s"),
        ],
    )
    .await;
    server.expect_warning("webhook endpoint disabled");
    server.create_tenant("acme").await;
    // One delivery a second: five events take at least four seconds (a lower
    // bound only: a slow machine makes it longer, never shorter).
    let r = Receiver::start(vec![]).await;
    endpoint(
        &server,
        "/v1/tenants/acme/webhook-endpoints",
        json!({ "url": r.url, "event_types": ["tenant.updated"], "rate_limit_per_second": 1 }),
    )
    .await;
    for i in 0..5 {
        rename(&server, "acme", &format!("Acme {i}")).await;
    }
    let hits = r.wait_for(5).await;
    let first: i64 = hits[0].timestamp.parse().unwrap();
    let last: i64 = hits[4].timestamp.parse().unwrap();
    assert!(
        last - first >= 3,
        "five deliveries within {}s at 1/s",
        last - first
    );
    // An endpoint failing every delivery for longer than
    // TENANTRY_WEBHOOK_DISABLE_AFTER is disabled, with an operator event.
    let ops = operator_receiver(&server, "webhook_endpoint.disabled").await;
    let failing = Receiver::start(vec![]).await;
    *failing.default.lock().unwrap() = Answer::Status(500, vec![]);
    let (id, _) = acme_endpoint(&server, &failing, "tenant.suspended").await;
    assert_eq!(
        server
            .post("/v1/tenants/acme/suspend", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let event = body(&ops.wait_for(1).await[0]);
    assert_eq!(event["data"]["endpoint_id"], id.as_str());
    assert_eq!(event["data"]["reason"], "failing");
    assert_eq!(event["data"]["owner_tenant_id"], "acme");
    let view = server
        .get(&format!("/v1/tenants/acme/webhook-endpoints/{id}"))
        .await;
    assert_eq!(view.body["disabled_reason"], "failing");
}

/// A KEK rotation moves endpoint secrets too: once the status calls the old
/// KEK retirable and it is taken out of the keyring file, tenant and
/// operator endpoints (current and overlapping secrets, Ed25519 seeds) still
/// sign every delivery.
async fn secrets_survive_the_retirement_of_their_kek(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = server(&db, &[]).await;
    server.create_tenant("acme").await;
    let r = Receiver::start(vec![]).await;
    let (id, old) = acme_endpoint(&server, &r, "tenant.updated").await;
    let rotated = server
        .post(
            &format!("/v1/tenants/acme/webhook-endpoints/{id}/secret/rotate"),
            json!({ "overlap_seconds": 3600 }),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    let operator = Receiver::start(vec![]).await;
    let (_, operator_secret) = endpoint(
        &server,
        "/v1/webhook-endpoints",
        json!({ "url": operator.url, "event_types": ["tenant.updated"], "asymmetric_signing": true }),
    )
    .await;
    let first = server.get("/v1/operator/keyring").await;
    let old_kek = first.body["active_kek"].as_str().unwrap().to_owned();
    let wrapped = first.body["keks"][0]["data_keys"].as_i64().unwrap();
    // acme's data key, its endpoint's two secrets, the operator endpoint's
    // secret and seed at least.
    assert!(wrapped >= 5, "{first:?}");

    let rotate = server.post("/v1/operator/keyring/rotate", json!({})).await;
    assert_eq!(rotate.status, StatusCode::ACCEPTED, "{rotate:?}");
    let status = server.keyring_rewrapped().await;
    let retired = status["keks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == old_kek.as_str())
        .unwrap()
        .clone();
    assert_eq!(retired["retirable"], true, "{status}");
    assert_eq!(retired["data_keys"], 0, "{status}");

    // Retire the old KEK: the keyring file keeps only its first (active) key.
    server.stop().await;
    let path = db.keyring_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(keys.len(), 2, "{text}");
    std::fs::write(&path, format!("{}\n", keys[0])).unwrap();
    let server = self::server(&db, &[]).await;
    let status = server.get("/v1/operator/keyring").await.body;
    assert_eq!(status["keks"].as_array().unwrap().len(), 1, "{status}");

    rename(&server, "acme", "Acme after retirement").await;
    let hit = &r.wait_for(1).await[0];
    assert!(signed_with(&new, hit) && signed_with(&old, hit), "{hit:?}");
    let hit = &operator.wait_for(1).await[0];
    assert!(signed_with(&operator_secret, hit), "{hit:?}");
    assert!(
        hit.signature.split(' ').any(|s| s.starts_with("v1a,")),
        "the Ed25519 signature is missing: {hit:?}"
    );
}
