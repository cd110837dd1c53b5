//! The audit log's tamper evidence, reading, export and retention (issue 9,
//! "The audit log"), on both backends against the real server. Entries are
//! appended through the store's own append (the unit of work that records
//! them for every change lands separately).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use crate::common;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tenantry_core::TenantId;
use tenantry_core::audit::{ActorType, AuditActor, AuditDraft, AuditTarget, Outcome, RequestInfo};
use tenantry_crypto::note::{Note, NoteVerifier};
use tenantry_store::{DatabaseOptions, Store};

const INTERVAL: &str = "300ms";

async fn start(db: &TestDb) -> TestServer {
    TestServer::start_with(
        db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_AUDIT_CHECKPOINT_INTERVAL", INTERVAL),
        ],
    )
    .await
}

async fn store_of(db: &TestDb) -> Store {
    let options = match db.backend {
        Backend::Sqlite => DatabaseOptions::Sqlite {
            path: db.data_dir().join("tenantry.db"),
            max_readers: 2,
            timeout: Duration::from_secs(20),
        },
        Backend::Postgres => DatabaseOptions::Postgres {
            url: db.url.clone().expect("url"),
            max_connections: 4,
            timeout: Duration::from_secs(20),
        },
    };
    let mut store = Store::connect(&options).await.expect("connect");
    store.prepare().await.expect("prepare");
    store
}

fn draft(action: &str, actor: &str, target: (&str, &str), outcome: Outcome) -> AuditDraft {
    AuditDraft {
        actor: AuditActor::new(ActorType::ApiKey, actor, Some("test".into())),
        action: action.into(),
        targets: vec![AuditTarget::new(target.0, target.1)],
        outcome,
        request: RequestInfo {
            id: Some("req-1".into()),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("audit-test".into()),
        },
        changes: json!({"after": {"name": "x"}}),
        metadata: json!({}),
    }
}

/// Appends `n` entries (`action` `thing.changed`) to a tenant's chain.
async fn append_n(store: &Store, tenant: &str, n: usize) {
    for _ in 0..n {
        append(
            store,
            tenant,
            &draft("thing.changed", "key_a", ("thing", "t1"), Outcome::Success),
            chrono::Utc::now(),
        )
        .await;
    }
}

async fn append(store: &Store, tenant: &str, d: &AuditDraft, at: chrono::DateTime<chrono::Utc>) {
    let id = TenantId::parse(tenant).expect("id");
    let mut tx = store.tenant_write(&id).await.expect("tx");
    tx.append_audit(format!("aud_{}", common::random_suffix()), d, at)
        .await
        .expect("append");
    tx.commit().await.expect("commit");
}

