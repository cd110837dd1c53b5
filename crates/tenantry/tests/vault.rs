//! The credential vault over HTTP, on both backends: sealing, masking,
//! reveal with scope and access log, settings, tampering, key rotation under
//! load, crypto-shredding, and secrets absent from storage bytes and logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    kinds_are_validated_and_masked,
    reveal_needs_the_scope_and_is_logged,
    updates_keep_sealed_values,
    cross_tenant_credentials_are_not_found,
    settings_are_sealed_at_any_depth,
    secrets_never_stored_or_logged_in_clear,
    tampered_or_moved_ciphertexts_fail_explicitly,
    kek_rotation_under_load,
    tenant_data_key_rotation,
    purge_shreds_the_data_key,
    concurrent_kek_rotations_keep_every_key,
    private_files_and_no_key_material_in_storage,
    settings_depth_is_bounded,
    purge_leaves_no_wrapped_key_in_the_files,
    keyring_write_failure_has_its_own_code,
    two_nodes_agree_on_one_signing_key,
);

const ACCESS_TOKEN: &str = "EAAGm0PX4ZCpsBAKZCZBvery-secret-access-token-4242";
const APP_SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn whatsapp() -> Value {
    json!({
        "kind": "whatsapp",
        "name": "Main number",
        "data": {
            "business_account_id": "102290129340398",
            "phone_number_id": "106540352242922",
            "display_name": "Acme Support",
            "access_token": ACCESS_TOKEN,
            "app_secret": APP_SECRET,
            "verify_token": "verify-me",
        }
    })
}

async fn create(server: &TestServer, tenant: &str, mut body: Value) -> Value {
    own_number(tenant, &mut body);
    let reply = server
        .post(&format!("/v1/tenants/{tenant}/credentials"), body)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body
}

/// A WhatsApp number belongs to one tenant: each test tenant gets its own
/// (derived from its id; acme keeps the usual one).
fn own_number(tenant: &str, body: &mut Value) {
    if tenant != "acme"
        && body["kind"] == "whatsapp"
        && body["data"]["phone_number_id"] == "106540352242922"
    {
        let n: u64 = tenant
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
            % 1_000_000;
        body["data"]["phone_number_id"] = json!(format!("106540352{n:06}"));
        body["data"]["business_account_id"] = json!(format!("102290129{n:06}"));
    }
}

/// The errors a test that breaks ciphertexts or data keys on purpose makes
/// the server log.
fn expect_decryption_failures(server: &TestServer) {
    server.expect_warning("a sealed secret could not be opened");
    server.expect_warning("Status code: 500");
}

async fn reveal(server: &TestServer, tenant: &str, id: &str) -> common::Reply {
    server
        .post(
            &format!("/v1/tenants/{tenant}/credentials/{id}/reveal"),
            json!({}),
        )
        .await
}

