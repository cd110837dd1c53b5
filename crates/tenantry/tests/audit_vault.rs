//! The vault on the change path, on both backends: every credential,
//! settings and key-rotation change (and every reveal) records exactly one
//! audit entry, read here by raw SQL; a change that fails midway records
//! nothing; the access log is read from the audit log; no secret the test
//! used appears anywhere in `audit_entries`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    every_vault_change_records_one_entry,
    commands_record_their_rotations,
    failed_vault_changes_record_nothing,
    access_log_is_read_from_the_audit_log,
);

const ACCESS_TOKEN: &str = "EAAGm0PX4ZCpsBAKZCZBaudit-secret-access-token-7788";
const APP_SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const NEW_VERIFY: &str = "a-brand-new-verify-token-5150";
const SMTP_PASSWORD: &str = "settings-smtp-password-31337";
const NESTED_SECRET: &str = "nested-settings-secret-2718";

fn whatsapp() -> Value {
    json!({
        "kind": "whatsapp",
        "name": "Main number",
        "data": {
            "business_account_id": "102290129340398",
            "phone_number_id": "106540352242922",
            "access_token": ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": "verify-me-audit",
        }
    })
}

/// One row of `audit_entries`, as stored.
#[derive(Debug, Clone)]
struct Row {
    chain: String,
    sequence: i64,
    id: String,
    actor_type: String,
    actor_id: String,
    action: String,
    targets: Value,
    outcome: String,
    request: Value,
    changes: Value,
    metadata: Value,
    /// Every column as text (but the sequence and time), for the secret scan.
    text: String,
}

type RawRow = (
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
    Option<String>,
);

const COLUMNS: &str = "tenant_id, sequence, id, actor_type, actor_id, action, targets, outcome, \
     request, changes, metadata, prev_hash, hash, actor_name";

