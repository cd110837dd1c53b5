//! Isolation enforced by PostgreSQL itself, checked with raw SQL under the
//! role the server's requests really run as; and `tenantry doctor`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, TestDb, TestServer};
use serde_json::json;
use sqlx::{Connection, Executor};

/// Starts a server on a fresh PostgreSQL database and gives two tenants rows.
async fn seeded(db: &TestDb) -> TestServer {
    let server = TestServer::start(db).await;
    for (tenant, domain) in [("acme", "acme.com"), ("globex", "globex.com")] {
        server.create_tenant(tenant).await;
        server
            .post(
                &format!("/v1/tenants/{tenant}/domains"),
                json!({"domain": domain}),
            )
            .await;
    }
    server
}

/// The server connects as the cluster's superuser, so it must switch every
/// transaction to the non-privileged request role; under that role, with no
/// tenant context, tenant tables look empty and foreign rows cannot be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rls_under_the_request_role() {
    let db = TestDb::new(Backend::Postgres).await;
    let server = seeded(&db).await;
    assert!(
        server.logs().contains("switch to the request role"),
        "{}",
        server.logs()
    );
    let admin = db.pg_superuser().await;

    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM tenant_domains")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(rows, 2, "the superuser sees both tenants' rows");

    let mut conn = admin.acquire().await.unwrap();
    // No tenant context: nothing visible, in every tenant table.
    for table in ["tenant_domains", "tenant_events"] {
        let mut tx = conn.begin().await.unwrap();
        tx.execute("SET LOCAL ROLE tenantry_app").await.unwrap();
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} without tenant context");
        tx.rollback().await.unwrap();
    }

    // With acme's context: acme's rows only.
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE tenantry_app").await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'acme', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let domains: Vec<(String, String)> =
        sqlx::query_as("SELECT tenant_id, domain FROM tenant_domains")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(domains, [("acme".to_owned(), "acme.com".to_owned())]);
    // Not even an explicit WHERE reaches globex.
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM tenant_events WHERE tenant_id = 'globex'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(n, 0);
    // Updates and deletes of globex's rows touch nothing.
    let updated =
        sqlx::query("UPDATE tenant_domains SET domain = 'stolen.com' WHERE tenant_id = 'globex'")
            .execute(&mut *tx)
            .await
            .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let deleted = sqlx::query("DELETE FROM tenant_events WHERE tenant_id = 'globex'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    tx.commit().await.unwrap();

    // An INSERT carrying another tenant's id fails.
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE tenantry_app").await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', 'acme', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("INSERT INTO tenant_domains (tenant_id, domain, created_at) VALUES ('globex', 'evil.com', now())")
        .execute(&mut *tx)
        .await
        .expect_err("RLS refuses a row of another tenant");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // And with no tenant context at all.
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE tenantry_app").await.unwrap();
    let err = sqlx::query("INSERT INTO tenant_events (tenant_id, id, kind, actor, data, created_at) VALUES ('acme', 'evt_x', 'created', 'x', '{}', now())")
        .execute(&mut *tx)
        .await
        .expect_err("no context, no insert");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // A tenant context never outlives its transaction: the store's pooled
    // connections hold no session-level app.tenant_id afterwards.
    let store = tenantry_store::Store::connect(&tenantry_store::DatabaseOptions::Postgres {
        url: db.url.clone().unwrap(),
        max_connections: 2,
    })
    .await
    .unwrap();
    let acme = tenantry_core::TenantId::parse("acme").unwrap();
    let globex = tenantry_core::TenantId::parse("globex").unwrap();
    let (a, g) = (
        store.tenant_read(&acme).await.unwrap(),
        store.tenant_read(&globex).await.unwrap(),
    );
    a.commit().await.unwrap();
    g.commit().await.unwrap();
    let settings = store.session_settings("app.tenant_id").await.unwrap();
    assert_eq!(settings.len(), 2, "both connections were used");
    assert!(settings.iter().all(String::is_empty), "{settings:?}");
    store.close().await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM tenant_domains")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(n, 2, "nothing was changed");
    drop(server);
}

