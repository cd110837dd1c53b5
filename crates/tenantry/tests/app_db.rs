//! `tenantry app-db isolate|doctor` on a real PostgreSQL database (the
//! app's own, a fresh one on the test cluster), checked by querying as an
//! ordinary login role, the way the app's requests run. PostgreSQL only:
//! row-level security on the app's database is the subject.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::app_pg;
use crate::common;
#[path = "../../../examples/recipes/rust/sqlx_tenant.rs"]
mod sqlx_recipe;

use app_pg::{AppPg, run_app_db};
use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};

/// Runs `sql` (one text column) in one transaction with `app.tenant_id`
/// set as an app would (or not at all), and commits: the rows, or the
/// SQLSTATE of the error.
async fn as_tenant(
    conn: &mut PgConnection,
    tenant: Option<&str>,
    sql: &str,
) -> Result<Vec<String>, String> {
    let mut tx = conn.begin().await.expect("begin");
    if let Some(tenant) = tenant {
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .expect("set tenant");
    }
    match sqlx::query(sql).fetch_all(&mut *tx).await {
        Ok(rows) => {
            let out = rows.iter().map(|r| r.get::<String, _>(0)).collect();
            tx.commit().await.expect("commit");
            Ok(out)
        }
        Err(sqlx::Error::Database(e)) => {
            let code = e.code().map(|c| c.into_owned()).unwrap_or_default();
            tx.rollback().await.ok();
            Err(code)
        }
        Err(e) => panic!("{sql}: {e}"),
    }
}

const RLS_VIOLATION: &str = "42501";