async fn kinds_are_validated_and_masked(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let cred = create(&server, "acme", whatsapp()).await;
    assert!(cred["id"].as_str().unwrap().starts_with("cred_"));
    assert_eq!(cred["kind"], "whatsapp");
    assert_eq!(cred["is_active"], true);
    assert!(cred["last_revealed_at"].is_null());
    let data = &cred["data"];
    assert_eq!(data["phone_number_id"], "106540352242922");
    assert_eq!(data["access_token"], "****4242");
    assert_eq!(data["app_secret"], "****e1f0");
    assert_eq!(
        data["verify_token"], "****",
        "nothing of a value shorter than 12 characters"
    );
    assert_eq!(
        cred["sealed_fields"],
        json!(["access_token", "app_secret", "verify_token"])
    );

    let genesys = create(
        &server,
        "acme",
        json!({"kind": "genesys", "name": "Genesys EU", "data": {"region": "eu_west_1", "client_id": "5f2a-client-id-1234", "client_secret": "gen-secret-value-9999"}}),
    )
    .await;
    assert_eq!(genesys["data"]["client_id"], "****1234");
    assert_eq!(genesys["data"]["api_host"], "api.mypurecloud.ie");
    let smtp = create(
        &server,
        "acme",
        json!({"kind": "smtp", "name": "Mail", "data": {"host": "smtp.example.com", "port": 587, "username": "apikey", "password": "smtp-password-5678", "from": "no-reply@acme.com"}}),
    )
    .await;
    assert_eq!(smtp["data"]["port"], 587);
    assert_eq!(smtp["data"]["username"], "apikey");
    assert_eq!(smtp["data"]["password"], "****5678");
    let oauth = create(
        &server,
        "acme",
        json!({"kind": "oauth_client", "name": "CRM", "data": {"client_id": "crm-client", "client_secret": "oauth-secret-abcd", "token_url": "https://login.example.com/oauth/token", "scopes": ["a", "b"]}}),
    )
    .await;
    assert_eq!(oauth["data"]["client_id"], "crm-client");
    let generic = create(
        &server,
        "acme",
        json!({"kind": "generic", "name": "Other", "data": {"endpoint": "https://x.example", "API-Key": "generic-api-key-0000", "retries": 3, "privateKey": {"pem": "-----BEGIN-----"}}}),
    )
    .await;
    assert_eq!(generic["data"]["API-Key"], "****0000");
    assert_eq!(generic["data"]["endpoint"], "https://x.example");
    assert_eq!(generic["data"]["retries"], 3);
    assert!(
        generic["sealed_fields"]
            .as_array()
            .unwrap()
            .contains(&json!("privateKey"))
    );

    let list = server.get("/v1/tenants/acme/credentials").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 5);
    assert!(!list.text.contains(ACCESS_TOKEN) && !list.text.contains("gen-secret-value"));
    let one = server
        .get(&format!(
            "/v1/tenants/acme/credentials/{}",
            cred["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one.body, cred);

    // Validation names the field.
    let mut cases = vec![
        (json!({"kind": "telegram", "name": "x", "data": {}}), "kind"),
        (json!({"kind": "whatsapp", "name": "", "data": {}}), "name"),
        (
            json!({"kind": "whatsapp", "name": "x", "data": "nope"}),
            "data",
        ),
        (
            json!({"kind": "genesys", "name": "x", "data": {"region": "mars_1", "client_id": "a", "client_secret": "b"}}),
            "data.region",
        ),
        (
            json!({"kind": "smtp", "name": "x", "data": {"host": "smtp.x.com", "port": 70000, "username": "u", "password": "p"}}),
            "data.port",
        ),
        (
            json!({"kind": "smtp", "name": "x", "data": {"host": "not a host", "port": 25, "username": "u", "password": "p"}}),
            "data.host",
        ),
        (
            json!({"kind": "smtp", "name": "x", "data": {"host": "smtp.x.com", "port": 25, "username": "u", "password": "p", "from": "nobody"}}),
            "data.from",
        ),
        (
            json!({"kind": "oauth_client", "name": "x", "data": {"client_id": "c", "client_secret": "s", "token_url": "http://insecure.example/token"}}),
            "data.token_url",
        ),
        (json!({"kind": "generic", "name": "x", "data": {}}), "data"),
    ];
    let mut missing = whatsapp();
    missing["data"]
        .as_object_mut()
        .unwrap()
        .remove("app_secret");
    cases.push((missing, "data.app_secret"));
    let mut unknown = whatsapp();
    unknown["data"]["colour"] = json!("blue");
    cases.push((unknown, "data.colour"));
    let mut wrong_type = whatsapp();
    wrong_type["data"]["access_token"] = json!(42);
    cases.push((wrong_type, "data.access_token"));
    for (body, field) in cases {
        let reply = server
            .post("/v1/tenants/acme/credentials", body.clone())
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        reply.assert_invalid(field);
    }
    assert_eq!(
        server.get("/v1/tenants/acme/credentials").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "nothing half-written"
    );
}

async fn reveal_needs_the_scope_and_is_logged(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let id = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = |scopes: &[&str]| {
        let server = &server;
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        async move {
            server
                .post(
                    "/v1/tenants/acme/api-keys",
                    json!({"name": "k", "scopes": scopes}),
                )
                .await
                .body["key"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let reader = key(&["credentials:read"]).await;
    let revealer = key(&["credentials:reveal"]).await;

    // Reading with credentials:read shows masks only; reveal needs its scope.
    let masked = server
        .call_as(
            Some(&reader),
            Method::GET,
            &format!("/v1/tenants/acme/credentials/{id}"),
            None,
        )
        .await;
    assert_eq!(masked.status, StatusCode::OK);
    let denied = server
        .call_as(
            Some(&reader),
            Method::POST,
            &format!("/v1/tenants/acme/credentials/{id}/reveal"),
            Some(json!({})),
        )
        .await;
    assert!(
        denied.assert_problem(403, "insufficient_scope")["detail"]
            .as_str()
            .unwrap()
            .contains("credentials:reveal")
    );

    let revealed = server
        .client
        .post(server.url(&format!("/v1/tenants/acme/credentials/{id}/reveal")))
        .bearer_auth(&revealer)
        .header("x-request-id", "reveal-req-1")
        .header("user-agent", "vault-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(revealed.status(), StatusCode::OK);
    let body: Value = revealed.json().await.unwrap();
    assert_eq!(body["data"]["access_token"], ACCESS_TOKEN);
    assert_eq!(body["data"]["app_secret"], APP_SECRET);
    assert_eq!(body["data"]["verify_token"], "verify-me");
    assert_eq!(body["data"]["phone_number_id"], "106540352242922");
    // Operators may reveal too.
    assert_eq!(
        reveal(&server, "acme", &id).await.body["data"]["access_token"],
        ACCESS_TOKEN
    );

    let log = server
        .get(&format!("/v1/tenants/acme/credentials/{id}/access-log"))
        .await;
    assert_eq!(log.status, StatusCode::OK);
    let entries = log.body["data"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "every reveal is recorded, not the denied one"
    );
    assert_eq!(entries[0]["action"], "reveal");
    assert!(
        entries[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("key:key_")
    );
    assert_eq!(entries[0]["request_id"], "reveal-req-1");
    assert_eq!(entries[0]["user_agent"], "vault-test/1.0");
    assert_eq!(entries[0]["source_ip"], "127.0.0.1");
    assert_eq!(entries[1]["actor"], "operator:root");
    let cred = server
        .get(&format!("/v1/tenants/acme/credentials/{id}"))
        .await
        .body;
    assert!(cred["last_revealed_at"].is_string());
    server
        .get("/v1/tenants/acme/credentials/cred_nope/access-log")
        .await
        .assert_problem(404, "credential_not_found");
}

async fn updates_keep_sealed_values(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let id = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/tenants/acme/credentials/{id}");
    let patched = server.patch(&path, json!({"name": "Renamed", "data": {"display_name": "New name", "verify_token": "a-new-verify-token"}})).await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");
    assert_eq!(patched.body["name"], "Renamed");
    assert_eq!(patched.body["data"]["verify_token"], "****oken");
    let plain = reveal(&server, "acme", &id).await.body;
    assert_eq!(
        plain["data"]["access_token"], ACCESS_TOKEN,
        "left out: kept"
    );
    assert_eq!(plain["data"]["verify_token"], "a-new-verify-token");
    assert_eq!(plain["data"]["display_name"], "New name");
    server
        .patch(&path, json!({"data": {"access_token": null}}))
        .await
        .assert_invalid("data.access_token");
    server
        .patch(&path, json!({"data": {"phone_number_id": "abc"}}))
        .await
        .assert_invalid("data.phone_number_id");
    server
        .patch(
            &path,
            json!({"data": {"display_name": null}, "is_active": false}),
        )
        .await;
    let after = server.get(&path).await.body;
    assert!(after["data"].get("display_name").is_none());
    assert_eq!(after["is_active"], false);
    assert_eq!(server.delete(&path).await.status, StatusCode::NO_CONTENT);
    server
        .get(&path)
        .await
        .assert_problem(404, "credential_not_found");
    server
        .delete(&path)
        .await
        .assert_problem(404, "credential_not_found");
}

async fn cross_tenant_credentials_are_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let globex_cred = create(&server, "globex", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .put_settings(
            "globex",
            "smtp",
            json!({"password": "globex-settings-secret"}),
        )
        .await;
    let acme_admin = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": ["tenant:admin"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        (Method::GET, "/v1/tenants/globex/credentials".to_owned()),
        (Method::POST, "/v1/tenants/globex/credentials".to_owned()),
        (
            Method::GET,
            format!("/v1/tenants/globex/credentials/{globex_cred}"),
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/globex/credentials/{globex_cred}"),
        ),
        (
            Method::DELETE,
            format!("/v1/tenants/globex/credentials/{globex_cred}"),
        ),
        (
            Method::POST,
            format!("/v1/tenants/globex/credentials/{globex_cred}/reveal"),
        ),
        (
            Method::GET,
            format!("/v1/tenants/globex/credentials/{globex_cred}/access-log"),
        ),
        (Method::GET, "/v1/tenants/globex/settings/smtp".to_owned()),
        (Method::PUT, "/v1/tenants/globex/settings/smtp".to_owned()),
        (
            Method::POST,
            "/v1/tenants/globex/settings/smtp/reveal".to_owned(),
        ),
    ] {
        let body = match method {
            Method::POST if path.ends_with("/credentials") => Some(whatsapp()),
            Method::POST => Some(json!({})),
            Method::PATCH => Some(json!({"name": "stolen"})),
            Method::PUT => Some(json!({"password": "x"})),
            _ => None,
        };
        server
            .call_as(Some(&acme_admin), method, &path, body)
            .await
            .assert_problem(404, "tenant_not_found");
    }
    // globex's credential id under acme's own path is not found.
    for path in [
        format!("/v1/tenants/acme/credentials/{globex_cred}"),
        format!("/v1/tenants/acme/credentials/{globex_cred}/access-log"),
    ] {
        server
            .call_as(Some(&acme_admin), Method::GET, &path, None)
            .await
            .assert_problem(404, "credential_not_found");
    }
    server
        .call_as(
            Some(&acme_admin),
            Method::POST,
            &format!("/v1/tenants/acme/credentials/{globex_cred}/reveal"),
            Some(json!({})),
        )
        .await
        .assert_problem(404, "credential_not_found");
    server
        .call_as(
            Some(&acme_admin),
            Method::GET,
            "/v1/tenants/acme/settings/smtp",
            None,
        )
        .await
        .assert_problem(404, "settings_not_found");
    assert_eq!(
        reveal(&server, "globex", &globex_cred).await.body["data"]["access_token"],
        ACCESS_TOKEN,
        "untouched"
    );
}

async fn settings_are_sealed_at_any_depth(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let settings = json!({
        "provider": "sendgrid",
        "smtp": {"host": "smtp.sendgrid.net", "password": "settings-smtp-password-1", "port": 587},
        "webhooks": [{"url": "https://acme.example/hook", "signing_secret": "whsec_settings_secret_2"}],
        "apiKey": "settings-top-level-api-key-3",
        "limits": {"max": 5}
    });
    let put = server
        .put_settings("acme", "messaging", settings.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let masked = server.get("/v1/tenants/acme/settings/messaging").await;
    assert_eq!(masked.body["data"]["provider"], "sendgrid");
    assert_eq!(masked.body["data"]["smtp"]["host"], "smtp.sendgrid.net");
    assert_eq!(masked.body["data"]["smtp"]["password"], "****rd-1");
    assert_eq!(
        masked.body["data"]["webhooks"][0]["signing_secret"],
        "****et_2"
    );
    assert_eq!(masked.body["data"]["apiKey"], "****ey-3");
    assert_eq!(masked.body["data"]["limits"], json!({"max": 5}));
    assert!(!masked.text.contains("settings-smtp-password-1"));
    let revealed = server
        .post("/v1/tenants/acme/settings/messaging/reveal", json!({}))
        .await;
    assert_eq!(revealed.status, StatusCode::OK, "{revealed:?}");
    assert_eq!(revealed.body["data"], settings);
    // Replaced wholesale by PUT.
    server
        .put_settings("acme", "messaging", json!({"token": "short"}))
        .await;
    assert_eq!(
        server.get("/v1/tenants/acme/settings/messaging").await.body["data"],
        json!({"token": "****"})
    );
    server
        .put_settings("acme", "messaging", json!(["not", "an", "object"]))
        .await
        .assert_invalid("body");
    server
        .put_settings("acme", "messaging", json!({"$sealed": "forged"}))
        .await
        .assert_invalid("$sealed");
    server
        .put_settings("acme", "Bad Category", json!({}))
        .await
        .assert_problem(404, "settings_not_found");
    server
        .get("/v1/tenants/acme/settings/other")
        .await
        .assert_problem(404, "settings_not_found");
    let reader = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": ["credentials:read"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .call_as(
            Some(&reader),
            Method::POST,
            "/v1/tenants/acme/settings/messaging/reveal",
            Some(json!({})),
        )
        .await
        .assert_problem(403, "insufficient_scope");
}

async fn secrets_never_stored_or_logged_in_clear(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_LOG_LEVEL", "trace"),
        ],
    )
    .await;
    server.create_tenant("acme").await;
    let id = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .put_settings(
            "acme",
            "smtp",
            json!({"password": "settings-known-secret-77"}),
        )
        .await;
    reveal(&server, "acme", &id).await;
    server
        .post("/v1/tenants/acme/settings/smtp/reveal", json!({}))
        .await;
    server.stop().await;
    let bytes = db.raw_bytes().await;
    assert!(bytes.len() > 1000);
    for secret in [
        ACCESS_TOKEN,
        APP_SECRET,
        "settings-known-secret-77",
        "verify-me",
    ] {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "a secret is stored in clear");
        assert!(!server.logs().contains(secret), "a secret is in the logs");
    }
    // The public fields are there (the dump is real).
    assert!(bytes.windows(15).any(|w| w == b"106540352242922"));
}

async fn tampered_or_moved_ciphertexts_fail_explicitly(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    expect_decryption_failures(&server);
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let a = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let g = create(&server, "globex", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Move a's sealed fields onto b (same tenant, other record).
    assert_eq!(
        db.exec(&format!(
            "UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE id = '{a}') WHERE id = '{b}'"
        ))
        .await,
        1
    );
    let moved = reveal(&server, "acme", &b).await;
    moved.assert_problem(500, "decryption_failed");
    // Move acme's sealed fields onto globex's record (other tenant, other key).
    db.exec(&format!("UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE id = '{a}') WHERE id = '{g}'")).await;
    reveal(&server, "globex", &g)
        .await
        .assert_problem(500, "decryption_failed");
    let c = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A flipped character in the envelope of c, whatever its last character.
    let flip = match backend {
        Backend::Sqlite => format!(
            "UPDATE credentials SET sealed = json_set(sealed, '$.access_token.v', substr(json_extract(sealed, '$.access_token.v'), 1, 60) || CASE substr(json_extract(sealed, '$.access_token.v'), 61, 1) WHEN 'x' THEN 'y' ELSE 'x' END || substr(json_extract(sealed, '$.access_token.v'), 62)) WHERE id = '{c}'"
        ),
        Backend::Postgres => format!(
            "UPDATE credentials SET sealed = jsonb_set(sealed, '{{access_token,v}}', to_jsonb(substr(sealed->'access_token'->>'v', 1, 60) || CASE substr(sealed->'access_token'->>'v', 61, 1) WHEN 'x' THEN 'y' ELSE 'x' END || substr(sealed->'access_token'->>'v', 62))) WHERE id = '{c}'"
        ),
    };
    assert_eq!(db.exec(&flip).await, 1);
    let tampered = reveal(&server, "acme", &c).await;
    tampered.assert_problem(500, "decryption_failed");
    assert!(!tampered.text.contains(ACCESS_TOKEN));
    // Garbage in place of an envelope.
    let garbage = match backend {
        Backend::Sqlite => format!(
            "UPDATE credentials SET sealed = json_set(sealed, '$.app_secret.v', 'not-an-envelope') WHERE id = '{c}'"
        ),
        Backend::Postgres => format!(
            "UPDATE credentials SET sealed = jsonb_set(sealed, '{{app_secret,v}}', '\"not-an-envelope\"') WHERE id = '{c}'"
        ),
    };
    db.exec(&garbage).await;
    reveal(&server, "acme", &c)
        .await
        .assert_problem(500, "decryption_failed");
    // Masked reads still work; the server is fine.
    assert_eq!(
        server
            .get(&format!("/v1/tenants/acme/credentials/{c}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(server.get("/healthz").await.status, StatusCode::OK);
}

type Creds = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;
type Readers = (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Vec<tokio::task::JoinHandle<(u32, Vec<String>)>>,
);

/// Clients revealing every credential in `creds` (and its tenant's
/// settings) in a loop until `stop`, each at least 3 rounds; bounded by a
/// round count and `deadline`, failing instead of spinning. Each returns
/// (successful reads, failure descriptions).
fn start_readers(
    server: &TestServer,
    creds: &Creds,
    clients: usize,
    deadline: std::time::Instant,
) -> Readers {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base) = (server.client.clone(), server.base.clone());
        let (creds, stop) = (creds.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            for round in 0..10_000u32 {
                if round >= 3 && stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    failed.push("the readers ran past the deadline".to_owned());
                    break;
                }
                let snapshot = creds.lock().unwrap().clone();
                for (t, id) in &snapshot {
                    let r = client
                        .post(format!("{base}/v1/tenants/{t}/credentials/{id}/reveal"))
                        .bearer_auth(common::ROOT_KEY)
                        .json(&json!({}))
                        .send()
                        .await;
                    let good = match r {
                        Ok(r) if r.status() == StatusCode::OK => {
                            let body = r.json::<Value>().await.unwrap_or(Value::Null);
                            body["data"]["access_token"] == ACCESS_TOKEN
                        }
                        Ok(r) => {
                            failed.push(format!("{t}/{id}: {}", r.status()));
                            continue;
                        }
                        Err(e) => {
                            failed.push(format!("{t}/{id}: {e}"));
                            continue;
                        }
                    };
                    if good {
                        ok += 1;
                    } else {
                        failed.push(format!("{t}/{id}: wrong plaintext"));
                    }
                }
                let Some((t, _)) = snapshot.get(round as usize % snapshot.len().max(1)) else {
                    continue;
                };
                let s = client
                    .post(format!("{base}/v1/tenants/{t}/settings/smtp/reveal"))
                    .bearer_auth(common::ROOT_KEY)
                    .json(&json!({}))
                    .send()
                    .await;
                match s {
                    Ok(s) if s.status() == StatusCode::OK => ok += 1,
                    Ok(s) => failed.push(format!("{t} settings: {}", s.status())),
                    Err(e) => failed.push(format!("{t} settings: {e}")),
                }
            }
            (ok, failed)
        }));
    }
    (stop, tasks)
}

async fn stop_readers(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(u32, Vec<String>)>>,
) -> u32 {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for task in tasks {
        let (ok, failed) = task.await.unwrap();
        assert!(
            failed.is_empty(),
            "failed reads during rotation: {failed:?}"
        );
        assert!(ok > 0);
        total += ok;
    }
    total
}

async fn kek_rotation_under_load(backend: Backend) {
    // Every loop below is bounded by a count and by this deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start(&db).await;
    let tenants: Vec<String> = (0..12).map(|i| format!("load{i}")).collect();
    let creds: Creds = Default::default();
    for t in &tenants {
        server.create_tenant(t).await;
        let id = create(&server, t, whatsapp()).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        creds.lock().unwrap().push((t.clone(), id));
        server
            .put_settings(t, "smtp", json!({"password": "settings-password-rot"}))
            .await;
    }
    let before = server.get("/v1/operator/keyring").await.body;
    let old_kek = before["active_kek"].as_str().unwrap().to_owned();
    // Twelve tenants' data keys, the token-signing seed and the audit
    // checkpoint seed.
    assert_eq!(before["keks"][0]["data_keys"], 14, "{before}");

    // 1. Four clients reveal while the KEK rotates, credentials are written
    //    and two tenants get new data keys.
    let (stop, readers) = start_readers(&server, &creds, 4, deadline);
    let rotated = server.post("/v1/operator/keyring/rotate", json!({})).await;
    assert_eq!(rotated.status, StatusCode::ACCEPTED, "{rotated:?}");
    let new_kek = rotated.body["active_kek"].as_str().unwrap().to_owned();
    assert_ne!(new_kek, old_kek);
    let writer = {
        let (client, base) = (server.client.clone(), server.base.clone());
        let (creds, tenants) = (creds.clone(), tenants.clone());
        tokio::spawn(async move {
            for i in 0..10 {
                let t = &tenants[i % tenants.len()];
                let mut body = whatsapp();
                own_number(t, &mut body);
                let r = client
                    .post(format!("{base}/v1/tenants/{t}/credentials"))
                    .bearer_auth(common::ROOT_KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let id = r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let patched = client
                    .patch(format!("{base}/v1/tenants/{t}/credentials/{id}"))
                    .bearer_auth(common::ROOT_KEY)
                    .json(&json!({"data": {"verify_token": format!("verify-{i}")}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(patched.status(), StatusCode::OK);
                creds.lock().unwrap().push((t.clone(), id));
            }
        })
    };
    for t in &tenants[..2] {
        let r = server
            .post(
                &format!("/v1/operator/tenants/{t}/data-key/rotate"),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
    }
    writer.await.unwrap();
    let status = server.keyring_rewrapped().await;
    let old = status["keks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == old_kek.as_str())
        .unwrap()
        .clone();
    assert_eq!(old["retirable"], true, "{status}");
    let reads = stop_readers(stop, readers).await;
    assert!(reads > 0);
    assert_eq!(creds.lock().unwrap().len(), 22);

    // 2. The worker is interrupted: rotate, then kill -9 at once; the next
    //    start resumes from the database, again with no failed read.
    let rotated = server.post("/v1/operator/keyring/rotate", json!({})).await;
    assert_eq!(rotated.status, StatusCode::ACCEPTED, "{rotated:?}");
    let third_kek = rotated.body["active_kek"].as_str().unwrap().to_owned();
    server.kill9().await;
    let left = fetch_blobs(
        &db,
        &format!("SELECT wrapped FROM tenant_data_keys WHERE kek_id <> '{third_kek}'"),
    )
    .await
    .len();
    eprintln!("data keys left to rewrap after kill -9: {left}");
    let mut server = TestServer::start(&db).await;
    let (stop, readers) = start_readers(&server, &creds, 3, deadline);
    let status = server.keyring_rewrapped().await;
    assert_eq!(
        status["active_kek"],
        third_kek.as_str(),
        "the rotation was durable"
    );
    stop_readers(stop, readers).await;
    server.stop().await;

    // 3. Only the active KEK left in the keyring: everything still decrypts.
    let path = db.keyring_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(keys.len(), 3, "{text}");
    std::fs::write(&path, format!("{}\n", keys[0])).unwrap();
    let server = TestServer::start(&db).await;
    let status = server.get("/v1/operator/keyring").await.body;
    assert_eq!(status["keks"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(status["active_kek"], third_kek.as_str());
    let (stop, readers) = start_readers(&server, &creds, 2, deadline);
    stop_readers(stop, readers).await;
    assert!(std::time::Instant::now() < deadline, "took too long");
}

async fn tenant_data_key_rotation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let id = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .put_settings(
            "acme",
            "smtp",
            json!({"nested": {"secret": "nested-secret-value"}}),
        )
        .await;
    let first = server
        .post("/v1/operator/tenants/acme/data-key/rotate", json!({}))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert!(
        first.body["data_key_id"]
            .as_str()
            .unwrap()
            .starts_with("dek_")
    );
    assert_eq!(
        reveal(&server, "acme", &id).await.body["data"]["app_secret"],
        APP_SECRET
    );
    server.stop().await;
    let (code, out, err) = db
        .run_command(
            &["keyring", "rotate-tenant", "acme"],
            &[("TENANTRY_ROOT_KEY", common::ROOT_KEY)],
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("now uses data key dek_"), "{out}");
    let server = TestServer::start(&db).await;
    assert_eq!(
        reveal(&server, "acme", &id).await.body["data"]["access_token"],
        ACCESS_TOKEN
    );
    let s = server
        .post("/v1/tenants/acme/settings/smtp/reveal", json!({}))
        .await;
    assert_eq!(s.body["data"]["nested"]["secret"], "nested-secret-value");
    assert_eq!(
        db.count_rows("tenant_data_keys", "acme").await,
        1,
        "old data keys are deleted"
    );
    server
        .post("/v1/operator/tenants/nobody/data-key/rotate", json!({}))
        .await
        .assert_problem(404, "tenant_not_found");
}

async fn purge_shreds_the_data_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    expect_decryption_failures(&server);
    server.create_tenant("acme").await;
    let id = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A "backup" of the tenant's registry row and ciphertexts (not its data key).
    db.exec("CREATE TABLE backup_tenants AS SELECT * FROM tenants WHERE id = 'acme'")
        .await;
    // (Its owner column is renamed, or the purge would find and empty it too.)
    db.exec(
        "CREATE TABLE backup_credentials AS SELECT tenant_id AS owner, id, kind, name, fields, sealed, is_active, \
         created_at, updated_at, last_revealed_at FROM credentials WHERE tenant_id = 'acme'",
    )
    .await;
    let purged = server
        .call(Method::DELETE, "/v1/tenants/acme?purge=true", None)
        .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT);
    assert_eq!(db.count_rows("tenant_data_keys", "acme").await, 0);
    // Restore the backup: the ciphertexts are back, but unreadable.
    db.exec("INSERT INTO tenants SELECT * FROM backup_tenants")
        .await;
    db.exec("INSERT INTO credentials SELECT * FROM backup_credentials")
        .await;
    let masked = server
        .get(&format!("/v1/tenants/acme/credentials/{id}"))
        .await;
    assert_eq!(
        masked.status,
        StatusCode::OK,
        "the restored row is there: {masked:?}"
    );
    let revealed = reveal(&server, "acme", &id).await;
    revealed.assert_problem(500, "decryption_failed");
    assert!(!revealed.text.contains(ACCESS_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_needs_an_explicit_master_key() {
    let db = TestDb::new(Backend::Postgres).await;
    std::fs::remove_file(db.keyring_path()).unwrap();
    let mut cmd_env = vec![("TENANTRY_ROOT_KEY", common::ROOT_KEY)];
    cmd_env.push(("TENANTRY_MASTER_KEY", ""));
    let out = TestServer::try_start(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
            ("TENANTRY_MASTER_KEY_FILE", "/nonexistent/keyring"),
        ],
    )
    .await
    .err()
    .unwrap();
    assert!(out.contains("/nonexistent/keyring"), "{out}");
    let url = db.url.clone().unwrap();
    let (code, _, err) = {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tenantry"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TENANTRY_DATABASE_URL", url)
            .env("TENANTRY_ROOT_KEY", common::ROOT_KEY)
            .env("TENANTRY_DATA_DIR", db.data_dir())
            .env("TENANTRY_LISTEN", "127.0.0.1:0")
            .arg("serve");
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .unwrap()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_ne!(code, Some(0));
    assert!(err.contains("master key must be given"), "{err}");
    assert!(
        !db.data_dir().join("master.key").exists(),
        "never generated with PostgreSQL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_generates_a_master_key_once() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut server = TestServer::start(&db).await;
    let path = db.keyring_path();
    assert_eq!(common::file_mode(&path), 0o600);
    for _ in 0..50 {
        if server.logs().contains("BACK IT UP") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.logs().contains("BACK IT UP"), "said loudly");
    server.create_tenant("acme").await;
    let id = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_text = std::fs::read_to_string(&path).unwrap();
    server.stop().await;
    let server = TestServer::start(&db).await;
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        key_text,
        "not regenerated"
    );
    assert_eq!(
        reveal(&server, "acme", &id).await.body["data"]["access_token"],
        ACCESS_TOKEN
    );
    // A wrong master key is an explicit failure, never garbage.
    drop(server);
    std::fs::write(&path, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let server = TestServer::start(&db).await;
    expect_decryption_failures(&server);
    server.expect_warning("cannot open a token signing key");
    server.expect_warning("cannot rewrap a token signing seed");
    server.expect_warning("cannot rewrap a data key");
    server.expect_warning("audit checkpoint pass failed");
    server.expect_warning("cannot rewrap the audit checkpoint key");
    reveal(&server, "acme", &id)
        .await
        .assert_problem(500, "decryption_failed");
    let status = server.get("/v1/operator/keyring").await.body;
    assert!(
        status["keks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["in_keyring"] == false),
        "{status}"
    );
}

// ---------------------------------------------------------------------------
// Issue 8: keyring races, private files, sealed signing seeds, settings
// depth, purge shredding, keyring write failures, one signing key per cluster.
// ---------------------------------------------------------------------------

/// The key ids of a keyring file (from its `# kek_… ` comments are not
/// trusted: the keys are parsed and fingerprinted like the server does).
fn keyring_keys(path: &std::path::Path) -> Vec<Vec<u8>> {
    use base64::Engine;
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| base64::engine::general_purpose::STANDARD.decode(l).unwrap())
        .collect()
}

fn kek_id(key: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"tenantry-kek-id:")
        .chain_update(key)
        .finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("kek_{hex}")
}

/// Every value of the first column (a BLOB/BYTEA) of `sql`, read past Tenantry.
async fn fetch_blobs(db: &TestDb, sql: &str) -> Vec<Vec<u8>> {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(db.data_dir().join("tenantry.db"))
                        .read_only(true),
                )
                .await
                .unwrap();
            let rows: Vec<(Vec<u8>,)> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows.into_iter().map(|r| r.0).collect()
        }
        Backend::Postgres => {
            let pool = db.pg_superuser().await;
            let rows: Vec<(Vec<u8>,)> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows.into_iter().map(|r| r.0).collect()
        }
    }
}

/// Whether `needle` is in `haystack` as raw bytes or as hex (how pg_dump
/// writes a bytea).
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
    haystack.windows(needle.len()).any(|w| w == needle)
        || haystack
            .windows(hex.len())
            .any(|w| w.eq_ignore_ascii_case(hex.as_bytes()))
}

/// Asserts the server's keyring status matches the file: every KEK that
/// wraps something is in the keyring, and the keyring is exactly the file.
fn assert_consistent(status: &Value, file: &std::path::Path) {
    let file_ids: Vec<String> = keyring_keys(file).iter().map(|k| kek_id(k)).collect();
    let keks = status["keks"].as_array().unwrap();
    for kek in keks {
        assert_eq!(kek["in_keyring"], true, "a KEK in use is missing: {status}");
        assert!(
            file_ids.contains(&kek["id"].as_str().unwrap().to_owned()),
            "{status}"
        );
    }
    assert_eq!(keks.len(), file_ids.len(), "{status}");
    assert_eq!(status["active_kek"], file_ids[0].as_str(), "{status}");
}

async fn concurrent_kek_rotations_keep_every_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start(&db).await;
    let tenants = ["acme", "globex", "initech", "umbrella", "hooli"];
    let mut creds = Vec::new();
    for t in tenants {
        server.create_tenant(t).await;
        creds.push((
            t,
            create(&server, t, whatsapp()).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
        server
            .put_settings(t, "smtp", json!({"password": "race-settings-secret"}))
            .await;
    }
    let path = db.keyring_path();
    let before = keyring_keys(&path);
    assert_eq!(before.len(), 1);

    // 10 rotations over HTTP and 10 `tenantry keys rotate` processes, all at once.
    let mut http = Vec::new();
    for _ in 0..10 {
        let (client, base) = (server.client.clone(), server.base.clone());
        http.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/v1/operator/keyring/rotate"))
                .bearer_auth(common::ROOT_KEY)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap_or_default())
        }));
    }
    let mut cli = Vec::new();
    for _ in 0..10 {
        let mut cmd = db.command(&[("TENANTRY_ROOT_KEY", common::ROOT_KEY)]);
        cmd.args(["keyring", "rotate"]);
        cli.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_secs(120), cmd.output())
                .await
                .expect("a CLI rotation hung")
                .unwrap()
        }));
    }
    for task in http {
        let (status, text) = task.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    }
    for task in cli {
        let out = task.await.unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No rotation was lost: the file holds the first key and 20 new ones.
    let after = keyring_keys(&path);
    assert_eq!(after.len(), 21, "lost rotations");
    assert!(after.contains(&before[0]));
    let mut ids: Vec<String> = after.iter().map(|k| kek_id(k)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 21);
    // The server follows the file (the CLI rotated it behind its back).
    let status = server.keyring_rewrapped().await;
    assert_consistent(&status, &path);
    for (t, id) in &creds {
        assert_eq!(
            reveal(&server, t, id).await.body["data"]["access_token"],
            ACCESS_TOKEN
        );
    }

    server.stop().await;
    let server = TestServer::start(&db).await;
    let status = server.keyring_rewrapped().await;
    assert_consistent(&status, &path);
    assert_eq!(status["keks"].as_array().unwrap().len(), 21, "{status}");
    for (t, id) in &creds {
        assert_eq!(
            reveal(&server, t, id).await.body["data"]["access_token"],
            ACCESS_TOKEN
        );
        let s = server
            .post(&format!("/v1/tenants/{t}/settings/smtp/reveal"), json!({}))
            .await;
        assert_eq!(s.body["data"]["password"], "race-settings-secret", "{s:?}");
    }
    // Tokens still sign and verify (their seed was rewrapped too).
    let key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": ["tenant:read"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = server
        .call_as(Some(&key), Method::POST, "/v1/tokens", Some(json!({})))
        .await;
    assert_eq!(token.status, StatusCode::CREATED, "{token:?}");
}