/// The production shape: an ordinary role that owns the schema. FORCE ROW
/// LEVEL SECURITY makes the owner subject to its own policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ordinary_owner_role() {
    let role = format!("owner_{}", common::random_suffix());
    let admin = common::pg_admin().await;
    sqlx::query(&format!(
        "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let db = TestDb::with_owner(Backend::Postgres, Some(&role)).await;
    let server = seeded(&db).await;
    assert!(!server.logs().contains("switch to the request role"));
    assert_eq!(
        server.get("/v1/tenants/acme/domains").await.body["data"][0]["domain"],
        "acme.com"
    );

    // Raw SQL as the owner itself (the role the server runs as).
    let url = common::pg_url_for(db.pg_database.as_ref().unwrap(), Some(&role));
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM tenant_domains")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        n, 0,
        "the owning role sees nothing without a tenant context"
    );
    let err = sqlx::query("INSERT INTO tenant_domains (tenant_id, domain, created_at) VALUES ('acme', 'x.com', now())")
        .execute(&mut conn)
        .await
        .expect_err("insert without context");
    assert!(err.to_string().contains("row-level security"), "{err}");

    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("request transactions run as role '{role}'")),
        "{out}"
    );
}

/// A login role with BYPASSRLS that cannot switch to the request role is
/// refused at start, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_role_that_bypasses_rls() {
    let role = format!("bypass_{}", common::random_suffix());
    let admin = common::pg_admin().await;
    sqlx::query(&format!(
        "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER BYPASSRLS"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let db = TestDb::with_owner(Backend::Postgres, Some(&role)).await;
    let err = match TestServer::try_start(&db, &[("TENANTRY_ROOT_KEY", common::ROOT_KEY)]).await {
        Ok(_) => panic!("a BYPASSRLS role without a usable request role must not serve"),
        Err(output) => output,
    };
    assert!(
        err.contains("BYPASSRLS") && err.contains("refusing to start"),
        "{err}"
    );

    // Once the request role is granted to it, the server switches and starts.
    sqlx::query(&format!("GRANT tenantry_app TO \"{role}\""))
        .execute(&admin)
        .await
        .unwrap();
    let server = TestServer::start(&db).await;
    assert!(server.logs().contains("switch to the request role"));
    server.create_tenant("acme").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_doctor_finds_missing_rls() {
    let db = TestDb::new(Backend::Postgres).await;
    let (code, out, err) = db.run_command(&["migrate"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("migrations applied (postgres database)"),
        "{out}"
    );

    let (code, out, err) = db.run_command(&["doctor"], &[]).await;
    assert_eq!(code, 0, "doctor passes on a migrated database:\n{out}{err}");
    assert!(
        out.contains("tenant_domains: row-level security forced"),
        "{out}"
    );
    assert!(
        out.contains("role tenantry_app: is subject to row-level security"),
        "{out}"
    );
    assert!(
        out.contains("all ") && out.contains("checks passed"),
        "{out}"
    );

    let admin = db.pg_superuser().await;
    sqlx::query("ALTER TABLE tenant_events DISABLE ROW LEVEL SECURITY")
        .execute(&admin)
        .await
        .unwrap();
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_ne!(code, 0, "doctor fails once RLS is disabled:\n{out}");
    assert!(
        out.contains("FAIL  tenant_events: row-level security is NOT enabled"),
        "{out}"
    );
    sqlx::query("ALTER TABLE tenant_events ENABLE ROW LEVEL SECURITY")
        .execute(&admin)
        .await
        .unwrap();

    sqlx::query("ALTER TABLE tenant_domains NO FORCE ROW LEVEL SECURITY")
        .execute(&admin)
        .await
        .unwrap();
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL  tenant_domains: row-level security is NOT forced"),
        "{out}"
    );
    sqlx::query("ALTER TABLE tenant_domains FORCE ROW LEVEL SECURITY")
        .execute(&admin)
        .await
        .unwrap();

    // A new tenant table added without isolation is caught too.
    sqlx::query("CREATE TABLE sneaky (tenant_id TEXT NOT NULL, note TEXT)")
        .execute(&admin)
        .await
        .unwrap();
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL  sneaky: row-level security is NOT enabled"),
        "{out}"
    );
    assert!(out.contains("FAIL  sneaky: no policy restricts"), "{out}");
    assert!(
        out.contains("FAIL  sneaky: no index leads with tenant_id"),
        "{out}"
    );
    sqlx::query("DROP TABLE sneaky")
        .execute(&admin)
        .await
        .unwrap();

    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_doctor() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (code, out, err) = db.run_command(&["migrate"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("tenant_domains: an index leads with tenant_id"),
        "{out}"
    );
    assert!(out.contains("SQLite has no row-level security"), "{out}");
}
