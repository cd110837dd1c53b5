//! Users of external identity providers, on both backends: issuers are
//! registered by operators; their JWTs (minted by PyJWT, an independent
//! library, from keys a local JWKS server publishes) are verified wherever a
//! credential is accepted; memberships decide the tenant and the roles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::idp;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use idp::{ISSUER, Issuer, OTHER_ISSUER, claims, jwks, keys, mint, now, token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

on_both_backends!(
    provider_settings_are_checked,
    each_algorithm_verifies_and_bad_tokens_are_refused,
    key_rotation_forged_kids_and_issuer_outage,
    memberships_decide_tenant_and_roles,
    super_admin_acts_as_operator_and_is_audited,
);

// --- The server --------------------------------------------------------------

async fn server(db: &TestDb) -> TestServer {
    TestServer::start_with(
        db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_OUTBOUND_ALLOWLIST", "127.0.0.1/32"),
        ],
    )
    .await
}

async fn register(server: &TestServer, settings: Value) -> String {
    let reply = server.post("/v1/identity-providers", settings).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn add_member(server: &TestServer, tenant: &str, subject: &str, roles: &[&str]) {
    let reply = server
        .call(
            Method::PUT,
            &format!("/v1/tenants/{tenant}/members/{subject}"),
            Some(json!({"roles": roles})),
        )
        .await;
    assert!(reply.status.is_success(), "{reply:?}");
}

/// `GET /v1/resolve` with a bearer token and an optional `X-Tenant-ID`.
async fn resolve(server: &TestServer, token: &str, tenant: Option<&str>) -> Reply {
    let mut req = server
        .client
        .get(server.url("/v1/resolve"))
        .bearer_auth(token);
    if let Some(tenant) = tenant {
        req = req.header("x-tenant-id", tenant);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// An API call with a bearer token and an optional `X-Tenant-ID`.
async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    server.call_as(Some(token), method, path, body).await
}

fn resolved(reply: &Reply, tenant: &str, matched_by: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["tenant"]["id"], tenant, "{reply:?}");
    assert_eq!(reply.body["matched_by"], matched_by, "{reply:?}");
}

// --- Tests ---------------------------------------------------------------------

async fn provider_settings_are_checked(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let key = keys(&[("EdDSA", "k1")]).remove(0);
    let base = json!({
        "issuer": ISSUER, "jwks": jwks(&[&key]), "audiences": ["app"], "algorithms": ["EdDSA"],
    });
    let id = register(&server, base.clone()).await;
    assert!(id.starts_with("idp_"));

    // The same issuer twice.
    server
        .post("/v1/identity-providers", base.clone())
        .await
        .assert_problem(409, "issuer_taken");
    // Never `none`, never HMAC.
    for alg in ["none", "HS256"] {
        let mut bad = base.clone();
        bad["issuer"] = json!("https://x.example/");
        bad["algorithms"] = json!([alg]);
        server
            .post("/v1/identity-providers", bad)
            .await
            .assert_invalid("algorithms");
    }
    // Key set URLs obey the outbound rules (no metadata service, no
    // internal addresses, https only unless allowlisted).
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/jwks",
        "http://idp.example.org/jwks",
        "file:///etc/passwd",
    ] {
        let bad = json!({"issuer": "https://y.example/", "jwks_url": url, "audiences": ["app"], "algorithms": ["RS256"]});
        server
            .post("/v1/identity-providers", bad)
            .await
            .assert_invalid("jwks_url");
    }
    // A mapping onto a role that does not exist; an operator scope on a role.
    let mut bad = base.clone();
    bad["issuer"] = json!("https://z.example/");
    bad["role_mapping"] = json!({"x": "owner"});
    server
        .post("/v1/identity-providers", bad)
        .await
        .assert_invalid("role_mapping");
    let mut bad = base.clone();
    bad["issuer"] = json!("https://z.example/");
    bad["custom_roles"] = json!({"resolver": ["resolve:trusted"]});
    server
        .post("/v1/identity-providers", bad)
        .await
        .assert_invalid("custom_roles");

    // Read, replace, list, delete; operators only.
    let got = server.get(&format!("/v1/identity-providers/{id}")).await;
    assert_eq!(got.status, StatusCode::OK, "{got:?}");
    assert_eq!(got.body["subject_claim"], "sub");
    let mut replaced = base.clone();
    replaced["audiences"] = json!(["app", "console"]);
    let put = server
        .call(
            Method::PUT,
            &format!("/v1/identity-providers/{id}"),
            Some(replaced),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(put.body["audiences"], json!(["app", "console"]));
    let list = server.get("/v1/identity-providers").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    server.create_tenant("acme").await;
    let tenant_key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "admin", "scopes": ["tenant:admin"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &server,
        &tenant_key,
        Method::GET,
        "/v1/identity-providers",
        None,
    )
    .await
    .assert_problem(403, "operator_required");
    call(
        &server,
        &tenant_key,
        Method::POST,
        "/v1/identity-providers",
        Some(json!({"issuer": "https://t.example/", "jwks": jwks(&[&key]), "audiences": ["a"], "algorithms": ["EdDSA"]})),
    )
    .await
    .assert_problem(403, "operator_required");

    // Every change is in the operator's audit chain.
    let audit = server.get("/v1/operator/audit").await;
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"identity_provider.created"),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"identity_provider.updated"),
        "{actions:?}"
    );

    let deleted = server.delete(&format!("/v1/identity-providers/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    server
        .get(&format!("/v1/identity-providers/{id}"))
        .await
        .assert_problem(404, "identity_provider_not_found");
}

async fn each_algorithm_verifies_and_bad_tokens_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let ks = keys(&[
        ("RS256", "rs-1"),
        ("ES256", "es-1"),
        ("EdDSA", "ed-1"),
        ("EdDSA", "other-1"),
    ]);
    let (rs, es, ed, other) = (&ks[0], &ks[1], &ks[2], &ks[3]);
    let issuer = Issuer::start(jwks(&[rs, es, ed])).await;
    let other_issuer = Issuer::start(jwks(&[other])).await;
    server.create_tenant("acme").await;
    let id = register(
        &server,
        json!({"issuer": ISSUER, "jwks_url": issuer.url, "audiences": ["app"],
               "algorithms": ["RS256", "ES256", "EdDSA"], "tenant_claim": "org.id"}),
    )
    .await;
    register(
        &server,
        json!({"issuer": OTHER_ISSUER, "jwks_url": other_issuer.url, "audiences": ["app"],
               "algorithms": ["EdDSA"]}),
    )
    .await;
    add_member(&server, "acme", &format!("{id}:alice"), &["admin"]).await;

    // A valid token per algorithm, with the tenant claim and without.
    let org = json!({"org": {"id": "acme"}});
    let tokens = mint(vec![
        json!({"key": rs, "claims": claims("alice", org.clone())}),
        json!({"key": es, "claims": claims("alice", org.clone())}),
        json!({"key": ed, "claims": claims("alice", org.clone())}),
        json!({"key": ed, "claims": claims("alice", json!({}))}),
        // Within the documented leeway (60 s) of its expiry.
        json!({"key": rs, "claims": claims("alice", json!({"exp": now() - 20}))}),
    ]);
    for t in &tokens[..3] {
        resolved(&resolve(&server, t, None).await, "acme", "token_claim");
    }
    resolved(
        &resolve(&server, &tokens[3], None).await,
        "acme",
        "membership",
    );
    resolved(
        &resolve(&server, &tokens[4], None).await,
        "acme",
        "membership",
    );
    // The API takes it too (a tenant admin).
    let reply = call(&server, &tokens[0], Method::GET, "/v1/tenants/acme", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    // Every bad token is 401, on the resolver and on the API.
    let bad = mint(vec![
        // expired
        json!({"key": rs, "claims": claims("alice", json!({"exp": now() - 300}))}),
        // not yet valid
        json!({"key": es, "claims": claims("alice", json!({"nbf": now() + 600}))}),
        // wrong audience
        json!({"key": ed, "claims": claims("alice", json!({"aud": "another-app"}))}),
        // an issuer nobody registered
        json!({"key": ed, "claims": claims("alice", json!({"iss": "https://evil.example/"}))}),
        // unknown kid
        json!({"key": ed, "kid": "not-published", "claims": claims("alice", json!({}))}),
        // alg: none
        json!({"key": rs, "mode": "none", "claims": claims("alice", json!({}))}),
        // HS256 keyed with the RSA public key
        json!({"key": rs, "mode": "hs256_pubkey", "claims": claims("alice", json!({}))}),
        // issuer B's key, claiming to be issuer A (with B's kid, then A's)
        json!({"key": other, "claims": claims("alice", json!({}))}),
        json!({"key": other, "kid": "ed-1", "claims": claims("alice", json!({}))}),
        // no exp
        json!({"key": ed, "claims": {"iss": ISSUER, "aud": "app", "sub": "alice"}}),
    ]);
    for (i, t) in bad.iter().enumerate() {
        let reply = resolve(&server, t, None).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "bad token {i}: {reply:?}"
        );
        let reply = call(&server, t, Method::GET, "/v1/tenants/acme", None).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "bad token {i}: {reply:?}"
        );
    }
    // A tampered payload under a good signature.
    let good = &tokens[2];
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_payload = base64_url(&claims("mallory", json!({"org": {"id": "acme"}})).to_string());
    parts[1] = &forged_payload;
    let reply = resolve(&server, &parts.join("."), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    // A member of nobody, with a valid token of issuer B: no tenant.
    let b_token = token(
        other,
        json!({"iss": OTHER_ISSUER, "aud": "app", "sub": "zed", "exp": now() + 600}),
    );
    resolve(&server, &b_token, None)
        .await
        .assert_problem(404, "tenant_not_found");
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

async fn key_rotation_forged_kids_and_issuer_outage(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let ks = keys(&[("EdDSA", "gen-1"), ("RS256", "gen-2")]);
    let (first, second) = (&ks[0], &ks[1]);
    let issuer = Issuer::start(jwks(&[first])).await;
    server.create_tenant("acme").await;
    register(
        &server,
        json!({"issuer": ISSUER, "jwks_url": issuer.url, "audiences": ["app"],
               "algorithms": ["EdDSA", "RS256"], "tenant_claim": "tenant_id", "trust_tenant_claim": true}),
    )
    .await;
    let acme = json!({"tenant_id": "acme"});
    let t1 = token(first, claims("u1", acme.clone()));
    resolved(&resolve(&server, &t1, None).await, "acme", "token_claim");
    assert_eq!(issuer.hits(), 1);

    // The issuer rotates: tokens with the new kid, arriving together, make
    // one refetch between them.
    issuer.publish(jwks(&[second]));
    let t2 = token(second, claims("u2", acme.clone()));
    let together: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, t) = (server.client.clone(), server.url("/v1/resolve"), t2.clone());
            tokio::spawn(async move {
                client
                    .get(url)
                    .bearer_auth(t)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for request in together {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(issuer.hits(), 2);
    // Tokens already verified stay verified until they expire (cached by
    // hash); the retired key verifies nothing new.
    resolved(&resolve(&server, &t1, None).await, "acme", "token_claim");
    let late = token(first, claims("u3", acme.clone()));
    assert_eq!(
        resolve(&server, &late, None).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Forged kids cannot make Tenantry hammer the issuer.
    let forged: Vec<Value> = (0..20)
        .map(|i| json!({"key": second, "kid": format!("forged-{i}"), "claims": claims("u4", acme.clone())}))
        .collect();
    let before = issuer.hits();
    for t in mint(forged) {
        assert_eq!(
            resolve(&server, &t, None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(
        issuer.hits() - before <= 1,
        "{} fetches for forged kids",
        issuer.hits() - before
    );

    // The issuer goes down: the cached keys keep working.
    issuer.down(true);
    server.expect_warning("cannot fetch an identity provider's key set");
    let t3 = token(second, claims("u5", acme.clone()));
    resolved(&resolve(&server, &t3, None).await, "acme", "token_claim");
    let t4 = token(
        second,
        json!({"iss": ISSUER, "aud": "app", "sub": "u6", "exp": now() + 60, "tenant_id": "acme"}),
    );
    resolved(&resolve(&server, &t4, None).await, "acme", "token_claim");

    // An issuer down from the start: no keys at all is 503 with Retry-After.
    let dead = Issuer::start(jwks(&[first])).await;
    dead.down(true);
    register(
        &server,
        json!({"issuer": OTHER_ISSUER, "jwks_url": dead.url, "audiences": ["app"], "algorithms": ["EdDSA"],
               "tenant_claim": "tenant_id", "trust_tenant_claim": true}),
    )
    .await;
    let t5 = token(
        first,
        json!({"iss": OTHER_ISSUER, "aud": "app", "sub": "u7", "exp": now() + 60, "tenant_id": "acme"}),
    );
    server.expect_warning("503 Service Unavailable");
    let reply = resolve(&server, &t5, None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
    // ... and does not retry at every request.
    let before = dead.hits();
    for _ in 0..5 {
        resolve(&server, &t5, None).await;
    }
    assert_eq!(dead.hits(), before);
}

async fn memberships_decide_tenant_and_roles(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let key = keys(&[("EdDSA", "m-1")]).remove(0);
    for t in ["acme", "beta", "gamma"] {
        server.create_tenant(t).await;
    }
    let id = register(
        &server,
        json!({"issuer": ISSUER, "jwks": jwks(&[&key]), "audiences": ["app"], "algorithms": ["EdDSA"],
               "roles_claim": "roles", "role_mapping": {"org-admin": "admin"},
               "custom_roles": {"billing": ["usage:read"]}}),
    )
    .await;
    let sub = |name: &str| format!("{id}:{name}");
    add_member(&server, "acme", &sub("alice"), &["admin"]).await;
    add_member(&server, "acme", &sub("bob"), &["member"]).await;
    add_member(&server, "beta", &sub("bob"), &["member"]).await;
    add_member(&server, "acme", &sub("erin"), &["billing"]).await;
    let alice = token(&key, claims("alice", json!({})));
    let bob = token(&key, claims("bob", json!({})));
    let erin = token(&key, claims("erin", json!({"roles": ["org-admin"]})));
    let erin_plain = token(&key, claims("erin", json!({})));

    // One membership: it decides. A member of acme asking for beta: 404.
    resolved(&resolve(&server, &alice, None).await, "acme", "membership");
    resolve(&server, &alice, Some("beta"))
        .await
        .assert_problem(404, "tenant_not_found");
    // A user of two tenants names one; without it, or naming a third: 404.
    resolve(&server, &bob, None)
        .await
        .assert_problem(404, "tenant_not_found");
    resolved(
        &resolve(&server, &bob, Some("acme")).await,
        "acme",
        "membership",
    );
    resolved(
        &resolve(&server, &bob, Some("beta")).await,
        "beta",
        "membership",
    );
    resolve(&server, &bob, Some("gamma"))
        .await
        .assert_problem(404, "tenant_not_found");
    // On the API, the path names the tenant.
    let reply = call(&server, &bob, Method::GET, "/v1/tenants/beta", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = call(&server, &bob, Method::GET, "/v1/tenants/gamma", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");

    // A tenant admin manages its own tenant's members.
    let dave = sub("dave");
    let put = call(
        &server,
        &alice,
        Method::PUT,
        &format!("/v1/tenants/acme/members/{dave}"),
        Some(json!({"roles": ["member"], "metadata": {"team": "ops"}})),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put:?}");
    assert_eq!(put.body["subject"], dave);
    let again = call(
        &server,
        &alice,
        Method::PUT,
        &format!("/v1/tenants/acme/members/{dave}"),
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    let one = call(
        &server,
        &alice,
        Method::GET,
        &format!("/v1/tenants/acme/members/{dave}"),
        None,
    )
    .await;
    assert_eq!(one.body["roles"], json!(["admin"]), "{one:?}");
    // Cursor pagination.
    let page = call(
        &server,
        &alice,
        Method::GET,
        "/v1/tenants/acme/members?limit=2",
        None,
    )
    .await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 2, "{page:?}");
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = call(
        &server,
        &alice,
        Method::GET,
        &format!("/v1/tenants/acme/members?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 2, "{rest:?}");
    assert!(rest.body["next_cursor"].is_null());
    let gone = call(
        &server,
        &alice,
        Method::DELETE,
        &format!("/v1/tenants/acme/members/{dave}"),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{gone:?}");
    call(
        &server,
        &alice,
        Method::GET,
        &format!("/v1/tenants/acme/members/{dave}"),
        None,
    )
    .await
    .assert_problem(404, "member_not_found");
    // Unknown roles are refused.
    let reply = call(
        &server,
        &alice,
        Method::PUT,
        &format!("/v1/tenants/acme/members/{dave}"),
        Some(json!({"roles": ["owner"]})),
    )
    .await;
    reply.assert_invalid("roles");

    // Never another tenant's: 404 on every member endpoint, for a tenant
    // admin's login token and for a tenant admin's API key alike.
    let acme_key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": ["tenant:admin"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_in_beta = sub("bob");
    for credential in [&alice, &acme_key] {
        for (method, path, body) in [
            (Method::GET, "/v1/tenants/beta/members".to_owned(), None),
            (
                Method::GET,
                format!("/v1/tenants/beta/members/{bob_in_beta}"),
                None,
            ),
            (
                Method::PUT,
                format!("/v1/tenants/beta/members/{}", sub("alice")),
                Some(json!({"roles": ["admin"]})),
            ),
            (
                Method::DELETE,
                format!("/v1/tenants/beta/members/{bob_in_beta}"),
                None,
            ),
        ] {
            call(&server, credential, method.clone(), &path, body)
                .await
                .assert_problem(404, "tenant_not_found");
        }
        call(
            &server,
            credential,
            Method::GET,
            &format!("/v1/members/{}/tenants", sub("bob")),
            None,
        )
        .await
        .assert_problem(403, "operator_required");
    }
    // beta's member is untouched.
    let still = server
        .get(&format!("/v1/tenants/beta/members/{bob_in_beta}"))
        .await;
    assert_eq!(still.status, StatusCode::OK, "{still:?}");

    // Roles → scopes: a member reads but does not manage; a custom role has
    // its scopes only; an issuer role mapped to admin makes an admin.
    let reply = call(
        &server,
        &bob,
        Method::PUT,
        &format!("/v1/tenants/acme/members/{dave}"),
        Some(json!({"roles": ["member"]})),
    )
    .await;
    reply.assert_problem(403, "insufficient_scope");
    let reply = call(
        &server,
        &erin_plain,
        Method::GET,
        "/v1/tenants/acme/members",
        None,
    )
    .await;
    reply.assert_problem(403, "insufficient_scope");
    let reply = call(
        &server,
        &erin,
        Method::PUT,
        &format!("/v1/tenants/acme/members/{dave}"),
        Some(json!({"roles": ["member"]})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");

    // The operator's cross-tenant view of a user.
    let tenants = server
        .get(&format!("/v1/members/{}/tenants", sub("bob")))
        .await;
    let ids: Vec<&str> = tenants.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "beta"], "{tenants:?}");

    // The tenant's audit chain records member changes by the user.
    let audit = server.get("/v1/tenants/acme/audit").await;
    let by_alice = audit.body["data"].as_array().unwrap().iter().any(|e| {
        e["action"] == "member.added"
            && e["actor"]["type"] == "user"
            && e["actor"]["id"] == sub("alice")
    });
    assert!(by_alice, "{audit:?}");

    // Suspending the tenant refuses its users at once.
    server.post("/v1/tenants/acme/suspend", json!({})).await;
    resolve(&server, &alice, None)
        .await
        .assert_problem(403, "tenant_suspended");
}

async fn super_admin_acts_as_operator_and_is_audited(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let key = keys(&[("ES256", "s-1")]).remove(0);
    register(
        &server,
        json!({"issuer": ISSUER, "jwks": jwks(&[&key]), "audiences": ["app"], "algorithms": ["ES256"],
               "roles_claim": "realm.roles", "operator_roles": ["platform-staff"]}),
    )
    .await;
    let staff = token(
        &key,
        claims("carol", json!({"realm": {"roles": ["platform-staff"]}})),
    );
    let nobody = token(&key, claims("carl", json!({"realm": {"roles": ["user"]}})));
    let reply = call(
        &server,
        &staff,
        Method::POST,
        "/v1/tenants",
        Some(json!({"id": "delta", "name": "Delta"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let reply = call(&server, &staff, Method::GET, "/v1/identity-providers", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    // Not a root key: operator keys stay the root key's.
    call(
        &server,
        &staff,
        Method::POST,
        "/v1/operator-keys",
        Some(json!({"name": "x"})),
    )
    .await
    .assert_problem(403, "root_key_required");
    // Without the role: no tenant, no operator.
    let reply = call(
        &server,
        &nobody,
        Method::POST,
        "/v1/tenants",
        Some(json!({"id": "epsilon", "name": "E"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");

    let audit = server.get("/v1/operator/audit").await;
    let entry = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("tenant."))
        })
        .cloned()
        .unwrap_or(Value::Null);
    let in_tenant = server.get("/v1/tenants/delta/audit").await;
    let created = in_tenant.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&entry))
        .find(|e| e["actor"]["type"] == "user")
        .cloned()
        .unwrap_or_else(|| panic!("no entry by the super admin: {audit:?} {in_tenant:?}"));
    assert!(
        created["actor"]["id"].as_str().unwrap().ends_with(":carol"),
        "{created:?}"
    );
    let name = created["actor"]["name"].as_str().unwrap();
    assert!(
        name.contains("super admin") && name.contains(ISSUER),
        "{created:?}"
    );
}

// --- Across processes (PostgreSQL) ------------------------------------------

/// Removing a membership, suspending a tenant and deleting a provider,
/// through A, are honoured by B (which had everything cached) within a
/// second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_another_process_within_a_second() {
    const BOUND: Duration = Duration::from_secs(1);
    let db = TestDb::new(Backend::Postgres).await;
    let a = server(&db).await;
    let b = server(&db).await;
    let key = keys(&[("EdDSA", "x-1")]).remove(0);
    a.create_tenant("acme").await;
    a.create_tenant("beta").await;
    let id = register(&a, json!({"issuer": ISSUER, "jwks": jwks(&[&key]), "audiences": ["app"], "algorithms": ["EdDSA"]})).await;
    add_member(&a, "acme", &format!("{id}:alice"), &["admin"]).await;
    add_member(&a, "beta", &format!("{id}:bob"), &["admin"]).await;
    let alice = token(&key, claims("alice", json!({})));
    let bob = token(&key, claims("bob", json!({})));
    async fn until(bound: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
        let started = Instant::now();
        while !check().await {
            assert!(
                started.elapsed() < bound,
                "{what} not honoured by B within {bound:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // B knows the provider only once A's registration reached it.
    until(BOUND, "provider registration", async || {
        resolve(&b, &alice, None).await.status == StatusCode::OK
    })
    .await;
    resolved(&resolve(&b, &bob, None).await, "beta", "membership");

    let gone = a
        .delete(&format!("/v1/tenants/acme/members/{id}:alice"))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{gone:?}");
    until(BOUND, "membership removal", async || {
        resolve(&b, &alice, None).await.status == StatusCode::NOT_FOUND
    })
    .await;

    a.post("/v1/tenants/beta/suspend", json!({})).await;
    until(BOUND, "suspension", async || {
        resolve(&b, &bob, None).await.status == StatusCode::FORBIDDEN
    })
    .await;

    add_member(&a, "acme", &format!("{id}:alice"), &["admin"]).await;
    until(BOUND, "membership", async || {
        resolve(&b, &alice, None).await.status == StatusCode::OK
    })
    .await;
    a.delete(&format!("/v1/identity-providers/{id}")).await;
    until(BOUND, "provider removal", async || {
        resolve(&b, &alice, None).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
}
