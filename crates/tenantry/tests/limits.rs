//! Plans, tenant configuration, usage metering, quotas and rate limits over
//! HTTP, on both backends; Redis-backed limits across two processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, TestDb, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    plan_catalog,
    configuration_overrides_and_versions,
    usage_ingestion_is_idempotent,
    usage_series_and_stats,
    usage_validation,
    accepted_usage_survives_kill_9,
    concurrent_requests_share_commits_and_count_exactly,
    kill_9_under_concurrent_load_loses_no_acknowledged_event,
    kill_9_under_batch_load_keeps_batches_whole,
    batches_repeating_ids_count_each_once,
    quotas_hard_soft_and_alerts,
    concurrent_consumers_never_pass_a_hard_limit,
    rate_limit_decisions,
    api_calls_are_rate_limited,
    api_calls_quota_blocks_the_api,
    cross_tenant_usage_is_not_found,
);

async fn tenant_key(server: &TestServer, tenant: &str, scopes: &[&str]) -> String {
    let reply = server
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            json!({"name": "k", "scopes": scopes}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body["key"].as_str().unwrap().to_owned()
}

async fn plan_catalog(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let plans = server.get("/v1/plans").await;
    assert_eq!(plans.status, StatusCode::OK);
    let by_name = |name: &str| {
        plans.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("starter")["quotas"]["messages_outbound"], 1000);
    assert_eq!(by_name("starter")["limits"]["agents"], 5);
    assert_eq!(
        by_name("professional")["quotas"]["messages_outbound"],
        10000
    );
    assert_eq!(by_name("professional")["limits"]["agents"], 25);
    assert!(
        by_name("enterprise")["quotas"]["messages_outbound"].is_null(),
        "unlimited"
    );
    assert_eq!(
        by_name("starter")["rate_limits"]["messages_per_minute"],
        json!({"limit": 60, "period_seconds": 60})
    );
    assert_eq!(
        by_name("starter")["features"],
        json!({"analytics": false, "media_messages": true, "template_messages": false})
    );

    let gold = server
        .call(Method::PUT, "/v1/plans/gold", Some(json!({"description": "Gold", "quotas": {"messages_outbound": 50000}, "rate_limits": {"api_calls_per_hour": 5000, "bursts": {"limit": 10, "period_seconds": 5}}, "features": {"analytics": true}})))
        .await;
    assert_eq!(gold.status, StatusCode::OK, "{gold:?}");
    assert_eq!(
        gold.body["rate_limits"]["bursts"],
        json!({"limit": 10, "period_seconds": 5})
    );
    let t = server
        .post(
            "/v1/tenants",
            json!({"id": "acme", "name": "Acme", "plan": "gold"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED);
    server
        .post(
            "/v1/tenants",
            json!({"id": "other", "name": "x", "plan": "platinum"}),
        )
        .await
        .assert_invalid("plan");
    server
        .patch("/v1/tenants/acme", json!({"plan": "platinum"}))
        .await
        .assert_invalid("plan");
    for (body, field) in [
        (
            json!({"quotas": {"messages_outbound": -1}}),
            "quotas.messages_outbound",
        ),
        (
            json!({"rate_limits": {"api_calls_per_hour": 0}}),
            "rate_limits.api_calls_per_hour",
        ),
        (json!({"rate_limits": {"spikes": 5}}), "rate_limits.spikes"),
        (
            json!({"features": {"analytics": "yes"}}),
            "features.analytics",
        ),
        (json!({"colour": "gold"}), "colour"),
        (json!([1]), "body"),
    ] {
        server
            .call(Method::PUT, "/v1/plans/gold", Some(body))
            .await
            .assert_invalid(field);
    }
    server
        .call(Method::PUT, "/v1/plans/Gold%20Plan", Some(json!({})))
        .await
        .assert_invalid("name");
    // A plan change is in force at once.
    server
        .call(
            Method::PUT,
            "/v1/plans/gold",
            Some(json!({"quotas": {"messages_outbound": 7}})),
        )
        .await;
    assert_eq!(
        server.get("/v1/tenants/acme/config").await.body["quotas"]["messages_outbound"]["limit"],
        7
    );
    let key = tenant_key(&server, "acme", &["tenant:admin"]).await;
    server
        .call_as(Some(&key), Method::PUT, "/v1/plans/gold", Some(json!({})))
        .await
        .assert_problem(403, "operator_required");
    assert_eq!(
        server
            .call_as(Some(&key), Method::GET, "/v1/plans", None)
            .await
            .status,
        StatusCode::OK
    );
}

async fn configuration_overrides_and_versions(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let config = server.get("/v1/tenants/acme/config").await;
    assert_eq!(config.status, StatusCode::OK, "{config:?}");
    assert_eq!(config.body["plan"], "starter");
    assert_eq!(config.body["version"], 0);
    assert_eq!(
        config.body["rate_limits"]["messages_per_minute"],
        json!({"value": {"limit": 60, "period_seconds": 60}, "source": "plan"})
    );
    assert_eq!(
        config.body["retention_policy"]["message_retention_days"],
        json!({"value": 90, "source": "default"})
    );
    assert_eq!(config.body["quotas"]["messages_outbound"]["limit"], 1000);
    assert_eq!(config.body["quotas"]["messages_outbound"]["source"], "plan");

    let patched = server
        .patch(
            "/v1/tenants/acme/config",
            json!({
                "rate_limits": {"messages_per_minute": 120},
                "retention_policy": {"message_retention_days": 30},
                "features": {"analytics": true},
                "branding": {"logo_url": "https://acme.example/logo.png", "primary_color": "#1a2B3c", "company_name": "Acme"},
                "quotas": {"messages_outbound": {"limit": 5000, "mode": "soft", "grace_percent": 10}}
            }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");
    let c = &patched.body;
    assert_eq!(c["version"], 1);
    assert_eq!(
        c["rate_limits"]["messages_per_minute"]["value"]["limit"],
        120
    );
    assert_eq!(c["rate_limits"]["messages_per_minute"]["source"], "tenant");
    assert_eq!(c["rate_limits"]["api_calls_per_hour"]["source"], "plan");
    assert_eq!(
        c["retention_policy"]["message_retention_days"],
        json!({"value": 30, "source": "tenant"})
    );
    assert_eq!(
        c["features"]["analytics"],
        json!({"value": true, "source": "tenant"})
    );
    assert_eq!(
        c["branding"]["primary_color"],
        json!({"value": "#1a2B3c", "source": "tenant"})
    );
    assert_eq!(
        c["quotas"]["messages_outbound"],
        json!({"limit": 5000, "mode": "soft", "grace_percent": 10, "period": "month", "source": "tenant"})
    );
    // null removes an override: back to the plan's value.
    let reverted = server
        .patch(
            "/v1/tenants/acme/config",
            json!({"rate_limits": {"messages_per_minute": null}}),
        )
        .await;
    assert_eq!(
        reverted.body["rate_limits"]["messages_per_minute"]["source"],
        "plan"
    );
    assert_eq!(reverted.body["version"], 2);

    for (body, field) in [
        (
            json!({"branding": {"logo_url": "http://acme.example/logo.png"}}),
            "branding.logo_url",
        ),
        (
            json!({"branding": {"primary_color": "blue"}}),
            "branding.primary_color",
        ),
        (
            json!({"branding": {"primary_color": "#12345"}}),
            "branding.primary_color",
        ),
        (json!({"branding": {"motto": "x"}}), "branding.motto"),
        (
            json!({"retention_policy": {"message_retention_days": 0}}),
            "retention_policy.message_retention_days",
        ),
        (
            json!({"retention_policy": {"conversation_retention_days": "long"}}),
            "retention_policy.conversation_retention_days",
        ),
        (
            json!({"rate_limits": {"messages_per_minute": 1.5}}),
            "rate_limits.messages_per_minute",
        ),
        (
            json!({"quotas": {"messages_outbound": {"limit": 5, "mode": "maybe"}}}),
            "quotas.messages_outbound.mode",
        ),
        (
            json!({"quotas": {"messages_outbound": {"limit": 5, "grace_percent": 300}}}),
            "quotas.messages_outbound.grace_percent",
        ),
        (json!({"features": {"analytics": 1}}), "features.analytics"),
        (json!({"theme": "dark"}), "theme"),
    ] {
        server
            .patch("/v1/tenants/acme/config", body.clone())
            .await
            .assert_invalid(field);
    }
    let versions = server.get("/v1/tenants/acme/config/versions").await;
    let list = versions.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 2, "refused patches store nothing");
    assert_eq!(list[0]["version"], 2);
    assert_eq!(
        list[1]["overrides"]["rate_limits"]["messages_per_minute"],
        120
    );
    assert_eq!(list[0]["actor"], "operator:root");
    let page = server.get("/v1/tenants/acme/config/versions?limit=1").await;
    let next = page.body["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .get(&format!(
                "/v1/tenants/acme/config/versions?limit=1&cursor={next}"
            ))
            .await
            .body["data"][0]["version"],
        1
    );

    // Tenant admins may brand themselves, not raise their own limits.
    let admin = tenant_key(&server, "acme", &["tenant:admin"]).await;
    let own = server
        .call_as(
            Some(&admin),
            Method::PATCH,
            "/v1/tenants/acme/config",
            Some(json!({"branding": {"company_name": "Acme Inc"}})),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    server
        .call_as(
            Some(&admin),
            Method::PATCH,
            "/v1/tenants/acme/config",
            Some(json!({"quotas": {"messages_outbound": {"limit": null}}})),
        )
        .await
        .assert_problem(403, "operator_required");
    let reader = tenant_key(&server, "acme", &["tenant:read"]).await;
    assert_eq!(
        server
            .call_as(Some(&reader), Method::GET, "/v1/tenants/acme/config", None)
            .await
            .status,
        StatusCode::OK
    );
    server
        .call_as(
            Some(&reader),
            Method::PATCH,
            "/v1/tenants/acme/config",
            Some(json!({})),
        )
        .await
        .assert_problem(403, "insufficient_scope");
    server
        .get("/v1/tenants/nobody/config")
        .await
        .assert_problem(404, "tenant_not_found");
}

async fn ingest(server: &TestServer, body: Value) -> Value {
    let reply = server.post("/v1/usage/events", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body
}

async fn usage_ingestion_is_idempotent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let one = ingest(
        &server,
        json!({"id": "evt-1", "tenant_id": "acme", "meter": "messages_outbound", "quantity": 3}),
    )
    .await;
    assert_eq!(one["accepted"], 1);
    assert_eq!(
        one["results"][0],
        json!({"id": "evt-1", "status": "accepted"})
    );
    // A retry is a duplicate with the original outcome, never counted twice.
    let again = ingest(
        &server,
        json!({"id": "evt-1", "tenant_id": "acme", "meter": "messages_outbound", "quantity": 3}),
    )
    .await;
    assert_eq!(
        again["results"][0],
        json!({"id": "evt-1", "status": "duplicate", "original": "accepted"})
    );
    let batch: Vec<Value> = (0..1000)
        .map(|i| json!({"id": format!("b-{i}"), "tenant_id": "acme", "meter": "messages_outbound"}))
        .collect();
    let first = ingest(&server, json!({"events": batch})).await;
    assert_eq!(
        (
            first["accepted"].clone(),
            first["duplicates"].clone(),
            first["rejected"].clone()
        ),
        (json!(1000), json!(0), json!(0))
    );
    let retried = ingest(&server, json!({"events": batch})).await;
    assert_eq!(retried["duplicates"], 1000);
    // Mixed: duplicates within one batch, and a rejected item, each reported.
    let mixed = ingest(
        &server,
        json!({"events": [
            {"id": "m-1", "tenant_id": "acme", "meter": "messages_outbound"},
            {"id": "m-1", "tenant_id": "acme", "meter": "messages_outbound"},
            {"id": "m-2", "tenant_id": "acme", "meter": "no_such_meter"},
            {"id": "b-5", "tenant_id": "acme", "meter": "messages_outbound"}
        ]}),
    )
    .await;
    let statuses: Vec<&str> = mixed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "duplicate", "rejected", "duplicate"]);
    assert_eq!(mixed["results"][2]["field"], "meter");
    let usage = server
        .get("/v1/tenants/acme/usage?meter=messages_outbound&granularity=month")
        .await;
    assert_eq!(usage.body["total"], 3 + 1000 + 1, "{usage:?}");
}

async fn usage_series_and_stats(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let now = chrono::Utc::now();
    let two_hours_ago = (now - chrono::Duration::hours(2)).to_rfc3339();
    // Two days back, not one: "two hours ago" falls on yesterday between
    // 00:00 and 02:00 UTC, and the day that holds 11 must hold it alone.
    let yesterday = (now - chrono::Duration::days(2)).to_rfc3339();
    ingest(
        &server,
        json!({"events": [
            {"id": "1", "tenant_id": "acme", "meter": "messages_inbound", "quantity": 5, "timestamp": two_hours_ago},
            {"id": "2", "tenant_id": "acme", "meter": "messages_inbound", "quantity": 7},
            {"id": "3", "tenant_id": "acme", "meter": "messages_inbound", "quantity": 11, "timestamp": yesterday},
            {"id": "4", "tenant_id": "acme", "meter": "active_conversations", "subject": "conv-a"},
            {"id": "5", "tenant_id": "acme", "meter": "active_conversations", "subject": "conv-a"},
            {"id": "6", "tenant_id": "acme", "meter": "active_conversations", "subject": "conv-b"},
            {"id": "7", "tenant_id": "acme", "meter": "storage_bytes", "quantity": 1000, "timestamp": two_hours_ago},
            {"id": "8", "tenant_id": "acme", "meter": "storage_bytes", "quantity": 400},
            {"id": "9", "tenant_id": "acme", "meter": "storage_bytes", "quantity": 999999, "timestamp": yesterday}
        ]}),
    )
    .await;
    let from = (now - chrono::Duration::days(3))
        .to_rfc3339()
        .replace('+', "%2B");
    let hourly = server
        .get(&format!(
            "/v1/tenants/acme/usage?meter=messages_inbound&granularity=hour&from={from}"
        ))
        .await;
    assert_eq!(hourly.status, StatusCode::OK, "{hourly:?}");
    assert_eq!(hourly.body["total"], 23);
    assert_eq!(hourly.body["series"].as_array().unwrap().len(), 3);
    let daily = server
        .get(&format!(
            "/v1/tenants/acme/usage?meter=messages_inbound&granularity=day&from={from}"
        ))
        .await;
    let days: Vec<i64> = daily.body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_i64().unwrap())
        .collect();
    assert_eq!(days.iter().sum::<i64>(), 23);
    assert!(days.contains(&11));
    let gauge = server
        .get(&format!(
            "/v1/tenants/acme/usage?meter=storage_bytes&granularity=day&from={from}"
        ))
        .await;
    assert_eq!(
        gauge.body["total"], 400,
        "the latest value of a gauge counts: {gauge:?}"
    );
    let stats = server.get("/v1/tenants/acme/stats").await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.body["active_conversations"], 2);
    assert_eq!(stats.body["today"]["storage_bytes"], 400);
    assert!(stats.body["today"]["messages_inbound"].as_i64().unwrap() >= 7);
    assert_eq!(stats.body["quotas"]["messages_outbound"]["limit"], 1000);
    // Custom meters.
    let meter = server
        .post(
            "/v1/meters",
            json!({"name": "ai_tokens", "aggregation": "sum", "description": "LLM tokens"}),
        )
        .await;
    assert_eq!(meter.status, StatusCode::CREATED, "{meter:?}");
    server
        .post("/v1/meters", json!({"name": "ai_tokens"}))
        .await
        .assert_problem(409, "meter_exists");
    server
        .post("/v1/meters", json!({"name": "Bad Name"}))
        .await
        .assert_invalid("name");
    server
        .post(
            "/v1/meters",
            json!({"name": "x_y", "aggregation": "median"}),
        )
        .await
        .assert_invalid("aggregation");
    ingest(
        &server,
        json!({"id": "ai-1", "tenant_id": "acme", "meter": "ai_tokens", "quantity": 1500}),
    )
    .await;
    assert_eq!(
        server
            .get("/v1/tenants/acme/usage?meter=ai_tokens")
            .await
            .body["total"],
        1500
    );
    assert!(
        server.get("/v1/meters").await.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "ai_tokens" && m["builtin"] == false)
    );
    server
        .get("/v1/tenants/acme/usage?meter=nope")
        .await
        .assert_invalid("meter");
    server
        .get("/v1/tenants/acme/usage?meter=ai_tokens&granularity=week")
        .await
        .assert_invalid("granularity");
    server
        .get("/v1/tenants/acme/usage?meter=ai_tokens&from=yesterday")
        .await
        .assert_invalid("from");
    server
        .get("/v1/tenants/acme/usage")
        .await
        .assert_invalid("meter");
}

