//! The console's forms beyond its first pages, in headless Chromium against
//! the real server on both backends: key editing and enabling, credential
//! editing, access log and deletion, custom domain removal, webhook endpoint
//! editing, secret rotation, range replay and deletion, provisioning start,
//! retry and cancel, meters, the tenant data-key rotation, settings, members,
//! identity providers, widgets, events and the operator audit chain. Each
//! form: a success whose effect is checked through the API, an error shown
//! on the form by field, destructive actions behind a confirmation; then a
//! tenant admin of another tenant answered 404 everywhere, forged forms
//! refused, and nothing changed. Screenshots go to
//! `target/console-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::console_browser;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use console_browser::{Browser, admin_key, csrf_of, free_port, raw, receiver, server_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    tenant_forms_act_through_the_api,
    operator_forms_act_through_the_api,
    foreign_tenants_and_forged_forms_change_nothing
);

/// Asserts that the element `css` of the page shows `what` (else the
/// page's text, to see why).
async fn shows(b: &Browser, css: &str, what: &str) {
    if b.count(css).await == 0 {
        panic!("no {css} on the page: {}", b.text("main").await);
    }
    let text = b.text(css).await;
    assert!(text.contains(what), "{css} shows {text:?}, not {what:?}");
}

/// Polls `check` on an API answer until it holds (bounded).
async fn eventually(server: &TestServer, path: &str, what: &str, check: impl Fn(&Value) -> bool) {
    for _ in 0..300 {
        let reply = server.get(path).await;
        if check(&reply.body) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {}", server.get(path).await.body);
}

/// An identity provider registered through the API (its key set is never
/// fetched by these tests).
async fn provider(server: &TestServer, issuer: &str) -> String {
    let reply = server
        .post(
            "/v1/identity-providers",
            json!({"issuer": issuer, "jwks_url": "http://127.0.0.1:9/jwks",
                   "audiences": ["app"], "algorithms": ["RS256"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_owned()
}

fn smtp() -> Value {
    json!({"kind": "smtp", "name": "Mailer", "data": {
        "host": "smtp.acme.test", "port": 587, "username": "mailer", "password": "old-pass-1"}})
}

async fn tenant_forms_act_through_the_api(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server_for(&db, &[]).await;
    server.create_tenant("acme").await;
    let b = Browser::start(&server, backend).await;
    b.sign_in(ROOT_KEY).await;

    // ---- API keys: edit (a past expiry is the API's error), disable, enable.
    let made = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "ci", "scopes": ["keys:read"]}),
        )
        .await;
    let key = made.body["key"].as_str().unwrap().to_owned();
    let kid = made.body["id"].as_str().unwrap().to_owned();
    b.goto(&format!("/console/tenants/acme/keys/{kid}")).await;
    b.fill("#edit-key-expires", "2001-01-01T00:00:00Z").await;
    b.click("#edit-key button").await;
    shows(&b, "#form-errors", "expires_at").await;
    b.fill("#edit-key-name", "ci deploy").await;
    b.fill("#edit-key-expires", "2030-01-01T00:00:00Z").await;
    b.click("#edit-key input[value='usage:read']").await;
    b.click("#edit-key button").await;
    shows(&b, "#notice", "saved").await;
    b.shot("key-edit").await;
    let k = server
        .get(&format!("/v1/tenants/acme/api-keys/{kid}"))
        .await
        .body;
    assert_eq!(k["name"], "ci deploy");
    assert_eq!(k["scopes"], json!(["keys:read", "usage:read"]));
    assert!(k["expires_at"].as_str().unwrap().starts_with("2030-01-01"));
    b.goto("/console/tenants/acme/keys").await;
    b.click(&format!(
        "tr[data-key='{kid}'] form[action$='/enabled'] button"
    ))
    .await;
    shows(&b, "#notice", "disabled").await;
    let verify = |key: String| {
        let server = &server;
        async move {
            server
                .post("/v1/keys/verify", json!({"key": key}))
                .await
                .body["code"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(verify(key.clone()).await, "DISABLED");
    b.goto(&format!("/console/tenants/acme/keys/{kid}")).await;
    b.click("#toggle-key button").await;
    shows(&b, "#notice", "enabled").await;
    assert_eq!(verify(key.clone()).await, "VALID");

    // ---- Credentials: edit (the API's own field check), access log, the
    // tenant's data key, delete behind a confirmation.
    let cred = server.post("/v1/tenants/acme/credentials", smtp()).await;
    assert_eq!(cred.status, StatusCode::CREATED, "{cred:?}");
    let cid = cred.body["id"].as_str().unwrap().to_owned();
    let reveal = format!("/v1/tenants/acme/credentials/{cid}/reveal");
    assert!(
        server
            .call(Method::POST, &reveal, None)
            .await
            .status
            .is_success()
    );
    b.goto(&format!("/console/tenants/acme/credentials/{cid}"))
        .await;
    assert!(b.count("#access-log tbody tr").await >= 1);
    assert!(!b.source().await.contains("old-pass-1"));
    b.fill("#edit-cred-data", "[1, 2]").await;
    b.click("#edit-credential button").await;
    shows(&b, "#form-errors", "data").await;
    b.fill("#edit-cred-data", r#"{"port": "not a port"}"#).await;
    b.click("#edit-credential button").await;
    shows(&b, "#form-errors", "port").await;
    b.fill("#edit-cred-name", "Mailer (prod)").await;
    b.fill("#edit-cred-data", r#"{"password": "new-pass-2"}"#)
        .await;
    b.click("#edit-credential button").await;
    shows(&b, "#notice", "saved").await;
    assert!(!b.source().await.contains("new-pass-2"));
    b.shot("credential").await;
    let plain = server.call(Method::POST, &reveal, None).await.body;
    assert_eq!(plain["name"], "Mailer (prod)");
    assert_eq!(plain["data"]["password"], "new-pass-2");
    assert_eq!(plain["data"]["host"], "smtp.acme.test");

    b.goto("/console/tenants/acme/credentials").await;
    b.click("#rotate-data-key button").await;
    let first = b.text("#notice").await;
    assert!(first.contains("New data key"), "{first}");
    b.click("#rotate-data-key button").await;
    assert_ne!(b.text("#notice").await, first);
    // Still readable under the new data key.
    assert_eq!(
        server.call(Method::POST, &reveal, None).await.body["data"]["password"],
        "new-pass-2"
    );

    b.goto(&format!("/console/tenants/acme/credentials/{cid}"))
        .await;
    b.click("#delete-credential button").await;
    shows(&b, "#confirm", "Really delete").await;
    b.shot("confirm-delete-credential").await;
    let path = format!("/v1/tenants/acme/credentials/{cid}");
    assert_eq!(server.get(&path).await.status, StatusCode::OK);
    b.click("#confirm-action").await;
    shows(&b, "#notice", "deleted").await;
    assert_eq!(server.get(&path).await.status, StatusCode::NOT_FOUND);

    // ---- Custom domain removal, confirmed.
    let reply = server
        .post(
            "/v1/tenants/acme/domains",
            json!({"domain": "support.acme.test"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    b.goto("/console/tenants/acme").await;
    b.click(".remove-domain button").await;
    shows(&b, "#confirm", "support.acme.test").await;
    assert_eq!(
        server.get("/v1/tenants/acme/domains").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    b.click("#confirm-action").await;
    shows(&b, "#notice", "domain removed").await;
    assert_eq!(
        server.get("/v1/tenants/acme/domains").await.body["data"],
        json!([])
    );

    // ---- Settings: not JSON, a malformed category, then saved (sealed).
    b.goto("/console/tenants/acme/settings").await;
    b.fill("#settings-form-category", "smtp").await;
    b.fill("#settings-form-data", "{nope").await;
    b.click("#settings-form button").await;
    shows(&b, "#form-errors", "data").await;
    b.fill("#settings-form-category", "Not A Category!").await;
    b.fill("#settings-form-data", r#"{"host": "mail.acme.test"}"#)
        .await;
    b.click("#settings-form button").await;
    shows(&b, "#form-errors", "category").await;
    b.fill("#settings-form-category", "smtp").await;
    b.fill(
        "#settings-form-data",
        r#"{"host": "mail.acme.test", "password": "hunter2-settings"}"#,
    )
    .await;
    b.click("#settings-form button").await;
    shows(&b, "#notice", "saved").await;
    assert!(b.text("#settings-data").await.contains("mail.acme.test"));
    assert!(!b.source().await.contains("hunter2-settings"));
    b.shot("settings").await;
    let revealed = server
        .call(Method::POST, "/v1/tenants/acme/settings/smtp/reveal", None)
        .await;
    assert_eq!(revealed.body["data"]["password"], "hunter2-settings");

    // ---- Members: an unknown role is the API's error; add; remove.
    let pid = provider(&server, "https://idp.acme.test/").await;
    let subject = format!("{pid}:alice");
    b.goto("/console/tenants/acme/members").await;
    b.fill("#member-subject", &subject).await;
    b.fill("#member-roles", "owner").await;
    b.click("#put-member button").await;
    shows(&b, "#form-errors", "roles").await;
    b.fill("#member-subject", &subject).await;
    b.fill("#member-roles", "admin").await;
    b.click("#put-member button").await;
    shows(&b, "#notice", "saved").await;
    assert!(b.text("#members").await.contains(&subject));
    b.shot("members").await;
    let member = format!("/v1/tenants/acme/members/{subject}");
    assert_eq!(server.get(&member).await.body["roles"], json!(["admin"]));
    b.click(&format!("tr[data-subject='{subject}'] button"))
        .await;
    shows(&b, "#confirm", "alice").await;
    b.click("#confirm-action").await;
    shows(&b, "#notice", "removed").await;
    assert_eq!(server.get(&member).await.status, StatusCode::NOT_FOUND);

    // ---- Widgets: a bad origin, created, disabled behind a confirmation.
    b.goto("/console/tenants/acme/widgets").await;
    b.fill("#widget-name", "Site chat").await;
    b.fill("#widget-origins", "not an origin").await;
    b.click("#create-widget button").await;
    shows(&b, "#form-errors", "allowed_origins").await;
    b.fill("#widget-origins", "https://www.acme.test").await;
    b.click("#create-widget button").await;
    shows(&b, "#notice", "created").await;
    let widgets = server.get("/v1/tenants/acme/widgets").await.body;
    assert_eq!(widgets["data"][0]["name"], "Site chat");
    assert_eq!(
        widgets["data"][0]["allowed_origins"],
        json!(["https://www.acme.test"])
    );
    let wid = widgets["data"][0]["id"].as_str().unwrap().to_owned();
    b.click(&format!("tr[data-widget='{wid}'] button")).await;
    shows(&b, "#confirm", "disable").await;
    assert_eq!(
        server.get("/v1/tenants/acme/widgets").await.body["data"][0]["enabled"],
        true
    );
    b.click("#confirm-action").await;
    shows(&b, "#notice", "disabled").await;
    b.shot("widgets").await;
    assert_eq!(
        server.get("/v1/tenants/acme/widgets").await.body["data"][0]["enabled"],
        false
    );

    // ---- Webhook endpoint: edit, rotate the secret, replay a range, delete.
    let hook = receiver().await;
    let created = server
        .post(
            "/v1/tenants/acme/webhook-endpoints",
            json!({"url": hook, "event_types": ["api_key.created"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let eid = created.body["endpoint"]["id"]
        .as_str()
        .or(created.body["id"].as_str())
        .unwrap()
        .to_owned();
    let old_secret = created.body["secret"].as_str().unwrap().to_owned();
    let endpoint = format!("/v1/tenants/acme/webhook-endpoints/{eid}");
    server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "triggers a delivery", "scopes": ["tenant:read"]}),
        )
        .await;
    eventually(
        &server,
        &format!("{endpoint}/messages"),
        "a delivery",
        |m| m["data"][0]["status"] == "delivered",
    )
    .await;
    b.goto(&format!("/console/tenants/acme/webhooks/{eid}"))
        .await;
    b.fill("#edit-endpoint-url", "ftp://nowhere").await;
    b.click("#edit-endpoint button").await;
    shows(&b, "#form-errors", "url").await;
    b.fill("#edit-endpoint-url", &hook).await;
    b.fill("#edit-endpoint-description", "CRM sync v2").await;
    b.click("#edit-endpoint input[value='api_key.revoked']")
        .await;
    b.click("#edit-endpoint button").await;
    shows(&b, "#notice", "saved").await;
    let e = server.get(&endpoint).await.body;
    assert_eq!(e["description"], "CRM sync v2");
    assert_eq!(
        e["event_types"],
        json!(["api_key.created", "api_key.revoked"])
    );
    b.fill("#rotate-secret input[name=overlap_seconds]", "99999999")
        .await;
    b.click("#rotate-secret button").await;
    shows(&b, "#form-errors", "overlap_seconds").await;
    b.fill("#rotate-secret input[name=overlap_seconds]", "60")
        .await;
    b.click("#rotate-secret button").await;
    let new_secret = b.text("#new-secret-value").await;
    assert!(new_secret.starts_with("whsec_"), "{new_secret}");
    assert_ne!(new_secret, old_secret);
    assert!(!server.get(&endpoint).await.body["previous_secret_expires_at"].is_null());
    b.fill("#replay-range input[name=since]", "yesterday").await;
    b.click("#replay-range button").await;
    shows(&b, "#form-errors", "since").await;
    let since = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    b.fill("#replay-range input[name=since]", &since).await;
    b.click("#replay-range button").await;
    let replayed = b.text("#notice").await;
    let count: u64 = replayed
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{replayed}"));
    assert!(count >= 1, "{replayed}");
    b.shot("webhook-endpoint").await;
    b.click("#delete-endpoint button").await;
    shows(&b, "#confirm", &hook).await;
    assert_eq!(server.get(&endpoint).await.status, StatusCode::OK);
    b.click("#confirm-action").await;
    assert_eq!(b.path().await, "/console/tenants/acme/webhooks");
    assert_eq!(server.get(&endpoint).await.status, StatusCode::NOT_FOUND);

    // ---- Events: the API's list, and its cursor check on the page.
    let events = server.get("/v1/tenants/acme/events?limit=50").await.body;
    let first = events["data"][0]["type"].as_str().unwrap().to_owned();
    b.goto("/console/tenants/acme/events").await;
    assert!(b.text("#events").await.contains(&first));
    assert_eq!(
        b.count("#events tbody tr").await,
        events["data"].as_array().unwrap().len()
    );
    b.shot("events").await;
    b.goto("/console/tenants/acme/events?cursor=bogus").await;
    shows(&b, "#form-errors", "cursor").await;
    b.quit().await;
}

async fn operator_forms_act_through_the_api(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Meta is a closed port: a WhatsApp verification fails at once, and
    // with one attempt and `on_failure: hold` the workflow waits, failed.
    let meta = format!("http://127.0.0.1:{}", free_port());
    let server = server_for(
        &db,
        &[
            ("TENANTRY_META_GRAPH_URL", &meta),
            ("TENANTRY_PROVISIONING_MAX_ATTEMPTS", "1"),
            ("TENANTRY_PROVISIONING_BACKOFF", "50ms"),
            ("TENANTRY_PROVISIONING_POLL_INTERVAL", "100ms"),
            ("TENANTRY_PROVISIONING_PROVIDER_TIMEOUT", "2s"),
        ],
    )
    .await;
    server.expect_warning("provisioning step failed");
    let b = Browser::start(&server, backend).await;
    b.sign_in(ROOT_KEY).await;

    // ---- Provisioning: not JSON, the API's refusal, started; retry, cancel.
    b.goto("/console/provisioning").await;
    b.fill("#workflow-request", "{nope").await;
    b.click("#start-workflow button").await;
    shows(&b, "#form-errors", "request").await;
    b.fill(
        "#workflow-request",
        r#"{"tenant": {"id": "Not A Slug", "name": "x"}}"#,
    )
    .await;
    b.click("#start-workflow button").await;
    shows(&b, "#form-errors", "id").await;
    let request = json!({
        "tenant": {"id": "wavelength", "name": "Wavelength"},
        "whatsapp": {"phone_number_id": "1069990001", "business_account_id": "1022900001",
                     "access_token": "EAAwave-token", "app_secret": "wave-app-secret", "verify_token": "wave"},
        "on_failure": "hold",
    });
    b.fill("#workflow-request", &request.to_string()).await;
    b.click("#start-workflow button").await;
    let notice = b.text("#notice").await;
    assert!(notice.contains("started for tenant wavelength"), "{notice}");
    let list = server.get("/v1/provisioning").await.body;
    let wid = list["data"][0]["id"].as_str().unwrap().to_owned();
    let workflow = format!("/v1/provisioning/{wid}");
    eventually(&server, &workflow, "the workflow fails", |w| {
        w["status"] == "failed"
    })
    .await;
    b.goto("/console/provisioning").await;
    let section = format!("section[data-workflow='{wid}']");
    assert!(b.text(&section).await.contains("failed"));
    b.shot("provisioning").await;
    let events_of = |kind: &'static str| {
        let server = &server;
        async move {
            server
                .get("/v1/tenants/wavelength/events?limit=100")
                .await
                .body["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == kind)
                .count()
        }
    };
    let failures = events_of("provisioning.step_failed").await;
    b.click(&format!("{section} form[action$='/retry'] button"))
        .await;
    shows(&b, "#notice", "retried").await;
    // The retry ran (and failed again: Meta is still away).
    for _ in 0..300 {
        if events_of("provisioning.step_failed").await > failures {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(events_of("provisioning.step_failed").await > failures);
    eventually(&server, &workflow, "failed again", |w| {
        w["status"] == "failed"
    })
    .await;
    b.goto("/console/provisioning").await;
    b.click(&format!("{section} form[action$='/cancel'] button"))
        .await;
    shows(&b, "#confirm", &wid).await;
    assert_eq!(server.get(&workflow).await.body["status"], "failed");
    b.click("#confirm-action").await;
    shows(&b, "#notice", "cancelled").await;
    eventually(&server, &workflow, "cancelled", |w| {
        w["status"] == "cancelled"
    })
    .await;
    // Retrying a cancelled workflow is the API's conflict, on the page.
    let (cookie, token) = http_sign_in(&server, ROOT_KEY).await;
    let refused = raw(
        &server,
        Method::POST,
        &format!("/console/provisioning/{wid}/retry"),
        Some(&cookie),
        Some(&[("csrf", &token)]),
        None,
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("form-errors"));

    // The page's own example request onboards a tenant; its API keys are
    // handed out once, on the workflow's own page.
    b.goto("/console/provisioning").await;
    b.click("#start-workflow button").await;
    shows(&b, "#notice", "started for tenant new-tenant").await;
    let list = server.get("/v1/provisioning").await.body;
    let example = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["tenant_id"] == "new-tenant")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let example_path = format!("/v1/provisioning/{example}");
    for _ in 0..300 {
        let w = server.get("/v1/provisioning?limit=100").await.body;
        let done = w["data"].as_array().unwrap().iter().any(|w| {
            w["id"] == example.as_str()
                && w["status"] == "succeeded"
                && w["api_keys_pending"] == true
        });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.goto(&format!("/console/provisioning/{example}")).await;
    let issued = b.text(".issued-keys").await;
    let key = issued.split(": ").nth(1).unwrap().trim().to_owned();
    let verified = server.post("/v1/keys/verify", json!({"key": key})).await;
    assert_eq!(verified.body["valid"], true, "{issued}");
    assert_eq!(verified.body["tenant"]["id"], "new-tenant");
    b.goto(&format!("/console/provisioning/{example}")).await;
    assert_eq!(b.count(".issued-keys").await, 0);
    assert_eq!(
        server.get(&example_path).await.body["api_keys_pending"],
        false
    );

    // ---- Meters: a bad name, defined, a duplicate.
    b.goto("/console/meters").await;
    b.fill("#meter-name", "Not A Meter!").await;
    b.click("#create-meter button").await;
    shows(&b, "#form-errors", "name").await;
    b.fill("#meter-name", "documents_processed").await;
    b.fill("#meter-description", "Documents through OCR").await;
    b.click("#create-meter button").await;
    shows(&b, "#notice", "documents_processed").await;
    assert!(b.text("#meters").await.contains("Documents through OCR"));
    b.shot("meters").await;
    let meters = server.get("/v1/meters").await.body;
    assert!(
        meters["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "documents_processed" && m["aggregation"] == "sum")
    );
    b.fill("#meter-name", "documents_processed").await;
    b.click("#create-meter button").await;
    assert!(b.count("#form-errors").await == 1);

    // ---- Identity providers: HMAC refused, registered, replaced, removed.
    b.goto("/console/identity-providers").await;
    let settings = |algorithm: &str, audiences: Value| {
        json!({"issuer": "https://login.wave.test/", "jwks_url": "http://127.0.0.1:9/jwks",
               "audiences": audiences, "algorithms": [algorithm]})
        .to_string()
    };
    b.fill("#provider-settings", &settings("HS256", json!(["app"])))
        .await;
    b.click("#provider-form button").await;
    shows(&b, "#form-errors", "algorithms").await;
    b.fill("#provider-settings", &settings("RS256", json!(["app"])))
        .await;
    b.click("#provider-form button").await;
    shows(&b, "#notice", "saved").await;
    let providers = server.get("/v1/identity-providers").await.body;
    let pid = providers["data"][0]["id"].as_str().unwrap().to_owned();
    b.fill("#provider-id", &pid).await;
    b.fill(
        "#provider-settings",
        &settings("RS256", json!(["app", "web"])),
    )
    .await;
    b.click("#provider-form button").await;
    shows(&b, "#notice", &pid).await;
    let one = format!("/v1/identity-providers/{pid}");
    assert_eq!(
        server.get(&one).await.body["audiences"],
        json!(["app", "web"])
    );
    b.shot("identity-providers").await;
    b.click(&format!("tr[data-provider='{pid}'] button")).await;
    shows(&b, "#confirm", "login.wave.test").await;
    assert_eq!(server.get(&one).await.status, StatusCode::OK);
    b.click("#confirm-action").await;
    shows(&b, "#notice", "removed").await;
    assert_eq!(server.get(&one).await.status, StatusCode::NOT_FOUND);

    // ---- The operator audit chain, verified, with the API's entries.
    let audit = server.get("/v1/operator/audit?limit=50").await.body;
    let action = audit["data"][0]["action"].as_str().unwrap().to_owned();
    b.goto("/console/audit").await;
    assert_eq!(b.text("#chain-status").await, "verified");
    assert!(b.text("#audit").await.contains(&action));
    b.shot("operator-audit").await;
    b.goto("/console/audit?outcome=bogus").await;
    shows(&b, "#form-errors", "outcome").await;
    b.goto("/console/audit?outcome=error").await;
    assert_eq!(b.count("#form-errors").await, 0);
    b.quit().await;
}

/// Signs in over plain HTTP: the session cookie's value and the session's
/// CSRF token.
async fn http_sign_in(server: &TestServer, key: &str) -> (String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(server.url("/console/sign-in"))
        .send()
        .await
        .unwrap();
    let pre = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pre = pre.split(';').next().unwrap().to_owned();
    let token = csrf_of(&form.text().await.unwrap());
    let signed = client
        .post(server.url("/console/sign-in"))
        .header("cookie", &pre)
        .form(&[("csrf", token.as_str()), ("key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let cookie = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find_map(|c| {
            c.strip_prefix("tenantry_console=")
                .map(|rest| rest.split(';').next().unwrap().to_owned())
        })
        .unwrap();
    // Any page carries the session's token (in its sign-out form).
    let page = raw(
        server,
        Method::GET,
        "/console/tenants",
        Some(&cookie),
        None,
        None,
    )
    .await;
    let csrf = csrf_of(&page.text().await.unwrap());
    (cookie, csrf)
}

/// Posts a console form with the session's token and the confirmation
/// given: the console's status code.
async fn post_confirmed(
    server: &TestServer,
    cookie: &str,
    token: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> StatusCode {
    let mut form = fields.to_vec();
    form.push(("csrf", token));
    form.push(("confirm", "yes"));
    raw(server, Method::POST, path, Some(cookie), Some(&form), None)
        .await
        .status()
}

async fn foreign_tenants_and_forged_forms_change_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server_for(&db, &[]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;

    // Everything acme has that a form could change.
    let made = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "ci", "scopes": ["keys:read"]}),
        )
        .await;
    let kid = made.body["id"].as_str().unwrap().to_owned();
    let cid = server
        .post("/v1/tenants/acme/credentials", smtp())
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .post(
            "/v1/tenants/acme/domains",
            json!({"domain": "support.acme.test"}),
        )
        .await;
    let created = server
        .post(
            "/v1/tenants/acme/webhook-endpoints",
            json!({"url": receiver().await, "event_types": ["api_key.created"]}),
        )
        .await;
    let eid = created.body["endpoint"]["id"]
        .as_str()
        .or(created.body["id"].as_str())
        .unwrap()
        .to_owned();
    let wid = server
        .post(
            "/v1/tenants/acme/widgets",
            json!({"name": "chat", "allowed_origins": ["https://www.acme.test"]}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .put_settings("acme", "smtp", json!({"host": "mail.acme.test"}))
        .await;
    let pid = provider(&server, "https://idp.acme.test/").await;
    let subject = format!("{pid}:alice");
    let reply = server
        .call(
            Method::PUT,
            &format!("/v1/tenants/acme/members/{subject}"),
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert!(reply.status.is_success(), "{reply:?}");
    let snapshot = || {
        let server = &server;
        let (kid, cid, eid, subject) = (&kid, &cid, &eid, &subject);
        async move {
            json!({
                "key": server.get(&format!("/v1/tenants/acme/api-keys/{kid}")).await.body,
                "credential": server.get(&format!("/v1/tenants/acme/credentials/{cid}")).await.body,
                "domains": server.get("/v1/tenants/acme/domains").await.body,
                "endpoint": server.get(&format!("/v1/tenants/acme/webhook-endpoints/{eid}")).await.body,
                "widgets": server.get("/v1/tenants/acme/widgets").await.body,
                "settings": server.get("/v1/tenants/acme/settings/smtp").await.body,
                "member": server.get(&format!("/v1/tenants/acme/members/{subject}")).await.body,
                "providers": server.get("/v1/identity-providers").await.body,
                "meters": server.get("/v1/meters").await.body,
                "workflows": server.get("/v1/provisioning").await.body,
            })
        }
    };
    let before = snapshot().await;

    // A tenant admin of globex: every acme page and form is not found, with
    // a valid session token and the confirmation given.
    let (globex_key, globex_key_id) = admin_key(&server, "globex").await;
    let (cookie, token) = http_sign_in(&server, &globex_key).await;
    let a = "/console/tenants/acme";
    for page in [
        format!("{a}/keys/{kid}"),
        format!("{a}/credentials/{cid}"),
        format!("{a}/settings?category=smtp"),
        format!("{a}/members"),
        format!("{a}/widgets"),
        format!("{a}/events"),
        format!("{a}/webhooks/{eid}"),
    ] {
        let r = raw(&server, Method::GET, &page, Some(&cookie), None, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{page}");
    }
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("{a}/keys/{kid}"), vec![("name", "taken over")]),
        (
            format!("{a}/keys/{kid}/enabled"),
            vec![("enabled", "false")],
        ),
        (
            format!("{a}/credentials/{cid}"),
            vec![("data", r#"{"password": "mine"}"#)],
        ),
        (format!("{a}/credentials/{cid}/delete"), vec![]),
        (
            format!("{a}/domains/remove"),
            vec![("domain", "support.acme.test")],
        ),
        (
            format!("{a}/settings"),
            vec![("category", "smtp"), ("data", "{}")],
        ),
        (
            format!("{a}/members"),
            vec![("subject", subject.as_str()), ("roles", "member")],
        ),
        (
            format!("{a}/members/remove"),
            vec![("subject", subject.as_str())],
        ),
        (
            format!("{a}/widgets"),
            vec![("name", "sneaky"), ("allowed_origins", "https://evil.test")],
        ),
        (
            format!("{a}/widgets/{wid}/enabled"),
            vec![("enabled", "false")],
        ),
        (
            format!("{a}/webhooks/{eid}"),
            vec![("url", "https://evil.test/hook")],
        ),
        (format!("{a}/webhooks/{eid}/rotate"), vec![]),
        (
            format!("{a}/webhooks/{eid}/replay"),
            vec![("since", "2020-01-01T00:00:00Z")],
        ),
        (format!("{a}/webhooks/{eid}/delete"), vec![]),
        (format!("{a}/data-key/rotate"), vec![]),
    ];
    for (path, fields) in &forms {
        let status = post_confirmed(&server, &cookie, &token, path, fields).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    // Its own tenant's forms work, acting as its key.
    let status = post_confirmed(
        &server,
        &cookie,
        &token,
        "/console/tenants/globex/widgets",
        &[
            ("name", "globex chat"),
            ("allowed_origins", "https://globex.test"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let widgets = server.get("/v1/tenants/globex/widgets").await.body;
    assert_eq!(widgets["data"][0]["name"], "globex chat");
    let audit = server
        .get("/v1/tenants/globex/audit?action=widget.created")
        .await
        .body;
    assert_eq!(
        audit["data"][0]["actor"]["id"],
        globex_key_id.as_str(),
        "{audit}"
    );
    // Operator pages and forms are not found for it either, even a data-key
    // rotation of its own tenant.
    for page in [
        "/console/provisioning",
        "/console/meters",
        "/console/identity-providers",
        "/console/audit",
    ] {
        let r = raw(&server, Method::GET, page, Some(&cookie), None, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{page}");
    }
    for (path, fields) in [
        ("/console/meters", vec![("name", "sneaky_meter")]),
        ("/console/provisioning", vec![("request", "{}")]),
        ("/console/identity-providers", vec![("settings", "{}")]),
        (
            "/console/identity-providers/remove",
            vec![("id", pid.as_str())],
        ),
        ("/console/tenants/globex/data-key/rotate", vec![]),
    ] {
        let status = post_confirmed(&server, &cookie, &token, path, &fields).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // The operator's own session: every destructive form without the token,
    // with a wrong one, or from another origin is refused.
    let (root, root_token) = http_sign_in(&server, ROOT_KEY).await;
    let destructive: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("{a}/keys/{kid}/enabled"),
            vec![("enabled", "false")],
        ),
        (format!("{a}/credentials/{cid}/delete"), vec![]),
        (
            format!("{a}/domains/remove"),
            vec![("domain", "support.acme.test")],
        ),
        (
            format!("{a}/members/remove"),
            vec![("subject", subject.as_str())],
        ),
        (
            format!("{a}/widgets/{wid}/enabled"),
            vec![("enabled", "false")],
        ),
        (format!("{a}/webhooks/{eid}/rotate"), vec![]),
        (format!("{a}/webhooks/{eid}/delete"), vec![]),
        (format!("{a}/data-key/rotate"), vec![]),
        (
            "/console/identity-providers/remove".to_owned(),
            vec![("id", pid.as_str())],
        ),
    ];
    for (path, fields) in &destructive {
        for (csrf, origin) in [
            (None, None),
            (Some("forged-token"), None),
            (Some(root_token.as_str()), Some("https://evil.example")),
        ] {
            let mut form = fields.clone();
            form.push(("confirm", "yes"));
            if let Some(csrf) = csrf {
                form.push(("csrf", csrf));
            }
            let r = raw(
                &server,
                Method::POST,
                path,
                Some(&root),
                Some(&form),
                origin,
            )
            .await;
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "{path} {csrf:?} {origin:?}"
            );
        }
    }
    // A destructive form without the confirmation only asks.
    let ask = [
        ("domain", "support.acme.test"),
        ("csrf", root_token.as_str()),
    ];
    let r = raw(
        &server,
        Method::POST,
        &format!("{a}/domains/remove"),
        Some(&root),
        Some(&ask),
        Some(&server.base),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("id=\"confirm\""));

    assert_eq!(snapshot().await, before);
}
