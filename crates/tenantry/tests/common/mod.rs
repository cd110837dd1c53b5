//! The testkit: boots the real `tenantry` binary on a free port against a
//! fresh SQLite file or a fresh PostgreSQL database, and talks HTTP to it.
//!
//! PostgreSQL tests need `TEST_PG_URL` (a superuser URL of a throw-away
//! cluster); `scripts/test` starts one and sets it.
#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ROOT_KEY: &str = "test-root-key-0123456789abcdefghijklmnop";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Instantiates each listed `async fn name(backend: Backend)` as a test on
/// SQLite (`sqlite::name`) and on PostgreSQL (`postgres::name`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Polls `$check` (an async boolean expression) until it holds; fails the
/// test if it does not within `$bound`.
#[macro_export]
macro_rules! within {
    ($bound:expr, $what:expr, $check:expr) => {{
        let started = std::time::Instant::now();
        loop {
            if $check {
                break;
            }
            assert!(
                started.elapsed() < $bound,
                "{} not seen within {:?}",
                $what,
                $bound
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }};
}

/// The warnings a server logs while its database is out (see tests/outage.rs
/// and tests/faults.rs): each names the outage, none is a fault of its own.
pub const DATABASE_OUTAGE_WARNINGS: &[&str] = &[
    "database unavailable",
    "Status code: 503",
    "slow statement",
    "invalidation listener",
    "cannot listen for cache invalidations yet",
    "readiness check failed",
    // Under load the check may wait on the write lock that a worker is
    // itself waiting for, and give up at its own bound: still 503.
    "readiness check timed out",
    // The audit checkpoint worker's pass, when it meets the outage.
    "audit checkpoint pass failed",
    "testing the connection on-release",
];

pub fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff)
}

/// The superuser URL of the test cluster.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| {
        panic!("TEST_PG_URL is not set: run the suite with ./scripts/test, which starts a PostgreSQL cluster")
    })
}

/// Replaces the database name in a postgres URL.
pub fn pg_url_for(database: &str, user: Option<&str>) -> String {
    let admin = pg_admin_url();
    let (base, _) = admin.rsplit_once('/').expect("URL has a database");
    let base = match user {
        Some(user) => {
            let (scheme, rest) = base.split_once("://").expect("scheme");
            let host = rest.split_once('@').map(|(_, h)| h).unwrap_or(rest);
            format!("{scheme}://{user}@{host}")
        }
        None => base.to_owned(),
    };
    format!("{base}/{database}")
}

pub async fn pg_admin() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&pg_admin_url())
        .await
        .expect("connect to the test cluster")
}

