//! Findings of the attacker's review of issue 8's fixes, as failing tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(a_short_lived_token_cannot_mint_a_key_that_outlives_it);

/// Item 9 says nothing a credential makes may outlive it. A token lives at
/// most an hour, but a token of a key without expiry (scope `keys:write`)
/// mints an API key that never expires: a leaked one-minute token becomes a
/// permanent credential (`Caller::Tenant::expires_at` is the key's expiry,
/// not the token's `exp`).
async fn a_short_lived_token_cannot_mint_a_key_that_outlives_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "service", "scopes": ["keys:write", "keys:read"]}),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{key:?}");
    let key = key.body["key"].as_str().unwrap().to_owned();
    let token = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tokens",
            Some(json!({"ttl_seconds": 60})),
        )
        .await;
    assert_eq!(token.status, StatusCode::CREATED, "{token:?}");
    let token = token.body["token"].as_str().unwrap().to_owned();

    let minted = server
        .call_as(
            Some(&token),
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(json!({"name": "forever", "scopes": ["keys:read"]})),
        )
        .await;
    assert!(
        minted.status == StatusCode::FORBIDDEN
            || minted.body["expires_at"]
                .as_str()
                .is_some_and(|at| chrono::DateTime::parse_from_rfc3339(at).unwrap()
                    <= chrono::Utc::now() + chrono::Duration::seconds(120)),
        "a 60-second token minted a key that outlives it: {minted:?}"
    );
}
