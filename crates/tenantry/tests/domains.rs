//! Custom domains prove their ownership before they resolve (issue 8, item 2):
//! a claim is `pending` until a DNS TXT record holds its token, checked
//! against a DNS server that this test runs on a free UDP port. On both
//! backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::test_dns;

use common::{Backend, Reply, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_dns::TestDns;

on_both_backends!(
    takeover_attempts_are_refused,
    pending_domains_verify_through_dns,
    competing_claims,
    force_verify_is_for_operators,
    concurrent_verifications,
    dns_outage_is_503,
    legacy_domains_become_pending
);

async fn start(db: &TestDb, dns: &TestDns) -> TestServer {
    let resolver = dns.addr.to_string();
    TestServer::start_with(
        db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_BASE_DOMAIN", "example.test"),
            ("TENANTRY_DNS_RESOLVER", &resolver),
        ],
    )
    .await
}

async fn admin_key(server: &TestServer, tenant: &str) -> String {
    server.create_tenant(tenant).await;
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "admin", "scopes": ["tenant:admin"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["key"].as_str().unwrap().to_owned()
}

async fn claim(server: &TestServer, key: &str, tenant: &str, domain: &str) -> Reply {
    server
        .call_as(
            Some(key),
            Method::POST,
            &format!("/v1/tenants/{tenant}/domains"),
            Some(json!({ "domain": domain })),
        )
        .await
}

async fn verify(
    server: &TestServer,
    key: &str,
    tenant: &str,
    domain: &str,
    body: Option<Value>,
) -> Reply {
    server
        .call_as(
            Some(key),
            Method::POST,
            &format!("/v1/tenants/{tenant}/domains/{domain}/verify"),
            body,
        )
        .await
}

/// `GET /v1/resolve` as nginx sends it: by `Host` only, anonymous.
async fn resolve_host(server: &TestServer, host: &str) -> Reply {
    let req = server
        .client
        .get(server.url("/v1/resolve"))
        .header("host", host);
    Reply::from(req.send().await.unwrap()).await
}

fn token_of(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["verification_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn takeover_attempts_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dns = TestDns::start().await;
    let server = start(&db, &dns).await;
    let a = admin_key(&server, "a-corp").await;
    let b = admin_key(&server, "b-corp").await;

    // Tenant A tries to capture B's subdomain, the operator's names, the base
    // domain itself, or names that never belong to one owner.
    for host in [
        "b-corp.example.test",
        "admin.example.test",
        "EXAMPLE.test.",
        "deep.b-corp.example.test",
        "localhost",
        "app.localhost",
        "printer.local",
        "db.internal",
        "gw.home.arpa",
        "1.2.3.4",
        "[::1]",
        "intranet",
    ] {
        claim(&server, &a, "a-corp", host)
            .await
            .assert_invalid("domain");
    }
    // B's subdomain still resolves to B.
    let reply = resolve_host(&server, "b-corp.example.test").await;
    assert_eq!(reply.body["tenant"]["id"], "b-corp", "{reply:?}");

    // B proves support.b-corp.com; then A cannot claim it.
    let token = token_of(&claim(&server, &b, "b-corp", "support.b-corp.com").await);
    dns.set_txt("_tenantry-challenge.support.b-corp.com", &[&token]);
    let verified = verify(&server, &b, "b-corp", "support.b-corp.com", None).await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    claim(&server, &a, "a-corp", "support.b-corp.com")
        .await
        .assert_problem(409, "domain_taken");
    let reply = resolve_host(&server, "support.b-corp.com").await;
    assert_eq!(reply.body["tenant"]["id"], "b-corp", "{reply:?}");
    assert_eq!(reply.body["matched_by"], "custom_domain");

    // A claim of another tenant's domain, and the verify endpoint of another
    // tenant, are 404 for a tenant key.
    verify(&server, &a, "b-corp", "support.b-corp.com", None)
        .await
        .assert_problem(404, "tenant_not_found");
    verify(
        &server,
        &a,
        "b-corp",
        "support.b-corp.com",
        Some(json!({"force": true})),
    )
    .await
    .assert_problem(404, "tenant_not_found");
    verify(&server, &a, "a-corp", "support.b-corp.com", None)
        .await
        .assert_problem(404, "domain_not_found");
}

async fn pending_domains_verify_through_dns(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dns = TestDns::start().await;
    let server = start(&db, &dns).await;
    let a = admin_key(&server, "acme").await;

    let added = claim(&server, &a, "acme", "Support.Acme.com").await;
    let token = token_of(&added);
    assert_eq!(added.body["domain"], "support.acme.com");
    assert_eq!(added.body["status"], "pending");
    assert_eq!(added.body["verified_at"], Value::Null);
    assert!(
        token.starts_with("tenantry-verification=") && token.len() > 40,
        "{token}"
    );
    assert_eq!(
        added.body["dns_record"],
        json!({"type": "TXT", "name": "_tenantry-challenge.support.acme.com", "value": token})
    );
    // Tokens are per claim.
    let other = token_of(&claim(&server, &a, "acme", "acme.io").await);
    assert_ne!(token, other);

    // Pending: it does not resolve (and the negative answer is cached).
    for _ in 0..2 {
        resolve_host(&server, "support.acme.com")
            .await
            .assert_problem(404, "tenant_not_found");
    }

    // No TXT record at all.
    let failed = verify(&server, &a, "acme", "support.acme.com", None).await;
    let body = failed.assert_problem(422, "domain_verification_failed");
    assert!(
        body["detail"].as_str().unwrap().contains("no TXT record"),
        "{body}"
    );
    // Wrong values: another claim's token, or garbage.
    dns.set_txt(
        "_tenantry-challenge.support.acme.com",
        &[&other, "v=spf1 -all"],
    );
    let failed = verify(&server, &a, "acme", "support.acme.com", Some(json!({}))).await;
    let body = failed.assert_problem(422, "domain_verification_failed");
    assert!(
        body["detail"].as_str().unwrap().contains("found 2 TXT"),
        "{body}"
    );
    let listed = server.get("/v1/tenants/acme/domains").await;
    assert!(
        listed.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "pending"),
        "{listed:?}"
    );
    resolve_host(&server, "support.acme.com")
        .await
        .assert_problem(404, "tenant_not_found");

    // The right value (beside others) verifies, and it resolves at once.
    dns.set_txt(
        "_tenantry-challenge.support.acme.com",
        &["unrelated", &token],
    );
    let verified = verify(&server, &a, "acme", "support.acme.com", None).await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    assert_eq!(verified.body["status"], "verified");
    assert!(verified.body["verified_at"].is_string());
    let reply = resolve_host(&server, "support.acme.com:443").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["tenant"]["id"], "acme");
    assert_eq!(reply.body["matched_by"], "custom_domain");
    // Verifying again is a no-op.
    let again = verify(&server, &a, "acme", "support.acme.com", None).await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    // The other claim is still pending.
    resolve_host(&server, "acme.io")
        .await
        .assert_problem(404, "tenant_not_found");

    // Unknown domains of the tenant.
    verify(&server, &a, "acme", "nothing.acme.com", None)
        .await
        .assert_problem(404, "domain_not_found");
    verify(&server, &a, "acme", "not..valid", None)
        .await
        .assert_problem(404, "domain_not_found");
    // An invalid body is refused; an unknown field too.
    verify(
        &server,
        &a,
        "acme",
        "acme.io",
        Some(json!({"force": "yes"})),
    )
    .await
    .assert_invalid("force");

    let events: Vec<String> = server.get("/v1/tenants/acme/events").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(events.contains(&"domain.verified".to_owned()), "{events:?}");

    // Removing it stops resolution at once.
    let removed = server
        .delete("/v1/tenants/acme/domains/support.acme.com")
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    resolve_host(&server, "support.acme.com")
        .await
        .assert_problem(404, "tenant_not_found");
}

