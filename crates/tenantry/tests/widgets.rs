//! Widget tokens on both backends, against the real server: origin rules,
//! tokens bound to tenant, widget and origin, expiry, forgery, algorithm
//! pinning, signing-key rotation with overlap, CORS preflights for allowed
//! origins only, cross-tenant 404s, and revocation (widget disabled, tenant
//! suspended) seen by a second server process within a second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

on_both_backends!(
    tokens_are_bound_to_tenant_widget_and_origin,
    forged_expired_and_revoked_tokens_are_refused,
    preflight_answers_allowed_origins_only,
    widgets_are_not_visible_across_tenants,
);

mod two_processes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revocation_reaches_every_node_within_a_second() {
        super::revocation_reaches_every_node_within_a_second().await
    }
}

const SHOP: &str = "https://shop.acme.test";

async fn widget(server: &TestServer, tenant: &str, origins: &[&str]) -> String {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/widgets"),
            json!({"name": "Chat", "allowed_origins": origins}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn token(
    server: &TestServer,
    tenant: &str,
    wid: &str,
    origin: &str,
    ttl: Option<i64>,
) -> common::Reply {
    let mut body = json!({"origin": origin});
    if let Some(ttl) = ttl {
        body["ttl_seconds"] = json!(ttl);
    }
    server
        .post(&format!("/v1/tenants/{tenant}/widgets/{wid}/tokens"), body)
        .await
}

async fn issued(server: &TestServer, tenant: &str, wid: &str, origin: &str) -> String {
    let reply = token(server, tenant, wid, origin, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["token"].as_str().unwrap().to_owned()
}

/// `POST /v1/widgets/verify` as a browser on `origin` sends it.
async fn verify(
    server: &TestServer,
    token: &str,
    origin: &str,
    header: Option<&str>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = server
        .client
        .post(server.url("/v1/widgets/verify"))
        .json(&json!({"token": token, "origin": origin}));
    if let Some(h) = header {
        req = req.header("origin", h);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

async fn tokens_are_bound_to_tenant_widget_and_origin(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let wid = widget(&server, "acme", &[SHOP, "https://*.acme.io"]).await;
    // Origins the widget does not allow get no token.
    for bad in [
        "https://acme.io",
        "http://shop.acme.test",
        "https://shop.acme.test:8443",
        "https://evil.test",
    ] {
        token(&server, "acme", &wid, bad, None)
            .await
            .assert_problem(403, "origin_not_allowed");
    }
    token(&server, "acme", &wid, SHOP, Some(901))
        .await
        .assert_invalid("ttl_seconds");
    let t = issued(&server, "acme", &wid, SHOP).await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(t.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "widget+jwt");
    assert!(header["kid"].is_string());
    let (status, body, headers) = verify(&server, &t, SHOP, Some(SHOP)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tenant_id"], "acme");
    assert_eq!(body["widget_id"], wid.as_str());
    assert_eq!(body["origin"], SHOP);
    assert_eq!(headers["access-control-allow-origin"], SHOP);
    // Default lifetime 5 minutes.
    let exp = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let left = exp.timestamp() - chrono::Utc::now().timestamp();
    assert!((200..=301).contains(&left), "{left}");
    // Bound to its origin: another allowed origin, or a mismatched header.
    let sub = issued(&server, "acme", &wid, "https://eu.acme.io").await;
    assert_eq!(
        verify(&server, &sub, "https://eu.acme.io", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        verify(&server, &t, "https://eu.acme.io", None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        verify(&server, &t, SHOP, Some("https://evil.test")).await.0,
        StatusCode::FORBIDDEN
    );
    // Narrowing the widget's origins revokes the tokens of the dropped one.
    let patched = server
        .patch(
            &format!("/v1/tenants/acme/widgets/{wid}"),
            json!({"allowed_origins": ["https://*.acme.io"]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");
    assert_eq!(
        verify(&server, &t, SHOP, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        verify(&server, &sub, "https://eu.acme.io", None).await.0,
        StatusCode::OK
    );
    // An empty list denies every origin.
    let closed = widget(&server, "acme", &[]).await;
    token(&server, "acme", &closed, SHOP, None)
        .await
        .assert_problem(403, "origin_not_allowed");
    // Invalid rules are refused with their index.
    let reply = server
        .post("/v1/tenants/acme/widgets", json!({"name": "x", "allowed_origins": ["https://ok.test", "https://a.test/path", "*", "https://*.com"]}))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "allowed_origins[1]",
            "allowed_origins[2]",
            "allowed_origins[3]"
        ]
    );
    // Signing keys rotate with overlap: the old token still verifies.
    let rotated = server
        .post("/v1/operator/signing-keys/rotate", json!({}))
        .await;
    assert!(rotated.status.is_success(), "{rotated:?}");
    assert_eq!(
        verify(&server, &sub, "https://eu.acme.io", None).await.0,
        StatusCode::OK
    );
    let fresh = issued(&server, "acme", &wid, "https://eu.acme.io").await;
    let kid = |t: &str| -> Value {
        serde_json::from_slice::<Value>(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()["kid"]
            .clone()
    };
    assert_ne!(kid(&fresh), kid(&sub));
    assert_eq!(
        verify(&server, &fresh, "https://eu.acme.io", None).await.0,
        StatusCode::OK
    );
}

async fn forged_expired_and_revoked_tokens_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let wid = widget(&server, "acme", &[SHOP]).await;
    let t = issued(&server, "acme", &wid, SHOP).await;
    let parts: Vec<&str> = t.split('.').collect();
    // Forged claims (another tenant) under the same signature.
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["tenant_id"] = json!("globex");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    // alg none, and an access-token header on a widget payload.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"widget+jwt"}"#),
        parts[1]
    );
    let hs = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"widget+jwt"}"#),
        parts[1],
        parts[2]
    );
    for bad in [forged.as_str(), none.as_str(), hs.as_str(), "garbage", ""] {
        let (status, body, headers) = verify(&server, bad, SHOP, Some(SHOP)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}: {body}");
        assert!(headers.get("access-control-allow-origin").is_none());
    }
    // A widget token is not an access token.
    let reply = server
        .call_as(Some(&t), Method::GET, "/v1/tenants/acme", None)
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Expiry: a 1-second token stops verifying (bounded polling, no timing assertion).
    let short = token(&server, "acme", &wid, SHOP, Some(1)).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    loop {
        let (status, body, _) = verify(&server, &short, SHOP, None).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["code"], "invalid_credentials");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the token never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Suspending the tenant, then disabling the widget.
    assert_eq!(verify(&server, &t, SHOP, None).await.0, StatusCode::OK);
    assert_eq!(
        server
            .post("/v1/tenants/acme/suspend", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        verify(&server, &t, SHOP, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server
            .post("/v1/tenants/acme/reactivate", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(verify(&server, &t, SHOP, None).await.0, StatusCode::OK);
    let off = server
        .patch(
            &format!("/v1/tenants/acme/widgets/{wid}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK);
    assert_eq!(
        verify(&server, &t, SHOP, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    token(&server, "acme", &wid, SHOP, None)
        .await
        .assert_problem(409, "widget_disabled");
    // Every issuance is in the audit log, the token never.
    let rows = db.audit_rows("acme").await;
    assert_eq!(
        rows.iter()
            .filter(|r| r["action"] == "widget_token.issued")
            .count(),
        2
    );
    assert!(!rows.iter().any(|r| r.to_string().contains(&t)));
}

async fn preflight_answers_allowed_origins_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let wid = widget(&server, "acme", &[SHOP]).await;
    let preflight = |origin: &'static str| {
        server
            .client
            .request(Method::OPTIONS, server.url("/v1/widgets/verify"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let ok = preflight(SHOP).await.unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(ok.headers()["access-control-allow-origin"], SHOP);
    assert!(
        ok.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    for bad in ["https://evil.test", "https://acme.test", "null"] {
        let resp = preflight(bad).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{bad}");
        assert!(resp.headers().get("access-control-allow-origin").is_none());
    }
    // Disabled: no longer allowed.
    server
        .patch(
            &format!("/v1/tenants/acme/widgets/{wid}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(
        preflight(SHOP).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

async fn widgets_are_not_visible_across_tenants(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let gw = widget(&server, "globex", &[SHOP]).await;
    let key = |scopes: Value| {
        let server = &server;
        async move {
            server
                .post(
                    "/v1/tenants/acme/api-keys",
                    json!({"name": "k", "scopes": scopes}),
                )
                .await
                .body["key"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let admin = key(json!(["tenant:admin"])).await;
    for (method, path, body) in [
        (Method::GET, "/v1/tenants/globex/widgets".to_owned(), None),
        (
            Method::POST,
            "/v1/tenants/globex/widgets".to_owned(),
            Some(json!({"name": "x", "allowed_origins": []})),
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/globex/widgets/{gw}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::POST,
            format!("/v1/tenants/globex/widgets/{gw}/tokens"),
            Some(json!({"origin": SHOP})),
        ),
    ] {
        let reply = server.call_as(Some(&admin), method, &path, body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
    }
    // globex's widget id under acme's own tenant: no such widget.
    server
        .call_as(
            Some(&admin),
            Method::POST,
            &format!("/v1/tenants/acme/widgets/{gw}/tokens"),
            Some(json!({"origin": SHOP})),
        )
        .await
        .assert_problem(404, "widget_not_found");
    // Issuing needs widgets:issue (or tenant:admin).
    let aw = widget(&server, "acme", &[SHOP]).await;
    let reader = key(json!(["tenant:read"])).await;
    let reply = server
        .call_as(
            Some(&reader),
            Method::POST,
            &format!("/v1/tenants/acme/widgets/{aw}/tokens"),
            Some(json!({"origin": SHOP})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let issuer = key(json!(["widgets:issue"])).await;
    let reply = server
        .call_as(
            Some(&issuer),
            Method::POST,
            &format!("/v1/tenants/acme/widgets/{aw}/tokens"),
            Some(json!({"origin": SHOP})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let _ = ROOT_KEY;
}

async fn revocation_reaches_every_node_within_a_second() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = TestServer::start(&db).await;
    let b = TestServer::start(&db).await;
    a.create_tenant("acme").await;
    let wid = widget(&a, "acme", &[SHOP]).await;
    let t = issued(&a, "acme", &wid, SHOP).await;
    // B verifies (and caches the widget and the tenant).
    assert_eq!(verify(&b, &t, SHOP, None).await.0, StatusCode::OK);
    assert_eq!(
        a.patch(
            &format!("/v1/tenants/acme/widgets/{wid}"),
            json!({"enabled": false})
        )
        .await
        .status,
        StatusCode::OK
    );
    let started = Instant::now();
    while verify(&b, &t, SHOP, None).await.0 != StatusCode::UNAUTHORIZED {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still accepts a disabled widget's token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Re-enabled, then the tenant suspended through A.
    assert_eq!(
        a.patch(
            &format!("/v1/tenants/acme/widgets/{wid}"),
            json!({"enabled": true})
        )
        .await
        .status,
        StatusCode::OK
    );
    let started = Instant::now();
    while verify(&b, &t, SHOP, None).await.0 != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B never saw the widget enabled again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        a.post("/v1/tenants/acme/suspend", json!({})).await.status,
        StatusCode::OK
    );
    let started = Instant::now();
    while verify(&b, &t, SHOP, None).await.0 != StatusCode::FORBIDDEN {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still accepts a suspended tenant's token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
