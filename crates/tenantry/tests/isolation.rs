//! Isolation enforced by PostgreSQL itself, checked with raw SQL under the
//! role the server's requests really run as; and `tenantry doctor`.
#![allow(clippy::disallowed_methods)] // Isolation tests open transactions below the API on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

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
    let db = TestDb::as_superuser(Backend::Postgres).await;
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

    // The tenant registry too: a tenant transaction sees its own row only,
    // and cannot widen its view by claiming the operator's flag.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('role', 'tenantry_app', true), \
                set_config('app.tenant_id', 'acme', true), \
                set_config('app.operator', 'on', true)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM tenants ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(ids, [("acme".to_owned(),)], "tenants seen by acme");
    for table in ["tenant_domains", "tenant_events"] {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = 'globex'"
        ))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(
            n, 0,
            "{table}: app.operator widens nothing for tenantry_app"
        );
    }
    let renamed = sqlx::query("UPDATE tenants SET name = 'pwned' WHERE id = 'globex'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(renamed.rows_affected(), 0);
    tx.rollback().await.unwrap();
    // With no tenant in context, no tenant row at all.
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SET LOCAL ROLE tenantry_app").await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM tenants")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 0);
    tx.rollback().await.unwrap();
    // The audit checkpoint keys are the operator's: a tenant transaction can
    // neither read nor add a verifier key.
    for sql in [
        "SELECT count(*) FROM audit_signing_keys",
        "INSERT INTO audit_signing_keys (key_id, name, public_key, created_at) \
         VALUES ('forged', 'tenantry.audit', '\\x00', now())",
    ] {
        let mut tx = conn.begin().await.unwrap();
        tx.execute("SET LOCAL ROLE tenantry_app").await.unwrap();
        let err = sqlx::query(sql)
            .execute(&mut *tx)
            .await
            .expect_err("audit_signing_keys is not the tenant role's");
        assert!(err.to_string().contains("permission denied"), "{err}");
        tx.rollback().await.unwrap();
    }
    // The operator role with its flag reads across tenants; without the
    // flag it reads nothing.
    for (flag, expected) in [("on", 2), ("", 0)] {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(
            "SELECT set_config('role', 'tenantry_operator', true), set_config('app.operator', $1, true)",
        )
        .bind(flag)
        .execute(&mut *tx)
        .await
        .unwrap();
        for table in ["tenants", "tenant_domains"] {
            let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            assert_eq!(
                n, expected,
                "{table} as tenantry_operator, app.operator = '{flag}'"
            );
        }
        // Never writes to another tenant's rows.
        let err = sqlx::query("INSERT INTO tenant_domains (tenant_id, domain, created_at) VALUES ('globex', 'op.com', now())")
            .execute(&mut *tx)
            .await
            .expect_err("the operator role writes no tenant rows");
        assert!(err.to_string().contains("row-level security"), "{err}");
        tx.rollback().await.unwrap();
    }

    // A tenant context never outlives its transaction: the store's pooled
    // connections hold no session-level app.tenant_id afterwards.
    let store = tenantry_store::Store::connect(&tenantry_store::DatabaseOptions::Postgres {
        url: db.url.clone().unwrap(),
        max_connections: 2,
        timeout: std::time::Duration::from_secs(5),
    })
    .await
    .unwrap();
    let mut store = store;
    store.prepare().await.unwrap();
    let acme = tenantry_core::TenantId::parse("acme").unwrap();
    let globex = tenantry_core::TenantId::parse("globex").unwrap();
    let (a, g) = (
        store.tenant_read(&acme).await.unwrap(),
        store.tenant_read(&globex).await.unwrap(),
    );
    a.commit().await.unwrap();
    g.commit().await.unwrap();
    // A read transaction (what a grant's `read` opens) cannot write: only
    // a change can.
    let mut read = store.tenant_read(&acme).await.unwrap();
    let err = read
        .record_event(
            "evt_readonly".into(),
            tenantry_core::tenant::TenantEventKind::Updated,
            &tenantry_core::tenant::Actor::system(),
            serde_json::json!({}),
            chrono::Utc::now(),
        )
        .await
        .expect_err("a read transaction refuses writes");
    assert!(err.to_string().contains("read-only"), "{err}");
    drop(read);
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
/// LEVEL SECURITY makes the owner subject to its own policies. It must be
/// granted both transaction roles; until it is, the server refuses to start
/// and says what to run.
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
    let err = match TestServer::try_start(&db, &[("TENANTRY_ROOT_KEY", common::ROOT_KEY)]).await {
        Ok(_) => panic!("an owner without the transaction roles must not serve"),
        Err(output) => output,
    };
    assert!(
        err.contains("refusing to start")
            && err.contains("'tenantry_app' is not granted")
            && err.contains("'tenantry_operator' is not granted")
            && err.contains(&format!(
                "GRANT tenantry_app, tenantry_operator TO \\\"{role}\\\""
            )),
        "{err}"
    );
    sqlx::query(&format!(
        "GRANT tenantry_app, tenantry_operator TO \"{role}\""
    ))
    .execute(&admin)
    .await
    .unwrap();

    let server = seeded(&db).await;
    assert!(!server.logs().contains("switch to the request role"));
    assert_eq!(
        server.get("/v1/tenants/acme/domains").await.body["data"][0]["domain"],
        "acme.com"
    );

    // Raw SQL as the owner itself (the role the server logs in as).
    let url = common::pg_url_for(db.pg_database.as_ref().unwrap(), Some(&role));
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for table in ["tenant_domains", "tenants"] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            n, 0,
            "{table}: the owning role sees nothing without a context"
        );
    }
    let err = sqlx::query("INSERT INTO tenant_domains (tenant_id, domain, created_at) VALUES ('acme', 'x.com', now())")
        .execute(&mut conn)
        .await
        .expect_err("insert without context");
    assert!(err.to_string().contains("row-level security"), "{err}");

    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("request transactions run as role 'tenantry_app'")
            && out.contains("operator transactions run as role 'tenantry_operator'"),
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

    // Once both roles are granted to it, the server switches and starts.
    sqlx::query(&format!(
        "GRANT tenantry_app, tenantry_operator TO \"{role}\""
    ))
    .execute(&admin)
    .await
    .unwrap();
    let server = TestServer::start(&db).await;
    assert!(server.logs().contains("switch to the request role"));
    server.create_tenant("acme").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_doctor_finds_missing_rls() {
    let db = TestDb::as_superuser(Backend::Postgres).await;
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
        out.contains("role tenantry_app: is subject to row-level security")
            && out.contains("role tenantry_operator: is subject to row-level security"),
        "{out}"
    );
    assert!(
        out.contains("tenants: row-level security forced"),
        "the registry is checked like every tenant table:\n{out}"
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

    // An extra permissive policy opens the table, whatever the others say.
    sqlx::query("CREATE POLICY p ON api_keys USING (true)")
        .execute(&admin)
        .await
        .unwrap();
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL  api_keys: extra permissive policy 'p' (for public)"),
        "{out}"
    );
    sqlx::query("DROP POLICY p ON api_keys")
        .execute(&admin)
        .await
        .unwrap();

    // The operator's view open to every role (the old policy shape).
    sqlx::query("DROP POLICY operator_read ON credentials")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE POLICY operator_read ON credentials FOR SELECT USING (current_setting('app.operator', true) = 'on')")
        .execute(&admin)
        .await
        .unwrap();
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL  credentials: permissive policy 'operator_read' grants the operator's cross-tenant view to public"),
        "{out}"
    );

    // The invalidation secret readable by a transaction role.
    sqlx::query("GRANT SELECT ON tenantry_secrets TO tenantry_app")
        .execute(&admin)
        .await
        .unwrap();
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL  tenantry_secrets: role tenantry_app can read the invalidation secret"),
        "{out}"
    );

    // The registry, and a table that points at it, without RLS.
    sqlx::query("ALTER TABLE tenants DISABLE ROW LEVEL SECURITY")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (owner TEXT NOT NULL REFERENCES tenants (id), body TEXT)")
        .execute(&admin)
        .await
        .unwrap();
    let (code, out, _) = db.run_command(&["doctor"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL  tenants: row-level security is NOT enabled")
            && out.contains("FAIL  notes: row-level security is NOT enabled"),
        "{out}"
    );
}