async fn competing_claims(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dns = TestDns::start().await;
    let server = start(&db, &dns).await;
    let a = admin_key(&server, "acme").await;
    let b = admin_key(&server, "globex").await;
    let c = admin_key(&server, "initech").await;

    // Several tenants may claim one domain while it is pending, each with a
    // token of its own.
    let token_a = token_of(&claim(&server, &a, "acme", "shop.example.com").await);
    let token_b = token_of(&claim(&server, &b, "globex", "shop.example.com").await);
    let token_c = token_of(&claim(&server, &c, "initech", "shop.example.com").await);
    assert!(token_a != token_b && token_b != token_c && token_a != token_c);
    // A claim by the same tenant twice is a conflict.
    claim(&server, &a, "acme", "shop.example.com")
        .await
        .assert_problem(409, "domain_taken");

    // The zone holds B's token: A's proof does not verify A's claim with it.
    dns.set_txt("_tenantry-challenge.shop.example.com", &[&token_b]);
    verify(&server, &a, "acme", "shop.example.com", None)
        .await
        .assert_problem(422, "domain_verification_failed");
    let verified = verify(&server, &b, "globex", "shop.example.com", None).await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");

    // The losers' claims are gone, with a line in their history.
    for (tenant, key) in [("acme", &a), ("initech", &c)] {
        let listed = server.get(&format!("/v1/tenants/{tenant}/domains")).await;
        assert_eq!(listed.body["data"], json!([]), "{tenant}: {listed:?}");
        verify(&server, key, tenant, "shop.example.com", None)
            .await
            .assert_problem(404, "domain_not_found");
        claim(&server, key, tenant, "shop.example.com")
            .await
            .assert_problem(409, "domain_taken");
        let events = server.get(&format!("/v1/tenants/{tenant}/events")).await;
        let last = events.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "domain.removed")
            .cloned()
            .unwrap_or_else(|| panic!("{tenant}: {events:?}"));
        assert_eq!(last["actor"], "system", "the winner's key is not revealed");
    }
    // Not even through an operator key, while B holds it.
    server
        .post(
            "/v1/tenants/acme/domains",
            json!({"domain": "shop.example.com"}),
        )
        .await
        .assert_problem(409, "domain_taken");
    let reply = resolve_host(&server, "shop.example.com").await;
    assert_eq!(reply.body["tenant"]["id"], "globex", "{reply:?}");

    // Once B lets it go, it is open to claims again (with a fresh proof).
    server
        .delete("/v1/tenants/globex/domains/shop.example.com")
        .await;
    resolve_host(&server, "shop.example.com")
        .await
        .assert_problem(404, "tenant_not_found");
    let token = token_of(&claim(&server, &a, "acme", "shop.example.com").await);
    verify(&server, &a, "acme", "shop.example.com", None)
        .await
        .assert_problem(422, "domain_verification_failed");
    dns.set_txt("_tenantry-challenge.shop.example.com", &[&token]);
    assert_eq!(
        verify(&server, &a, "acme", "shop.example.com", None)
            .await
            .status,
        StatusCode::OK
    );
    let reply = resolve_host(&server, "shop.example.com").await;
    assert_eq!(reply.body["tenant"]["id"], "acme", "{reply:?}");
}