/// Creates Tenantry's two transaction roles on the test cluster if missing
/// (what an administrator does once for an ordinary owner role).
pub async fn ensure_tenantry_roles(admin: &sqlx::PgPool) {
    for role in ["tenantry_app", "tenantry_operator"] {
        sqlx::query(&format!(
            "DO $$ BEGIN CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ))
        .execute(admin)
        .await
        .expect("create role");
    }
}

/// Creates an ordinary login role (no superuser, no BYPASSRLS, no
/// CREATEROLE) granted the roles Tenantry's transactions switch to: an
/// owner as a production administrator would set it up.
pub async fn create_owner_role(role: &str) {
    let admin = pg_admin().await;
    sqlx::query(&format!(
        "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS"
    ))
    .execute(&admin)
    .await
    .expect("create owner role");
    ensure_tenantry_roles(&admin).await;
    sqlx::query(&format!(
        "GRANT tenantry_app, tenantry_operator TO \"{role}\""
    ))
    .execute(&admin)
    .await
    .expect("grant roles");
    admin.close().await;
}

/// A fresh database for one test: an SQLite file in a temporary directory,
/// or a new PostgreSQL database on the test cluster.
pub struct TestDb {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    /// PostgreSQL: the database name.
    pub pg_database: Option<String>,
    /// PostgreSQL: the URL the server connects with.
    pub url: Option<String>,
}

impl TestDb {
    /// A fresh database. PostgreSQL: owned by the cluster's superuser, or,
    /// when `TEST_PG_OWNER_ROLE` is set (`scripts/test` runs the PostgreSQL
    /// tests a second time so), by a fresh ordinary login role: the
    /// production shape, under which nothing bypasses row-level security.
    pub async fn new(backend: Backend) -> TestDb {
        let as_owner = std::env::var("TEST_PG_OWNER_ROLE").is_ok_and(|v| !v.is_empty());
        if backend == Backend::Postgres && as_owner {
            let role = format!("owner_{}", random_suffix());
            create_owner_role(&role).await;
            return Self::with_owner(backend, Some(&role)).await;
        }
        Self::with_owner(backend, None).await
    }

    /// A fresh database owned by the superuser, whatever `TEST_PG_OWNER_ROLE`
    /// says (for tests about the superuser case itself).
    pub async fn as_superuser(backend: Backend) -> TestDb {
        Self::with_owner(backend, None).await
    }

    /// PostgreSQL: a database owned by `owner` (a login role), which the
    /// server then connects as. `None`: the cluster's superuser.
    pub async fn with_owner(backend: Backend, owner: Option<&str>) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                dir,
                pg_database: None,
                url: None,
            },
            Backend::Postgres => {
                let name = format!("tenantry_{}", random_suffix());
                let admin = pg_admin().await;
                if owner.is_some() {
                    // The migrations of a role that cannot create roles need
                    // them to exist already.
                    ensure_tenantry_roles(&admin).await;
                }
                let owner_clause = owner.map(|o| format!(" OWNER \"{o}\"")).unwrap_or_default();
                sqlx::query(&format!("CREATE DATABASE \"{name}\"{owner_clause}"))
                    .execute(&admin)
                    .await
                    .expect("create database");
                admin.close().await;
                let url = pg_url_for(&name, owner);
                TestDb {
                    backend,
                    dir,
                    pg_database: Some(name),
                    url: Some(url),
                }
            }
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The environment that points the server (or a command) at this database.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![(
            "TENANTRY_DATA_DIR".to_owned(),
            self.data_dir().display().to_string(),
        )];
        if let Some(url) = &self.url {
            env.push(("TENANTRY_DATABASE_URL".to_owned(), url.clone()));
            // With PostgreSQL a master key is required: a keyring file in the
            // test's directory (SQLite generates one into its data directory).
            env.push((
                "TENANTRY_MASTER_KEY_FILE".to_owned(),
                self.keyring_path().display().to_string(),
            ));
        }
        env
    }

    /// The keyring file: `<dir>/keyring` (PostgreSQL, made on first use) or
    /// the generated `<data dir>/master.key` (SQLite).
    pub fn keyring_path(&self) -> PathBuf {
        match self.backend {
            Backend::Sqlite => self.data_dir().join("master.key"),
            Backend::Postgres => {
                let path = self.dir.path().join("keyring");
                if !path.exists() {
                    use base64::Engine;
                    let seed = random_suffix();
                    let key: [u8; 32] = std::array::from_fn(|i| {
                        seed.as_bytes()[i % seed.len()]
                            .wrapping_mul(31)
                            .wrapping_add(i as u8)
                    });
                    let text = base64::engine::general_purpose::STANDARD.encode(key);
                    std::fs::write(&path, format!("{text}\n")).expect("write keyring");
                }
                path
            }
        }
    }

    /// A superuser connection to this PostgreSQL database.
    pub async fn pg_superuser(&self) -> sqlx::PgPool {
        let name = self
            .pg_database
            .as_ref()
            .expect("a PostgreSQL test database");
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&pg_url_for(name, None))
            .await
            .expect("connect")
    }

    /// A read-only connection to the SQLite file, beside the server.
    pub async fn sqlite_reader(&self) -> sqlx::SqlitePool {
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.data_dir().join("tenantry.db"))
                    .read_only(true),
            )
            .await
            .expect("open sqlite")
    }

    /// Counts the rows of `table` whose tenant_id is `tenant`, bypassing
    /// isolation (SQLite file, or PostgreSQL superuser).
    pub async fn count_rows(&self, table: &str, tenant: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table} WHERE tenant_id = $1");
        match self.backend {
            Backend::Sqlite => {
                let pool = self.sqlite_reader().await;
                let (n,): (i64,) = sqlx::query_as(&sql)
                    .bind(tenant)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
                pool.close().await;
                n
            }
            Backend::Postgres => {
                let pool = self.pg_superuser().await;
                let (n,): (i64,) = sqlx::query_as(&sql)
                    .bind(tenant)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
                pool.close().await;
                n
            }
        }
    }

    /// The audit entries of a chain (`tenant`, or `""` for the operator's),
    /// in sequence order, as stored, bypassing Tenantry: each row as a JSON
    /// object of its columns (the JSON columns parsed).
    pub async fn audit_rows(&self, tenant: &str) -> Vec<Value> {
        type Row = (
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
        );
        let sql = "SELECT sequence, id, actor_type, actor_id, action, targets, outcome, request, \
                   changes, metadata FROM audit_entries WHERE tenant_id = $1 ORDER BY sequence";
        let rows: Vec<Row> = match self.backend {
            Backend::Sqlite => {
                let pool = self.sqlite_reader().await;
                let rows = sqlx::query_as(sql)
                    .bind(tenant)
                    .fetch_all(&pool)
                    .await
                    .expect("audit rows");
                pool.close().await;
                rows
            }
            Backend::Postgres => {
                let pool = self.pg_superuser().await;
                let rows = sqlx::query_as(sql)
                    .bind(tenant)
                    .fetch_all(&pool)
                    .await
                    .expect("audit rows");
                pool.close().await;
                rows
            }
        };
        let json = |text: &str| serde_json::from_str::<Value>(text).expect("audit JSON column");
        rows.into_iter()
            .map(|(sequence, id, actor_type, actor_id, action, targets, outcome, request, changes, metadata)| {
                serde_json::json!({
                    "sequence": sequence, "id": id,
                    "actor": {"type": actor_type, "id": actor_id},
                    "action": action, "targets": json(&targets), "outcome": outcome,
                    "request": json(&request), "changes": json(&changes), "metadata": json(&metadata),
                })
            })
            .collect()
    }

    /// Runs one SQL statement on the database, bypassing Tenantry (SQLite
    /// file, or PostgreSQL superuser); returns rows affected.
    pub async fn exec(&self, sql: &str) -> u64 {
        match self.backend {
            Backend::Sqlite => {
                let path = self.data_dir().join("tenantry.db");
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::new()
                            .filename(path)
                            .busy_timeout(Duration::from_secs(10)),
                    )
                    .await
                    .expect("open sqlite");
                let n = sqlx::query(sql)
                    .execute(&pool)
                    .await
                    .expect("exec")
                    .rows_affected();
                pool.close().await;
                n
            }
            Backend::Postgres => {
                let pool = self.pg_superuser().await;
                let n = sqlx::query(sql)
                    .execute(&pool)
                    .await
                    .expect("exec")
                    .rows_affected();
                pool.close().await;
                n
            }
        }
    }

    /// Every byte the database holds: the SQLite files, or a `pg_dump`.
    pub async fn raw_bytes(&self) -> Vec<u8> {
        match self.backend {
            Backend::Sqlite => {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(self.data_dir())
                    .expect("data dir")
                    .flatten()
                {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with("tenantry.db") {
                        all.extend(std::fs::read(entry.path()).expect("read"));
                    }
                }
                all
            }
            Backend::Postgres => {
                let bin = std::env::var("TEST_PG_BIN")
                    .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
                let name = self.pg_database.as_ref().expect("pg database");
                let out = Command::new(format!("{bin}/pg_dump"))
                    .arg("--dbname")
                    .arg(pg_url_for(name, None))
                    .output()
                    .await
                    .expect("pg_dump");
                assert!(
                    out.status.success(),
                    "pg_dump: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }

    /// Runs a `tenantry` command (e.g. `doctor`) against this database.
    pub async fn run_command(
        &self,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> (i32, String, String) {
        let mut cmd = base_command(self, extra_env);
        cmd.args(args);
        let out = cmd.output().await.expect("run tenantry");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl TestDb {
    /// A `tenantry` command against this database, not started (to run
    /// several at once).
    pub fn command(&self, extra_env: &[(&str, &str)]) -> Command {
        base_command(self, extra_env)
    }
}

fn base_command(db: &TestDb, extra_env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    // A clean environment: only what the test says (no stray TENANTRY_*).
    cmd.env_clear();
    for var in ["PATH", "HOME", "TMPDIR"] {
        if let Ok(value) = std::env::var(var) {
            cmd.env(var, value);
        }
    }
    cmd.current_dir(db.dir.path());
    cmd.env("TENANTRY_LOG", "json")
        .env("TENANTRY_LOG_LEVEL", "info");
    for (k, v) in db.env() {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

/// A running `tenantry serve` process.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    /// Every line the process wrote to stdout and stderr.
    pub output: Arc<Mutex<Vec<String>>>,
    /// Warnings and errors this test expects the server to log (substrings
    /// of the line); any other fails the test when the server is dropped.
    expected_warnings: Mutex<Vec<String>>,
}

/// Warnings every server may log: SQLite mode generating its master key.
const BENIGN_WARNINGS: &[&str] = &["master.key", "back it up"];

impl TestServer {
    /// Starts the server with the test root key.
    pub async fn start(db: &TestDb) -> TestServer {
        Self::start_with(db, &[("TENANTRY_ROOT_KEY", ROOT_KEY)]).await
    }

    pub async fn start_with(db: &TestDb, env: &[(&str, &str)]) -> TestServer {
        match Self::try_start(db, env).await {
            Ok(server) => server,
            Err(output) => panic!("server did not start:\n{output}"),
        }
    }

    /// Starts the server; on failure returns everything it printed.
    pub async fn try_start(db: &TestDb, env: &[(&str, &str)]) -> Result<TestServer, String> {
        let mut cmd = base_command(db, env);
        // A free port, unless the test names one (a node behind a balancer
        // restarts on its own port).
        if !env.iter().any(|(k, _)| *k == "TENANTRY_LISTEN") {
            cmd.env("TENANTRY_LISTEN", "127.0.0.1:0");
        }
        cmd.arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn tenantry");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, mut addr_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(stderr),
        ] {
            let output = output.clone();
            let addr_tx = addr_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(at) = line.find("listening on http://") {
                        let rest = &line[at + "listening on http://".len()..];
                        let addr: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                            .collect();
                        let _ = addr_tx.send(addr);
                    }
                    output.lock().expect("lock").push(line);
                }
            });
        }
        drop(addr_tx);
        let addr = tokio::time::timeout(Duration::from_secs(60), addr_rx.recv()).await;
        match addr {
            Ok(Some(addr)) => Ok(TestServer {
                base: format!("http://{addr}"),
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("client"),
                child: Some(child),
                output,
                expected_warnings: Mutex::new(Vec::new()),
            }),
            _ => {
                let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
                let _ = child.kill().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(output.lock().expect("lock").join("\n"))
            }
        }
    }

    /// A client of a server this test did not start, such as a load
    /// balancer in front of several nodes: every request helper works on it;
    /// it has no process and no log.
    pub fn remote(base: &str) -> TestServer {
        TestServer {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            child: None,
            output: Arc::new(Mutex::new(Vec::new())),
            expected_warnings: Mutex::new(Vec::new()),
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills the process at once (SIGKILL): no shutdown, no flush.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit code.
    pub async fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .ok()?
            .ok()?;
        status.code()
    }

    /// Declares a warning or error this test provokes on purpose (a
    /// substring of its log line).
    pub fn expect_warning(&self, substring: &str) {
        self.expected_warnings
            .lock()
            .expect("lock")
            .push(substring.to_owned());
    }

    /// The WARN and ERROR lines of the server's log that nobody expected.
    pub fn unexpected_warnings(&self) -> Vec<String> {
        let expected = self.expected_warnings.lock().expect("lock").clone();
        self.output
            .lock()
            .expect("lock")
            .iter()
            .filter(|line| {
                let level = serde_json::from_str::<Value>(line)
                    .ok()
                    .and_then(|v| v["level"].as_str().map(str::to_owned));
                let serious = match level {
                    Some(level) => level == "WARN" || level == "ERROR",
                    // Not a JSON log line (pretty format, or a panic).
                    None => {
                        line.contains(" WARN ")
                            || line.contains(" ERROR ")
                            || line.contains("panicked")
                    }
                };
                serious
                    && !BENIGN_WARNINGS.iter().any(|b| line.contains(b))
                    && !expected.iter().any(|e| line.contains(e.as_str()))
            })
            .cloned()
            .collect()
    }

    pub fn logs(&self) -> String {
        self.output.lock().expect("lock").join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request as the operator (root key), with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(Some(ROOT_KEY), method, path, body).await
    }

    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Reply::from(req.send().await.expect("request")).await
    }

    /// Polls the keyring status (as root) until nothing waits to be
    /// rewrapped, bounded at 30 s; returns that status.
    pub async fn keyring_rewrapped(&self) -> Value {
        for _ in 0..300 {
            let status = self.get("/v1/operator/keyring").await.body;
            if status["rewrap_pending"] == 0 {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the rewrap did not finish within 30 s");
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn put_settings(&self, tenant: &str, category: &str, body: Value) -> Reply {
        self.call(
            Method::PUT,
            &format!("/v1/tenants/{tenant}/settings/{category}"),
            Some(body),
        )
        .await
    }

    /// Creates a tenant and asserts it was created.
    pub async fn create_tenant(&self, id: &str) -> Value {
        let reply = self
            .post(
                "/v1/tenants",
                serde_json::json!({ "id": id, "name": format!("Tenant {id}") }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.body
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub async fn from(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a `503` problem with this code that says when to try again
    /// (`Retry-After`, at least a second).
    #[track_caller]
    pub fn assert_retry_later(&self, code: &str) {
        self.assert_problem(503, code);
        let retry = self
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(retry.is_some_and(|s| s >= 1), "Retry-After: {self:?}");
    }

    /// Asserts a problem+json answer with this status and code; returns the body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status: {self:?}");
        assert_eq!(self.content_type(), "application/problem+json", "{self:?}");
        assert_eq!(self.body["code"], code, "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "{self:?}"
        );
        &self.body
    }

    /// Asserts a 422 naming `field`.
    #[track_caller]
    pub fn assert_invalid(&self, field: &str) {
        let body = self.assert_problem(422, "validation_failed");
        assert_eq!(body["field"], field, "{self:?}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        // A server that logged a warning or error the test did not provoke
        // (a failed purge or rewrap pass, a panic) fails the test.
        if !std::thread::panicking() {
            let unexpected = self.unexpected_warnings();
            assert!(
                unexpected.is_empty(),
                "the server logged warnings or errors this test did not expect \
                 (declare provoked ones with expect_warning):\n{}",
                unexpected.join("\n")
            );
        }
    }
}

pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Sends raw bytes to the server and returns what it answers, read until it
/// closes the connection or goes quiet.
pub async fn raw_http(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TestDb {
    /// Every table with a `tenant_id` column, read from the catalog, so a
    /// table added later is covered without being listed here.
    pub async fn tenant_tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = match self.backend {
            Backend::Sqlite => {
                let pool = self.sqlite_reader().await;
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c \
                     WHERE m.type = 'table' AND c.name = 'tenant_id'",
                )
                .fetch_all(&pool)
                .await
                .expect("catalog");
                pool.close().await;
                rows.into_iter().map(|(t,)| t).collect()
            }
            Backend::Postgres => {
                let pool = self.pg_superuser().await;
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT table_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND column_name = 'tenant_id'",
                )
                .fetch_all(&pool)
                .await
                .expect("catalog");
                pool.close().await;
                rows.into_iter().map(|(t,)| t).collect()
            }
        };
        tables.sort();
        tables
    }
}

impl TestServer {
    /// Gives `tenant` at least one row in every tenant-scoped table, through
    /// the API: a domain, a used key, a revealed credential, settings, a
    /// configuration version, usage events with aggregates and subjects, and a
    /// quota alert. Returns the tenant's key.
    pub async fn seed_every_tenant_table(&self, tenant: &str) -> String {
        use serde_json::json;
        let ok = |reply: &Reply, what: &str| {
            assert!(reply.status.is_success(), "{what}: {reply:?}");
        };
        ok(
            &self
                .post(
                    &format!("/v1/tenants/{tenant}/domains"),
                    json!({"domain": format!("{tenant}-seed.example.org")}),
                )
                .await,
            "domain",
        );
        let key = self
            .post(
                &format!("/v1/tenants/{tenant}/api-keys"),
                json!({"name": "seed", "scopes": ["tenant:admin"]}),
            )
            .await;
        ok(&key, "key");
        let key = key.body["key"].as_str().expect("key").to_owned();
        ok(
            &self
                .call_as(
                    Some(&key),
                    Method::GET,
                    &format!("/v1/tenants/{tenant}"),
                    None,
                )
                .await,
            "key use",
        );
        // A tenant caller's Idempotency-Key.
        ok(
            &Reply::from(
                self.client
                    .post(self.url(&format!("/v1/tenants/{tenant}/domains")))
                    .bearer_auth(&key)
                    .header("Idempotency-Key", "seed")
                    .json(&json!({"domain": format!("{tenant}-idem.example.org")}))
                    .send()
                    .await
                    .expect("request"),
            )
            .await,
            "idempotent request",
        );
        let credential = self
            .post(
                &format!("/v1/tenants/{tenant}/credentials"),
                json!({"kind": "generic", "name": "seed", "data": {"api_key": "seed-secret-value-123456"}}),
            )
            .await;
        ok(&credential, "credential");
        let credential = credential.body["id"].as_str().expect("id").to_owned();
        ok(
            &self
                .post(
                    &format!("/v1/tenants/{tenant}/credentials/{credential}/reveal"),
                    json!({}),
                )
                .await,
            "reveal",
        );
        ok(
            &self
                .put_settings(tenant, "mail", json!({"password": "seed-password-123456"}))
                .await,
            "settings",
        );
        ok(
            &self
                .patch(
                    &format!("/v1/tenants/{tenant}/config"),
                    json!({"branding": {"company_name": "Seed"}}),
                )
                .await,
            "config",
        );
        ok(
            &self
                .post(
                    "/v1/usage/events",
                    json!({"events": [
                        {"id": "seed-1", "tenant_id": tenant, "meter": "messages_inbound", "quantity": 3},
                        {"id": "seed-2", "tenant_id": tenant, "meter": "active_conversations", "subject": "conv-seed"}
                    ]}),
                )
                .await,
            "usage",
        );
        ok(
            &self
                .post(
                    "/v1/quotas/check",
                    json!({"tenant_id": tenant, "meter": "messages_outbound", "quantity": 900, "consume": true}),
                )
                .await,
            "quota",
        );
        // A member (issue 13), of an identity provider of its own.
        let provider = self
            .post(
                "/v1/identity-providers",
                json!({"issuer": format!("https://seed-{tenant}.example/"), "audiences": ["app"],
                       "algorithms": ["EdDSA"], "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519",
                       "kid": "seed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}),
            )
            .await;
        ok(&provider, "identity provider");
        let member = format!(
            "{}:seed-user",
            provider.body["id"].as_str().unwrap_or_default()
        );
        ok(
            &self
                .call(
                    reqwest::Method::PUT,
                    &format!("/v1/tenants/{tenant}/members/{member}"),
                    Some(json!({"roles": ["member"]})),
                )
                .await,
            "member",
        );
        // A webhook endpoint whose host does not resolve: its messages and
        // their failed attempts (the outbox is emptied by the worker).
        let endpoint = self
            .post(
                &format!("/v1/tenants/{tenant}/webhook-endpoints"),
                json!({"url": "https://webhook-seed.invalid/hook"}),
            )
            .await;
        ok(&endpoint, "webhook endpoint");
        let endpoint = endpoint.body["id"].as_str().expect("id").to_owned();
        let messages = format!("/v1/tenants/{tenant}/webhook-endpoints/{endpoint}/messages");
        let mut attempted = false;
        for _ in 0..300 {
            let page = self.get(&messages).await;
            if page.body["data"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["attempts"].as_i64() > Some(0)))
            {
                attempted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(attempted, "no delivery attempt was recorded");
        self.seed_inbound(tenant).await;
        key
    }

    /// Inbound rows (issue 11): a WhatsApp number of the tenant's own, a
    /// signed delivery with a message and a status, and a widget.
    pub async fn seed_inbound(&self, tenant: &str) {
        use hmac::Mac;
        use serde_json::json;
        let n: u64 = tenant
            .bytes()
            .fold(11u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)))
            % 1_000_000_000;
        let (waba, phone, secret) = (format!("7{n:09}"), format!("8{n:09}"), "seed-app-secret");
        let credential = self
            .post(
                &format!("/v1/tenants/{tenant}/credentials"),
                json!({"kind": "whatsapp", "name": "seed", "data": {
                    "business_account_id": waba, "phone_number_id": phone,
                    "access_token": "EAAseed", "app_secret": secret, "verify_token": "seed-verify"}}),
            )
            .await;
        assert!(
            credential.status.is_success(),
            "whatsapp credential: {credential:?}"
        );
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"value":{{"metadata":{{"phone_number_id":"{phone}"}},"contacts":[{{"wa_id":"15550001","profile":{{"name":"Seed"}}}}],"messages":[{{"from":"15550001","id":"wamid.seed-in","timestamp":"1767225600","type":"text","text":{{"body":"hi"}}}}],"statuses":[{{"id":"wamid.seed-out","status":"read","timestamp":"1767225601","recipient_id":"15550001"}}]}},"field":"messages"}}]}}]}}"#
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("hmac");
        mac.update(body.as_bytes());
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let delivered = self
            .client
            .post(self.url(&format!("/v1/webhooks/whatsapp/{tenant}")))
            .header("x-hub-signature-256", format!("sha256={sig}"))
            .body(body)
            .send()
            .await
            .expect("delivery");
        assert!(
            delivered.status().is_success(),
            "delivery: {}",
            delivered.status()
        );
        let widget = self
            .post(
                &format!("/v1/tenants/{tenant}/widgets"),
                json!({"name": "seed", "allowed_origins": ["https://seed.example"]}),
            )
            .await;
        assert!(widget.status.is_success(), "widget: {widget:?}");
        let registered = self
            .post(
                &format!("/v1/tenants/{tenant}/messages"),
                json!({"channel": "sms", "provider": "twilio", "provider_message_id": format!("SMseed{n}")}),
            )
            .await;
        assert!(registered.status.is_success(), "message: {registered:?}");
    }
}

/// A lock held on the database from outside the server, until released:
/// SQLite's write lock (`BEGIN EXCLUSIVE`: writes wait, WAL readers do not),
/// or a PostgreSQL `ACCESS EXCLUSIVE` lock on one table (everything waits).
pub enum DbLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl DbLock {
    pub async fn take(db: &TestDb, pg_table: &str) -> DbLock {
        use sqlx::{Connection, Executor};
        match db.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(db.data_dir().join("tenantry.db"))
                    .busy_timeout(Duration::from_secs(10));
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .expect("open sqlite");
                conn.execute("BEGIN EXCLUSIVE").await.expect("lock");
                DbLock::Sqlite(conn)
            }
            Backend::Postgres => {
                let name = db.pg_database.as_ref().expect("pg database");
                let mut conn = sqlx::PgConnection::connect(&pg_url_for(name, None))
                    .await
                    .expect("connect");
                conn.execute("BEGIN").await.expect("begin");
                conn.execute(&*format!("LOCK TABLE {pg_table} IN ACCESS EXCLUSIVE MODE"))
                    .await
                    .expect("lock");
                DbLock::Postgres(conn)
            }
        }
    }

    pub async fn release(self) {
        use sqlx::{Connection, Executor};
        match self {
            DbLock::Sqlite(mut conn) => {
                conn.execute("ROLLBACK").await.expect("unlock");
                conn.close().await.expect("close");
            }
            DbLock::Postgres(mut conn) => {
                conn.execute("ROLLBACK").await.expect("unlock");
                conn.close().await.expect("close");
            }
        }
    }
}