/// Polls the checkpoints of `path` until one has `size` (bounded).
async fn wait_checkpoint(server: &TestServer, path: &str, size: u64) -> Value {
    for _ in 0..300 {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        if let Some(cp) = reply.body["data"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["size"] == size))
        {
            return cp.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of size {size} at {path}");
}

/// The chain's size now (creating a tenant or a key, and a refused request,
/// are recorded in its chain too).
async fn size(server: &TestServer, tenant: &str) -> u64 {
    verify(server, tenant).await["size"].as_u64().expect("size")
}

async fn verify(server: &TestServer, tenant: &str) -> Value {
    let reply = server
        .get(&format!("/v1/tenants/{tenant}/audit/verify"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body
}

async fn keys(server: &TestServer) -> Vec<Value> {
    let reply = server
        .call_as(None, Method::GET, "/v1/audit/keys", None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body.as_array().expect("keys").clone()
}

fn verifiers(keys: &[Value]) -> Vec<NoteVerifier> {
    keys.iter()
        .map(|k| NoteVerifier::parse(k["vkey"].as_str().expect("vkey")).expect("vkey parses"))
        .collect()
}

async fn checkpoints_are_published_signed_and_survive_rotation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("idle").await;
    let store = store_of(&db).await;
    append_n(&store, "acme", 3).await;

    // A checkpoint of acme's three entries, and regular ones of the idle
    // chain (size 0) at every interval: at least two distinct slots.
    let cp = wait_checkpoint(&server, "/v1/tenants/acme/audit/checkpoints", 4).await;
    let mut idle = 0;
    for _ in 0..300 {
        let reply = server.get("/v1/tenants/idle/audit/checkpoints").await;
        idle = reply.body["data"].as_array().map(Vec::len).unwrap_or(0);
        if idle >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(idle >= 2, "the idle chain gets checkpoints too");

    // The note verifies with the published key and says what the columns say.
    let published = keys(&server).await;
    assert_eq!(published.len(), 1);
    let first_key = published[0]["key_id"].as_str().expect("id").to_owned();
    assert_eq!(cp["key_id"], first_key.as_str());
    let note = Note::parse(cp["note"].as_str().expect("note")).expect("a signed note");
    assert!(note.verified_by(&verifiers(&published)).is_some());
    let mut lines = note.text.lines();
    assert_eq!(lines.next(), Some("tenantry.audit/tenant/acme"));
    assert_eq!(lines.next(), Some("4"));
    assert!(note.text.contains("\ntime 20"), "{}", note.text);

    // Rotation: operator only; the old key stays listed, new checkpoints use
    // the new key, and old and new checkpoints all verify.
    let (tenant_key, _) = key_with(&server, "acme", &["tenant:admin"]).await;
    server
        .call_as(
            Some(&tenant_key),
            Method::POST,
            "/v1/operator/audit/signing-keys/rotate",
            None,
        )
        .await
        .assert_problem(403, "operator_required");
    let rotated = server
        .post("/v1/operator/audit/signing-keys/rotate", json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    let new_key = rotated.body["key_id"].as_str().expect("key id").to_owned();
    assert_ne!(new_key, first_key);
    append_n(&store, "acme", 1).await;
    let n = size(&server, "acme").await;
    let cp = wait_checkpoint(&server, "/v1/tenants/acme/audit/checkpoints", n).await;
    assert_eq!(cp["key_id"], new_key.as_str());
    let published = keys(&server).await;
    assert_eq!(published.len(), 2);
    assert_eq!(published.iter().filter(|k| k["active"] == true).count(), 1);
    let report = verify(&server, "acme").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["size"], n);
    assert!(
        report["checkpoints_checked"].as_u64().unwrap_or(0) >= 2,
        "{report}"
    );

    // The rotation is on the operator chain, which verifies too.
    let op = server
        .get("/v1/operator/audit?action=audit_signing_key.rotated")
        .await;
    assert_eq!(op.body["data"].as_array().map(Vec::len), Some(1), "{op:?}");
    let report = server.get("/v1/operator/audit/verify").await;
    assert_eq!(report.body["ok"], true, "{report:?}");

    // The active private key is only stored sealed: unseal it with the
    // keyring, check it is the published key's, and find it nowhere in the
    // database's bytes; the retired key's seed is gone altogether.
    let seed = active_seed(&db, &new_key).await;
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let active = published
        .iter()
        .find(|k| k["active"] == true)
        .expect("active");
    let vkey = NoteVerifier::parse(active["vkey"].as_str().expect("vkey")).expect("vkey");
    assert_eq!(vkey.key, public);
    let raw = db.raw_bytes().await;
    assert!(
        !raw.windows(32).any(|w| w == seed),
        "a checkpoint seed is stored in clear"
    );
    assert!(!raw.windows(44).any(|w| w == base64_std(&seed).as_bytes()));
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !raw.windows(64).any(|w| w == hex.as_bytes()),
        "a checkpoint seed is stored in clear (hex)"
    );
    let retired: Vec<(Option<Vec<u8>>,)> = sql_rows(
        &db,
        &format!("SELECT wrapped_seed FROM audit_signing_keys WHERE key_id = '{first_key}'"),
    )
    .await;
    assert_eq!(retired.len(), 1);
    assert!(retired[0].0.is_none(), "a retired key keeps no seed");
    store.close().await;
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn sql_rows(db: &TestDb, sql: &str) -> Vec<(Option<Vec<u8>>,)> {
    match db.backend {
        Backend::Sqlite => {
            let pool = db.sqlite_reader().await;
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.expect("query");
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = db.pg_superuser().await;
            let rows = sqlx::query_as(sql).fetch_all(&pool).await.expect("query");
            pool.close().await;
            rows
        }
    }
}

async fn active_seed(db: &TestDb, key_id: &str) -> [u8; 32] {
    let rows: Vec<(Option<String>, Option<Vec<u8>>)> = {
        let sql = format!(
            "SELECT kek_id, wrapped_seed FROM audit_signing_keys WHERE key_id = '{key_id}'"
        );
        match db.backend {
            Backend::Sqlite => {
                let pool = db.sqlite_reader().await;
                let rows = sqlx::query_as(&sql).fetch_all(&pool).await.expect("query");
                pool.close().await;
                rows
            }
            Backend::Postgres => {
                let pool = db.pg_superuser().await;
                let rows = sqlx::query_as(&sql).fetch_all(&pool).await.expect("query");
                pool.close().await;
                rows
            }
        }
    };
    let (Some(kek_id), Some(ciphertext)) = rows.into_iter().next().expect("the key row") else {
        panic!("the active key has a sealed seed");
    };
    let keyring = tenantry_crypto::Keyring::parse(
        &std::fs::read_to_string(db.keyring_path()).expect("keyring"),
    )
    .expect("keyring parses");
    let seed = tenantry_crypto::unwrap_secret(
        &keyring,
        "audit-checkpoint-key",
        key_id,
        &tenantry_crypto::WrappedKey { kek_id, ciphertext },
    )
    .expect("the seed unseals with the keyring");
    *seed
}

/// A tenant API key with `scopes`: (key, id).
async fn key_with(server: &TestServer, tenant: &str, scopes: &[&str]) -> (String, String) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "audit", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    (
        reply.body["key"].as_str().expect("key").to_owned(),
        reply.body["id"].as_str().expect("id").to_owned(),
    )
}

async fn cli_verify(db: &TestDb, tenant: &str) -> (i32, Value) {
    let (code, out, err) = db
        .run_command(&["audit", "verify", "--database", "--tenant", tenant], &[])
        .await;
    let report = serde_json::from_str(out.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("CLI output: {out} {err}"));
    (code, report)
}

async fn tampering_is_found_with_the_first_bad_sequence(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db).await;
    let store = store_of(&db).await;
    let cases = [
        "t-edit",
        "t-delete",
        "t-insert",
        "t-swap",
        "t-truncate",
        "t-garble",
    ];
    for tenant in cases {
        server.create_tenant(tenant).await;
        append_n(&store, tenant, 5).await;
    }
    for tenant in cases {
        wait_checkpoint(
            &server,
            &format!("/v1/tenants/{tenant}/audit/checkpoints"),
            6,
        )
        .await;
        let report = verify(&server, tenant).await;
        assert_eq!(report["ok"], true, "{tenant}: {report}");
        let (code, cli) = cli_verify(&db, tenant).await;
        assert_eq!((code, &cli["ok"]), (0, &json!(true)), "{cli}");
    }
    let e = "audit_entries";
    db.exec(&format!(
        "UPDATE {e} SET action = 'thing.erased' WHERE tenant_id = 't-edit' AND sequence = 3"
    ))
    .await;
    db.exec(&format!(
        "DELETE FROM {e} WHERE tenant_id = 't-delete' AND sequence = 3"
    ))
    .await;
    // Insert: make room at 3, then a copy of entry 2 there.
    db.exec(&format!(
        "UPDATE {e} SET sequence = sequence + 1000 WHERE tenant_id = 't-insert' AND sequence >= 3"
    ))
    .await;
    db.exec(&format!(
        "UPDATE {e} SET sequence = sequence - 999 WHERE tenant_id = 't-insert' AND sequence > 1000"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {e} (tenant_id, sequence, id, occurred_at, actor_type, actor_id, actor_name, action, targets, \
         outcome, request, changes, metadata, prev_hash, hash) SELECT tenant_id, 3, 'aud_forged', occurred_at, actor_type, \
         actor_id, actor_name, action, targets, outcome, request, changes, metadata, hash, hash FROM {e} \
         WHERE tenant_id = 't-insert' AND sequence = 2"
    ))
    .await;
    // Reorder: swap 2 and 3.
    db.exec(&format!(
        "UPDATE {e} SET sequence = -1 WHERE tenant_id = 't-swap' AND sequence = 2"
    ))
    .await;
    db.exec(&format!(
        "UPDATE {e} SET sequence = 2 WHERE tenant_id = 't-swap' AND sequence = 3"
    ))
    .await;
    db.exec(&format!(
        "UPDATE {e} SET sequence = 3 WHERE tenant_id = 't-swap' AND sequence = -1"
    ))
    .await;
    // Garble: a row edited into something that no longer decodes is a
    // break at that entry, not a server error.
    db.exec(&format!(
        "UPDATE {e} SET changes = '{{not json', outcome = 'maybe' WHERE tenant_id = 't-garble' AND sequence = 4"
    ))
    .await;
    // Truncate: the two newest go, and the head row is made to agree; only
    // the checkpoint of size 5 still knows.
    db.exec(&format!(
        "DELETE FROM {e} WHERE tenant_id = 't-truncate' AND sequence > 3"
    ))
    .await;
    db.exec(
        "UPDATE audit_heads SET size = 3, head_hash = (SELECT hash FROM audit_entries \
         WHERE tenant_id = 't-truncate' AND sequence = 3) WHERE tenant_id = 't-truncate'",
    )
    .await;

    for (tenant, first_bad) in [
        ("t-edit", 3),
        ("t-delete", 3),
        ("t-insert", 3),
        ("t-swap", 2),
        ("t-truncate", 4),
        ("t-garble", 4),
    ] {
        let report = verify(&server, tenant).await;
        assert_eq!(report["ok"], false, "{tenant}: {report}");
        assert_eq!(
            report["first_bad_sequence"], first_bad,
            "{tenant}: {report}"
        );
        assert!(report["reason"].is_string(), "{report}");
        let (code, cli) = cli_verify(&db, tenant).await;
        assert_ne!(code, 0, "{tenant}: the CLI exits non-zero on a break");
        assert_eq!(cli["first_bad_sequence"], first_bad, "{tenant}: {cli}");
    }
    let report = verify(&server, "t-truncate").await;
    assert!(
        report["reason"]
            .as_str()
            .unwrap_or("")
            .contains("checkpoint"),
        "{report}"
    );
    // The CLI over every chain fails too.
    let (code, _, _) = db
        .run_command(&["audit", "verify", "--database"], &[])
        .await;
    assert_ne!(code, 0);
    store.close().await;
}

async fn exports_verify_offline_and_parse_as_csv(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db).await;
    server.create_tenant("acme").await;
    let store = store_of(&db).await;
    append(
        &store,
        "acme",
        &draft("user.name", "key_a", ("thing", "t1"), Outcome::Success),
        chrono::Utc::now(),
    )
    .await;
    append(
        &store,
        "acme",
        &draft(
            "user.\"quoted\", comma",
            "key_b",
            ("thing", "t2"),
            Outcome::Denied,
        ),
        chrono::Utc::now(),
    )
    .await;
    append(
        &store,
        "acme",
        &draft(
            "thing.changed",
            "=cmd|' /C calc'!A0",
            ("thing", "t3"),
            Outcome::Error,
        ),
        chrono::Utc::now(),
    )
    .await;
    append_n(&store, "acme", 1).await;
    wait_checkpoint(&server, "/v1/tenants/acme/audit/checkpoints", 5).await;

    let reply = server
        .get("/v1/tenants/acme/audit/export?format=ndjson")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type(), "application/x-ndjson");
    let lines: Vec<Value> = reply
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["kind"], "header");
    assert_eq!(lines.iter().filter(|l| l["kind"] == "entry").count(), 5);
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "checkpoint" && l["size"] == 5)
    );
    assert_eq!(lines.last().expect("end")["kind"], "end");
    let path = db.dir.path().join("export.ndjson");
    std::fs::write(&path, &reply.text).expect("write");
    let vkey = keys(&server).await[0]["vkey"]
        .as_str()
        .expect("vkey")
        .to_owned();
    let p = path.to_str().expect("utf8");
    // The keys inside a file prove nothing about who signed it: a trusted
    // key is required, unless the caller says it trusts the file's own.
    let (code, _, err) = db.run_command(&["audit", "verify", "--file", p], &[]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--public-key"), "{err}");
    let (code, out, err) = db
        .run_command(&["audit", "verify", "--file", p, "--trust-file-keys"], &[])
        .await;
    assert_eq!(code, 0, "{out} {err}");
    let (code, out, err) = db
        .run_command(
            &["audit", "verify", "--file", p, "--public-key", &vkey],
            &[],
        )
        .await;
    assert_eq!(code, 0, "{out} {err}");
    let report: Value =
        serde_json::from_str(out.trim().lines().last().unwrap_or("")).expect("report");
    assert_eq!(
        (report["ok"].clone(), report["size"].clone()),
        (json!(true), json!(5)),
        "{report}"
    );

    // A tampered export fails, and so does one signed by another key.
    let tampered =
        reply
            .text
            .replacen("\"action\":\"user.name\"", "\"action\":\"user.renamed\"", 1);
    assert_ne!(tampered, reply.text);
    std::fs::write(&path, &tampered).expect("write");
    let (code, out, _) = db
        .run_command(
            &["audit", "verify", "--file", p, "--public-key", &vkey],
            &[],
        )
        .await;
    assert_ne!(code, 0, "{out}");
    let report: Value =
        serde_json::from_str(out.trim().lines().last().unwrap_or("")).expect("report");
    assert_eq!(report["first_bad_sequence"], 2, "{report}");
    std::fs::write(&path, &reply.text).expect("write");
    let other = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    let (code, _, _) = db
        .run_command(
            &["audit", "verify", "--file", p, "--public-key", other],
            &[],
        )
        .await;
    assert_ne!(
        code, 0,
        "checkpoints signed by an untrusted key do not count"
    );
    // A file cut short (no end line) fails.
    let cut: String = reply
        .text
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, cut).expect("write");
    let (code, _, _) = db.run_command(&["audit", "verify", "--file", p], &[]).await;
    assert_ne!(code, 0);

    // CSV: a header of the documented columns, every row the same width,
    // quoting intact, the formula-looking actor neutralised.
    let reply = server.get("/v1/tenants/acme/audit/export?format=csv").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.content_type().starts_with("text/csv"),
        "{}",
        reply.content_type()
    );
    let rows = parse_csv(&reply.text);
    assert_eq!(rows[0][0], "kind");
    assert_eq!(rows[0][1], "sequence");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{rows:?}");
    let entries: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "entry").collect();
    assert_eq!(entries.len(), 5);
    let col = |name: &str| rows[0].iter().position(|c| c == name).expect("column");
    assert_eq!(entries[2][col("action")], "user.\"quoted\", comma");
    assert_eq!(entries[3][col("actor_id")], "'=cmd|' /C calc'!A0");
    assert!(
        rows.iter()
            .any(|r| r[0] == "checkpoint" && r[col("sequence")] == "5")
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == "key" && r[col("metadata")] == vkey)
    );

    // Validation and the operator's export.
    server
        .get("/v1/tenants/acme/audit/export?format=xml")
        .await
        .assert_invalid("format");
    let reply = server.get("/v1/operator/audit/export").await;
    assert_eq!(reply.status, StatusCode::OK);
    store.close().await;
}