/// Every entry of every chain, by chain and sequence, bypassing Tenantry.
async fn audit_rows(db: &TestDb) -> Vec<Row> {
    let sql = format!("SELECT {COLUMNS} FROM audit_entries ORDER BY tenant_id, sequence");
    let raw: Vec<RawRow> = match db.backend {
        Backend::Sqlite => {
            let pool = db.sqlite_reader().await;
            let rows = sqlx::query_as(&sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = db.pg_superuser().await;
            let rows = sqlx::query_as(&sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    };
    raw.into_iter()
        .map(|r| {
            let text = [
                &r.0, &r.2, &r.3, &r.4, &r.5, &r.6, &r.7, &r.8, &r.9, &r.10, &r.11, &r.12,
            ]
            .iter()
            .map(|s| s.as_str())
            .chain(r.13.as_deref())
            .collect::<Vec<_>>()
            .join("\n");
            let json = |s: &str| serde_json::from_str::<Value>(s).unwrap();
            Row {
                chain: r.0.clone(),
                sequence: r.1,
                id: r.2.clone(),
                actor_type: r.3.clone(),
                actor_id: r.4.clone(),
                action: r.5.clone(),
                targets: json(&r.6),
                outcome: r.7.clone(),
                request: json(&r.8),
                changes: json(&r.9),
                metadata: json(&r.10),
                text,
            }
        })
        .collect()
}

async fn chain(db: &TestDb, chain: &str) -> Vec<Row> {
    audit_rows(db)
        .await
        .into_iter()
        .filter(|r| r.chain == chain)
        .collect()
}

/// A call with a request id, as `key`.
async fn call(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    request_id: &str,
) -> (StatusCode, Value) {
    let mut req = server
        .client
        .request(method, server.url(path))
        .bearer_auth(key)
        .header("x-request-id", request_id)
        .header("user-agent", "audit-vault-test/1.0");
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The single entry added to `chain_key` since it held `before` entries
/// (failing if there is none or several).
async fn one_new_entry(db: &TestDb, chain_key: &str, before: usize) -> Row {
    let rows = chain(db, chain_key).await;
    assert_eq!(
        rows.len(),
        before + 1,
        "exactly one new entry in chain {chain_key:?}: {:#?}",
        &rows[before.min(rows.len())..]
    );
    rows.last().unwrap().clone()
}

async fn tenant_key(server: &TestServer, tenant: &str, scopes: &[&str]) -> (String, String) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "audit", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    (
        reply.body["key"].as_str().unwrap().to_owned(),
        reply.body["id"].as_str().unwrap().to_owned(),
    )
}

/// Fails if any secret appears in any column of any audit entry.
async fn assert_no_secret(db: &TestDb, secrets: &[&str]) {
    let rows = audit_rows(db).await;
    assert!(!rows.is_empty());
    for row in rows {
        for secret in secrets {
            assert!(
                !row.text.contains(secret),
                "a secret in audit entry {} of {:?}: {}",
                row.sequence,
                row.chain,
                row.text
            );
        }
    }
}

/// Makes a call that must answer `status` and record exactly one entry in
/// `chain_key`, carrying the call's request; returns the body and entry.
async fn recorded(
    db: &TestDb,
    server: &TestServer,
    chain_key: &str,
    (key, method, path, body): (&str, Method, &str, Option<Value>),
    request_id: &str,
    status: StatusCode,
) -> (Value, Row) {
    let before = chain(db, chain_key).await.len();
    let (got, reply) = call(server, key, method, path, body, request_id).await;
    assert_eq!(got, status, "{path}: {reply}");
    let row = one_new_entry(db, chain_key, before).await;
    assert_eq!(row.outcome, "success");
    assert_eq!(row.request["id"], request_id, "{row:#?}");
    assert_eq!(row.request["user_agent"], "audit-vault-test/1.0");
    assert_eq!(row.request["ip"], "127.0.0.1");
    (reply, row)
}

fn assert_entry(row: &Row, action: &str, targets: Value, actor: (&str, &str)) {
    assert_eq!(row.action, action, "{row:#?}");
    assert_eq!(row.targets, targets, "{row:#?}");
    assert_eq!(
        (row.actor_type.as_str(), row.actor_id.as_str()),
        actor,
        "{row:#?}"
    );
}

async fn every_vault_change_records_one_entry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let (admin, admin_id) = tenant_key(&server, "acme", &["credentials:write"]).await;
    let (revealer, revealer_id) = tenant_key(&server, "acme", &["credentials:reveal"]).await;
    let (db, server) = (&db, &server);
    let as_admin = ("api_key", admin_id.as_str());
    let as_revealer = ("api_key", revealer_id.as_str());
    let as_root = ("operator", "root");
    let reveal_body = || Some(json!({}));

    // credential.created, by a tenant key.
    let (cred, row) = recorded(
        db,
        server,
        "acme",
        (
            &admin,
            Method::POST,
            "/v1/tenants/acme/credentials",
            Some(whatsapp()),
        ),
        "req-create",
        StatusCode::CREATED,
    )
    .await;
    let id = cred["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/tenants/acme/credentials/{id}");
    let target = json!([{"type": "credential", "id": id}]);
    assert_entry(&row, "credential.created", target.clone(), as_admin);
    let after = &row.changes["after"];
    assert_eq!(after["name"], "Main number");
    assert_eq!(after["kind"], "whatsapp");
    assert_eq!(after["data"]["phone_number_id"], "106540352242922");
    assert_eq!(after["data"]["access_token"], "[sealed]");
    assert_eq!(after["data"]["app_secret"], "[sealed]");

    // credential.updated, by the operator: before/after, secrets sealed.
    let patch = json!({"name": "Renamed", "data": {"verify_token": NEW_VERIFY}});
    let (_, row) = recorded(
        db,
        server,
        "acme",
        (ROOT_KEY, Method::PATCH, &path, Some(patch)),
        "req-update",
        StatusCode::OK,
    )
    .await;
    assert_entry(&row, "credential.updated", target.clone(), as_root);
    assert_eq!(
        row.changes,
        json!({
            "name": {"from": "Main number", "to": "Renamed"},
            "data.verify_token": {"from": "[sealed]", "to": "[sealed]"},
        })
    );

    // A patch that changes nothing records nothing.
    let n = chain(db, "acme").await.len();
    let same = Some(json!({"name": "Renamed"}));
    let (status, _) = call(server, ROOT_KEY, Method::PATCH, &path, same, "req-noop").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chain(db, "acme").await.len(), n, "a no-op is no change");

    // credential.revealed, by a key with the reveal scope.
    let (plain, row) = recorded(
        db,
        server,
        "acme",
        (
            &revealer,
            Method::POST,
            &format!("{path}/reveal"),
            reveal_body(),
        ),
        "req-reveal",
        StatusCode::OK,
    )
    .await;
    assert_eq!(plain["data"]["access_token"], ACCESS_TOKEN);
    assert_entry(&row, "credential.revealed", target.clone(), as_revealer);
    assert_eq!(row.changes, json!({}));

    // settings.updated (twice: the second shows before and after).
    let settings = json!([{"type": "settings", "id": "smtp"}]);
    for i in 0..2 {
        let body = json!({"host": format!("smtp{i}.example.com"), "password": SMTP_PASSWORD, "nested": {"secret": NESTED_SECRET}});
        let (_, row) = recorded(
            db,
            server,
            "acme",
            (
                &admin,
                Method::PUT,
                "/v1/tenants/acme/settings/smtp",
                Some(body),
            ),
            &format!("req-settings-{i}"),
            StatusCode::OK,
        )
        .await;
        assert_entry(&row, "settings.updated", settings.clone(), as_admin);
        let to = json!({"host": format!("smtp{i}.example.com"), "password": "[sealed]", "nested": {"secret": "[sealed]"}});
        assert_eq!(row.changes["data"]["to"], to);
        if i == 0 {
            assert!(row.changes["data"]["from"].is_null());
        } else {
            assert_eq!(row.changes["data"]["from"]["host"], "smtp0.example.com");
        }
    }

    // settings.revealed.
    let (body, row) = recorded(
        db,
        server,
        "acme",
        (
            &revealer,
            Method::POST,
            "/v1/tenants/acme/settings/smtp/reveal",
            reveal_body(),
        ),
        "req-settings-reveal",
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["data"]["password"], SMTP_PASSWORD);
    assert_entry(&row, "settings.revealed", settings, as_revealer);

    // data_key.rotated, in the tenant's chain, with its event.
    let (body, row) = recorded(
        db,
        server,
        "acme",
        (
            ROOT_KEY,
            Method::POST,
            "/v1/operator/tenants/acme/data-key/rotate",
            reveal_body(),
        ),
        "req-dek",
        StatusCode::OK,
    )
    .await;
    let dek = body["data_key_id"].as_str().unwrap();
    let targets = json!([{"type": "tenant", "id": "acme"}, {"type": "data_key", "id": dek}]);
    assert_entry(&row, "data_key.rotated", targets, as_root);
    assert_eq!(row.changes["active_data_key"]["to"], dek);
    let from = row.changes["active_data_key"]["from"].as_str().unwrap();
    assert!(from.starts_with("dek_") && from != dek, "{row:#?}");
    assert_eq!(
        row.metadata["reencrypted"],
        json!({"credentials": 1, "settings": 1})
    );

    // keyring.rotated, in the operator's chain.
    let (body, row) = recorded(
        db,
        server,
        "",
        (
            ROOT_KEY,
            Method::POST,
            "/v1/operator/keyring/rotate",
            reveal_body(),
        ),
        "req-kek",
        StatusCode::ACCEPTED,
    )
    .await;
    let kek = body["active_kek"].as_str().unwrap();
    assert_entry(
        &row,
        "keyring.rotated",
        json!([{"type": "kek", "id": kek}]),
        as_root,
    );
    assert_eq!(row.changes["active_kek"]["to"], kek);
    assert!(row.changes["active_kek"]["from"].is_string());
    assert_ne!(row.changes["active_kek"]["from"], kek);

    // credential.deleted, the last state shown with its secrets sealed.
    let (_, row) = recorded(
        db,
        server,
        "acme",
        (&admin, Method::DELETE, &path, None),
        "req-delete",
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_entry(&row, "credential.deleted", target, as_admin);
    assert_eq!(row.changes["before"]["name"], "Renamed");
    assert_eq!(row.changes["before"]["data"]["verify_token"], "[sealed]");

    // The event history is as it always was.
    let events = server.get("/v1/tenants/acme/events").await.body;
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in [
        "credential.created",
        "credential.updated",
        "settings.updated",
        "keyring.rotated",
        "credential.deleted",
    ] {
        assert!(types.contains(&kind), "{kind} in {types:?}");
    }

    assert_no_secret(
        db,
        &[
            ACCESS_TOKEN,
            APP_SECRET,
            NEW_VERIFY,
            "verify-me-audit",
            SMTP_PASSWORD,
            NESTED_SECRET,
            ROOT_KEY,
            &admin,
            &revealer,
        ],
    )
    .await;
}

async fn commands_record_their_rotations(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let reply = server
        .post("/v1/tenants/acme/credentials", whatsapp())
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let n = chain(&db, "acme").await.len();
    let ops = chain(&db, "").await.len();
    let (code, out, err) = db
        .run_command(
            &["keyring", "rotate-tenant", "acme"],
            &[("TENANTRY_ROOT_KEY", ROOT_KEY)],
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let row = one_new_entry(&db, "acme", n).await;
    assert_eq!(row.action, "data_key.rotated");
    assert_eq!(
        (row.actor_type.as_str(), row.actor_id.as_str()),
        ("system", "cli")
    );
    assert!(row.request["id"].is_null());
    let (code, out, err) = db
        .run_command(&["keyring", "rotate"], &[("TENANTRY_ROOT_KEY", ROOT_KEY)])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let row = one_new_entry(&db, "", ops).await;
    assert_eq!(row.action, "keyring.rotated");
    assert_eq!(
        (row.actor_type.as_str(), row.actor_id.as_str()),
        ("system", "cli")
    );
    // The rewrap that follows is bookkeeping: no entry of its own.
    assert_eq!(chain(&db, "acme").await.len(), n + 1);
    // A tenant that does not exist: refused, nothing recorded.
    let (code, _, _) = db
        .run_command(
            &["keyring", "rotate-tenant", "nobody"],
            &[("TENANTRY_ROOT_KEY", ROOT_KEY)],
        )
        .await;
    assert_ne!(code, 0);
    assert!(chain(&db, "nobody").await.is_empty());
    assert_no_secret(&db, &[ACCESS_TOKEN, APP_SECRET, ROOT_KEY]).await;
}

/// An operator's `POST` with an empty body.
async fn root_post(server: &TestServer, path: &str, request_id: &str) -> (StatusCode, Value) {
    call(
        server,
        ROOT_KEY,
        Method::POST,
        path,
        Some(json!({})),
        request_id,
    )
    .await
}

/// Successful entries (denied attempts are recorded elsewhere, centrally).
async fn successes(db: &TestDb, chain_key: &str) -> usize {
    chain(db, chain_key)
        .await
        .iter()
        .filter(|r| r.outcome == "success")
        .count()
}

async fn failed_vault_changes_record_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.expect_warning("a sealed secret could not be opened");
    server.expect_warning("Status code: 500");
    server.create_tenant("acme").await;
    let events = || async { db.count_rows("tenant_events", "acme").await };

    // A settings document too deep once sealed: refused after the tenant's
    // first data key was made in the same transaction, which rolls back.
    let mut deep = json!({"password": "deep-secret-value-0001"});
    for _ in 0..31 {
        deep = json!({ "a": deep });
    }
    let (n, e) = (successes(&db, "acme").await, events().await);
    let (status, body) = call(
        &server,
        ROOT_KEY,
        Method::PUT,
        "/v1/tenants/acme/settings/deep",
        Some(deep),
        "req-deep",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(successes(&db, "acme").await, n);
    assert_eq!(events().await, e);
    assert_eq!(
        db.count_rows("tenant_data_keys", "acme").await,
        0,
        "the data key made midway rolled back"
    );

    let a = server
        .post("/v1/tenants/acme/credentials", whatsapp())
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = server
        .post("/v1/tenants/acme/credentials", whatsapp())
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (n, e) = (successes(&db, "acme").await, events().await);

    // An update whose data is checked against the stored credential, inside
    // the change: 422, nothing recorded.
    let (status, _) = call(
        &server,
        ROOT_KEY,
        Method::PATCH,
        &format!("/v1/tenants/acme/credentials/{a}"),
        Some(json!({"name": "x", "data": {"access_token": null}})),
        "req-bad-patch",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A credential that is not there: 404.
    for (method, path) in [
        (
            Method::DELETE,
            "/v1/tenants/acme/credentials/cred_nope".to_owned(),
        ),
        (
            Method::POST,
            "/v1/tenants/acme/credentials/cred_nope/reveal".to_owned(),
        ),
        (
            Method::POST,
            "/v1/tenants/acme/settings/none/reveal".to_owned(),
        ),
    ] {
        let body = (method == Method::POST).then(|| json!({}));
        let (status, _) = call(&server, ROOT_KEY, method, &path, body, "req-missing").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(successes(&db, "acme").await, n);

    // A ciphertext moved onto another record: the reveal fails after the
    // change was opened, so neither the reveal nor last_revealed_at is
    // recorded; the tenant's data key rotation fails midway (after its new
    // data key was written): nothing of it remains, not even its event.
    db.exec(&format!(
        "UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE id = '{a}') WHERE id = '{b}'"
    ))
    .await;
    let (status, body) = root_post(
        &server,
        &format!("/v1/tenants/acme/credentials/{b}/reveal"),
        "req-tampered",
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["code"], "decryption_failed");
    let cred = server
        .get(&format!("/v1/tenants/acme/credentials/{b}"))
        .await
        .body;
    assert!(cred["last_revealed_at"].is_null());
    let keys = db.count_rows("tenant_data_keys", "acme").await;
    let (status, _) = root_post(
        &server,
        "/v1/operator/tenants/acme/data-key/rotate",
        "req-dek-fails",
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        successes(&db, "acme").await,
        n,
        "no entry for failed changes"
    );
    assert_eq!(events().await, e, "no event for failed changes");
    assert_eq!(db.count_rows("tenant_data_keys", "acme").await, keys);
    // The intact credential still opens with the old key.
    let (status, plain) = root_post(
        &server,
        &format!("/v1/tenants/acme/credentials/{a}/reveal"),
        "req-intact",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plain["data"]["app_secret"], APP_SECRET);
    assert_eq!(successes(&db, "acme").await, n + 1);
    assert_no_secret(&db, &[ACCESS_TOKEN, APP_SECRET, "deep-secret-value-0001"]).await;
}

async fn access_log_is_read_from_the_audit_log(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let create = |tenant: &'static str| {
        let server = &server;
        async move {
            // A WhatsApp number belongs to one tenant: globex gets its own.
            let mut body = whatsapp();
            if tenant != "acme" {
                body["data"]["phone_number_id"] = json!("106540352242923");
                body["data"]["business_account_id"] = json!("102290129340399");
            }
            server
                .post(&format!("/v1/tenants/{tenant}/credentials"), body)
                .await
                .body["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (a, b, g) = (
        create("acme").await,
        create("acme").await,
        create("globex").await,
    );
    let (revealer, revealer_id) =
        tenant_key(&server, "acme", &["credentials:reveal", "credentials:read"]).await;
    for i in 0..3 {
        let (status, _) = call(
            &server,
            if i == 1 { ROOT_KEY } else { &revealer },
            Method::POST,
            &format!("/v1/tenants/acme/credentials/{a}/reveal"),
            Some(json!({})),
            &format!("req-a-{i}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    // Reveals of other credentials and settings are not in a's log.
    server
        .post(
            &format!("/v1/tenants/acme/credentials/{b}/reveal"),
            json!({}),
        )
        .await;
    server
        .post(
            &format!("/v1/tenants/globex/credentials/{g}/reveal"),
            json!({}),
        )
        .await;
    server
        .put_settings("acme", "smtp", json!({"password": SMTP_PASSWORD}))
        .await;
    server
        .post("/v1/tenants/acme/settings/smtp/reveal", json!({}))
        .await;

    let reveals: Vec<Row> = chain(&db, "acme")
        .await
        .into_iter()
        .filter(|r| r.action == "credential.revealed" && r.targets[0]["id"] == a.as_str())
        .collect();
    assert_eq!(reveals.len(), 3);
    let path = format!("/v1/tenants/acme/credentials/{a}/access-log");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=2&cursor={c}"),
            None => format!("{path}?limit=2"),
        };
        let (status, page) = call(&server, &revealer, Method::GET, &url, None, "req-log").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "{seen:#?}");
    for (entry, row) in seen.iter().zip(&reveals) {
        assert_eq!(entry["id"], row.id.as_str(), "the audit entry itself");
        assert_eq!(entry["action"], "reveal");
        assert_eq!(entry["source_ip"], "127.0.0.1");
        assert_eq!(entry["user_agent"], "audit-vault-test/1.0");
    }
    assert_eq!(seen[0]["actor"], format!("key:{revealer_id}"));
    assert_eq!(seen[0]["request_id"], "req-a-0");
    assert_eq!(seen[1]["actor"], "operator:root");
    assert_eq!(seen[2]["request_id"], "req-a-2");
    // b's log holds b's reveal only; a cursor from elsewhere is refused.
    let log_b = server
        .get(&format!("/v1/tenants/acme/credentials/{b}/access-log"))
        .await;
    assert_eq!(log_b.body["data"].as_array().unwrap().len(), 1);
    server
        .get(&format!("{path}?cursor=bm90LWEtY3Vyc29y"))
        .await
        .assert_invalid("cursor");
    // Another tenant's log, through its own key: not found.
    let (status, _) = call(
        &server,
        &revealer,
        Method::GET,
        &format!("/v1/tenants/globex/credentials/{g}/access-log"),
        None,
        "req-cross",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The old access log is gone: nothing is written beside the audit log.
    let tables = db.tenant_tables().await;
    assert!(
        !tables.iter().any(|t| t == "secret_access_log"),
        "{tables:?}"
    );
}
