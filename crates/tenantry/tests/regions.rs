//! Regions and data residency (docs/regions.md): one server per region, each
//! over its own PostgreSQL database (two databases of the shared test
//! cluster, and, for the move, a second throw-away cluster), a tenant
//! written only in its home region, `421 wrong_region` elsewhere, and the
//! operator's move from one region to the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const EU_URL: &str = "https://eu.example.com";
const US_URL: &str = "https://us.example.com";

fn directory() -> String {
    format!("eu={EU_URL},us={US_URL}")
}

/// A server of `region` over `db`, knowing the other region's database.
async fn region_server(
    db: &TestDb,
    region: &str,
    other: (&str, &str),
    keyring: &std::path::Path,
    drain: &str,
) -> TestServer {
    let databases = format!("{}={}", other.0, other.1);
    let keyring = keyring.display().to_string();
    let regions = directory();
    TestServer::start_with(
        db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_REGION", region),
            ("TENANTRY_REGIONS", &regions),
            ("TENANTRY_REGION_DATABASES", &databases),
            // Both regions unwrap the same sealed secrets: one keyring.
            ("TENANTRY_MASTER_KEY_FILE", &keyring),
            ("TENANTRY_REGION_MOVE_DRAIN", drain),
            ("TENANTRY_REGION_DIRECTORY_REFRESH", "100ms"),
        ],
    )
    .await
}

/// A region's database in the shared test cluster.
async fn region_db() -> TestDb {
    TestDb::as_superuser(Backend::Postgres).await
}

fn url_of(db: &TestDb) -> String {
    db.url.clone().expect("url")
}

async fn pg(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("connect")
}

async fn count(pool: &sqlx::PgPool, sql: &str, tenant: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(tenant)
        .fetch_one(pool)
        .await
        .expect("count");
    n
}

/// Rows of `tenant` per tenant table (and its `tenants` row), as the
/// superuser sees them.
async fn rows_per_table(pool: &sqlx::PgPool, tenant: &str) -> Vec<(String, i64)> {
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_name = 'tenant_id' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("catalog");
    let mut out = vec![(
        "tenants".to_owned(),
        count(pool, "SELECT count(*) FROM tenants WHERE id = $1", tenant).await,
    )];
    for (table,) in tables {
        let sql = format!("SELECT count(*) FROM \"{table}\" WHERE tenant_id = $1");
        out.push((table, count(pool, &sql, tenant).await));
    }
    out
}

async fn call_key(server: &TestServer, key: &str, method: Method, path: &str) -> Reply {
    server.call_as(Some(key), method, path, None).await
}

async fn resolve_header(server: &TestServer, tenant: &str) -> Reply {
    let resp = server
        .client
        .get(server.url("/v1/resolve"))
        .bearer_auth(ROOT_KEY)
        .header("X-Tenant-ID", tenant)
        .send()
        .await
        .expect("resolve");
    Reply::from(resp).await
}

#[track_caller]
fn assert_wrong_region(reply: &Reply, region: &str, url: &str) {
    let body = reply.assert_problem(421, "wrong_region");
    assert_eq!(body["region"], region, "{reply:?}");
    assert_eq!(body["url"], url, "{reply:?}");
    assert_eq!(reply.headers["tenantry-region"], region, "{reply:?}");
    assert_eq!(reply.headers["tenantry-region-url"], url, "{reply:?}");
}

async fn create_in(server: &TestServer, id: &str, region: &str) -> Reply {
    server
        .post(
            "/v1/tenants",
            json!({ "id": id, "name": format!("Tenant {id}"), "region": region }),
        )
        .await
}