/// A trap: one restrictive policy that lets nothing through. Under a role
/// that bypassed row-level security (superuser, BYPASSRLS, a dropped role
/// switch) the server would still read the rows; under its real roles, on
/// the tenant path and the operator path alike, it reads none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_transactions_are_subject_to_rls() {
    let db = TestDb::new(Backend::Postgres).await;
    let server = seeded(&db).await;
    let domains = server.get("/v1/tenants/acme/domains").await;
    assert_eq!(
        domains.body["data"].as_array().unwrap().len(),
        1,
        "{domains:?}"
    );
    assert_eq!(
        server.get("/v1/tenants").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    db.exec("CREATE POLICY trap ON tenant_domains AS RESTRICTIVE USING (false)")
        .await;
    db.exec("CREATE POLICY trap ON tenants AS RESTRICTIVE USING (false)")
        .await;
    // Tenant path.
    let domains = server.get("/v1/tenants/globex/domains").await;
    assert!(
        domains.status.as_u16() == 404
            || domains.body["data"]
                .as_array()
                .is_some_and(|d| d.is_empty()),
        "the server read rows row-level security hides: {domains:?}"
    );
    // Operator path.
    let list = server.get("/v1/tenants").await;
    assert_eq!(list.status.as_u16(), 200, "{list:?}");
    assert_eq!(
        list.body["data"].as_array().map(Vec::len),
        Some(0),
        "the operator path read rows row-level security hides: {list:?}"
    );
}

