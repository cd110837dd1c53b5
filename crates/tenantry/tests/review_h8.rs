//! Findings of the attacker's review of issue 8's fixes, as failing tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    a_short_lived_token_cannot_mint_a_key_that_outlives_it,
    a_second_api_key_header_is_verified_too,
    a_tenant_admin_cannot_revive_an_operator_issued_key,
    a_keys_write_key_cannot_revive_a_stronger_key
);

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

/// Item 8: every credential presented is verified. `GET /v1/resolve` reads
/// only the first `X-API-Key` (`HeaderMap::get`), so a request carrying a
/// valid key of tenant A and then a key of tenant B resolves to A with 200,
/// and B's key (or any garbage) travels on to the app unverified.
async fn a_second_api_key_header_is_verified_too(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let mut keys = Vec::new();
    for tenant in ["acme", "globex"] {
        server.create_tenant(tenant).await;
        let key = server
            .post(
                &format!("/v1/tenants/{tenant}/api-keys"),
                json!({"name": "k", "scopes": ["tenant:read"]}),
            )
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{key:?}");
        keys.push(key.body["key"].as_str().unwrap().to_owned());
    }
    for second in [keys[1].as_str(), "garbage"] {
        let answer = common::raw_http(
            &server.base,
            &format!(
                "GET /v1/resolve HTTP/1.1\r\nHost: t\r\nX-API-Key: {}\r\nX-API-Key: {second}\r\nConnection: close\r\n\r\n",
                keys[0]
            ),
        )
        .await;
        assert!(
            !answer.starts_with("HTTP/1.1 200"),
            "a second X-API-Key ({second}) was not verified: {answer}"
        );
    }
}

/// `resolve:trusted` is operator-issued (README: "a tenant key creating,
/// patching or rotating a key with it gets 403 operator_required"), but
/// `PATCH /v1/tenants/{id}/api-keys/{key_id}` only checks the scopes it is
/// sent: a tenant admin re-enables the key an operator disabled, and drops
/// the expiry the operator gave it, keeping a capability that reads every
/// other tenant for ever.
async fn a_tenant_admin_cannot_revive_an_operator_issued_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    for tenant in ["acme", "globex"] {
        server.create_tenant(tenant).await;
    }
    let admin = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "admin", "scopes": ["tenant:admin"]}),
        )
        .await;
    let admin = admin.body["key"].as_str().unwrap().to_owned();
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let gateway = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "gateway", "scopes": ["resolve:trusted"], "expires_at": expires}),
        )
        .await;
    assert_eq!(gateway.status, StatusCode::CREATED, "{gateway:?}");
    let gateway_id = gateway.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/tenants/acme/api-keys/{gateway_id}");
    let disabled = server.patch(&path, json!({"enabled": false})).await;
    assert_eq!(disabled.status, StatusCode::OK, "{disabled:?}");

    let revived = server
        .call_as(
            Some(&admin),
            Method::PATCH,
            &path,
            Some(json!({"enabled": true, "expires_at": null})),
        )
        .await;
    assert_eq!(
        revived.status,
        StatusCode::FORBIDDEN,
        "a tenant admin re-enabled an operator-issued resolve:trusted key and removed its expiry: {revived:?}"
    );
}

/// Same root cause inside one tenant: `PATCH` checks only the scopes it is
/// sent, so a `keys:write` key (no `tenant:admin`) brings a disabled or
/// rotated-out `tenant:admin` key back to life with no expiry.
async fn a_keys_write_key_cannot_revive_a_stronger_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let writer = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "writer", "scopes": ["keys:write", "keys:read"]}),
        )
        .await;
    let writer = writer.body["key"].as_str().unwrap().to_owned();
    let admin = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "admin", "scopes": ["tenant:admin"]}),
        )
        .await;
    let admin_id = admin.body["id"].as_str().unwrap().to_owned();
    let rotated = server
        .post(
            &format!("/v1/tenants/acme/api-keys/{admin_id}/rotate"),
            json!({"overlap_seconds": 0}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{rotated:?}");
    let revived = server
        .call_as(
            Some(&writer),
            Method::PATCH,
            &format!("/v1/tenants/acme/api-keys/{admin_id}"),
            Some(json!({"expires_at": null, "enabled": true})),
        )
        .await;
    assert_eq!(
        revived.status,
        StatusCode::FORBIDDEN,
        "a keys:write key revived a rotated-out tenant:admin key: {revived:?}"
    );
}
