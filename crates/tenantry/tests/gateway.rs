//! Gateway mode: real nginx, running the shipped
//! `deploy/nginx/tenantry-gateway.conf`, in front of a small app, with
//! Tenantry's `GET /v1/resolve` as its `auth_request`. On both backends.
//!
//! nginx is a requirement, not an option: without it the test fails and says
//! so (`scripts/test` installs it and sets `TEST_NGINX_BIN`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

on_both_backends!(nginx_resolves_the_tenant_of_every_request);

/// The shipped example, run as it is but for the addresses below.
const SHIPPED_CONF: &str = include_str!("../../../deploy/nginx/tenantry-gateway.conf");
const SHIPPED_TENANTRY: &str = "server 127.0.0.1:3007;";
const SHIPPED_APP: &str = "server 127.0.0.1:8080;";
const SHIPPED_LISTEN: &str = "listen 80 default_server;";

async fn nginx_resolves_the_tenant_of_every_request(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut tenantry = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_BASE_DOMAIN", "example.test"),
        ],
    )
    .await;
    create_tenant(&tenantry, "acme", "professional").await;
    create_tenant(&tenantry, "globex", "enterprise").await;
    create_tenant(&tenantry, "initech", "starter").await;
    let domain = tenantry
        .post(
            "/v1/tenants/globex/domains",
            json!({"domain": "portal.globex.test"}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED, "{domain:?}");
    let globex_key = create_key(&tenantry, "globex").await;
    let initech_key = create_key(&tenantry, "initech").await;

    let app = App::start().await;
    let gateway = Nginx::start(tenantry.base.trim_start_matches("http://"), &app.addr).await;

    // A custom domain does not get through until its ownership is verified
    // (here forced by the operator; tests/domains.rs covers the DNS check).
    gateway
        .refused(
            &app,
            &[("host", "portal.globex.test")],
            404,
            "tenant_not_found",
        )
        .await;
    let verified = tenantry
        .post(
            "/v1/tenants/globex/domains/portal.globex.test/verify",
            json!({"force": true}),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");

    // A subdomain of the base domain. The app gets the request as sent, with
    // the tenant added.
    let reply = gateway
        .send(
            Method::GET,
            "/orders?page=2",
            &[("host", "acme.example.test")],
            None,
        )
        .await;
    assert_reached(&reply, "acme", "professional");
    assert_eq!(reply.body["method"], "GET");
    assert_eq!(reply.body["target"], "/orders?page=2");
    assert_eq!(reply.body["host"], json!(["acme.example.test"]));

    // A custom domain.
    let reply = gateway
        .send(Method::GET, "/", &[("host", "portal.globex.test")], None)
        .await;
    assert_reached(&reply, "globex", "enterprise");

    // An API key, as X-API-Key or as a bearer credential, on a host that
    // names no tenant (127.0.0.1:port). The app still gets the credential.
    let reply = gateway
        .send(Method::GET, "/", &[("x-api-key", &globex_key)], None)
        .await;
    assert_reached(&reply, "globex", "enterprise");
    assert_eq!(reply.body["x_api_key"], json!([globex_key]));
    let bearer = format!("Bearer {globex_key}");
    let reply = gateway
        .send(Method::GET, "/", &[("authorization", &bearer)], None)
        .await;
    assert_reached(&reply, "globex", "enterprise");

    // Any method: the body goes to the app, never to Tenantry (a POST to
    // /v1/resolve without its JSON body would fail).
    let reply = gateway
        .send(
            Method::POST,
            "/orders",
            &[
                ("host", "acme.example.test"),
                ("content-type", "application/json"),
            ],
            Some(r#"{"item": 42}"#),
        )
        .await;
    assert_reached(&reply, "acme", "professional");
    assert_eq!(reply.body["method"], "POST");
    assert_eq!(reply.body["body"], r#"{"item": 42}"#);

    // A client's own tenant headers, in any letter case, are replaced: the
    // app sees exactly one of each, nginx's.
    let reply = gateway
        .send(
            Method::GET,
            "/",
            &[
                ("host", "acme.example.test"),
                ("X-Tenant-Id", "globex"),
                ("x-tenant-plan", "enterprise"),
                ("X-TENANT-ID", "initech"),
            ],
            None,
        )
        .await;
    assert_reached(&reply, "acme", "professional");
    // Nor do they reach Tenantry, which honours X-Tenant-ID from a trusted
    // caller such as the operator key: a client cannot pick its tenant.
    let operator = format!("Bearer {ROOT_KEY}");
    gateway
        .refused(
            &app,
            &[("x-tenant-id", "acme"), ("authorization", &operator)],
            404,
            "tenant_not_found",
        )
        .await;

    // A host that names no tenant, and no credential.
    gateway
        .refused(
            &app,
            &[("host", "nobody.example.test")],
            404,
            "tenant_not_found",
        )
        .await;
    gateway
        .refused(&app, &[("host", "elsewhere.test")], 404, "tenant_not_found")
        .await;

    // Another tenant's key on a tenant's host: 403 tenant_mismatch (not
    // "suspended"), and the app is not reached.
    gateway
        .refused(
            &app,
            &[("host", "initech.example.test"), ("x-api-key", &globex_key)],
            403,
            "tenant_mismatch",
        )
        .await;

    // A key that is not one: 401, with Tenantry's challenge.
    let bogus = format!("tnt_sk_live_{}", "0".repeat(38));
    let reply = gateway
        .refused(&app, &[("x-api-key", &bogus)], 401, "invalid_credentials")
        .await;
    let challenges: Vec<_> = reply.headers.get_all("www-authenticate").iter().collect();
    assert_eq!(challenges, ["Bearer"], "{reply:?}");

    // Suspension takes effect at once, by host and by key (Tenantry's
    // resolution caches are invalidated).
    let reply = gateway
        .send(Method::GET, "/", &[("host", "initech.example.test")], None)
        .await;
    assert_reached(&reply, "initech", "starter");
    let suspended = tenantry
        .post("/v1/tenants/initech/suspend", json!({}))
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{suspended:?}");
    gateway
        .refused(
            &app,
            &[("host", "initech.example.test")],
            403,
            "tenant_suspended",
        )
        .await;
    gateway
        .refused(
            &app,
            &[("x-api-key", &initech_key)],
            403,
            "tenant_suspended",
        )
        .await;

    // A deleted tenant is not found, by its custom domain too.
    let deleted = tenantry.delete("/v1/tenants/globex").await;
    assert!(deleted.status.is_success(), "{deleted:?}");
    gateway
        .refused(
            &app,
            &[("host", "portal.globex.test")],
            404,
            "tenant_not_found",
        )
        .await;

    // Tenantry down: nothing gets through.
    tenantry.stop().await;
    gateway
        .refused(
            &app,
            &[("host", "acme.example.test")],
            503,
            "tenant_resolution_unavailable",
        )
        .await;
}

async fn create_tenant(server: &TestServer, id: &str, plan: &str) {
    let reply = server
        .post(
            "/v1/tenants",
            json!({"id": id, "name": format!("Tenant {id}"), "plan": plan}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
}

async fn create_key(server: &TestServer, tenant: &str) -> String {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "gateway", "scopes": ["tenant:read"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["key"].as_str().unwrap().to_owned()
}

/// The request reached the app, which saw exactly this tenant and plan.
#[track_caller]
fn assert_reached(reply: &Reply, tenant: &str, plan: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["x_tenant_id"], json!([tenant]), "{reply:?}");
    assert_eq!(reply.body["x_tenant_plan"], json!([plan]), "{reply:?}");
}

// --- The app -----------------------------------------------------------------

/// A tiny HTTP/1.1 app: answers every request with a JSON echo of what it
/// received (method, target, body and the headers the test looks at), one
/// request per connection, and counts them.
struct App {
    addr: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start() -> App {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind app");
        let addr = listener.local_addr().expect("app address").to_string();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    // A broken connection only fails the request that used it.
                    let _ = echo(stream, &counter).await;
                });
            }
        });
        App { addr, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(mut stream: TcpStream, hits: &AtomicUsize) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default();
    let target = request_line.next().unwrap_or_default();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    // nginx buffers request bodies and sends them with a Content-Length.
    let length: usize = values("content-length")
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let payload = json!({
        "method": method,
        "target": target,
        "host": values("host"),
        "x_tenant_id": values("x-tenant-id"),
        "x_tenant_plan": values("x-tenant-plan"),
        "x_api_key": values("x-api-key"),
        "body": String::from_utf8_lossy(&body),
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

// --- nginx -------------------------------------------------------------------

/// `TEST_NGINX_BIN`, else `nginx` on PATH, else /usr/sbin/nginx (Debian's
/// place, often not on a user's PATH).
fn nginx_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TEST_NGINX_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "TEST_NGINX_BIN={} does not exist",
            bin.display()
        );
        return bin;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nginx"))
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed, and the gateway test needs it: run ./scripts/test \
                 (which installs it as root), install the nginx-light or nginx package, \
                 or point TEST_NGINX_BIN at an nginx binary"
            )
        })
}

