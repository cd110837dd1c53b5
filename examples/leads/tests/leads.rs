//! The leads example, end to end: a real Tenantry (in-process, on a free
//! port, over SQLite or PostgreSQL), the leads service behind
//! `tenantry-layer` on its own port, and its PostgreSQL database under
//! row-level security, reached as an ordinary role.
//!
//! Needs `TEST_PG_URL` (a superuser URL of a throw-away cluster;
//! `scripts/test` starts one).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tenantry_layer::{LayerConfig, ServiceKey, Strategy, TenantContext, TenantJob, TenantryLayer};

const ROOT_KEY: &str = "leads-test-root-key-0123456789abcdefghijkl";

/// How long a revocation or suspension may take to be honoured before the
/// test fails: generous (the goal is one second; `bench/layer.sh` measures).
const PUSH_BOUND: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod tenantry_on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Backend::Sqlite).await }
            )*
        }
        mod tenantry_on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(super::Backend::Postgres).await }
            )*
        }
    };
}

on_both_backends!(
    tenants_never_see_or_change_each_others_rows,
    a_buggy_handler_without_where_cannot_leak,
    a_query_without_tenant_context_sees_nothing,
    a_revoked_key_and_a_suspended_tenant_are_refused_by_push,
    the_context_reaches_deep_code_spawned_tasks_and_jobs,
    refusals_are_problem_json,
);

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff)
}

fn admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .expect("TEST_PG_URL is not set: run with ./scripts/test, which starts PostgreSQL")
}

fn url_for(database: &str, user: Option<&str>) -> String {
    let admin = admin_url();
    let (base, _) = admin.rsplit_once('/').unwrap();
    let base = match user {
        Some(user) => {
            let (scheme, rest) = base.split_once("://").unwrap();
            let host = rest.split_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{user}@{host}")
        }
        None => base.to_owned(),
    };
    format!("{base}/{database}")
}

async fn create_database(prefix: &str) -> String {
    let admin = PgPool::connect(&admin_url()).await.unwrap();
    let name = format!("{prefix}_{}", suffix());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    name
}

