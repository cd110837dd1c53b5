//! The tenant registry over HTTP: lifecycle, validation, domains, events,
//! persistence and cross-tenant boundaries, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use futures_util::TryStreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenantry_client::api::tenants::{ListTenantsParams, TenantIn};

on_both_backends!(
    lifecycle,
    listing_paginates_and_filters,
    conflicts,
    validation_errors,
    malformed_requests,
    authentication,
    custom_domains,
    tenant_rows_stay_with_their_tenant,
    persists_across_restart,
    purge_deletes_every_row,
    grace_period_purge,
);

fn event_types(reply: &common::Reply) -> Vec<String> {
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;

    let created = server
        .post(
            "/v1/tenants",
            json!({"id": "acme", "name": "Acme Insurance", "plan": "professional", "region": "eu-west-1", "metadata": {"crm": "x"}}),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{created:?} {}",
        server.logs()
    );
    let t = &created.body;
    assert_eq!(t["id"], "acme");
    assert_eq!(t["name"], "Acme Insurance");
    assert_eq!(t["subdomain"], "acme");
    assert_eq!(t["status"], "active");
    assert_eq!(t["plan"], "professional");
    assert_eq!(t["region"], "eu-west-1");
    assert_eq!(t["metadata"], json!({"crm": "x"}));
    assert!(t["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(t["created_at"], t["updated_at"]);

    let defaults = server.create_tenant("beta-co").await;
    assert_eq!(defaults["plan"], "starter");
    assert_eq!(defaults["region"], "local");
    assert_eq!(defaults["metadata"], json!({}));

    let got = server.get("/v1/tenants/acme").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created.body);

    let patched = server
        .patch(
            "/v1/tenants/acme",
            json!({"name": "Acme Ltd", "subdomain": "acme-ltd", "metadata": {"crm": "y"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");
    assert_eq!(patched.body["name"], "Acme Ltd");
    assert_eq!(patched.body["subdomain"], "acme-ltd");
    assert_eq!(
        patched.body["plan"], "professional",
        "fields left out keep their value"
    );
    assert_eq!(patched.body["metadata"], json!({"crm": "y"}));

    let suspended = server.post("/v1/tenants/acme/suspend", json!({})).await;
    assert_eq!(suspended.status, StatusCode::OK);
    assert_eq!(suspended.body["status"], "suspended");
    // Suspending again is a no-op, not an error.
    assert_eq!(
        server
            .post("/v1/tenants/acme/suspend", json!({}))
            .await
            .body["status"],
        "suspended"
    );

    let reactivated = server.post("/v1/tenants/acme/reactivate", json!({})).await;
    assert_eq!(reactivated.body["status"], "active");

    let deleted = server.delete("/v1/tenants/acme").await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
    assert_eq!(deleted.body["status"], "deleted");
    assert!(deleted.body["deleted_at"].is_string());
    // Soft-deleted: still visible to operators, data kept, not editable.
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "deleted"
    );
    server
        .patch("/v1/tenants/acme", json!({"name": "x"}))
        .await
        .assert_problem(409, "tenant_deleted");
    server
        .post("/v1/tenants/acme/suspend", json!({}))
        .await
        .assert_problem(409, "tenant_deleted");

    let events = server.get("/v1/tenants/acme/events").await;
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(
        event_types(&events),
        [
            "tenant.created",
            "tenant.updated",
            "tenant.suspended",
            "tenant.reactivated",
            "tenant.deleted"
        ]
    );
    let first = &events.body["data"][0];
    assert_eq!(first["actor"], "operator:root");
    assert_eq!(first["tenant_id"], "acme");
    assert!(first["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(
        events.body["data"][1]["data"]["changes"]["name"],
        json!({"from": "Acme Insurance", "to": "Acme Ltd"})
    );

    // Restoring within the grace period.
    let restored = server.post("/v1/tenants/acme/reactivate", json!({})).await;
    assert_eq!(restored.body["status"], "active");
    assert!(restored.body["deleted_at"].is_null());

    let purged = server
        .call(Method::DELETE, "/v1/tenants/acme?purge=true", None)
        .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT, "{purged:?}");
    server
        .get("/v1/tenants/acme")
        .await
        .assert_problem(404, "tenant_not_found");
    server
        .get("/v1/tenants/acme/events")
        .await
        .assert_problem(404, "tenant_not_found");
    server
        .call(Method::DELETE, "/v1/tenants/acme?purge=true", None)
        .await
        .assert_problem(404, "tenant_not_found");
    // The id is free again.
    server.create_tenant("acme").await;
}

async fn listing_paginates_and_filters(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let client = tenantry_client::Client::new(&server.base, common::ROOT_KEY).unwrap();
    for i in 0..7 {
        let id = format!("tenant-{i}");
        let plan = if i % 2 == 0 { "starter" } else { "enterprise" };
        client
            .tenants()
            .create(&TenantIn {
                id: id.clone(),
                name: id,
                plan: Some(plan.to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    client.tenants().suspend("tenant-3").await.unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants?limit=3&cursor={c}"),
            None => "/v1/tenants?limit=3".to_owned(),
        };
        let page = server.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("tenant-{i}")).collect();
    assert_eq!(seen, expected);

    // The filters, through the typed client (its stream follows every page).
    let ids = |status: Option<&str>, plan: Option<&str>| {
        let list = client.tenants().list(ListTenantsParams {
            status: status.map(str::to_owned),
            plan: plan.map(str::to_owned),
            ..Default::default()
        });
        async move {
            list.map_ok(|t| t.id)
                .try_collect::<Vec<String>>()
                .await
                .unwrap()
        }
    };
    assert_eq!(ids(Some("suspended"), None).await, ["tenant-3"]);
    assert_eq!(
        ids(None, Some("enterprise")).await,
        ["tenant-1", "tenant-3", "tenant-5"]
    );
    assert_eq!(
        ids(Some("active"), Some("enterprise")).await,
        ["tenant-1", "tenant-5"]
    );
    assert!(ids(Some("deleted"), None).await.is_empty());

    server
        .get("/v1/tenants?status=gone")
        .await
        .assert_invalid("status");
    server
        .get("/v1/tenants?limit=0")
        .await
        .assert_invalid("limit");
    server
        .get("/v1/tenants?limit=1000")
        .await
        .assert_invalid("limit");
    server
        .get("/v1/tenants?limit=abc")
        .await
        .assert_invalid("limit");
    server
        .get("/v1/tenants?cursor=not-a-cursor")
        .await
        .assert_invalid("cursor");
    server
        .get("/v1/tenants?plan=Not%20A%20Plan")
        .await
        .assert_invalid("plan");
    // A cursor of another list is refused too, both ways.
    let tenants_cursor = server.get("/v1/tenants?limit=1").await.body["next_cursor"]
        .as_str()
        .expect("a tenants cursor")
        .to_owned();
    server
        .get(&format!(
            "/v1/tenants/tenant-0/events?cursor={tenants_cursor}"
        ))
        .await
        .assert_invalid("cursor");
    server
        .patch("/v1/tenants/tenant-0", json!({"name": "Renamed"}))
        .await;
    let events_cursor = server.get("/v1/tenants/tenant-0/events?limit=1").await.body["next_cursor"]
        .as_str()
        .expect("an events cursor")
        .to_owned();
    server
        .get(&format!("/v1/tenants?cursor={events_cursor}"))
        .await
        .assert_invalid("cursor");
}

async fn conflicts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let dup = server
        .post("/v1/tenants", json!({"id": "acme", "name": "Other"}))
        .await;
    assert_eq!(dup.assert_problem(409, "tenant_exists")["field"], "id");
    let sub = server
        .post(
            "/v1/tenants",
            json!({"id": "acme-two", "name": "Other", "subdomain": "acme"}),
        )
        .await;
    assert_eq!(
        sub.assert_problem(409, "subdomain_taken")["field"],
        "subdomain"
    );
    server.create_tenant("other").await;
    server
        .patch("/v1/tenants/other", json!({"subdomain": "acme"}))
        .await
        .assert_problem(409, "subdomain_taken");
    // Nothing half-written: the failed creations left no tenant and no event.
    server
        .get("/v1/tenants/acme-two")
        .await
        .assert_problem(404, "tenant_not_found");
    assert_eq!(db.count_rows("tenant_events", "acme-two").await, 0);
    assert_eq!(
        event_types(&server.get("/v1/tenants/other/events").await),
        ["tenant.created"]
    );
}

async fn validation_errors(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"id": "ab", "name": "x"}), "id"),
        (json!({"id": "a".repeat(64), "name": "x"}), "id"),
        (json!({"id": "Acme", "name": "x"}), "id"),
        (json!({"id": "-acme", "name": "x"}), "id"),
        (json!({"id": "acme-", "name": "x"}), "id"),
        (json!({"id": "ac_me", "name": "x"}), "id"),
        (json!({"id": "www", "name": "x"}), "id"),
        (json!({"id": "api", "name": "x"}), "id"),
        (json!({"id": "admin", "name": "x"}), "id"),
        (json!({"id": "console", "name": "x"}), "id"),
        (json!({"id": "app", "name": "x"}), "id"),
        (json!({"id": "acme", "name": ""}), "name"),
        (json!({"id": "acme", "name": "   "}), "name"),
        (json!({"id": "acme", "name": "a\u{0007}b"}), "name"),
        (json!({"id": "acme", "name": "x".repeat(201)}), "name"),
        (
            json!({"id": "acme", "name": "x", "subdomain": "www"}),
            "subdomain",
        ),
        (
            json!({"id": "acme", "name": "x", "subdomain": "a.b"}),
            "subdomain",
        ),
        (
            json!({"id": "acme", "name": "x", "plan": "Gold Plan"}),
            "plan",
        ),
        (json!({"id": "acme", "name": "x", "region": ""}), "region"),
        (
            json!({"id": "acme", "name": "x", "metadata": [1, 2]}),
            "metadata",
        ),
        (
            json!({"id": "acme", "name": "x", "metadata": "str"}),
            "metadata",
        ),
        (json!({"name": "x"}), "id"),
        (json!({"id": "acme"}), "name"),
        (json!({"id": 42, "name": "x"}), "id"),
        (json!({"id": "acme", "name": ["x"]}), "name"),
        (
            json!({"id": "acme", "name": "x", "colour": "blue"}),
            "colour",
        ),
        (json!([1, 2, 3]), "body"),
        (json!("acme"), "body"),
    ];
    for (body, field) in cases {
        let reply = server.post("/v1/tenants", body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} → {reply:?}"
        );
        reply.assert_invalid(field);
    }
    let big_metadata: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    server
        .post(
            "/v1/tenants",
            json!({"id": "acme", "name": "x", "metadata": big_metadata}),
        )
        .await
        .assert_invalid("metadata");

    // Several invalid fields are all reported.
    let many = server
        .post("/v1/tenants", json!({"id": "x", "name": "", "plan": "BAD"}))
        .await;
    let fields: Vec<&str> = many.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "name", "plan"]);

    server.create_tenant("acme").await;
    server
        .patch("/v1/tenants/acme", json!({"name": ""}))
        .await
        .assert_invalid("name");
    server
        .patch("/v1/tenants/acme", json!({"subdomain": "api"}))
        .await
        .assert_invalid("subdomain");
    server
        .patch("/v1/tenants/acme", json!({"metadata": 3}))
        .await
        .assert_invalid("metadata");
    server
        .patch("/v1/tenants/acme", json!({"id": "other"}))
        .await
        .assert_invalid("id");
    server
        .call(Method::DELETE, "/v1/tenants/acme?purge=maybe", None)
        .await
        .assert_invalid("purge");
    // None of the refused requests changed anything.
    let events = server.get("/v1/tenants/acme/events").await;
    assert_eq!(event_types(&events), ["tenant.created"]);
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "active"
    );
    let list = server.get("/v1/tenants").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

