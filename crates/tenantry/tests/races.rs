//! What a second, concurrent request can do: many identical requests at
//! once must leave exactly the state one of them would, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_key_is_rotated_once,
    concurrent_creations_of_one_tenant_or_subdomain,
);

/// Sends the POSTs at once (as the operator); returns their replies.
async fn at_once_each(server: &TestServer, calls: Vec<(String, Value)>) -> Vec<common::Reply> {
    let mut set = tokio::task::JoinSet::new();
    for (path, body) in calls {
        let request = server
            .client
            .post(server.url(&path))
            .bearer_auth(common::ROOT_KEY)
            .json(&body);
        set.spawn(async move { common::Reply::from(request.send().await.unwrap()).await });
    }
    set.join_all().await
}

/// Sends `n` copies of one POST at once.
async fn at_once(server: &TestServer, n: usize, path: &str, body: Value) -> Vec<common::Reply> {
    at_once_each(server, vec![(path.to_owned(), body); n]).await
}

async fn a_key_is_rotated_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "svc", "scopes": ["tenant:read"]}),
        )
        .await;
    let key_id = key.body["id"].as_str().unwrap().to_owned();
    // Eight rotations of one key at once: one successor, seven conflicts.
    let path = format!("/v1/tenants/acme/api-keys/{key_id}/rotate");
    let replies = at_once(&server, 8, &path, json!({"overlap_seconds": 600})).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{replies:?}");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_problem(409, "key_already_rotated");
    }
    let keys = server.get("/v1/tenants/acme/api-keys").await.body["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    // And later, one at a time, too: the old key (alive during its overlap)
    // cannot mint another successor of itself.
    server
        .post(&path, json!({"overlap_seconds": 0}))
        .await
        .assert_problem(409, "key_already_rotated");
    // The successor rotates, with no overlap: the old one is then expired,
    // and an expired key does not rotate.
    let successor = replies
        .iter()
        .find(|r| r.status == StatusCode::CREATED)
        .unwrap()
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = server
        .post(
            &format!("/v1/tenants/acme/api-keys/{successor}/rotate"),
            json!({"overlap_seconds": 0}),
        )
        .await;
    assert_eq!(third.status, StatusCode::CREATED, "{third:?}");
    let third_id = third.body["id"].as_str().unwrap().to_owned();
    // Revocation is final: a revoked key is neither rotated nor edited.
    server
        .post(
            &format!("/v1/tenants/acme/api-keys/{third_id}/revoke"),
            json!({}),
        )
        .await;
    server
        .post(
            &format!("/v1/tenants/acme/api-keys/{third_id}/rotate"),
            json!({}),
        )
        .await
        .assert_problem(409, "key_revoked");
    server
        .patch(
            &format!("/v1/tenants/acme/api-keys/{third_id}"),
            json!({"enabled": true}),
        )
        .await
        .assert_problem(409, "key_revoked");
    let verified = server
        .post(
            "/v1/keys/verify",
            json!({"key": third.body["key"].as_str().unwrap()}),
        )
        .await;
    assert_eq!(verified.body["code"], "REVOKED");
}

async fn concurrent_creations_of_one_tenant_or_subdomain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let replies = at_once(
        &server,
        8,
        "/v1/tenants",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count(),
        1,
        "{replies:?}"
    );
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_problem(409, "tenant_exists");
    }
    // Different tenants claiming one subdomain at once: one gets it.
    let calls = (0..6)
        .map(|i| {
            (
                "/v1/tenants".to_owned(),
                json!({"id": format!("claim-{i}"), "name": "Claim", "subdomain": "shared"}),
            )
        })
        .collect();
    let replies = at_once_each(&server, calls).await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count(),
        1,
        "{replies:?}"
    );
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_problem(409, "subdomain_taken");
    }
    let listed = server.get("/v1/tenants?limit=100").await.body["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed, 2);
}
