//! The audit log of plans, meters, tenant configuration and custom domains:
//! each successful change records exactly one entry (action, targets,
//! actor, request id) in the right chain; a refused or failed change
//! records nothing; metering records nothing; no secret reaches any column.
//! Entries are read by raw SQL, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    plans_and_meters_are_audited_in_the_operator_chain,
    config_changes_are_audited_in_the_tenant_chain,
    domain_changes_are_audited_in_the_tenant_chain,
    metering_records_no_audit_entry,
);

/// One audit entry, as stored.
#[derive(Debug)]
struct Entry {
    actor_type: String,
    actor_id: String,
    action: String,
    targets: Value,
    request: Value,
    changes: Value,
    metadata: Value,
    /// Every text column, for secret scans.
    raw: String,
}

const COLUMNS: &str = "tenant_id, id, actor_type, actor_id, COALESCE(actor_name, ''), action, \
                       targets, outcome, request, changes, metadata, prev_hash, hash";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

fn entry(row: Row) -> Entry {
    let json = |s: &str| serde_json::from_str::<Value>(s).unwrap();
    Entry {
        actor_type: row.2.clone(),
        actor_id: row.3.clone(),
        action: row.5.clone(),
        targets: json(&row.6),
        request: json(&row.8),
        changes: json(&row.9),
        metadata: json(&row.10),
        raw: [
            &row.0, &row.1, &row.2, &row.3, &row.4, &row.5, &row.6, &row.7, &row.8, &row.9,
            &row.10, &row.11, &row.12,
        ]
        .map(String::as_str)
        .join("\n"),
    }
}

/// The entries of one chain (`""`: the operator's), oldest first.
async fn chain(db: &TestDb, tenant: &str) -> Vec<Entry> {
    let sql = format!("SELECT {COLUMNS} FROM audit_entries WHERE tenant_id = $1 ORDER BY sequence");
    let rows: Vec<Row> = match db.backend {
        Backend::Sqlite => {
            let pool = db.sqlite_reader().await;
            let rows = sqlx::query_as(&sql)
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = db.pg_superuser().await;
            let rows = sqlx::query_as(&sql)
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            rows
        }
    };
    rows.into_iter().map(entry).collect()
}

