//! What the console tests share: one headless Chromium driven over
//! WebDriver (plain JSON over reqwest), the console's raw HTTP answers (for
//! status codes and headers), and the server and fixtures they start from.
//! Included by `console.rs` and `console_forms.rs` with `#[path]`.
#![allow(dead_code)]

use crate::common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

// ---------------------------------------------------------------- WebDriver

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}

/// One headless Chromium, through its own chromedriver.
pub struct Browser {
    driver: Child,
    url: String,
    http: reqwest::Client,
    session: String,
    base: String,
    prefix: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub async fn start(server: &TestServer, backend: Backend) -> Browser {
        let driver_bin =
            std::env::var("TEST_CHROMEDRIVER_BIN").unwrap_or_else(|_| "chromedriver".into());
        let chromium =
            std::env::var("TEST_CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_bin} ({e}): run the suite with ./scripts/test, which installs chromium and chromium-driver"));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not start");
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", format!("--user-data-dir={}", profile.display())],
            }
        }}});
        let reply: Value = http
            .post(format!("{url}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_owned();
        Browser {
            driver,
            url,
            http,
            session,
            base: server.base.clone(),
            prefix: format!("{backend:?}").to_lowercase(),
        }
    }

    pub async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply: Value = req.send().await.unwrap().json().await.unwrap();
        if reply["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", reply["value"]);
        }
        reply["value"].clone()
    }

    pub async fn goto(&self, path: &str) {
        self.cmd(
            Method::POST,
            "/url",
            Some(json!({"url": format!("{}{path}", self.base)})),
        )
        .await;
    }

    pub async fn path(&self) -> String {
        let url = self.cmd(Method::GET, "/url", None).await;
        url.as_str()
            .unwrap()
            .trim_start_matches(&self.base)
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.cmd(Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    pub async fn count(&self, css: &str) -> usize {
        self.cmd(
            Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .map_or(0, Vec::len)
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.cmd(Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let id = self.find(css).await;
        self.cmd(
            Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": value})),
        )
        .await;
    }

    /// Clicks, and when the click submits a form or follows a link, waits
    /// (bounded) until the next page has replaced this one: a click returns
    /// before the navigation it starts ends.
    pub async fn click(&self, css: &str) {
        let page = self.find("html").await;
        let id = self.find(css).await;
        let navigates = self
            .cmd(
                Method::POST,
                &format!("/element/{id}/click"),
                Some(json!({})),
            )
            .await;
        let _ = navigates;
        let is_checkbox = css.contains("input[value=");
        if is_checkbox {
            return;
        }
        for _ in 0..200 {
            let url = format!("{}/session/{}/element/{page}/name", self.url, self.session);
            let reply: Value = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if reply["value"].get("error").is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} did not lead to another page");
    }

    pub async fn cookie(&self, name: &str) -> Value {
        self.cmd(Method::GET, &format!("/cookie/{name}"), None)
            .await
    }

    pub async fn shot(&self, name: &str) {
        let png = self.cmd(Method::GET, "/screenshot", None).await;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}-{name}.png", self.prefix)), bytes).unwrap();
    }

    pub async fn sign_in(&self, key: &str) {
        self.goto("/console/sign-in").await;
        self.fill("#key", key).await;
        self.click("form button[type=submit]").await;
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.url, self.session))
            .send()
            .await;
        let _ = self.driver.kill().await;
    }
}

// ---------------------------------------------------------------- helpers

/// The console's HTTP answer to a request carrying the browser's session
/// cookie (for status codes and headers, which WebDriver does not show).
pub async fn raw(
    server: &TestServer,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
    origin: Option<&str>,
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.request(method, server.url(path));
    if let Some(cookie) = cookie {
        req = req.header("cookie", format!("tenantry_console={cookie}"));
    }
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if let Some(form) = form {
        req = req.form(form);
    }
    req.send().await.unwrap()
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

pub async fn server_for(db: &TestDb, extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![
        ("TENANTRY_ROOT_KEY", ROOT_KEY),
        ("TENANTRY_OUTBOUND_ALLOWLIST", "127.0.0.1/32"),
        ("TENANTRY_WEBHOOK_POLL_INTERVAL", "50ms"),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(db, &env).await
}

/// A local webhook receiver that accepts everything.
pub async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

/// A tenant admin key of `tenant`.
pub async fn admin_key(server: &TestServer, tenant: &str) -> (String, String) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "console admin", "scopes": ["tenant:admin"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    (
        reply.body["key"].as_str().unwrap().to_owned(),
        reply.body["id"].as_str().unwrap().to_owned(),
    )
}