/// RFC 4180, quoted fields with doubled quotes and embedded newlines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

async fn listing_filters_pages_and_guards_access(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("other").await;
    let store = store_of(&db).await;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(2);
    append(
        &store,
        "acme",
        &draft(
            "api_key.created",
            "key_a",
            ("api_key", "key_1"),
            Outcome::Success,
        ),
        t0,
    )
    .await;
    append(
        &store,
        "acme",
        &draft(
            "api_key.revoked",
            "key_a",
            ("api_key", "key_1"),
            Outcome::Success,
        ),
        t0 + chrono::Duration::hours(1),
    )
    .await;
    append(
        &store,
        "acme",
        &draft(
            "credential.revealed",
            "key_b",
            ("credential", "cred_9"),
            Outcome::Denied,
        ),
        chrono::Utc::now(),
    )
    .await;
    append(
        &store,
        "acme",
        &draft(
            "api_key.created",
            "key_b",
            ("api_key", "key_2"),
            Outcome::Success,
        ),
        chrono::Utc::now(),
    )
    .await;
    append_n(&store, "other", 2).await;

    let seqs = |r: &Reply| -> Vec<u64> {
        r.body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["sequence"].as_u64().expect("seq"))
            .collect()
    };
    let all = server.get("/v1/tenants/acme/audit").await;
    assert_eq!(seqs(&all), vec![5, 4, 3, 2, 1], "newest first");
    let e = &all.body["data"][3];
    for field in [
        "id",
        "tenant_id",
        "occurred_at",
        "actor",
        "action",
        "targets",
        "outcome",
        "request",
        "changes",
        "metadata",
        "prev_hash",
        "hash",
    ] {
        assert!(!e[field].is_null(), "{field} in {e}");
    }
    assert_eq!(e["actor"]["type"], "api_key");
    assert_eq!(e["targets"][0], json!({"type": "api_key", "id": "key_1"}));
    assert_eq!(e["request"]["user_agent"], "audit-test");

    let q = |query: &str| format!("/v1/tenants/acme/audit?{query}");
    assert_eq!(
        seqs(&server.get(&q("action=api_key.created")).await),
        vec![5, 2]
    );
    assert_eq!(seqs(&server.get(&q("actor=key_b")).await), vec![5, 4]);
    assert_eq!(
        seqs(&server.get(&q("target=api_key:key_1")).await),
        vec![3, 2]
    );
    assert_eq!(seqs(&server.get(&q("outcome=denied")).await), vec![4]);
    let from =
        (t0 + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to =
        (t0 + chrono::Duration::minutes(90)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        seqs(&server.get(&q(&format!("from={from}&to={to}"))).await),
        vec![3]
    );
    assert_eq!(
        seqs(&server.get(&q("action=api_key.created&actor=key_a")).await),
        vec![2]
    );

    // Pages of two, following next_cursor to the end.
    let mut seen = Vec::new();
    let mut path = q("limit=2");
    for _ in 0..5 {
        let page = server.get(&path).await;
        seen.extend(seqs(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = q(&format!("limit=2&cursor={c}")),
            None => break,
        }
    }
    assert_eq!(seen, vec![5, 4, 3, 2, 1]);

    for (query, field) in [
        ("outcome=maybe", "outcome"),
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("target=nocolon", "target"),
        ("cursor=bogus", "cursor"),
        ("action=Not%20An%20Action", "action"),
        (&format!("from={to}&to={from}") as &str, "to"),
    ] {
        server.get(&q(query)).await.assert_invalid(field);
    }

    // Access: another tenant's key is 404 (before any validation), a key
    // without audit:read is 403, audit:read or tenant:admin may read.
    let (other_key, _) = key_with(&server, "other", &["tenant:admin"]).await;
    for path in [
        "/v1/tenants/acme/audit",
        "/v1/tenants/acme/audit?outcome=maybe",
        "/v1/tenants/acme/audit/verify",
        "/v1/tenants/acme/audit/checkpoints",
        "/v1/tenants/acme/audit/export",
    ] {
        server
            .call_as(Some(&other_key), Method::GET, path, None)
            .await
            .assert_problem(404, "tenant_not_found");
    }
    let (narrow, _) = key_with(&server, "acme", &["keys:read"]).await;
    for path in [
        "/v1/tenants/acme/audit",
        "/v1/tenants/acme/audit?outcome=maybe",
        "/v1/tenants/acme/audit/verify",
        "/v1/tenants/acme/audit/checkpoints",
        "/v1/tenants/acme/audit/export",
    ] {
        let reply = server.call_as(Some(&narrow), Method::GET, path, None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}: {reply:?}");
    }
    let (reader, _) = key_with(&server, "acme", &["audit:read"]).await;
    let reply = server
        .call_as(Some(&reader), Method::GET, "/v1/tenants/acme/audit", None)
        .await;
    assert!(seqs(&reply).ends_with(&[5, 4, 3, 2, 1]), "{reply:?}");
    let reply = server
        .call_as(
            Some(&reader),
            Method::GET,
            "/v1/tenants/acme/audit/verify",
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    // The other tenant's entries are its own.
    let reply = server
        .call_as(
            Some(&other_key),
            Method::GET,
            "/v1/tenants/other/audit",
            None,
        )
        .await;
    assert!(
        reply.body["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|e| e["tenant_id"] == "other"),
        "{reply:?}"
    );
    // The operator chain is the operator's.
    for path in [
        "/v1/operator/audit",
        "/v1/operator/audit/verify",
        "/v1/operator/audit/checkpoints",
        "/v1/operator/audit/export",
    ] {
        server
            .call_as(Some(&reader), Method::GET, path, None)
            .await
            .assert_problem(403, "operator_required");
        server
            .call_as(None, Method::GET, path, None)
            .await
            .assert_problem(401, "unauthorized");
    }
    server
        .call_as(None, Method::GET, "/v1/tenants/acme/audit", None)
        .await
        .assert_problem(401, "unauthorized");
    server
        .get("/v1/tenants/nosuch/audit")
        .await
        .assert_problem(404, "tenant_not_found");
    store.close().await;
}

async fn pruning_keeps_the_remainder_verifiable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db).await;
    server.create_tenant("acme").await;
    let store = store_of(&db).await;
    let old = chrono::Utc::now() - chrono::Duration::days(10);
    for _ in 0..3 {
        append(
            &store,
            "acme",
            &draft("thing.changed", "key_a", ("thing", "t1"), Outcome::Success),
            old,
        )
        .await;
    }
    wait_checkpoint(&server, "/v1/tenants/acme/audit/checkpoints", 4).await;
    append_n(&store, "acme", 2).await;
    wait_checkpoint(&server, "/v1/tenants/acme/audit/checkpoints", 6).await;
    // Out of range values are refused; 5 days prunes the three old entries.
    server
        .patch(
            "/v1/tenants/acme/config",
            json!({"retention_policy": {"audit_retention_days": 0}}),
        )
        .await
        .assert_invalid("retention_policy.audit_retention_days");
    let reply = server
        .patch(
            "/v1/tenants/acme/config",
            json!({"retention_policy": {"audit_retention_days": 5}}),
        )
        .await;
    assert!(reply.status.is_success(), "{reply:?}");
    let mut report = Value::Null;
    for _ in 0..300 {
        report = verify(&server, "acme").await;
        if report["pruned_through"] == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report["pruned_through"], 4, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["size"], size(&server, "acme").await);
    let list = server.get("/v1/tenants/acme/audit").await;
    let seqs: Vec<u64> = list.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["sequence"].as_u64())
        .collect();
    // 5 and 6 (and the configuration change's own entry, once it records one).
    assert!(
        seqs.ends_with(&[6, 5]) && seqs.iter().all(|s| *s > 4),
        "{seqs:?}"
    );
    assert_eq!(
        db.count_rows("audit_entries", "acme").await,
        seqs.len() as i64
    );
    // The anchor's checkpoint is kept (verification needs it); the CLI agrees.
    let (code, cli) = cli_verify(&db, "acme").await;
    assert_eq!(code, 0, "{cli}");
    // Deleting the anchor's checkpoint (to hide a pruned prefix) is found.
    db.exec("DELETE FROM audit_checkpoints WHERE tenant_id = 'acme' AND size = 4")
        .await;
    let report = verify(&server, "acme").await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_bad_sequence"], 5, "{report}");
    store.close().await;
}