/// Every entry of every chain.
async fn every_entry(db: &TestDb) -> Vec<Entry> {
    let sql = format!("SELECT {COLUMNS} FROM audit_entries");
    let rows: Vec<Row> = match db.backend {
        Backend::Sqlite => {
            let pool = db.sqlite_reader().await;
            let rows = sqlx::query_as(&sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let pool = db.pg_superuser().await;
            let rows = sqlx::query_as(&sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows
        }
    };
    rows.into_iter().map(entry).collect()
}

/// Sends a request with `key` and an `X-Request-Id`.
async fn send(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    request_id: &str,
) -> Reply {
    let mut req = server
        .client
        .request(method, server.url(path))
        .bearer_auth(key)
        .header("x-request-id", request_id);
    if let Some(body) = body {
        req = req.json(&body);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// The one entry `chain` gained since it had `before` entries.
async fn one_new(db: &TestDb, tenant: &str, before: usize) -> Entry {
    let mut entries = chain(db, tenant).await;
    assert_eq!(
        entries.len(),
        before + 1,
        "exactly one new entry in chain {tenant:?}: {entries:#?}"
    );
    entries.pop().unwrap()
}

fn assert_entry(
    entry: &Entry,
    action: &str,
    target: (&str, &str),
    actor: (&str, &str),
    request_id: &str,
) {
    assert_eq!(entry.action, action, "{entry:#?}");
    assert_eq!(
        entry.targets,
        json!([{"type": target.0, "id": target.1}]),
        "{entry:#?}"
    );
    assert_eq!(
        (entry.actor_type.as_str(), entry.actor_id.as_str()),
        actor,
        "{entry:#?}"
    );
    assert_eq!(entry.request["id"], request_id, "{entry:#?}");
}

async fn tenant_key(server: &TestServer, tenant: &str, scopes: &[&str]) -> (String, String) {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "k", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    (
        reply.body["key"].as_str().unwrap().to_owned(),
        reply.body["id"].as_str().unwrap().to_owned(),
    )
}

async fn event_count(server: &TestServer, tenant: &str) -> usize {
    let reply = server
        .get(&format!("/v1/tenants/{tenant}/events?limit=200"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body["data"].as_array().unwrap().len()
}

/// No column of any entry holds one of `secrets`.
async fn assert_no_secret(db: &TestDb, secrets: &[&str]) {
    for entry in every_entry(db).await {
        for secret in secrets {
            assert!(
                !entry.raw.contains(secret),
                "a secret in the audit log: {entry:#?}"
            );
        }
    }
}

async fn plans_and_meters_are_audited_in_the_operator_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let op = "";

    // A new plan: one `plan.updated` whose changes are the definition.
    let before = chain(&db, op).await.len();
    let gold = json!({"description": "Gold", "quotas": {"messages_outbound": 5000}, "features": {"analytics": true}});
    let put = send(
        &server,
        ROOT_KEY,
        Method::PUT,
        "/v1/plans/gold",
        Some(gold.clone()),
        "req-plan-1",
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let created = one_new(&db, op, before).await;
    assert_entry(
        &created,
        "plan.updated",
        ("plan", "gold"),
        ("operator", "root"),
        "req-plan-1",
    );
    assert_eq!(
        created.changes["after"]["quotas"]["messages_outbound"],
        5000
    );

    // Replaced: one entry with what changed, and nothing else.
    let before = chain(&db, op).await.len();
    let changed = json!({"description": "Gold", "quotas": {"messages_outbound": 6000}, "features": {"analytics": true}});
    let put = send(
        &server,
        ROOT_KEY,
        Method::PUT,
        "/v1/plans/gold",
        Some(changed.clone()),
        "req-plan-2",
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let updated = one_new(&db, op, before).await;
    assert_entry(
        &updated,
        "plan.updated",
        ("plan", "gold"),
        ("operator", "root"),
        "req-plan-2",
    );
    assert_eq!(
        updated.changes,
        json!({"quotas": {"from": {"messages_outbound": 5000}, "to": {"messages_outbound": 6000}}})
    );

    // The same definition again changes nothing and records nothing.
    let put = send(
        &server,
        ROOT_KEY,
        Method::PUT,
        "/v1/plans/gold",
        Some(changed),
        "req-plan-3",
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(put.body["quotas"]["messages_outbound"], 6000);
    // An invalid plan, and a tenant key, record nothing.
    let bad = send(
        &server,
        ROOT_KEY,
        Method::PUT,
        "/v1/plans/gold",
        Some(json!({"quotas": {"x": -1}})),
        "req-plan-4",
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
    server.create_tenant("acme").await;
    let (key, _) = tenant_key(&server, "acme", &["tenant:admin"]).await;
    let before_tenant = chain(&db, op).await.len();
    let refused = send(
        &server,
        &key,
        Method::PUT,
        "/v1/plans/gold",
        Some(json!({})),
        "req-plan-5",
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(chain(&db, op).await.len(), before_tenant);
    assert!(
        chain(&db, op)
            .await
            .iter()
            .all(|e| !["req-plan-3", "req-plan-4", "req-plan-5"]
                .contains(&e.request["id"].as_str().unwrap_or(""))),
        "no entry for a no-op or a refusal"
    );

    // A meter: one `meter.created`; the same name again is 409 with nothing.
    let before = chain(&db, op).await.len();
    let meter = send(
        &server,
        ROOT_KEY,
        Method::POST,
        "/v1/meters",
        Some(json!({"name": "sms_segments", "description": "SMS"})),
        "req-meter-1",
    )
    .await;
    assert_eq!(meter.status, StatusCode::CREATED, "{meter:?}");
    let created = one_new(&db, op, before).await;
    assert_entry(
        &created,
        "meter.created",
        ("meter", "sms_segments"),
        ("operator", "root"),
        "req-meter-1",
    );
    assert_eq!(
        created.changes,
        json!({"after": {"name": "sms_segments", "aggregation": "sum", "description": "SMS"}})
    );
    let again = send(
        &server,
        ROOT_KEY,
        Method::POST,
        "/v1/meters",
        Some(json!({"name": "sms_segments"})),
        "req-meter-2",
    )
    .await;
    again.assert_problem(409, "meter_exists");
    assert_eq!(chain(&db, op).await.len(), before + 1);

    assert_no_secret(&db, &[ROOT_KEY, &key]).await;
}

async fn config_changes_are_audited_in_the_tenant_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let (key, key_id) = tenant_key(&server, "acme", &["tenant:admin"]).await;
    let (other_key, _) = tenant_key(&server, "globex", &["tenant:admin"]).await;
    let path = "/v1/tenants/acme/config";

    // A tenant admin's patch: one entry, actor the key, the touched fields.
    let before = chain(&db, "acme").await.len();
    let events = event_count(&server, "acme").await;
    let patch = send(
        &server,
        &key,
        Method::PATCH,
        path,
        Some(json!({"branding": {"company_name": "Acme"}})),
        "req-cfg-1",
    )
    .await;
    assert_eq!(patch.status, StatusCode::OK, "{patch:?}");
    let entry = one_new(&db, "acme", before).await;
    assert_entry(
        &entry,
        "config.updated",
        ("tenant", "acme"),
        ("api_key", &key_id),
        "req-cfg-1",
    );
    assert_eq!(
        entry.changes,
        json!({"branding.company_name": {"from": null, "to": "Acme"}})
    );
    assert_eq!(entry.metadata["version"], 1);
    assert_eq!(event_count(&server, "acme").await, events + 1);

    // An operator's: actor the operator; before/after of what it replaced.
    let before = chain(&db, "acme").await.len();
    let patch = send(&server, ROOT_KEY, Method::PATCH, path, Some(json!({"rate_limits": {"messages_per_minute": 7}, "branding": {"company_name": "Acme Inc"}})), "req-cfg-2").await;
    assert_eq!(patch.status, StatusCode::OK, "{patch:?}");
    let entry = one_new(&db, "acme", before).await;
    assert_entry(
        &entry,
        "config.updated",
        ("tenant", "acme"),
        ("operator", "root"),
        "req-cfg-2",
    );
    assert_eq!(
        entry.changes,
        json!({
            "branding.company_name": {"from": "Acme", "to": "Acme Inc"},
            "rate_limits.messages_per_minute": {"from": null, "to": 7},
        })
    );

    // Refused or invalid: no entry, no event.
    let before = chain(&db, "acme").await.len();
    let events = event_count(&server, "acme").await;
    let invalid = send(
        &server,
        &key,
        Method::PATCH,
        path,
        Some(json!({"branding": {"primary_color": "red"}})),
        "req-cfg-3",
    )
    .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{invalid:?}"
    );
    let operator_only = send(
        &server,
        &key,
        Method::PATCH,
        path,
        Some(json!({"features": {"analytics": true}})),
        "req-cfg-4",
    )
    .await;
    operator_only.assert_problem(403, "operator_required");
    let foreign = send(
        &server,
        &other_key,
        Method::PATCH,
        path,
        Some(json!({"branding": {"company_name": "Mine"}})),
        "req-cfg-5",
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{foreign:?}");
    assert_eq!(chain(&db, "acme").await.len(), before);
    assert_eq!(event_count(&server, "acme").await, events);

    // A deleted tenant's configuration: 409 once the tenant row is locked
    // inside the change, which rolls back with nothing recorded.
    let deleted = server.delete("/v1/tenants/acme").await;
    assert!(deleted.status.is_success(), "{deleted:?}");
    let before = chain(&db, "acme").await.len();
    let events = event_count(&server, "acme").await;
    let conflict = send(
        &server,
        ROOT_KEY,
        Method::PATCH,
        path,
        Some(json!({"branding": {"company_name": "Gone"}})),
        "req-cfg-6",
    )
    .await;
    conflict.assert_problem(409, "tenant_deleted");
    assert_eq!(chain(&db, "acme").await.len(), before);
    assert_eq!(event_count(&server, "acme").await, events);

    assert_no_secret(&db, &[ROOT_KEY, &key, &other_key]).await;
}

async fn domain_changes_are_audited_in_the_tenant_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_BASE_DOMAIN", "example.test"),
        ],
    )
    .await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let (key, key_id) = tenant_key(&server, "acme", &["tenant:admin"]).await;
    let (other_key, _) = tenant_key(&server, "globex", &["tenant:admin"]).await;
    let domains = "/v1/tenants/acme/domains";

    // Claimed by a tenant admin: `domain.added`, actor the key.
    let before = chain(&db, "acme").await.len();
    let add = send(
        &server,
        &key,
        Method::POST,
        domains,
        Some(json!({"domain": "support.acme.com"})),
        "req-dom-1",
    )
    .await;
    assert_eq!(add.status, StatusCode::CREATED, "{add:?}");
    let entry = one_new(&db, "acme", before).await;
    assert_entry(
        &entry,
        "domain.added",
        ("domain", "support.acme.com"),
        ("api_key", &key_id),
        "req-dom-1",
    );
    assert_eq!(entry.changes["after"]["status"], "pending");

    // Claimed again: the insert fails inside the change (409), which rolls
    // back with no entry and no event.
    let before = chain(&db, "acme").await.len();
    let events = event_count(&server, "acme").await;
    let again = send(
        &server,
        &key,
        Method::POST,
        domains,
        Some(json!({"domain": "support.acme.com"})),
        "req-dom-2",
    )
    .await;
    again.assert_problem(409, "domain_taken");
    assert_eq!(chain(&db, "acme").await.len(), before);
    assert_eq!(event_count(&server, "acme").await, events);

    // Another tenant claims it too (pending claims may coexist).
    let claim = send(
        &server,
        &other_key,
        Method::POST,
        "/v1/tenants/globex/domains",
        Some(json!({"domain": "support.acme.com"})),
        "req-dom-3",
    )
    .await;
    assert_eq!(claim.status, StatusCode::CREATED, "{claim:?}");
    let globex_before = chain(&db, "globex").await.len();

    // Force-verified by an operator: `domain.verified`, actor the operator.
    let before = chain(&db, "acme").await.len();
    let verify = send(
        &server,
        ROOT_KEY,
        Method::POST,
        "/v1/tenants/acme/domains/support.acme.com/verify",
        Some(json!({"force": true})),
        "req-dom-4",
    )
    .await;
    assert_eq!(verify.status, StatusCode::OK, "{verify:?}");
    let entry = one_new(&db, "acme", before).await;
    assert_entry(
        &entry,
        "domain.verified",
        ("domain", "support.acme.com"),
        ("operator", "root"),
        "req-dom-4",
    );
    assert_eq!(
        entry.changes,
        json!({"status": {"from": "pending", "to": "verified"}})
    );
    assert_eq!(entry.metadata, json!({"forced": true}));
    // The losing claim is dropped by the server, in its own tenant's chain.
    let lost = one_new(&db, "globex", globex_before).await;
    assert_eq!(lost.action, "domain.removed");
    assert_eq!(lost.actor_type, "system");
    assert_eq!(lost.metadata["reason"], "verified_by_another_tenant");
    assert!(
        !lost.raw.contains(&key_id),
        "the winner's key is not the loser's to see"
    );
    let listed = server.get("/v1/tenants/globex/domains").await;
    assert_eq!(listed.body["data"], json!([]), "{listed:?}");
    // Verifying it again changes nothing and records nothing.
    let again = send(
        &server,
        &key,
        Method::POST,
        "/v1/tenants/acme/domains/support.acme.com/verify",
        None,
        "req-dom-5",
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(chain(&db, "acme").await.len(), before + 1);

    // Another tenant's domain is not found, with nothing recorded anywhere.
    let foreign = send(
        &server,
        &other_key,
        Method::DELETE,
        "/v1/tenants/acme/domains/support.acme.com",
        None,
        "req-dom-6",
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{foreign:?}");
    assert_eq!(chain(&db, "acme").await.len(), before + 1);

    // Removed: `domain.removed`, actor the key.
    let removed = send(
        &server,
        &key,
        Method::DELETE,
        "/v1/tenants/acme/domains/support.acme.com",
        None,
        "req-dom-7",
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{removed:?}");
    let entry = one_new(&db, "acme", before + 1).await;
    assert_entry(
        &entry,
        "domain.removed",
        ("domain", "support.acme.com"),
        ("api_key", &key_id),
        "req-dom-7",
    );
    assert_eq!(entry.changes["before"]["status"], "verified");
    let missing = send(
        &server,
        &key,
        Method::DELETE,
        "/v1/tenants/acme/domains/support.acme.com",
        None,
        "req-dom-8",
    )
    .await;
    missing.assert_problem(404, "domain_not_found");
    assert_eq!(chain(&db, "acme").await.len(), before + 2);

    assert_no_secret(&db, &[ROOT_KEY, &key, &other_key]).await;
}

async fn metering_records_no_audit_entry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let (key, _) = tenant_key(&server, "acme", &["usage:write", "usage:read"]).await;
    let patch = server
        .patch(
            "/v1/tenants/acme/config",
            json!({"quotas": {"api_calls": {"limit": 1000}, "messages_outbound": {"limit": 10}}, "rate_limits": {"messages_per_minute": 100}}),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{patch:?}");
    let before = every_entry(&db).await.len();

    // Usage events, quota consumption (crossing a threshold included), a
    // rate-limit decision, and API calls consuming the api_calls quota.
    let usage = send(
        &server,
        &key,
        Method::POST,
        "/v1/usage/events",
        Some(json!({"events": [
            {"id": "e1", "meter": "messages_outbound", "quantity": 9},
            {"id": "e2", "meter": "messages_inbound"},
        ]})),
        "req-meter-1",
    )
    .await;
    assert_eq!(usage.status, StatusCode::OK, "{usage:?}");
    assert_eq!(usage.body["accepted"], 2, "{usage:?}");
    let quota = send(
        &server,
        &key,
        Method::POST,
        "/v1/quotas/check",
        Some(json!({"meter": "messages_outbound", "quantity": 1, "consume": true})),
        "req-meter-2",
    )
    .await;
    assert_eq!(quota.status, StatusCode::OK, "{quota:?}");
    assert_eq!(quota.body["used"], 10, "{quota:?}");
    let rate = send(
        &server,
        &key,
        Method::POST,
        "/v1/ratelimit",
        Some(json!({"limit": "messages_per_minute"})),
        "req-meter-3",
    )
    .await;
    assert_eq!(rate.status, StatusCode::OK, "{rate:?}");
    let stats = send(
        &server,
        &key,
        Method::GET,
        "/v1/tenants/acme/stats",
        None,
        "req-meter-4",
    )
    .await;
    assert_eq!(stats.status, StatusCode::OK, "{stats:?}");
    assert!(
        stats.body["quotas"]["api_calls"]["used"].as_i64().unwrap() >= 3,
        "{stats:?}"
    );

    assert_eq!(
        every_entry(&db).await.len(),
        before,
        "metering is not audited"
    );
    // The threshold crossing stays in the tenant's event history.
    let events = server.get("/v1/tenants/acme/events?limit=200").await;
    assert!(
        events.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "quota.threshold_reached"),
        "{events:?}"
    );
    assert_no_secret(&db, &[ROOT_KEY, &key]).await;
}
