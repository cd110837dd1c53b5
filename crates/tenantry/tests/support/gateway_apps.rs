//! A non-Rust app behind a real gateway: examples/gateway-python (Python,
//! psycopg) on an RLS-isolated table of its own PostgreSQL database, behind
//! the shipped nginx configuration or the shipped Caddyfile, with the real
//! Tenantry server (either backend) resolving tenants. One scenario, run by
//! tests/gateway_python.rs (nginx) and tests/gateway_caddy.rs (Caddy).
#![allow(dead_code)]

use crate::app_pg::AppPg;
use crate::common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use crate::process::{Proc, binary, free_port};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Gateway {
    Nginx,
    Caddy,
}

fn substitute(conf: &str, from: &str, to: &str, file: &str) -> String {
    assert_eq!(
        conf.matches(from).count(),
        1,
        "{file}: expected `{from}` exactly once"
    );
    conf.replace(from, to)
}

/// The gateway, running the shipped configuration from a temp directory.
pub struct Proxy {
    pub base: String,
    client: reqwest::Client,
    proc: Proc,
    _dir: tempfile::TempDir,
}

impl Proxy {
    pub async fn start(kind: Gateway, tenantry: &str, app: &str) -> Proxy {
        let mut failure = String::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().expect("temp dir");
            let mut proc = match kind {
                Gateway::Nginx => nginx(dir.path(), tenantry, app, port),
                Gateway::Caddy => caddy(dir.path(), tenantry, app, port),
            };
            match proc.listening(port).await {
                Ok(()) => {
                    return Proxy {
                        base: format!("http://127.0.0.1:{port}"),
                        client: reqwest::Client::builder()
                            .no_proxy()
                            .timeout(Duration::from_secs(30))
                            .build()
                            .expect("client"),
                        proc,
                        _dir: dir,
                    };
                }
                Err(logs) if logs.contains("in use") => failure = logs,
                Err(logs) => panic!("{kind:?} did not start:\n{logs}"),
            }
        }
        panic!("{kind:?} did not start:\n{failure}")
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => Reply::from(response).await,
            Err(e) => panic!(
                "request through the gateway failed: {e}\n{}",
                self.proc.logs()
            ),
        }
    }

    pub fn logs(&self) -> String {
        self.proc.logs()
    }
}

fn nginx(prefix: &Path, tenantry: &str, app: &str, port: u16) -> Proc {
    let file = "deploy/nginx/tenantry-gateway.conf";
    let shipped = std::fs::read_to_string(format!("{ROOT}/{file}")).expect("read nginx conf");
    let mut conf = substitute(
        &shipped,
        "server 127.0.0.1:3007;",
        &format!("server {tenantry};"),
        file,
    );
    conf = substitute(
        &conf,
        "server 127.0.0.1:8080;",
        &format!("server {app};"),
        file,
    );
    conf = substitute(
        &conf,
        "listen 80 default_server;",
        &format!("listen 127.0.0.1:{port} default_server;"),
        file,
    );
    std::fs::write(prefix.join("tenantry-gateway.conf"), conf).expect("write conf");
    let p = prefix.display();
    let main = format!(
        r#"master_process off;
events {{ worker_connections 128; }}
http {{
    access_log /dev/stderr;
    client_body_temp_path "{p}/client_body";
    proxy_temp_path "{p}/proxy";
    fastcgi_temp_path "{p}/fastcgi";
    uwsgi_temp_path "{p}/uwsgi";
    scgi_temp_path "{p}/scgi";
    include "{p}/tenantry-gateway.conf";
}}
"#
    );
    std::fs::write(prefix.join("nginx.conf"), main).expect("write nginx.conf");
    let bin = binary(
        "TEST_NGINX_BIN",
        "nginx",
        "/usr/sbin/nginx",
        "run ./scripts/test, or install nginx-light",
    );
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(prefix)
        .args(["-e", "stderr", "-c"])
        .arg(prefix.join("nginx.conf"))
        .arg("-g")
        .arg(format!(
            "daemon off; pid {}; error_log stderr info;",
            prefix.join("nginx.pid").display()
        ));
    Proc::spawn(cmd)
}

