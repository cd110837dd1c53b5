//! `Idempotency-Key` on the POSTs that create something: a retry returns the
//! first response without a second effect, keys are the caller's tenant's
//! own, and racing retries do the work once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_retry_replays_the_first_response,
    another_request_with_the_same_key_is_refused,
    invalid_keys_are_refused,
    keys_are_scoped_to_the_callers_tenant,
    a_failed_credential_is_401_never_a_replay,
    concurrent_retries_have_one_effect,
    a_client_error_is_a_result_and_is_replayed,
    expired_keys_run_again_and_are_pruned,
    a_pending_key_waits_then_an_abandoned_one_is_taken_over,
    stored_responses_hold_no_secret,
    the_body_limit_and_deadline_still_apply,
    a_server_error_releases_the_key,
    a_timed_out_request_is_not_run_twice,
    doctor_checks_the_operators_keys_are_theirs,
);

/// POSTs `body` to `path` with `credential` and, if given, the key.
async fn post(
    server: &TestServer,
    credential: &str,
    key: Option<&str>,
    path: &str,
    body: &Value,
) -> Reply {
    let mut request = server
        .client
        .post(server.url(path))
        .bearer_auth(credential)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    Reply::from(request.send().await.unwrap()).await
}

fn replayed(reply: &Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// A tenant and an admin key of it.
async fn tenant_with_key(server: &TestServer, id: &str) -> String {
    server.create_tenant(id).await;
    let key = server
        .post(
            &format!("/v1/tenants/{id}/api-keys"),
            json!({"name": "admin", "scopes": ["tenant:admin"]}),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{key:?}");
    key.body["key"].as_str().unwrap().to_owned()
}

async fn key_count(server: &TestServer, tenant: &str) -> usize {
    let reply = server
        .get(&format!("/v1/tenants/{tenant}/api-keys?limit=100"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["data"].as_array().unwrap().len()
}

async fn tenant_count(server: &TestServer) -> usize {
    let reply = server.get("/v1/tenants?limit=100").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["data"].as_array().unwrap().len()
}

fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

async fn a_retry_replays_the_first_response(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    // An operator creating a tenant.
    let body = json!({"id": "acme", "name": "Acme"});
    let first = post(&server, ROOT_KEY, Some("create-acme"), "/v1/tenants", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    assert!(!replayed(&first), "{first:?}");
    let again = post(&server, ROOT_KEY, Some("create-acme"), "/v1/tenants", &body).await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
    assert!(replayed(&again), "{again:?}");
    assert_eq!(again.text, first.text);
    assert_eq!(again.content_type(), first.content_type());
    // Without the key, the same request is a second attempt (and conflicts).
    post(&server, ROOT_KEY, None, "/v1/tenants", &body)
        .await
        .assert_problem(409, "tenant_exists");
    assert_eq!(tenant_count(&server).await, 1);

    // A tenant key minting a key: the retry hands back the same secret and
    // mints nothing.
    let admin = tenant_with_key(&server, "globex").await;
    let before = key_count(&server, "globex").await;
    let path = "/v1/tenants/globex/api-keys";
    let body = json!({"name": "svc", "scopes": ["tenant:read"]});
    let first = post(&server, &admin, Some("mint-svc-1"), path, &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    for _ in 0..3 {
        let again = post(&server, &admin, Some("mint-svc-1"), path, &body).await;
        assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
        assert!(replayed(&again));
        assert_eq!(again.text, first.text);
    }
    assert_eq!(key_count(&server, "globex").await, before + 1);
    // The minted key works: the replay is the real response.
    let svc = first.body["key"].as_str().unwrap();
    let own = server
        .call_as(Some(svc), reqwest::Method::GET, "/v1/tenants/globex", None)
        .await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    // Another key is another request.
    let other = post(&server, &admin, Some("mint-svc-2"), path, &body).await;
    assert_eq!(other.status, StatusCode::CREATED, "{other:?}");
    assert!(!replayed(&other));
    assert_ne!(other.body["id"], first.body["id"]);
    assert_eq!(key_count(&server, "globex").await, before + 2);

    // Usage batches, credentials and domains honour it too.
    let events = json!({"events": [{"id": "e-1", "tenant_id": "globex", "meter": "messages_inbound", "quantity": 2}]});
    let first = post(
        &server,
        ROOT_KEY,
        Some("batch-1"),
        "/v1/usage/events",
        &events,
    )
    .await;
    assert!(first.status.is_success(), "{first:?}");
    let again = post(
        &server,
        ROOT_KEY,
        Some("batch-1"),
        "/v1/usage/events",
        &events,
    )
    .await;
    assert!(replayed(&again) && again.text == first.text, "{again:?}");
    let credential =
        json!({"kind": "generic", "name": "c", "data": {"api_key": "cred-secret-0123456789"}});
    let path = "/v1/tenants/globex/credentials";
    let first = post(&server, &admin, Some("cred-1"), path, &credential).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let again = post(&server, &admin, Some("cred-1"), path, &credential).await;
    assert!(replayed(&again) && again.text == first.text, "{again:?}");
    let listed = server.get(path).await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "{listed:?}"
    );
}

async fn another_request_with_the_same_key_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let admin = tenant_with_key(&server, "acme").await;
    let path = "/v1/tenants/acme/api-keys";
    let body = json!({"name": "svc", "scopes": ["tenant:read"]});
    let first = post(&server, &admin, Some("k-1"), path, &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let before = key_count(&server, "acme").await;
    // Another body.
    let reused = post(
        &server,
        &admin,
        Some("k-1"),
        path,
        &json!({"name": "other", "scopes": ["tenant:read"]}),
    )
    .await;
    let problem = reused.assert_problem(422, "idempotency_key_reused");
    assert_eq!(problem["field"], "Idempotency-Key");
    // Another route.
    let reused = post(
        &server,
        &admin,
        Some("k-1"),
        "/v1/tenants/acme/domains",
        &json!({"domain": "acme.example.org"}),
    )
    .await;
    reused.assert_problem(422, "idempotency_key_reused");
    // Another credential of the same tenant (which might have other scopes)
    // does not get the first one's response.
    let second_admin = server
        .post(path, json!({"name": "admin2", "scopes": ["tenant:admin"]}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&server, &second_admin, Some("k-1"), path, &body)
        .await
        .assert_problem(422, "idempotency_key_reused");
    // Nor a narrower token of the same key, though the two tokens share
    // their key's identity.
    let token = |scopes: Value| {
        let admin = admin.clone();
        let server = &server;
        async move {
            let reply = post(
                server,
                &admin,
                None,
                "/v1/tokens",
                &json!({"scopes": scopes}),
            )
            .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
            reply.body["token"].as_str().unwrap().to_owned()
        }
    };
    let wide = token(json!(["tenant:admin"])).await;
    let narrow = token(json!(["tenant:read"])).await;
    // (A token's key may not outlive it.)
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc3339();
    let short = json!({"name": "svc", "scopes": ["tenant:read"], "expires_at": expires});
    let minted = post(&server, &wide, Some("via-token"), path, &short).await;
    assert_eq!(minted.status, StatusCode::CREATED, "{minted:?}");
    let stolen = post(&server, &narrow, Some("via-token"), path, &short).await;
    stolen.assert_problem(422, "idempotency_key_reused");
    assert!(!stolen.text.contains(minted.body["key"].as_str().unwrap()));
    assert_eq!(key_count(&server, "acme").await, before + 2);
    // The originals still replay.
    let again = post(&server, &admin, Some("k-1"), path, &body).await;
    assert!(replayed(&again) && again.text == first.text, "{again:?}");
    let again = post(&server, &wide, Some("via-token"), path, &short).await;
    assert!(replayed(&again) && again.text == minted.text, "{again:?}");
}

async fn invalid_keys_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let long = "k".repeat(256);
    let body = json!({"id": "acme", "name": "Acme"});
    let bad: Vec<reqwest::header::HeaderValue> = vec![
        reqwest::header::HeaderValue::from_static(""),
        reqwest::header::HeaderValue::from_str(&long).unwrap(),
        reqwest::header::HeaderValue::from_static("with space"),
        reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    ];
    for value in bad {
        let reply = Reply::from(
            server
                .client
                .post(server.url("/v1/tenants"))
                .bearer_auth(ROOT_KEY)
                .header("Idempotency-Key", value.clone())
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        reply.assert_invalid("Idempotency-Key");
    }
    // Two keys at once.
    let reply = Reply::from(
        server
            .client
            .post(server.url("/v1/tenants"))
            .bearer_auth(ROOT_KEY)
            .header("Idempotency-Key", "a")
            .header("Idempotency-Key", "b")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_invalid("Idempotency-Key");
    // None of them created anything; the longest valid key works.
    assert_eq!(tenant_count(&server).await, 0);
    let longest = "k".repeat(255);
    let ok = post(&server, ROOT_KEY, Some(&longest), "/v1/tenants", &body).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{ok:?}");
}

async fn keys_are_scoped_to_the_callers_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let a = tenant_with_key(&server, "tenant-a").await;
    let b = tenant_with_key(&server, "tenant-b").await;
    let body = json!({"name": "svc", "scopes": ["tenant:read"]});
    let from_a = post(
        &server,
        &a,
        Some("shared"),
        "/v1/tenants/tenant-a/api-keys",
        &body,
    )
    .await;
    assert_eq!(from_a.status, StatusCode::CREATED, "{from_a:?}");
    // B's same key string is B's own: its request runs.
    let from_b = post(
        &server,
        &b,
        Some("shared"),
        "/v1/tenants/tenant-b/api-keys",
        &body,
    )
    .await;
    assert_eq!(from_b.status, StatusCode::CREATED, "{from_b:?}");
    assert!(!replayed(&from_b), "{from_b:?}");
    assert_ne!(from_a.body["key"], from_b.body["key"]);
    // B cannot replay A's response, even with A's exact request: A's path
    // is not B's (404, as without the key).
    let stolen = post(
        &server,
        &b,
        Some("shared"),
        "/v1/tenants/tenant-a/api-keys",
        &body,
    )
    .await;
    stolen.assert_problem(404, "tenant_not_found");
    assert!(!stolen.text.contains(from_a.body["key"].as_str().unwrap()));
    // Nor the operators: the same key string is theirs alone.
    let from_op = post(
        &server,
        ROOT_KEY,
        Some("shared"),
        "/v1/tenants/tenant-a/api-keys",
        &body,
    )
    .await;
    assert_eq!(from_op.status, StatusCode::CREATED, "{from_op:?}");
    assert!(!replayed(&from_op));
    assert_ne!(from_op.body["key"], from_a.body["key"]);
    // Each replays its own.
    for (credential, path, first) in [
        (&a, "/v1/tenants/tenant-a/api-keys", &from_a),
        (&b, "/v1/tenants/tenant-b/api-keys", &from_b),
    ] {
        let again = post(&server, credential, Some("shared"), path, &body).await;
        assert!(replayed(&again) && again.text == first.text, "{again:?}");
    }
    assert_eq!(key_count(&server, "tenant-a").await, 3);
    assert_eq!(key_count(&server, "tenant-b").await, 2);
}

async fn a_failed_credential_is_401_never_a_replay(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let admin = tenant_with_key(&server, "acme").await;
    let path = "/v1/tenants/acme/api-keys";
    let body = json!({"name": "svc", "scopes": ["tenant:read"]});
    let first = post(&server, &admin, Some("k"), path, &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let secret = first.body["key"].as_str().unwrap().to_owned();
    for credential in [
        "not-a-key",
        "tnt_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let reply = post(&server, credential, Some("k"), path, &body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        assert!(
            !replayed(&reply) && !reply.text.contains(&secret),
            "{reply:?}"
        );
    }
    let anonymous = Reply::from(
        server
            .client
            .post(server.url(path))
            .header("Idempotency-Key", "k")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    anonymous.assert_problem(401, "unauthorized");
    // A revoked key is refused too, though it made the stored response.
    let key_id = server.get(path).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = server
        .post(&format!("{path}/{key_id}/revoke"), json!({}))
        .await;
    assert!(revoked.status.is_success(), "{revoked:?}");
    let reply = post(&server, &admin, Some("k"), path, &body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert!(!reply.text.contains(&secret));
}

async fn concurrent_retries_have_one_effect(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let admin = tenant_with_key(&server, "acme").await;
    let before = key_count(&server, "acme").await;
    for (credential, path, body, key) in [
        (
            ROOT_KEY.to_owned(),
            "/v1/tenants",
            json!({"id": "raced", "name": "Raced"}),
            "race-tenant",
        ),
        (
            admin.clone(),
            "/v1/tenants/acme/api-keys",
            json!({"name": "raced", "scopes": ["tenant:read"]}),
            "race-key",
        ),
    ] {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let request = server
                .client
                .post(server.url(path))
                .bearer_auth(&credential)
                .header("Idempotency-Key", key)
                .json(&body);
            set.spawn(async move { Reply::from(request.send().await.unwrap()).await });
        }
        let replies = set.join_all().await;
        let created: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .collect();
        assert!(!created.is_empty(), "{replies:?}");
        // Every answer is the one response, or "still running".
        for reply in &replies {
            if reply.status == StatusCode::CREATED {
                assert_eq!(reply.text, created[0].text, "{replies:?}");
            } else {
                reply.assert_problem(409, "idempotency_key_in_progress");
                assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
            }
        }
        assert_eq!(
            created.iter().filter(|r| !replayed(r)).count(),
            1,
            "exactly one ran: {replies:?}"
        );
        // And a later retry gets it too.
        let later = post(&server, &credential, Some(key), path, &body).await;
        assert!(
            replayed(&later) && later.text == created[0].text,
            "{later:?}"
        );
    }
    assert_eq!(tenant_count(&server).await, 2);
    assert_eq!(key_count(&server, "acme").await, before + 1);
}

async fn a_client_error_is_a_result_and_is_replayed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let body = json!({"id": "acme", "name": "Acme"});
    let first = post(&server, ROOT_KEY, Some("create"), "/v1/tenants", &body).await;
    first.assert_problem(409, "tenant_exists");
    // The id becomes free, but the key's answer was given: it stands.
    let purged = server
        .call(reqwest::Method::DELETE, "/v1/tenants/acme?purge=true", None)
        .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT, "{purged:?}");
    let again = post(&server, ROOT_KEY, Some("create"), "/v1/tenants", &body).await;
    again.assert_problem(409, "tenant_exists");
    assert!(replayed(&again), "{again:?}");
    assert_eq!(again.text, first.text);
    assert_eq!(tenant_count(&server).await, 0);
    // Invalid input is a result too.
    let admin = tenant_with_key(&server, "globex").await;
    let path = "/v1/tenants/globex/domains";
    let bad = json!({"domain": "not a domain"});
    let first = post(&server, &admin, Some("bad-domain"), path, &bad).await;
    assert_eq!(first.status, StatusCode::UNPROCESSABLE_ENTITY, "{first:?}");
    let again = post(&server, &admin, Some("bad-domain"), path, &bad).await;
    assert!(replayed(&again) && again.text == first.text, "{again:?}");
    assert_eq!(again.content_type(), "application/problem+json");
    // A new key runs the request again.
    let fresh = post(&server, ROOT_KEY, Some("create-2"), "/v1/tenants", &body).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{fresh:?}");
}

async fn expired_keys_run_again_and_are_pruned(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_PURGE_INTERVAL", "100ms"),
        ],
    )
    .await;
    let admin = tenant_with_key(&server, "acme").await;
    let path = "/v1/tenants/acme/api-keys";
    let body = json!({"name": "svc", "scopes": ["tenant:read"]});
    let first = post(&server, &admin, Some("k"), path, &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let op = post(
        &server,
        ROOT_KEY,
        Some("k"),
        "/v1/tenants",
        &json!({"id": "other", "name": "O"}),
    )
    .await;
    assert_eq!(op.status, StatusCode::CREATED, "{op:?}");
    assert_eq!(db.count_rows("idempotency_keys", "acme").await, 1);
    // A day passes (the rows say so).
    db.exec("UPDATE idempotency_keys SET expires_ms = 1").await;
    db.exec("UPDATE operator_idempotency_keys SET expires_ms = 1")
        .await;
    // The worker prunes them...
    let mut pruned = false;
    for _ in 0..100 {
        if db.count_rows("idempotency_keys", "acme").await == 0 {
            pruned = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(pruned, "expired keys were not pruned:\n{}", server.logs());
    // ...and a retry runs again.
    let again = post(&server, &admin, Some("k"), path, &body).await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
    assert!(!replayed(&again));
    assert_ne!(again.body["id"], first.body["id"]);

    // An expired row the worker has not reached yet is ignored as well.
    let db2 = TestDb::new(backend).await;
    let server2 = TestServer::start_with(
        &db2,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_IDEMPOTENCY_TTL", "1h"),
        ],
    )
    .await;
    let body = json!({"id": "acme", "name": "Acme"});
    let first = post(&server2, ROOT_KEY, Some("k"), "/v1/tenants", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let again = post(&server2, ROOT_KEY, Some("k"), "/v1/tenants", &body).await;
    assert!(replayed(&again), "{again:?}");
    db2.exec(&format!(
        "UPDATE operator_idempotency_keys SET expires_ms = {}",
        now_ms() - 1
    ))
    .await;
    // Run again: the tenant exists now, so this time the answer is 409.
    let after = post(&server2, ROOT_KEY, Some("k"), "/v1/tenants", &body).await;
    after.assert_problem(409, "tenant_exists");
    assert!(!replayed(&after));
}

async fn a_pending_key_waits_then_an_abandoned_one_is_taken_over(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_REQUEST_TIMEOUT", "2s"),
        ],
    )
    .await;
    let admin = tenant_with_key(&server, "acme").await;
    let path = "/v1/tenants/acme/api-keys";
    let body = json!({"name": "svc", "scopes": ["tenant:read"]});
    let first = post(&server, &admin, Some("k"), path, &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let before = key_count(&server, "acme").await;
    // As if its request were still running (reserved just now).
    db.exec(&format!(
        "UPDATE idempotency_keys SET state = 'pending', reserved_ms = {}",
        now_ms()
    ))
    .await;
    let waiting = post(&server, &admin, Some("k"), path, &body).await;
    waiting.assert_problem(409, "idempotency_key_in_progress");
    assert_eq!(waiting.headers["retry-after"], "1");
    assert_eq!(key_count(&server, "acme").await, before);
    // As if its server had crashed long ago: the reservation is taken over.
    db.exec("UPDATE idempotency_keys SET reserved_ms = 0").await;
    let taken = post(&server, &admin, Some("k"), path, &body).await;
    assert_eq!(taken.status, StatusCode::CREATED, "{taken:?}");
    assert!(!replayed(&taken));
    assert_eq!(key_count(&server, "acme").await, before + 1);
    let again = post(&server, &admin, Some("k"), path, &body).await;
    assert!(replayed(&again) && again.text == taken.text, "{again:?}");
}

async fn stored_responses_hold_no_secret(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let admin = tenant_with_key(&server, "acme").await;
    let key = post(
        &server,
        &admin,
        Some("mint"),
        "/v1/tenants/acme/api-keys",
        &json!({"name": "svc", "scopes": ["tenant:read"]}),
    )
    .await;
    assert_eq!(key.status, StatusCode::CREATED, "{key:?}");
    let token = post(&server, &admin, Some("token"), "/v1/tokens", &json!({})).await;
    assert_eq!(token.status, StatusCode::CREATED, "{token:?}");
    let operator_key = post(
        &server,
        ROOT_KEY,
        Some("op-key"),
        "/v1/operator-keys",
        &json!({"name": "ops"}),
    )
    .await;
    assert_eq!(operator_key.status, StatusCode::CREATED, "{operator_key:?}");
    let secrets = [
        key.body["key"].as_str().unwrap().to_owned(),
        token.body["token"].as_str().unwrap().to_owned(),
        operator_key.body["key"].as_str().unwrap().to_owned(),
    ];
    // Each replays with its secret...
    for (credential, path, key, body, first) in [
        (
            &admin,
            "/v1/tenants/acme/api-keys",
            "mint",
            json!({"name": "svc", "scopes": ["tenant:read"]}),
            &key,
        ),
        (&admin, "/v1/tokens", "token", json!({}), &token),
        (
            &ROOT_KEY.to_owned(),
            "/v1/operator-keys",
            "op-key",
            json!({"name": "ops"}),
            &operator_key,
        ),
    ] {
        let again = post(&server, credential, Some(key), path, &body).await;
        assert!(replayed(&again) && again.text == first.text, "{again:?}");
    }
    // ...which the database never holds in clear (nor any part of it).
    assert_eq!(db.count_rows("idempotency_keys", "acme").await, 2);
    let raw = db.raw_bytes().await;
    for secret in &secrets {
        let tail = &secret[secret.len() - 24..];
        assert!(
            !raw.windows(tail.len()).any(|w| w == tail.as_bytes()),
            "a secret is stored in clear"
        );
    }
    if backend == Backend::Postgres {
        // The operators' keys are not readable by tenant transactions.
        let pool = db.pg_superuser().await;
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL ROLE tenantry_app")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("SELECT set_config('app.operator', 'on', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let read = sqlx::query("SELECT count(*) FROM operator_idempotency_keys")
            .execute(&mut *tx)
            .await;
        assert!(
            read.is_err(),
            "a tenant transaction read the operators' keys"
        );
        tx.rollback().await.unwrap();
        // And a tenant's rows are its own.
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL ROLE tenantry_app")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', 'other', true)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM idempotency_keys")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0);
        tx.rollback().await.unwrap();
        pool.close().await;
    }
}

async fn the_body_limit_and_deadline_still_apply(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_BODY_TIMEOUT", "1s"),
            ("TENANTRY_MAX_BODY_BYTES", "256"),
        ],
    )
    .await;
    let head = |extra: &str| {
        format!(
            "POST /v1/tenants HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ROOT_KEY}\r\n\
             Idempotency-Key: k\r\nContent-Type: application/json\r\nConnection: close\r\n{extra}\r\n"
        )
    };
    // Too large, without saying so up front (chunked): 413.
    let big = format!(r#"{{"id": "acme", "name": "{}"}}"#, "x".repeat(400));
    let chunked = format!(
        "{}{:x}\r\n{big}\r\n0\r\n\r\n",
        head("Transfer-Encoding: chunked\r\n"),
        big.len()
    );
    let answer = common::raw_http(&server.base, &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // A body that never finishes: 408 once the body timeout is over.
    let partial = format!("{}{}", head("Content-Length: 40\r\n"), r#"{"id": "ac"#);
    let answer = common::raw_http(&server.base, &partial).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_body_timeout"), "{answer}");
    // Neither reserved the key: the complete request runs.
    let body = json!({"id": "acme", "name": "Acme"});
    let created = post(&server, ROOT_KEY, Some("k"), "/v1/tenants", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert!(!replayed(&created));
}

async fn a_server_error_releases_the_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.expect_warning("a sealed secret could not be opened");
    server.expect_warning("Status code: 500");
    let admin = tenant_with_key(&server, "acme").await;
    // The tenant's active data key cannot be opened: sealing fails, 500.
    db.exec(match backend {
        Backend::Sqlite => {
            "INSERT INTO tenant_data_keys VALUES \
             ('acme', 'dek_broken', 'kek_missing', X'00', 1, '2026-01-01 00:00:00+00:00')"
        }
        Backend::Postgres => {
            "INSERT INTO tenant_data_keys VALUES \
             ('acme', 'dek_broken', 'kek_missing', '\\x00', true, now())"
        }
    })
    .await;
    let path = "/v1/tenants/acme/credentials";
    let body =
        json!({"kind": "generic", "name": "c", "data": {"api_key": "cred-secret-0123456789"}});
    let failed = post(&server, &admin, Some("cred"), path, &body).await;
    failed.assert_problem(500, "decryption_failed");
    // Not a result: the key is free again.
    assert_eq!(db.count_rows("idempotency_keys", "acme").await, 0);
    db.exec("DELETE FROM tenant_data_keys WHERE id = 'dek_broken'")
        .await;
    let created = post(&server, &admin, Some("cred"), path, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert!(!replayed(&created));
    let again = post(&server, &admin, Some("cred"), path, &body).await;
    assert!(replayed(&again) && again.text == created.text, "{again:?}");
}

async fn a_timed_out_request_is_not_run_twice(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_REQUEST_TIMEOUT", "1s"),
            ("TENANTRY_DATABASE_TIMEOUT", "30s"),
        ],
    )
    .await;
    for line in [
        "request timed out",
        "Status code: 503",
        "slow statement",
        "time to acquire exceeded slow threshold",
    ] {
        server.expect_warning(line);
    }
    let body = json!({"id": "acme", "name": "Acme"});
    let lock = common::DbLock::take(&db, "tenants").await;
    // The caller is told 503, but the handler goes on in the background.
    let first = post(&server, ROOT_KEY, Some("k"), "/v1/tenants", &body).await;
    first.assert_problem(503, "request_timeout");
    // A retry while it is still stuck: not run a second time.
    let retry = post(&server, ROOT_KEY, Some("k"), "/v1/tenants", &body).await;
    assert!(
        retry.body["code"] == "idempotency_key_in_progress"
            || retry.body["code"] == "request_timeout",
        "{retry:?}"
    );
    lock.release().await;
    // Once it finishes, retries get its answer.
    let mut answer = None;
    for _ in 0..100 {
        let reply = post(&server, ROOT_KEY, Some("k"), "/v1/tenants", &body).await;
        let waiting = reply.body["code"] == "idempotency_key_in_progress"
            || reply.body["code"] == "request_timeout";
        if !waiting {
            answer = Some(reply);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let answer = answer.unwrap_or_else(|| panic!("no answer:\n{}", server.logs()));
    // The one run's answer (not a second run's 409 tenant_exists).
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{answer:?}\n{}",
        server.logs()
    );
    let again = post(&server, ROOT_KEY, Some("k"), "/v1/tenants", &body).await;
    assert!(replayed(&again) && again.text == answer.text, "{again:?}");
    assert_eq!(tenant_count(&server).await, 1);
}

async fn doctor_checks_the_operators_keys_are_theirs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let (code, out, err) = db.run_command(&["doctor"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    if backend == Backend::Sqlite {
        return; // no roles: one process, isolation in the store's types
    }
    assert!(
        out.contains("operator_idempotency_keys: not readable by role tenantry_app"),
        "{out}"
    );
    db.exec("GRANT SELECT ON operator_idempotency_keys TO tenantry_app")
        .await;
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL  operator_idempotency_keys: role tenantry_app"),
        "{out}"
    );
    drop(server);
}
