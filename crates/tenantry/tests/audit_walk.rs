//! Walks the OpenAPI document: every operation that changes something
//! (POST, PUT, PATCH, DELETE) records exactly one audit entry. An operation
//! added to the document without a step here fails the walk, so no new
//! mutation can ship unrecorded by accident.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, TestDb, TestServer};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

on_both_backends!(every_mutating_operation_records_one_entry);

/// Documented operations that change nothing anyone made: verifiers
/// (answering is their whole job) and metering (usage counters on the hot
/// path; README "Audit log" says why).
const NOT_CHANGES: [&str; 11] = [
    "POST /v1/keys/verify",
    "POST /v1/resolve",
    "POST /v1/quotas/check",
    "POST /v1/ratelimit",
    "POST /v1/usage/events",
    "POST /v1/widgets/verify",
    // Signed by Meta, not by an API key: tests/inbound.rs checks that every
    // stored message and status records its entry.
    "POST /v1/webhooks/whatsapp",
    "POST /v1/webhooks/whatsapp/{tenant}",
    // Signed by the providers: tests/provider_callbacks.rs checks that
    // every status they record has its entry.
    "POST /v1/webhooks/twilio",
    "POST /v1/webhooks/sendgrid",
    "POST /v1/webhooks/generic",
];

/// Documented changes whose entries cannot be counted one per request
/// here: each records its own entry (`provisioning.requested`, `.cancelled`,
/// `.retried`), but a worker goes on recording the workflow's steps
/// asynchronously. tests/provisioning.rs checks their entries. A region
/// move needs a second region's database: tests/regions.rs checks its
/// entries (`tenant.move_started`, `.move_copied`, `.moved_out`, …) in the
/// tenant's chain and both regions' operator chains.
const RECORDED_ELSEWHERE: [&str; 6] = [
    "POST /v1/provisioning",
    "POST /v1/provisioning/{id}/cancel",
    "POST /v1/provisioning/{id}/retry",
    "POST /v1/tenants/{id}/move",
    "POST /v1/tenants/{id}/move/abort",
    "POST /v1/tenants/{id}/move/complete",
];

/// Who sends a step: the root key, or the tenant key made by an earlier step.
#[derive(Clone, Copy)]
enum As {
    Root,
    TenantKey,
}

struct Step {
    /// The operation as documented: `METHOD /path/{param}`.
    operation: &'static str,
    /// The concrete path, `{…}` filled from values saved by earlier steps.
    path: &'static str,
    body: Option<Value>,
    by: As,
    /// A value of the response to keep for later steps: (name, field).
    save: Option<(&'static str, &'static str)>,
}

fn step(operation: &'static str, path: &'static str, body: Option<Value>) -> Step {
    Step {
        operation,
        path,
        body,
        by: As::Root,
        save: None,
    }
}