async fn malformed_requests(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let raw = |method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut req = server
            .client
            .request(method, server.url(path))
            .bearer_auth(common::ROOT_KEY)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req
    };
    let send = |req: reqwest::RequestBuilder| async move {
        common::Reply::from(req.send().await.unwrap()).await
    };

    send(raw(
        Method::POST,
        "/v1/tenants",
        Some("application/json"),
        b"{\"id\": \"acme\",".to_vec(),
    ))
    .await
    .assert_problem(400, "malformed_json");
    send(raw(
        Method::POST,
        "/v1/tenants",
        Some("application/json"),
        b"".to_vec(),
    ))
    .await
    .assert_problem(400, "malformed_json");
    send(raw(
        Method::POST,
        "/v1/tenants",
        Some("application/json"),
        vec![0xff, 0xfe, 0x00],
    ))
    .await
    .assert_problem(400, "malformed_json");
    send(raw(
        Method::POST,
        "/v1/tenants",
        Some("text/plain"),
        b"{}".to_vec(),
    ))
    .await
    .assert_problem(415, "unsupported_media_type");
    send(raw(Method::POST, "/v1/tenants", None, b"{}".to_vec()))
        .await
        .assert_problem(415, "unsupported_media_type");
    // An oversized body is refused from its Content-Length, before it is sent.
    let oversized = common::raw_http(
        &server.base,
        &format!(
            "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"id\":",
            common::ROOT_KEY,
            4 * 1024 * 1024
        ),
    )
    .await;
    assert!(oversized.starts_with("HTTP/1.1 413"), "{oversized}");
    assert!(
        oversized.contains("application/problem+json") && oversized.contains("payload_too_large"),
        "{oversized}"
    );
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let reply = send(raw(
        Method::POST,
        "/v1/tenants",
        Some("application/json"),
        deep.into_bytes(),
    ))
    .await;
    assert!(reply.status.is_client_error(), "{reply:?}");
    assert_eq!(reply.content_type(), "application/problem+json");

    server
        .get("/v1/nothing-here")
        .await
        .assert_problem(404, "not_found");
    server
        .get("/v2/tenants")
        .await
        .assert_problem(404, "not_found");
    server
        .call(Method::PUT, "/v1/tenants", None)
        .await
        .assert_problem(405, "method_not_allowed");
    server
        .call(Method::DELETE, "/healthz", None)
        .await
        .assert_problem(405, "method_not_allowed");
    // Ids that cannot exist are simply not found.
    server
        .get("/v1/tenants/NOT%20A%20SLUG")
        .await
        .assert_problem(404, "tenant_not_found");
    server
        .get("/v1/tenants/%FF%FE")
        .await
        .assert_problem(404, "not_found");
    server
        .get(&format!("/v1/tenants/{}", "a".repeat(5000)))
        .await
        .assert_problem(404, "tenant_not_found");

    // Nothing was created by any of it.
    assert_eq!(server.get("/v1/tenants").await.body["data"], json!([]));
    assert!(!server.logs().contains("panicked"));
}