async fn force_verify_is_for_operators(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dns = TestDns::start().await;
    let server = start(&db, &dns).await;
    let a = admin_key(&server, "acme").await;
    token_of(&claim(&server, &a, "acme", "portal.acme.com").await);

    verify(
        &server,
        &a,
        "acme",
        "portal.acme.com",
        Some(json!({"force": true})),
    )
    .await
    .assert_problem(403, "operator_required");
    resolve_host(&server, "portal.acme.com")
        .await
        .assert_problem(404, "tenant_not_found");
    // An operator may force it: no DNS record needed.
    let forced = server
        .post(
            "/v1/tenants/acme/domains/portal.acme.com/verify",
            json!({"force": true}),
        )
        .await;
    assert_eq!(forced.status, StatusCode::OK, "{forced:?}");
    assert_eq!(forced.body["status"], "verified");
    let reply = resolve_host(&server, "portal.acme.com").await;
    assert_eq!(reply.body["tenant"]["id"], "acme", "{reply:?}");
    // Without `force`, an operator goes through DNS like anyone.
    server.create_tenant("globex").await;
    server
        .post("/v1/tenants/globex/domains", json!({"domain": "globex.io"}))
        .await;
    server
        .call(
            Method::POST,
            "/v1/tenants/globex/domains/globex.io/verify",
            None,
        )
        .await
        .assert_problem(422, "domain_verification_failed");
}

async fn dns_outage_is_503(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut dns = TestDns::start().await;
    let server = start(&db, &dns).await;
    server.expect_warning("DNS unavailable");
    server.expect_warning("Status code: 503");
    let a = admin_key(&server, "acme").await;
    let token = token_of(&claim(&server, &a, "acme", "support.acme.com").await);
    dns.set_txt("_tenantry-challenge.support.acme.com", &[&token]);
    dns.stop().await;

    let reply = verify(&server, &a, "acme", "support.acme.com", None).await;
    reply.assert_problem(503, "dns_unavailable");
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{reply:?}");
    // Nothing changed: still pending, still not resolving.
    let listed = server.get("/v1/tenants/acme/domains").await;
    assert_eq!(listed.body["data"][0]["status"], "pending", "{listed:?}");
    resolve_host(&server, "support.acme.com")
        .await
        .assert_problem(404, "tenant_not_found");
}