fn steps() -> Vec<Step> {
    vec![
        step(
            "POST /v1/tenants",
            "/v1/tenants",
            Some(json!({"id": "walk", "name": "Walk"})),
        ),
        step(
            "PATCH /v1/tenants/{id}",
            "/v1/tenants/walk",
            Some(json!({"name": "Walk Two"})),
        ),
        step(
            "POST /v1/tenants/{id}/suspend",
            "/v1/tenants/walk/suspend",
            Some(json!({})),
        ),
        step(
            "POST /v1/tenants/{id}/reactivate",
            "/v1/tenants/walk/reactivate",
            Some(json!({})),
        ),
        Step {
            save: Some(("key_id", "id")),
            ..step(
                "POST /v1/tenants/{id}/api-keys",
                "/v1/tenants/walk/api-keys",
                Some(json!({"name": "svc", "scopes": ["keys:read", "tenant:read"]})),
            )
        },
        step(
            "PATCH /v1/tenants/{id}/api-keys/{key_id}",
            "/v1/tenants/walk/api-keys/{key_id}",
            Some(json!({"name": "renamed"})),
        ),
        Step {
            save: Some(("key_id", "id")),
            ..step(
                "POST /v1/tenants/{id}/api-keys/{key_id}/rotate",
                "/v1/tenants/walk/api-keys/{key_id}/rotate",
                Some(json!({})),
            )
        },
        Step {
            by: As::TenantKey,
            ..step(
                "POST /v1/tokens",
                "/v1/tokens",
                Some(json!({"scopes": ["keys:read"], "ttl_seconds": 600})),
            )
        },
        step(
            "POST /v1/tenants/{id}/api-keys/{key_id}/revoke",
            "/v1/tenants/walk/api-keys/{key_id}/revoke",
            Some(json!({})),
        ),
        Step {
            save: Some(("operator_key_id", "id")),
            ..step(
                "POST /v1/operator-keys",
                "/v1/operator-keys",
                Some(json!({"name": "ops"})),
            )
        },
        step(
            "POST /v1/operator-keys/{key_id}/revoke",
            "/v1/operator-keys/{operator_key_id}/revoke",
            Some(json!({})),
        ),
        step(
            "POST /v1/operator/signing-keys/rotate",
            "/v1/operator/signing-keys/rotate",
            Some(json!({})),
        ),
        step(
            "PUT /v1/plans/{name}",
            "/v1/plans/walkplan",
            Some(json!({"description": "Walk", "quotas": {"messages_outbound": 10}})),
        ),
        step(
            "POST /v1/meters",
            "/v1/meters",
            Some(json!({"name": "walk_meter", "description": "Walk"})),
        ),
        step(
            "PATCH /v1/tenants/{id}/config",
            "/v1/tenants/walk/config",
            Some(json!({"branding": {"company_name": "Walk"}})),
        ),
        Step {
            save: Some(("cred_id", "id")),
            ..step(
                "POST /v1/tenants/{id}/credentials",
                "/v1/tenants/walk/credentials",
                Some(json!({
                    "kind": "whatsapp",
                    "name": "Main number",
                    "data": {
                        "business_account_id": "102290129340398",
                        "phone_number_id": "106540352242922",
                        "access_token": "EAAwalk-secret-token",
                        "app_secret": "walk-app-secret",
                        "verify_token": "walk-verify",
                    }
                })),
            )
        },
        step(
            "PATCH /v1/tenants/{id}/credentials/{cred_id}",
            "/v1/tenants/walk/credentials/{cred_id}",
            Some(json!({"name": "Second number"})),
        ),
        step(
            "POST /v1/tenants/{id}/credentials/{cred_id}/reveal",
            "/v1/tenants/walk/credentials/{cred_id}/reveal",
            Some(json!({})),
        ),
        step(
            "PUT /v1/tenants/{id}/settings/{category}",
            "/v1/tenants/walk/settings/smtp",
            Some(json!({"host": "smtp.example.com", "password": "walk-smtp-password"})),
        ),
        step(
            "POST /v1/tenants/{id}/settings/{category}/reveal",
            "/v1/tenants/walk/settings/smtp/reveal",
            Some(json!({})),
        ),
        step(
            "POST /v1/operator/tenants/{id}/data-key/rotate",
            "/v1/operator/tenants/walk/data-key/rotate",
            Some(json!({})),
        ),
        step(
            "POST /v1/operator/keyring/rotate",
            "/v1/operator/keyring/rotate",
            Some(json!({})),
        ),
        step(
            "POST /v1/operator/audit/signing-keys/rotate",
            "/v1/operator/audit/signing-keys/rotate",
            Some(json!({})),
        ),
        step(
            "POST /v1/tenants/{id}/domains",
            "/v1/tenants/walk/domains",
            Some(json!({"domain": "support.walk.example"})),
        ),
        step(
            "POST /v1/tenants/{id}/domains/{domain}/verify",
            "/v1/tenants/walk/domains/support.walk.example/verify",
            Some(json!({"force": true})),
        ),
        step(
            "DELETE /v1/tenants/{id}/domains/{domain}",
            "/v1/tenants/walk/domains/support.walk.example",
            None,
        ),
        Step {
            save: Some(("wid", "id")),
            ..step(
                "POST /v1/tenants/{id}/widgets",
                "/v1/tenants/walk/widgets",
                Some(json!({"name": "Chat", "allowed_origins": ["https://walk.example"]})),
            )
        },
        step(
            "POST /v1/tenants/{id}/widgets/{wid}/tokens",
            "/v1/tenants/walk/widgets/{wid}/tokens",
            Some(json!({"origin": "https://walk.example"})),
        ),
        step(
            "POST /v1/tenants/{id}/messages",
            "/v1/tenants/walk/messages",
            Some(
                json!({"channel": "sms", "provider": "twilio", "provider_message_id": "SMwalk0001"}),
            ),
        ),
        step(
            "PATCH /v1/tenants/{id}/widgets/{wid}",
            "/v1/tenants/walk/widgets/{wid}",
            Some(json!({"enabled": false})),
        ),
        step(
            "DELETE /v1/tenants/{id}/credentials/{cred_id}",
            "/v1/tenants/walk/credentials/{cred_id}",
            None,
        ),
        // Identity providers (operator chain) and members (the tenant's).
        Step {
            save: Some(("provider_id", "id")),
            ..step(
                "POST /v1/identity-providers",
                "/v1/identity-providers",
                Some(idp()),
            )
        },
        step(
            "PUT /v1/identity-providers/{provider_id}",
            "/v1/identity-providers/{provider_id}",
            Some(idp()),
        ),
        step(
            "PUT /v1/tenants/{id}/members/{subject}",
            "/v1/tenants/walk/members/{provider_id}:walker",
            Some(json!({"roles": ["member"]})),
        ),
        step(
            "DELETE /v1/tenants/{id}/members/{subject}",
            "/v1/tenants/walk/members/{provider_id}:walker",
            None,
        ),
        step(
            "DELETE /v1/identity-providers/{provider_id}",
            "/v1/identity-providers/{provider_id}",
            None,
        ),
        // Webhook endpoints (their hosts do not resolve: messages stay
        // pending, and delivery records no audit entry).
        Step {
            save: Some(("op_eid", "id")),
            ..step(
                "POST /v1/webhook-endpoints",
                "/v1/webhook-endpoints",
                Some(json!({"url": "https://walk-hook.invalid/op"})),
            )
        },
        step(
            "PATCH /v1/webhook-endpoints/{eid}",
            "/v1/webhook-endpoints/{op_eid}",
            Some(json!({"description": "walked"})),
        ),
        step(
            "POST /v1/webhook-endpoints/{eid}/secret/rotate",
            "/v1/webhook-endpoints/{op_eid}/secret/rotate",
            Some(json!({})),
        ),
        step(
            "POST /v1/webhook-endpoints/{eid}/replay",
            "/v1/webhook-endpoints/{op_eid}/replay",
            Some(json!({"since": "2000-01-01T00:00:00Z"})),
        ),
        step(
            "POST /v1/webhook-endpoints/{eid}/messages/{mid}/replay",
            "/v1/webhook-endpoints/{op_eid}/messages/{op_mid}/replay",
            Some(json!({})),
        ),
        step(
            "DELETE /v1/webhook-endpoints/{eid}",
            "/v1/webhook-endpoints/{op_eid}",
            None,
        ),
        Step {
            save: Some(("t_eid", "id")),
            ..step(
                "POST /v1/tenants/{id}/webhook-endpoints",
                "/v1/tenants/walk/webhook-endpoints",
                Some(json!({"url": "https://walk-hook.invalid/t"})),
            )
        },
        step(
            "PATCH /v1/tenants/{id}/webhook-endpoints/{eid}",
            "/v1/tenants/walk/webhook-endpoints/{t_eid}",
            Some(json!({"description": "walked"})),
        ),
        step(
            "POST /v1/tenants/{id}/webhook-endpoints/{eid}/secret/rotate",
            "/v1/tenants/walk/webhook-endpoints/{t_eid}/secret/rotate",
            Some(json!({})),
        ),
        step(
            "POST /v1/tenants/{id}/webhook-endpoints/{eid}/replay",
            "/v1/tenants/walk/webhook-endpoints/{t_eid}/replay",
            Some(json!({"since": "2000-01-01T00:00:00Z"})),
        ),
        step(
            "POST /v1/tenants/{id}/webhook-endpoints/{eid}/messages/{mid}/replay",
            "/v1/tenants/walk/webhook-endpoints/{t_eid}/messages/{t_mid}/replay",
            Some(json!({})),
        ),
        step(
            "DELETE /v1/tenants/{id}/webhook-endpoints/{eid}",
            "/v1/tenants/walk/webhook-endpoints/{t_eid}",
            None,
        ),
        step("DELETE /v1/tenants/{id}", "/v1/tenants/walk", None),
    ]
}

