//! The web console at `/console`, end to end in headless Chromium (Debian's
//! `chromium` driven by `chromedriver` over the W3C WebDriver protocol,
//! spoken with reqwest), against the real server on both backends: sign-in
//! and sign-out, every page rendering seeded data, each form succeeding and
//! showing its validation errors, a tenant admin confined to its tenant
//! (`404` elsewhere), CSRF and Origin checks, session expiry, and the
//! security headers. Screenshots go to `target/console-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::console_browser;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use console_browser::{Browser, admin_key, csrf_of, raw, receiver, server_for};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;

on_both_backends!(
    console_end_to_end,
    tenant_admins_see_only_their_tenant,
    forms_need_the_session_token_and_origin,
    sessions_expire_idle_and_absolute
);

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const APP_SECRET: &str = "acme-meta-app-secret-0f1e2d3c";
const WA_TOKEN: &str = "EAAconsole-access-token-7788";

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Everything the pages show: tenants (enough for two pages), a domain, a
/// credential, usage, a webhook endpoint with a delivery, an inbound
/// conversation, a provisioning workflow.
async fn seed(server: &TestServer) {
    server.create_tenant("globex").await;
    for n in 0..26 {
        server.create_tenant(&format!("filler-{n:02}")).await;
    }
    let reply = server
        .post(
            "/v1/tenants/acme/domains",
            json!({"domain": "support.acme-corp.test"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let reply = server
        .post(
            "/v1/tenants/acme/credentials",
            json!({"kind": "whatsapp", "name": "Main number", "data": {
                "business_account_id": "1022901293403981", "phone_number_id": "1061234567890",
                "access_token": WA_TOKEN, "app_secret": APP_SECRET, "verify_token": "acme-verify",
            }}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let reply = server
        .post(
            "/v1/usage/events",
            json!({"events": [
                {"id": "u-1", "tenant_id": "acme", "meter": "messages_outbound", "quantity": 12},
                {"id": "u-2", "tenant_id": "acme", "meter": "api_calls", "quantity": 40},
            ]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let hook = receiver().await;
    let reply = server
        .post(
            "/v1/tenants/acme/webhook-endpoints",
            json!({"url": hook, "event_types": ["api_key.created"], "description": "CRM sync"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1022901293403981","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"1061234567890"},"contacts":[{"profile":{"name":"Maria Lopez"},"wa_id":"16315551181"}],"messages":[{"from":"16315551181","id":"wamid.console1","timestamp":"1767225600","text":{"body":"Hello from WhatsApp"},"type":"text"}]},"field":"messages"}]}]}"#;
    let resp = server
        .client
        .post(server.url("/v1/webhooks/whatsapp/acme"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let reply = server
        .post(
            "/v1/provisioning",
            json!({"tenant": {"id": "initech", "name": "Initech"},
                   "api_keys": [{"name": "bridge", "scopes": ["tenant:read"]}],
                   "config": {"branding": {"company_name": "Initech"}}}),
        )
        .await;
    assert!(reply.status.is_success(), "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let w = server.get(&format!("/v1/provisioning/{id}")).await;
        if w.body["status"] == "succeeded" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the provisioning workflow did not finish");
}

/// Waits (bounded) until the endpoint's delivery log has a message.
async fn wait_for_delivery(server: &TestServer) -> (String, String) {
    let endpoints = server.get("/v1/tenants/acme/webhook-endpoints").await;
    let eid = endpoints.body["data"][0]["id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let m = server
            .get(&format!(
                "/v1/tenants/acme/webhook-endpoints/{eid}/messages"
            ))
            .await;
        if let Some(mid) = m.body["data"][0]["id"].as_str() {
            return (eid, mid.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no delivery was logged");
}

// ---------------------------------------------------------------- the tests

async fn console_end_to_end(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server_for(&db, &[]).await;
    let b = Browser::start(&server, backend).await;

    // Signed out: every page leads to sign-in; a wrong key is refused.
    b.goto("/console/tenants").await;
    assert_eq!(b.path().await, "/console/sign-in");
    b.shot("sign-in").await;
    b.sign_in("tnt_live_notarealkey").await;
    assert!(b.text("#sign-in-error").await.contains("cannot sign in"));

    // The operator signs in and creates a tenant through the form: first
    // with errors shown by field, then for real.
    b.sign_in(ROOT_KEY).await;
    assert_eq!(b.path().await, "/console/tenants");
    assert_eq!(b.text("#who").await, "root");
    b.fill("#new-id", "Not A Slug!").await;
    b.fill("#new-name", "Acme").await;
    b.click("#create-tenant button").await;
    let errors = b.text("#form-errors").await;
    assert!(errors.contains("id"), "{errors}");
    b.shot("tenants-create-errors").await;
    b.fill("#new-id", "acme").await;
    b.fill("#new-name", "Acme <script>alert(1)</script>").await;
    b.click("#create-tenant button").await;
    assert_eq!(b.path().await, "/console/tenants/acme?created=1");
    // Output is escaped: the name shows as text, no script element exists.
    assert_eq!(
        b.text("#tenant-name").await,
        "Acme <script>alert(1)</script>"
    );
    assert_eq!(b.count("script").await, 0);
    seed(&server).await;

    // Tenants: list, search, filters, pagination.
    b.goto("/console/tenants").await;
    assert_eq!(b.count("#tenants tbody tr").await, 25);
    b.shot("tenants").await;
    b.click("#next-page").await;
    let rest = b.source().await;
    assert!(
        rest.contains("initech") && !rest.contains(">acme<"),
        "second page"
    );
    b.goto("/console/tenants?q=glob").await;
    assert_eq!(b.count("#tenants tbody tr").await, 1);
    assert!(b.text("#tenants").await.contains("globex"));
    server.post("/v1/tenants/globex/suspend", json!({})).await;
    b.goto("/console/tenants?status=suspended").await;
    assert_eq!(b.count("#tenants tbody tr").await, 1);
    b.goto("/console/tenants?status=nonsense").await;
    assert!(b.text("#form-errors").await.contains("status"));

    // Overview: details, domains with their DNS instructions, edit, status
    // actions behind a confirmation.
    b.goto("/console/tenants/acme").await;
    let domains = b.text("#domains").await;
    assert!(
        domains.contains("_tenantry-challenge.support.acme-corp.test"),
        "{domains}"
    );
    assert!(domains.contains("TXT"));
    b.shot("tenant-overview").await;
    b.fill("#add-domain input[name=domain]", "not a domain")
        .await;
    b.click("#add-domain button").await;
    assert!(b.text("#form-errors").await.contains("domain"));
    b.fill("#edit-name", "Acme Corp").await;
    b.click("#edit-tenant button").await;
    assert_eq!(b.text("#tenant-name").await, "Acme Corp");
    b.click("#action-suspend").await;
    assert!(b.text("#confirm").await.contains("Really suspend"));
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "active"
    );
    b.shot("tenant-confirm-suspend").await;
    b.click("#confirm-action").await;
    assert_eq!(b.text("#tenant-status").await, "suspended");
    b.click("#action-reactivate").await;
    b.click("#confirm-action").await;
    assert_eq!(
        b.text("#tenant-status").await,
        "active",
        "{}",
        b.text("main").await
    );

    // API keys: errors, create (shown once), rotate, revoke.
    b.goto("/console/tenants/acme/keys").await;
    b.click("#create-key button").await;
    assert!(b.text("#form-errors").await.contains("name"));
    b.fill("#key-name", "ci deploy").await;
    b.click("#create-key input[value='keys:read']").await;
    b.fill("#key-expires", "next tuesday").await;
    b.click("#create-key button").await;
    assert!(b.text("#form-errors").await.contains("expires_at"));
    b.fill("#key-name", "ci deploy").await;
    b.click("#create-key input[value='keys:read']").await;
    b.click("#create-key button").await;
    let secret = b.text("#new-key-value").await;
    assert!(secret.starts_with("tnt_"), "{secret}");
    b.shot("tenant-keys-created").await;
    let verify = server.post("/v1/keys/verify", json!({"key": secret})).await;
    assert_eq!(verify.body["valid"], true);
    let key_id = verify.body["key_id"].as_str().unwrap().to_owned();
    // Shown once: the list never holds it.
    b.goto("/console/tenants/acme/keys").await;
    assert!(!b.source().await.contains(&secret));
    b.click(&format!(
        "tr[data-key='{key_id}'] form[action$='/rotate'] button"
    ))
    .await;
    let rotated = b.text("#new-key-value").await;
    assert_ne!(rotated, secret);
    assert_eq!(
        server
            .post("/v1/keys/verify", json!({"key": secret}))
            .await
            .body["valid"],
        false
    );
    assert_eq!(
        server
            .post("/v1/keys/verify", json!({"key": rotated}))
            .await
            .body["valid"],
        true
    );
    let new_id = server
        .post("/v1/keys/verify", json!({"key": rotated}))
        .await
        .body["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.click(&format!(
        "tr[data-key='{new_id}'] form[action$='/revoke'] button"
    ))
    .await;
    assert!(b.text("#notice").await.contains("revoked"));
    assert_eq!(
        server
            .post("/v1/keys/verify", json!({"key": rotated}))
            .await
            .body["code"],
        "REVOKED"
    );

    // Configuration: not JSON, refused by the API's validation, then saved.
    b.goto("/console/tenants/acme/config").await;
    b.fill("#config-patch", "{not json").await;
    b.click("#config-form button").await;
    assert!(b.text("#form-errors").await.contains("patch"));
    b.fill("#config-patch", r#"{"branding": 5}"#).await;
    b.click("#config-form button").await;
    assert!(b.text("#form-errors").await.contains("branding"));
    b.shot("tenant-config-errors").await;
    b.fill(
        "#config-patch",
        r#"{"branding": {"company_name": "Acme Corp"}}"#,
    )
    .await;
    b.click("#config-form button").await;
    assert!(b.text("#notice").await.contains("saved"));
    assert!(b.text("#effective-config").await.contains("Acme Corp"));
    b.shot("tenant-config").await;

    // Credentials: masked, then an audited reveal.
    b.goto("/console/tenants/acme/credentials").await;
    let page = b.source().await;
    assert!(
        !page.contains(WA_TOKEN) && !page.contains(APP_SECRET),
        "masked"
    );
    assert!(b.text("#credentials").await.contains("****"));
    b.shot("tenant-credentials").await;
    b.fill("#cred-name", "broken").await;
    b.fill("#cred-data", "[1, 2]").await;
    b.click("#create-credential button").await;
    assert!(b.text("#form-errors").await.contains("data"));
    b.click("#credentials form[action$='/reveal'] button").await;
    assert!(b.text("#revealed-data").await.contains(WA_TOKEN));
    let audit = server
        .get("/v1/tenants/acme/audit?action=credential.revealed")
        .await;
    assert_eq!(audit.body["data"].as_array().unwrap().len(), 1, "{audit:?}");
    assert_eq!(audit.body["data"][0]["actor"]["id"], "root");

    // Audit timeline with the chain verified.
    b.goto("/console/tenants/acme/audit").await;
    assert_eq!(b.text("#chain-status").await, "verified");
    assert!(b.text("#audit").await.contains("credential.revealed"));
    b.shot("tenant-audit").await;
    b.goto("/console/tenants/acme/audit?outcome=bogus").await;
    assert!(b.text("#form-errors").await.contains("outcome"));

    // Usage charts and quotas.
    b.goto("/console/tenants/acme/usage").await;
    assert!(
        b.count("section[data-meter='messages_outbound'] svg rect")
            .await
            >= 1
    );
    assert!(b.text("#usage-month").await.contains("messages_outbound"));
    b.shot("tenant-usage").await;
    b.goto("/console/tenants/acme/usage?from=yesterday").await;
    assert!(b.text("#form-errors").await.contains("from"));
    b.goto("/console/tenants/acme/quotas").await;
    assert!(b.count("#quotas tbody tr").await >= 1);
    b.shot("tenant-quotas").await;

    // Webhooks: endpoints, the delivery log, a replay; a refused endpoint.
    let (eid, mid) = wait_for_delivery(&server).await;
    b.goto("/console/tenants/acme/webhooks").await;
    assert!(b.text("#endpoints").await.contains("/hook"));
    b.fill("#endpoint-url", "ftp://nowhere").await;
    b.click("#create-endpoint button").await;
    assert!(b.text("#form-errors").await.contains("url"));
    b.goto(&format!("/console/tenants/acme/webhooks/{eid}"))
        .await;
    assert!(b.text("#deliveries").await.contains("api_key.created"));
    b.shot("tenant-webhook-deliveries").await;
    b.click("#deliveries form button").await;
    assert!(b.text("#notice").await.contains(&mid));

    // Provisioning progress and conversations.
    b.goto("/console/tenants/initech/provisioning").await;
    assert!(b.text(".workflow").await.contains("succeeded"));
    b.shot("tenant-provisioning").await;
    b.goto("/console/tenants/acme/conversations").await;
    assert!(
        b.text(".conversation")
            .await
            .contains("Hello from WhatsApp")
    );
    b.shot("tenant-conversations").await;

    // Operator pages.
    b.goto("/console/plans").await;
    assert!(b.text("#plans").await.contains("professional"));
    b.fill("#plan-name", "scale").await;
    b.fill(
        "#plan-definition",
        r#"{"quotas": {"messages_outbound": -5}}"#,
    )
    .await;
    b.click("#plan-form button").await;
    assert!(b.text("#form-errors").await.contains("quotas"));
    b.fill("#plan-name", "scale").await;
    b.fill(
        "#plan-definition",
        r#"{"description": "Scale tier", "quotas": {"messages_outbound": 50000}}"#,
    )
    .await;
    b.click("#plan-form button").await;
    assert!(b.text("#plans").await.contains("Scale tier"));
    b.shot("plans").await;
    b.goto("/console/operator-keys").await;
    b.click("#create-operator-key button").await;
    assert!(b.text("#form-errors").await.contains("name"));
    b.fill("#op-key-name", "backup operator").await;
    b.click("#create-operator-key button").await;
    let op_key = b.text("#new-key-value").await;
    assert!(op_key.starts_with("tnt_op_"), "{op_key}");
    b.shot("operator-keys").await;
    b.click("#operator-keys form button").await;
    assert!(b.text("#notice").await.contains("revoked"));
    let denied = server
        .call_as(Some(&op_key), Method::GET, "/v1/tenants", None)
        .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    b.goto("/console/keyring").await;
    assert!(!b.text("#active-kek").await.is_empty());
    b.shot("keyring").await;
    b.goto("/console/signing-keys").await;
    let before = b.text("#token-keys").await;
    b.click("#rotate-token-key button").await;
    assert!(b.text("#notice").await.contains("rotated"));
    assert_ne!(b.text("#token-keys").await, before);
    b.shot("signing-keys").await;

    // The console acted as the operator: its changes are audited so.
    let created = server
        .get("/v1/tenants/acme/audit?action=tenant.suspended")
        .await;
    assert_eq!(
        created.body["data"][0]["actor"]["id"], "root",
        "{created:?}"
    );

    // Sign-out ends the session on the server too.
    let cookie = b.cookie("tenantry_console").await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    b.click("#sign-out").await;
    assert_eq!(b.path().await, "/console/sign-in");
    let after = raw(
        &server,
        Method::GET,
        "/console/tenants",
        Some(&cookie),
        None,
        None,
    )
    .await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()["location"], "/console/sign-in");
    b.quit().await;
}

async fn tenant_admins_see_only_their_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server_for(&db, &[]).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let (key, key_id) = admin_key(&server, "acme").await;
    let (reader, _) = {
        let reply = server
            .post(
                "/v1/tenants/acme/api-keys",
                json!({"name": "reader", "scopes": ["tenant:read"]}),
            )
            .await;
        (reply.body["key"].as_str().unwrap().to_owned(), ())
    };
    let b = Browser::start(&server, backend).await;

    // A key without tenant:admin cannot sign in.
    b.sign_in(&reader).await;
    assert!(b.text("#sign-in-error").await.contains("tenant:admin"));

    b.sign_in(&key).await;
    assert_eq!(b.path().await, "/console/tenants/acme");
    b.shot("tenant-admin-home").await;
    let cookie = b.cookie("tenantry_console").await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every page of another tenant, the tenant list and operator pages are
    // not found.
    for page in [
        "",
        "/keys",
        "/config",
        "/credentials",
        "/audit",
        "/usage",
        "/quotas",
        "/webhooks",
        "/provisioning",
        "/conversations",
        "/settings",
        "/members",
        "/widgets",
        "/events",
    ] {
        let path = format!("/console/tenants/globex{page}");
        b.goto(&path).await;
        assert_eq!(b.text("#error-title").await, "Not found", "{path}");
        let r = raw(&server, Method::GET, &path, Some(&cookie), None, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    b.shot("tenant-admin-foreign-404").await;
    for path in [
        "/console/tenants",
        "/console/plans",
        "/console/operator-keys",
        "/console/keyring",
        "/console/signing-keys",
        "/console/provisioning",
        "/console/meters",
        "/console/identity-providers",
        "/console/audit",
    ] {
        let r = raw(&server, Method::GET, path, Some(&cookie), None, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A form posted at the other tenant, with a valid token: 404, nothing made.
    b.goto("/console/tenants/acme/keys").await;
    let token = csrf_of(&b.source().await);
    let r = raw(
        &server,
        Method::POST,
        "/console/tenants/globex/keys",
        Some(&cookie),
        Some(&[
            ("csrf", &token),
            ("name", "sneaky"),
            ("scopes", "tenant:admin"),
        ]),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        server.get("/v1/tenants/globex/api-keys").await.body["data"],
        json!([])
    );

    // Its own tenant works, acting as its key: the audit names the key.
    b.fill("#key-name", "from the console").await;
    b.click("#create-key input[value='tenant:read']").await;
    b.click("#create-key button").await;
    assert!(b.text("#new-key-value").await.starts_with("tnt_"));
    let audit = server
        .get("/v1/tenants/acme/audit?action=api_key.created")
        .await;
    let last = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actor"]["id"] == key_id.as_str());
    assert!(last.is_some(), "{audit:?}");
    // Rate limits and quotas stay the operator's: a tenant admin's config
    // change of them is refused with the API's own error, shown on the form.
    b.goto("/console/tenants/acme/config").await;
    b.fill("#config-patch", r#"{"features": {"beta": true}}"#)
        .await;
    b.click("#config-form button").await;
    assert!(b.text("#form-errors").await.contains("features"));

    // Revoking the key ends the session at the next request.
    server
        .post(
            &format!("/v1/tenants/acme/api-keys/{key_id}/revoke"),
            json!({}),
        )
        .await;
    b.goto("/console/tenants/acme").await;
    assert_eq!(b.path().await, "/console/sign-in");
    b.quit().await;
}

async fn forms_need_the_session_token_and_origin(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server_for(&db, &[]).await;
    server.create_tenant("acme").await;
    let b = Browser::start(&server, backend).await;
    b.sign_in(ROOT_KEY).await;
    let cookie_info = b.cookie("tenantry_console").await;
    assert_eq!(cookie_info["httpOnly"], true);
    assert_eq!(cookie_info["sameSite"], "Strict");
    let cookie = cookie_info["value"].as_str().unwrap().to_owned();
    b.goto("/console/tenants/acme").await;
    let token = csrf_of(&b.source().await);
    let suspend = |csrf: Option<&'static str>| {
        let mut form: Vec<(&str, &str)> = vec![("action", "suspend"), ("confirm", "yes")];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        form
    };
    let path = "/console/tenants/acme/status";
    let no_token = raw(
        &server,
        Method::POST,
        path,
        Some(&cookie),
        Some(&suspend(None)),
        None,
    )
    .await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong = raw(
        &server,
        Method::POST,
        path,
        Some(&cookie),
        Some(&suspend(Some("forged-token"))),
        None,
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let mut good = suspend(None);
    good.push(("csrf", token.as_str()));
    let foreign = raw(
        &server,
        Method::POST,
        path,
        Some(&cookie),
        Some(&good),
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "active"
    );
    // No session: to sign-in, nothing done.
    let anonymous = raw(&server, Method::POST, path, None, Some(&good), None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "active"
    );
    // The right token from this origin works.
    let ok = raw(
        &server,
        Method::POST,
        path,
        Some(&cookie),
        Some(&good),
        Some(&server.base),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "suspended"
    );

    // Headers of every page: the strict CSP, no framing.
    let page = raw(
        &server,
        Method::GET,
        "/console/tenants",
        Some(&cookie),
        None,
        None,
    )
    .await;
    assert_eq!(page.headers()["content-security-policy"], CSP);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let css = raw(
        &server,
        Method::GET,
        "/console/assets/console.css",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    // Sign-in itself: the form's own token, and the cookie's flags (Secure
    // behind a TLS terminator).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form_page = client
        .get(server.url("/console/sign-in"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let pre = form_page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        pre.contains("Secure") && pre.contains("HttpOnly") && pre.contains("SameSite=Strict"),
        "{pre}"
    );
    let pre_value = pre.split(';').next().unwrap().to_owned();
    let html = form_page.text().await.unwrap();
    let sign_token = csrf_of(&html);
    let refused = client
        .post(server.url("/console/sign-in"))
        .header("cookie", &pre_value)
        .form(&[("csrf", "wrong"), ("key", ROOT_KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let signed = client
        .post(server.url("/console/sign-in"))
        .header("cookie", &pre_value)
        .header("x-forwarded-proto", "https")
        .form(&[("csrf", sign_token.as_str()), ("key", ROOT_KEY)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tenantry_console="))
        .unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Secure"),
        "{session}"
    );
    // The cookie holds a random id, never the key.
    assert!(!session.contains(ROOT_KEY));
    assert!(!server.logs().contains(ROOT_KEY));
    b.quit().await;
}

async fn sessions_expire_idle_and_absolute(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Idle expiry: 2 s without a request.
    let server = server_for(&db, &[("TENANTRY_CONSOLE_SESSION_IDLE", "2s")]).await;
    let b = Browser::start(&server, backend).await;
    b.sign_in(ROOT_KEY).await;
    assert_eq!(b.path().await, "/console/tenants");
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.goto("/console/plans").await;
    assert_eq!(b.path().await, "/console/sign-in");
    b.quit().await;
    drop(server);

    // Absolute expiry: 3 s however active.
    let db = TestDb::new(backend).await;
    let server = server_for(&db, &[("TENANTRY_CONSOLE_SESSION_MAX", "3s")]).await;
    let b = Browser::start(&server, backend).await;
    b.sign_in(ROOT_KEY).await;
    assert_eq!(b.path().await, "/console/tenants");
    let mut ended = false;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.goto("/console/plans").await;
        if b.path().await == "/console/sign-in" {
            ended = true;
            break;
        }
    }
    assert!(ended, "the session outlived its absolute expiry");
    b.quit().await;
}