fn caddy(dir: &Path, tenantry: &str, app: &str, port: u16) -> Proc {
    let file = "deploy/caddy/Caddyfile";
    let shipped = std::fs::read_to_string(format!("{ROOT}/{file}")).expect("read Caddyfile");
    let mut conf = substitute(
        &shipped,
        "forward_auth 127.0.0.1:3007 {",
        &format!("forward_auth {tenantry} {{"),
        file,
    );
    conf = substitute(
        &conf,
        "reverse_proxy 127.0.0.1:8080 {",
        &format!("reverse_proxy {app} {{"),
        file,
    );
    conf = substitute(
        &conf,
        "\nhttp://:80 {",
        &format!("\nhttp://:{port} {{\n\tbind 127.0.0.1"),
        file,
    );
    let path = dir.join("Caddyfile");
    std::fs::write(&path, conf).expect("write Caddyfile");
    let bin = binary(
        "TEST_CADDY_BIN",
        "caddy",
        "/usr/bin/caddy",
        "run ./scripts/test, or install the caddy package",
    );
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        // Caddy keeps its state (certificates, autosave) under these.
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    Proc::spawn(cmd)
}

/// examples/gateway-python/app.py on a free port.
pub async fn python_app(database_url: &str) -> (Proc, String) {
    let port = free_port();
    let mut cmd = Command::new("python3");
    cmd.arg(format!("{ROOT}/examples/gateway-python/app.py"))
        .env("APP_DATABASE_URL", database_url)
        .env("PORT", port.to_string());
    let mut proc = Proc::spawn(cmd);
    if let Err(logs) = proc.listening(port).await {
        panic!("the Python app did not start (psycopg missing? run ./scripts/test):\n{logs}");
    }
    (proc, format!("127.0.0.1:{port}"))
}

