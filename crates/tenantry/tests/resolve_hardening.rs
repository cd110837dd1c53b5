//! Issue 8, resolution and keys: the holes an adversarial review found, each
//! proved closed over HTTP on both backends (items 3, 4, 5, 8, 9, 13, 15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, Reply, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    resolve_trusted_is_operator_issued,
    rate_limit_buckets_are_per_tenant,
    rate_limit_buckets_are_per_tenant_in_redis,
    narrowing_a_key_narrows_its_live_tokens,
    every_presented_credential_is_verified,
    keys_and_tokens_cannot_outlive_their_key,
    anonymous_resolution_is_bounded,
    a_failed_last_used_flush_is_retried,
    verifying_another_tenants_key_leaves_no_trace,
);

async fn start(db: &TestDb, extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
        ("TENANTRY_BASE_DOMAIN", "example.test"),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(db, &env).await
}

/// A key made by the operator; returns the whole response body.
async fn operator_key(server: &TestServer, tenant: &str, body: Value) -> Value {
    let reply = server
        .post(&format!("/v1/tenants/{tenant}/api-keys"), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body
}

async fn key_for(server: &TestServer, tenant: &str, scopes: &[&str]) -> String {
    operator_key(server, tenant, json!({"name": "k", "scopes": scopes})).await["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn as_key(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    server.call_as(Some(key), method, path, body).await
}

async fn token_of(server: &TestServer, key: &str, body: Value) -> Value {
    let reply = as_key(server, key, Method::POST, "/v1/tokens", Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body
}

async fn anonymous_resolve(server: &TestServer, body: Value) -> Reply {
    server
        .call_as(None, Method::POST, "/v1/resolve", Some(body))
        .await
}

async fn get_resolve(server: &TestServer, headers: &[(&str, &str)]) -> Reply {
    let mut req = server.client.get(server.url("/v1/resolve"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// A well-formed key (right shape and checksum) that was never issued.
fn made_up_key(kind: tenantry_core::keys::KeyKind, seed: u8) -> String {
    let mut n = seed;
    let digits = tenantry_core::keys::random_digits(|| {
        n = n.wrapping_mul(37).wrapping_add(11);
        n
    });
    tenantry_core::keys::format_key(kind, tenantry_core::keys::Environment::Live, &digits)
}

fn at(offset: chrono::Duration) -> String {
    (chrono::Utc::now() + offset).to_rfc3339()
}

fn time_of(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .to_utc()
}

// --- Item 3: resolve:trusted is an operator-issued capability ----------------

async fn resolve_trusted_is_operator_issued(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let admin = key_for(&server, "acme", &["tenant:admin"]).await;

    // tenant:admin does not make its holder a trusted resolver: naming
    // another tenant is 404, whether it exists, is suspended or not.
    let named = |tenant: &'static str| {
        let admin = admin.clone();
        let server = &server;
        async move {
            as_key(
                server,
                &admin,
                Method::POST,
                "/v1/resolve",
                Some(json!({ "tenant_id": tenant })),
            )
            .await
        }
    };
    named("globex")
        .await
        .assert_problem(404, "tenant_not_found");
    named("no-such-tenant")
        .await
        .assert_problem(404, "tenant_not_found");
    server.post("/v1/tenants/globex/suspend", json!({})).await;
    named("globex")
        .await
        .assert_problem(404, "tenant_not_found");
    server
        .post("/v1/tenants/globex/reactivate", json!({}))
        .await;
    // Its own tenant by name is no different: tenant_id needs trust.
    named("acme").await.assert_problem(404, "tenant_not_found");
    // Nor does it verify as holding the scope, or put it on a token.
    let verified = server
        .post(
            "/v1/keys/verify",
            json!({"key": admin, "scopes": ["resolve:trusted"]}),
        )
        .await;
    assert_eq!(verified.body["code"], "INSUFFICIENT_SCOPES", "{verified:?}");
    as_key(
        &server,
        &admin,
        Method::POST,
        "/v1/tokens",
        Some(json!({"scopes": ["resolve:trusted"]})),
    )
    .await
    .assert_problem(403, "insufficient_scope");

    // A tenant key can never grant it: not by creating, patching or rotating.
    for scopes in [
        json!(["resolve:trusted"]),
        json!(["tenant:admin", "resolve:trusted"]),
    ] {
        as_key(
            &server,
            &admin,
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(json!({"name": "x", "scopes": scopes})),
        )
        .await
        .assert_problem(403, "operator_required");
    }
    let plain = operator_key(
        &server,
        "acme",
        json!({"name": "plain", "scopes": ["tenant:read"]}),
    )
    .await;
    let plain_path = format!(
        "/v1/tenants/acme/api-keys/{}",
        plain["id"].as_str().unwrap()
    );
    as_key(
        &server,
        &admin,
        Method::PATCH,
        &plain_path,
        Some(json!({"scopes": ["tenant:read", "resolve:trusted"]})),
    )
    .await
    .assert_problem(403, "operator_required");
    // Even a key that holds it cannot hand it on, nor rotate itself.
    let trusted = operator_key(
        &server,
        "acme",
        json!({"name": "gateway", "scopes": ["resolve:trusted", "keys:write"]}),
    )
    .await;
    let trusted_key = trusted["key"].as_str().unwrap();
    as_key(
        &server,
        trusted_key,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        Some(json!({"name": "x", "scopes": ["resolve:trusted"]})),
    )
    .await
    .assert_problem(403, "operator_required");
    let rotate_path = format!(
        "/v1/tenants/acme/api-keys/{}/rotate",
        trusted["id"].as_str().unwrap()
    );
    for key in [trusted_key, admin.as_str()] {
        as_key(&server, key, Method::POST, &rotate_path, Some(json!({})))
            .await
            .assert_problem(403, "operator_required");
    }
    // The key is unchanged by the refusals.
    let after = server
        .get(&format!(
            "/v1/tenants/acme/api-keys/{}",
            plain["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(after.body["scopes"], json!(["tenant:read"]));

    // Minted by the operator, it works: any tenant by name, in full.
    let by_name = as_key(
        &server,
        trusted_key,
        Method::POST,
        "/v1/resolve",
        Some(json!({"tenant_id": "globex"})),
    )
    .await;
    assert_eq!(by_name.status, StatusCode::OK, "{by_name:?}");
    assert_eq!(by_name.body["matched_by"], "header");
    assert_eq!(by_name.body["tenant"]["name"], "Tenant globex");
    // The operator can rotate it (the new key keeps the scope).
    let rotated = server.post(&rotate_path, json!({})).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{rotated:?}");
    assert_eq!(
        rotated.body["scopes"],
        json!(["keys:write", "resolve:trusted"])
    );
}

// --- Item 4: per-key rate-limit buckets are the tenant's own ------------------

async fn drain_and_compare(server: &TestServer, tenant_a: &str, tenant_b: &str, key_id: &str) {
    for tenant in [tenant_a, tenant_b] {
        let r = server
            .patch(
                &format!("/v1/tenants/{tenant}/config"),
                json!({"rate_limits": {"sends_per_hour": 3}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
    }
    let take = |tenant: String| {
        let server = &server;
        let key_id = key_id.to_owned();
        async move {
            let r = server
                .post(
                    "/v1/ratelimit",
                    json!({"tenant_id": tenant, "key_id": key_id, "limit": "sends_per_hour"}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{r:?}");
            r.body
        }
    };
    for remaining in [2, 1, 0] {
        let d = take(tenant_a.to_owned()).await;
        assert_eq!(
            (d["allowed"].clone(), d["remaining"].clone()),
            (json!(true), json!(remaining))
        );
    }
    assert_eq!(take(tenant_a.to_owned()).await["allowed"], false);
    // Tenant B's bucket of the same name is untouched.
    let other = take(tenant_b.to_owned()).await;
    assert_eq!(other["allowed"], true, "{other:?}");
    assert_eq!(other["remaining"], 2, "{other:?}");
    // The same through a tenant key (the tenant is the key's own).
    let b_key = key_for(server, tenant_b, &["usage:write"]).await;
    let own = as_key(
        server,
        &b_key,
        Method::POST,
        "/v1/ratelimit",
        Some(json!({"key_id": key_id, "limit": "sends_per_hour"})),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    assert_eq!(own.body["remaining"], 1, "{own:?}");
    // And the tenant-wide bucket is yet another one.
    let tenant_wide = server
        .post(
            "/v1/ratelimit",
            json!({"tenant_id": tenant_a, "limit": "sends_per_hour"}),
        )
        .await;
    assert_eq!(tenant_wide.body["remaining"], 2, "{tenant_wide:?}");
}

async fn rate_limit_buckets_are_per_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    drain_and_compare(&server, "acme", "globex", "user_42").await;
}

async fn rate_limit_buckets_are_per_tenant_in_redis(backend: Backend) {
    let redis = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TEST_REDIS_URL is not set: run ./scripts/test, which starts redis-server")
    });
    let db = TestDb::new(backend).await;
    let server = start(&db, &[("TENANTRY_REDIS_URL", &redis)]).await;
    // Redis is shared by every test of the run: names of this test's own.
    let suffix = common::random_suffix();
    let (a, b) = (format!("acme-{suffix}"), format!("globex-{suffix}"));
    server.create_tenant(&a).await;
    server.create_tenant(&b).await;
    drain_and_compare(&server, &a, &b, &format!("user_{suffix}")).await;
}

// --- Item 5: a token is worth no more than its key ---------------------------

async fn narrowing_a_key_narrows_its_live_tokens(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let created = operator_key(
        &server,
        "acme",
        json!({"name": "svc", "scopes": ["tenant:admin"]}),
    )
    .await;
    let key_path = format!(
        "/v1/tenants/acme/api-keys/{}",
        created["id"].as_str().unwrap()
    );
    let key = created["key"].as_str().unwrap();
    let token = token_of(&server, key, json!({})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let explicit = token_of(
        &server,
        key,
        json!({"scopes": ["keys:read", "tenant:read"]}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for t in [&token, &explicit] {
        let listed = as_key(&server, t, Method::GET, "/v1/tenants/acme/api-keys", None).await;
        assert_eq!(listed.status, StatusCode::OK, "{listed:?}");
    }
    // The operator narrows the key: its live tokens lose the scopes at once.
    let narrowed = server
        .patch(&key_path, json!({"scopes": ["tenant:read"]}))
        .await;
    assert_eq!(narrowed.status, StatusCode::OK, "{narrowed:?}");
    for t in [&token, &explicit] {
        as_key(&server, t, Method::GET, "/v1/tenants/acme/api-keys", None)
            .await
            .assert_problem(403, "insufficient_scope");
        let still = as_key(&server, t, Method::GET, "/v1/tenants/acme", None).await;
        assert_eq!(
            still.status,
            StatusCode::OK,
            "what both grant still works: {still:?}"
        );
    }
    // Widening the key again does not widen a token beyond its own scopes.
    server
        .patch(&key_path, json!({"scopes": ["tenant:admin"]}))
        .await;
    as_key(
        &server,
        &explicit,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        Some(json!({"name": "x", "scopes": []})),
    )
    .await
    .assert_problem(403, "insufficient_scope");

    // The same for resolve:trusted: a token of a trusted key loses its
    // trust when the operator takes the scope off the key.
    let gateway = operator_key(
        &server,
        "acme",
        json!({"name": "gw", "scopes": ["resolve:trusted", "tenant:read"]}),
    )
    .await;
    let gateway_token =
        token_of(&server, gateway["key"].as_str().unwrap(), json!({})).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
    let by_name = || async {
        as_key(
            &server,
            &gateway_token,
            Method::POST,
            "/v1/resolve",
            Some(json!({"tenant_id": "globex"})),
        )
        .await
    };
    assert_eq!(by_name().await.body["matched_by"], "header");
    server
        .patch(
            &format!(
                "/v1/tenants/acme/api-keys/{}",
                gateway["id"].as_str().unwrap()
            ),
            json!({"scopes": ["tenant:read"]}),
        )
        .await;
    by_name().await.assert_problem(404, "tenant_not_found");
}

// --- Item 8: every credential presented is verified ---------------------------

async fn every_presented_credential_is_verified(backend: Backend) {
    use tenantry_core::keys::KeyKind;
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let acme_key = key_for(&server, "acme", &["tenant:read"]).await;
    let globex_key = key_for(&server, "globex", &["tenant:read"]).await;
    let acme_token = token_of(&server, &acme_key, json!({})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let globex_token = token_of(&server, &globex_key, json!({})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown_operator = made_up_key(KeyKind::Operator, 7);
    let revoked = server
        .post("/v1/operator-keys", json!({"name": "old"}))
        .await
        .body
        .clone();
    server
        .post(
            &format!(
                "/v1/operator-keys/{}/revoke",
                revoked["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    let revoked_operator = revoked["key"].as_str().unwrap().to_owned();

    for operator in [&unknown_operator, &revoked_operator] {
        // In the body, beside a host that would match: 401, not ignored.
        anonymous_resolve(
            &server,
            json!({"host": "acme.example.test", "api_key": operator}),
        )
        .await
        .assert_problem(401, "invalid_credentials");
        // As the caller of POST /v1/resolve.
        as_key(
            &server,
            operator,
            Method::POST,
            "/v1/resolve",
            Some(json!({"tenant_id": "acme"})),
        )
        .await
        .assert_problem(401, "invalid_credentials");
        // As the credentials of GET /v1/resolve, either header.
        let bearer = format!("Bearer {operator}");
        get_resolve(
            &server,
            &[("authorization", &bearer), ("x-tenant-id", "acme")],
        )
        .await
        .assert_problem(401, "invalid_credentials");
        get_resolve(
            &server,
            &[
                ("x-api-key", operator),
                ("x-forwarded-host", "acme.example.test"),
            ],
        )
        .await
        .assert_problem(401, "invalid_credentials");
        // And on the rest of the API.
        as_key(&server, operator, Method::GET, "/v1/tenants", None)
            .await
            .assert_problem(401, "unauthorized");
    }

    // A key and a token together: both verified, and of one tenant.
    let both = anonymous_resolve(&server, json!({"api_key": acme_key, "token": acme_token})).await;
    assert_eq!(both.status, StatusCode::OK, "{both:?}");
    assert_eq!(both.body["tenant"]["id"], "acme");
    anonymous_resolve(&server, json!({"api_key": acme_key, "token": globex_token}))
        .await
        .assert_problem(403, "tenant_mismatch");
    let forged = format!("{}x", &acme_token[..acme_token.len() - 1]);
    for bad_token in ["eyJhbGciOiJub25lIn0.e30.", forged.as_str()] {
        anonymous_resolve(&server, json!({"api_key": acme_key, "token": bad_token}))
            .await
            .assert_problem(401, "invalid_credentials");
    }
    anonymous_resolve(
        &server,
        json!({"api_key": made_up_key(KeyKind::Tenant, 9), "token": acme_token}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    // GET: X-API-Key and the bearer credential are both checked.
    let bearer_token = format!("Bearer {globex_token}");
    get_resolve(
        &server,
        &[("x-api-key", &acme_key), ("authorization", &bearer_token)],
    )
    .await
    .assert_problem(403, "tenant_mismatch");
    let bearer_key = format!("Bearer {globex_key}");
    get_resolve(
        &server,
        &[("x-api-key", &acme_key), ("authorization", &bearer_key)],
    )
    .await
    .assert_problem(403, "tenant_mismatch");
    let bearer_bogus = format!("Bearer {}", made_up_key(KeyKind::Tenant, 3));
    get_resolve(
        &server,
        &[("x-api-key", &acme_key), ("authorization", &bearer_bogus)],
    )
    .await
    .assert_problem(401, "invalid_credentials");
    let bearer_acme = format!("Bearer {acme_token}");
    let agreed = get_resolve(
        &server,
        &[("x-api-key", &acme_key), ("authorization", &bearer_acme)],
    )
    .await;
    assert_eq!(agreed.status, StatusCode::OK, "{agreed:?}");
    assert_eq!(agreed.body["tenant"]["id"], "acme");
    // A bad caller credential on POST is 401 even when nothing else is asked.
    as_key(
        &server,
        &made_up_key(KeyKind::Tenant, 5),
        Method::POST,
        "/v1/resolve",
        Some(json!({"host": "acme.example.test"})),
    )
    .await
    .assert_problem(401, "invalid_credentials");
}

// --- Item 9: nothing outlives the key that made it ----------------------------

async fn keys_and_tokens_cannot_outlive_their_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[]).await;
    server.create_tenant("acme").await;
    let expiring = operator_key(
        &server,
        "acme",
        json!({"name": "temp", "scopes": ["keys:write", "keys:read", "tenant:read"],
               "expires_at": at(chrono::Duration::hours(2))}),
    )
    .await;
    let key = expiring["key"].as_str().unwrap();
    let own_path = format!(
        "/v1/tenants/acme/api-keys/{}",
        expiring["id"].as_str().unwrap()
    );

    // It cannot extend or remove its own expiry...
    for expires_at in [json!(at(chrono::Duration::hours(3))), Value::Null] {
        as_key(
            &server,
            key,
            Method::PATCH,
            &own_path,
            Some(json!({ "expires_at": expires_at })),
        )
        .await
        .assert_problem(403, "key_outlives_caller");
    }
    // ...but may shorten it.
    let shorter = at(chrono::Duration::hours(1));
    let shortened = as_key(
        &server,
        key,
        Method::PATCH,
        &own_path,
        Some(json!({"expires_at": shorter})),
    )
    .await;
    assert_eq!(shortened.status, StatusCode::OK, "{shortened:?}");
    let own_end = time_of(&shortened.body["expires_at"]);

    // It cannot create a key that outlives it, nor one that never expires.
    for expires_at in [json!(at(chrono::Duration::hours(2))), Value::Null] {
        let mut body = json!({"name": "child", "scopes": ["tenant:read"]});
        if !expires_at.is_null() {
            body["expires_at"] = expires_at;
        }
        as_key(
            &server,
            key,
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(body),
        )
        .await
        .assert_problem(403, "key_outlives_caller");
    }
    let child = as_key(
        &server,
        key,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        Some(json!({"name": "child", "scopes": ["tenant:read"], "expires_at": at(chrono::Duration::minutes(30))})),
    )
    .await;
    assert_eq!(child.status, StatusCode::CREATED, "{child:?}");
    let child_path = format!(
        "/v1/tenants/acme/api-keys/{}",
        child.body["id"].as_str().unwrap()
    );
    // Nor re-date a key it made (or any other) beyond itself.
    as_key(
        &server,
        key,
        Method::PATCH,
        &child_path,
        Some(json!({"expires_at": null})),
    )
    .await
    .assert_problem(403, "key_outlives_caller");

    // It cannot rotate a longer-lived key (the new key would outlive it)...
    let forever = operator_key(
        &server,
        "acme",
        json!({"name": "forever", "scopes": ["tenant:read"]}),
    )
    .await;
    as_key(
        &server,
        key,
        Method::POST,
        &format!(
            "/v1/tenants/acme/api-keys/{}/rotate",
            forever["id"].as_str().unwrap()
        ),
        Some(json!({})),
    )
    .await
    .assert_problem(403, "key_outlives_caller");
    // ...nor make it never expire through a token of itself.
    let token = token_of(&server, key, json!({"ttl_seconds": 3600})).await;
    as_key(
        &server,
        token["token"].as_str().unwrap(),
        Method::PATCH,
        &format!(
            "/v1/tenants/acme/api-keys/{}",
            forever["id"].as_str().unwrap()
        ),
        Some(json!({"expires_at": at(chrono::Duration::days(1))})),
    )
    .await
    .assert_problem(403, "key_outlives_caller");

    // Its tokens expire with it: a key ending in 90 s gives a token of at
    // most 90 s, whatever ttl was asked for.
    let brief = operator_key(
        &server,
        "acme",
        json!({"name": "brief", "scopes": ["tenant:read"], "expires_at": at(chrono::Duration::seconds(90))}),
    )
    .await;
    let brief_token = token_of(
        &server,
        brief["key"].as_str().unwrap(),
        json!({"ttl_seconds": 3600}),
    )
    .await;
    let brief_end = time_of(&brief["expires_at"]);
    assert!(
        time_of(&brief_token["expires_at"]) <= brief_end,
        "{brief_token:?}"
    );
    assert!(
        brief_token["expires_in"].as_i64().unwrap() <= 90,
        "{brief_token:?}"
    );
    // And the token of the 1-hour key ends by the key's end.
    assert!(time_of(&token["expires_at"]) <= own_end, "{token:?}");

    // Rotating itself is fine: the new key keeps its expiry.
    let rotated = as_key(
        &server,
        key,
        Method::POST,
        &format!("{own_path}/rotate"),
        Some(json!({})),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{rotated:?}");
    assert_eq!(time_of(&rotated.body["expires_at"]), own_end);

    // A key without expiry is not held back, nor is the operator.
    let free = key_for(&server, "acme", &["keys:write"]).await;
    let made = as_key(
        &server,
        &free,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        Some(json!({"name": "x", "scopes": []})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let extended = server.patch(&own_path, json!({"expires_at": null})).await;
    assert_eq!(extended.status, StatusCode::OK, "{extended:?}");
}

// --- Item 15: anonymous resolution is bounded ---------------------------------

async fn anonymous_resolution_is_bounded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = start(
        &db,
        &[
            ("TENANTRY_RESOLVE_ANONYMOUS_PER_MINUTE", "5"),
            ("TENANTRY_TRUSTED_PROXIES", ""),
        ],
    )
    .await;
    server
        .post(
            "/v1/tenants",
            json!({"id": "acme", "name": "Acme Secret Name", "plan": "professional", "region": "eu-west-1"}),
        )
        .await;
    let key = key_for(&server, "acme", &["tenant:read"]).await;
    let trusted = key_for(&server, "acme", &["resolve:trusted"]).await;

    // Anonymous: only id, status and plan, by any strategy; a client cannot
    // pick another bucket with X-Real-IP (this peer is no trusted proxy).
    let limited = json!({"id": "acme", "status": "active", "plan": "professional"});
    let first = anonymous_resolve(&server, json!({"host": "acme.example.test"})).await;
    assert_eq!(first.body["tenant"], limited, "{first:?}");
    let by_key = anonymous_resolve(&server, json!({"api_key": key})).await;
    assert_eq!(by_key.body["tenant"], limited, "{by_key:?}");
    let not_trusted = as_key(
        &server,
        &key,
        Method::POST,
        "/v1/resolve",
        Some(json!({"host": "acme.example.test"})),
    )
    .await;
    assert_eq!(
        not_trusted.body["tenant"], limited,
        "a tenant key is not trusted: {not_trusted:?}"
    );
    for i in 0..2 {
        let ip = format!("10.1.1.{i}");
        let get = get_resolve(
            &server,
            &[
                ("x-forwarded-host", "acme.example.test"),
                ("x-real-ip", &ip),
            ],
        )
        .await;
        assert_eq!(get.status, StatusCode::OK, "{get:?}");
        assert_eq!(get.body["tenant"], limited);
        assert_eq!(get.headers.get("x-tenant-plan").unwrap(), "professional");
    }
    // The sixth anonymous resolution from this address is refused.
    let refused = get_resolve(
        &server,
        &[
            ("x-forwarded-host", "acme.example.test"),
            ("x-real-ip", "10.9.9.9"),
        ],
    )
    .await;
    refused.assert_problem(429, "rate_limited");
    let retry_after: u64 = refused
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{refused:?}");
    anonymous_resolve(&server, json!({"host": "acme.example.test"}))
        .await
        .assert_problem(429, "rate_limited");
    // Guessing keys is limited too.
    anonymous_resolve(
        &server,
        json!({"api_key": made_up_key(tenantry_core::keys::KeyKind::Tenant, 1)}),
    )
    .await
    .assert_problem(429, "rate_limited");

    // Trusted callers are not limited and see everything.
    for caller in [common::ROOT_KEY, trusted.as_str()] {
        for _ in 0..3 {
            let full = as_key(
                &server,
                caller,
                Method::POST,
                "/v1/resolve",
                Some(json!({"host": "acme.example.test"})),
            )
            .await;
            assert_eq!(full.status, StatusCode::OK, "{full:?}");
            assert_eq!(full.body["tenant"]["name"], "Acme Secret Name");
            assert_eq!(full.body["tenant"]["region"], "eu-west-1");
            assert!(full.body["tenant"]["config"].is_object());
        }
    }
    let bearer = format!("Bearer {}", common::ROOT_KEY);
    let full_get = get_resolve(
        &server,
        &[
            ("x-forwarded-host", "acme.example.test"),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(
        full_get.body["tenant"]["name"], "Acme Secret Name",
        "{full_get:?}"
    );
    server.stop().await;

    // Behind a trusted proxy (loopback by default), each client address has
    // a bucket of its own.
    let server = start(&db, &[("TENANTRY_RESOLVE_ANONYMOUS_PER_MINUTE", "2")]).await;
    let from = |ip: &'static str| {
        let server = &server;
        async move {
            get_resolve(
                server,
                &[("x-forwarded-host", "acme.example.test"), ("x-real-ip", ip)],
            )
            .await
        }
    };
    for _ in 0..2 {
        assert_eq!(from("192.0.2.1").await.status, StatusCode::OK);
    }
    from("192.0.2.1").await.assert_problem(429, "rate_limited");
    assert_eq!(from("192.0.2.2").await.status, StatusCode::OK);
    // IPv6 clients share a bucket per /64: a block of addresses is one client.
    for ip in ["2001:db8::1", "2001:db8::2"] {
        assert_eq!(from(ip).await.status, StatusCode::OK);
    }
    from("2001:db8::ffff:1")
        .await
        .assert_problem(429, "rate_limited");
    assert_eq!(from("2001:db8:0:1::1").await.status, StatusCode::OK);
}

// --- Item 13: a failed last-used flush keeps its batch ------------------------

async fn a_failed_last_used_flush_is_retried(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[("TENANTRY_KEY_USAGE_FLUSH_INTERVAL", "100ms")]).await;
    server.expect_warning("could not record key usage; will retry");
    server.create_tenant("acme").await;
    let created = operator_key(
        &server,
        "acme",
        json!({"name": "svc", "scopes": ["tenant:read"]}),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    let path = format!(
        "/v1/tenants/acme/api-keys/{}",
        created["id"].as_str().unwrap()
    );
    let last_used = || async { server.get(&path).await.body["last_used_at"].clone() };
    // A first use is flushed (and the key is now cached).
    let verified = server.post("/v1/keys/verify", json!({ "key": key })).await;
    assert_eq!(verified.body["valid"], true, "{verified:?}");
    let mut first = Value::Null;
    for _ in 0..100 {
        first = last_used().await;
        if first.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(first.is_string(), "the first use is recorded");
    // Once more, now that any echo of the key's creation has invalidated the
    // cache (PostgreSQL NOTIFY): the key is cached again, and this use is
    // flushed too before the table goes.
    let verified = server.post("/v1/keys/verify", json!({ "key": key })).await;
    assert_eq!(verified.body["valid"], true, "{verified:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = last_used().await;
    // The table goes away: the next flush fails.
    db.exec("ALTER TABLE api_keys RENAME TO api_keys_away")
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Verified from the cache: no database read, but a use to record.
    let used = server.post("/v1/keys/verify", json!({ "key": key })).await;
    assert_eq!(used.body["valid"], true, "{used:?}\n{}", server.logs());
    let mut failed = false;
    for _ in 0..100 {
        if server.logs().contains("could not record key usage") {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failed, "a flush failed:\n{}", server.logs());
    db.exec("ALTER TABLE api_keys_away RENAME TO api_keys")
        .await;
    // The batch was kept: the second use is written by a later flush.
    let mut second = Value::Null;
    for _ in 0..100 {
        second = last_used().await;
        if second.is_string() && second != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        second.is_string() && time_of(&second) > time_of(&first),
        "the failed batch was retried: first {first}, now {second}"
    );
}

/// A tenant that verifies another tenant's key learns nothing (NOT_FOUND)
/// and leaves nothing behind: the key's last use is not touched.
async fn verifying_another_tenants_key_leaves_no_trace(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db, &[("TENANTRY_KEY_USAGE_FLUSH_INTERVAL", "100ms")]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let acme = operator_key(
        &server,
        "acme",
        json!({"name": "a", "scopes": ["keys:read"]}),
    )
    .await;
    let globex = operator_key(
        &server,
        "globex",
        json!({"name": "g", "scopes": ["tenant:read"]}),
    )
    .await;
    let globex_key = globex["key"].as_str().unwrap();
    let globex_path = format!(
        "/v1/tenants/globex/api-keys/{}",
        globex["id"].as_str().unwrap()
    );
    let answer = server
        .call_as(
            acme["key"].as_str(),
            Method::POST,
            "/v1/keys/verify",
            Some(json!({"key": globex_key})),
        )
        .await;
    assert_eq!(answer.body, json!({"valid": false, "code": "NOT_FOUND"}));
    // Several flush intervals pass with nothing to write.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(server.get(&globex_path).await.body["last_used_at"].is_null());
    // The operator's verification counts, and reaches the database.
    let answer = server
        .post("/v1/keys/verify", json!({"key": globex_key}))
        .await;
    assert_eq!(answer.body["code"], "VALID");
    let mut recorded = false;
    for _ in 0..50 {
        if !server.get(&globex_path).await.body["last_used_at"].is_null() {
            recorded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recorded, "a real use is recorded");
}
