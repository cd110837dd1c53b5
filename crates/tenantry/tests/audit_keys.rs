//! The audit log of keys, operator keys, tokens and signing keys: each
//! successful change is exactly one entry (action, targets, actor, request
//! id) in the right chain; a refused or failed change is none, and no
//! event; no entry holds a key, a key's hash or a token. Read by raw SQL
//! (the audit read API is built elsewhere). On both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

on_both_backends!(
    api_key_changes_are_audited,
    operator_changes_are_audited,
    failed_changes_leave_no_entry,
    concurrent_changes_record_once,
);

/// One row of `audit_entries`, every column as text.
#[derive(Debug, Clone)]
struct Entry {
    chain: String,
    action: String,
    actor_type: String,
    actor_id: String,
    targets: Value,
    request: Value,
    changes: Value,
    metadata: Value,
    columns: Vec<String>,
}

type Row = (
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

const ENTRIES: &str = "SELECT tenant_id, sequence, id, CAST(occurred_at AS TEXT), actor_type, actor_id, \
     COALESCE(actor_name, ''), action, targets, outcome, request, changes, metadata, prev_hash, hash \
     FROM audit_entries ORDER BY tenant_id, sequence";

/// Every entry of every chain (the operator chain is `""`), bypassing
/// Tenantry: the SQLite file, or the PostgreSQL superuser.
async fn entries(db: &TestDb) -> Vec<Entry> {
    let rows: Vec<Row> = match db.backend {
        Backend::Sqlite => {
            let pool = db.sqlite_reader().await;
            let rows = sqlx::query_as(ENTRIES).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = db.pg_superuser().await;
            let rows = sqlx::query_as(ENTRIES).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    };
    rows.into_iter()
        .map(|r| {
            let json = |s: &str| serde_json::from_str::<Value>(s).unwrap();
            Entry {
                chain: r.0.clone(),
                action: r.7.clone(),
                actor_type: r.4.clone(),
                actor_id: r.5.clone(),
                targets: json(&r.8),
                request: json(&r.10),
                changes: json(&r.11),
                metadata: json(&r.12),
                columns: vec![
                    r.0,
                    r.1.to_string(),
                    r.2,
                    r.3,
                    r.4,
                    r.5,
                    r.6,
                    r.7,
                    r.8,
                    r.9,
                    r.10,
                    r.11,
                    r.12,
                    r.13,
                    r.14,
                ],
            }
        })
        .collect()
}

/// Sends a request with `key` and an `X-Request-Id`.
async fn call(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    request_id: &str,
) -> common::Reply {
    let mut req = server
        .client
        .request(method, server.url(path))
        .bearer_auth(key)
        .header("x-request-id", request_id);
    if let Some(body) = body {
        req = req.json(&body);
    }
    common::Reply::from(req.send().await.unwrap()).await
}

/// Asserts that there is exactly one entry more than `before` (which one
/// it is, [`entry_of`] finds by its request id: rows are listed by chain).
async fn one_new_entry(db: &TestDb, before: usize) {
    let all = entries(db).await;
    assert_eq!(
        all.len(),
        before + 1,
        "expected exactly one new entry: {all:#?}"
    );
}

/// The one entry that carries `request_id`, asserting there is exactly one.
async fn entry_of(db: &TestDb, request_id: &str) -> Entry {
    let found: Vec<Entry> = entries(db)
        .await
        .into_iter()
        .filter(|e| e.request["id"] == request_id)
        .collect();
    assert_eq!(found.len(), 1, "entries of {request_id}: {found:#?}");
    found.into_iter().next().unwrap()
}

fn target(kind: &str, id: &str) -> Value {
    json!({ "type": kind, "id": id })
}

async fn event_types(server: &TestServer, tenant: &str) -> Vec<String> {
    let reply = server.get(&format!("/v1/tenants/{tenant}/events")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

/// No column of any entry holds any of `secrets`, nor their SHA-256 (hex).
async fn assert_no_secrets(db: &TestDb, secrets: &[&str]) {
    let all = entries(db).await;
    assert!(!all.is_empty());
    for secret in secrets {
        assert!(secret.len() >= 16, "a weak probe: {secret}");
        let hash = hex(&Sha256::digest(secret.as_bytes()));
        for entry in &all {
            for column in &entry.columns {
                assert!(
                    !column.contains(secret) && !column.contains(&hash),
                    "an audit entry holds a secret: {entry:#?}"
                );
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn api_key_changes_are_audited(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;

    // Created by the operator.
    let before = entries(&db).await.len();
    let created = call(
        &server,
        ROOT_KEY,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        Some(json!({"name": "admin", "scopes": ["keys:write", "keys:read"], "metadata": {"team": "core"}})),
        "req-key-create",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let admin_key = created.body["key"].as_str().unwrap().to_owned();
    let admin_id = created.body["id"].as_str().unwrap().to_owned();
    one_new_entry(&db, before).await;
    let entry = entry_of(&db, "req-key-create").await;
    assert_eq!(entry.chain, "acme");
    assert_eq!(entry.action, "api_key.created");
    assert_eq!(entry.targets, json!([target("api_key", &admin_id)]));
    assert_eq!(
        (entry.actor_type.as_str(), entry.actor_id.as_str()),
        ("operator", "root")
    );
    assert_eq!(entry.changes["after"]["name"], "admin");
    assert_eq!(entry.changes["after"]["metadata"], json!({"team": "core"}));

    // Created by a tenant key: the key is the actor.
    let before = entries(&db).await.len();
    let made = call(
        &server,
        &admin_key,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        Some(json!({"name": "svc", "scopes": ["keys:read"]})),
        "req-key-create-2",
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let svc_key = made.body["key"].as_str().unwrap().to_owned();
    let svc_id = made.body["id"].as_str().unwrap().to_owned();
    one_new_entry(&db, before).await;
    let entry = entry_of(&db, "req-key-create-2").await;
    assert_eq!(
        (entry.chain.as_str(), entry.action.as_str()),
        ("acme", "api_key.created")
    );
    assert_eq!(
        (entry.actor_type.as_str(), entry.actor_id.as_str()),
        ("api_key", admin_id.as_str())
    );

    // Updated: before and after of what changed, nothing else.
    let before = entries(&db).await.len();
    let updated = call(
        &server,
        &admin_key,
        Method::PATCH,
        &format!("/v1/tenants/acme/api-keys/{svc_id}"),
        Some(json!({"name": "svc-2"})),
        "req-key-update",
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{updated:?}");
    one_new_entry(&db, before).await;
    let entry = entry_of(&db, "req-key-update").await;
    assert_eq!(entry.action, "api_key.updated");
    assert_eq!(entry.targets, json!([target("api_key", &svc_id)]));
    assert_eq!(
        entry.changes,
        json!({"name": {"from": "svc", "to": "svc-2"}})
    );
    // A patch that changes nothing records nothing.
    let before = entries(&db).await.len();
    let same = call(
        &server,
        &admin_key,
        Method::PATCH,
        &format!("/v1/tenants/acme/api-keys/{svc_id}"),
        Some(json!({"name": "svc-2"})),
        "req-key-update-noop",
    )
    .await;
    assert_eq!(same.status, StatusCode::OK, "{same:?}");
    assert_eq!(entries(&db).await.len(), before);

    // Another tenant's key: 404, and nothing in any chain.
    let foreign = server
        .post(
            "/v1/tenants/globex/api-keys",
            json!({"name": "g", "scopes": ["keys:write"]}),
        )
        .await;
    let foreign_key = foreign.body["key"].as_str().unwrap().to_owned();
    let before = entries(&db).await.len();
    for (method, path) in [
        (
            Method::POST,
            format!("/v1/tenants/acme/api-keys/{svc_id}/revoke"),
        ),
        (
            Method::POST,
            format!("/v1/tenants/acme/api-keys/{svc_id}/rotate"),
        ),
        (Method::PATCH, format!("/v1/tenants/acme/api-keys/{svc_id}")),
        (
            Method::POST,
            format!("/v1/tenants/globex/api-keys/{svc_id}/revoke"),
        ),
    ] {
        let reply = call(
            &server,
            &foreign_key,
            method,
            &path,
            Some(json!({})),
            "req-foreign",
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
    }
    assert_eq!(entries(&db).await.len(), before);

    // Rotated: one entry, targeting the old key and the new one.
    let rotated = call(
        &server,
        &admin_key,
        Method::POST,
        &format!("/v1/tenants/acme/api-keys/{svc_id}/rotate"),
        Some(json!({"overlap_seconds": 60})),
        "req-key-rotate",
    )
    .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{rotated:?}");
    let new_key = rotated.body["key"].as_str().unwrap().to_owned();
    let new_id = rotated.body["id"].as_str().unwrap().to_owned();
    one_new_entry(&db, before).await;
    let entry = entry_of(&db, "req-key-rotate").await;
    assert_eq!(entry.action, "api_key.rotated");
    assert_eq!(
        entry.targets,
        json!([target("api_key", &svc_id), target("api_key", &new_id)])
    );
    assert_eq!(entry.changes["old_key"]["expires_at"]["from"], Value::Null);
    assert!(
        entry.changes["old_key"]["expires_at"]["to"].is_string(),
        "{entry:#?}"
    );
    assert_eq!(
        entry.changes["new_key"]["after"]["rotated_from"],
        svc_id.as_str()
    );
    assert_eq!(entry.metadata["overlap_seconds"], 60);

    // Revoked, once: revoking again records nothing.
    let before = entries(&db).await.len();
    let revoked = call(
        &server,
        &admin_key,
        Method::POST,
        &format!("/v1/tenants/acme/api-keys/{new_id}/revoke"),
        None,
        "req-key-revoke",
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    one_new_entry(&db, before).await;
    let entry = entry_of(&db, "req-key-revoke").await;
    assert_eq!(entry.action, "api_key.revoked");
    assert_eq!(entry.targets, json!([target("api_key", &new_id)]));
    assert_eq!(entry.changes["revoked_at"]["from"], Value::Null);
    let again = call(
        &server,
        &admin_key,
        Method::POST,
        &format!("/v1/tenants/acme/api-keys/{new_id}/revoke"),
        None,
        "req-key-revoke-again",
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(entries(&db).await.len(), before + 1);

    // A token: issued in the tenant's chain by the key, never the token.
    let issued = call(
        &server,
        &admin_key,
        Method::POST,
        "/v1/tokens",
        Some(json!({"scopes": ["keys:read"], "ttl_seconds": 600})),
        "req-token",
    )
    .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{issued:?}");
    let token = issued.body["token"].as_str().unwrap().to_owned();
    one_new_entry(&db, before + 1).await;
    let entry = entry_of(&db, "req-token").await;
    assert_eq!(
        (entry.chain.as_str(), entry.action.as_str()),
        ("acme", "token.issued")
    );
    assert_eq!(entry.targets, json!([target("api_key", &admin_id)]));
    assert_eq!(
        (entry.actor_type.as_str(), entry.actor_id.as_str()),
        ("api_key", admin_id.as_str())
    );
    assert_eq!(entry.metadata["scopes"], json!(["keys:read"]));
    // A token cannot make tokens: refused, and nothing recorded.
    let before = entries(&db).await.len();
    let refused = call(
        &server,
        &token,
        Method::POST,
        "/v1/tokens",
        Some(json!({})),
        "req-token-2",
    )
    .await;
    refused.assert_problem(403, "api_key_required");
    assert_eq!(entries(&db).await.len(), before);

    // Verifying keys and reading them change nothing and record nothing.
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/keys/verify".to_owned(),
            Some(json!({"key": svc_key})),
        ),
        (Method::GET, "/v1/tenants/acme/api-keys".to_owned(), None),
        (
            Method::GET,
            format!("/v1/tenants/acme/api-keys/{svc_id}"),
            None,
        ),
    ] {
        let reply = call(&server, &admin_key, method, &path, body, "req-read").await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    assert_eq!(entries(&db).await.len(), before);

    // The events the tenant has always seen are still there, once each.
    assert_eq!(
        event_types(&server, "acme").await,
        [
            "created",
            "key_created",
            "key_created",
            "key_updated",
            "key_rotated",
            "key_revoked"
        ]
    );
    assert_no_secrets(
        &db,
        &[
            &admin_key,
            &svc_key,
            &new_key,
            &foreign_key,
            &token,
            ROOT_KEY,
        ],
    )
    .await;
}

async fn operator_changes_are_audited(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;

    let before = entries(&db).await.len();
    let created = call(
        &server,
        ROOT_KEY,
        Method::POST,
        "/v1/operator-keys",
        Some(json!({"name": "ops"})),
        "req-opk-create",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let op_key = created.body["key"].as_str().unwrap().to_owned();
    let op_id = created.body["id"].as_str().unwrap().to_owned();
    one_new_entry(&db, before).await;
    let entry = entry_of(&db, "req-opk-create").await;
    assert_eq!(
        (entry.chain.as_str(), entry.action.as_str()),
        ("", "operator_key.created")
    );
    assert_eq!(entry.targets, json!([target("operator_key", &op_id)]));
    assert_eq!(
        (entry.actor_type.as_str(), entry.actor_id.as_str()),
        ("operator", "root")
    );
    assert_eq!(entry.changes["after"]["name"], "ops");

    // A signing-key rotation by the operator key: the key is the actor.
    let before = entries(&db).await.len();
    let rotated = call(
        &server,
        &op_key,
        Method::POST,
        "/v1/operator/signing-keys/rotate",
        None,
        "req-signing-rotate",
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    let kid = rotated.body["kid"].as_str().unwrap().to_owned();
    one_new_entry(&db, before).await;
    let entry = entry_of(&db, "req-signing-rotate").await;
    assert_eq!(
        (entry.chain.as_str(), entry.action.as_str()),
        ("", "signing_key.rotated")
    );
    assert_eq!(entry.targets, json!([target("signing_key", &kid)]));
    assert_eq!(
        (entry.actor_type.as_str(), entry.actor_id.as_str()),
        ("operator", op_id.as_str())
    );

    // The command does the same, as the system.
    let before = entries(&db).await.len();
    let (code, out, err) = db.run_command(&["signing-keys", "rotate"], &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let all = entries(&db).await;
    assert_eq!(all.len(), before + 1, "{all:#?}");
    let entry = all
        .iter()
        .filter(|e| e.action == "signing_key.rotated")
        .find(|e| e.request["id"] != "req-signing-rotate")
        .unwrap();
    assert_eq!(entry.chain, "");
    assert_eq!(
        (entry.actor_type.as_str(), entry.actor_id.as_str()),
        ("system", "cli")
    );

    // Revoked once, by the root key; again, nothing is recorded.
    let before = entries(&db).await.len();
    let revoked = call(
        &server,
        ROOT_KEY,
        Method::POST,
        &format!("/v1/operator-keys/{op_id}/revoke"),
        None,
        "req-opk-revoke",
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
    one_new_entry(&db, before).await;
    let entry = entry_of(&db, "req-opk-revoke").await;
    assert_eq!(
        (entry.chain.as_str(), entry.action.as_str()),
        ("", "operator_key.revoked")
    );
    assert_eq!(entry.targets, json!([target("operator_key", &op_id)]));
    let again = call(
        &server,
        ROOT_KEY,
        Method::POST,
        &format!("/v1/operator-keys/{op_id}/revoke"),
        None,
        "req-opk-revoke-again",
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    let unknown = call(
        &server,
        ROOT_KEY,
        Method::POST,
        "/v1/operator-keys/opk_nope/revoke",
        None,
        "req-opk-revoke-unknown",
    )
    .await;
    unknown.assert_problem(404, "key_not_found");
    assert_eq!(entries(&db).await.len(), before + 1);
    assert_no_secrets(&db, &[&op_key, ROOT_KEY]).await;
}

async fn failed_changes_leave_no_entry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let created = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "svc", "scopes": ["keys:read"]}),
        )
        .await;
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    let events = event_types(&server, "acme").await;
    let before = entries(&db).await.len();

    // A rotation that fails after its first write (the old key's new
    // expiry), when the new key cannot be stored: nothing of it remains.
    match backend {
        Backend::Sqlite => {
            db.exec(
                "CREATE TRIGGER no_successors BEFORE INSERT ON api_keys \
                 WHEN NEW.rotated_from IS NOT NULL BEGIN SELECT RAISE(ABORT, 'no successors'); END",
            )
            .await;
        }
        Backend::Postgres => {
            db.exec(
                "CREATE FUNCTION no_successors() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'no successors'; END $$",
            )
            .await;
            db.exec(
                "CREATE TRIGGER no_successors BEFORE INSERT ON api_keys FOR EACH ROW \
                 WHEN (NEW.rotated_from IS NOT NULL) EXECUTE FUNCTION no_successors()",
            )
            .await;
        }
    }
    server.expect_warning("no successors");
    server.expect_warning("Status code: 500");
    let failed = server
        .post(
            &format!("/v1/tenants/acme/api-keys/{key_id}/rotate"),
            json!({"overlap_seconds": 60}),
        )
        .await;
    assert!(failed.status.is_server_error(), "{failed:?}");
    assert_eq!(entries(&db).await.len(), before);
    assert_eq!(event_types(&server, "acme").await, events);
    let key = server
        .get(&format!("/v1/tenants/acme/api-keys/{key_id}"))
        .await;
    assert_eq!(key.body["expires_at"], Value::Null, "{key:?}");

    // Refusals (409, 404, 403, 422) record nothing either.
    db.exec(match backend {
        Backend::Sqlite => "DROP TRIGGER no_successors",
        Backend::Postgres => "DROP TRIGGER no_successors ON api_keys",
    })
    .await;
    let ok = server
        .post(
            &format!("/v1/tenants/acme/api-keys/{key_id}/rotate"),
            json!({"overlap_seconds": 60}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{ok:?}");
    let before = entries(&db).await.len();
    server
        .post(
            &format!("/v1/tenants/acme/api-keys/{key_id}/rotate"),
            json!({}),
        )
        .await
        .assert_problem(409, "key_already_rotated");
    server
        .post("/v1/tenants/acme/api-keys/key_nope/revoke", json!({}))
        .await
        .assert_problem(404, "key_not_found");
    server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "x", "scopes": ["no:such"]}),
        )
        .await
        .assert_invalid("scopes[0]");
    let weak = ok.body["key"].as_str().unwrap();
    let refused = server
        .call_as(
            Some(weak),
            Method::POST,
            "/v1/tenants/acme/api-keys",
            Some(json!({"name": "x", "scopes": ["keys:write"]})),
        )
        .await;
    refused.assert_problem(403, "insufficient_scope");
    assert_eq!(entries(&db).await.len(), before);
}

/// Concurrent rotations of one key, and concurrent revocations of one
/// operator key: one succeeds and is recorded, once.
async fn concurrent_changes_record_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let created = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "svc", "scopes": ["keys:read"]}),
        )
        .await;
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    let op = server
        .post("/v1/operator-keys", json!({"name": "ops"}))
        .await;
    let op_id = op.body["id"].as_str().unwrap().to_owned();
    let before = entries(&db).await.len();

    let rotate = format!("/v1/tenants/acme/api-keys/{key_id}/rotate");
    let revoke = format!("/v1/operator-keys/{op_id}/revoke");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (path, body) = if i % 2 == 0 {
            (&rotate, json!({"overlap_seconds": 60}))
        } else {
            (&revoke, json!({}))
        };
        let request = server
            .client
            .post(server.url(path))
            .bearer_auth(ROOT_KEY)
            .json(&body);
        let is_rotation = i % 2 == 0;
        set.spawn(async move {
            (
                is_rotation,
                common::Reply::from(request.send().await.unwrap()).await,
            )
        });
    }
    let (rotations, revocations): (Vec<_>, Vec<_>) =
        set.join_all().await.into_iter().partition(|(r, _)| *r);
    let rotations: Vec<common::Reply> = rotations.into_iter().map(|(_, r)| r).collect();
    let revocations: Vec<common::Reply> = revocations.into_iter().map(|(_, r)| r).collect();
    let created: Vec<_> = rotations
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{rotations:#?}");
    for reply in rotations.iter().filter(|r| r.status != StatusCode::CREATED) {
        reply.assert_problem(409, "key_already_rotated");
    }
    assert!(
        revocations.iter().all(|r| r.status == StatusCode::OK),
        "{revocations:#?}"
    );

    let all = entries(&db).await;
    assert_eq!(all.len(), before + 2, "{all:#?}");
    let count = |action: &str| all.iter().filter(|e| e.action == action).count();
    assert_eq!(count("api_key.rotated"), 1);
    assert_eq!(count("operator_key.revoked"), 1);
    assert_eq!(
        event_types(&server, "acme").await,
        ["created", "key_created", "key_rotated"]
    );
}
