//! Tenant resolution and access tokens over HTTP, on both backends; and
//! cache invalidation across two server processes on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

on_both_backends!(
    resolution_chain,
    resolve_from_headers,
    tokens,
    token_forgeries,
    signing_key_rotation
);

async fn start(db: &TestDb, extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
        ("TENANTRY_BASE_DOMAIN", "example.test"),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(db, &env).await
}

async fn key_for(server: &TestServer, tenant: &str, scopes: &[&str]) -> String {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "k", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["key"].as_str().unwrap().to_owned()
}

/// Marks a claimed custom domain verified (operator `force`, no DNS).
async fn force_verify(server: &TestServer, tenant: &str, domain: &str) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/domains/{domain}/verify"),
            json!({"force": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
}

async fn resolve(server: &TestServer, body: Value) -> common::Reply {
    server
        .call_as(None, Method::POST, "/v1/resolve", Some(body))
        .await
}

fn matched(reply: &common::Reply) -> (String, String) {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    (
        reply.body["tenant"]["id"].as_str().unwrap().to_owned(),
        reply.body["matched_by"].as_str().unwrap().to_owned(),
    )
}

async fn resolution_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server
        .post(
            "/v1/tenants",
            json!({"id": "acme", "name": "Acme", "plan": "professional", "region": "eu-west-1"}),
        )
        .await;
    server.create_tenant("globex").await;
    server
        .post(
            "/v1/tenants/acme/domains",
            json!({"domain": "support.acme.com"}),
        )
        .await;
    force_verify(&server, "acme", "support.acme.com").await;
    let globex_key = key_for(&server, "globex", &[]).await;

    let by_domain = resolve(&server, json!({"host": "Support.Acme.com:8443"})).await;
    assert_eq!(matched(&by_domain), ("acme".into(), "custom_domain".into()));
    // An anonymous caller learns only what a gateway needs.
    assert_eq!(
        by_domain.body["tenant"],
        json!({"id": "acme", "status": "active", "plan": "professional"})
    );
    // A trusted caller (here the operator) gets the whole snapshot.
    let by_domain = server
        .post("/v1/resolve", json!({"host": "Support.Acme.com:8443"}))
        .await;
    assert_eq!(matched(&by_domain), ("acme".into(), "custom_domain".into()));
    let mut tenant = by_domain.body["tenant"].clone();
    let config = tenant.as_object_mut().unwrap().remove("config").unwrap();
    assert_eq!(
        tenant,
        json!({"id": "acme", "name": "Acme", "status": "active", "plan": "professional", "region": "eu-west-1", "subdomain": "acme"})
    );
    // The snapshot carries the effective features and limits.
    assert_eq!(config["features"]["analytics"], true);
    assert_eq!(config["limits"]["agents"], 25);
    assert_eq!(config["rate_limits"]["api_calls_per_hour"]["limit"], 10000);
    assert_eq!(config["quotas"]["messages_outbound"], 10000);
    assert_eq!(
        matched(&resolve(&server, json!({"host": "globex.example.test"})).await),
        ("globex".into(), "subdomain".into())
    );
    assert_eq!(
        matched(&resolve(&server, json!({"api_key": globex_key})).await),
        ("globex".into(), "api_key".into())
    );
    // The host decides, but a presented key is still checked: it must be
    // valid and belong to the host's tenant.
    let acme_key = key_for(&server, "acme", &[]).await;
    assert_eq!(
        matched(
            &resolve(
                &server,
                json!({"host": "support.acme.com", "api_key": acme_key})
            )
            .await
        ),
        ("acme".into(), "custom_domain".into())
    );
    resolve(
        &server,
        json!({"host": "support.acme.com", "api_key": globex_key}),
    )
    .await
    .assert_problem(403, "tenant_mismatch");
    resolve(
        &server,
        json!({"host": "acme.example.test", "api_key": "tnt_sk_live_garbage"}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    // Unknown hosts fall through to the key.
    assert_eq!(
        matched(
            &resolve(
                &server,
                json!({"host": "nobody.example.test", "api_key": globex_key})
            )
            .await
        )
        .1,
        "api_key"
    );
    resolve(&server, json!({"host": "nobody.example.test"}))
        .await
        .assert_problem(404, "tenant_not_found");
    resolve(&server, json!({"host": "a.b.example.test"}))
        .await
        .assert_problem(404, "tenant_not_found");
    resolve(&server, json!({}))
        .await
        .assert_problem(404, "tenant_not_found");
    resolve(&server, json!({"api_key": "tnt_sk_live_bogus"}))
        .await
        .assert_problem(401, "invalid_credentials");

    // tenant_id is honoured only for trusted callers.
    resolve(&server, json!({"tenant_id": "globex"}))
        .await
        .assert_problem(404, "tenant_not_found");
    let plain = key_for(&server, "acme", &["tenant:read"]).await;
    let plain_reply = server
        .call_as(
            Some(&plain),
            Method::POST,
            "/v1/resolve",
            Some(json!({"tenant_id": "globex"})),
        )
        .await;
    plain_reply.assert_problem(404, "tenant_not_found");
    let trusted = key_for(&server, "acme", &["resolve:trusted"]).await;
    let by_header = server
        .call_as(
            Some(&trusted),
            Method::POST,
            "/v1/resolve",
            Some(json!({"tenant_id": "globex"})),
        )
        .await;
    assert_eq!(matched(&by_header), ("globex".into(), "header".into()));
    let by_root = server
        .call(
            Method::POST,
            "/v1/resolve",
            Some(json!({"tenant_id": "acme"})),
        )
        .await;
    assert_eq!(matched(&by_root), ("acme".into(), "header".into()));

    // Changes are seen at once (caches are invalidated).
    server.post("/v1/tenants/acme/suspend", json!({})).await;
    resolve(&server, json!({"host": "support.acme.com"}))
        .await
        .assert_problem(403, "tenant_suspended");
    resolve(&server, json!({"host": "acme.example.test"}))
        .await
        .assert_problem(403, "tenant_suspended");
    server.post("/v1/tenants/acme/reactivate", json!({})).await;
    assert_eq!(
        matched(&resolve(&server, json!({"host": "support.acme.com"})).await).0,
        "acme"
    );
    server
        .delete("/v1/tenants/acme/domains/support.acme.com")
        .await;
    resolve(&server, json!({"host": "support.acme.com"}))
        .await
        .assert_problem(404, "tenant_not_found");
    server
        .post(
            "/v1/tenants/globex/domains",
            json!({"domain": "support.acme.com"}),
        )
        .await;
    force_verify(&server, "globex", "support.acme.com").await;
    assert_eq!(
        matched(&resolve(&server, json!({"host": "support.acme.com"})).await).0,
        "globex"
    );
    server
        .patch("/v1/tenants/acme", json!({"subdomain": "acme-inc"}))
        .await;
    resolve(&server, json!({"host": "acme.example.test"}))
        .await
        .assert_problem(404, "tenant_not_found");
    assert_eq!(
        matched(&resolve(&server, json!({"host": "acme-inc.example.test"})).await).0,
        "acme"
    );
    // A host not yet known (negatively cached) resolves once created.
    resolve(&server, json!({"host": "initech.example.test"}))
        .await
        .assert_problem(404, "tenant_not_found");
    server.create_tenant("initech").await;
    assert_eq!(
        matched(&resolve(&server, json!({"host": "initech.example.test"})).await).0,
        "initech"
    );
    server.delete("/v1/tenants/globex").await;
    resolve(&server, json!({"api_key": globex_key}))
        .await
        .assert_problem(401, "invalid_credentials");
    resolve(&server, json!({"host": "globex.example.test"}))
        .await
        .assert_problem(404, "tenant_not_found");
    // Purge and re-create with the same id: the old key must not come back.
    server
        .call(Method::DELETE, "/v1/tenants/globex?purge=true", None)
        .await;
    server.create_tenant("globex").await;
    resolve(&server, json!({"api_key": globex_key}))
        .await
        .assert_problem(401, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tenant_in_single_tenant_mode() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = start(&db, &[("TENANTRY_DEFAULT_TENANT", "solo")]).await;
    resolve(&server, json!({}))
        .await
        .assert_problem(404, "tenant_not_found");
    server.create_tenant("solo").await;
    assert_eq!(
        matched(&resolve(&server, json!({"host": "anything.example.org"})).await),
        ("solo".into(), "default".into())
    );
}

async fn resolve_from_headers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server
        .post(
            "/v1/tenants",
            json!({"id": "acme", "name": "Acme", "plan": "enterprise"}),
        )
        .await;
    let key = key_for(&server, "acme", &[]).await;
    let get = |headers: Vec<(&'static str, String)>| {
        let mut req = server.client.get(server.url("/v1/resolve"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { common::Reply::from(req.send().await.unwrap()).await }
    };
    let by_host = get(vec![("x-forwarded-host", "acme.example.test".into())]).await;
    assert_eq!(by_host.status, StatusCode::OK, "{by_host:?}");
    assert_eq!(by_host.headers.get("x-tenant-id").unwrap(), "acme");
    assert_eq!(by_host.headers.get("x-tenant-plan").unwrap(), "enterprise");
    assert_eq!(by_host.body["matched_by"], "subdomain");
    assert_eq!(
        get(vec![("x-api-key", key.clone())]).await.body["matched_by"],
        "api_key"
    );
    assert_eq!(
        get(vec![("authorization", format!("Bearer {key}"))])
            .await
            .body["matched_by"],
        "api_key"
    );
    get(vec![("x-api-key", "tnt_sk_live_nope".into())])
        .await
        .assert_problem(401, "invalid_credentials");
    get(vec![]).await.assert_problem(404, "tenant_not_found");
    // X-Tenant-ID alone is ignored; with an operator credential it is honoured.
    get(vec![("x-tenant-id", "acme".into())])
        .await
        .assert_problem(404, "tenant_not_found");
    let trusted = get(vec![
        ("x-tenant-id", "acme".into()),
        ("authorization", format!("Bearer {}", common::ROOT_KEY)),
    ])
    .await;
    assert_eq!(trusted.body["matched_by"], "header", "{trusted:?}");
    server.post("/v1/tenants/acme/suspend", json!({})).await;
    get(vec![("x-forwarded-host", "acme.example.test".into())])
        .await
        .assert_problem(403, "tenant_suspended");
}

async fn tokens(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let key = key_for(&server, "acme", &["tenant:read", "keys:read"]).await;
    let made = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tokens",
            Some(json!({"ttl_seconds": 600})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert_eq!(made.body["token_type"], "Bearer");
    assert_eq!(made.body["expires_in"], 600);
    let token = made.body["token"].as_str().unwrap().to_owned();

    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["tenant_id"], "acme");
    assert_eq!(claims["scopes"], json!(["tenant:read", "keys:read"]));
    assert!(claims["key_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );

    let jwks = server
        .call_as(None, Method::GET, "/.well-known/jwks.json", None)
        .await;
    assert_eq!(jwks.status, StatusCode::OK);
    let jwk = &jwks.body["keys"][0];
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["crv"].as_str(),
            jwk["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert_eq!(jwk["kid"], header["kid"]);

    // A token works wherever a key does, with the key's scopes.
    assert_eq!(
        server
            .call_as(Some(&token), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .call_as(Some(&token), Method::GET, "/v1/tenants/acme/api-keys", None)
            .await
            .status,
        StatusCode::OK
    );
    server
        .call_as(Some(&token), Method::GET, "/v1/tenants/globex", None)
        .await
        .assert_problem(404, "tenant_not_found");
    server
        .call_as(
            Some(&token),
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(json!({"name": "x", "scopes": []})),
        )
        .await
        .assert_problem(403, "insufficient_scope");
    assert_eq!(
        matched(&resolve(&server, json!({"token": token})).await),
        ("acme".into(), "token".into())
    );
    let via_get = server
        .client
        .get(server.url("/v1/resolve"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(via_get.headers().get("x-tenant-id").unwrap(), "acme");

    // Narrower scopes, limits, and who may mint.
    let narrow = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tokens",
            Some(json!({"scopes": ["tenant:read"]})),
        )
        .await;
    assert_eq!(narrow.status, StatusCode::CREATED);
    server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tokens",
            Some(json!({"scopes": ["keys:write"]})),
        )
        .await
        .assert_problem(403, "insufficient_scope");
    server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tokens",
            Some(json!({"ttl_seconds": 3601})),
        )
        .await
        .assert_invalid("ttl_seconds");
    server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tokens",
            Some(json!({"ttl_seconds": 0})),
        )
        .await
        .assert_invalid("ttl_seconds");
    server
        .call_as(Some(&token), Method::POST, "/v1/tokens", Some(json!({})))
        .await
        .assert_problem(403, "api_key_required");
    server
        .post("/v1/tokens", json!({}))
        .await
        .assert_problem(403, "api_key_required");

    // Suspension and key revocation end the token's use.
    server.post("/v1/tenants/acme/suspend", json!({})).await;
    server
        .call_as(Some(&token), Method::GET, "/v1/tenants/acme", None)
        .await
        .assert_problem(403, "tenant_suspended");
    resolve(&server, json!({"token": token}))
        .await
        .assert_problem(403, "tenant_suspended");
    server.post("/v1/tenants/acme/reactivate", json!({})).await;
    let key_id = claims["key_id"].as_str().unwrap();
    server
        .post(
            &format!("/v1/tenants/acme/api-keys/{key_id}/revoke"),
            json!({}),
        )
        .await;
    server
        .call_as(Some(&token), Method::GET, "/v1/tenants/acme", None)
        .await
        .assert_problem(401, "unauthorized");
    resolve(&server, json!({"token": token}))
        .await
        .assert_problem(401, "invalid_credentials");
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

async fn token_forgeries(backend: Backend) {
    use ed25519_dalek::Signer;
    use hmac::Mac;
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server.create_tenant("acme").await;
    let key = key_for(&server, "acme", &["tenant:admin"]).await;
    let token = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tokens",
            Some(json!({"ttl_seconds": 600})),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A one-second token, for the expiry case at the end.
    let short = server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/tokens",
            Some(json!({"ttl_seconds": 1})),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    let kid = header["kid"].clone();
    let jwks = server
        .call_as(None, Method::GET, "/.well-known/jwks.json", None)
        .await
        .body;
    let public_key = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();

    let accepted = |t: String| {
        let server = &server;
        async move {
            let reply = server
                .call_as(Some(&t), Method::GET, "/v1/tenants/acme", None)
                .await;
            let resolved = resolve(server, json!({"token": t})).await;
            (reply.status, resolved.status)
        }
    };
    assert_eq!(
        accepted(token.clone()).await,
        (StatusCode::OK, StatusCode::OK),
        "the genuine token works"
    );

    // alg: none, unsigned.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&claims)
    );
    // HS256 keyed with the public key (algorithm confusion).
    let hs_input = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT", "kid": kid})),
        b64(&claims)
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&public_key).unwrap();
    mac.update(hs_input.as_bytes());
    let hs256 = format!(
        "{hs_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    // EdDSA, but signed with a foreign key (same kid, and an unknown kid).
    let foreign = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let forge = |kid: &Value| {
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})),
            b64(&claims)
        );
        let sig = foreign.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    };
    let foreign_same_kid = forge(&kid);
    let foreign_other_kid = forge(&json!("sig_attacker"));
    // The genuine signature over changed claims (longer expiry, other tenant).
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let mut other_tenant = claims.clone();
    other_tenant["tenant_id"] = json!("globex");
    let tampered_tenant = format!("{}.{}.{}", parts[0], b64(&other_tenant), parts[2]);
    for (name, forged) in [
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("foreign key, same kid", foreign_same_kid),
        ("foreign key, unknown kid", foreign_other_kid),
        ("tampered claims", tampered),
        ("tampered tenant", tampered_tenant),
        ("garbage", "eyJhbGciOiJFZERTQSJ9.e30.AAAA".to_owned()),
    ] {
        let (api, resolved) = accepted(forged).await;
        assert_eq!(api, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(resolved, StatusCode::UNAUTHORIZED, "{name}");
    }
    // Expired (the long one still works).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(accepted(token).await, (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        accepted(short).await,
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED),
        "expired"
    );
}

async fn signing_key_rotation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = start(&db, &[]).await;
    server.create_tenant("acme").await;
    let key = key_for(&server, "acme", &["tenant:read"]).await;
    let first = server
        .call_as(Some(&key), Method::POST, "/v1/tokens", Some(json!({})))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated = server
        .post("/v1/operator/signing-keys/rotate", json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    let second = server
        .call_as(Some(&key), Method::POST, "/v1/tokens", Some(json!({})))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = |t: &str| -> Value {
        serde_json::from_slice::<Value>(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()["kid"]
            .clone()
    };
    assert_ne!(kid(&first), kid(&second));
    assert_eq!(kid(&second), rotated.body["kid"]);
    let jwks = server
        .call_as(None, Method::GET, "/.well-known/jwks.json", None)
        .await
        .body;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the previous key is still published"
    );
    // Tokens of the previous key still verify.
    assert_eq!(
        server
            .call_as(Some(&first), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .call_as(Some(&second), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
    // Rotation is operator-only.
    server
        .call_as(
            Some(&key),
            Method::POST,
            "/v1/operator/signing-keys/rotate",
            Some(json!({})),
        )
        .await
        .assert_problem(403, "operator_required");

    // The command does the same, and a restarted server keeps both keys.
    server.stop().await;
    let (code, out, err) = db
        .run_command(
            &["signing-keys", "rotate"],
            &[("TENANTRY_ROOT_KEY", common::ROOT_KEY)],
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sig_"), "{out}");
    let server = start(&db, &[]).await;
    assert_eq!(
        server
            .call_as(Some(&first), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        server
            .call_as(Some(&second), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
    let third = server
        .call_as(Some(&key), Method::POST, "/v1/tokens", Some(json!({})))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        kid(&third).as_str().unwrap(),
        out.trim().rsplit(' ').next().unwrap()
    );
}

/// Two server processes on one PostgreSQL database: a change made through
/// one is honoured by the other within a second (LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_invalidation_reaches_every_process() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = start(&db, &[]).await;
    let b = start(&db, &[]).await;
    a.create_tenant("acme").await;
    a.create_tenant("globex").await;
    let key = a
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": []}),
        )
        .await
        .body;
    let secret = key["key"].as_str().unwrap().to_owned();
    // B caches the key, the tenant and the host as valid.
    assert_eq!(
        b.post("/v1/keys/verify", json!({"key": secret})).await.body["code"],
        "VALID"
    );
    assert_eq!(
        matched(&resolve(&b, json!({"host": "globex.example.test"})).await).0,
        "globex"
    );

    let within_a_second = |check: Box<
        dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send,
    >| async move {
        let started = Instant::now();
        loop {
            if check().await {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "not seen within one second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    a.post(
        &format!(
            "/v1/tenants/acme/api-keys/{}/revoke",
            key["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    let b_url = b.url("/v1/keys/verify");
    let client = b.client.clone();
    let s = secret.clone();
    within_a_second(Box::new(move || {
        let (client, url, s) = (client.clone(), b_url.clone(), s.clone());
        Box::pin(async move {
            let r: Value = client
                .post(url)
                .bearer_auth(common::ROOT_KEY)
                .json(&json!({"key": s}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["code"] == "REVOKED"
        })
    }))
    .await;

    a.post("/v1/tenants/globex/suspend", json!({})).await;
    let url = b.url("/v1/resolve");
    let client = b.client.clone();
    within_a_second(Box::new(move || {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(async move {
            client
                .post(url)
                .json(&json!({"host": "globex.example.test"}))
                .send()
                .await
                .unwrap()
                .status()
                == StatusCode::FORBIDDEN
        })
    }))
    .await;
}