/// A port that was free a moment ago (nginx cannot be told to pick one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Replaces the one occurrence of `from`, so that a change to the shipped
/// file that the test no longer matches fails here, loudly.
fn substitute(conf: &str, from: &str, to: &str) -> String {
    assert_eq!(
        conf.matches(from).count(),
        1,
        "deploy/nginx/tenantry-gateway.conf: expected `{from}` exactly once"
    );
    conf.replace(from, to)
}

/// nginx running the shipped configuration from a temporary prefix.
struct Nginx {
    base: String,
    client: reqwest::Client,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(tenantry: &str, app: &str) -> Nginx {
        let bin = nginx_bin();
        // The port is only known free when picked: another process may take
        // it before nginx binds it, then nginx is started again on another.
        let mut failure = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin, tenantry, app, free_port()).await {
                Ok(nginx) => return nginx,
                Err(output) if output.contains("Address already in use") => failure = output,
                Err(output) => panic!("nginx ({}) did not start:\n{output}", bin.display()),
            }
        }
        panic!("nginx ({}) did not start:\n{failure}", bin.display())
    }

    async fn try_start(bin: &Path, tenantry: &str, app: &str, port: u16) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let prefix = dir.path();
        let mut gateway = substitute(
            SHIPPED_CONF,
            SHIPPED_TENANTRY,
            &format!("server {tenantry};"),
        );
        gateway = substitute(&gateway, SHIPPED_APP, &format!("server {app};"));
        gateway = substitute(
            &gateway,
            SHIPPED_LISTEN,
            &format!("listen 127.0.0.1:{port} default_server;"),
        );
        std::fs::write(prefix.join("tenantry-gateway.conf"), gateway).expect("write conf");
        // What a distribution's nginx.conf would give: the http context, here
        // with every path inside the prefix (the compiled-in ones are the
        // system's, e.g. /var/lib/nginx). One process, no master and workers:
        // killing it leaves nothing behind, and as root it does not switch
        // to an unprivileged user that could not write the temp directories.
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
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, main).expect("write nginx.conf");
        let pid = prefix.join("nginx.pid");

        let mut child = Command::new(bin)
            .arg("-p")
            .arg(prefix)
            // Where nginx logs before it has read its configuration.
            .args(["-e", "stderr"])
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {}; error_log stderr info;",
                pid.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nginx ({}): {e}", bin.display()));
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout"))
                as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().expect("lock").push(line);
                }
            });
        }

        // Ready when it accepts connections; failed when it exits first.
        let started = std::time::Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Err(output.lock().expect("lock").join("\n"));
            }
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "not listening after 30s\n{}",
                    output.lock().expect("lock").join("\n")
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Nginx {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            child,
            output,
            _dir: dir,
        })
    }

    fn logs(&self) -> String {
        self.output.lock().expect("lock").join("\n")
    }

    /// Sends a request through nginx; a `host` header replaces the default.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        match request.send().await {
            Ok(response) => Reply::from(response).await,
            Err(e) => panic!("request through nginx failed: {e}\nnginx:\n{}", self.logs()),
        }
    }

    /// A GET with these headers is refused with this status and problem
    /// code, and the app never sees it.
    async fn refused(&self, app: &App, headers: &[(&str, &str)], status: u16, code: &str) -> Reply {
        let before = app.hits();
        let reply = self.send(Method::GET, "/", headers, None).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{headers:?}: {reply:?}\nnginx:\n{}",
            self.logs()
        );
        reply.assert_problem(status, code);
        assert_eq!(app.hits(), before, "{headers:?} reached the app");
        reply
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
