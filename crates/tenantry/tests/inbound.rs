//! Inbound WhatsApp Cloud API webhooks on both backends, against the real
//! server: Meta's handshake, deliveries signed over the raw bytes (Meta's
//! `\uXXXX`-escaped serialization of emoji and non-ASCII text), forged and
//! missing signatures, redeliveries stored and counted once, statuses out
//! of order, one-URL routing by WABA / phone number id, unknown ids,
//! suspended tenants, and cross-tenant isolation of the reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::provider_signing;

use common::{Backend, TestDb, TestServer};
use provider_signing::sha256_signature as sign;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    handshake_answers_the_challenge_for_the_right_token_only,
    signed_deliveries_are_stored_once_over_raw_bytes,
    statuses_out_of_order_never_move_back,
    one_url_routes_by_account_and_drops_unknown_ids,
    a_number_cannot_be_claimed_twice,
    suspended_tenants_refuse_so_meta_retries,
    conversations_are_not_visible_across_tenants,
);

const APP_SECRET: &str = "acme-meta-app-secret-0f1e2d3c";
const GLOBEX_SECRET: &str = "globex-meta-app-secret-99aa";

fn whatsapp(waba: &str, phone: &str, secret: &str, verify: &str) -> Value {
    json!({
        "kind": "whatsapp",
        "name": "Main number",
        "data": {
            "business_account_id": waba,
            "phone_number_id": phone,
            "access_token": "EAAinbound-access-token",
            "app_secret": secret,
            "verify_token": verify,
        }
    })
}

async fn setup(server: &TestServer, tenant: &str, waba: &str, phone: &str, secret: &str) {
    server.create_tenant(tenant).await;
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/credentials"),
            whatsapp(waba, phone, secret, &format!("{tenant}-verify-token")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
}

async fn deliver(
    server: &TestServer,
    path: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = server
        .client
        .post(server.url(path))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A text message as Meta serializes it: non-ASCII escaped as `\uXXXX`
/// (emoji as surrogate pairs) and `/` as `\/`.
fn text_delivery(waba: &str, phone: &str, wamid: &str) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"{phone}"}},"contacts":[{{"profile":{{"name":"Jos\u00e9 \ud83d\ude00"}},"wa_id":"16315551181","user_id":"US.13491208655302741918"}}],"messages":[{{"from":"16315551181","id":"{wamid}","timestamp":"1767225600","text":{{"body":"Ol\u00e1 \ud83d\udc4b caf\u00e9 \u2014 https:\/\/example.com"}},"type":"text"}}]}},"field":"messages"}}]}}]}}"#
    )
    .into_bytes()
}

fn status_delivery(phone: &str, wamid: &str, status: &str, ts: u64) -> Vec<u8> {
    let errors = if status == "failed" {
        r#","errors":[{"code":131026,"title":"Message undeliverable"}]"#
    } else {
        ""
    };
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"0","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001111","phone_number_id":"{phone}"}},"statuses":[{{"id":"{wamid}","status":"{status}","timestamp":"{ts}","recipient_id":"16315551181","conversation":{{"id":"c1","origin":{{"type":"service"}}}},"pricing":{{"billable":true,"pricing_model":"PMP","category":"service"}}{errors}}}]}},"field":"messages"}}]}}]}}"#
    )
    .into_bytes()
}

