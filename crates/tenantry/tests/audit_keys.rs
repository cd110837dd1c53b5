//! The audit log of keys, operator keys, tokens and signing keys: each
//! successful change is exactly one entry (action, targets, actor, request
//! id) in the right chain; a refused or failed change is none, and no
//! event; no entry holds a key, a key's hash or a token. Read by raw SQL
//! (the audit read API is built elsewhere). On both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

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
     FROM audit_entries WHERE action <> 'access.denied' ORDER BY tenant_id, sequence";

/// Every entry of every chain but refusals (`access.denied`, recorded
/// centrally: see audit_change.rs); the operator chain is `""`. Bypassing
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

/// Sends requests and checks what they recorded.
struct Probe<'a> {
    db: &'a TestDb,
    server: &'a TestServer,
}

/// What an entry must say: its chain (`""`: the operator's), action,
/// actor (type, id) and targets (`Null`: checked by the caller, when they
/// name what the reply made).
struct Expected<'a> {
    chain: &'a str,
    action: &'a str,
    actor: (&'a str, &'a str),
    targets: Value,
}

static REQUESTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Probe<'_> {
    /// Sends a request with `key` and a fresh `X-Request-Id`, and asserts
    /// its status.
    async fn send(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> (common::Reply, String) {
        let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = format!("req-audit-keys-{n}");
        let mut req = self
            .server
            .client
            .request(method, self.server.url(path))
            .bearer_auth(key)
            .header("x-request-id", &request_id);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply = common::Reply::from(req.send().await.unwrap()).await;
        assert_eq!(reply.status, status, "{path}: {reply:?}");
        (reply, request_id)
    }

    /// [`Self::send`], asserting that exactly one entry was added, the one
    /// with the request's id, and that it says what `expected` says.
    async fn audited(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
        expected: Expected<'_>,
    ) -> (common::Reply, Entry) {
        let before = entries(self.db).await.len();
        let (reply, request_id) = self.send(key, method, path, body, status).await;
        let all = entries(self.db).await;
        assert_eq!(all.len(), before + 1, "{path}: not one new entry: {all:#?}");
        let entry = entry_of(self.db, &request_id).await;
        assert_eq!(
            (entry.chain.as_str(), entry.action.as_str()),
            (expected.chain, expected.action),
            "{entry:#?}"
        );
        assert_eq!(
            (entry.actor_type.as_str(), entry.actor_id.as_str()),
            expected.actor,
            "{entry:#?}"
        );
        if !expected.targets.is_null() {
            assert_eq!(entry.targets, expected.targets, "{entry:#?}");
        }
        (reply, entry)
    }

    /// [`Self::send`], asserting that nothing was recorded.
    async fn unaudited(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> common::Reply {
        let before = entries(self.db).await.len();
        let (reply, _) = self.send(key, method, path, body, status).await;
        assert_eq!(entries(self.db).await.len(), before, "{path} recorded");
        reply
    }
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

fn targets(kind: &str, ids: &[&str]) -> Value {
    ids.iter()
        .map(|id| json!({ "type": kind, "id": id }))
        .collect()
}

fn text(reply: &common::Reply, field: &str) -> String {
    reply.body[field].as_str().unwrap().to_owned()
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
    let probe = Probe {
        db: &db,
        server: &server,
    };
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let keys = "/v1/tenants/acme/api-keys";

    // Created by the operator.
    let (created, entry) = probe
        .audited(
            ROOT_KEY,
            Method::POST,
            keys,
            Some(json!({"name": "admin", "scopes": ["keys:write", "keys:read"], "metadata": {"team": "core"}})),
            StatusCode::CREATED,
            Expected {
                chain: "acme",
                action: "api_key.created",
                actor: ("operator", "root"),
                targets: Value::Null,
            },
        )
        .await;
    let (admin_key, admin_id) = (text(&created, "key"), text(&created, "id"));
    assert_eq!(entry.targets, targets("api_key", &[&admin_id]));
    assert_eq!(entry.changes["after"]["name"], "admin");
    assert_eq!(entry.changes["after"]["metadata"], json!({"team": "core"}));
    let by_admin = ("api_key", admin_id.as_str());

    // Created by a tenant key: the key is the actor.
    let (made, _) = probe
        .audited(
            &admin_key,
            Method::POST,
            keys,
            Some(json!({"name": "svc", "scopes": ["keys:read"]})),
            StatusCode::CREATED,
            Expected {
                chain: "acme",
                action: "api_key.created",
                actor: by_admin,
                targets: Value::Null,
            },
        )
        .await;
    let (svc_key, svc_id) = (text(&made, "key"), text(&made, "id"));
    let svc = format!("{keys}/{svc_id}");

    // Updated: before and after of what changed, nothing else; a patch
    // that changes nothing records nothing.
    let (_, entry) = probe
        .audited(
            &admin_key,
            Method::PATCH,
            &svc,
            Some(json!({"name": "svc-2"})),
            StatusCode::OK,
            Expected {
                chain: "acme",
                action: "api_key.updated",
                actor: by_admin,
                targets: targets("api_key", &[&svc_id]),
            },
        )
        .await;
    assert_eq!(
        entry.changes,
        json!({"name": {"from": "svc", "to": "svc-2"}})
    );
    let same = Some(json!({"name": "svc-2"}));
    probe
        .unaudited(&admin_key, Method::PATCH, &svc, same, StatusCode::OK)
        .await;

    // Another tenant's key: 404, and nothing in any chain.
    let foreign = server
        .post(
            "/v1/tenants/globex/api-keys",
            json!({"name": "g", "scopes": ["keys:write"]}),
        )
        .await;
    let foreign_key = text(&foreign, "key");
    for (method, path) in [
        (Method::POST, format!("{svc}/revoke")),
        (Method::POST, format!("{svc}/rotate")),
        (Method::PATCH, svc.clone()),
        (
            Method::POST,
            format!("/v1/tenants/globex/api-keys/{svc_id}/revoke"),
        ),
    ] {
        let body = Some(json!({}));
        probe
            .unaudited(&foreign_key, method, &path, body, StatusCode::NOT_FOUND)
            .await;
    }

    // Rotated: one entry, targeting the old key and the new one.
    let (rotated, entry) = probe
        .audited(
            &admin_key,
            Method::POST,
            &format!("{svc}/rotate"),
            Some(json!({"overlap_seconds": 60})),
            StatusCode::CREATED,
            Expected {
                chain: "acme",
                action: "api_key.rotated",
                actor: by_admin,
                targets: Value::Null,
            },
        )
        .await;
    let (new_key, new_id) = (text(&rotated, "key"), text(&rotated, "id"));
    assert_eq!(entry.targets, targets("api_key", &[&svc_id, &new_id]));
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
    let revoke = format!("{keys}/{new_id}/revoke");
    let (_, entry) = probe
        .audited(
            &admin_key,
            Method::POST,
            &revoke,
            None,
            StatusCode::OK,
            Expected {
                chain: "acme",
                action: "api_key.revoked",
                actor: by_admin,
                targets: targets("api_key", &[&new_id]),
            },
        )
        .await;
    assert_eq!(entry.changes["revoked_at"]["from"], Value::Null);
    probe
        .unaudited(&admin_key, Method::POST, &revoke, None, StatusCode::OK)
        .await;

    // A token: issued in the tenant's chain by the key, never the token.
    let (issued, entry) = probe
        .audited(
            &admin_key,
            Method::POST,
            "/v1/tokens",
            Some(json!({"scopes": ["keys:read"], "ttl_seconds": 600})),
            StatusCode::CREATED,
            Expected {
                chain: "acme",
                action: "token.issued",
                actor: by_admin,
                targets: targets("api_key", &[&admin_id]),
            },
        )
        .await;
    assert_eq!(entry.metadata["scopes"], json!(["keys:read"]));
    let token = text(&issued, "token");
    // A token cannot make tokens: refused, and nothing recorded.
    probe
        .unaudited(
            &token,
            Method::POST,
            "/v1/tokens",
            Some(json!({})),
            StatusCode::FORBIDDEN,
        )
        .await
        .assert_problem(403, "api_key_required");

    // Verifying keys and reading them change nothing and record nothing.
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/keys/verify".to_owned(),
            Some(json!({"key": svc_key})),
        ),
        (Method::GET, keys.to_owned(), None),
        (Method::GET, svc.clone(), None),
    ] {
        probe
            .unaudited(&admin_key, method, &path, body, StatusCode::OK)
            .await;
    }

    // The events the tenant has always seen are still there, once each.
    assert_eq!(
        event_types(&server, "acme").await,
        [
            "tenant.created",
            "api_key.created",
            "api_key.created",
            "api_key.updated",
            "api_key.rotated",
            "api_key.revoked"
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
    let probe = Probe {
        db: &db,
        server: &server,
    };

    let (created, entry) = probe
        .audited(
            ROOT_KEY,
            Method::POST,
            "/v1/operator-keys",
            Some(json!({"name": "ops"})),
            StatusCode::CREATED,
            Expected {
                chain: "",
                action: "operator_key.created",
                actor: ("operator", "root"),
                targets: Value::Null,
            },
        )
        .await;
    let (op_key, op_id) = (text(&created, "key"), text(&created, "id"));
    assert_eq!(entry.targets, targets("operator_key", &[&op_id]));
    assert_eq!(entry.changes["after"]["name"], "ops");

    // A signing-key rotation by the operator key: the key is the actor.
    let (rotated, entry) = probe
        .audited(
            &op_key,
            Method::POST,
            "/v1/operator/signing-keys/rotate",
            None,
            StatusCode::OK,
            Expected {
                chain: "",
                action: "signing_key.rotated",
                actor: ("operator", &op_id),
                targets: Value::Null,
            },
        )
        .await;
    assert_eq!(
        entry.targets,
        targets("signing_key", &[&text(&rotated, "kid")])
    );

    // The command does the same, as the system.
    let before = entries(&db).await;
    let (code, out, err) = db.run_command(&["signing-keys", "rotate"], &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let all = entries(&db).await;
    assert_eq!(all.len(), before.len() + 1, "{all:#?}");
    let entry = all
        .iter()
        .find(|e| !before.iter().any(|b| b.columns == e.columns))
        .unwrap();
    assert_eq!(
        (entry.chain.as_str(), entry.action.as_str()),
        ("", "signing_key.rotated")
    );
    assert_eq!(
        (entry.actor_type.as_str(), entry.actor_id.as_str()),
        ("system", "cli")
    );

    // Revoked once, by the root key; again, or an unknown key, nothing is
    // recorded.
    let revoke = format!("/v1/operator-keys/{op_id}/revoke");
    probe
        .audited(
            ROOT_KEY,
            Method::POST,
            &revoke,
            None,
            StatusCode::OK,
            Expected {
                chain: "",
                action: "operator_key.revoked",
                actor: ("operator", "root"),
                targets: targets("operator_key", &[&op_id]),
            },
        )
        .await;
    probe
        .unaudited(ROOT_KEY, Method::POST, &revoke, None, StatusCode::OK)
        .await;
    let unknown = "/v1/operator-keys/opk_nope/revoke";
    probe
        .unaudited(ROOT_KEY, Method::POST, unknown, None, StatusCode::NOT_FOUND)
        .await
        .assert_problem(404, "key_not_found");
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
        ["tenant.created", "api_key.created", "api_key.rotated"]
    );
}