async fn usage_validation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let future = (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let ancient = (chrono::Utc::now() - chrono::Duration::days(400)).to_rfc3339();
    let reply = ingest(
        &server,
        json!({"events": [
            {"tenant_id": "acme", "meter": "api_calls"},
            {"id": "a", "tenant_id": "acme", "meter": "api_calls", "quantity": -1},
            {"id": "b", "tenant_id": "acme", "meter": "api_calls", "timestamp": future},
            {"id": "c", "tenant_id": "acme", "meter": "api_calls", "timestamp": ancient},
            {"id": "d", "tenant_id": "acme", "meter": "active_conversations"},
            {"id": "e", "tenant_id": "nobody", "meter": "api_calls"},
            {"id": "f", "meter": "api_calls"},
            {"id": "g", "tenant_id": "acme", "meter": "api_calls", "colour": 1},
            {"id": "h", "tenant_id": "acme", "meter": "api_calls", "timestamp": "yesterday"},
            "not an object",
            {"id": "ok", "tenant_id": "acme", "meter": "api_calls"}
        ]}),
    )
    .await;
    let fields: Vec<Value> = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [
            json!("id"),
            json!("quantity"),
            json!("timestamp"),
            json!("timestamp"),
            json!("subject"),
            json!("tenant_id"),
            json!("tenant_id"),
            json!("colour"),
            json!("timestamp"),
            json!("event"),
            Value::Null
        ]
    );
    assert_eq!(reply["accepted"], 1);
    // An operator must name the tenant: that item is refused, not the batch.
    assert_eq!(reply["results"][6]["status"], "rejected");
    assert!(
        reply["results"][6]["reason"]
            .as_str()
            .unwrap()
            .contains("required")
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"id": format!("x{i}"), "tenant_id": "acme", "meter": "api_calls"}))
        .collect();
    server
        .post("/v1/usage/events", json!({"events": too_many}))
        .await
        .assert_invalid("events");
    server
        .post("/v1/usage/events", json!({"events": []}))
        .await
        .assert_invalid("events");
    server
        .post("/v1/usage/events", json!({"events": "x"}))
        .await
        .assert_invalid("events");
    server
        .post("/v1/usage/events", json!([1]))
        .await
        .assert_invalid("body");
    assert_eq!(
        server
            .get("/v1/tenants/acme/usage?meter=api_calls&granularity=month")
            .await
            .body["total"],
        1
    );
}

