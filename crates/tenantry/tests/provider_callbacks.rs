//! Provider status callbacks on both backends, against the real server:
//! outbound messages registered per tenant, Twilio's `X-Twilio-Signature`
//! (HMAC-SHA1 over URL + sorted form parameters), SendGrid's signed event
//! webhook (ECDSA P-256, signed here by Python's `cryptography`, an
//! implementation independent of the server's ring), the generic
//! HMAC-SHA256 format; forged and missing signatures, unknown ids, another
//! tenant's credential, out-of-order statuses, stats and cross-tenant 404.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::provider_signing;

use common::{Backend, TestDb, TestServer};
use provider_signing::{sendgrid_keys, sha256_signature, twilio_signature};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    registration_is_unique_per_provider_and_tenant_scoped,
    twilio_callbacks_verify_and_never_move_back,
    sendgrid_events_verify_with_the_tenants_public_key,
    generic_callbacks_verify_and_show_in_stats,
);

const ACME_TOKEN: &str = "acme-twilio-auth-token-12345";
const GLOBEX_TOKEN: &str = "globex-twilio-auth-token-678";

async fn credential(server: &TestServer, tenant: &str, provider: &str, field: &str, secret: &str) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/credentials"),
            json!({"kind": "generic", "name": format!("{provider} callbacks"),
                   "data": {"provider": provider, field: secret}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
}

async fn register(server: &TestServer, tenant: &str, channel: &str, provider: &str, id: &str) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/messages"),
            json!({"channel": channel, "provider": provider, "provider_message_id": id, "recipient": "+15550001"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
}

async fn stats(server: &TestServer, tenant: &str) -> Value {
    let reply = server.get(&format!("/v1/tenants/{tenant}/stats")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["messages"].clone()
}

async fn twilio(
    server: &TestServer,
    params: &[(&str, &str)],
    signature: Option<String>,
) -> (StatusCode, Value) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = server
        .client
        .post(server.url("/v1/webhooks/twilio"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(sig) = signature {
        req = req.header("x-twilio-signature", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn registration_is_unique_per_provider_and_tenant_scoped(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    register(&server, "acme", "sms", "twilio", "SMaaaa0001").await;
    let audit = db.audit_rows("acme").await;
    assert!(
        audit.iter().any(|e| e["action"] == "message.registered"),
        "registration is audited: {audit:?}"
    );
    for tenant in ["acme", "globex"] {
        server
            .post(
                &format!("/v1/tenants/{tenant}/messages"),
                json!({"channel": "sms", "provider": "twilio", "provider_message_id": "SMaaaa0001"}),
            )
            .await
            .assert_problem(409, "message_exists");
    }
    // The same id at another provider is another message.
    register(&server, "globex", "email", "generic", "SMaaaa0001").await;
    server
        .post(
            "/v1/tenants/acme/messages",
            json!({"channel": "fax", "provider": "twilio", "provider_message_id": "x"}),
        )
        .await
        .assert_invalid("channel");
    let acme_key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": ["usage:write"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = server
        .call_as(
            Some(&acme_key),
            Method::POST,
            "/v1/tenants/globex/messages",
            Some(json!({"channel": "sms", "provider": "twilio", "provider_message_id": "SMbbbb"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
    assert_eq!(db.count_rows("messages", "globex").await, 1);
}

async fn twilio_callbacks_verify_and_never_move_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.expect_warning("names a message no tenant registered");
    server.expect_warning("did not verify with the addressed tenant");
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    credential(&server, "acme", "twilio", "auth_token", ACME_TOKEN).await;
    credential(&server, "globex", "twilio", "auth_token", GLOBEX_TOKEN).await;
    register(&server, "acme", "sms", "twilio", "SMacme0001").await;
    register(&server, "globex", "voice", "twilio", "CAglobex01").await;
    let url = server.url("/v1/webhooks/twilio");

    let delivered = [
        ("MessageSid", "SMacme0001"),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC1"),
        ("To", "+15550001"),
    ];
    let (status, body) = twilio(
        &server,
        &delivered,
        Some(twilio_signature(ACME_TOKEN, &url, &delivered)),
    )
    .await;
    assert_eq!(
        (status, body["applied"].clone()),
        (StatusCode::OK, json!(1)),
        "{body}"
    );
    // Repeated: nothing new.
    let (status, body) = twilio(
        &server,
        &delivered,
        Some(twilio_signature(ACME_TOKEN, &url, &delivered)),
    )
    .await;
    assert_eq!(
        (status, body["applied"].clone()),
        (StatusCode::OK, json!(0))
    );
    // Late `sent`: recorded in the history, the status stays delivered.
    let sent = [("MessageSid", "SMacme0001"), ("MessageStatus", "sent")];
    let (status, _) = twilio(
        &server,
        &sent,
        Some(twilio_signature(ACME_TOKEN, &url, &sent)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats(&server, "acme").await["sms"], json!({"delivered": 1}));

    // Forged, missing, and signed for another URL: 401, nothing changes.
    let failed = [("MessageSid", "SMacme0001"), ("MessageStatus", "failed")];
    let (status, _) = twilio(
        &server,
        &failed,
        Some(twilio_signature("guess", &url, &failed)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = twilio(&server, &failed, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = twilio(
        &server,
        &failed,
        Some(twilio_signature(
            ACME_TOKEN,
            "https://elsewhere.example/v1/webhooks/twilio",
            &failed,
        )),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Acme's message, signed with globex's token: refused.
    let (status, _) = twilio(
        &server,
        &failed,
        Some(twilio_signature(GLOBEX_TOKEN, &url, &failed)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(stats(&server, "acme").await["sms"], json!({"delivered": 1}));
    let audit = db.audit_rows("acme").await;
    assert!(
        audit.iter().any(|e| e["action"] == "access.denied"),
        "refusals are audited: {audit:?}"
    );

    // Unknown sid: acknowledged, counted in the response and the log, not stored.
    let unknown = [
        ("MessageSid", "SMnobody999"),
        ("MessageStatus", "delivered"),
    ];
    let (status, body) = twilio(
        &server,
        &unknown,
        Some(twilio_signature(ACME_TOKEN, &url, &unknown)),
    )
    .await;
    assert_eq!(
        (status, body["unknown"].clone()),
        (StatusCode::OK, json!(1))
    );
    assert_eq!(db.count_rows("message_statuses", "acme").await, 2);

    // A call: CallSid / CallStatus, with globex's own token.
    let call = [("CallSid", "CAglobex01"), ("CallStatus", "completed")];
    let (status, body) = twilio(
        &server,
        &call,
        Some(twilio_signature(GLOBEX_TOKEN, &url, &call)),
    )
    .await;
    assert_eq!(
        (status, body["applied"].clone()),
        (StatusCode::OK, json!(1)),
        "{body}"
    );
    assert_eq!(
        stats(&server, "globex").await["voice"],
        json!({"delivered": 1})
    );
    assert_eq!(db.count_rows("message_statuses", "acme").await, 2);
}

async fn sendgrid(
    server: &TestServer,
    ts: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = server
        .client
        .post(server.url("/v1/webhooks/sendgrid"))
        .header("content-type", "application/json")
        .header("x-twilio-email-event-webhook-timestamp", ts)
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("x-twilio-email-event-webhook-signature", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn sendgrid_events_verify_with_the_tenants_public_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.expect_warning("names a message no tenant registered");
    server.expect_warning("did not verify with the addressed tenant");
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    register(&server, "acme", "email", "sendgrid", "14c5d75ce93").await;
    let ts = "1767225600";
    let open = br#"[{"email":"a@example.com","timestamp":1767225700,"event":"open","sg_message_id":"14c5d75ce93.filter0001.16648.5515E0B88.0"}]"#.to_vec();
    let bounce = br#"[{"email":"a@example.com","timestamp":1767225800,"event":"bounce","reason":"550 no such user","sg_message_id":"14c5d75ce93.filter0001.1"},{"event":"delivered","sg_message_id":"unknown42.filter"}]"#.to_vec();
    let signed = |b: &[u8]| [ts.as_bytes(), b].concat();
    let (acme_key, sigs) = sendgrid_keys(&[signed(&open), signed(&bounce)]);
    let (globex_key, globex_sigs) = sendgrid_keys(&[signed(&bounce)]);
    credential(&server, "acme", "sendgrid", "public_key", &acme_key).await;
    credential(&server, "globex", "sendgrid", "public_key", &globex_key).await;

    let (status, body) = sendgrid(&server, ts, &open, Some(&sigs[0])).await;
    assert_eq!(
        (status, body["applied"].clone()),
        (StatusCode::OK, json!(1)),
        "{body}"
    );
    assert_eq!(stats(&server, "acme").await["email"], json!({"read": 1}));
    // Missing, forged (another timestamp), and globex's key: refused.
    let (status, _) = sendgrid(&server, ts, &bounce, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = sendgrid(&server, "1767225601", &bounce, Some(&sigs[1])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = sendgrid(&server, ts, &bounce, Some(&globex_sigs[0])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        db.count_rows("message_statuses", "acme").await,
        2,
        "read + inferred delivered"
    );
    // Signed: the bounce ends it; the unknown id is counted, not stored.
    let (status, body) = sendgrid(&server, ts, &bounce, Some(&sigs[1])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["applied"].clone(), body["unknown"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(stats(&server, "acme").await["email"], json!({"failed": 1}));
}

async fn generic(server: &TestServer, body: &[u8], signature: Option<&str>) -> (StatusCode, Value) {
    let mut req = server
        .client
        .post(server.url("/v1/webhooks/generic"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("x-tenantry-signature", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn generic_callbacks_verify_and_show_in_stats(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.expect_warning("names a message no tenant registered");
    server.expect_warning("did not verify with the addressed tenant");
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    credential(&server, "acme", "generic", "secret", "acme-generic-secret").await;
    credential(
        &server,
        "globex",
        "generic",
        "secret",
        "globex-generic-secret",
    )
    .await;
    register(&server, "acme", "sms", "generic", "gen-1").await;
    register(&server, "acme", "sms", "generic", "gen-2").await;
    let read =
        br#"{"provider_message_id":"gen-1","status":"read","timestamp":"2026-01-01T00:00:00Z"}"#;
    let (status, body) = generic(
        &server,
        read,
        Some(&sha256_signature("acme-generic-secret", read)),
    )
    .await;
    assert_eq!(
        (status, body["applied"].clone()),
        (StatusCode::OK, json!(1)),
        "{body}"
    );
    let (status, _) = generic(&server, read, Some("sha256=00")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let failed = br#"{"provider_message_id":"gen-2","status":"failed","timestamp":1767225600,"error":{"code":"30003","title":"Unreachable"}}"#;
    let (status, _) = generic(
        &server,
        failed,
        Some(&sha256_signature("globex-generic-secret", failed)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = generic(&server, failed, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = generic(
        &server,
        failed,
        Some(&sha256_signature("acme-generic-secret", failed)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Late `sent` never moves a read message back.
    let sent =
        br#"{"provider_message_id":"gen-1","status":"sent","timestamp":"2025-12-31T23:59:00Z"}"#;
    let (status, _) = generic(
        &server,
        sent,
        Some(&sha256_signature("acme-generic-secret", sent)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stats(&server, "acme").await["sms"],
        json!({"read": 1, "failed": 1})
    );
    let unknown = br#"{"provider_message_id":"nobody","status":"read"}"#;
    let (status, body) = generic(&server, unknown, None).await;
    assert_eq!(
        (status, body["unknown"].clone()),
        (StatusCode::OK, json!(1))
    );
    assert_eq!(db.count_rows("message_statuses", "globex").await, 0);
}