/// A running Tenantry, in this process.
struct Tenantry {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Tenantry {
    async fn start(backend: Backend) -> Tenantry {
        let dir = tempfile::tempdir().unwrap();
        let mut env = vec![
            (
                "TENANTRY_DATA_DIR".to_owned(),
                dir.path().join("data").display().to_string(),
            ),
            ("TENANTRY_ROOT_KEY".to_owned(), ROOT_KEY.to_owned()),
        ];
        if backend == Backend::Postgres {
            use base64::Engine;
            let name = create_database("tenantry_leads").await;
            let keyring = dir.path().join("keyring");
            let key: [u8; 32] =
                std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
            std::fs::write(
                &keyring,
                format!(
                    "{}\n",
                    base64::engine::general_purpose::STANDARD.encode(key)
                ),
            )
            .unwrap();
            env.push(("TENANTRY_DATABASE_URL".to_owned(), url_for(&name, None)));
            env.push((
                "TENANTRY_MASTER_KEY_FILE".to_owned(),
                keyring.display().to_string(),
            ));
        }
        let config = tenantry_server::config::Config::from_sources(None, &env).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        // The server's future is not Send: it gets a thread and a runtime of
        // its own, as in the binary's main.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                if let Err(err) = tenantry_server::run(config, listener, async {
                    let _ = stopped.await;
                })
                .await
                {
                    eprintln!("tenantry stopped: {err:#}");
                }
            });
        });
        let base = format!("http://{}", addr_rx.recv().unwrap());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while http.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "Tenantry did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Tenantry {
            base,
            http,
            stop: Some(stop),
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ROOT_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn create_tenant(&self, id: &str) {
        let (status, body) = self
            .post("/v1/tenants", json!({"id": id, "name": id}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// A tenant API key: (secret, id).
    async fn create_key(&self, tenant: &str) -> (String, String) {
        let (status, body) = self
            .post(
                &format!("/v1/tenants/{tenant}/api-keys"),
                json!({"name": "app", "scopes": ["tenant:read"]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["key"].as_str().unwrap().to_owned(),
            body["id"].as_str().unwrap().to_owned(),
        )
    }
}

impl Drop for Tenantry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The leads database: its schema installed by the superuser, the service
/// connected as a fresh ordinary role.
struct LeadsDb {
    /// As the service's role.
    app: PgPool,
    /// Superuser, for checks that bypass the service.
    admin: PgPool,
}

impl LeadsDb {
    async fn new() -> LeadsDb {
        let name = create_database("leads").await;
        let role = format!("leads_app_{}", suffix());
        let admin = PgPool::connect(&url_for(&name, None)).await.unwrap();
        sqlx::query(&format!(
            "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE"
        ))
        .execute(&admin)
        .await
        .unwrap();
        let admin_url = url_for(&name, None);
        leads::setup(&admin_url, &role).await.unwrap();
        // `tenantry app-db doctor` finds nothing to say about the result.
        assert!(
            leads::isolation_is_sound(&admin_url, &role).await.unwrap(),
            "app-db doctor reported findings on the leads tables"
        );
        let app = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&url_for(&name, Some(&role)))
            .await
            .unwrap();
        LeadsDb { app, admin }
    }
}

/// The whole set-up: Tenantry, tenants acme and beta with a key each, the
/// leads service behind the layer.
struct World {
    tenantry: Tenantry,
    db: LeadsDb,
    layer: TenantryLayer,
    base: String,
    http: reqwest::Client,
    acme: (String, String),
    beta: (String, String),
}

impl World {
    async fn new(backend: Backend) -> World {
        let tenantry = Tenantry::start(backend).await;
        tenantry.create_tenant("acme").await;
        tenantry.create_tenant("beta").await;
        let acme = tenantry.create_key("acme").await;
        let beta = tenantry.create_key("beta").await;
        let db = LeadsDb::new().await;
        let config = LayerConfig::new(&tenantry.base, ServiceKey::new(ROOT_KEY))
            .strategies(&[Strategy::ApiKey, Strategy::Token]);
        let layer = TenantryLayer::new(config).unwrap();
        assert!(
            layer.wait_connected(Duration::from_secs(20)).await,
            "the layer's change stream did not connect"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = leads::app(db.app.clone(), leads::Auth::Tenantry(layer.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        World {
            tenantry,
            db,
            layer,
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            acme,
            beta,
        }
    }

    async fn call(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            content_type,
        )
    }

    async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let (s, b, _) = self.call(Some(key), reqwest::Method::GET, path, None).await;
        (s, b)
    }

    async fn post(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, b, _) = self
            .call(Some(key), reqwest::Method::POST, path, Some(body))
            .await;
        (s, b)
    }

    /// Creates a campaign, a lead in it and a call on the lead for the key's
    /// tenant: (campaign id, lead id).
    async fn seed(&self, key: &str, name: &str) -> (i64, i64) {
        let (s, campaign) = self
            .post(key, "/campaigns", json!({"name": format!("{name} spring")}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{campaign}");
        let campaign = campaign["id"].as_i64().unwrap();
        let (s, lead) = self
            .post(key, "/leads", json!({"name": name, "email": format!("{name}@example.com"), "campaign_id": campaign}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{lead}");
        let lead = lead["id"].as_i64().unwrap();
        let (s, call) = self
            .post(
                key,
                "/calls",
                json!({"lead_id": lead, "outcome": "answered"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{call}");
        (campaign, lead)
    }

    /// Rows of `table` per tenant, as the superuser sees them.
    async fn rows(&self, table: &str, tenant: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        ))
        .bind(tenant)
        .fetch_one(&self.db.admin)
        .await
        .unwrap();
        n
    }
}

fn tenants_of(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["tenant_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn tenants_never_see_or_change_each_others_rows(backend: Backend) {
    let w = World::new(backend).await;
    let (a, b) = (w.acme.0.clone(), w.beta.0.clone());
    let (a_campaign, a_lead) = w.seed(&a, "alice").await;
    let (_, b_lead) = w.seed(&b, "bob").await;

    for path in ["/leads", "/campaigns", "/calls"] {
        let (s, body) = w.get(&a, path).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(tenants_of(&body), vec!["acme"], "{path}: {body}");
        let (_, body) = w.get(&b, path).await;
        assert_eq!(tenants_of(&body), vec!["beta"], "{path}: {body}");
    }
    // beta cannot read, change, delete or attach to acme's rows: 404, as
    // if they did not exist.
    let (s, _) = w.get(&b, &format!("/leads/{a_lead}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = w
        .call(
            Some(&b),
            reqwest::Method::PATCH,
            &format!("/leads/{a_lead}"),
            Some(json!({"status": "stolen"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = w
        .call(
            Some(&b),
            reqwest::Method::DELETE,
            &format!("/leads/{a_lead}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = w
        .post(&b, "/calls", json!({"lead_id": a_lead, "outcome": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "lead_not_found");
    let (s, body) = w
        .post(
            &b,
            "/leads",
            json!({"name": "x", "email": "x@example.com", "campaign_id": a_campaign}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    // acme's rows are untouched; beta's own lead is its to change.
    let (s, lead) = w.get(&a, &format!("/leads/{a_lead}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(lead["status"], "new");
    assert_eq!(w.rows("leads", "acme").await, 1);
    assert_eq!(w.rows("calls", "acme").await, 1);
    assert_eq!(w.rows("leads", "beta").await, 1);
    let (s, _, _) = w
        .call(
            Some(&b),
            reqwest::Method::PATCH,
            &format!("/leads/{b_lead}"),
            Some(json!({"status": "won"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Bad input: 422 problem+json with the field.
    let (s, body, ct) = w
        .call(
            Some(&a),
            reqwest::Method::POST,
            "/leads",
            Some(json!({"name": "x", "email": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["field"], "email");
}

async fn a_buggy_handler_without_where_cannot_leak(backend: Backend) {
    let w = World::new(backend).await;
    let (a, b) = (w.acme.0.clone(), w.beta.0.clone());
    w.seed(&a, "alice").await;
    w.seed(&a, "anna").await;
    w.seed(&b, "bob").await;
    let (s, body) = w.get(&b, "/buggy/leads").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tenants_of(&body), vec!["beta"], "{body}");
    let (_, body) = w.get(&a, "/buggy/leads").await;
    assert_eq!(tenants_of(&body), vec!["acme", "acme"], "{body}");
    // An UPDATE with no WHERE changes the caller's rows only.
    let (s, body, _) = w
        .call(
            Some(&b),
            reqwest::Method::PATCH,
            "/buggy/leads/status",
            Some(json!({"status": "lost"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["updated"], 1);
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM leads WHERE tenant_id = 'acme' AND status = 'new'")
            .fetch_one(&w.db.admin)
            .await
            .unwrap();
    assert_eq!(n, 2, "acme's leads were not touched");
}

async fn a_query_without_tenant_context_sees_nothing(backend: Backend) {
    let w = World::new(backend).await;
    w.seed(&w.acme.0, "alice").await;
    w.seed(&w.beta.0, "bob").await;
    // The service's role bypasses nothing.
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&w.db.app)
            .await
            .unwrap();
    assert!(!superuser && !bypass);
    for table in ["leads", "campaigns", "calls"] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&w.db.app)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}: no tenant, no rows");
    }
    // Also on a connection that served a tenant's transaction before (the
    // transaction-local setting is gone after it).
    let acme = w.layer.context_of("acme").await.unwrap();
    let mut conn = w.db.app.acquire().await.unwrap();
    {
        let mut tx = sqlx::Acquire::begin(&mut *conn).await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(&acme.id)
            .execute(&mut *tx)
            .await
            .unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM leads")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 1);
        tx.commit().await.unwrap();
    }
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM leads")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    drop(conn);
    // Writes with no tenant, or for another tenant, fail.
    assert!(
        sqlx::query("INSERT INTO campaigns (name) VALUES ('x')")
            .execute(&w.db.app)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("INSERT INTO campaigns (tenant_id, name) VALUES ('acme', 'x')")
            .execute(&w.db.app)
            .await
            .is_err()
    );
    let mut tx = tenantry_layer::db::begin_tenant_tx(&w.db.app, &acme)
        .await
        .unwrap();
    assert!(
        sqlx::query("INSERT INTO campaigns (tenant_id, name) VALUES ('beta', 'x')")
            .execute(&mut *tx)
            .await
            .is_err(),
        "acme's transaction cannot write beta's rows"
    );
    drop(tx);
    assert_eq!(w.rows("campaigns", "beta").await, 1);
    // The helper refuses to begin with no tenant at all.
    assert!(matches!(
        tenantry_layer::db::begin_current_tx(&w.db.app).await,
        Err(tenantry_layer::db::TenantTxError::NoTenant)
    ));
}

/// Polls `path` with `key` until it answers `status`; how long that took.
async fn refused_within(w: &World, key: &str, status: StatusCode, code: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (s, body) = w.get(key, "/leads").await;
        if s == status {
            assert_eq!(body["code"], code, "{body}");
            return started.elapsed();
        }
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(
            started.elapsed() < PUSH_BOUND,
            "still served after {PUSH_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_revoked_key_and_a_suspended_tenant_are_refused_by_push(backend: Backend) {
    let w = World::new(backend).await;
    let (a, a_id) = w.acme.clone();
    let b = w.beta.0.clone();
    // Served, and cached (the cache's TTL is minutes: only a pushed change
    // can refuse these keys within the bound below).
    for _ in 0..3 {
        assert_eq!(w.get(&a, "/leads").await.0, StatusCode::OK);
        assert_eq!(w.get(&b, "/leads").await.0, StatusCode::OK);
    }
    let (s, _) = w
        .tenantry
        .post(
            &format!("/v1/tenants/acme/api-keys/{a_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let took = refused_within(&w, &a, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    eprintln!("revoked key refused after {took:?}");
    // beta is unaffected.
    assert_eq!(w.get(&b, "/leads").await.0, StatusCode::OK);

    let (s, _) = w.tenantry.post("/v1/tenants/beta/suspend", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let took = refused_within(&w, &b, StatusCode::FORBIDDEN, "tenant_suspended").await;
    eprintln!("suspended tenant refused after {took:?}");
    // Reactivated: served again (the cached refusal is evicted too).
    let (s, _) = w
        .tenantry
        .post("/v1/tenants/beta/reactivate", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let started = Instant::now();
    while w.get(&b, "/leads").await.0 != StatusCode::OK {
        assert!(
            started.elapsed() < PUSH_BOUND,
            "still refused after reactivation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn the_context_reaches_deep_code_spawned_tasks_and_jobs(backend: Backend) {
    let w = World::new(backend).await;
    w.seed(&w.acme.0, "alice").await;
    w.seed(&w.beta.0, "bob").await;
    let (s, me) = w.get(&w.acme.0, "/whoami").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["id"], "acme");
    assert_eq!(me["matched_by"], "api_key");
    assert!(me["plan"].is_string());

    let acme = w.layer.context_of("acme").await.unwrap();
    let beta = w.layer.context_of("beta").await.unwrap();
    // A job enqueued under acme, serialized, run by a worker that happens
    // to be inside beta's scope: it runs as acme.
    let queued = tenantry_layer::with_tenant(Some(acme.clone()), async {
        serde_json::to_string(&TenantJob::new(json!({"kind": "count"}))).unwrap()
    })
    .await;
    let no_tenant = serde_json::to_string(&TenantJob::new(json!({"kind": "count"}))).unwrap();
    let pool = w.db.app.clone();
    let run = |text: String| {
        let (layer, pool) = (w.layer.clone(), pool.clone());
        async move {
            let job: TenantJob<Value> = serde_json::from_str(&text).unwrap();
            job.run(&layer, |_payload| async move {
                let who = TenantContext::current().map(|c| c.id.clone());
                let rows = match tenantry_layer::db::begin_current_tx(&pool).await {
                    Ok(mut tx) => {
                        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM leads")
                            .fetch_one(&mut *tx)
                            .await
                            .unwrap();
                        Some(n)
                    }
                    Err(_) => None,
                };
                (who, rows)
            })
            .await
            .unwrap()
        }
    };
    let (who, rows) = tenantry_layer::with_tenant(Some(beta.clone()), run(queued)).await;
    assert_eq!((who.as_deref(), rows), (Some("acme"), Some(1)));
    let (who, rows) = tenantry_layer::with_tenant(Some(beta.clone()), run(no_tenant)).await;
    assert_eq!(
        (who, rows),
        (None, None),
        "a job with no tenant runs with none"
    );
    // Spawned tasks carry the tenant.
    let inner = tenantry_layer::with_tenant(Some(acme), async {
        tenantry_layer::spawn_in_tenant(async { TenantContext::current().map(|c| c.id.clone()) })
            .await
            .unwrap()
    })
    .await;
    assert_eq!(inner.as_deref(), Some("acme"));
    // A job whose tenant was suspended since is refused.
    let job = tenantry_layer::with_tenant(Some(beta), async { TenantJob::new(()) }).await;
    let (s, _) = w.tenantry.post("/v1/tenants/beta/suspend", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let started = Instant::now();
    loop {
        match job.clone().run(&w.layer, |()| async {}).await {
            Err(refusal) => {
                assert_eq!(refusal.code, "tenant_suspended");
                break;
            }
            Ok(()) => {
                assert!(started.elapsed() < PUSH_BOUND);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn refusals_are_problem_json(backend: Backend) {
    let w = World::new(backend).await;
    let cases: Vec<(Option<String>, StatusCode)> = vec![
        (None, StatusCode::UNAUTHORIZED),
        (Some("tnt_sk_live_madeup".into()), StatusCode::UNAUTHORIZED),
        (Some("x".repeat(5000)), StatusCode::UNAUTHORIZED),
        (
            Some("eyJhbGciOiJIUzI1NiJ9.eyJ0IjoxfQ.c2ln".into()),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (key, status) in cases {
        let (s, body, ct) = w
            .call(key.as_deref(), reqwest::Method::GET, "/leads", None)
            .await;
        assert_eq!(s, status, "{key:?}: {body}");
        assert_eq!(ct, "application/problem+json");
        assert!(body["code"].is_string());
        if let Some(key) = &key {
            assert!(
                !body.to_string().contains(key.as_str()),
                "the credential is not echoed"
            );
        }
    }
    // Two different credentials in one request: refused, neither trusted.
    let response = w
        .http
        .get(format!("{}/leads", w.base))
        .header("x-api-key", &w.acme.0)
        .bearer_auth(&w.beta.0)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Tenantry down: 503 with Retry-After, never a 5xx without it, and
    // nothing served from a stale cache once the stream is gone.
    drop(w.tenantry);
    let started = Instant::now();
    loop {
        let response = w
            .http
            .get(format!("{}/leads", w.base))
            .header("x-api-key", &w.acme.0)
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert!(response.headers().contains_key("retry-after"));
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still served with Tenantry gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!w.layer.is_connected());
}