/// The leads' names in a reply of the app, with the tenant they belong to.
fn leads(reply: &Reply) -> Vec<(String, String)> {
    reply.body["leads"]
        .as_array()
        .unwrap_or_else(|| panic!("not the app's answer: {reply:?}"))
        .iter()
        .map(|l| {
            (
                l["organization_id"].as_str().unwrap_or_default().to_owned(),
                l["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

async fn create_key(server: &TestServer, tenant: &str) -> String {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "gateway", "scopes": ["tenant:read"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["key"].as_str().expect("key").to_owned()
}

/// The scenario: any language gets tenancy without tenant code.
pub async fn python_app_isolated_behind(kind: Gateway, backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut tenantry = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_BASE_DOMAIN", "example.test"),
        ],
    )
    .await;
    for (id, plan) in [("acme", "professional"), ("globex", "enterprise")] {
        let reply = tenantry
            .post(
                "/v1/tenants",
                json!({"id": id, "name": format!("Tenant {id}"), "plan": plan}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    }
    let acme_key = create_key(&tenantry, "acme").await;
    let globex_key = create_key(&tenantry, "globex").await;

    // The app's database: its table, isolated by `tenantry app-db isolate`.
    let app_db = AppPg::new().await;
    let schema = std::fs::read_to_string(format!("{ROOT}/examples/gateway-python/schema.sql"))
        .expect("schema.sql");
    app_db.exec(&schema).await;
    app_db
        .exec(
            "INSERT INTO leads (organization_id, name) VALUES ('acme', 'a1'), ('acme', 'a2'), \
             ('globex', 'g1')",
        )
        .await;
    app_db.grant(&["public"]).await;
    let (code, out, err) = app_db
        .run(&[
            "isolate",
            "--table",
            "leads",
            "--column",
            "organization_id",
            "--role",
            &app_db.role,
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");

    let (app, app_addr) = python_app(&app_db.app_url).await;
    let gateway = Proxy::start(kind, tenantry.base.trim_start_matches("http://"), &app_addr).await;
    let get = |headers: Vec<(&'static str, String)>| {
        let gateway = &gateway;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            gateway.send(Method::GET, "/leads", &h, None).await
        }
    };

    // Each tenant's key sees that tenant's rows, and the app got the tenant.
    let reply = get(vec![("x-api-key", acme_key.clone())]).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{reply:?}\n{}\n{}",
        gateway.logs(),
        app.logs()
    );
    assert_eq!(leads(&reply), pairs(&[("acme", "a1"), ("acme", "a2")]));
    assert_eq!(reply.body["x_tenant_id"], json!(["acme"]));
    assert_eq!(reply.body["x_tenant_plan"], json!(["professional"]));
    let reply = get(vec![("authorization", format!("Bearer {globex_key}"))]).await;
    assert_eq!(leads(&reply), pairs(&[("globex", "g1")]), "{reply:?}");
    assert_eq!(reply.body["x_tenant_plan"], json!(["enterprise"]));
    // By subdomain, no key.
    let reply = get(vec![("host", "globex.example.test".into())]).await;
    assert_eq!(leads(&reply), pairs(&[("globex", "g1")]), "{reply:?}");

    // A forged X-Tenant-Id (any case) does not reach the app: the gateway's
    // own replaces it, and the database shows the key's tenant only.
    let reply = get(vec![
        ("x-api-key", acme_key.clone()),
        ("X-Tenant-Id", "globex".into()),
        ("X-TENANT-ID", "globex".into()),
        ("x-tenant-plan", "enterprise".into()),
    ])
    .await;
    assert_eq!(
        leads(&reply),
        pairs(&[("acme", "a1"), ("acme", "a2")]),
        "{reply:?}"
    );
    assert_eq!(reply.body["x_tenant_id"], json!(["acme"]));
    assert_eq!(reply.body["x_tenant_plan"], json!(["professional"]));
    // Nor does a forged X-Forwarded-Host (which Tenantry reads as the host)
    // pick another tenant: the gateway sets its own.
    let reply = get(vec![
        ("x-api-key", acme_key.clone()),
        ("x-forwarded-host", "globex.example.test".into()),
    ])
    .await;
    assert_eq!(
        leads(&reply),
        pairs(&[("acme", "a1"), ("acme", "a2")]),
        "{reply:?}"
    );
    // A forged header alone, even beside the operator key (which makes
    // Tenantry honour X-Tenant-ID from a trusted caller), gets nothing.
    get(vec![("x-tenant-id", "globex".into())])
        .await
        .assert_problem(404, "tenant_not_found");
    get(vec![
        ("x-tenant-id", "globex".into()),
        ("authorization", format!("Bearer {ROOT_KEY}")),
    ])
    .await
    .assert_problem(404, "tenant_not_found");

    // No valid key: refused by the gateway, the app never asked.
    let bogus = format!("tnt_sk_live_{}", "0".repeat(38));
    get(vec![("x-api-key", bogus)])
        .await
        .assert_problem(401, "invalid_credentials");
    // No credential and a host that names no tenant: no tenant, 404.
    get(vec![]).await.assert_problem(404, "tenant_not_found");

    // Writes: a new lead lands in the key's tenant; a lead for another
    // tenant is refused by the database (WITH CHECK), whatever the app sent.
    let reply = gateway
        .send(
            Method::POST,
            "/leads",
            &[("x-api-key", &acme_key)],
            Some(json!({"name": "a3"})),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "{reply:?}\n{}",
        app.logs()
    );
    assert_eq!(reply.body["organization_id"], "acme");
    let reply = gateway
        .send(
            Method::POST,
            "/leads",
            &[("x-api-key", &acme_key)],
            Some(json!({"name": "planted", "organization_id": "globex"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    let reply = get(vec![("x-api-key", globex_key.clone())]).await;
    assert_eq!(leads(&reply), pairs(&[("globex", "g1")]), "{reply:?}");

    // Suspension is honoured at once.
    let suspended = tenantry.post("/v1/tenants/acme/suspend", json!({})).await;
    assert_eq!(suspended.status, StatusCode::OK, "{suspended:?}");
    get(vec![("x-api-key", acme_key.clone())])
        .await
        .assert_problem(403, "tenant_suspended");

    // Tenantry down: nothing gets through.
    tenantry.stop().await;
    let reply = get(vec![("x-api-key", globex_key)]).await;
    reply.assert_problem(503, "tenant_resolution_unavailable");
}
