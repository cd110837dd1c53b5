//! The schema stays distributable by tenant_id (docs/citus.md): `tenantry
//! doctor --citus` passes on a freshly migrated database and names each
//! violation a future migration could bring; key hashes stay unique across
//! tenants through `api_key_lookup`, which key creation and `seed` write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(keys_are_found_through_the_lookup, seed_writes_the_lookup);

async fn migrated_postgres() -> TestDb {
    let db = TestDb::new(Backend::Postgres).await;
    let (code, out, err) = db.run_command(&["migrate"], &[]).await;
    assert_eq!(code, 0, "migrate: {out}{err}");
    db
}

/// The finding lines (`FAIL  <table> ...`) of a report.
fn failures(report: &str) -> Vec<&str> {
    report
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("FAIL"))
        .collect()
}

#[tokio::test]
async fn postgres_fresh_schema_is_distributable() {
    let db = migrated_postgres().await;
    let (code, out, err) = db.run_command(&["doctor", "--citus"], &[]).await;
    assert_eq!(code, 0, "doctor --citus: {out}{err}");
    assert!(failures(&out).is_empty(), "{out}");
    assert!(out.contains("checks passed"), "{out}");
    // Every kind of table is classified, the key lookup by its hash.
    for expected in [
        "api_keys                tenant (tenant_id)",
        "api_key_lookup          lookup (key_hash)",
        "tenant_domains          lookup (domain)",
        "tenants                 reference",
        "_sqlx_migrations        local",
    ] {
        let (table, class) = expected.split_once(' ').unwrap();
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(table) && l.contains(class.trim())),
            "{table} as {}: {out}",
            class.trim()
        );
    }
    // The hash is unique through the lookup, per tenant on the key table.
    assert!(out.contains("api_keys_tenant_hash_key"), "{out}");
    assert!(!out.contains("api_keys_hash_key "), "{out}");

    let (code, sql, err) = db
        .run_command(&["doctor", "--citus", "--print-sql"], &[])
        .await;
    assert_eq!(code, 0, "{sql}{err}");
    assert!(
        sql.contains("SELECT create_reference_table('tenants');"),
        "{sql}"
    );
    assert!(
        sql.contains("SELECT create_distributed_table('api_key_lookup', 'key_hash', colocate_with => 'none');"),
        "{sql}"
    );
    // Reference tables first (tenant tables point at them), then one
    // colocation group for every tenant table.
    let first_distributed = sql.find("create_distributed_table").unwrap();
    assert!(sql.rfind("create_reference_table").unwrap() < first_distributed);
    let tenant_tables = sql
        .lines()
        .filter(|l| l.contains("'tenant_id', colocate_with"))
        .count();
    assert!(tenant_tables >= 20, "{sql}");
    assert!(
        sql.contains(
            "create_distributed_table('webhook_messages', 'tenant_id', colocate_with => 'api_keys')"
        ),
        "{sql}"
    );
}

#[tokio::test]
async fn postgres_violations_are_named() {
    let db = migrated_postgres().await;
    for sql in [
        "CREATE TABLE leads (tenant_id text NOT NULL REFERENCES tenants(id), id text PRIMARY KEY, email text NOT NULL)",
        "CREATE UNIQUE INDEX leads_email_key ON leads (email)",
        "CREATE TABLE lead_notes (tenant_id text NOT NULL, id text, lead_id text REFERENCES leads(id), \
         PRIMARY KEY (tenant_id, id))",
        "CREATE TABLE gadgets (id int PRIMARY KEY)",
        "CREATE UNIQUE INDEX api_keys_name_key ON api_keys (name)",
        "ALTER TABLE plans ADD COLUMN owner_key bytea REFERENCES api_key_lookup(key_hash)",
    ] {
        db.exec(sql).await;
    }
    let (code, out, err) = db.run_command(&["doctor", "--citus"], &[]).await;
    assert_eq!(code, 1, "doctor --citus must fail: {out}{err}");
    let failed = failures(&out);
    let names = |table: &str, object: &str| {
        failed.iter().any(|l| {
            let mut words = l.split_whitespace().skip(1);
            words.next() == Some(table) && l.contains(object)
        })
    };
    assert!(
        names("leads", "leads_pkey"),
        "primary key on id alone: {out}"
    );
    assert!(names("leads", "leads_email_key"), "unique email: {out}");
    assert!(
        names("lead_notes", "lead_notes_lead_id_fkey"),
        "fk without tenant_id: {out}"
    );
    assert!(names("gadgets", "not listed"), "unclassified table: {out}");
    assert!(
        names("api_keys", "api_keys_name_key"),
        "a new unique index: {out}"
    );
    assert!(
        names("plans", "plans_owner_key_fkey"),
        "reference into shards: {out}"
    );
    assert_eq!(failed.len(), 6, "only the offending objects fail: {out}");
    assert!(out.contains("6 of"), "{out}");
}