/// Verifications racing: of one claim (all succeed), and of two tenants'
/// claims whose tokens are both in the zone (exactly one wins, the other is
/// refused; never a 5xx or a deadlock).
async fn concurrent_verifications(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dns = TestDns::start().await;
    let server = start(&db, &dns).await;
    let a = admin_key(&server, "acme").await;
    let b = admin_key(&server, "globex").await;

    let token = token_of(&claim(&server, &a, "acme", "one.example.com").await);
    dns.set_txt("_tenantry-challenge.one.example.com", &[&token]);
    let same = futures_join(
        (0..6)
            .map(|_| verify(&server, &a, "acme", "one.example.com", None))
            .collect(),
    )
    .await;
    for reply in &same {
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body["status"], "verified");
    }

    for round in 0..3 {
        let domain = format!("race{round}.example.com");
        let token_a = token_of(&claim(&server, &a, "acme", &domain).await);
        let token_b = token_of(&claim(&server, &b, "globex", &domain).await);
        dns.set_txt(
            &format!("_tenantry-challenge.{domain}"),
            &[&token_a, &token_b],
        );
        let (ra, rb) = tokio::join!(
            verify(&server, &a, "acme", &domain, None),
            verify(&server, &b, "globex", &domain, None)
        );
        let winners: Vec<&str> = [("acme", &ra), ("globex", &rb)]
            .into_iter()
            .filter(|(_, r)| r.status == StatusCode::OK)
            .map(|(t, _)| t)
            .collect();
        assert_eq!(winners.len(), 1, "{ra:?}\n{rb:?}");
        for reply in [&ra, &rb] {
            assert!(
                [200, 404, 409].contains(&reply.status.as_u16()),
                "{reply:?}"
            );
        }
        let reply = resolve_host(&server, &domain).await;
        assert_eq!(reply.body["tenant"]["id"], winners[0], "{reply:?}");
        let loser = if winners[0] == "acme" {
            "globex"
        } else {
            "acme"
        };
        let listed = server.get(&format!("/v1/tenants/{loser}/domains")).await;
        assert!(
            listed.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["domain"] != domain.as_str()),
            "{listed:?}"
        );
    }
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join<F: std::future::Future<Output = Reply>>(futures: Vec<F>) -> Vec<Reply> {
    let mut handles = Vec::new();
    for f in futures {
        handles.push(Box::pin(f));
    }
    let mut out = Vec::new();
    // Polled together: each is driven by the join below.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<Reply>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => {
                        *result = Some(r);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(Option::unwrap));
    out
}

/// Migration 0007 on a database that has domains attached without proof:
/// they become pending, each with a token of its own, and stop resolving
/// until verified. The database is taken back to its shape before 0007 (the
/// migration undone by hand), given such domains, and migrated again.
async fn legacy_domains_become_pending(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dns = TestDns::start().await;
    let mut server = start(&db, &dns).await;
    server.create_tenant("acme").await;
    server.stop().await;

    let now = match backend {
        Backend::Sqlite => "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')",
        Backend::Postgres => "now()",
    };
    for sql in [
        "DROP INDEX tenant_domains_verified_key".to_owned(),
        "DROP INDEX tenant_domains_domain_idx".to_owned(),
        "ALTER TABLE tenant_domains DROP COLUMN status".to_owned(),
        "ALTER TABLE tenant_domains DROP COLUMN verification_token".to_owned(),
        "ALTER TABLE tenant_domains DROP COLUMN verified_at".to_owned(),
        "CREATE UNIQUE INDEX tenant_domains_domain_key ON tenant_domains (domain)".to_owned(),
        "DELETE FROM _sqlx_migrations WHERE version = 7".to_owned(),
        format!(
            "INSERT INTO tenant_domains (tenant_id, domain, created_at) VALUES \
             ('acme', 'legacy.acme.com', {now}), ('acme', 'old.acme.com', {now})"
        ),
    ] {
        db.exec(&sql).await;
    }

    let server = start(&db, &dns).await;
    let listed = server.get("/v1/tenants/acme/domains").await;
    let data = listed.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{listed:?}");
    for d in data {
        assert_eq!(d["status"], "pending", "{listed:?}");
        assert!(
            d["verification_token"]
                .as_str()
                .unwrap()
                .starts_with("tenantry-verification="),
            "{listed:?}"
        );
    }
    assert_ne!(data[0]["verification_token"], data[1]["verification_token"]);
    resolve_host(&server, "legacy.acme.com")
        .await
        .assert_problem(404, "tenant_not_found");
    // Verified again (here through DNS), it resolves.
    let token = data[0]["verification_token"].as_str().unwrap();
    dns.set_txt("_tenantry-challenge.legacy.acme.com", &[token]);
    let verified = server
        .call(
            Method::POST,
            "/v1/tenants/acme/domains/legacy.acme.com/verify",
            None,
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    let reply = resolve_host(&server, "legacy.acme.com").await;
    assert_eq!(reply.body["tenant"]["id"], "acme", "{reply:?}");
}
