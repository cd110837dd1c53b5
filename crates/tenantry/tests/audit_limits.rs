//! The audit log of plans, meters, tenant configuration and custom domains:
//! each successful change records exactly one entry (action, targets,
//! actor, request id) in the right chain; a refused or failed change
//! records nothing; metering records nothing; no secret reaches any column.
//! Entries are read by raw SQL, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// acme's domains, the one it claims, and that one's verification.
const DOMAINS: &str = "/v1/tenants/acme/domains";
const DOMAIN: &str = "/v1/tenants/acme/domains/support.acme.com";
const VERIFY: &str = "/v1/tenants/acme/domains/support.acme.com/verify";

on_both_backends!(
    plans_and_meters_are_audited_in_the_operator_chain,
    config_changes_are_audited_in_the_tenant_chain,
    domain_changes_are_audited_in_the_tenant_chain,
    metering_records_no_audit_entry,
    concurrent_changes_each_diff_against_the_one_before,
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

/// The entries of one chain (`Some("")`: the operator's) or of every
/// chain, oldest first, bypassing Tenantry (SQLite file, PostgreSQL
/// superuser).
/// The entries of changes (refusals of a tenant's credential are recorded
/// too, as `access.denied`: see audit_change.rs).
async fn entries(db: &TestDb, tenant: Option<&str>) -> Vec<Entry> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_entries WHERE ($1 IS NULL OR tenant_id = $1) \
         AND action <> 'access.denied' ORDER BY tenant_id, sequence"
    );
    let rows: Vec<Row> = match db.backend {
        Backend::Sqlite => {
            let pool = db.sqlite_reader().await;
            let rows = sqlx::query_as(&sql).bind(tenant).fetch_all(&pool).await;
            pool.close().await;
            rows.unwrap()
        }
        Backend::Postgres => {
            let pool = db.pg_superuser().await;
            let rows = sqlx::query_as(&sql).bind(tenant).fetch_all(&pool).await;
            pool.close().await;
            rows.unwrap()
        }
    };
    rows.into_iter().map(entry).collect()
}

async fn chain(db: &TestDb, tenant: &str) -> Vec<Entry> {
    entries(db, Some(tenant)).await
}

async fn every_entry(db: &TestDb) -> Vec<Entry> {
    entries(db, None).await
}

/// One request, with its `X-Request-Id`.
struct Call<'a> {
    key: &'a str,
    method: Method,
    path: &'a str,
    body: Option<Value>,
    request_id: &'a str,
}

fn call<'a>(
    key: &'a str,
    method: Method,
    path: &'a str,
    body: Option<Value>,
    id: &'a str,
) -> Call<'a> {
    Call {
        key,
        method,
        path,
        body,
        request_id: id,
    }
}