#[tokio::test]
async fn sqlite_is_told_the_check_is_for_postgres() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (code, out, err) = db.run_command(&["doctor", "--citus"], &[]).await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("PostgreSQL"), "{err}");
}

async fn keys_are_found_through_the_lookup(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    for tenant in ["acme", "globex"] {
        server.create_tenant(tenant).await;
    }
    let created = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "svc", "scopes": []}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let key = created.body["key"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(db.count_rows("api_key_lookup", "acme").await, 1);
    assert_eq!(db.count_rows("api_key_lookup", "globex").await, 0);

    let verified = server.post("/v1/keys/verify", json!({"key": key})).await;
    assert_eq!(verified.body["valid"], true, "{verified:?}");
    assert_eq!(verified.body["code"], "VALID");
    assert_eq!(verified.body["key_id"], key_id.as_str(), "{verified:?}");
    assert_eq!(verified.body["tenant"]["id"], "acme", "{verified:?}");

    // Rotation writes the new key's lookup row with the key.
    let rotated = server
        .post(
            &format!("/v1/tenants/acme/api-keys/{key_id}/rotate"),
            json!({}),
        )
        .await;
    assert!(rotated.status.is_success(), "{rotated:?}");
    assert_eq!(db.count_rows("api_key_lookup", "acme").await, 2);
    let new_key = rotated.body["key"].as_str().unwrap().to_owned();
    let verified = server
        .post("/v1/keys/verify", json!({"key": new_key}))
        .await;
    assert_eq!(verified.body["valid"], true, "{verified:?}");

    // A lookup row whose key row is gone (say, half of a tenant move) finds
    // nothing: the key row decides, never the lookup alone. (A key never
    // verified before, so no cache answers for it.)
    let unseen = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "unseen", "scopes": []}),
        )
        .await;
    let unseen_id = unseen.body["id"].as_str().unwrap();
    db.exec(&format!(
        "UPDATE api_key_lookup SET key_id = 'key_missing' WHERE key_id = '{unseen_id}'"
    ))
    .await;
    let verified = server
        .post("/v1/keys/verify", json!({"key": unseen.body["key"]}))
        .await;
    assert_eq!(verified.body["valid"], false, "{verified:?}");
    assert_eq!(verified.body["code"], "NOT_FOUND", "{verified:?}");
}

async fn seed_writes_the_lookup(backend: Backend) {
    let db = TestDb::new(backend).await;
    let out = db.dir.path().join("seed-out");
    let (code, stdout, stderr) = db
        .run_command(
            &[
                "seed",
                "--tenants",
                "3",
                "--keys-per-tenant",
                "4",
                "--prefix",
                "lk",
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert_eq!(code, 0, "seed: {stdout}{stderr}");
    let subdomains = std::fs::read_to_string(out.join("subdomains.txt")).unwrap();
    let mut tenants: Vec<String> = subdomains
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("lk-"))
        .map(str::to_owned)
        .collect();
    tenants.sort();
    tenants.dedup();
    assert!(!tenants.is_empty(), "seed names its tenants in --out");
    for tenant in &tenants {
        let keys = db.count_rows("api_keys", tenant).await;
        assert_eq!(keys, 4, "{tenant}");
        assert_eq!(
            db.count_rows("api_key_lookup", tenant).await,
            keys,
            "{tenant}"
        );
    }
}