async fn tenant_admin_key(server: &TestServer, tenant: &str) -> String {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({ "name": "admin", "scopes": ["tenant:admin"] }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["key"].as_str().expect("key").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_live_in_their_home_region_only() {
    let (eu_db, us_db) = (region_db().await, region_db().await);
    let (eu_url, us_url) = (url_of(&eu_db), url_of(&us_db));
    let keyring = eu_db.keyring_path();
    let eu = region_server(&eu_db, "eu", ("us", &us_url), &keyring, "0s").await;
    let us = region_server(&us_db, "us", ("eu", &eu_url), &keyring, "0s").await;

    // Created in its home region, written only there.
    let created = create_in(&eu, "acme", "eu").await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(
        create_in(&us, "bolt", "us").await.status,
        StatusCode::CREATED
    );
    let (eu_pool, us_pool) = (pg(&eu_url).await, pg(&us_url).await);
    let tenants = "SELECT count(*) FROM tenants WHERE id = $1";
    assert_eq!(count(&eu_pool, tenants, "acme").await, 1);
    assert_eq!(count(&us_pool, tenants, "acme").await, 0);
    assert_eq!(count(&us_pool, tenants, "bolt").await, 1);
    assert_eq!(count(&eu_pool, tenants, "bolt").await, 0);
    let audit = "SELECT count(*) FROM audit_entries WHERE tenant_id = $1";
    assert!(count(&eu_pool, audit, "acme").await > 0);
    assert_eq!(count(&us_pool, audit, "acme").await, 0);
    // Each directory knows both.
    let directory = "SELECT count(*) FROM region_directory WHERE tenant = $1";
    for pool in [&eu_pool, &us_pool] {
        assert_eq!(count(pool, directory, "acme").await, 1);
        assert_eq!(count(pool, directory, "bolt").await, 1);
    }

    // A tenant of another region is not created here: 421 to its region.
    assert_wrong_region(&create_in(&eu, "cask", "us").await, "us", US_URL);
    create_in(&eu, "cask", "ap").await.assert_invalid("region");
    assert_eq!(count(&eu_pool, tenants, "cask").await, 0);

    // Each node rereads its directory every 100 ms here: wait until both
    // know of the other's tenant.
    for (server, tenant) in [(&us, "acme"), (&eu, "bolt")] {
        let path = format!("/v1/tenants/{tenant}");
        let mut tries = 0;
        while server.get(&path).await.status != StatusCode::MISDIRECTED_REQUEST {
            tries += 1;
            assert!(tries < 100, "{tenant} never became misdirected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Misdirected: 421 with the tenant's region and URL, body and headers.
    assert_wrong_region(&us.get("/v1/tenants/acme").await, "eu", EU_URL);
    assert_wrong_region(&us.get("/v1/tenants/acme/api-keys").await, "eu", EU_URL);
    assert_wrong_region(&eu.get("/v1/tenants/bolt").await, "us", US_URL);
    // The gateway's question: where does this tenant live?
    assert_wrong_region(&resolve_header(&us, "acme").await, "eu", EU_URL);
    let here = resolve_header(&eu, "acme").await;
    assert_eq!(here.status, StatusCode::OK, "{here:?}");
    assert_eq!(here.body["tenant"]["region"], "eu", "{here:?}");

    // acme's key means nothing in us beyond the redirect: its own tenant's
    // path is redirected, anything else is not authenticated.
    let acme_key = tenant_admin_key(&eu, "acme").await;
    assert_eq!(
        call_key(&eu, &acme_key, Method::GET, "/v1/tenants/acme")
            .await
            .status,
        StatusCode::OK
    );
    let at_us = call_key(&us, &acme_key, Method::GET, "/v1/tenants/acme").await;
    assert_wrong_region(&at_us, "eu", EU_URL);
    call_key(&us, &acme_key, Method::GET, "/v1/tenants/bolt")
        .await
        .assert_problem(401, "unauthorized");
    let verify = us.post("/v1/keys/verify", json!({ "key": acme_key })).await;
    assert_eq!(verify.body["valid"], false, "{verify:?}");
    assert_eq!(verify.body["code"], "NOT_FOUND", "{verify:?}");
    // Without any credential: 401 first, nothing about the tenant.
    us.call_as(None, Method::GET, "/v1/tenants/acme", None)
        .await
        .assert_problem(401, "unauthorized");

    // The move endpoints: operators only, foreign tenants not found.
    let bolt_key = tenant_admin_key(&us, "bolt").await;
    let mv = |key: &str, tenant: &str| {
        let (key, path) = (key.to_owned(), format!("/v1/tenants/{tenant}/move"));
        let server = &eu;
        async move {
            server
                .call_as(
                    Some(&key),
                    Method::POST,
                    &path,
                    Some(json!({ "region": "us" })),
                )
                .await
        }
    };
    mv(&acme_key, "acme")
        .await
        .assert_problem(403, "operator_required");
    assert_eq!(
        create_in(&eu, "dune", "eu").await.status,
        StatusCode::CREATED
    );
    mv(&acme_key, "dune")
        .await
        .assert_problem(404, "tenant_not_found");
    for path in [
        "/v1/tenants/dune/move",
        "/v1/tenants/dune/move/complete",
        "/v1/tenants/dune/move/abort",
    ] {
        let method = if path.ends_with("move") {
            Method::GET
        } else {
            Method::POST
        };
        call_key(&eu, &acme_key, method, path)
            .await
            .assert_problem(404, "tenant_not_found");
    }
    // bolt's key is not known in eu at all.
    call_key(&eu, &bolt_key, Method::GET, "/v1/tenants/dune/move")
        .await
        .assert_problem(401, "unauthorized");
    eu.post("/v1/tenants/nope/move", json!({ "region": "us" }))
        .await
        .assert_problem(404, "tenant_not_found");
    eu.post("/v1/tenants/acme/move", json!({ "region": "eu" }))
        .await
        .assert_invalid("region");
    eu.post("/v1/tenants/acme/move", json!({ "region": "ap" }))
        .await
        .assert_invalid("region");
    eu.post("/v1/tenants/acme/move", json!({ "region": "Not A Region" }))
        .await
        .assert_invalid("region");
    eu.post("/v1/tenants/acme/move", json!({}))
        .await
        .assert_problem(422, "validation_failed");
    eu.post("/v1/tenants/acme/move/complete", json!({}))
        .await
        .assert_problem(409, "move_conflict");
    let status = eu.get("/v1/tenants/acme/move").await;
    assert_eq!(status.status, StatusCode::OK, "{status:?}");
    assert_eq!(status.body["region"], "eu");
    assert_eq!(status.body["state"], Value::Null);
}

/// A throw-away PostgreSQL cluster of its own (the second region's), removed
/// when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bin: String,
    port: u16,
}

impl Cluster {
    fn as_postgres(cmd: &str) -> std::process::Command {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        if root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", cmd]);
            c
        } else {
            std::process::Command::new(cmd)
        }
    }

    fn start() -> Cluster {
        let bin = std::env::var("TEST_PG_BIN").ok().unwrap_or_else(|| {
            let out = std::process::Command::new("pg_config")
                .arg("--bindir")
                .output();
            out.ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "/usr/lib/postgresql/15/bin".into())
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let _ = std::process::Command::new("chown")
            .args(["postgres:postgres", &dir.path().display().to_string()])
            .status();
        let data = dir.path().join("data");
        let out = Self::as_postgres(&format!("{bin}/initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            dir.path().display()
        );
        let out = Self::as_postgres(&format!("{bin}/pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster { dir, bin, port }
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    async fn database(&self) -> TestDb {
        let name = format!("tenantry_{}", common::random_suffix());
        let admin = pg(&self.url("postgres")).await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        TestDb {
            backend: Backend::Postgres,
            dir: tempfile::tempdir().expect("temp dir"),
            url: Some(self.url(&name)),
            pg_database: Some(name),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Self::as_postgres(&format!("{}/pg_ctl", self.bin))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

async fn wait_for_state(server: &TestServer, tenant: &str, want: &str) -> Value {
    for _ in 0..600 {
        let status = server.get(&format!("/v1/tenants/{tenant}/move")).await;
        assert_eq!(
            status.status,
            StatusCode::OK,
            "{status:?}\n{}",
            server.logs()
        );
        if status.body["state"] == want {
            return status.body;
        }
        assert_ne!(status.body["state"], "failed", "{status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the move did not reach {want} within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_moves_to_another_region_across_clusters() {
    let cluster = Cluster::start();
    let eu_db = TestDb::as_superuser(Backend::Postgres).await;
    let us_db = cluster.database().await;
    let keyring = eu_db.keyring_path();
    let eu_url = eu_db.url.clone().expect("url");
    let us_url = us_db.url.clone().expect("url");
    let drain = "2s";
    let mut eu = region_server(&eu_db, "eu", ("us", &us_url), &keyring, drain).await;
    let us = region_server(&us_db, "us", ("eu", &eu_url), &keyring, drain).await;
    // The frozen tenant's 503s are logged as failed responses.
    eu.expect_warning("503 Service Unavailable");

    // acme has rows in every tenant table; zeta stays in eu.
    assert_eq!(
        create_in(&eu, "acme", "eu").await.status,
        StatusCode::CREATED
    );
    let acme_key = eu.seed_every_tenant_table("acme").await;
    assert_eq!(
        create_in(&eu, "zeta", "eu").await.status,
        StatusCode::CREATED
    );
    let zeta_key = tenant_admin_key(&eu, "zeta").await;
    let (eu_pool, us_pool) = (pg(&eu_url).await, pg(&us_url).await);
    let before = rows_per_table(&eu_pool, "acme").await;
    // The API seed fills all but a few tables (checkpoints, provisioning
    // and the delivered outbox stay empty).
    let filled = before.iter().filter(|(_, n)| *n > 0).count();
    assert!(filled + 3 >= before.len(), "{before:?}");

    let started = eu
        .post("/v1/tenants/acme/move", json!({ "region": "us" }))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
    assert_eq!(started.body["moving_to"], "us");
    // Frozen: acme's traffic is 503 + Retry-After, zeta's goes on.
    let frozen = |reply: &Reply| {
        reply.assert_problem(503, "tenant_moving");
        assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
    };
    frozen(&eu.get("/v1/tenants/acme").await);
    frozen(&call_key(&eu, &acme_key, Method::GET, "/v1/tenants/acme").await);
    frozen(&resolve_header(&eu, "acme").await);
    assert_eq!(eu.get("/v1/tenants/zeta").await.status, StatusCode::OK);
    assert_eq!(
        call_key(&eu, &zeta_key, Method::GET, "/v1/tenants/zeta")
            .await
            .status,
        StatusCode::OK
    );

    // A crash in the middle of the move (during its drain, or after the
    // copy): the restarted node finishes the copy and keeps acme frozen.
    eu.kill9().await;
    let eu = region_server(&eu_db, "eu", ("us", &us_url), &keyring, drain).await;
    eu.expect_warning("503 Service Unavailable");
    frozen(&eu.get("/v1/tenants/acme").await);
    let copied = wait_for_state(&eu, "acme", "copied").await;
    assert_eq!(copied["report"]["audit"]["ok"], true, "{copied}");
    frozen(&call_key(&eu, &acme_key, Method::GET, "/v1/tenants/acme").await);
    assert_eq!(eu.get("/v1/tenants/zeta").await.status, StatusCode::OK);
    // Meanwhile us points to eu, where acme still lives.
    assert_wrong_region(&us.get("/v1/tenants/acme").await, "eu", EU_URL);
    // The copy: every table, the same rows (the move's own audit entry and
    // checkpoint included), as the report says.
    let copy = rows_per_table(&eu_pool, "acme").await;
    assert_eq!(rows_per_table(&us_pool, "acme").await, copy);
    assert!(copy.iter().zip(&before).all(|(now, then)| now.1 >= then.1));
    let reported: Vec<(String, i64)> = copied["report"]["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            (
                t["table"].as_str().expect("table").to_owned(),
                t["rows"].as_i64().expect("rows"),
            )
        })
        .collect();
    let mut sorted = reported.clone();
    sorted[1..].sort();
    assert_eq!(sorted, copy);

    let done = eu.post("/v1/tenants/acme/move/complete", json!({})).await;
    assert_eq!(done.status, StatusCode::OK, "{done:?}");
    assert_eq!(done.body["state"], "done");
    assert_eq!(done.body["region"], "us");
    // A second completion is refused, the first one stands.
    eu.post("/v1/tenants/acme/move/complete", json!({}))
        .await
        .assert_problem(409, "move_conflict");

    // The old copy is purged; zeta is untouched.
    assert!(
        rows_per_table(&eu_pool, "acme")
            .await
            .iter()
            .all(|(_, n)| *n == 0)
    );
    assert_eq!(rows_per_table(&us_pool, "acme").await, copy);
    assert_eq!(eu.get("/v1/tenants/zeta").await.status, StatusCode::OK);

    // us serves acme, with its key, once its directory (reread every
    // TENANTRY_REGION_DIRECTORY_REFRESH) has the switch; its audit chain
    // verifies there.
    within!(
        Duration::from_secs(20),
        "us serving acme after the switch",
        call_key(&us, &acme_key, Method::GET, "/v1/tenants/acme")
            .await
            .status
            == StatusCode::OK
    );
    let served = call_key(&us, &acme_key, Method::GET, "/v1/tenants/acme").await;
    assert_eq!(served.status, StatusCode::OK, "{served:?}");
    assert_eq!(served.body["id"], "acme");
    let verified = us.get("/v1/tenants/acme/audit/verify").await;
    assert_eq!(verified.body["ok"], true, "{verified:?}");
    let resolved = resolve_header(&us, "acme").await;
    assert_eq!(resolved.status, StatusCode::OK, "{resolved:?}");
    // eu points to us.
    assert_wrong_region(&eu.get("/v1/tenants/acme").await, "us", US_URL);
    assert_wrong_region(
        &call_key(&eu, &acme_key, Method::GET, "/v1/tenants/acme").await,
        "us",
        US_URL,
    );
    assert_wrong_region(&resolve_header(&eu, "acme").await, "us", US_URL);

    // Audited in both operator chains, and both still verify.
    let actions = |pool: &sqlx::PgPool| {
        let pool = pool.clone();
        async move {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT action FROM audit_entries WHERE tenant_id = '' ORDER BY sequence",
            )
            .fetch_all(&pool)
            .await
            .expect("operator chain");
            rows.into_iter().map(|(a,)| a).collect::<Vec<_>>()
        }
    };
    let eu_actions = actions(&eu_pool).await;
    for action in [
        "tenant.move_started",
        "tenant.move_copied",
        "tenant.purged_after_move",
        "tenant.moved_out",
    ] {
        assert!(
            eu_actions.iter().any(|a| a == action),
            "{action} not in {eu_actions:?}"
        );
    }
    let us_actions = actions(&us_pool).await;
    for action in ["tenant.move_incoming", "tenant.moved_in"] {
        assert!(
            us_actions.iter().any(|a| a == action),
            "{action} not in {us_actions:?}"
        );
    }
    for server in [&eu, &us] {
        let verified = server.get("/v1/operator/audit/verify").await;
        assert_eq!(verified.body["ok"], true, "{verified:?}");
    }
    eu_pool.close().await;
    us_pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_move_leaves_the_tenant_where_it_was() {
    let (eu_db, us_db) = (region_db().await, region_db().await);
    let (eu_url, us_url) = (url_of(&eu_db), url_of(&us_db));
    let keyring = eu_db.keyring_path();
    let eu = region_server(&eu_db, "eu", ("us", &us_url), &keyring, "0s").await;
    let us = region_server(&us_db, "us", ("eu", &eu_url), &keyring, "0s").await;
    assert_eq!(
        create_in(&eu, "acme", "eu").await.status,
        StatusCode::CREATED
    );
    let key = tenant_admin_key(&eu, "acme").await;
    let started = eu
        .post("/v1/tenants/acme/move", json!({ "region": "us" }))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
    // Asking again for the same move reports it; another direction is refused.
    let again = eu
        .post("/v1/tenants/acme/move", json!({ "region": "us" }))
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{again:?}");
    wait_for_state(&eu, "acme", "copied").await;
    let us_pool = pg(&us_url).await;
    let tenants = "SELECT count(*) FROM tenants WHERE id = $1";
    assert_eq!(count(&us_pool, tenants, "acme").await, 1);

    let aborted = eu.post("/v1/tenants/acme/move/abort", json!({})).await;
    assert_eq!(aborted.status, StatusCode::OK, "{aborted:?}");
    assert_eq!(aborted.body["state"], "aborted");
    assert_eq!(count(&us_pool, tenants, "acme").await, 0);
    assert_eq!(
        call_key(&eu, &key, Method::GET, "/v1/tenants/acme")
            .await
            .status,
        StatusCode::OK
    );
    assert_wrong_region(&us.get("/v1/tenants/acme").await, "eu", EU_URL);
    us_pool.close().await;
}

/// Bad region settings stop the server at start-up, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_region_settings_refuse_to_start() {
    let db = TestDb::new(Backend::Sqlite).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("TENANTRY_REGIONS", "eu=ftp://eu.example.com")],
            "regions",
        ),
        (
            &[("TENANTRY_REGIONS", "eu=http://eu.example.com")],
            "regions",
        ),
        (
            &[("TENANTRY_REGIONS", "EU!=https://eu.example.com")],
            "regions",
        ),
        (
            &[(
                "TENANTRY_REGIONS",
                "eu=https://a.example.com,eu=https://b.example.com",
            )],
            "regions",
        ),
        (&[("TENANTRY_REGIONS", "eu")], "regions"),
        (
            &[
                ("TENANTRY_REGIONS", "eu=https://eu.example.com"),
                ("TENANTRY_REGION", "us"),
            ],
            "region (from",
        ),
        (&[("TENANTRY_REGION", "Bad Region")], "region (from"),
        (
            &[("TENANTRY_REGION_DATABASES", "us=postgres://x/y")],
            "region_databases",
        ),
        (
            &[
                (
                    "TENANTRY_REGIONS",
                    "eu=https://eu.example.com,us=https://us.example.com",
                ),
                ("TENANTRY_REGION", "eu"),
                ("TENANTRY_REGION_DATABASES", "us=mysql://x/y"),
            ],
            "region_databases",
        ),
        (
            &[
                ("TENANTRY_REGIONS", "eu=https://eu.example.com"),
                ("TENANTRY_REGION", "eu"),
                ("TENANTRY_REGION_DATABASES", "eu=postgres://x/y"),
            ],
            "region_databases",
        ),
    ];
    for (env, setting) in cases {
        let mut all = vec![("TENANTRY_ROOT_KEY", ROOT_KEY)];
        all.extend_from_slice(env);
        match TestServer::try_start(&db, &all).await {
            Ok(_) => panic!("started with {env:?}"),
            Err(output) => assert!(
                output.contains(&format!("configuration error: {setting}")),
                "{env:?}: {output}"
            ),
        }
    }
    // A loopback http URL is allowed (a local gateway, tests).
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_REGIONS", "local=http://127.0.0.1:8080"),
        ],
    )
    .await;
    assert_eq!(server.create_tenant("acme").await["region"], "local");
}

/// With no region settings nothing changes: any region name is accepted
/// and nothing is redirected (SQLite and PostgreSQL).
async fn single_region_is_unchanged(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let created = create_in(&server, "acme", "eu-west-1").await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["region"], "eu-west-1");
    assert_eq!(server.create_tenant("bolt").await["region"], "local");
    assert_eq!(server.get("/v1/tenants/acme").await.status, StatusCode::OK);
    server
        .post("/v1/tenants/acme/move", json!({ "region": "us" }))
        .await
        .assert_problem(409, "move_conflict");
}

on_both_backends!(single_region_is_unchanged);