async fn accepted_usage_survives_kill_9(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let events: Vec<Value> = (0..200).map(|i| json!({"id": format!("k-{i}"), "tenant_id": "acme", "meter": "messages_outbound", "quantity": 2})).collect();
    let reply = ingest(&server, json!({"events": events})).await;
    assert_eq!(reply["accepted"], 200);
    let single = ingest(
        &server,
        json!({"id": "last", "tenant_id": "acme", "meter": "messages_outbound", "quantity": 1}),
    )
    .await;
    assert_eq!(single["accepted"], 1);
    server.kill9().await;
    let server = TestServer::start(&db).await;
    let usage = server
        .get("/v1/tenants/acme/usage?meter=messages_outbound&granularity=month")
        .await;
    assert_eq!(
        usage.body["total"], 401,
        "every acknowledged event survived: {usage:?}"
    );
    assert_eq!(
        ingest(
            &server,
            json!({"id": "last", "tenant_id": "acme", "meter": "messages_outbound"})
        )
        .await["duplicates"],
        1
    );
}

/// Concurrent single-event requests of two tenants, with ids repeated across
/// requests: every event counted once for its own tenant, and the requests
/// carried by fewer (never more) transactions than there were requests.
async fn concurrent_requests_share_commits_and_count_exactly(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    // acme: ids a-0..a-119, a-0..a-59 sent twice; globex: g-0..g-79 once.
    let mut bodies: Vec<Value> = Vec::new();
    for i in 0..120 {
        bodies.push(json!({"id": format!("a-{i}"), "tenant_id": "acme", "meter": "messages_outbound", "quantity": 2}));
        if i < 60 {
            bodies.push(json!({"id": format!("a-{i}"), "tenant_id": "acme", "meter": "messages_outbound", "quantity": 2}));
        }
        if i < 80 {
            bodies.push(json!({"id": format!("g-{i}"), "tenant_id": "globex", "meter": "messages_outbound", "quantity": 1}));
        }
    }
    let requests = bodies.len();
    let replies = futures_util::future::join_all(bodies.into_iter().map(|body| {
        let (client, base) = (server.client.clone(), server.base.clone());
        async move {
            let reply = client
                .post(format!("{base}/v1/usage/events"))
                .bearer_auth(common::ROOT_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), StatusCode::OK);
            reply.json::<Value>().await.unwrap()
        }
    }))
    .await;
    let sum = |field: &str| {
        replies
            .iter()
            .map(|r| r[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("accepted"), 200);
    assert_eq!(sum("duplicates"), 60);
    assert_eq!(sum("rejected"), 0);
    for (tenant, total) in [("acme", 240), ("globex", 80)] {
        let usage = server
            .get(&format!(
                "/v1/tenants/{tenant}/usage?meter=messages_outbound&granularity=month"
            ))
            .await;
        assert_eq!(usage.body["total"], total, "{tenant}: {usage:?}");
    }
    let metrics = server.get("/metrics").await;
    let text = metrics.text.clone();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing"))
            .parse()
            .unwrap()
    };
    let commits = value("tenantry_usage_commits_total");
    assert_eq!(
        value("tenantry_usage_commit_requests_total"),
        requests as u64
    );
    assert!((1..=requests as u64).contains(&commits), "{commits}");
    eprintln!("{requests} requests in {commits} usage transactions");
}