async fn send(server: &TestServer, call: Call<'_>) -> Reply {
    let mut req = server
        .client
        .request(call.method, server.url(call.path))
        .bearer_auth(call.key)
        .header("x-request-id", call.request_id);
    if let Some(body) = call.body {
        req = req.json(&body);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// What a call must record: one entry in `chain` (`""`: the operator's).
struct Expect<'a> {
    chain: &'a str,
    action: &'a str,
    target: (&'a str, &'a str),
    actor: (&'a str, &'a str),
}

/// Sends `call`, which must succeed, and returns the one entry it added to
/// `expect.chain`, checked against `expect` and the call's request id.
async fn audited(db: &TestDb, server: &TestServer, call: Call<'_>, expect: Expect<'_>) -> Entry {
    let before = chain(db, expect.chain).await.len();
    let request_id = call.request_id.to_owned();
    let reply = send(server, call).await;
    assert!(reply.status.is_success(), "{reply:?}");
    let mut entries = chain(db, expect.chain).await;
    assert_eq!(
        entries.len(),
        before + 1,
        "exactly one new entry: {entries:#?}"
    );
    let entry = entries.pop().unwrap();
    assert_eq!(entry.action, expect.action, "{entry:#?}");
    let (kind, id) = expect.target;
    assert_eq!(
        entry.targets,
        json!([{"type": kind, "id": id}]),
        "{entry:#?}"
    );
    let actor = (entry.actor_type.as_str(), entry.actor_id.as_str());
    assert_eq!(actor, expect.actor, "{entry:#?}");
    assert_eq!(entry.request["id"], request_id.as_str(), "{entry:#?}");
    entry
}

/// Sends `call` and checks that it recorded nothing: no entry in any
/// chain, and (for a tenant) no event in `tenant`'s history.
async fn unrecorded(
    db: &TestDb,
    server: &TestServer,
    tenant: Option<&str>,
    call: Call<'_>,
) -> Reply {
    let before = every_entry(db).await.len();
    let events = match tenant {
        Some(t) => event_count(server, t).await,
        None => 0,
    };
    let reply = send(server, call).await;
    assert_eq!(
        every_entry(db).await.len(),
        before,
        "nothing recorded: {reply:?}"
    );
    if let Some(t) = tenant {
        assert_eq!(event_count(server, t).await, events, "no event: {reply:?}");
    }
    reply
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

const ROOT: (&str, &str) = ("operator", "root");

async fn plans_and_meters_are_audited_in_the_operator_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let plan = |action| Expect {
        chain: "",
        action,
        target: ("plan", "gold"),
        actor: ROOT,
    };
    let put = |body: Value, id| call(ROOT_KEY, Method::PUT, "/v1/plans/gold", Some(body), id);

    // A new plan: one `plan.updated` whose changes are the definition.
    let gold = json!({"description": "Gold", "quotas": {"messages_outbound": 5000}});
    let created = audited(&db, &server, put(gold, "req-plan-1"), plan("plan.updated")).await;
    assert_eq!(
        created.changes["after"]["quotas"]["messages_outbound"],
        5000
    );

    // Replaced: one entry with the sections that changed.
    let gold = json!({"description": "Gold", "quotas": {"messages_outbound": 6000}});
    let updated = audited(
        &db,
        &server,
        put(gold.clone(), "req-plan-2"),
        plan("plan.updated"),
    )
    .await;
    assert_eq!(
        updated.changes,
        json!({"quotas": {"from": {"messages_outbound": 5000}, "to": {"messages_outbound": 6000}}})
    );

    // The same definition again, an invalid one, a tenant key: nothing.
    let same = unrecorded(&db, &server, None, put(gold, "req-plan-3")).await;
    assert_eq!(same.status, StatusCode::OK, "{same:?}");
    assert_eq!(same.body["quotas"]["messages_outbound"], 6000);
    let bad = json!({"quotas": {"x": -1}});
    let bad = unrecorded(&db, &server, None, put(bad, "req-plan-4")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
    server.create_tenant("acme").await;
    let (key, _) = tenant_key(&server, "acme", &["tenant:admin"]).await;
    let by_tenant = call(
        &key,
        Method::PUT,
        "/v1/plans/gold",
        Some(json!({})),
        "req-plan-5",
    );
    unrecorded(&db, &server, None, by_tenant)
        .await
        .assert_problem(403, "operator_required");

    // A meter: one `meter.created`; the same name again is 409 with nothing.
    let body = json!({"name": "sms_segments", "description": "SMS"});
    let meter = call(
        ROOT_KEY,
        Method::POST,
        "/v1/meters",
        Some(body.clone()),
        "req-meter-1",
    );
    let expect = Expect {
        chain: "",
        action: "meter.created",
        target: ("meter", "sms_segments"),
        actor: ROOT,
    };
    let created = audited(&db, &server, meter, expect).await;
    assert_eq!(
        created.changes,
        json!({"after": {"name": "sms_segments", "aggregation": "sum", "description": "SMS"}})
    );
    let again = call(
        ROOT_KEY,
        Method::POST,
        "/v1/meters",
        Some(body),
        "req-meter-2",
    );
    unrecorded(&db, &server, None, again)
        .await
        .assert_problem(409, "meter_exists");

    assert_no_secret(&db, &[ROOT_KEY, &key]).await;
}

async fn config_changes_are_audited_in_the_tenant_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let (key, key_id) = tenant_key(&server, "acme", &["tenant:admin"]).await;
    let (other_key, _) = tenant_key(&server, "globex", &["tenant:admin"]).await;
    let patch = |key, body: Value, id| {
        call(
            key,
            Method::PATCH,
            "/v1/tenants/acme/config",
            Some(body),
            id,
        )
    };
    let by = |actor| Expect {
        chain: "acme",
        action: "config.updated",
        target: ("tenant", "acme"),
        actor,
    };

    // A tenant admin's patch: one entry, actor the key, the touched fields,
    // and its event in the history.
    let events = event_count(&server, "acme").await;
    let body = json!({"branding": {"company_name": "Acme"}});
    let entry = audited(
        &db,
        &server,
        patch(&key, body, "req-cfg-1"),
        by(("api_key", &key_id)),
    )
    .await;
    assert_eq!(
        entry.changes,
        json!({"branding.company_name": {"from": null, "to": "Acme"}})
    );
    assert_eq!(entry.metadata["version"], 1);
    assert_eq!(event_count(&server, "acme").await, events + 1);

    // An operator's: actor the operator; before/after of what it replaced.
    let body = json!({"rate_limits": {"messages_per_minute": 7}, "branding": {"company_name": "Acme Inc"}});
    let entry = audited(&db, &server, patch(ROOT_KEY, body, "req-cfg-2"), by(ROOT)).await;
    assert_eq!(
        entry.changes,
        json!({
            "branding.company_name": {"from": "Acme", "to": "Acme Inc"},
            "rate_limits.messages_per_minute": {"from": null, "to": 7},
        })
    );

    // Invalid, operator-only, another tenant's key: nothing recorded.
    let body = json!({"branding": {"primary_color": "red"}});
    let invalid = unrecorded(&db, &server, Some("acme"), patch(&key, body, "req-cfg-3")).await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{invalid:?}"
    );
    let body = json!({"features": {"analytics": true}});
    let operator_only =
        unrecorded(&db, &server, Some("acme"), patch(&key, body, "req-cfg-4")).await;
    operator_only.assert_problem(403, "operator_required");
    let body = json!({"branding": {"company_name": "Mine"}});
    let foreign = unrecorded(
        &db,
        &server,
        Some("acme"),
        patch(&other_key, body, "req-cfg-5"),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{foreign:?}");

    // A deleted tenant's configuration: 409 once the tenant row is locked
    // inside the change, which rolls back with nothing recorded.
    let deleted = server.delete("/v1/tenants/acme").await;
    assert!(deleted.status.is_success(), "{deleted:?}");
    let body = json!({"branding": {"company_name": "Gone"}});
    let conflict = unrecorded(
        &db,
        &server,
        Some("acme"),
        patch(ROOT_KEY, body, "req-cfg-6"),
    )
    .await;
    conflict.assert_problem(409, "tenant_deleted");

    assert_no_secret(&db, &[ROOT_KEY, &key, &other_key]).await;
}

async fn domain_changes_are_audited_in_the_tenant_chain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = [
        ("TENANTRY_ROOT_KEY", ROOT_KEY),
        ("TENANTRY_BASE_DOMAIN", "example.test"),
    ];
    let server = TestServer::start_with(&db, &env).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let (key, key_id) = tenant_key(&server, "acme", &["tenant:admin"]).await;
    let (other_key, _) = tenant_key(&server, "globex", &["tenant:admin"]).await;
    let claim = json!({"domain": "support.acme.com"});
    let domain = |action, actor| Expect {
        chain: "acme",
        action,
        target: ("domain", "support.acme.com"),
        actor,
    };
    let admin = ("api_key", key_id.as_str());

    // Claimed by a tenant admin: `domain.added`, actor the key.
    let add = call(
        &key,
        Method::POST,
        DOMAINS,
        Some(claim.clone()),
        "req-dom-1",
    );
    let entry = audited(&db, &server, add, domain("domain.added", admin)).await;
    assert_eq!(entry.changes["after"]["status"], "pending");

    // Claimed again: the insert fails inside the change (409), which rolls
    // back with no entry and no event.
    let again = call(
        &key,
        Method::POST,
        DOMAINS,
        Some(claim.clone()),
        "req-dom-2",
    );
    unrecorded(&db, &server, Some("acme"), again)
        .await
        .assert_problem(409, "domain_taken");

    // Another tenant claims it too (pending claims may coexist).
    let path = "/v1/tenants/globex/domains";
    let other = send(
        &server,
        call(&other_key, Method::POST, path, Some(claim), "req-dom-3"),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED, "{other:?}");
    let globex_before = chain(&db, "globex").await.len();

    // Force-verified by an operator: `domain.verified`, actor the operator.
    let force = call(
        ROOT_KEY,
        Method::POST,
        VERIFY,
        Some(json!({"force": true})),
        "req-dom-4",
    );
    let entry = audited(&db, &server, force, domain("domain.verified", ROOT)).await;
    assert_eq!(
        entry.changes,
        json!({"status": {"from": "pending", "to": "verified"}})
    );
    assert_eq!(entry.metadata, json!({"forced": true}));
    // The losing claim is dropped by the server, in its own tenant's chain.
    let globex = chain(&db, "globex").await;
    assert_eq!(globex.len(), globex_before + 1, "{globex:#?}");
    let lost = globex.last().unwrap();
    assert_eq!(
        (lost.action.as_str(), lost.actor_type.as_str()),
        ("domain.removed", "system")
    );
    assert_eq!(lost.metadata["reason"], "verified_by_another_tenant");
    assert!(
        !lost.raw.contains(&key_id),
        "the winner's key is not the loser's to see"
    );
    let listed = server.get(path).await;
    assert_eq!(listed.body["data"], json!([]), "{listed:?}");

    // Verifying it again, or another tenant's delete (404): nothing.
    let again = unrecorded(
        &db,
        &server,
        Some("acme"),
        call(&key, Method::POST, VERIFY, None, "req-dom-5"),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    let foreign = call(&other_key, Method::DELETE, DOMAIN, None, "req-dom-6");
    let foreign = unrecorded(&db, &server, Some("acme"), foreign).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{foreign:?}");

    // Removed: `domain.removed`, actor the key; then it is gone.
    let remove = call(&key, Method::DELETE, DOMAIN, None, "req-dom-7");
    let entry = audited(&db, &server, remove, domain("domain.removed", admin)).await;
    assert_eq!(entry.changes["before"]["status"], "verified");
    let missing = call(&key, Method::DELETE, DOMAIN, None, "req-dom-8");
    unrecorded(&db, &server, Some("acme"), missing)
        .await
        .assert_problem(404, "domain_not_found");

    assert_no_secret(&db, &[ROOT_KEY, &key, &other_key]).await;
}

async fn metering_records_no_audit_entry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let (key, _) = tenant_key(&server, "acme", &["usage:write", "usage:read"]).await;
    let config = json!({
        "quotas": {"api_calls": {"limit": 1000}, "messages_outbound": {"limit": 10}},
        "rate_limits": {"messages_per_minute": 100},
    });
    let patch = server.patch("/v1/tenants/acme/config", config).await;
    assert_eq!(patch.status, StatusCode::OK, "{patch:?}");
    let before = every_entry(&db).await.len();

    // Usage events, quota consumption (crossing a threshold included), a
    // rate-limit decision, and API calls consuming the api_calls quota.
    let events = json!({"events": [
        {"id": "e1", "meter": "messages_outbound", "quantity": 9},
        {"id": "e2", "meter": "messages_inbound"},
    ]});
    let usage = send(
        &server,
        call(
            &key,
            Method::POST,
            "/v1/usage/events",
            Some(events),
            "req-m-1",
        ),
    )
    .await;
    assert_eq!(usage.body["accepted"], 2, "{usage:?}");
    let consume = json!({"meter": "messages_outbound", "quantity": 1, "consume": true});
    let quota = send(
        &server,
        call(
            &key,
            Method::POST,
            "/v1/quotas/check",
            Some(consume),
            "req-m-2",
        ),
    )
    .await;
    assert_eq!(quota.body["used"], 10, "{quota:?}");
    let take = json!({"limit": "messages_per_minute"});
    let rate = send(
        &server,
        call(&key, Method::POST, "/v1/ratelimit", Some(take), "req-m-3"),
    )
    .await;
    assert_eq!(rate.body["allowed"], true, "{rate:?}");
    let stats = send(
        &server,
        call(&key, Method::GET, "/v1/tenants/acme/stats", None, "req-m-4"),
    )
    .await;
    let used = stats.body["quotas"]["api_calls"]["used"].as_i64();
    assert!(used.is_some_and(|n| n >= 3), "{stats:?}");

    assert_eq!(
        every_entry(&db).await.len(),
        before,
        "metering is not audited"
    );
    // The threshold crossing stays in the tenant's event history.
    let events = server.get("/v1/tenants/acme/events?limit=200").await;
    let kinds: Vec<&Value> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["type"])
        .collect();
    assert!(
        kinds.contains(&&json!("quota.threshold_reached")),
        "{events:?}"
    );
    assert_no_secret(&db, &[ROOT_KEY, &key]).await;
}