/// Catalog state of a table's isolation, to compare runs.
async fn snapshot(db: &AppPg, table: &str) -> Vec<String> {
    let mut conn = db.superuser().await;
    let rows = sqlx::query(
        "SELECT 'rls ' || relrowsecurity || ' ' || relforcerowsecurity FROM pg_class WHERE oid = $1::regclass \
         UNION ALL SELECT 'policy ' || polname || ' ' || polcmd::text || ' ' || polpermissive || ' ' || \
                coalesce(pg_get_expr(polqual, polrelid), '-') || ' ' || coalesce(pg_get_expr(polwithcheck, polrelid), '-') \
           FROM pg_policy WHERE polrelid = $1::regclass \
         UNION ALL SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::regclass \
         ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&mut conn)
    .await
    .expect("snapshot");
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

#[tokio::test]
async fn postgres_isolate_enforces_tenancy_for_the_app_role() {
    let db = AppPg::new().await;
    db.exec(
        "CREATE SCHEMA app;
         CREATE TABLE app.leads (id serial PRIMARY KEY, organization_id varchar(16) NOT NULL, name text NOT NULL);
         CREATE TABLE deals (id bigserial PRIMARY KEY, tenant uuid NOT NULL, title text NOT NULL);
         CREATE TABLE calls (id bigserial PRIMARY KEY, account_id bigint NOT NULL, note text NOT NULL);
         INSERT INTO app.leads (organization_id, name) VALUES ('acme', 'a1'), ('acme', 'a2'), ('globex', 'g1');
         INSERT INTO deals (tenant, title) VALUES
           ('00000000-0000-0000-0000-00000000000a', 'deal a'), ('00000000-0000-0000-0000-00000000000b', 'deal b');
         INSERT INTO calls (account_id, note) VALUES (1, 'call 1'), (2, 'call 2');",
    )
    .await;
    db.grant(&["app", "public"]).await;
    let role = db.role.clone();
    for (table, column) in [
        ("app.leads", "organization_id"),
        ("deals", "tenant"),
        ("calls", "account_id"),
    ] {
        let (code, out, err) = db
            .run(&[
                "isolate", "--table", table, "--column", column, "--role", &role,
            ])
            .await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("enabled row-level security") && out.contains("created the tenant policy"),
            "{out}"
        );
        assert!(out.contains("created an index"), "{out}");
    }

    let mut app = db.app().await;
    let leads = "SELECT name FROM app.leads ORDER BY name";
    // No tenant: nothing, for every column type (and no cast error).
    assert_eq!(as_tenant(&mut app, None, leads).await, Ok(vec![]));
    assert_eq!(
        as_tenant(&mut app, None, "SELECT title FROM deals").await,
        Ok(vec![])
    );
    assert_eq!(
        as_tenant(&mut app, None, "SELECT note FROM calls").await,
        Ok(vec![])
    );
    // A tenant: its rows only.
    assert_eq!(
        as_tenant(&mut app, Some("acme"), leads).await,
        Ok(vec!["a1".into(), "a2".into()])
    );
    assert_eq!(
        as_tenant(&mut app, Some("globex"), leads).await,
        Ok(vec!["g1".into()])
    );
    // The setting was transaction-local: on the same connection, the next
    // transaction without it sees nothing (the setting is now '', not unset).
    assert_eq!(as_tenant(&mut app, None, leads).await, Ok(vec![]));
    assert_eq!(
        as_tenant(&mut app, None, "SELECT title FROM deals").await,
        Ok(vec![])
    );
    assert_eq!(as_tenant(&mut app, Some(""), leads).await, Ok(vec![]));
    // A longer setting is not cut to the column's length into a match.
    assert_eq!(
        as_tenant(&mut app, Some("globex-and-more-than-16"), leads).await,
        Ok(vec![])
    );

    // Writes: an insert for another tenant is refused, a row cannot be
    // moved to another tenant, and other tenants' rows are not touched.
    assert_eq!(
        as_tenant(
            &mut app,
            Some("acme"),
            "INSERT INTO app.leads (organization_id, name) VALUES ('globex', 'x') RETURNING name"
        )
        .await,
        Err(RLS_VIOLATION.into())
    );
    assert_eq!(
        as_tenant(
            &mut app,
            None,
            "INSERT INTO app.leads (organization_id, name) VALUES ('globex', 'x') RETURNING name"
        )
        .await,
        Err(RLS_VIOLATION.into())
    );
    assert_eq!(
        as_tenant(
            &mut app,
            Some("acme"),
            "INSERT INTO app.leads (organization_id, name) VALUES ('acme', 'a3') RETURNING name"
        )
        .await,
        Ok(vec!["a3".into()])
    );
    assert_eq!(
        as_tenant(
            &mut app,
            Some("acme"),
            "UPDATE app.leads SET organization_id = 'globex' WHERE name = 'a3' RETURNING name"
        )
        .await,
        Err(RLS_VIOLATION.into())
    );
    assert_eq!(
        as_tenant(
            &mut app,
            Some("acme"),
            "UPDATE app.leads SET name = name || '!' RETURNING name"
        )
        .await
        .map(|mut v| {
            v.sort();
            v
        }),
        Ok(vec!["a1!".into(), "a2!".into(), "a3!".into()])
    );
    assert_eq!(
        as_tenant(
            &mut app,
            Some("acme"),
            "DELETE FROM app.leads WHERE name = 'g1' RETURNING name"
        )
        .await,
        Ok(vec![])
    );
    let mut su = db.superuser().await;
    let all: Vec<(String, String)> =
        sqlx::query_as("SELECT organization_id::text, name FROM app.leads ORDER BY name")
            .fetch_all(&mut su)
            .await
            .unwrap();
    assert_eq!(
        all,
        [
            ("acme", "a1!"),
            ("acme", "a2!"),
            ("acme", "a3!"),
            ("globex", "g1")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    // uuid and bigint columns compare as their type.
    assert_eq!(
        as_tenant(
            &mut app,
            Some("00000000-0000-0000-0000-00000000000a"),
            "SELECT title FROM deals"
        )
        .await,
        Ok(vec!["deal a".into()])
    );
    assert_eq!(
        as_tenant(&mut app, Some("00000000-0000-0000-0000-00000000000a"),
            "INSERT INTO deals (tenant, title) VALUES ('00000000-0000-0000-0000-00000000000b', 'x') RETURNING title").await,
        Err(RLS_VIOLATION.into())
    );
    assert_eq!(
        as_tenant(&mut app, Some("2"), "SELECT note FROM calls").await,
        Ok(vec!["call 2".into()])
    );
    // A setting that is not a value of the type is an error, never a match.
    assert_eq!(
        as_tenant(&mut app, Some("2 OR true"), "SELECT note FROM calls").await,
        Err("22P02".into())
    );

    // The Rust recipe (examples/recipes/rust/sqlx_tenant.rs) on the same table.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.app_url)
        .await
        .unwrap();
    let mut tx = sqlx_recipe::begin_for_tenant(&pool, "globex")
        .await
        .unwrap();
    let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM app.leads")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(names, [("g1".to_owned(),)]);
    let foreign = sqlx::query("INSERT INTO app.leads (organization_id, name) VALUES ('acme', 'x')")
        .execute(&mut *tx)
        .await;
    assert!(
        matches!(&foreign, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(RLS_VIOLATION)),
        "{foreign:?}"
    );
    tx.rollback().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let after: Vec<(String,)> = sqlx::query_as("SELECT name FROM app.leads")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert!(
        after.is_empty(),
        "the pooled connection kept a tenant: {after:?}"
    );
}

#[tokio::test]
async fn postgres_isolate_is_idempotent_transactional_and_dry() {
    let db = AppPg::new().await;
    db.exec(
        "CREATE TABLE leads (id serial PRIMARY KEY, tenant_id text NOT NULL);
         CREATE TABLE good (tenant_id text);
         CREATE TABLE bad (tenant_id json);",
    )
    .await;
    let before = snapshot(&db, "leads").await;

    // Dry run: the SQL, and nothing changed.
    let (code, out, err) = db.run(&["isolate", "--table", "leads", "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    for statement in [
        "ENABLE ROW LEVEL SECURITY",
        "FORCE ROW LEVEL SECURITY",
        "CREATE POLICY \"tenantry_tenant\"",
        "CREATE INDEX ON \"public\".\"leads\"",
    ] {
        assert!(out.contains(statement), "{statement} missing from\n{out}");
    }
    assert!(err.contains("no --role given"), "{err}");
    assert_eq!(snapshot(&db, "leads").await, before);

    let (code, out, err) = db.run(&["isolate", "--table", "leads"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let isolated = snapshot(&db, "leads").await;
    assert_ne!(isolated, before);

    // Again: nothing to do, nothing changed.
    let (code, out, err) = db.run(&["isolate", "--table", "leads"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("public.leads: already isolated"), "{out}");
    assert_eq!(snapshot(&db, "leads").await, isolated);
    let (_, out, _) = db.run(&["isolate", "--table", "leads", "--dry-run"]).await;
    assert!(out.contains("every table is already isolated"), "{out}");

    // A policy of that name that does not isolate is replaced.
    db.exec(
        "DROP POLICY tenantry_tenant ON leads; CREATE POLICY tenantry_tenant ON leads USING (true)",
    )
    .await;
    let (code, out, err) = db.run(&["isolate", "--table", "leads"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replaced a tenant policy"), "{out}");
    assert_eq!(snapshot(&db, "leads").await, isolated);

    // One failure, after the first table's statements ran: all rolled back.
    let good = snapshot(&db, "good").await;
    let (code, out, err) = db
        .run(&["isolate", "--table", "good", "--table", "bad"])
        .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("nothing was changed") && err.contains("json"),
        "{err}"
    );
    assert_eq!(snapshot(&db, "good").await, good);

    // Two runs at once: both succeed, one policy, one index.
    db.exec("CREATE TABLE twice (tenant_id text)").await;
    let (a, b) = tokio::join!(
        db.run(&["isolate", "--table", "twice"]),
        db.run(&["isolate", "--table", "twice"])
    );
    assert_eq!((a.0, b.0), (0, 0), "{a:?} {b:?}");
    assert!(
        a.1.contains("already isolated") || b.1.contains("already isolated"),
        "{a:?} {b:?}"
    );
    let twice = snapshot(&db, "twice").await;
    assert_eq!(
        twice.iter().filter(|l| l.starts_with("policy")).count(),
        1,
        "{twice:?}"
    );
    assert_eq!(
        twice.iter().filter(|l| l.starts_with("index")).count(),
        1,
        "{twice:?}"
    );

    // Unknown tables and columns are refused, with the reason.
    let (code, _, err) = db.run(&["isolate", "--table", "nope"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("no table 'nope'"), "{err}");
    let (code, _, err) = db
        .run(&["isolate", "--table", "leads", "--column", "org"])
        .await;
    assert_eq!(code, 2);
    assert!(err.contains("has no column 'org'"), "{err}");
}

#[tokio::test]
async fn postgres_isolate_quotes_every_identifier() {
    let db = AppPg::new().await;
    let table = "x\"; DROP TABLE victims; --";
    db.exec(
        "CREATE TABLE victims (id int);
         CREATE SCHEMA \"we\"\"ird\";
         CREATE TABLE \"we\"\"ird\".\"x\"\"; DROP TABLE victims; --\" (\"org\"\"id\" text NOT NULL, v text);
         INSERT INTO \"we\"\"ird\".\"x\"\"; DROP TABLE victims; --\" VALUES ('acme', 'a'), ('globex', 'g');",
    )
    .await;
    db.grant(&["we\"ird"]).await;
    let (code, out, err) = db
        .run(&[
            "isolate", "--schema", "we\"ird", "--table", table, "--column", "org\"id", "--role",
            &db.role,
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let mut su = db.superuser().await;
    let (victims,): (Option<String>,) =
        sqlx::query_as("SELECT to_regclass('public.victims')::text")
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert_eq!(victims.as_deref(), Some("victims"));
    // Schema-qualified, the same table: already isolated.
    let qualified = format!("we\"ird.{table}");
    let (code, out, err) = db
        .run(&["isolate", "--table", &qualified, "--column", "org\"id"])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("already isolated"), "{out}");
    let mut app = db.app().await;
    let sql = "SELECT v FROM \"we\"\"ird\".\"x\"\"; DROP TABLE victims; --\"";
    assert_eq!(as_tenant(&mut app, None, sql).await, Ok(vec![]));
    assert_eq!(
        as_tenant(&mut app, Some("globex"), sql).await,
        Ok(vec!["g".into()])
    );
    // Doctor reads it the same way.
    let (code, out, err) = db
        .run(&[
            "doctor", "--schema", "we\"ird", "--column", "org\"id", "--role", &db.role,
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test]
async fn postgres_isolate_all_covers_every_table_with_the_column() {
    let db = AppPg::new().await;
    db.exec(
        "CREATE SCHEMA app; CREATE SCHEMA crm;
         CREATE TABLE app.a (tenant_id text); CREATE TABLE app.b (tenant_id text, x int);
         CREATE TABLE crm.c (id int, tenant_id text); CREATE TABLE crm.settings (k text);
         CREATE TABLE public.d (tenant_id text);",
    )
    .await;
    db.grant(&["app", "crm"]).await;
    let (code, out, err) = db
        .run(&[
            "isolate", "--all", "--schema", "app", "--schema", "crm", "--role", &db.role,
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    for table in ["app.a", "app.b", "crm.c"] {
        assert!(
            out.contains(&format!("{table}: enabled row-level security")),
            "{table}: {out}"
        );
    }
    assert!(
        !out.contains("settings") && !out.contains("public.d"),
        "{out}"
    );
    assert!(
        !snapshot(&db, "public.d")
            .await
            .iter()
            .any(|l| l.starts_with("policy"))
    );
    assert_eq!(snapshot(&db, "crm.settings").await, ["rls false false"]);

    // Doctor: the table without the column is a finding, unless exempt.
    let (code, out, _) = db
        .run(&[
            "doctor", "--schema", "app", "--schema", "crm", "--role", &db.role,
        ])
        .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("crm.settings  [tenant_column]"), "{out}");
    let (code, out, _) = db
        .run(&[
            "doctor",
            "--schema",
            "app",
            "--schema",
            "crm",
            "--role",
            &db.role,
            "--exempt",
            "crm.settings",
        ])
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no findings"), "{out}");
    // --all with no table having the column: an error, not a silent success.
    let (code, _, err) = db
        .run(&["isolate", "--all", "--column", "nothing_has_it"])
        .await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn postgres_doctor_reports_each_finding() {
    let db = AppPg::new().await;
    db.exec(
        "CREATE TABLE clean (tenant_id text); CREATE TABLE plain (tenant_id text);
         CREATE TABLE unforced (tenant_id text); CREATE TABLE wrongpol (tenant_id text);
         CREATE TABLE leaky (tenant_id text); CREATE TABLE noindex (tenant_id text);
         CREATE TABLE restricted (tenant_id text); CREATE TABLE otherrole (tenant_id text);
         CREATE TABLE nocol (id int);",
    )
    .await;
    for table in [
        "clean",
        "unforced",
        "wrongpol",
        "leaky",
        "noindex",
        "restricted",
        "otherrole",
    ] {
        let (code, out, err) = db.run(&["isolate", "--table", table]).await;
        assert_eq!(code, 0, "{out}{err}");
    }
    let other = format!("r_{}", db.role);
    db.exec(&format!(
        "CREATE ROLE \"{other}\" NOLOGIN;
         ALTER TABLE unforced NO FORCE ROW LEVEL SECURITY;
         DROP POLICY tenantry_tenant ON wrongpol;
         CREATE POLICY tenantry_tenant ON wrongpol USING (tenant_id = current_setting('app.tenant_id', true));
         CREATE POLICY everyone_reads ON leaky FOR SELECT USING (true);
         DROP INDEX noindex_tenant_id_idx;
         CREATE POLICY narrow ON restricted AS RESTRICTIVE FOR DELETE USING (false);
         CREATE POLICY admins ON otherrole FOR SELECT TO \"{other}\" USING (true);"
    ))
    .await;
    db.exec("ALTER TABLE plain DISABLE ROW LEVEL SECURITY; ALTER TABLE plain NO FORCE ROW LEVEL SECURITY").await;

    let (code, out, err) = db.run(&["doctor", "--json", "--role", &db.role]).await;
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["passed"], false);
    let mut found: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["level"].as_str().unwrap().into(),
                f["subject"].as_str().unwrap().into(),
                f["check"].as_str().unwrap().into(),
            )
        })
        .collect();
    found.sort();
    let mut expected: Vec<(String, String, String)> = [
        ("public.leaky", "extra_permissive_policy"),
        ("public.nocol", "tenant_column"),
        ("public.noindex", "leading_index"),
        ("public.plain", "leading_index"),
        ("public.plain", "rls_enabled"),
        ("public.plain", "rls_forced"),
        ("public.plain", "tenant_policy"),
        ("public.unforced", "rls_forced"),
        ("public.wrongpol", "tenant_policy"),
    ]
    .iter()
    .map(|(s, c)| ("fail".to_owned(), s.to_string(), c.to_string()))
    .collect();
    expected.sort();
    assert_eq!(found, expected, "{out}");
    let tables = report["tables"].as_array().unwrap();
    let row = |name: &str| tables.iter().find(|t| t["table"] == name).unwrap().clone();
    assert_eq!(row("public.clean")["tenant_policy"], "ok");
    assert_eq!(row("public.wrongpol")["tenant_policy"], "incorrect");
    assert_eq!(
        row("public.leaky")["extra_permissive_policies"],
        serde_json::json!(["everyone_reads"])
    );
    assert_eq!(
        row("public.otherrole")["extra_permissive_policies"],
        serde_json::json!([])
    );
    assert_eq!(row("public.nocol")["tenant_column"], Value::Null);
    assert_eq!(report["role"]["superuser"], false);

    // The text report names the same findings.
    let (code, text, _) = db.run(&["doctor", "--role", &db.role]).await;
    assert_eq!(code, 1);
    assert!(
        text.contains("FAIL  public.leaky  [extra_permissive_policy]")
            && text.contains("everyone_reads"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  public.unforced  [rls_forced]"),
        "{text}"
    );
    // Without --role, the connection's own role is checked: here the
    // superuser, which row-level security never applies to.
    let (code, out, _) = db.run(&["doctor", "--json"]).await;
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "role_bypasses_rls"),
        "{out}"
    );

    // Errors: exit 2, and a password is never echoed.
    let (code, _, err) = run_app_db(
        "postgres://someone:hunter2secret@127.0.0.1:1/nothing",
        &["doctor"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot connect") && !err.contains("hunter2secret"),
        "{err}"
    );
    let (code, _, err) = run_app_db("not a url", &["doctor"]).await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn postgres_isolate_refuses_roles_that_bypass_rls() {
    let db = AppPg::new().await;
    let s = &db.role;
    db.exec(&format!(
        "CREATE TABLE leads (tenant_id text, name text);
         INSERT INTO leads VALUES ('acme', 'a'), ('globex', 'g');
         CREATE ROLE \"su_{s}\" LOGIN SUPERUSER; CREATE ROLE \"by_{s}\" LOGIN BYPASSRLS;
         CREATE ROLE \"own_{s}\" LOGIN;"
    ))
    .await;
    let before = snapshot(&db, "leads").await;
    for (role, says) in [
        (format!("su_{s}"), "is a superuser"),
        (format!("by_{s}"), "has BYPASSRLS"),
    ] {
        let (code, out, err) = db
            .run(&["isolate", "--table", "leads", "--role", &role])
            .await;
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains(says)
                && err.contains("CREATE ROLE app_user LOGIN")
                && err.contains("NOBYPASSRLS"),
            "{err}"
        );
        assert!(err.contains("nothing was changed"), "{err}");
        assert_eq!(snapshot(&db, "leads").await, before);
        let (code, out, _) = db.run(&["doctor", "--json", "--role", &role]).await;
        assert_eq!(code, 1);
        assert!(out.contains("role_bypasses_rls"), "{out}");
    }
    let (code, _, err) = db
        .run(&[
            "isolate",
            "--table",
            "leads",
            "--role",
            "no_such_role_anywhere",
        ])
        .await;
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");

    // A request role that owns the table: isolated all the same (FORCE),
    // with a warning.
    let owner = format!("own_{s}");
    db.exec(&format!("ALTER TABLE leads OWNER TO \"{owner}\""))
        .await;
    let (code, out, err) = db
        .run(&["isolate", "--table", "leads", "--role", &owner])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("owns it") && err.contains("FORCE"), "{err}");
    let owner_url = common::pg_url_for(&db.name, Some(&owner));
    let mut conn = PgConnection::connect(&owner_url).await.unwrap();
    assert_eq!(
        as_tenant(&mut conn, None, "SELECT name FROM leads").await,
        Ok(vec![])
    );
    assert_eq!(
        as_tenant(&mut conn, Some("acme"), "SELECT name FROM leads").await,
        Ok(vec!["a".into()])
    );
    let (code, out, _) = db.run(&["doctor", "--json", "--role", &owner]).await;
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["findings"][0]["check"], "role_owns_tables", "{out}");
    assert_eq!(report["findings"][0]["level"], "warn", "{out}");
    assert_eq!(report["role"]["owns"], serde_json::json!(["public.leads"]));
    conn.close().await.ok();
}

/// The recipes of docs/app-isolation.md, each a file under examples/recipes/
/// run as is against an isolated table, as an ordinary role: each tenant
/// sees its rows only, a row for another tenant is refused, and outside a
/// tenant transaction nothing is seen. (Rust's recipe runs in
/// `postgres_isolate_enforces_tenancy_for_the_app_role`.) The interpreters
/// and packages are requirements: `scripts/test` installs psycopg and
/// SQLAlchemy with pip and `pg` with npm.
#[tokio::test]
async fn postgres_recipes_isolate_in_every_language() {
    let db = AppPg::new().await;
    db.exec(
        "CREATE TABLE leads (id serial PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL);
         INSERT INTO leads (tenant_id, name) VALUES ('acme', 'a1'), ('acme', 'a2'), ('globex', 'g1');",
    )
    .await;
    db.grant(&["public"]).await;
    let (code, out, err) = db
        .run(&["isolate", "--table", "leads", "--role", &db.role])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/recipes");
    let node_modules = format!("{root}/node/node_modules/pg");
    assert!(
        std::path::Path::new(&node_modules).is_dir(),
        "{node_modules} is missing: run ./scripts/test, or `npm install` in examples/recipes/node"
    );
    let recipes = [
        ("node", format!("{root}/node/pg.js")),
        ("python3", format!("{root}/python/psycopg_recipe.py")),
        ("python3", format!("{root}/python/sqlalchemy_recipe.py")),
    ];
    for (program, file) in &recipes {
        for (tenant, seen) in [
            ("acme", vec!["a1", "a2"]),
            ("globex", vec!["g1"]),
            ("nobody", vec![]),
        ] {
            let out = tokio::process::Command::new(program)
                .arg(file)
                .arg(&db.app_url)
                .arg(tenant)
                .output()
                .await
                .unwrap_or_else(|e| {
                    panic!("cannot run {program} (install it; see scripts/test): {e}")
                });
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{file} {tenant}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: Value = serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("{file}: {e}: {stdout}"));
            assert_eq!(
                report["seen"],
                serde_json::json!(seen),
                "{file} as {tenant}"
            );
            assert_eq!(report["foreign_insert"], "refused", "{file} as {tenant}");
            assert_eq!(
                report["without_tenant"],
                serde_json::json!([]),
                "{file} as {tenant}"
            );
        }
    }
}