/// Sixteen clients send single events as fast as they can while the server
/// is killed: every event the server acknowledged is there after a restart
/// (its id answers `duplicate`), so sharing transactions never acknowledges
/// before the commit.
async fn kill_9_under_concurrent_load_loses_no_acknowledged_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for c in 0..16 {
        let (client, base, acked) = (server.client.clone(), server.base.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                let id = format!("load-{c}-{n}");
                let sent = client
                    .post(format!("{base}/v1/usage/events"))
                    .bearer_auth(common::ROOT_KEY)
                    .json(&json!({"id": id, "tenant_id": "acme", "meter": "messages_outbound"}))
                    .send()
                    .await;
                let Ok(reply) = sent else { return };
                let Ok(body) = reply.json::<Value>().await else {
                    return;
                };
                if body["accepted"] == 1 {
                    acked.lock().unwrap().push(id);
                }
            }
        }));
    }
    // Kill once a good number of events were acknowledged (bounded wait).
    for _ in 0..600 {
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.kill9().await;
    for client in clients {
        client.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} acknowledged", acked.len());
    let server = TestServer::start(&db).await;
    for chunk in acked.chunks(1000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|id| json!({"id": id, "tenant_id": "acme", "meter": "messages_outbound"}))
            .collect();
        let again = ingest(&server, json!({"events": events})).await;
        assert_eq!(
            again["duplicates"],
            chunk.len(),
            "an acknowledged event was lost: {again}"
        );
    }
    let usage = server
        .get("/v1/tenants/acme/usage?meter=messages_outbound&granularity=month")
        .await;
    assert!(
        usage.body["total"].as_u64().unwrap() >= acked.len() as u64,
        "{usage:?}"
    );
}

