//! Running and operating the server: configuration, the root key, health,
//! request ids, logs and the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;

on_both_backends!(
    health_and_readiness,
    request_ids_and_json_logs,
    generated_request_ids_are_unique,
    generated_root_key
);

async fn health_and_readiness(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let health = server.call_as(None, Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let ready = server.call_as(None, Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");

    let doc = server
        .call_as(None, Method::GET, "/openapi.json", None)
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.content_type(), "application/json");
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc.body["paths"]["/v1/tenants/{id}/domains"].is_object());
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc.body, committed,
        "the served document is the committed one"
    );
}

/// Ids the server makes (from the thread's generator, issue 16) are random
/// version 4 UUIDs, never the same twice, also from concurrent requests on
/// both worker threads, and each answer carries the id its request had.
async fn generated_request_ids_are_unique(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = server.client.clone();
        let url = server.url("/healthz");
        requests.spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..100 {
                let reply = client.get(&url).send().await.unwrap();
                assert_eq!(reply.status(), StatusCode::OK);
                let id = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
                ids.push(id);
            }
            ids
        });
    }
    let mut seen = std::collections::HashSet::new();
    while let Some(ids) = requests.join_next().await {
        for id in ids.unwrap() {
            let parsed: Vec<&str> = id.split('-').collect();
            let lengths: Vec<usize> = parsed.iter().map(|p| p.len()).collect();
            assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
            assert!(
                id.chars()
                    .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{id}"
            );
            assert!(parsed[2].starts_with('4'), "version 4: {id}");
            assert!(
                matches!(&parsed[3][..1], "8" | "9" | "a" | "b"),
                "RFC variant: {id}"
            );
            assert!(seen.insert(id.clone()), "{id} given twice");
        }
    }
    assert_eq!(seen.len(), 800);
    // A caller's own id is echoed, on a change as on a read.
    let reply = server
        .client
        .post(server.url("/v1/tenants"))
        .bearer_auth(common::ROOT_KEY)
        .header("x-request-id", "caller-id-7")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.headers()["x-request-id"], "caller-id-7");
    assert_eq!(reply.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn request_ids_and_json_logs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let reply = server.get("/v1/tenants").await;
    let generated = reply
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");

    let given = server
        .client
        .get(server.url("/v1/tenants/nope"))
        .bearer_auth(common::ROOT_KEY)
        .header("x-request-id", "req-from-caller-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        given.headers().get("x-request-id").unwrap(),
        "req-from-caller-123"
    );
    assert_eq!(given.status(), StatusCode::NOT_FOUND);
    // Errors carry the id too.
    let unknown = server.call_as(None, Method::GET, "/v1/nowhere", None).await;
    assert!(unknown.headers.get("x-request-id").is_some());

    // Every request is logged as one JSON object with its request id.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = server.logs();
    let entries: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!entries.is_empty(), "{logs}");
    let finished = entries
        .iter()
        .find(|e| {
            e["span"]["request_id"] == "req-from-caller-123"
                && e["message"] == "finished processing request"
        })
        .unwrap_or_else(|| panic!("a log line for the request:\n{logs}"));
    assert_eq!(finished["status"], 404);
    assert_eq!(finished["span"]["path"], "/v1/tenants/nope");
    assert!(
        entries
            .iter()
            .any(|e| e["span"]["request_id"] == generated.as_str())
    );
    assert!(
        !logs.contains(common::ROOT_KEY),
        "the root key is never logged"
    );
}

async fn generated_root_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start_with(&db, &[]).await;
    let key_file = db.data_dir().join("root.key");
    assert_eq!(common::file_mode(&key_file), 0o600);
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(key.len() >= 32);
    // stderr and stdout are read separately: give the banner a moment.
    for _ in 0..50 {
        if server.logs().contains(&key) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(server.logs().contains(&key), "printed once at first start");
    assert_eq!(
        server
            .call_as(Some(&key), Method::GET, "/v1/tenants", None)
            .await
            .status,
        StatusCode::OK
    );
    server
        .call_as(Some(common::ROOT_KEY), Method::GET, "/v1/tenants", None)
        .await
        .assert_problem(401, "unauthorized");
    server.stop().await;

    let server = TestServer::start_with(&db, &[]).await;
    assert!(!server.logs().contains(&key), "not printed again");
    assert_eq!(
        server
            .call_as(Some(&key), Method::GET, "/v1/tenants", None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_refused_with_its_name() {
    let db = TestDb::new(Backend::Sqlite).await;
    let out = TestServer::try_start(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_LISTN", "x"),
        ],
    )
    .await
    .err()
    .unwrap();
    assert!(out.contains("TENANTRY_LISTN"), "{out}");
    let out = TestServer::try_start(&db, &[("TENANTRY_ROOT_KEY", "too-short")])
        .await
        .err()
        .unwrap();
    assert!(out.contains("at least 32 characters"), "{out}");
    assert!(
        !out.contains("too-short"),
        "the secret is not echoed: {out}"
    );
    let out = TestServer::try_start(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_DATABASE_URL", "mysql://x"),
        ],
    )
    .await
    .err()
    .unwrap();
    assert!(out.contains("postgres://"), "{out}");
    let out = TestServer::try_start(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_LOG", "xml"),
        ],
    )
    .await
    .err()
    .unwrap();
    assert!(out.contains("TENANTRY_LOG"), "{out}");

    // A tenantry.toml in the working directory is read, and checked the same way.
    std::fs::write(
        db.dir.path().join("tenantry.toml"),
        "deletion_grace_period = \"7d\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let out = TestServer::try_start(&db, &[("TENANTRY_ROOT_KEY", common::ROOT_KEY)])
        .await
        .err()
        .unwrap();
    assert!(
        out.contains("log_format") && out.contains("tenantry.toml"),
        "{out}"
    );
    std::fs::write(
        db.dir.path().join("tenantry.toml"),
        "deletion_grace_period = \"7d\"\n",
    )
    .unwrap();
    let server = TestServer::start(&db).await;
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);

    // Secrets from files.
    let key_file = db.dir.path().join("root-key.txt");
    std::fs::write(&key_file, format!("{}\n", common::ROOT_KEY)).unwrap();
    drop(server);
    let server = TestServer::start_with(
        &db,
        &[("TENANTRY_ROOT_KEY_FILE", key_file.to_str().unwrap())],
    )
    .await;
    assert_eq!(server.get("/v1/tenants").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_is_created_under_the_data_dir() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    assert!(db.data_dir().join("tenantry.db").exists());
}