/// Settings of an identity provider with inline keys (no fetch).
fn idp() -> Value {
    json!({"issuer": "https://walk-idp.example/", "audiences": ["app"], "algorithms": ["EdDSA"],
           "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "w",
                              "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}})
}

/// The id of a message of the endpoint at `endpoint` (the delivery worker
/// makes them moments after the events that caused them).
async fn some_message(server: &TestServer, endpoint: &str) -> String {
    for _ in 0..200 {
        let page = server.get(&format!("{endpoint}/messages")).await;
        if let Some(id) = page.body["data"][0]["id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no message for {endpoint}");
}

/// Entries of changes in the walked tenant's chain and the operator's.
async fn change_entries(db: &TestDb) -> Vec<Value> {
    let mut all = db.audit_rows("walk").await;
    all.extend(db.audit_rows("").await);
    all.retain(|e| e["action"] != "access.denied");
    all
}

async fn every_mutating_operation_records_one_entry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let doc = server.get("/openapi.json").await.body;
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if ["post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let steps = steps();
    let walked: BTreeSet<String> = steps
        .iter()
        .map(|s| s.operation.to_owned())
        .chain(NOT_CHANGES.iter().map(|s| (*s).to_owned()))
        .chain(RECORDED_ELSEWHERE.iter().map(|s| (*s).to_owned()))
        .collect();
    let missing: Vec<&String> = documented.difference(&walked).collect();
    assert!(
        missing.is_empty(),
        "documented mutations with no step in this walk (add one, with its audit entry): {missing:?}"
    );
    let stale: Vec<&String> = walked.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "steps for operations no longer documented: {stale:?}"
    );

    let mut saved: HashMap<&str, String> = HashMap::new();
    let mut tenant_key = String::new();
    for step in &steps {
        for (mid, eid, base) in [
            ("op_mid", "op_eid", "/v1/webhook-endpoints/"),
            ("t_mid", "t_eid", "/v1/tenants/walk/webhook-endpoints/"),
        ] {
            if step.path.contains(&format!("{{{mid}}}")) {
                let endpoint = format!("{base}{}", saved[eid]);
                saved.insert(mid, some_message(&server, &endpoint).await);
            }
        }
        let mut path = step.path.to_owned();
        for (name, value) in &saved {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let method =
            Method::from_bytes(step.operation.split(' ').next().unwrap().as_bytes()).unwrap();
        let key = match step.by {
            As::Root => ROOT_KEY,
            As::TenantKey => tenant_key.as_str(),
        };
        let before = change_entries(&db).await.len();
        let reply = server
            .call_as(Some(key), method, &path, step.body.clone())
            .await;
        assert!(reply.status.is_success(), "{}: {reply:?}", step.operation);
        let after = change_entries(&db).await;
        assert_eq!(
            after.len(),
            before + 1,
            "{} must record exactly one audit entry: {:#?}",
            step.operation,
            &after[before..]
        );
        if let Some((name, field)) = step.save {
            saved.insert(name, reply.body[field].as_str().unwrap().to_owned());
        }
        if let Some(key) = reply.body["key"].as_str()
            && step.operation.starts_with("POST /v1/tenants/{id}/api-keys")
        {
            tenant_key = key.to_owned();
        }
    }
}