/// Sends each `(method, path, body)` as the operator at once.
async fn all_at_once(server: &TestServer, calls: Vec<(Method, String, Value)>) -> Vec<Reply> {
    let mut set = tokio::task::JoinSet::new();
    for (method, path, body) in calls {
        let request = server
            .client
            .request(method, server.url(&path))
            .bearer_auth(ROOT_KEY)
            .json(&body);
        set.spawn(async move { Reply::from(request.send().await.unwrap()).await });
    }
    set.join_all().await
}

/// `(from, to)` of `field` in each entry of `action`, oldest first: each
/// change's `from` must be the `to` of the one before it.
fn assert_chained(entries: &[Entry], action: &str, field: &str, first: Value, n: usize) {
    let steps: Vec<(Value, Value)> = entries
        .iter()
        .filter(|e| e.action == action)
        .map(|e| {
            (
                e.changes[field]["from"].clone(),
                e.changes[field]["to"].clone(),
            )
        })
        .collect();
    assert_eq!(steps.len(), n, "one entry per change: {entries:#?}");
    let mut previous = first;
    for (from, to) in steps {
        assert_eq!(
            from, previous,
            "a change diffed against a stale value: {entries:#?}"
        );
        previous = to;
    }
}

async fn concurrent_changes_each_diff_against_the_one_before(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let n = 6;

    // Concurrent patches of one field: versions 1..n, each entry's `from`
    // the value the one before set.
    let calls = (0..n)
        .map(|i| {
            let body = json!({"branding": {"company_name": format!("Acme {i}")}});
            (Method::PATCH, "/v1/tenants/acme/config".to_owned(), body)
        })
        .collect();
    for reply in all_at_once(&server, calls).await {
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    let acme = chain(&db, "acme").await;
    assert_chained(
        &acme,
        "config.updated",
        "branding.company_name",
        Value::Null,
        n,
    );
    let versions: Vec<i64> = acme
        .iter()
        .filter_map(|e| e.metadata["version"].as_i64())
        .collect();
    assert_eq!(versions, (1..=n as i64).collect::<Vec<_>>(), "{acme:#?}");

    // Concurrent replacements of one plan: the same.
    let put = server
        .call(
            Method::PUT,
            "/v1/plans/gold",
            Some(json!({"description": "v"})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let calls = (0..n)
        .map(|i| {
            let body = json!({"description": format!("v{i}")});
            (Method::PUT, "/v1/plans/gold".to_owned(), body)
        })
        .collect();
    for reply in all_at_once(&server, calls).await {
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    let operator: Vec<Entry> = chain(&db, "")
        .await
        .into_iter()
        .filter(|e| e.changes.get("after").is_none())
        .collect();
    assert_chained(&operator, "plan.updated", "description", json!("v"), n);
}