async fn events_of(server: &TestServer, tenant: &str, kind: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/v1/tenants/{tenant}/events?limit=200"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

async fn handshake_answers_the_challenge_for_the_right_token_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    setup(&server, "acme", "1001", "2001", APP_SECRET).await;
    let url = |token: &str, challenge: &str| {
        format!(
            "/v1/webhooks/whatsapp/acme?hub.mode=subscribe&hub.verify_token={token}&hub.challenge={challenge}"
        )
    };
    let ok = server
        .call_as(
            None,
            Method::GET,
            &url("acme-verify-token", "1158201444"),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    assert_eq!(ok.text, "1158201444");
    assert!(ok.content_type().starts_with("text/plain"));
    for bad in [
        url("acme-verify-tokeN", "1"),
        url("", "1"),
        url("acme-verify-token", "<script>"),
        "/v1/webhooks/whatsapp/acme?hub.mode=unsubscribe&hub.verify_token=acme-verify-token&hub.challenge=1".into(),
        "/v1/webhooks/whatsapp/acme".into(),
    ] {
        let reply = server.call_as(None, Method::GET, &bad, None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{bad}: {reply:?}");
    }
    let unknown = server
        .call_as(
            None,
            Method::GET,
            "/v1/webhooks/whatsapp/nobody?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn signed_deliveries_are_stored_once_over_raw_bytes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    setup(&server, "acme", "1001", "2001", APP_SECRET).await;
    let body = text_delivery("1001", "2001", "wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTRBRTg1");
    let sig = sign(APP_SECRET, &body);
    let path = "/v1/webhooks/whatsapp/acme";

    // Forged, missing, and computed over a re-serialized body: refused, and
    // each refusal recorded in the tenant's audit log.
    let reserialized =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_ne!(reserialized, body);
    for (bytes, signature) in [
        (body.clone(), Some(sign("not-the-secret", &body))),
        (body.clone(), None),
        (body.clone(), Some("sha256=zz".to_owned())),
        (reserialized.clone(), Some(sig.clone())),
    ] {
        let (status, _) = deliver(&server, path, &bytes, signature.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let denied = db
        .audit_rows("acme")
        .await
        .into_iter()
        .filter(|r| r["action"] == "access.denied" && r["actor"]["type"] == "webhook")
        .count();
    assert_eq!(denied, 4);
    assert_eq!(db.count_rows("messages", "acme").await, 0);
    assert_eq!(db.count_rows("inbound_payloads", "acme").await, 0);

    // The genuine delivery, then Meta's retries of it, concurrently too.
    let (status, ack) = deliver(&server, path, &body, Some(&sig)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["stored"], true);
    let retries: Vec<_> = (0..4)
        .map(|_| {
            let req = server
                .client
                .post(server.url(path))
                .header("x-hub-signature-256", sig.clone())
                .body(body.clone());
            tokio::spawn(async move { req.send().await.unwrap() })
        })
        .collect();
    for retry in retries {
        let resp = retry.await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let ack: Value = resp.json().await.unwrap();
        assert_eq!(ack["stored"], false);
    }
    assert_eq!(db.count_rows("inbound_payloads", "acme").await, 1);
    assert_eq!(db.count_rows("messages", "acme").await, 1);

    let conversations = server.get("/v1/tenants/acme/conversations").await;
    assert_eq!(conversations.status, StatusCode::OK);
    let conv = &conversations.body["data"][0];
    assert_eq!(conv["contact"]["wa_id"], "16315551181");
    assert_eq!(conv["contact"]["user_id"], "US.13491208655302741918");
    assert_eq!(conv["contact"]["profile_name"], "José 😀");
    let cid = conv["id"].as_str().unwrap();
    let msgs = server
        .get(&format!("/v1/tenants/acme/conversations/{cid}/messages"))
        .await;
    let msg = &msgs.body["data"][0];
    assert_eq!(msg["type"], "text");
    assert_eq!(msg["direction"], "inbound");
    assert_eq!(
        msg["body"]["text"]["body"],
        "Olá 👋 café — https://example.com"
    );

    let received = events_of(&server, "acme", "message.received").await;
    assert_eq!(received.len(), 1);
    let data = &received[0]["data"];
    assert_eq!(data["message_id"], msg["id"]);
    assert_eq!(data["conversation_id"], cid);
    assert_eq!(data["channel"], "whatsapp");
    assert_eq!(
        data["provider_message_id"],
        "wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTRBRTg1"
    );
    assert_eq!(data["type"], "text");
    assert_eq!(data["from"], "16315551181");
    assert!(data["received_at"].is_string());

    // Counted once, whatever the retries.
    let usage = db.count_rows("usage_events", "acme").await;
    assert_eq!(usage, 1);
    let audited = db
        .audit_rows("acme")
        .await
        .into_iter()
        .filter(|r| r["action"] == "message.received")
        .count();
    assert_eq!(audited, 1);
}

async fn statuses_out_of_order_never_move_back(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    setup(&server, "acme", "1001", "2001", APP_SECRET).await;
    let path = "/v1/webhooks/whatsapp/acme";
    // `read` first (delivered never came), then `sent` late, then `read` again.
    for (status, ts) in [("read", 30), ("sent", 10), ("read", 30), ("delivered", 20)] {
        let body = status_delivery("2001", "wamid.OUT1", status, 1_767_225_600 + ts);
        let (code, _) = deliver(&server, path, &body, Some(&sign(APP_SECRET, &body))).await;
        assert_eq!(code, StatusCode::OK);
    }
    let failed = status_delivery("2001", "wamid.OUT2", "failed", 1_767_225_700);
    deliver(&server, path, &failed, Some(&sign(APP_SECRET, &failed))).await;
    let stats = server.get("/v1/tenants/acme/stats").await;
    assert_eq!(
        stats.body["messages"],
        json!({"whatsapp": {"read": 1, "failed": 1}})
    );

    let updates = events_of(&server, "acme", "message.status_updated").await;
    let of = |wamid: &str| -> Vec<Value> {
        updates
            .iter()
            .filter(|e| e["data"]["provider_message_id"] == wamid)
            .map(|e| e["data"].clone())
            .collect()
    };
    let out1 = of("wamid.OUT1");
    assert_eq!(out1.len(), 1, "{out1:?}");
    assert_eq!(out1[0]["status"], "read");
    assert_eq!(out1[0]["previous_status"], Value::Null);
    assert_eq!(out1[0]["channel"], "whatsapp");
    assert_eq!(out1[0]["provider"], "meta");
    assert_eq!(out1[0]["error"], Value::Null);
    let out2 = of("wamid.OUT2");
    assert_eq!(out2[0]["status"], "failed");
    assert_eq!(
        out2[0]["error"],
        json!({"code": 131026, "title": "Message undeliverable"})
    );
    // History: read, delivered (inferred from read, then never duplicated), sent.
    assert_eq!(db.count_rows("message_statuses", "acme").await, 4);
    assert_eq!(db.count_rows("messages", "acme").await, 2);
    let stats = db
        .exec("UPDATE messages SET updated_at = updated_at WHERE tenant_id = 'acme' AND status = 'read'")
        .await;
    assert_eq!(stats, 1, "the message's status stayed read");
}

async fn one_url_routes_by_account_and_drops_unknown_ids(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    setup(&server, "acme", "1001", "2001", APP_SECRET).await;
    setup(&server, "globex", "1002", "2002", GLOBEX_SECRET).await;
    // Routed by phone number id (the entry's WABA id is not registered).
    let body = text_delivery("999", "2002", "wamid.G1");
    let (status, ack) = deliver(
        &server,
        "/v1/webhooks/whatsapp",
        &body,
        Some(&sign(GLOBEX_SECRET, &body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["stored"], true);
    assert_eq!(db.count_rows("messages", "globex").await, 1);
    assert_eq!(db.count_rows("messages", "acme").await, 0);
    // Routed by WABA id.
    let body = text_delivery("1001", "7777", "wamid.A1");
    let (status, _) = deliver(
        &server,
        "/v1/webhooks/whatsapp",
        &body,
        Some(&sign(APP_SECRET, &body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(db.count_rows("messages", "acme").await, 1);
    // Signed with acme's secret but addressed to globex: not globex's.
    let body = text_delivery("1002", "2002", "wamid.G2");
    let (status, _) = deliver(
        &server,
        "/v1/webhooks/whatsapp",
        &body,
        Some(&sign(APP_SECRET, &body)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.expect_warning("did not verify with the addressed tenant");
    // Nobody's ids: acknowledged, logged, stored nowhere.
    server.expect_warning("no tenant registered");
    let body = text_delivery("5555", "6666", "wamid.X");
    let (status, ack) = deliver(
        &server,
        "/v1/webhooks/whatsapp",
        &body,
        Some(&sign(APP_SECRET, &body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["stored"], false);
    assert_eq!(db.count_rows("messages", "acme").await, 1);
    assert_eq!(db.count_rows("messages", "globex").await, 1);
    // One delivery with both tenants' entries: each stores only its own.
    let a = text_delivery("1001", "2001", "wamid.A2");
    let g = text_delivery("1002", "2002", "wamid.G3");
    let entry = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap()["entry"][0].clone();
    let both = serde_json::to_vec(
        &json!({"object": "whatsapp_business_account", "entry": [entry(&a), entry(&g)]}),
    )
    .unwrap();
    // One Meta app: both tenants hold its secret.
    let reply = server
        .patch(
            &format!(
                "/v1/tenants/globex/credentials/{}",
                cred_id(&server, "globex").await
            ),
            json!({"data": {"app_secret": APP_SECRET}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let (status, _) = deliver(
        &server,
        "/v1/webhooks/whatsapp",
        &both,
        Some(&sign(APP_SECRET, &both)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(db.count_rows("messages", "acme").await, 2);
    assert_eq!(db.count_rows("messages", "globex").await, 2);
}

async fn cred_id(server: &TestServer, tenant: &str) -> String {
    server
        .get(&format!("/v1/tenants/{tenant}/credentials"))
        .await
        .body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_number_cannot_be_claimed_twice(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    setup(&server, "acme", "1001", "2001", APP_SECRET).await;
    server.create_tenant("globex").await;
    for (waba, phone) in [("1002", "2001"), ("1001", "2002")] {
        let reply = server
            .post(
                "/v1/tenants/globex/credentials",
                whatsapp(waba, phone, GLOBEX_SECRET, "v"),
            )
            .await;
        reply.assert_problem(409, "whatsapp_id_taken");
    }
    // Nor by changing a credential it has.
    let ok = server
        .post(
            "/v1/tenants/globex/credentials",
            whatsapp("1002", "2002", GLOBEX_SECRET, "v"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let id = ok.body["id"].as_str().unwrap();
    server
        .patch(
            &format!("/v1/tenants/globex/credentials/{id}"),
            json!({"data": {"phone_number_id": "2001"}}),
        )
        .await
        .assert_problem(409, "whatsapp_id_taken");
    // Once acme lets it go, globex may take it.
    let acme = cred_id(&server, "acme").await;
    assert_eq!(
        server
            .delete(&format!("/v1/tenants/acme/credentials/{acme}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let moved = server
        .patch(
            &format!("/v1/tenants/globex/credentials/{id}"),
            json!({"data": {"phone_number_id": "2001"}}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{moved:?}");
    let body = text_delivery("0", "2001", "wamid.M");
    let (status, _) = deliver(
        &server,
        "/v1/webhooks/whatsapp",
        &body,
        Some(&sign(GLOBEX_SECRET, &body)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(db.count_rows("messages", "globex").await, 1);
}

async fn suspended_tenants_refuse_so_meta_retries(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    setup(&server, "acme", "1001", "2001", APP_SECRET).await;
    assert_eq!(
        server
            .post("/v1/tenants/acme/suspend", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let body = text_delivery("1001", "2001", "wamid.S");
    let sig = sign(APP_SECRET, &body);
    let (status, _) = deliver(&server, "/v1/webhooks/whatsapp/acme", &body, Some(&sig)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = deliver(&server, "/v1/webhooks/whatsapp", &body, Some(&sig)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(db.count_rows("inbound_payloads", "acme").await, 0);
    // Meta's retry after reactivation is stored.
    assert_eq!(
        server
            .post("/v1/tenants/acme/reactivate", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let (status, _) = deliver(&server, "/v1/webhooks/whatsapp/acme", &body, Some(&sig)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(db.count_rows("messages", "acme").await, 1);
}

async fn conversations_are_not_visible_across_tenants(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    setup(&server, "acme", "1001", "2001", APP_SECRET).await;
    setup(&server, "globex", "1002", "2002", GLOBEX_SECRET).await;
    for i in 0..3 {
        let body = text_delivery("1002", "2002", &format!("wamid.{i}"))
            .into_iter()
            .collect::<Vec<u8>>();
        let body = String::from_utf8(body)
            .unwrap()
            .replace("16315551181", &format!("1631555118{i}"));
        deliver(
            &server,
            "/v1/webhooks/whatsapp/globex",
            body.as_bytes(),
            Some(&sign(GLOBEX_SECRET, body.as_bytes())),
        )
        .await;
    }
    // Pagination: 3 conversations, pages of 2.
    let first = server.get("/v1/tenants/globex/conversations?limit=2").await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = server
        .get(&format!(
            "/v1/tenants/globex/conversations?limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(second.body["data"].as_array().unwrap().len(), 1);
    let cid = first.body["data"][0]["id"].as_str().unwrap().to_owned();
    let acme_key = server
        .post(
            "/v1/tenants/acme/api-keys",
            json!({"name": "k", "scopes": ["tenant:admin"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        "/v1/tenants/globex/conversations".to_owned(),
        format!("/v1/tenants/globex/conversations/{cid}/messages"),
    ] {
        let reply = server
            .call_as(Some(&acme_key), Method::GET, &path, None)
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    // Another tenant's conversation id under one's own tenant: not found.
    server
        .call_as(
            Some(&acme_key),
            Method::GET,
            &format!("/v1/tenants/acme/conversations/{cid}/messages"),
            None,
        )
        .await
        .assert_problem(404, "conversation_not_found");
}