impl TestDb {
    /// Gives `tenant` an audit entry and a checkpoint row through the store
    /// itself (until every change records its entry, and since checkpoints
    /// come from a worker on a schedule), so tests of "every tenant table"
    /// cover the audit tables. The checkpoint is a placeholder, not signed.
    #[allow(clippy::disallowed_methods)] // Test set-up below the server: writes the store directly.
    pub async fn seed_audit_chain(&self, tenant: &str) {
        use tenantry_core::audit::{AuditActor, AuditDraft, Outcome, RequestInfo};
        let options = match self.backend {
            Backend::Sqlite => tenantry_store::DatabaseOptions::Sqlite {
                path: self.data_dir().join("tenantry.db"),
                max_readers: 1,
                timeout: Duration::from_secs(20),
            },
            Backend::Postgres => tenantry_store::DatabaseOptions::Postgres {
                url: self.url.clone().expect("url"),
                max_connections: 2,
                timeout: Duration::from_secs(20),
            },
        };
        let mut store = tenantry_store::Store::connect(&options)
            .await
            .expect("connect");
        store.prepare().await.expect("prepare");
        let id = tenantry_core::TenantId::parse(tenant).expect("tenant id");
        let mut tx = store.tenant_write(&id).await.expect("tx");
        let draft = AuditDraft {
            actor: AuditActor::root(),
            action: "test.seeded".into(),
            targets: vec![],
            outcome: Outcome::Success,
            request: RequestInfo::default(),
            changes: serde_json::json!({}),
            metadata: serde_json::json!({}),
        };
        let now = chrono::Utc::now();
        let entry = tx
            .append_audit(format!("aud_seed_{}", random_suffix()), &draft, now)
            .await
            .expect("append");
        tx.insert_audit_checkpoint(&tenantry_store::StoredCheckpoint {
            slot: -1,
            size: entry.sequence,
            head_hash: entry.hash,
            created_at: now,
            key_id: "00000000".into(),
            note: "placeholder\n".into(),
        })
        .await
        .expect("checkpoint");
        tx.commit().await.expect("commit");
        store.close().await;
    }
}

impl TestDb {
    /// Gives `tenant` a row in `provisioning_workflows` (a finished
    /// workflow, as the API cannot start one for an existing tenant), so
    /// tests of "every tenant table" cover it.
    pub async fn seed_provisioning_workflow(&self, tenant: &str) {
        let sql = format!(
            "INSERT INTO provisioning_workflows (tenant_id, id, status, spec, steps, created_by, \
             next_run_ms, created_ms, updated_ms) \
             VALUES ('{tenant}', 'prov_seed_{tenant}', 'succeeded', '{{}}', '[]', 'root', 0, 0, 0)"
        );
        assert_eq!(self.exec(&sql).await, 1);
    }
}