async fn authentication(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    for key in [
        None,
        Some("wrong-key"),
        Some(""),
        Some(&common::ROOT_KEY[..20]),
    ] {
        let reply = server.call_as(key, Method::GET, "/v1/tenants", None).await;
        reply.assert_problem(401, "unauthorized");
        assert_eq!(reply.headers.get("www-authenticate").unwrap(), "Bearer");
    }
    let reply = server
        .call_as(
            None,
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "x"})),
        )
        .await;
    reply.assert_problem(401, "unauthorized");
    // Scheme is case-insensitive; other schemes are refused.
    let ok = server
        .client
        .get(server.url("/v1/tenants"))
        .header("authorization", format!("bearer {}", common::ROOT_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let basic = server
        .client
        .get(server.url("/v1/tenants"))
        .header("authorization", format!("Basic {}", common::ROOT_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    // Health endpoints are open.
    assert_eq!(
        server
            .call_as(None, Method::GET, "/healthz", None)
            .await
            .status,
        StatusCode::OK
    );
}

async fn custom_domains(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;

    let added = server
        .post(
            "/v1/tenants/acme/domains",
            json!({"domain": "Support.Acme.COM."}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{added:?}");
    assert_eq!(added.body["domain"], "support.acme.com");
    server
        .post("/v1/tenants/acme/domains", json!({"domain": "acme.io"}))
        .await;

    let list = server.get("/v1/tenants/acme/domains").await;
    let domains: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(domains, ["acme.io", "support.acme.com"]);

    // A domain belongs to at most one tenant once verified (a pending claim
    // proves nothing, so several may exist: see tests/domains.rs).
    let verified = server
        .post(
            "/v1/tenants/acme/domains/support.acme.com/verify",
            json!({"force": true}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    let taken = server
        .post(
            "/v1/tenants/globex/domains",
            json!({"domain": "support.acme.com"}),
        )
        .await;
    assert_eq!(taken.assert_problem(409, "domain_taken")["field"], "domain");
    server
        .post("/v1/tenants/acme/domains", json!({"domain": "acme.io"}))
        .await
        .assert_problem(409, "domain_taken");

    for bad in [
        "localhost",
        "acme",
        "1.2.3.4",
        "*.acme.com",
        "acme.com:8080",
        "http://acme.com",
        "ac me.com",
        "-acme.com",
        "",
    ] {
        server
            .post("/v1/tenants/acme/domains", json!({"domain": bad}))
            .await
            .assert_invalid("domain");
    }
    server
        .post("/v1/tenants/acme/domains", json!({}))
        .await
        .assert_invalid("domain");
    server
        .post(
            "/v1/tenants/nobody/domains",
            json!({"domain": "nobody.com"}),
        )
        .await
        .assert_problem(404, "tenant_not_found");
    server
        .get("/v1/tenants/nobody/domains")
        .await
        .assert_problem(404, "tenant_not_found");

    let removed = server.delete("/v1/tenants/acme/domains/acme.io").await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    server
        .delete("/v1/tenants/acme/domains/acme.io")
        .await
        .assert_problem(404, "domain_not_found");
    server
        .delete("/v1/tenants/acme/domains/not..valid")
        .await
        .assert_problem(404, "domain_not_found");
    // Freed, it can be attached elsewhere.
    assert_eq!(
        server
            .post("/v1/tenants/globex/domains", json!({"domain": "acme.io"}))
            .await
            .status,
        StatusCode::CREATED
    );

    let events = event_types(&server.get("/v1/tenants/acme/events").await);
    assert_eq!(
        events,
        [
            "tenant.created",
            "domain.added",
            "domain.added",
            "domain.verified",
            "domain.removed"
        ]
    );
}

/// A tenant-scoped row of one tenant can be neither read nor changed through
/// another tenant.
async fn tenant_rows_stay_with_their_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    server
        .post("/v1/tenants/acme/domains", json!({"domain": "acme.com"}))
        .await;

    // Read: globex's lists don't show acme's rows.
    assert_eq!(
        server.get("/v1/tenants/globex/domains").await.body["data"],
        json!([])
    );
    let globex_events = server.get("/v1/tenants/globex/events").await;
    assert!(
        globex_events.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant_id"] == "globex")
    );
    assert_eq!(event_types(&globex_events), ["tenant.created"]);

    // Write: acme's domain cannot be removed through globex: 404, not 403.
    server
        .delete("/v1/tenants/globex/domains/acme.com")
        .await
        .assert_problem(404, "domain_not_found");
    assert_eq!(db.count_rows("tenant_domains", "acme").await, 1);
    assert_eq!(
        server.get("/v1/tenants/acme/domains").await.body["data"][0]["domain"],
        "acme.com"
    );

    // A cursor from one tenant's history reveals nothing of another's.
    for i in 0..3 {
        server
            .post(
                "/v1/tenants/acme/domains",
                json!({"domain": format!("a{i}.acme.com")}),
            )
            .await;
    }
    let page = server.get("/v1/tenants/acme/events?limit=2").await;
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let other = server
        .get(&format!("/v1/tenants/globex/events?cursor={cursor}"))
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(
        other.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant_id"] == "globex")
    );

    // Purging acme leaves globex whole.
    server
        .call(Method::DELETE, "/v1/tenants/acme?purge=true", None)
        .await;
    assert_eq!(db.count_rows("tenant_events", "globex").await, 1);
    assert_eq!(
        server.get("/v1/tenants/globex").await.status,
        StatusCode::OK
    );
}

async fn persists_across_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server
        .post("/v1/tenants/acme/domains", json!({"domain": "acme.com"}))
        .await;
    server.post("/v1/tenants/acme/suspend", json!({})).await;
    let before = server.get("/v1/tenants/acme").await.body;
    assert_eq!(
        server.stop().await,
        Some(0),
        "graceful shutdown exits 0:\n{}",
        server.logs()
    );
    assert!(server.logs().contains("shutting down"));

    let server = TestServer::start(&db).await;
    assert_eq!(server.get("/v1/tenants/acme").await.body, before);
    assert_eq!(
        server.get("/v1/tenants/acme/domains").await.body["data"][0]["domain"],
        "acme.com"
    );
    assert_eq!(
        event_types(&server.get("/v1/tenants/acme/events").await),
        ["tenant.created", "domain.added", "tenant.suspended"]
    );
}

/// Asserts that `tenant` has at least one row in every tenant table (so the
/// seeding covers a table added later) or none at all.
async fn assert_tenant_rows(db: &TestDb, tenant: &str, present: bool) {
    let tables = db.tenant_tables().await;
    assert!(tables.len() >= 12, "{tables:?}");
    for table in tables {
        let n = db.count_rows(&table, tenant).await;
        // The webhook outbox is a queue the delivery worker empties within
        // moments: no seeding leaves a row there (its absence after a purge
        // is still checked).
        if present && table == "webhook_outbox" {
            continue;
        }
        if present {
            assert!(n > 0, "the seeding leaves no row of {tenant} in {table}");
        } else {
            assert_eq!(n, 0, "{table} still holds rows of {tenant}");
        }
    }
}

async fn purge_deletes_every_row(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("kept").await;
    server.seed_every_tenant_table("acme").await;
    server.seed_every_tenant_table("kept").await;
    db.seed_audit_chain("acme").await;
    db.seed_audit_chain("kept").await;
    db.seed_provisioning_workflow("acme").await;
    db.seed_provisioning_workflow("kept").await;
    assert_tenant_rows(&db, "acme", true).await;
    server.delete("/v1/tenants/acme").await;
    // Soft delete keeps everything.
    assert_tenant_rows(&db, "acme", true).await;
    let purged = server
        .call(Method::DELETE, "/v1/tenants/acme?purge=true", None)
        .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT);
    assert_tenant_rows(&db, "acme", false).await;
    assert_tenant_rows(&db, "kept", true).await;
    // The domain is free for others.
    server.create_tenant("globex").await;
    assert_eq!(
        server
            .post(
                "/v1/tenants/globex/domains",
                json!({"domain": "acme-seed.example.org"})
            )
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn grace_period_purge(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_DELETION_GRACE_PERIOD", "1h"),
            ("TENANTRY_PURGE_INTERVAL", "100ms"),
        ],
    )
    .await;
    for tenant in ["acme", "restored", "kept"] {
        server.create_tenant(tenant).await;
        server.seed_every_tenant_table(tenant).await;
        db.seed_audit_chain(tenant).await;
        db.seed_provisioning_workflow(tenant).await;
    }
    server.delete("/v1/tenants/acme").await;
    server.delete("/v1/tenants/restored").await;
    // Many purge intervals pass: within their grace period both survive
    // whole, and one is restored with everything it had.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for tenant in ["acme", "restored"] {
        let reply = server.get(&format!("/v1/tenants/{tenant}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body["status"], "deleted");
        assert_tenant_rows(&db, tenant, true).await;
    }
    let restored = server
        .post("/v1/tenants/restored/reactivate", json!({}))
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{restored:?}");
    assert_eq!(restored.body["status"], "active");
    // Time passes for acme only: its grace period is over.
    db.exec("UPDATE tenants SET deleted_at = '2000-01-01 00:00:00+00:00' WHERE id = 'acme'")
        .await;
    let mut gone = false;
    for _ in 0..150 {
        if server.get("/v1/tenants/acme").await.status == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        gone,
        "the purge worker removed the tenant after its grace period:\n{}",
        server.logs()
    );
    assert_tenant_rows(&db, "acme", false).await;
    for tenant in ["restored", "kept"] {
        assert_eq!(
            server.get(&format!("/v1/tenants/{tenant}")).await.body["status"],
            "active"
        );
        assert_tenant_rows(&db, tenant, true).await;
    }
}
