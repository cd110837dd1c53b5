//! `tenantry seed` (the bulk loader of benchmarks): what it writes is real.
//! Seeded keys verify and resolve through the real server, each to its own
//! tenant and no other, on SQLite and on PostgreSQL (where, as the
//! superuser, it loads with `COPY`, and as an ordinary owner role, under
//! row-level security, with scoped inserts: `scripts/test` runs both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;

on_both_backends!(seeded_keys_verify_and_resolve_to_their_own_tenant);

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn seeded_keys_verify_and_resolve_to_their_own_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let out = db.dir.path().join("seed-out");
    // Past the 10,000 tenants of one transaction: two, the second short.
    let tenants = 10_040;
    let (code, _, stderr) = db
        .run_command(
            &[
                "seed",
                "--tenants",
                &tenants.to_string(),
                "--keys-per-tenant",
                "2",
                "--sample",
                "40",
                "--prefix",
                "load",
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert_eq!(code, 0, "{stderr}");
    let valid = lines(&out.join("valid-keys.txt"));
    let unknown = lines(&out.join("unknown-keys.txt"));
    let subdomains = lines(&out.join("subdomains.txt"));
    assert_eq!((valid.len(), unknown.len()), (40, 40));
    let expected: Vec<String> = (0..tenants).map(|n| format!("load-{n}")).collect();
    assert_eq!(subdomains, expected);
    for tenant in ["load-0", "load-9999", "load-10000", "load-10039"] {
        assert_eq!(db.count_rows("api_keys", tenant).await, 2, "{tenant}");
    }

    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_BASE_DOMAIN", "example.test"),
        ],
    )
    .await;
    // Every sampled key is valid, with the seeded scopes; the sample is
    // spread over the tenants (every 502nd key: one tenant in 251).
    let mut owners = BTreeSet::new();
    for key in &valid {
        let reply = server.post("/v1/keys/verify", json!({"key": key})).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body["code"], "VALID", "{reply:?}");
        assert_eq!(reply.body["scopes"], json!(["tenant:read", "usage:write"]));
        owners.insert(reply.body["tenant"]["id"].as_str().unwrap().to_owned());
    }
    let expected_owners: BTreeSet<String> = (0..40).map(|i| format!("load-{}", i * 251)).collect();
    assert_eq!(owners, expected_owners);
    for key in unknown.iter().take(5) {
        let reply = server.post("/v1/keys/verify", json!({"key": key})).await;
        assert_eq!(reply.body["code"], "NOT_FOUND", "{reply:?}");
    }

    // Resolution by key and by subdomain agree.
    let by_key = server
        .call_as(
            None,
            Method::POST,
            "/v1/resolve",
            Some(json!({"api_key": valid[0]})),
        )
        .await;
    assert_eq!(by_key.status, StatusCode::OK, "{by_key:?}");
    let owner = by_key.body["tenant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(by_key.body["matched_by"], "api_key");
    let by_host = server
        .call_as(
            None,
            Method::POST,
            "/v1/resolve",
            Some(json!({"host": format!("{owner}.example.test")})),
        )
        .await;
    assert_eq!(by_host.status, StatusCode::OK, "{by_host:?}");
    assert_eq!(by_host.body["tenant"]["id"], owner.as_str());

    // A seeded key reaches its own tenant, and another tenant answers 404.
    let own = server
        .call_as(
            Some(&valid[0]),
            Method::GET,
            &format!("/v1/tenants/{owner}"),
            None,
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    let other = if owner == "load-1" {
        "load-2"
    } else {
        "load-1"
    };
    server
        .call_as(
            Some(&valid[0]),
            Method::GET,
            &format!("/v1/tenants/{other}"),
            None,
        )
        .await
        .assert_problem(404, "tenant_not_found");

    // Seeding the same tenants again fails whole: no key is added.
    let (code, _, _) = db
        .run_command(
            &[
                "seed",
                "--tenants",
                "5",
                "--keys-per-tenant",
                "3",
                "--prefix",
                "load",
                "--out",
                out.join("again").to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert_ne!(code, 0);
    assert_eq!(db.count_rows("api_keys", "load-0").await, 2);
}