/// Four clients send batches of 100 new events while the server is killed:
/// afterwards every acknowledged batch is there in full, and every batch in
/// flight at the kill is there in full or not at all (sending each batch
/// again finds all of its ids or none). The counters agree with the events:
/// once every batch was sent again, each event is counted exactly once.
async fn kill_9_under_batch_load_keeps_batches_whole(backend: Backend) {
    const BATCH: usize = 100;
    let db = TestDb::new(backend).await;
    let mut server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let batch_of = |c: usize, n: usize| -> Vec<Value> {
        (0..BATCH)
            .map(|i| json!({"id": format!("b-{c}-{n}-{i}"), "tenant_id": "acme", "meter": "messages_outbound", "quantity": 2}))
            .collect()
    };
    // (client, batch number) of every batch sent, and of those acknowledged.
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(usize, usize)>::new()));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(usize, usize)>::new()));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (client, base) = (server.client.clone(), server.base.clone());
        let (sent, acked) = (sent.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                sent.lock().unwrap().push((c, n));
                let reply = client
                    .post(format!("{base}/v1/usage/events"))
                    .bearer_auth(common::ROOT_KEY)
                    .json(&json!({"events": batch_of(c, n)}))
                    .send()
                    .await;
                let Ok(reply) = reply else { return };
                let Ok(body) = reply.json::<Value>().await else {
                    return;
                };
                assert_eq!(body["accepted"], BATCH, "{body}");
                acked.lock().unwrap().push((c, n));
            }
        }));
    }
    for _ in 0..600 {
        if acked.lock().unwrap().len() >= 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    server.kill9().await;
    for client in clients {
        client.await.unwrap();
    }
    let (sent, acked) = (sent.lock().unwrap().clone(), acked.lock().unwrap().clone());
    assert!(
        acked.len() >= 20,
        "only {} batches acknowledged",
        acked.len()
    );
    let server = TestServer::start(&db).await;
    for (c, n) in &sent {
        let again = ingest(&server, json!({"events": batch_of(*c, *n)})).await;
        let duplicates = again["duplicates"].as_u64().unwrap() as usize;
        if acked.contains(&(*c, *n)) {
            assert_eq!(
                duplicates, BATCH,
                "an acknowledged batch lost events: {again}"
            );
        } else {
            assert!(
                duplicates == 0 || duplicates == BATCH,
                "a batch killed mid-way was kept in part: {duplicates} of {BATCH}"
            );
        }
    }
    let usage = server
        .get("/v1/tenants/acme/usage?meter=messages_outbound&granularity=month")
        .await;
    assert_eq!(
        usage.body["total"],
        json!(sent.len() * BATCH * 2),
        "{usage:?}"
    );
}

