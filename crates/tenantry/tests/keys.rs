//! API keys over HTTP: creation, listing, verification codes, expiry,
//! rotation overlap, disable/enable, scopes, cross-tenant 404s, and keys as
//! credentials. On both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::client_kit;
use crate::common;

use client_kit::{key_in, root, tenant_in};
use common::{Backend, TestDb, TestServer};
use futures_util::TryStreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tenantry_client::api::keys::{KeyIn, KeyPatchIn, RotateIn, VerifyIn, VerifyOut};
use tenantry_client::api::operator_keys::OperatorKeyIn;
use tenantry_client::api::{TenantStatus, VerifyCode};
use tenantry_client::{Client, ListParams};

on_both_backends!(
    create_list_and_get,
    verify_codes,
    rotation_overlap,
    keys_as_credentials_and_scopes,
    cross_tenant_keys_are_not_found,
    operator_keys,
    last_used_is_recorded,
    keys_never_logged,
    verify_and_resolve_never_fail_on_garbage,
);

async fn create_key(server: &TestServer, tenant: &str, scopes: &[&str]) -> Value {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "svc", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body
}

async fn verify(server: &TestServer, key: &str, scopes: Option<&[&str]>) -> Value {
    let body = match scopes {
        Some(s) => json!({"key": key, "scopes": s}),
        None => json!({"key": key}),
    };
    let reply = server.post("/v1/keys/verify", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body
}

async fn create_list_and_get(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let created = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "backend", "scopes": ["tenant:read", "keys:write"], "environment": "test", "metadata": {"team": "core"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let key = created.body["key"].as_str().unwrap();
    let regex_like = key.starts_with("tnt_sk_test_")
        && key.len() == 50
        && key[12..].bytes().all(|b| b.is_ascii_alphanumeric());
    assert!(regex_like, "{key}");
    let id = created.body["id"].as_str().unwrap();
    assert!(id.starts_with("key_"));
    assert_eq!(created.body["start"], &key[..16]);
    assert_eq!(created.body["scopes"], json!(["tenant:read", "keys:write"]));
    assert_eq!(created.body["environment"], "test");
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["metadata"], json!({"team": "core"}));
    assert!(created.body["expires_at"].is_null());

    let list = server.get("/v1/tenants/acme/api-keys").await;
    assert_eq!(list.status, StatusCode::OK);
    let listed = &list.body["data"][0];
    assert_eq!(listed["id"], id);
    assert!(listed.get("key").is_none(), "the key is shown once only");
    assert!(
        !list.text.contains(&key[16..]),
        "no part of the secret beyond its start"
    );
    assert!(listed["last_used_at"].is_null());
    assert_eq!(
        server
            .get(&format!("/v1/tenants/acme/api-keys/{id}"))
            .await
            .body["name"],
        "backend"
    );

    // Validation.
    for (body, field) in [
        (json!({"name": "x", "scopes": ["root"]}), "scopes[0]"),
        (
            json!({"name": "x", "scopes": ["tenant:read", "keys:everything"]}),
            "scopes[1]",
        ),
        (json!({"name": "", "scopes": []}), "name"),
        (
            json!({"name": "x", "scopes": [], "environment": "prod"}),
            "environment",
        ),
        (
            json!({"name": "x", "scopes": [], "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": [], "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (json!({"name": "x", "scopes": "tenant:read"}), "scopes"),
        (json!({"scopes": []}), "name"),
    ] {
        server
            .post("/v1/tenants/acme/api-keys", body)
            .await
            .assert_invalid(field);
    }
    server
        .post(
            "/v1/tenants/nobody/api-keys",
            json!({"name": "x", "scopes": []}),
        )
        .await
        .assert_problem(404, "tenant_not_found");
    server
        .get("/v1/tenants/acme/api-keys/key_nope")
        .await
        .assert_problem(404, "key_not_found");
    let events: Vec<String> = server.get("/v1/tenants/acme/events").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events, ["tenant.created", "api_key.created"]);
}

/// `POST /v1/keys/verify` through the client: the code, and the answer.
async fn check(client: &Client, key: &str, scopes: &[&str]) -> VerifyOut {
    client
        .verify_key(&VerifyIn {
            key: key.to_owned(),
            scopes: (!scopes.is_empty()).then(|| scopes.iter().map(|s| (*s).to_owned()).collect()),
        })
        .await
        .unwrap()
}

async fn code(client: &Client, key: &str, scopes: &[&str]) -> VerifyCode {
    check(client, key, scopes).await.code
}

async fn verify_codes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();
    let keys = root.keys("acme");
    let created = keys
        .create(&key_in("svc", &["tenant:read", "usage:write"]))
        .await
        .unwrap();
    let (key, id) = (created.key.as_str(), created.details.id.as_str());

    let ok = check(&root, key, &[]).await;
    assert!(ok.valid);
    assert_eq!(ok.code, VerifyCode::Valid);
    assert_eq!(ok.key_id.as_deref(), Some(id));
    let tenant = ok.tenant.unwrap();
    assert_eq!(
        (tenant.id.as_str(), tenant.status, tenant.plan.as_str()),
        ("acme", TenantStatus::Active, "starter")
    );
    assert_eq!(ok.scopes.unwrap(), ["tenant:read", "usage:write"]);
    assert_eq!(
        serde_json::to_value(ok.environment.unwrap()).unwrap(),
        "live"
    );
    assert_eq!(code(&root, key, &["usage:write"]).await, VerifyCode::Valid);
    let scoped = check(&root, key, &["credentials:reveal"]).await;
    assert!(!scoped.valid);
    assert_eq!(scoped.code, VerifyCode::InsufficientScopes);
    assert_eq!(
        code(&root, key, &["no:such:scope"]).await,
        VerifyCode::InsufficientScopes
    );

    // Lookalikes: a changed character breaks the checksum; garbage is not found.
    let mut tampered = key.to_owned().into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    for other in [
        String::from_utf8(tampered).unwrap(),
        "tnt_sk_live_x".into(),
        "".into(),
        "ghp_abc".into(),
    ] {
        let v = check(&root, &other, &[]).await;
        assert_eq!((v.valid, v.code), (false, VerifyCode::NotFound), "{other}");
        assert!(v.key_id.is_none());
    }

    // Disabled, then enabled again.
    let patch = |p: KeyPatchIn| {
        let keys = keys.clone();
        async move { keys.update(id, &p).await }
    };
    let off = patch(KeyPatchIn {
        enabled: Some(false),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(!off.enabled);
    assert_eq!(code(&root, key, &[]).await, VerifyCode::Disabled);
    patch(KeyPatchIn {
        enabled: Some(true),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(code(&root, key, &[]).await, VerifyCode::Valid);

    // Scopes changed: takes effect at once.
    patch(KeyPatchIn {
        scopes: Some(vec!["tenant:read".into()]),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        code(&root, key, &["usage:write"]).await,
        VerifyCode::InsufficientScopes
    );

    // Expiry.
    let soon = chrono::Utc::now() + chrono::Duration::seconds(5);
    let expiring = keys
        .create(&KeyIn {
            expires_at: Some(soon),
            ..key_in("short", &[])
        })
        .await
        .unwrap()
        .key;
    assert_eq!(code(&root, &expiring, &[]).await, VerifyCode::Valid);
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(code(&root, &expiring, &[]).await, VerifyCode::Expired);
    // Setting an expiry in the past (refused), and removing one (null).
    let past = "2000-01-01T00:00:00Z".parse().unwrap();
    let err = patch(KeyPatchIn {
        expires_at: Some(Some(past)),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(err.api().unwrap().field.as_deref(), Some("expires_at"));
    let cleared = patch(KeyPatchIn {
        expires_at: Some(None),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(cleared.expires_at.is_none());

    // Tenant suspended, then reactivated.
    root.tenants().suspend("acme").await.unwrap();
    assert_eq!(code(&root, key, &[]).await, VerifyCode::TenantSuspended);
    root.tenants().reactivate("acme").await.unwrap();
    assert_eq!(code(&root, key, &[]).await, VerifyCode::Valid);

    // Revoked.
    assert!(keys.revoke(id).await.unwrap().revoked_at.is_some());
    assert_eq!(code(&root, key, &[]).await, VerifyCode::Revoked);
    let err = keys.rotate(id, &RotateIn::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("key_revoked")));

    // Tenant deleted.
    let other = keys.create(&key_in("other", &[])).await.unwrap().key;
    root.tenants().delete("acme").await.unwrap();
    assert_eq!(code(&root, &other, &[]).await, VerifyCode::NotFound);
}

async fn rotation_overlap(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();
    let keys = root.keys("acme");
    let old = keys
        .create(&KeyIn {
            environment: Some("test".into()),
            metadata: Some(json!({"a": 1})),
            ..key_in("billing", &["usage:read"])
        })
        .await
        .unwrap();
    let (old_key, old_id) = (old.key.as_str(), old.details.id.as_str());

    let overlap = |seconds: i64| RotateIn {
        overlap_seconds: Some(seconds),
    };
    let rotated = keys.rotate(old_id, &overlap(5)).await.unwrap();
    let new_key = rotated.key.as_str();
    assert_ne!(new_key, old_key);
    assert!(new_key.starts_with("tnt_sk_test_"));
    assert_eq!(rotated.details.name, "billing");
    assert_eq!(rotated.details.scopes, ["usage:read"]);
    assert_eq!(rotated.details.metadata, json!({"a": 1}));
    assert_eq!(rotated.details.rotated_from.as_deref(), Some(old_id));

    // Both work during the overlap…
    assert_eq!(code(&root, old_key, &[]).await, VerifyCode::Valid);
    assert_eq!(code(&root, new_key, &[]).await, VerifyCode::Valid);
    assert!(keys.get(old_id).await.unwrap().expires_at.is_some());
    // …and the old one is EXPIRED after it.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(code(&root, old_key, &[]).await, VerifyCode::Expired);
    assert_eq!(code(&root, new_key, &[]).await, VerifyCode::Valid);

    // Overlap 0 (the default) ends the old key at once.
    let again = keys
        .rotate(&rotated.details.id, &RotateIn::default())
        .await
        .unwrap();
    assert_eq!(code(&root, new_key, &[]).await, VerifyCode::Expired);
    assert_eq!(code(&root, &again.key, &[]).await, VerifyCode::Valid);
    for bad in [-1, 99_999_999] {
        let err = keys.rotate(old_id, &overlap(bad)).await.unwrap_err();
        assert_eq!(err.api().unwrap().field.as_deref(), Some("overlap_seconds"));
    }
}

async fn keys_as_credentials_and_scopes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let reader = create_key(&server, "acme", &["tenant:read"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = create_key(&server, "acme", &["tenant:admin"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys_writer = create_key(&server, "acme", &["keys:write", "keys:read"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bearer and X-API-Key both work.
    assert_eq!(
        server
            .call_as(Some(&reader), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
    let via_header = server
        .client
        .get(server.url("/v1/tenants/acme"))
        .header("x-api-key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(via_header.status(), StatusCode::OK);

    // A missing scope is 403 naming it.
    let denied = server
        .call_as(
            Some(&reader),
            Method::GET,
            "/v1/tenants/acme/api-keys",
            None,
        )
        .await;
    let body = denied.assert_problem(403, "insufficient_scope");
    assert!(
        body["detail"].as_str().unwrap().contains("keys:read"),
        "{body}"
    );
    server
        .call_as(
            Some(&reader),
            Method::POST,
            "/v1/tenants/acme/domains",
            Some(json!({"domain": "acme.com"})),
        )
        .await
        .assert_problem(403, "insufficient_scope");
    // tenant:admin implies every tenant scope.
    assert_eq!(
        server
            .call_as(Some(&admin), Method::GET, "/v1/tenants/acme/api-keys", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .call_as(
                Some(&admin),
                Method::POST,
                "/v1/tenants/acme/domains",
                Some(json!({"domain": "acme.com"}))
            )
            .await
            .status,
        StatusCode::CREATED
    );
    // Operator-only actions.
    server
        .call_as(Some(&admin), Method::GET, "/v1/tenants", None)
        .await
        .assert_problem(403, "operator_required");
    server
        .call_as(
            Some(&admin),
            Method::POST,
            "/v1/tenants/acme/suspend",
            Some(json!({})),
        )
        .await
        .assert_problem(403, "operator_required");
    server
        .call_as(
            Some(&admin),
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "evil", "name": "x"})),
        )
        .await
        .assert_problem(403, "operator_required");
    // A key cannot hand out scopes it lacks.
    let escalate = server
        .call_as(
            Some(&keys_writer),
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(json!({"name": "x", "scopes": ["tenant:admin"]})),
        )
        .await;
    escalate.assert_problem(403, "insufficient_scope");
    let fine = server
        .call_as(
            Some(&keys_writer),
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(json!({"name": "x", "scopes": ["keys:read"]})),
        )
        .await;
    assert_eq!(fine.status, StatusCode::CREATED);
    let events = server.get("/v1/tenants/acme/events").await;
    let last = events.body["data"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last["actor"].as_str().unwrap().starts_with("key:key_"),
        "{last}"
    );

    // Revoked or unknown keys are 401; a suspended tenant's key is 403.
    let revoked = create_key(&server, "acme", &["tenant:read"]).await;
    server
        .post(
            &format!(
                "/v1/tenants/acme/api-keys/{}/revoke",
                revoked["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    server
        .call_as(
            revoked["key"].as_str(),
            Method::GET,
            "/v1/tenants/acme",
            None,
        )
        .await
        .assert_problem(401, "unauthorized");
    server.post("/v1/tenants/acme/suspend", json!({})).await;
    server
        .call_as(Some(&reader), Method::GET, "/v1/tenants/acme", None)
        .await
        .assert_problem(403, "tenant_suspended");
}

async fn cross_tenant_keys_are_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let acme_admin = create_key(&server, "acme", &["tenant:admin"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let globex_key = create_key(&server, "globex", &["tenant:read"]).await;
    let globex_id = globex_key["id"].as_str().unwrap();
    let as_acme = |method: Method, path: String, body: Option<Value>| {
        let key = acme_admin.clone();
        let server = &server;
        async move { server.call_as(Some(&key), method, &path, body).await }
    };
    // Every path under another tenant is 404, never 403.
    for (method, path, body) in [
        (Method::GET, "/v1/tenants/globex".to_owned(), None),
        (Method::GET, "/v1/tenants/globex/events".to_owned(), None),
        (Method::GET, "/v1/tenants/globex/domains".to_owned(), None),
        (
            Method::POST,
            "/v1/tenants/globex/domains".to_owned(),
            Some(json!({"domain": "x.com"})),
        ),
        (Method::GET, "/v1/tenants/globex/api-keys".to_owned(), None),
        (
            Method::POST,
            "/v1/tenants/globex/api-keys".to_owned(),
            Some(json!({"name": "x", "scopes": []})),
        ),
        (
            Method::GET,
            format!("/v1/tenants/globex/api-keys/{globex_id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/globex/api-keys/{globex_id}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::POST,
            format!("/v1/tenants/globex/api-keys/{globex_id}/revoke"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/tenants/globex/api-keys/{globex_id}/rotate"),
            Some(json!({})),
        ),
        (Method::GET, "/v1/tenants/no-such-tenant".to_owned(), None),
    ] {
        let reply = as_acme(method.clone(), path.clone(), body).await;
        reply.assert_problem(404, "tenant_not_found");
    }
    // A key id of globex used under acme's own path is simply not found.
    as_acme(
        Method::GET,
        format!("/v1/tenants/acme/api-keys/{globex_id}"),
        None,
    )
    .await
    .assert_problem(404, "key_not_found");
    as_acme(
        Method::POST,
        format!("/v1/tenants/acme/api-keys/{globex_id}/revoke"),
        Some(json!({})),
    )
    .await
    .assert_problem(404, "key_not_found");
    // Verifying globex's key as acme says NOT_FOUND.
    let v = server
        .call_as(
            Some(&acme_admin),
            Method::POST,
            "/v1/keys/verify",
            Some(json!({"key": globex_key["key"]})),
        )
        .await;
    assert_eq!(v.body["code"], "NOT_FOUND");
    assert!(v.body.get("tenant").is_none());
    // And globex's key is untouched.
    assert_eq!(
        verify(&server, globex_key["key"].as_str().unwrap(), None).await["code"],
        "VALID"
    );
}

async fn operator_keys(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    let created = root
        .operator_keys()
        .create(&OperatorKeyIn {
            name: "ci".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (key, id) = (created.key.as_str(), created.details.id.as_str());
    assert!(key.starts_with("tnt_op_live_"));
    // It acts on every tenant.
    let operator = root.with_key(key).unwrap();
    operator.tenants().create(&tenant_in("acme")).await.unwrap();
    let events: Vec<_> = root
        .tenants()
        .events("acme", ListParams::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events[0].actor, format!("operator:{id}"));
    // But cannot mint operator keys.
    let err = operator
        .operator_keys()
        .create(&OperatorKeyIn {
            name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("root_key_required"))
    );
    let list = root.operator_keys().list().await.unwrap();
    assert_eq!(list.data[0].id, id);
    assert!(!format!("{list:?}").contains(&key[16..]));
    // Verify treats it as no tenant key.
    assert_eq!(code(&root, key, &[]).await, VerifyCode::NotFound);
    root.operator_keys().revoke(id).await.unwrap();
    let err = operator.tenants().get("acme").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some("unauthorized"))
    );
    let err = root
        .operator_keys()
        .create(&OperatorKeyIn::default())
        .await
        .unwrap_err();
    assert_eq!(err.api().unwrap().field.as_deref(), Some("name"));
}

async fn last_used_is_recorded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_KEY_USAGE_FLUSH_INTERVAL", "100ms"),
        ],
    )
    .await;
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();
    let keys = root.keys("acme");
    let created = keys.create(&key_in("svc", &["tenant:read"])).await.unwrap();
    let id = created.details.id.as_str();
    assert!(keys.get(id).await.unwrap().last_used_at.is_none());
    for _ in 0..5 {
        code(&root, &created.key, &[]).await;
    }
    let mut seen = None;
    for _ in 0..50 {
        seen = keys.get(id).await.unwrap().last_used_at;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.is_some(),
        "last_used_at is written by the flush worker"
    );
}

async fn keys_never_logged(backend: Backend) {
    // The default format (pretty) and json, each at trace level.
    for format in ["pretty", "json"] {
        keys_never_logged_in(backend, format).await;
    }
}

async fn keys_never_logged_in(backend: Backend, format: &str) {
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_LOG_LEVEL", "trace"),
            ("TENANTRY_LOG", format),
        ],
    )
    .await;
    server.create_tenant("acme").await;
    let created = create_key(&server, "acme", &["tenant:admin"]).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let rotated = server
        .post(
            &format!(
                "/v1/tenants/acme/api-keys/{}/rotate",
                created["id"].as_str().unwrap()
            ),
            json!({"overlap_seconds": 60}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    verify(&server, &key, None).await;
    server
        .call_as(Some(&rotated), Method::GET, "/v1/tenants/acme", None)
        .await;
    let token = server
        .call_as(Some(&rotated), Method::POST, "/v1/tokens", Some(json!({})))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .call_as(Some(&token), Method::GET, "/v1/tenants/acme", None)
        .await;
    server.post("/v1/resolve", json!({"api_key": key})).await;
    server.post("/v1/resolve", json!({"token": token})).await;
    let operator = server
        .post("/v1/operator-keys", json!({"name": "x"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .call_as(Some(&operator), Method::GET, "/v1/tenants", None)
        .await;
    // Wrong and tampered credentials: the 401 paths. The tampered key
    // differs from the real one in its last character only.
    let tamper = |credential: &str| {
        let mut changed = credential.to_owned();
        let last = changed.pop().unwrap();
        changed.push(if last == 'A' { 'B' } else { 'A' });
        changed
    };
    let tampered = tamper(&rotated);
    let tampered_token = tamper(&token);
    let wrong_operator = tamper(&operator);
    let wrong_root = tamper(common::ROOT_KEY);
    let send = |headers: Vec<(&'static str, String)>, path: &'static str| {
        let server = &server;
        async move {
            let mut req = server.client.get(server.url(path));
            for (name, value) in headers {
                req = req.header(name, value);
            }
            common::Reply::from(req.send().await.unwrap()).await
        }
    };
    for credential in [&tampered, &tampered_token, &wrong_operator, &wrong_root] {
        for header in ["x-api-key", "authorization"] {
            let value = if header == "authorization" {
                format!("Bearer {credential}")
            } else {
                credential.to_string()
            };
            let reply = send(vec![(header, value.clone())], "/v1/tenants/acme").await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
            let reply = send(vec![(header, value)], "/v1/resolve").await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        }
    }
    // Good credentials through X-API-Key and GET /v1/resolve headers.
    for credential in [&rotated, &operator] {
        let reply = send(vec![("x-api-key", credential.to_string())], "/v1/tenants").await;
        assert!(
            reply.status.is_success() || reply.status == StatusCode::FORBIDDEN,
            "{reply:?}"
        );
    }
    let reply = send(
        vec![
            ("x-api-key", rotated.clone()),
            ("authorization", format!("Bearer {token}")),
            ("x-forwarded-host", "acme.example.test".into()),
        ],
        "/v1/resolve",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = send(
        vec![
            ("authorization", format!("Bearer {}", common::ROOT_KEY)),
            ("x-tenant-id", "acme".into()),
        ],
        "/v1/resolve",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    server.stop().await;
    let logs = server.logs();
    // The level really was trace: trace lines are there.
    let trace_line = match format {
        "json" => logs.lines().any(|l| l.contains("\"level\":\"TRACE\"")),
        _ => logs.lines().any(|l| l.contains("TRACE")),
    };
    assert!(trace_line, "{format}: no TRACE line in the output");
    assert!(logs.len() > 1000, "trace logging produced output");
    for secret in [
        key.as_str(),
        &key[16..],
        rotated.as_str(),
        // The secret part the tampered key shares with the real one.
        &rotated[16..rotated.len() - 1],
        tampered.as_str(),
        token.as_str(),
        &token[..token.len() - 1],
        operator.as_str(),
        &operator[16..operator.len() - 1],
        common::ROOT_KEY,
        &common::ROOT_KEY[..common::ROOT_KEY.len() - 1],
    ] {
        assert!(
            !logs.contains(secret),
            "{format}: a secret appeared in the logs"
        );
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !logs.contains(signature),
        "{format}: a token signature appeared"
    );
}

/// Property-style: thousands of arbitrary inputs to verify and resolve
/// never produce a 5xx (nor kill the server).
async fn verify_and_resolve_never_fail_on_garbage(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let real = create_key(&server, "acme", &[]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces = [
        "tnt_sk_live_",
        "tnt_op_test_",
        "eyJhbGciOiJub25lIn0",
        ".",
        "..",
        "\u{0}",
        "é",
        "🦀",
        "%",
        "\"",
        "\\",
        "'",
        "acme",
        "example.com",
        ":",
        "::1",
        "[",
        "]",
        " ",
        "\t",
        "\n",
        "A",
        "z",
        "0",
        "-",
        "_",
        &real[..20],
        &real[20..],
    ];
    for i in 0..600 {
        let mut s = String::new();
        for _ in 0..(next() % 12) {
            s.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        if i % 7 == 0 {
            s = s.repeat((next() % 200) as usize + 1);
        }
        let field = ["host", "api_key", "token", "tenant_id"][i % 4];
        let bodies = [
            json!({"key": s}),
            json!({"key": s, "scopes": [s.clone()]}),
            json!({field: s}),
            json!({"host": s, "api_key": s, "token": s, "tenant_id": s}),
        ];
        for (j, body) in bodies.into_iter().enumerate() {
            let path = if j < 2 {
                "/v1/keys/verify"
            } else {
                "/v1/resolve"
            };
            let reply = server.post(path, body.clone()).await;
            assert!(reply.status.as_u16() < 500, "{path} {body} → {reply:?}");
            if s.contains('\0') {
                // No string of the API may hold a NUL: a malformed request.
                reply.assert_problem(422, "validation_failed");
            } else if path == "/v1/keys/verify" {
                assert_eq!(reply.status, StatusCode::OK, "{body} → {reply:?}");
            } else if !reply.status.is_success() {
                assert_eq!(reply.content_type(), "application/problem+json");
            }
        }
        // The GET form, with the string in headers (where valid as a header).
        if let Ok(value) = reqwest::header::HeaderValue::from_str(&s) {
            let reply = server
                .client
                .get(server.url("/v1/resolve"))
                .header("x-api-key", value.clone())
                .header("x-forwarded-host", value.clone())
                .header("x-tenant-id", value)
                .send()
                .await
                .unwrap();
            assert!(reply.status().as_u16() < 500, "{s:?} → {}", reply.status());
        }
    }
    // Wrong shapes are 4xx too.
    for body in [
        json!({"key": 1}),
        json!({"key": null}),
        json!({}),
        json!({"key": "x", "scopes": "all"}),
        json!({"key": ["x"]}),
    ] {
        let reply = server.post("/v1/keys/verify", body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
}