/// Any database user may NOTIFY the invalidation channel: a forged message
/// must neither flush nor poison the server's caches, and a replayed real
/// one is dropped too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_forged_invalidations_are_ignored() {
    let db = TestDb::new(Backend::Postgres).await;
    let server = seeded(&db).await;
    server.expect_warning("dropping an unauthenticated cache invalidation");
    server.expect_warning("dropping a replayed cache invalidation");
    // Another database user, with nothing but CONNECT, listens...
    let intruder = format!("intruder_{}", common::random_suffix());
    db.exec(&format!("CREATE ROLE \"{intruder}\" LOGIN")).await;
    let url = common::pg_url_for(db.pg_database.as_ref().unwrap(), Some(&intruder));
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("tenantry_invalidate").await.unwrap();

    let key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "svc", "scopes": ["tenant:read"]}),
        )
        .await;
    assert_eq!(key.status.as_u16(), 201, "{key:?}");
    let key = key.body["key"].as_str().unwrap().to_owned();
    // ...and hears the (signed) invalidation of the new key, which the
    // server itself receives at the same moment; then it has settled.
    let real = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
        .await
        .expect("the server's own invalidation")
        .unwrap()
        .payload()
        .to_owned();
    assert!(real.starts_with("v1 "), "{real}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let verify = || server.post("/v1/keys/verify", json!({"key": key}));
    assert_eq!(verify().await.body["code"], "VALID");

    // Revoked behind the server's back: its cache still says valid, until
    // something invalidates it.
    db.exec("UPDATE api_keys SET revoked_at = now() WHERE tenant_id = 'acme'")
        .await;
    assert_eq!(
        verify().await.body["code"],
        "VALID",
        "served from the cache"
    );

    // Forgeries, and the real message replayed (it names this very key:
    // applied, it would flush it).
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for forged in ["*", "k:00", "v1 00 0 00 *", real.as_str()] {
        sqlx::query("SELECT pg_notify('tenantry_invalidate', $1)")
            .bind(forged)
            .execute(&mut conn)
            .await
            .unwrap();
    }

    let mut logs = String::new();
    for _ in 0..100 {
        logs = server.logs();
        if logs
            .matches("dropping an unauthenticated cache invalidation")
            .count()
            >= 3
            && logs.contains("dropping a replayed cache invalidation")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        logs.matches("dropping an unauthenticated cache invalidation")
            .count(),
        3,
        "{logs}"
    );
    assert!(
        logs.contains("dropping a replayed cache invalidation"),
        "{logs}"
    );
    assert!(!logs.contains("k:00"), "forged payloads are not logged");
    assert_eq!(
        verify().await.body["code"],
        "VALID",
        "no forged message flushed the key cache"
    );
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