/// Ids repeated inside a batch, across batches and across concurrent
/// requests are each counted once, and the counters say so.
async fn batches_repeating_ids_count_each_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    let event = |id: String, quantity: i64| json!({"id": id, "tenant_id": "acme", "meter": "messages_outbound", "quantity": quantity});
    // 0..600, with every id of 0..100 twice in the batch.
    let mut first: Vec<Value> = (0..600).map(|i| event(format!("r-{i}"), 1)).collect();
    first.extend((0..100).map(|i| event(format!("r-{i}"), 1000)));
    let one = ingest(&server, json!({"events": first})).await;
    assert_eq!(
        (one["accepted"].clone(), one["duplicates"].clone()),
        (json!(600), json!(100))
    );
    assert_eq!(
        one["results"][600]["status"], "duplicate",
        "{}",
        one["results"][600]
    );
    // Eight concurrent batches overlapping the first and each other.
    let mut requests = Vec::new();
    for k in 0..8 {
        let body = json!({"events": (k * 100..k * 100 + 1000).map(|i| event(format!("r-{i}"), 1)).collect::<Vec<_>>()});
        let (client, base) = (server.client.clone(), server.base.clone());
        requests.push(tokio::spawn(async move {
            let reply = client
                .post(format!("{base}/v1/usage/events"))
                .bearer_auth(common::ROOT_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            reply.json::<Value>().await.unwrap()
        }));
    }
    let mut accepted = 0;
    for request in requests {
        let body = request.await.unwrap();
        assert_eq!(body["rejected"], 0, "{body}");
        accepted += body["accepted"].as_u64().unwrap();
    }
    // Ids 0..1700 in all: 600 from the first batch, the other 1,100 once.
    assert_eq!(accepted, 1100);
    let usage = server
        .get("/v1/tenants/acme/usage?meter=messages_outbound&granularity=month")
        .await;
    assert_eq!(usage.body["total"], 1700, "{usage:?}");
}