async fn private_files_and_no_key_material_in_storage(backend: Backend) {
    let db = TestDb::new(backend).await;
    // No root key given: one is generated into the data directory.
    let mut server = TestServer::start_with(&db, &[]).await;
    let root_path = db.data_dir().join("root.key");
    let root = std::fs::read_to_string(&root_path)
        .unwrap()
        .trim()
        .to_owned();
    let as_root =
        |m: Method, p: &'static str, b: Option<Value>| server.call_as(Some(&root), m, p, b);
    assert_eq!(
        as_root(
            Method::POST,
            "/v1/tenants",
            Some(json!({"id": "acme", "name": "Acme"}))
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let api_key = as_root(
        Method::POST,
        "/v1/tenants/acme/api-keys",
        Some(json!({"name": "k", "scopes": ["tenant:read"]})),
    )
    .await
    .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let operator_key = as_root(
        Method::POST,
        "/v1/operator-keys",
        Some(json!({"name": "ci"})),
    )
    .await
    .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = server
        .call_as(Some(&api_key), Method::POST, "/v1/tokens", Some(json!({})))
        .await;
    assert_eq!(token.status, StatusCode::CREATED, "{token:?}");
    if backend == Backend::Sqlite {
        let dir = db.data_dir();
        assert_eq!(common::file_mode(&dir), 0o700, "data directory");
        for name in [
            "tenantry.db",
            "tenantry.db-wal",
            "tenantry.db-shm",
            "master.key",
            "root.key",
        ] {
            let path = dir.join(name);
            if path.exists() {
                assert_eq!(common::file_mode(&path), 0o600, "{name}");
            } else {
                assert!(
                    name.ends_with("-wal") || name.ends_with("-shm"),
                    "{name} missing"
                );
            }
        }
    }
    server.stop().await;

    // A signing key stored in clear by an older version is sealed at start.
    let seed: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(0xA5));
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let (seed_sql, public_sql) = match backend {
        Backend::Sqlite => (format!("X'{}'", hex(&seed)), format!("X'{}'", hex(&public))),
        Backend::Postgres => (
            format!("'\\x{}'::bytea", hex(&seed)),
            format!("'\\x{}'::bytea", hex(&public)),
        ),
    };
    db.exec("UPDATE signing_keys SET retired_at = created_at WHERE retired_at IS NULL")
        .await;
    assert_eq!(
        db.exec(&format!(
            "INSERT INTO signing_keys (kid, seed, public_key, created_at) \
             SELECT 'sig_legacy', {seed_sql}, {public_sql}, created_at FROM signing_keys LIMIT 1"
        ))
        .await,
        1
    );
    if backend == Backend::Sqlite {
        // Existing files that are too open are tightened at start.
        use std::os::unix::fs::PermissionsExt;
        let dir = db.data_dir();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            dir.join("tenantry.db"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let mut server = TestServer::start_with(&db, &[]).await;
    server.expect_warning("open to other users");
    if backend == Backend::Sqlite {
        assert_eq!(common::file_mode(&db.data_dir()), 0o700);
        assert_eq!(common::file_mode(&db.data_dir().join("tenantry.db")), 0o600);
    }
    let jwks = server.get("/.well-known/jwks.json").await.body;
    let legacy = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "sig_legacy")
        .unwrap_or_else(|| panic!("{jwks}"))
        .clone();
    use base64::Engine;
    assert_eq!(
        legacy["x"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public)
    );
    // It signs: a new token names it and verifies.
    let token = server
        .call_as(Some(&api_key), Method::POST, "/v1/tokens", Some(json!({})))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], "sig_legacy");
    assert_eq!(
        server
            .call_as(Some(&token), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
    // Seeds move with the KEK like data keys do.
    let rotated = server
        .call_as(
            Some(&root),
            Method::POST,
            "/v1/operator/keyring/rotate",
            Some(json!({})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::ACCEPTED, "{rotated:?}");
    let new_kek = rotated.body["active_kek"].as_str().unwrap().to_owned();
    let mut moved = false;
    for _ in 0..300 {
        let n = fetch_blobs(
            &db,
            &format!("SELECT wrapped_seed FROM signing_keys WHERE kek_id <> '{new_kek}' OR kek_id IS NULL"),
        )
        .await
        .len();
        if n == 0 {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved, "signing seeds were not rewrapped");
    assert_eq!(
        fetch_blobs(&db, "SELECT seed FROM signing_keys WHERE length(seed) > 0")
            .await
            .len(),
        0,
        "no seed is stored in clear"
    );
    server.stop().await;

    let bytes = db.raw_bytes().await;
    assert!(bytes.len() > 1000);
    assert!(!holds(&bytes, &seed), "a signing seed is stored in clear");
    let keyring = match backend {
        Backend::Sqlite => db.data_dir().join("master.key"),
        Backend::Postgres => db.keyring_path(),
    };
    let keks = keyring_keys(&keyring);
    assert_eq!(keks.len(), 2);
    for kek in &keks {
        assert!(!holds(&bytes, kek), "a KEK is in the database");
        let b64 = base64::engine::general_purpose::STANDARD.encode(kek);
        assert!(!holds(&bytes, b64.as_bytes()), "a KEK is in the database");
    }
    for secret in [&root, &api_key, &operator_key] {
        let tail = &secret[secret.len() - 24..];
        assert!(!holds(&bytes, tail.as_bytes()), "a key is stored in clear");
    }
    // The dump is real: the public half is there.
    assert!(holds(&bytes, &public));
}

/// `{"l<n-1>": … {"l0": {"password": …}}}`: `levels` objects around one
/// with a secret, so `levels + 1` deep as sent and `levels + 2` as stored.
fn nested_secret(levels: usize) -> Value {
    let mut v = json!({"password": "deeply-nested-secret-1"});
    for i in 0..levels {
        v = json!({ format!("l{i}"): v });
    }
    v
}

async fn settings_depth_is_bounded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    // 32 levels as stored (the sealed value is the 32nd): accepted, readable, revealable.
    let deepest = nested_secret(30);
    let put = server.put_settings("acme", "deep", deepest.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let masked = server.get("/v1/tenants/acme/settings/deep").await;
    assert_eq!(masked.status, StatusCode::OK, "{masked:?}");
    let mut at = &masked.body["data"];
    for i in (0..30).rev() {
        at = &at[format!("l{i}")];
    }
    assert_eq!(at["password"], "****et-1");
    let revealed = server
        .post("/v1/tenants/acme/settings/deep/reveal", json!({}))
        .await;
    assert_eq!(revealed.body["data"], deepest, "{revealed:?}");
    // 33 as stored (only 32 as sent): refused, naming the value.
    let expected: Vec<String> = (0..31).rev().map(|i| format!("l{i}")).collect();
    server
        .put_settings("acme", "deeper", nested_secret(31))
        .await
        .assert_invalid(&format!("{}.password", expected.join(".")));
    // Without secrets: 32 levels accepted, 33 refused.
    let plain = |levels: usize| {
        let mut v = json!({"x": 1});
        for i in 0..levels {
            v = json!({ format!("p{i}"): v });
        }
        v
    };
    assert_eq!(
        server.put_settings("acme", "plain", plain(31)).await.status,
        StatusCode::OK
    );
    let refused = server.put_settings("acme", "plain", plain(32)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{refused:?}"
    );
    assert_eq!(refused.body["errors"][0]["code"], "too_deep", "{refused:?}");
    // The document of the report (127 deep) is refused instead of stored unreadable.
    server
        .put_settings("acme", "report", nested_secret(126))
        .await
        .assert_problem(422, "validation_failed");
    for category in ["deeper", "report"] {
        server
            .get(&format!("/v1/tenants/acme/settings/{category}"))
            .await
            .assert_problem(404, "settings_not_found");
    }
    // The tenant's data key still rotates, and everything reads back.
    let rotated = server
        .post("/v1/operator/tenants/acme/data-key/rotate", json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    let revealed = server
        .post("/v1/tenants/acme/settings/deep/reveal", json!({}))
        .await;
    assert_eq!(revealed.body["data"], deepest, "{revealed:?}");
}

async fn purge_leaves_no_wrapped_key_in_the_files(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    for t in ["acme", "globex"] {
        server.create_tenant(t).await;
        create(&server, t, whatsapp()).await;
    }
    let sql = |t: &str| format!("SELECT wrapped FROM tenant_data_keys WHERE tenant_id = '{t}'");
    let mut acme = fetch_blobs(&db, &sql("acme")).await;
    // A second wrapping of the same key (older versions of its row exist too).
    server.post("/v1/operator/keyring/rotate", json!({})).await;
    server.keyring_rewrapped().await;
    acme.extend(fetch_blobs(&db, &sql("acme")).await);
    let globex = fetch_blobs(&db, &sql("globex")).await;
    assert_eq!((acme.len(), globex.len()), (2, 1));
    assert_ne!(acme[0], acme[1]);
    let purged = server
        .call(Method::DELETE, "/v1/tenants/acme?purge=true", None)
        .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT, "{purged:?}");
    // Read while the server runs: the database file and its WAL as they are.
    let bytes = db.raw_bytes().await;
    for wrapped in &acme {
        assert!(
            !holds(&bytes, wrapped),
            "the purged tenant's wrapped data key is recoverable"
        );
    }
    assert!(holds(&bytes, &globex[0]), "the search is real");
}

async fn keyring_write_failure_has_its_own_code(backend: Backend) {
    use base64::Engine;
    let db = TestDb::new(backend).await;
    let dir = db.dir.path().join("keyring-dir");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("keyring");
    let key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(13).wrapping_add(7));
    std::fs::write(
        &file,
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
    )
    .unwrap();
    let file_env = file.display().to_string();
    let env = [
        ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
        ("TENANTRY_MASTER_KEY_FILE", file_env.as_str()),
    ];
    let server = TestServer::start_with(&db, &env).await;
    for line in [
        "cannot write the keyring",
        "cannot read the keyring",
        "cannot re-read the keyring",
        "Status code: 5",
    ] {
        server.expect_warning(line);
    }
    server.create_tenant("acme").await;
    let id = create(&server, "acme", whatsapp()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The keyring's directory is replaced by a file: nothing can be written there.
    let away = db.dir.path().join("keyring-dir-away");
    std::fs::rename(&dir, &away).unwrap();
    std::fs::write(&dir, "not a directory").unwrap();
    let failed = server.post("/v1/operator/keyring/rotate", json!({})).await;
    failed.assert_problem(503, "keyring_write_failed");
    assert!(failed.headers.contains_key("retry-after"), "{failed:?}");
    // Nothing was activated; what exists still opens.
    assert_eq!(
        reveal(&server, "acme", &id).await.body["data"]["access_token"],
        ACCESS_TOKEN
    );
    assert_eq!(
        server.get("/v1/operator/keyring").await.body["keks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A new data key is not wrapped while the keyring cannot be read back.
    server.create_tenant("globex").await;
    server
        .post("/v1/tenants/globex/credentials", whatsapp())
        .await
        .assert_problem(503, "keyring_unavailable");
    // Repaired: rotation and new data keys work again.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&away, &dir).unwrap();
    let rotated = server.post("/v1/operator/keyring/rotate", json!({})).await;
    assert_eq!(rotated.status, StatusCode::ACCEPTED, "{rotated:?}");
    create(&server, "globex", whatsapp()).await;
    assert_eq!(
        reveal(&server, "acme", &id).await.body["data"]["access_token"],
        ACCESS_TOKEN
    );

    // A keyring given in TENANTRY_MASTER_KEY is read-only: a clear 409.
    if backend == Backend::Sqlite {
        let db = TestDb::new(Backend::Sqlite).await;
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let server = TestServer::start_with(
            &db,
            &[
                ("TENANTRY_ROOT_KEY", common::ROOT_KEY),
                ("TENANTRY_MASTER_KEY", &key),
            ],
        )
        .await;
        server
            .post("/v1/operator/keyring/rotate", json!({}))
            .await
            .assert_problem(409, "keyring_read_only");
    }
}

async fn two_nodes_agree_on_one_signing_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    if backend == Backend::Sqlite {
        // (Two SQLite processes do not migrate one file at the same moment.)
        let (code, out, err) = db.run_command(&["migrate"], &[]).await;
        assert_eq!(code, 0, "{out}{err}");
    }
    let (a, b) = tokio::join!(TestServer::start(&db), TestServer::start(&db));
    let jwks_a = a.get("/.well-known/jwks.json").await.body;
    let jwks_b = b.get("/.well-known/jwks.json").await.body;
    assert_eq!(jwks_a, jwks_b);
    assert_eq!(jwks_a["keys"].as_array().unwrap().len(), 1, "{jwks_a}");
    a.create_tenant("acme").await;
    let key = a
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": ["tenant:read"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for (minter, verifier) in [(&a, &b), (&b, &a)] {
        let token = minter
            .call_as(Some(&key), Method::POST, "/v1/tokens", Some(json!({})))
            .await
            .body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let used = verifier
            .call_as(Some(&token), Method::GET, "/v1/tenants/acme", None)
            .await;
        assert_eq!(used.status, StatusCode::OK, "{used:?}");
    }
    // The keyring too was generated once (SQLite) or given (PostgreSQL).
    let path = match backend {
        Backend::Sqlite => db.data_dir().join("master.key"),
        Backend::Postgres => db.keyring_path(),
    };
    assert_eq!(keyring_keys(&path).len(), 1);
}