/// One tenant's chain locked (a transaction holding its head) does not stop
/// another tenant's append from committing (PostgreSQL row locks; SQLite has
/// one writer for the whole file, so there both simply commit in turn).
async fn a_locked_chain_does_not_block_another_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = start(&db).await;
    server.create_tenant("hot").await;
    server.create_tenant("calm").await;
    let store = store_of(&db).await;
    append_n(&store, "hot", 1).await;
    if backend == Backend::Postgres {
        // The hot tenant's append, mid-transaction, holding its head lock.
        let hot = TenantId::parse("hot").expect("id");
        let mut held = store.tenant_write(&hot).await.expect("tx");
        held.append_audit(
            "aud_held".into(),
            &draft("thing.changed", "k", ("thing", "t"), Outcome::Success),
            chrono::Utc::now(),
        )
        .await
        .expect("append");
        // The calm tenant's append commits meanwhile (bounded wait).
        let calm = tokio::time::timeout(Duration::from_secs(30), append_n(&store, "calm", 1)).await;
        assert!(
            calm.is_ok(),
            "another tenant's append waited for the hot tenant's lock"
        );
        held.commit().await.expect("commit");
    } else {
        append_n(&store, "calm", 1).await;
    }
    append_n(&store, "hot", 1).await;
    let hot_size = if backend == Backend::Postgres { 4 } else { 3 };
    for (tenant, size) in [("hot", hot_size), ("calm", 2)] {
        let report = verify(&server, tenant).await;
        assert_eq!(
            (report["ok"].clone(), report["size"].clone()),
            (json!(true), json!(size)),
            "{report}"
        );
    }
    drop(server);
    store.close().await;
}

on_both_backends!(
    checkpoints_are_published_signed_and_survive_rotation,
    tampering_is_found_with_the_first_bad_sequence,
    exports_verify_offline_and_parse_as_csv,
    listing_filters_pages_and_guards_access,
    pruning_keeps_the_remainder_verifiable,
    a_locked_chain_does_not_block_another_tenant,
);