async fn quota(server: &TestServer, body: Value) -> Value {
    let reply = server.post("/v1/quotas/check", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.body
}

async fn quotas_hard_soft_and_alerts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server
        .patch(
            "/v1/tenants/acme/config",
            json!({"quotas": {"messages_outbound": {"limit": 10}}}),
        )
        .await;
    let peek = quota(
        &server,
        json!({"tenant_id": "acme", "meter": "messages_outbound", "quantity": 4}),
    )
    .await;
    assert_eq!(
        (
            peek["allowed"].clone(),
            peek["used"].clone(),
            peek["remaining"].clone(),
            peek["limit"].clone()
        ),
        (json!(true), json!(0), json!(10), json!(10))
    );
    assert!(
        peek["resets_at"].as_str().unwrap().contains("-01T00:00:00"),
        "{peek}"
    );
    let take = quota(
        &server,
        json!({"tenant_id": "acme", "meter": "messages_outbound", "quantity": 8, "consume": true}),
    )
    .await;
    assert_eq!(
        (
            take["allowed"].clone(),
            take["used"].clone(),
            take["remaining"].clone()
        ),
        (json!(true), json!(8), json!(2))
    );
    let over = quota(
        &server,
        json!({"tenant_id": "acme", "meter": "messages_outbound", "quantity": 3, "consume": true}),
    )
    .await;
    assert_eq!(
        (over["allowed"].clone(), over["used"].clone()),
        (json!(false), json!(8)),
        "a hard limit denies"
    );
    quota(
        &server,
        json!({"tenant_id": "acme", "meter": "messages_outbound", "quantity": 2, "consume": true}),
    )
    .await;
    // Usage events count too, and alerts were emitted once at 80% and 100%.
    ingest(
        &server,
        json!({"id": "u1", "tenant_id": "acme", "meter": "messages_outbound"}),
    )
    .await;
    let events = server.get("/v1/tenants/acme/events?limit=200").await;
    let alerts: Vec<&Value> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "quota.threshold_reached")
        .collect();
    let thresholds: Vec<i64> = alerts
        .iter()
        .map(|e| e["data"]["threshold_percent"].as_i64().unwrap())
        .collect();
    assert_eq!(thresholds, [80, 100], "{alerts:?}");
    assert_eq!(alerts[0]["data"]["meter"], "messages_outbound");

    // Soft: up to the grace percentage over the limit.
    server.patch("/v1/tenants/acme/config", json!({"quotas": {"template_messages": {"limit": 10, "mode": "soft", "grace_percent": 20}}})).await;
    let soft = quota(
        &server,
        json!({"tenant_id": "acme", "meter": "template_messages", "quantity": 12, "consume": true}),
    )
    .await;
    assert_eq!(
        (
            soft["allowed"].clone(),
            soft["remaining"].clone(),
            soft["mode"].clone()
        ),
        (json!(true), json!(0), json!("soft"))
    );
    assert_eq!(
        quota(
            &server,
            json!({"tenant_id": "acme", "meter": "template_messages", "consume": true})
        )
        .await["allowed"],
        false
    );
    // Unlimited.
    let free = quota(
        &server,
        json!({"tenant_id": "acme", "meter": "api_calls", "quantity": 1000000, "consume": true}),
    )
    .await;
    assert_eq!(
        (free["allowed"].clone(), free["limit"].clone()),
        (json!(true), Value::Null)
    );
    // Bad input.
    server
        .post("/v1/quotas/check", json!({"meter": "messages_outbound"}))
        .await
        .assert_invalid("tenant_id");
    server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": "acme", "meter": "nope"}),
        )
        .await
        .assert_invalid("meter");
    server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": "acme", "meter": "api_calls", "quantity": 0}),
        )
        .await
        .assert_invalid("quantity");
    server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": "acme", "meter": "storage_bytes"}),
        )
        .await
        .assert_invalid("meter");
    server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": "nobody", "meter": "api_calls"}),
        )
        .await
        .assert_problem(404, "tenant_not_found");
}

