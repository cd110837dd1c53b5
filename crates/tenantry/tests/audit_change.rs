//! The change path: every change records one audit entry in the right
//! chain, inside its own transaction; refusals of a tenant's credential are
//! recorded in that tenant's chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    tenant_lifecycle_is_recorded,
    refusals_are_recorded_in_the_credentials_tenant,
    a_failed_change_records_nothing,
    a_purge_is_recorded_in_the_operator_chain,
    refusals_of_one_credential_are_recorded_up_to_a_bound,
);

async fn key_for(server: &TestServer, tenant: &str, scopes: Value) -> (String, String) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "svc", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    (
        reply.body["id"].as_str().unwrap().to_owned(),
        reply.body["key"].as_str().unwrap().to_owned(),
    )
}

fn actions(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["action"].as_str().unwrap()).collect()
}

async fn tenant_lifecycle_is_recorded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let client = reqwest::Client::new();
    let created = client
        .post(server.url("/v1/tenants"))
        .bearer_auth(ROOT_KEY)
        .header("x-request-id", "req-create-1")
        .header("user-agent", "audit-test/1")
        .json(&json!({"id": "acme", "name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let rows = db.audit_rows("acme").await;
    assert_eq!(actions(&rows), ["tenant.created"]);
    let entry = &rows[0];
    assert_eq!(entry["sequence"], 1);
    assert_eq!(entry["outcome"], "success");
    assert_eq!(entry["actor"], json!({"type": "operator", "id": "root"}));
    assert_eq!(entry["targets"], json!([{"type": "tenant", "id": "acme"}]));
    assert_eq!(entry["request"]["id"], "req-create-1");
    assert_eq!(entry["request"]["user_agent"], "audit-test/1");
    assert_eq!(entry["request"]["ip"], "127.0.0.1");
    assert_eq!(entry["changes"]["after"]["name"], "Acme");

    assert_eq!(
        server
            .patch("/v1/tenants/acme", json!({"name": "Acme Two"}))
            .await
            .status,
        StatusCode::OK
    );
    // A no-op changes nothing and records nothing.
    assert_eq!(
        server
            .patch("/v1/tenants/acme", json!({"name": "Acme Two"}))
            .await
            .status,
        StatusCode::OK
    );
    for path in ["suspend", "suspend", "reactivate"] {
        let reply = server
            .post(&format!("/v1/tenants/acme/{path}"), json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    assert_eq!(
        server.delete("/v1/tenants/acme").await.status,
        StatusCode::OK
    );
    let rows = db.audit_rows("acme").await;
    assert_eq!(
        actions(&rows),
        [
            "tenant.created",
            "tenant.updated",
            "tenant.suspended",
            "tenant.reactivated",
            "tenant.deleted"
        ]
    );
    assert_eq!(
        rows[1]["changes"],
        json!({"name": {"from": "Acme", "to": "Acme Two"}})
    );
    let sequences: Vec<i64> = rows
        .iter()
        .map(|r| r["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    // The event history still shows the same story.
    let events = server.get("/v1/tenants/acme/events").await;
    assert_eq!(events.body["data"].as_array().unwrap().len(), 5);
}

async fn refusals_are_recorded_in_the_credentials_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("alpha").await;
    server.create_tenant("bravo").await;
    let (key_id, key) = key_for(&server, "bravo", json!(["tenant:read"])).await;
    let before_alpha = db.audit_rows("alpha").await.len();
    let before_bravo = db.audit_rows("bravo").await.len();

    // Tenant bravo's key on alpha's resources: 404, recorded in bravo's chain.
    let reply = server
        .call_as(Some(&key), Method::GET, "/v1/tenants/alpha/api-keys", None)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // Its own tenant without the scope: 403.
    let reply = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tenants/bravo/api-keys",
            Some(json!({"name": "x", "scopes": ["tenant:read"]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // An operator-only route: 403.
    let reply = server
        .call_as(Some(&key), Method::GET, "/v1/tenants", None)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    let rows = db.audit_rows("bravo").await;
    let denied: Vec<&Value> = rows[before_bravo..].iter().collect();
    assert_eq!(denied.len(), 3, "{rows:#?}");
    for entry in &denied {
        assert_eq!(entry["action"], "access.denied");
        assert_eq!(entry["outcome"], "denied");
        assert_eq!(entry["actor"], json!({"type": "api_key", "id": key_id}));
    }
    assert_eq!(
        denied[0]["targets"],
        json!([{"type": "route", "id": "GET /v1/tenants/{id}/api-keys"}])
    );
    assert_eq!(denied[0]["metadata"]["status"], 404);
    assert_eq!(denied[1]["metadata"]["status"], 403);
    assert_eq!(
        db.audit_rows("alpha").await.len(),
        before_alpha,
        "alpha's chain is untouched"
    );

    // A revoked key is refused (401) and the attempt still recorded.
    let revoked = server
        .post(
            &format!("/v1/tenants/bravo/api-keys/{key_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    let count = db.audit_rows("bravo").await.len();
    let reply = server
        .call_as(Some(&key), Method::GET, "/v1/tenants/bravo", None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let rows = db.audit_rows("bravo").await;
    assert_eq!(rows.len(), count + 1);
    assert_eq!(rows[count]["metadata"]["status"], 401);
    assert_eq!(rows[count]["outcome"], "denied");

    // Verifying a key is the verifier's job, not an attempt: not recorded.
    let reply = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/keys/verify",
            Some(json!({"key": key})),
        )
        .await;
    assert_ne!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(db.audit_rows("bravo").await.len(), count + 1);

    // A credential that is nobody's is not recorded anywhere.
    let reply = server
        .call_as(
            Some("tnt_live_nobody"),
            Method::GET,
            "/v1/tenants/bravo",
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(db.audit_rows("bravo").await.len(), count + 1);
}

async fn a_failed_change_records_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("alpha").await;
    server.create_tenant("bravo").await;
    let before = db.audit_rows("alpha").await.len();
    let events_before = db.count_rows("tenant_events", "alpha").await;
    // The subdomain is taken: the update's own write fails inside its
    // transaction.
    let reply = server
        .patch("/v1/tenants/alpha", json!({"subdomain": "bravo"}))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{reply:?}");
    assert_eq!(db.audit_rows("alpha").await.len(), before);
    assert_eq!(db.count_rows("tenant_events", "alpha").await, events_before);
    // A tenant id that is taken: nothing in any chain.
    let operator_before = db.audit_rows("").await.len();
    let reply = server
        .post("/v1/tenants", json!({"id": "alpha", "name": "Again"}))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(db.audit_rows("alpha").await.len(), before);
    assert_eq!(db.audit_rows("").await.len(), operator_before);
}

async fn a_purge_is_recorded_in_the_operator_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("gone").await;
    assert!(!db.audit_rows("gone").await.is_empty());
    let reply = server.delete("/v1/tenants/gone?purge=true").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(
        db.audit_rows("gone").await.is_empty(),
        "the tenant's chain goes with it"
    );
    assert_eq!(db.count_rows("audit_heads", "gone").await, 0);
    let operator = db.audit_rows("").await;
    let last = operator.last().expect("an operator entry");
    assert_eq!(last["action"], "tenant.purged");
    assert_eq!(last["targets"], json!([{"type": "tenant", "id": "gone"}]));
    assert_eq!(last["actor"]["type"], "operator");
}

async fn refusals_of_one_credential_are_recorded_up_to_a_bound(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("leaky").await;
    let (key_id, key) = key_for(&server, "leaky", json!(["tenant:read"])).await;
    let revoked = server
        .post(
            &format!("/v1/tenants/leaky/api-keys/{key_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let before = db.audit_rows("leaky").await.len();
    let started = std::time::Instant::now();
    for _ in 0..100 {
        let reply = server
            .call_as(Some(&key), Method::GET, "/v1/tenants/leaky", None)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let elapsed = started.elapsed().as_secs();
    let recorded = (db.audit_rows("leaky").await.len() - before) as u64;
    // The bound is 60 a minute (one more per second that passes).
    assert!(recorded >= 60, "{recorded}");
    assert!(recorded <= 60 + elapsed + 1, "{recorded} in {elapsed} s");
    assert!(recorded < 100, "every refusal was written: {recorded}");
}
