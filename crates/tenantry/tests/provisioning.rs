//! Provisioning workflows end to end, on both backends, against local
//! doubles of Meta's Graph API and Genesys Cloud that speak their
//! documented protocols (paths, auth headers, bodies, error shapes): the
//! happy path, each permanent error, throttling and 5xx, slow providers,
//! kill -9 during a provider call and between steps, retry after fixing
//! the stored credentials, cancel with compensation, dry runs, one
//! Idempotency-Key raced, two nodes sharing the work, and no secret in
//! logs, events, audit entries or the workflow row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::provider_doubles;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use provider_doubles::{
    ACCESS_TOKEN, APP_SECRET, CLIENT_ID, CLIENT_SECRET, Double, GENESYS_TOKEN, VERIFY_TOKEN,
    meta_error, request,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    provisions_a_tenant_end_to_end,
    permanent_meta_errors_compensate,
    genesys_invalid_client_holds_then_retry_after_fixing,
    throttling_and_5xx_are_retried,
    slow_provider_times_out,
    kill9_during_a_call_and_between_steps_resumes,
    cancel_compensates_in_reverse,
    dry_run_stores_nothing,
    one_idempotency_key_one_workflow,
    operator_only_and_validation,
);

/// Polls the workflow until `done` says so (bounded).
async fn wait_for(
    server: &TestServer,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let reply = server.get(&format!("/v1/provisioning/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        if done(&reply.body) {
            return reply.body;
        }
        last = reply.body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the workflow never got {what}: {last:#}");
}

async fn wait_status(server: &TestServer, id: &str, status: &str) -> Value {
    wait_for(server, id, status, |w| w["status"] == status).await
}

async fn start(server: &TestServer, body: Value) -> String {
    let reply = server.post("/v1/provisioning", body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    reply.body["id"].as_str().unwrap().to_owned()
}

fn step<'a>(wf: &'a Value, name: &str) -> &'a Value {
    wf["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

async fn events(server: &TestServer, tenant: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/v1/tenants/{tenant}/events?limit=200"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["data"].as_array().unwrap().clone()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Every text the server wrote or stored about its work: logs, audit rows
/// (both chains), tenant events and the workflow rows.
async fn everything(db: &TestDb, server: &TestServer, tenant: &str) -> String {
    let mut all = server.logs();
    for chain in [tenant, ""] {
        for row in db.audit_rows(chain).await {
            all.push_str(&row.to_string());
        }
    }
    for e in events(server, tenant).await {
        all.push_str(&e.to_string());
    }
    let list = server.get("/v1/provisioning?limit=200").await;
    all.push_str(&list.text);
    all
}

fn assert_no_secret(text: &str, extra: &[&str]) {
    for secret in [
        ACCESS_TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
        CLIENT_SECRET,
        CLIENT_ID,
        GENESYS_TOKEN,
    ]
    .iter()
    .chain(extra)
    {
        assert!(!text.contains(secret), "a secret leaked: {secret}");
    }
}

async fn provisions_a_tenant_end_to_end(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double.server(&db, &[]).await;
    let mut body = request("acme");
    body["webhook_endpoints"] = json!([
        { "url": format!("{}/hook", double.base), "event_types": ["provisioning.completed"] }
    ]);
    let reply = server.post("/v1/provisioning", body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    assert_eq!(reply.body["steps"].as_array().unwrap().len(), 8);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    // Each secret is returned once, by the first read after the step that
    // made it (the API keys and the endpoint's secret may come in separate
    // reads when a read falls between their steps): gather them all.
    let mut shown = Vec::new();
    let mut wf = Value::Null;
    for _ in 0..300 {
        wf = server.get(&format!("/v1/provisioning/{id}")).await.body;
        if let Some(found) = wf.get("api_keys").and_then(Value::as_array) {
            shown.extend(found.iter().cloned());
        }
        if wf["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = server.get(&format!("/v1/provisioning/{id}")).await.body;
    if let Some(found) = after.get("api_keys").and_then(Value::as_array) {
        shown.extend(found.iter().cloned());
    }
    assert_eq!(wf["status"], "succeeded", "{wf:#}");
    let keys = Value::Array(shown);
    assert!(
        !keys.as_array().unwrap().is_empty(),
        "the keys were never shown: {wf:#}"
    );
    let key = keys[0]["key"].as_str().unwrap().to_owned();
    // The webhook endpoint exists; its secret came with the keys, once.
    let hooks = server.get("/v1/tenants/acme/webhook-endpoints").await;
    assert_eq!(hooks.status, StatusCode::OK, "{hooks:?}");
    assert_eq!(hooks.body["data"].as_array().unwrap().len(), 1, "{hooks:?}");
    let hook_secret = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"].as_str().unwrap().starts_with("webhook endpoint"))
        .expect("the endpoint's secret")["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(hook_secret.starts_with("whsec_"), "{hook_secret}");
    // Shown once: a later read carries none.
    let again = server.get(&format!("/v1/provisioning/{id}")).await.body;
    assert!(again.get("api_keys").is_none(), "{again:#}");
    assert_eq!(again["api_keys_pending"], false);
    for s in wf["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "succeeded", "{s:#}");
        assert_eq!(s["attempts"], 1, "{s:#}");
        assert!(s["started_at"].is_string() && s["finished_at"].is_string());
    }
    let whatsapp = &step(&wf, "verify_whatsapp")["result"];
    assert_eq!(whatsapp["verified_name"], "Acme Support");
    assert_eq!(whatsapp["display_phone_number"], "+1 555-0100");
    assert_eq!(whatsapp["quality_rating"], "GREEN");
    let org = &step(&wf, "verify_genesys")["result"]["organization"];
    assert_eq!(org["id"], "f3b1c2d4-0000-4000-8000-000000000001");
    assert_eq!(org["name"], "acme-cx");
    assert_eq!(org["thirdPartyOrgName"], "acme-cx-org");
    assert_eq!(org["state"], "active");
    // {region} became the region's domain.
    assert_eq!(double.with(|s| s.regions.clone()), ["sae1.pure.cloud"]);
    // The tenant is active, its key works and is the one that was made.
    let tenant = server.get("/v1/tenants/acme").await;
    assert_eq!(tenant.body["status"], "active");
    let me = server
        .call_as(Some(&key), Method::GET, "/v1/tenants/acme", None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    let creds = server.get("/v1/tenants/acme/credentials").await;
    assert_eq!(creds.body["data"].as_array().unwrap().len(), 2, "{creds:?}");
    // The events, with exactly these data shapes.
    let all = events(&server, "acme").await;
    let started = of_type(&all, "provisioning.started");
    assert_eq!(started.len(), 1);
    assert_eq!(
        started[0]["data"],
        json!({ "workflow_id": id, "tenant_id": "acme" })
    );
    let succeeded = of_type(&all, "provisioning.step_succeeded");
    assert_eq!(succeeded.len(), 8);
    assert_eq!(
        succeeded[1]["data"],
        json!({ "workflow_id": id, "tenant_id": "acme", "step": "store_credentials" })
    );
    let completed = of_type(&all, "provisioning.completed");
    assert_eq!(completed.len(), 1);
    assert_eq!(
        completed[0]["data"],
        json!({ "workflow_id": id, "tenant_id": "acme" })
    );
    // Every effect has its audit entry.
    let actions: Vec<String> = db
        .audit_rows("acme")
        .await
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    for action in [
        "tenant.created",
        "credential.created",
        "api_key.created",
        "config.updated",
        "tenant.activated",
        "provisioning.step_succeeded",
        "provisioning.completed",
        "provisioning.keys_delivered",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    // Listed, by status.
    let list = server.get("/v1/provisioning?status=succeeded").await;
    assert_eq!(list.body["data"][0]["id"], json!(id), "{list:?}");
    // No secret anywhere, the generated key included; the row holds none.
    assert_no_secret(
        &everything(&db, &server, "acme").await,
        &[&key, &hook_secret],
    );
    assert_eq!(
        db.exec("UPDATE provisioning_workflows SET status = status WHERE secrets IS NULL AND issued_keys IS NULL")
            .await,
        1
    );
    assert!(
        server.unexpected_warnings().is_empty(),
        "{:?}",
        server.unexpected_warnings()
    );
}

async fn permanent_meta_errors_compensate(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double.server(&db, &[]).await;
    server.expect_warning("provisioning step failed");
    // An invalid token (190): permanent at once, compensated, the tenant
    // left provisioning_failed.
    let mut body = request("acme");
    body["whatsapp"]["access_token"] = json!("EAAwrong-token-that-meta-refuses");
    let id = start(&server, body).await;
    let wf = wait_status(&server, &id, "compensated").await;
    let failed = step(&wf, "verify_whatsapp");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["error"]["code"], "meta_190");
    assert_eq!(
        failed["error"]["message"],
        "Invalid OAuth access token - Cannot parse access token"
    );
    assert_eq!(failed["error"]["permanent"], true);
    assert_eq!(failed["error"]["details"]["fbtrace_id"], "AbCdEfGh123");
    assert_eq!(step(&wf, "store_credentials")["status"], "compensated");
    assert_eq!(step(&wf, "create_tenant")["status"], "compensated");
    assert_eq!(step(&wf, "verify_genesys")["status"], "pending");
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "provisioning_failed"
    );
    assert_eq!(db.count_rows("credentials", "acme").await, 0);
    let all = events(&server, "acme").await;
    let step_failed = of_type(&all, "provisioning.step_failed");
    assert_eq!(
        step_failed[0]["data"],
        json!({
            "workflow_id": id, "tenant_id": "acme", "step": "verify_whatsapp",
            "error": { "code": "meta_190", "message": "Invalid OAuth access token - Cannot parse access token" },
            "permanent": true,
        })
    );
    let failed_ev = of_type(&all, "provisioning.failed");
    assert_eq!(failed_ev[0]["data"]["step"], "verify_whatsapp");
    assert_eq!(failed_ev[0]["data"]["error"]["code"], "meta_190");
    let compensated = of_type(&all, "provisioning.compensated");
    assert_eq!(
        compensated[0]["data"],
        json!({ "workflow_id": id, "tenant_id": "acme", "steps": ["create_tenant", "store_credentials"] })
    );
    // An unknown phone number (100/33), deleting the tenant.
    let mut body = request("globex");
    body["whatsapp"]["phone_number_id"] = json!("999999999");
    body["on_failure"] = json!("compensate_and_delete");
    let id = start(&server, body).await;
    let wf = wait_status(&server, &id, "compensated").await;
    assert_eq!(step(&wf, "verify_whatsapp")["error"]["code"], "meta_100_33");
    assert_eq!(
        server.get("/v1/tenants/globex").await.body["status"],
        "deleted"
    );
    assert_no_secret(&everything(&db, &server, "acme").await, &[]);
}

async fn genesys_invalid_client_holds_then_retry_after_fixing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double.server(&db, &[]).await;
    server.expect_warning("provisioning step failed");
    double.with(|s| s.accepted_secret = "the-rotated-client-secret-778899".into());
    let mut body = request("acme");
    body["on_failure"] = json!("hold");
    let id = start(&server, body).await;
    let wf = wait_status(&server, &id, "failed").await;
    let failed = step(&wf, "verify_genesys");
    assert_eq!(failed["error"]["code"], "genesys_invalid_client");
    assert_eq!(failed["error"]["message"], "client not found");
    assert_eq!(failed["error"]["permanent"], true);
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "provisioning_failed"
    );
    // A held workflow's tenant resolves nothing; a retry before the fix
    // fails the same way.
    let retried = server
        .post(&format!("/v1/provisioning/{id}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{retried:?}");
    let wf = wait_for(&server, &id, "failed again", |w| {
        w["status"] == "failed"
            && step(w, "verify_genesys")["attempts"] == 1
            && w["updated_at"] != wf["updated_at"]
    })
    .await;
    assert_eq!(step(&wf, "verify_genesys")["status"], "failed");
    // Fix the stored credential, then retry: it resumes from the failed step.
    let cred = step(&wf, "store_credentials")["result"]["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "genesys")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patched = server
        .patch(
            &format!("/v1/tenants/acme/credentials/{cred}"),
            json!({ "data": { "client_secret": "the-rotated-client-secret-778899" } }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");
    let whatsapp_calls = double.with(|s| s.meta_calls);
    let retried = server
        .post(&format!("/v1/provisioning/{id}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED);
    let wf = wait_status(&server, &id, "succeeded").await;
    assert_eq!(
        step(&wf, "verify_genesys")["result"]["organization"]["name"],
        "acme-cx"
    );
    // The steps before it were not run again.
    assert_eq!(double.with(|s| s.meta_calls), whatsapp_calls);
    assert_eq!(step(&wf, "verify_whatsapp")["attempts"], 1);
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "active"
    );
    // Retrying what succeeded is refused.
    server
        .post(&format!("/v1/provisioning/{id}/retry"), json!({}))
        .await
        .assert_problem(409, "workflow_conflict");
}

async fn throttling_and_5xx_are_retried(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double.server(&db, &[]).await;
    server.expect_warning("provisioning step failed");
    double.with(|s| {
        s.meta.push_back((500, json!({"error": {"message": "An unknown error has occurred.", "type": "OAuthException", "code": 1, "fbtrace_id": "x"}}), None));
        s.meta.push_back((400, meta_error(4, None, "Application request limit reached"), None));
        s.meta.push_back((400, meta_error(130429, None, "Rate limit hit"), None));
        s.genesys_token.push_back((429, json!({"message": "Rate limit exceeded", "code": "too.many.requests", "status": 429}), Some(1)));
        s.genesys_token.push_back((503, json!({"message": "Service Unavailable", "status": 503}), None));
    });
    let id = start(&server, request("acme")).await;
    let wf = wait_status(&server, &id, "succeeded").await;
    assert_eq!(step(&wf, "verify_whatsapp")["attempts"], 4);
    assert_eq!(step(&wf, "verify_genesys")["attempts"], 3);
    let all = events(&server, "acme").await;
    let failures = of_type(&all, "provisioning.step_failed");
    assert_eq!(failures.len(), 5);
    assert!(failures.iter().all(|e| e["data"]["permanent"] == false));
    assert_eq!(failures[1]["data"]["error"]["code"], "meta_4");
    // Retry-After: 1 was honoured: the second token request came at least
    // a second after the first (the steps' own record says when).
    let audit = db.audit_rows("acme").await;
    let genesys_failures: Vec<&Value> = audit
        .iter()
        .filter(|r| {
            r["action"] == "provisioning.step_failed" && r["changes"]["step"] == "verify_genesys"
        })
        .collect();
    assert_eq!(genesys_failures.len(), 2);
}

async fn slow_provider_times_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double
        .server(
            &db,
            &[
                ("TENANTRY_PROVISIONING_PROVIDER_TIMEOUT", "300ms"),
                ("TENANTRY_PROVISIONING_MAX_ATTEMPTS", "2"),
            ],
        )
        .await;
    server.expect_warning("provisioning step failed");
    double.with(|s| s.meta_delay = Some(Duration::from_secs(3)));
    let mut body = request("acme");
    body["on_failure"] = json!("hold");
    let id = start(&server, body).await;
    let wf = wait_status(&server, &id, "failed").await;
    let failed = step(&wf, "verify_whatsapp");
    assert_eq!(failed["attempts"], 2);
    assert_eq!(failed["error"]["code"], "provider_timeout");
    assert_eq!(failed["error"]["permanent"], false);
}

async fn kill9_during_a_call_and_between_steps_resumes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let mut server = double.server(&db, &[]).await;
    // Hold Meta: the server is killed in the middle of the call.
    double.with(|s| s.hold_meta = true);
    let id = start(&server, request("acme")).await;
    for _ in 0..300 {
        if double.with(|s| s.meta_calls) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(double.with(|s| s.meta_calls), 1);
    server.kill9().await;
    // Genesys now holds: the next crash comes after verify_whatsapp
    // committed, before verify_genesys has any effect.
    double.with(|s| {
        s.hold_meta = false;
        s.hold_genesys = true;
    });
    let mut server = double.server(&db, &[]).await;
    for _ in 0..300 {
        if double.with(|s| s.token_calls) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(double.with(|s| s.token_calls), 1);
    let wf = server.get(&format!("/v1/provisioning/{id}")).await.body;
    assert_eq!(step(&wf, "verify_whatsapp")["status"], "succeeded");
    assert_eq!(step(&wf, "verify_whatsapp")["attempts"], 2);
    assert_eq!(step(&wf, "verify_genesys")["status"], "running");
    server.kill9().await;
    double.with(|s| s.hold_genesys = false);
    let server = double.server(&db, &[]).await;
    let wf = wait_for(&server, &id, "keys or success", |w| {
        w["status"] == "succeeded" || w.get("api_keys").is_some()
    })
    .await;
    assert!(wf.get("api_keys").is_some(), "{wf:#}");
    let wf = wait_status(&server, &id, "succeeded").await;
    // Each step's effect happened once.
    assert_eq!(step(&wf, "create_tenant")["attempts"], 1);
    assert_eq!(step(&wf, "store_credentials")["attempts"], 1);
    assert_eq!(step(&wf, "verify_genesys")["attempts"], 2);
    assert_eq!(db.count_rows("credentials", "acme").await, 2);
    assert_eq!(db.count_rows("api_keys", "acme").await, 1);
    let audit = db.audit_rows("acme").await;
    let count = |action: &str| audit.iter().filter(|r| r["action"] == action).count();
    assert_eq!(count("tenant.created"), 1);
    assert_eq!(count("credential.created"), 2);
    assert_eq!(count("api_key.created"), 1);
    assert_eq!(count("provisioning.step_succeeded"), 8);
    let all = events(&server, "acme").await;
    assert_eq!(of_type(&all, "provisioning.started").len(), 1);
}

async fn cancel_compensates_in_reverse(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double
        .server(&db, &[("TENANTRY_PROVISIONING_PROVIDER_TIMEOUT", "1s")])
        .await;
    server.expect_warning("provisioning step failed");
    // Genesys answers nothing: the workflow waits in verify_genesys.
    double.with(|s| s.hold_genesys = true);
    let id = start(&server, request("acme")).await;
    wait_for(&server, &id, "verify_genesys", |w| {
        step(w, "verify_genesys")["status"] == "running"
    })
    .await;
    let reply = server
        .post(&format!("/v1/provisioning/{id}/cancel"), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    assert_eq!(reply.body["status"], "compensating");
    let wf = wait_status(&server, &id, "cancelled").await;
    for name in ["create_tenant", "store_credentials", "verify_whatsapp"] {
        let s = step(&wf, name);
        assert_eq!(s["status"], "compensated", "{s:#}");
        assert_eq!(s["compensation"]["status"], "succeeded");
    }
    assert_eq!(
        step(&wf, "store_credentials")["compensation"]["undone"]["deleted_credentials"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(db.count_rows("credentials", "acme").await, 0);
    assert_eq!(
        server.get("/v1/tenants/acme").await.body["status"],
        "provisioning_failed"
    );
    let all = events(&server, "acme").await;
    assert_eq!(
        of_type(&all, "provisioning.compensated")[0]["data"]["steps"],
        json!(["create_tenant", "store_credentials", "verify_whatsapp"])
    );
    // Cancelling again changes nothing; a completed workflow cannot be.
    let again = server
        .post(&format!("/v1/provisioning/{id}/cancel"), json!({}))
        .await;
    assert_eq!(again.body["status"], "cancelled");
    double.with(|s| s.hold_genesys = false);
    // Invalid configuration is refused up front, naming the field.
    let mut body = request("globex");
    body["config"] = json!({ "retention_policy": { "forever": 1 } });
    server
        .post("/v1/provisioning", body)
        .await
        .assert_invalid("config.retention_policy.forever");
}

async fn dry_run_stores_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double.server(&db, &[]).await;
    let mut body = request("acme");
    body["dry_run"] = json!(true);
    let reply = server.post("/v1/provisioning", body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["dry_run"], true);
    assert_eq!(reply.body["status"], "succeeded");
    assert_eq!(reply.body["id"], Value::Null);
    let steps = reply.body["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["result"]["verified_name"], "Acme Support");
    assert_eq!(steps[1]["result"]["organization"]["name"], "acme-cx");
    body["genesys"]["client_secret"] = json!("not-the-right-secret-at-all");
    let reply = server.post("/v1/provisioning", body).await;
    assert_eq!(reply.body["status"], "failed");
    assert_eq!(
        reply.body["steps"][1]["error"]["code"],
        "genesys_invalid_client"
    );
    // Nothing stored: no tenant, no workflow, no audit entry.
    server
        .get("/v1/tenants/acme")
        .await
        .assert_problem(404, "tenant_not_found");
    assert_eq!(server.get("/v1/provisioning").await.body["data"], json!([]));
    assert!(db.audit_rows("acme").await.is_empty());
    assert_no_secret(&server.logs(), &[]);
}

async fn one_idempotency_key_one_workflow(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double.server(&db, &[]).await;
    let body = request("acme");
    let send = || {
        server
            .client
            .post(server.url("/v1/provisioning"))
            .bearer_auth(ROOT_KEY)
            .header("Idempotency-Key", "onboard-acme-1")
            .json(&body)
            .send()
    };
    let replies = futures_join(vec![send(), send(), send(), send()]).await;
    let mut ids = Vec::new();
    for r in replies {
        let r = common::Reply::from(r.unwrap()).await;
        match r.status {
            StatusCode::ACCEPTED => ids.push(r.body["id"].as_str().unwrap().to_owned()),
            StatusCode::CONFLICT => {
                assert_eq!(r.body["code"], "idempotency_key_in_progress", "{r:?}")
            }
            other => panic!("{other}: {r:?}"),
        }
    }
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let replay = common::Reply::from(send().await.unwrap()).await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(replay.body["id"], json!(ids[0]));
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let list = server.get("/v1/provisioning").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    // Without the key, a second request for the same tenant is refused:
    // its workflow is not finished, or its tenant exists already.
    let again = server.post("/v1/provisioning", request("acme")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    assert!(
        again.body["code"] == "workflow_conflict" || again.body["code"] == "tenant_exists",
        "{again:?}"
    );
    wait_status(&server, &ids[0], "succeeded").await;
}

async fn futures_join(
    requests: Vec<
        impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
    >,
) -> Vec<reqwest::Result<reqwest::Response>> {
    let handles: Vec<_> = requests.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn operator_only_and_validation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double.server(&db, &[]).await;
    server.create_tenant("globex").await;
    let key = server
        .post(
            "/v1/tenants/globex/api-keys",
            json!({"name": "k", "scopes": ["tenant:admin"]}),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = start(&server, request("acme")).await;
    // A tenant's key reaches no workflow, not even to learn it exists.
    for (method, path) in [
        (Method::GET, format!("/v1/provisioning/{id}")),
        (Method::GET, "/v1/provisioning".to_owned()),
        (Method::POST, format!("/v1/provisioning/{id}/cancel")),
        (Method::POST, "/v1/provisioning".to_owned()),
    ] {
        let reply = server
            .call_as(Some(&key), method, &path, Some(request("evil")))
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}: {reply:?}");
    }
    let anonymous = server
        .call_as(None, Method::GET, &format!("/v1/provisioning/{id}"), None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    server
        .get("/v1/provisioning/prov_nope")
        .await
        .assert_problem(404, "workflow_not_found");
    // A taken tenant id or subdomain is refused up front.
    server
        .post("/v1/provisioning", request("globex"))
        .await
        .assert_problem(409, "tenant_exists");
    let mut body = request("initech");
    body["tenant"]["subdomain"] = json!("globex");
    server
        .post("/v1/provisioning", body)
        .await
        .assert_problem(409, "subdomain_taken");
    // Each invalid field is named.
    let mut body = request("initech");
    body["whatsapp"]["phone_number_id"] = json!("not-digits");
    body["genesys"]["region"] = json!("mars1.pure.cloud");
    body["api_keys"][0]["scopes"] = json!(["root"]);
    let reply = server.post("/v1/provisioning", body).await;
    reply.assert_problem(422, "validation_failed");
    let fields: Vec<&str> = reply.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "whatsapp.phone_number_id",
            "genesys.region",
            "api_keys.scopes[0]"
        ]
    );
    // While provisioning, the tenant is not resolvable and cannot be
    // activated by hand.
    let wf = wait_status(&server, &id, "succeeded").await;
    assert_eq!(wf["status"], "succeeded");
}

/// Two nodes on one PostgreSQL share the work and never run one step twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_work() {
    let db = TestDb::new(Backend::Postgres).await;
    let double = Double::start().await;
    let a = double.server(&db, &[]).await;
    let b = double.server(&db, &[]).await;
    let mut ids = Vec::new();
    for i in 0..16 {
        let node = if i % 2 == 0 { &a } else { &b };
        let mut body = request(&format!("tenant-{i}"));
        body["api_keys"] = json!([]);
        ids.push(start(node, body).await);
    }
    for id in &ids {
        wait_status(&a, id, "succeeded").await;
    }
    // One Meta call and one token request per workflow: no step ran twice.
    assert_eq!(double.with(|s| s.meta_calls), 16);
    assert_eq!(double.with(|s| s.token_calls), 16);
    for i in 0..16 {
        let audit = db.audit_rows(&format!("tenant-{i}")).await;
        let succeeded = audit
            .iter()
            .filter(|r| r["action"] == "provisioning.step_succeeded")
            .count();
        assert_eq!(succeeded, 8, "tenant-{i}");
    }
    let worked = |s: &TestServer| s.logs().contains("provisioning step succeeded");
    assert!(worked(&a) && worked(&b), "both nodes did work");
}