async fn concurrent_consumers_never_pass_a_hard_limit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server
        .patch(
            "/v1/tenants/acme/config",
            json!({"quotas": {"messages_outbound": {"limit": 25}}}),
        )
        .await;
    let mut tasks = Vec::new();
    for _ in 0..60 {
        let (client, url) = (server.client.clone(), server.url("/v1/quotas/check"));
        tasks.push(tokio::spawn(async move {
            let r: Value = client
                .post(url)
                .bearer_auth(common::ROOT_KEY)
                .json(&json!({"tenant_id": "acme", "meter": "messages_outbound", "quantity": 1, "consume": true}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["allowed"] == true
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 25, "exactly the limit was admitted");
    let used = quota(
        &server,
        json!({"tenant_id": "acme", "meter": "messages_outbound"}),
    )
    .await;
    assert_eq!(used["used"], 25);
}

async fn rate_limit_decisions(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.patch("/v1/tenants/acme/config", json!({"rate_limits": {"messages_per_minute": 5, "bursty": {"limit": 2, "period_seconds": 3600}}})).await;
    let decide = |body: Value| {
        let server = &server;
        async move {
            let r = server.post("/v1/ratelimit", body).await;
            assert_eq!(r.status, StatusCode::OK, "{r:?}");
            r.body
        }
    };
    let mut allowed = 0;
    let mut last = Value::Null;
    for _ in 0..8 {
        last = decide(json!({"tenant_id": "acme", "limit": "messages_per_minute"})).await;
        if last["allowed"] == true {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
    assert_eq!(last["remaining"], 0);
    assert_eq!(last["limit"], 5);
    assert!(
        last["retry_after_ms"].as_u64().unwrap() > 0
            && last["retry_after_ms"].as_u64().unwrap() <= 12_000,
        "{last}"
    );
    // Per key: its own bucket.
    let per_key =
        decide(json!({"tenant_id": "acme", "key_id": "key_abc", "limit": "messages_per_minute"}))
            .await;
    assert_eq!(per_key["allowed"], true);
    // Cost.
    assert_eq!(
        decide(json!({"tenant_id": "acme", "limit": "bursty", "cost": 2})).await["allowed"],
        true
    );
    assert_eq!(
        decide(json!({"tenant_id": "acme", "limit": "bursty", "cost": 1})).await["allowed"],
        false
    );
    server
        .post(
            "/v1/ratelimit",
            json!({"tenant_id": "acme", "limit": "unknown_per_minute"}),
        )
        .await
        .assert_invalid("limit");
    server
        .post(
            "/v1/ratelimit",
            json!({"tenant_id": "acme", "limit": "bursty", "cost": 3}),
        )
        .await
        .assert_invalid("cost");
    server
        .post(
            "/v1/ratelimit",
            json!({"tenant_id": "acme", "limit": "bursty", "key_id": "../../x"}),
        )
        .await
        .assert_invalid("key_id");
    server
        .post("/v1/ratelimit", json!({"limit": "bursty"}))
        .await
        .assert_invalid("tenant_id");
}

async fn api_calls_are_rate_limited(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server
        .patch(
            "/v1/tenants/acme/config",
            json!({"rate_limits": {"api_calls_per_hour": 3}}),
        )
        .await;
    let key = tenant_key(&server, "acme", &["tenant:read"]).await;
    for i in 0..3 {
        let r = server
            .call_as(Some(&key), Method::GET, "/v1/tenants/acme", None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers.get("ratelimit-limit").unwrap(), "3");
        assert_eq!(
            r.headers
                .get("ratelimit-remaining")
                .unwrap()
                .to_str()
                .unwrap(),
            (2 - i).to_string()
        );
        assert!(r.headers.get("ratelimit-reset").is_some());
    }
    let limited = server
        .call_as(Some(&key), Method::GET, "/v1/tenants/acme", None)
        .await;
    limited.assert_problem(429, "rate_limited");
    let retry: u64 = limited
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1200).contains(&retry), "{retry}");
    assert_eq!(limited.headers.get("ratelimit-remaining").unwrap(), "0");
    // Operators are not limited by a tenant's budget.
    assert_eq!(server.get("/v1/tenants/acme").await.status, StatusCode::OK);
}

async fn cross_tenant_usage_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server.create_tenant("globex").await;
    let key = tenant_key(&server, "acme", &["tenant:admin"]).await;
    for (method, path, body) in [
        (
            Method::GET,
            "/v1/tenants/globex/usage?meter=api_calls",
            None,
        ),
        (Method::GET, "/v1/tenants/globex/stats", None),
        (Method::GET, "/v1/tenants/globex/config", None),
        (
            Method::PATCH,
            "/v1/tenants/globex/config",
            Some(json!({"branding": {"company_name": "x"}})),
        ),
        (Method::GET, "/v1/tenants/globex/config/versions", None),
        (
            Method::POST,
            "/v1/quotas/check",
            Some(json!({"tenant_id": "globex", "meter": "api_calls"})),
        ),
        (
            Method::POST,
            "/v1/ratelimit",
            Some(json!({"tenant_id": "globex", "limit": "messages_per_minute"})),
        ),
    ] {
        server
            .call_as(Some(&key), method, path, body)
            .await
            .assert_problem(404, "tenant_not_found");
    }
    // A tenant key's events go to its own tenant; naming another is refused.
    let r = server
        .call_as(Some(&key), Method::POST, "/v1/usage/events", Some(json!({"events": [{"id": "x", "meter": "api_calls"}, {"id": "y", "tenant_id": "globex", "meter": "api_calls"}]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["results"][0]["status"], "accepted");
    assert_eq!(r.body["results"][1]["status"], "rejected");
    assert_eq!(
        server
            .get("/v1/tenants/globex/usage?meter=api_calls&granularity=month")
            .await
            .body["total"],
        0
    );
    assert_eq!(
        server
            .get("/v1/tenants/acme/usage?meter=api_calls&granularity=month")
            .await
            .body["total"],
        1
    );
    let reader = tenant_key(&server, "acme", &["tenant:read"]).await;
    server
        .call_as(
            Some(&reader),
            Method::POST,
            "/v1/usage/events",
            Some(json!({"id": "z", "meter": "api_calls"})),
        )
        .await
        .assert_problem(403, "insufficient_scope");
}

async fn api_calls_quota_blocks_the_api(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.create_tenant("acme").await;
    server
        .patch(
            "/v1/tenants/acme/config",
            json!({"quotas": {"api_calls": {"limit": 2}}}),
        )
        .await;
    let key = tenant_key(&server, "acme", &["tenant:read", "usage:read"]).await;
    for _ in 0..2 {
        assert_eq!(
            server
                .call_as(Some(&key), Method::GET, "/v1/tenants/acme", None)
                .await
                .status,
            StatusCode::OK
        );
    }
    let blocked = server
        .call_as(Some(&key), Method::GET, "/v1/tenants/acme", None)
        .await;
    blocked.assert_problem(429, "quota_exceeded");
    let retry: i64 = blocked
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=31 * 86_400).contains(&retry),
        "until the month resets: {retry}"
    );
    // The calls were metered as usage.
    let used = server
        .post(
            "/v1/quotas/check",
            json!({"tenant_id": "acme", "meter": "api_calls"}),
        )
        .await;
    assert_eq!(used.body["used"], 2);
    // Lifting the quota lets the tenant back in at once.
    server
        .patch(
            "/v1/tenants/acme/config",
            json!({"quotas": {"api_calls": null}}),
        )
        .await;
    assert_eq!(
        server
            .call_as(Some(&key), Method::GET, "/v1/tenants/acme", None)
            .await
            .status,
        StatusCode::OK
    );
}
