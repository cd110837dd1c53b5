//! Limits, configuration, tokens, keys and the audit trail through
//! `tenantry-client`, on both backends: plans, tenant configuration and its
//! versions, settings, meters, usage (single and batch) and series, quotas,
//! rate-limit decisions, access tokens and their signing keys, widget
//! tokens, operator keys, the keyring, audit queries, exports, checkpoints
//! and verification, metrics, resolution; and tenant keys kept to their
//! tenant (404) and their scopes (403).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::client_kit;
use crate::common;

use client_kit::{root, tenant_client, tenant_in};
use common::{Backend, ROOT_KEY, TestDb, TestServer};
use futures_util::TryStreamExt;
use serde_json::json;
use std::time::Duration;
use tenantry_client::api::audit::{AuditQuery, CheckpointQuery, ExportQuery};
use tenantry_client::api::meters::MeterIn;
use tenantry_client::api::operator_keys::OperatorKeyIn;
use tenantry_client::api::quotas::QuotaCheckIn;
use tenantry_client::api::ratelimit::RateLimitIn;
use tenantry_client::api::resolve::{MatchedBy, ResolveIn};
use tenantry_client::api::tokens::TokenIn;
use tenantry_client::api::usage::{Outcome, UsageParams};
use tenantry_client::api::widgets::{
    VerifyIn as WidgetVerifyIn, WidgetIn, WidgetPatchIn, WidgetTokenIn,
};
use tenantry_client::{Client, ListParams};

on_both_backends!(
    plans_config_and_settings,
    usage_meters_quotas_and_rate_limits,
    tokens_widgets_and_resolution,
    operator_keys_keyring_and_audit,
    tenant_keys_stay_in_their_tenant,
);

async fn plans_config_and_settings(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    let names: Vec<_> = root
        .plans()
        .list()
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|p| p.name)
        .collect();
    for plan in ["starter", "professional", "enterprise"] {
        assert!(names.iter().any(|n| n == plan), "{names:?}");
    }
    let gold = root
        .plans()
        .put(
            "gold",
            &json!({"description": "Gold", "quotas": {"messages_outbound": 50000},
                    "rate_limits": {"api_calls_per_hour": 5000}, "features": {"analytics": true}}),
        )
        .await
        .unwrap();
    assert_eq!(
        (gold.name.as_str(), gold.description.as_str()),
        ("gold", "Gold")
    );
    let err = root
        .plans()
        .put("gold", &json!({"rate_limits": {"spikes": 5}}))
        .await
        .unwrap_err();
    assert_eq!(
        err.api().unwrap().field.as_deref(),
        Some("rate_limits.spikes")
    );

    root.tenants()
        .create(&tenantry_client::api::tenants::TenantIn {
            plan: Some("gold".into()),
            ..tenant_in("acme")
        })
        .await
        .unwrap();
    let config = root.config("acme");
    let effective = config.get().await.unwrap();
    assert_eq!(effective.tenant_id, "acme");
    assert_eq!(effective.config["features"]["analytics"]["source"], "plan");
    let patched = config
        .patch(&json!({"rate_limits": {"messages_per_minute": 120}, "branding": {"company_name": "Acme"}}))
        .await
        .unwrap();
    assert_eq!(
        patched.config["rate_limits"]["messages_per_minute"]["source"],
        "tenant"
    );
    assert_eq!(config.get().await.unwrap().config, patched.config);
    config
        .patch(&json!({"rate_limits": {"messages_per_minute": null}}))
        .await
        .unwrap();
    let versions: Vec<_> = config
        .versions(ListParams::limit(1))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0].version, 2);
    assert_eq!(
        versions[1].overrides["rate_limits"]["messages_per_minute"],
        120
    );
    let err = config
        .patch(&json!({"rate_limits": {"messages_per_minute": 1.5}}))
        .await
        .unwrap_err();
    assert_eq!(
        err.api().unwrap().field.as_deref(),
        Some("rate_limits.messages_per_minute")
    );

    // Settings: sensitive fields sealed, masked on read, revealed on demand.
    let settings = root.settings("acme");
    let put = settings
        .put(
            "smtp",
            &json!({"host": "smtp.example", "port": 587, "password": "hunter2-smtp"}),
        )
        .await
        .unwrap();
    assert_eq!(put.category, "smtp");
    let shown = settings.get("smtp").await.unwrap();
    assert_eq!(shown.data["host"], "smtp.example");
    assert!(!shown.data.to_string().contains("hunter2-smtp"));
    let revealed = settings.reveal("smtp").await.unwrap();
    assert_eq!(revealed.data["password"], "hunter2-smtp");
    assert!(!format!("{revealed:?}").contains("hunter2-smtp"));
}

async fn usage_meters_quotas_and_rate_limits(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();
    let usage = root.usage();

    let meter = usage
        .create_meter(&MeterIn {
            name: "ai_tokens".into(),
            aggregation: Some("sum".into()),
            description: Some("LLM tokens".into()),
        })
        .await
        .unwrap();
    assert!(!meter.builtin);
    assert_eq!(
        usage
            .create_meter(&MeterIn {
                name: "ai_tokens".into(),
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
        Some("meter_exists")
    );
    let meters = usage.meters().await.unwrap().data;
    assert!(meters.iter().any(|m| m.name == "ai_tokens" && !m.builtin));
    assert!(
        meters
            .iter()
            .any(|m| m.name == "messages_outbound" && m.builtin)
    );

    // One event, its retry a duplicate with the original outcome.
    let one = json!({"id": "evt-1", "tenant_id": "acme", "meter": "ai_tokens", "quantity": 1500});
    let first = usage.ingest(&one).await.unwrap();
    assert_eq!(first.accepted, 1);
    let again = usage.ingest(&one).await.unwrap();
    assert_eq!(again.results[0].status, Outcome::Duplicate);
    assert_eq!(again.results[0].original, Some(Outcome::Accepted));
    // A batch, with per-item results.
    let two_hours_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    let batch = usage
        .ingest(&json!({"events": [
            {"id": "b-1", "tenant_id": "acme", "meter": "ai_tokens", "quantity": 10, "timestamp": two_hours_ago.to_rfc3339()},
            {"id": "b-2", "tenant_id": "acme", "meter": "ai_tokens", "quantity": 5},
            {"id": "b-3", "tenant_id": "acme", "meter": "no_such_meter"},
            {"id": "evt-1", "tenant_id": "acme", "meter": "ai_tokens", "quantity": 1500},
        ]}))
        .await
        .unwrap();
    assert_eq!(
        (batch.accepted, batch.rejected, batch.duplicates),
        (2, 1, 1)
    );
    assert_eq!(batch.results[2].field.as_deref(), Some("meter"));
    // The series, with a `from` whose `+` must survive the query string.
    let series = usage
        .series(
            "acme",
            &UsageParams {
                meter: "ai_tokens".into(),
                from: Some((chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339()),
                to: None,
                granularity: Some("hour".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(series.total, 1515);
    assert_eq!(series.granularity, "hour");
    assert!(series.series.len() >= 2, "{series:?}");
    let monthly = usage
        .series(
            "acme",
            &UsageParams {
                meter: "ai_tokens".into(),
                granularity: Some("month".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(monthly.total, 1515);
    let err = usage
        .series(
            "acme",
            &UsageParams {
                meter: "nope".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.api().unwrap().field.as_deref(), Some("meter"));

    // Quotas: hard limit, atomic consume.
    root.config("acme")
        .patch(&json!({"quotas": {"messages_outbound": {"limit": 5}}}))
        .await
        .unwrap();
    let check = |quantity: i64, consume: bool| QuotaCheckIn {
        tenant_id: Some("acme".into()),
        meter: "messages_outbound".into(),
        quantity: Some(quantity),
        consume: Some(consume),
    };
    let took = usage.check_quota(&check(4, true)).await.unwrap();
    assert!(took.allowed);
    assert_eq!(
        (took.used, took.limit, took.remaining),
        (4, Some(5), Some(1))
    );
    let refused = usage.check_quota(&check(2, true)).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(usage.check_quota(&check(1, false)).await.unwrap().used, 4);
    let stats = usage.stats("acme").await.unwrap();
    assert_eq!(stats.tenant_id, "acme");
    assert_eq!(stats.month["ai_tokens"], 1515, "{stats:?}");

    // Rate limit decisions.
    root.config("acme")
        .patch(&json!({"rate_limits": {"bursty": {"limit": 2, "period_seconds": 3600}}}))
        .await
        .unwrap();
    let decide = |cost: u64| RateLimitIn {
        tenant_id: Some("acme".into()),
        key_id: None,
        limit: "bursty".into(),
        cost: Some(cost),
    };
    let allowed = usage.ratelimit(&decide(2)).await.unwrap();
    assert!(allowed.allowed);
    assert_eq!((allowed.limit, allowed.remaining), (2, 0));
    let denied = usage.ratelimit(&decide(1)).await.unwrap();
    assert!(!denied.allowed && denied.retry_after_ms > 0);
    let per_key = usage
        .ratelimit(&RateLimitIn {
            key_id: Some("key_abc".into()),
            ..decide(1)
        })
        .await
        .unwrap();
    assert!(per_key.allowed, "a key has its own bucket");
    let err = usage.ratelimit(&decide(3)).await.unwrap_err();
    assert_eq!(err.api().unwrap().field.as_deref(), Some("cost"));
}

async fn tokens_widgets_and_resolution(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    let acme = tenant_client(&root, "acme", &["tenant:admin"]).await;

    // An access token for the tenant key: it resolves to the tenant.
    let token = acme
        .create_token(&TokenIn {
            ttl_seconds: Some(300),
            scopes: Some(vec!["tenant:read".into()]),
        })
        .await
        .unwrap();
    assert_eq!(token.token_type.to_ascii_lowercase(), "bearer");
    assert!(token.expires_in > 0 && token.expires_in <= 300);
    let as_token = root.with_key(&token.token).unwrap();
    let resolved = as_token.resolve_request(&[]).await.unwrap();
    assert_eq!(
        (resolved.tenant.id.as_str(), resolved.matched_by),
        ("acme", MatchedBy::Token)
    );
    let by_body = root
        .resolve(&ResolveIn {
            token: Some(token.token.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_body.tenant.id, "acme");
    // Its signing key is published; a rotation adds the next one.
    let jwks = root.token_jwks().await.unwrap();
    let kids = |v: &serde_json::Value| -> Vec<String> {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(!kids(&jwks).is_empty());
    let rotated = root.rotate_token_signing_key().await.unwrap();
    assert!(kids(&root.token_jwks().await.unwrap()).contains(&rotated.kid));
    assert!(kids(&root.token_jwks().await.unwrap()).len() > kids(&jwks).len());
    // A token signed before the rotation still verifies.
    assert_eq!(as_token.tenants().get("acme").await.unwrap().id, "acme");
    // A tenant key cannot rotate the operator's keys.
    assert_eq!(
        acme.rotate_token_signing_key().await.unwrap_err().status(),
        Some(403)
    );

    // Widgets and their short-lived tokens.
    let widgets = acme.widgets("acme");
    let widget = widgets
        .create(&WidgetIn {
            name: "chat".into(),
            allowed_origins: vec!["https://shop.example".into()],
        })
        .await
        .unwrap();
    let renamed = widgets
        .update(
            &widget.id,
            &WidgetPatchIn {
                name: Some("support chat".into()),
                allowed_origins: Some(vec![
                    "https://shop.example".into(),
                    "https://help.example".into(),
                ]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "support chat");
    assert_eq!(
        widgets.list().await.unwrap().data[0].allowed_origins.len(),
        2
    );
    let issued = widgets
        .issue_token(
            &widget.id,
            &WidgetTokenIn {
                origin: "https://help.example".into(),
                ttl_seconds: Some(120),
            },
        )
        .await
        .unwrap();
    let browser = Client::builder(&server.base).build().unwrap();
    let context = browser
        .verify_widget_token(&WidgetVerifyIn {
            token: issued.token.clone(),
            origin: "https://help.example".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        (context.tenant_id.as_str(), context.widget_id.as_str()),
        ("acme", widget.id.as_str())
    );
    let err = browser
        .verify_widget_token(&WidgetVerifyIn {
            token: issued.token.clone(),
            origin: "https://evil.example".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err.status(), Some(401 | 403)), "{err}");
    let err = widgets
        .issue_token(
            &widget.id,
            &WidgetTokenIn {
                origin: "https://evil.example".into(),
                ttl_seconds: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("origin_not_allowed")),
        "{err}"
    );
}

async fn operator_keys_keyring_and_audit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_AUDIT_CHECKPOINT_INTERVAL", "300ms"),
        ],
    )
    .await;
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();

    // Operator keys act for every tenant; a revoked one for none.
    let op = root
        .operator_keys()
        .create(&OperatorKeyIn {
            name: "ops".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!format!("{op:?}").contains(&op.key));
    let as_op = root.with_key(&op.key).unwrap();
    assert_eq!(as_op.tenants().get("acme").await.unwrap().id, "acme");
    let listed = root.operator_keys().list().await.unwrap().data;
    assert!(
        listed
            .iter()
            .any(|k| k.id == op.details.id && k.revoked_at.is_none())
    );
    let revoked = root.operator_keys().revoke(&op.details.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        as_op.tenants().get("acme").await.unwrap_err().status(),
        Some(401)
    );

    // The keyring: a new KEK, then a new data key for acme.
    let before = root.keyring().status().await.unwrap();
    assert!(
        before
            .keks
            .iter()
            .any(|k| k.id == before.active_kek && k.active)
    );
    let after = root.keyring().rotate().await.unwrap();
    assert_ne!(after.active_kek, before.active_kek);
    assert_eq!(
        root.keyring().status().await.unwrap().active_kek,
        after.active_kek
    );
    let data_key = root.keyring().rotate_tenant_data_key("acme").await.unwrap();
    assert_eq!(data_key.tenant_id, "acme");
    let again = root.keyring().rotate_tenant_data_key("acme").await.unwrap();
    assert_ne!(again.data_key_id, data_key.data_key_id);
    assert_eq!(
        root.keyring()
            .rotate_tenant_data_key("nobody")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );

    // Audit: filtered queries, export, checkpoints, verification.
    let audit = root.audit("acme");
    let entries: Vec<_> = audit
        .list(AuditQuery {
            limit: Some(1),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert!(entries.len() >= 2, "{entries:?}");
    let action = entries.last().unwrap().action.clone();
    let filtered: Vec<_> = audit
        .list(AuditQuery {
            action: Some(action.clone()),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert!(!filtered.is_empty() && filtered.iter().all(|e| e.action == action));
    let ndjson = audit.export(&ExportQuery::default()).await.unwrap();
    // A header line, then the entries.
    assert!(
        ndjson
            .lines()
            .next()
            .unwrap()
            .contains(r#""kind":"header""#)
    );
    assert!(ndjson.lines().count() > entries.len());
    for entry in &entries {
        assert!(ndjson.contains(&entry.hash));
    }
    let csv = audit
        .export(&ExportQuery {
            format: Some("csv".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        csv.lines().count() > entries.len(),
        "a header, then a row each: {csv}"
    );
    let mut checkpoints = Vec::new();
    for _ in 0..100 {
        checkpoints = audit
            .checkpoints(CheckpointQuery::default())
            .try_collect()
            .await
            .unwrap();
        if !checkpoints.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!checkpoints.is_empty(), "no checkpoint published");
    let keys = root.operator_audit().signing_keys().await.unwrap();
    assert!(
        keys.iter()
            .any(|k| k.active && k.key_id == checkpoints[0].key_id)
    );
    let report = audit.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.size, entries.len() as u64);
    let rotated = root.operator_audit().rotate_signing_key().await.unwrap();
    let keys = root.operator_audit().signing_keys().await.unwrap();
    assert!(keys.iter().any(|k| k.active && k.key_id == rotated.key_id));
    assert!(keys.len() >= 2);
    // The operator chain holds the operator's own changes.
    let operator: Vec<_> = root
        .operator_audit()
        .list(AuditQuery::default())
        .try_collect()
        .await
        .unwrap();
    assert!(
        operator.iter().any(|e| e.action.contains("operator_key")),
        "{:?}",
        operator.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
    assert!(root.operator_audit().verify().await.unwrap().ok);
    let _: Vec<_> = root
        .operator_audit()
        .checkpoints(CheckpointQuery::default())
        .try_collect()
        .await
        .unwrap();
    assert!(
        !root
            .operator_audit()
            .export(&ExportQuery::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Metrics: the Prometheus text, for operators.
    let metrics = root.metrics().await.unwrap();
    assert!(metrics.contains("# TYPE"), "{metrics}");
}

async fn tenant_keys_stay_in_their_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();
    let beta = tenant_client(&root, "beta", &["tenant:admin"]).await;
    let reader = tenant_client(&root, "gamma", &["tenant:read"]).await;

    // Beta on acme's paths: 404 with its code, whatever the resource.
    let not_found = |e: tenantry_client::Error| {
        assert_eq!(
            (e.status(), e.code()),
            (Some(404), Some("tenant_not_found")),
            "{e}"
        )
    };
    not_found(beta.config("acme").get().await.unwrap_err());
    not_found(
        beta.config("acme")
            .patch(&json!({"branding": {"company_name": "x"}}))
            .await
            .unwrap_err(),
    );
    not_found(
        beta.config("acme")
            .versions(ListParams::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err(),
    );
    not_found(beta.settings("acme").get("smtp").await.unwrap_err());
    not_found(
        beta.settings("acme")
            .put("smtp", &json!({"host": "x"}))
            .await
            .unwrap_err(),
    );
    not_found(beta.usage().stats("acme").await.unwrap_err());
    not_found(
        beta.usage()
            .series(
                "acme",
                &UsageParams {
                    meter: "api_calls".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err(),
    );
    not_found(
        beta.usage()
            .check_quota(&QuotaCheckIn {
                tenant_id: Some("acme".into()),
                meter: "api_calls".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    not_found(
        beta.usage()
            .ratelimit(&RateLimitIn {
                tenant_id: Some("acme".into()),
                limit: "messages_per_minute".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    not_found(beta.audit("acme").verify().await.unwrap_err());
    not_found(
        beta.audit("acme")
            .list(AuditQuery::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err(),
    );
    not_found(
        beta.audit("acme")
            .export(&ExportQuery::default())
            .await
            .unwrap_err(),
    );
    not_found(beta.widgets("acme").list().await.unwrap_err());
    not_found(
        beta.tenants()
            .events("acme", ListParams::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err(),
    );
    // A tenant's usage event naming another tenant is rejected, not counted.
    let out = beta
        .usage()
        .ingest(&json!({"id": "x-1", "tenant_id": "acme", "meter": "api_calls"}))
        .await
        .unwrap();
    assert_eq!(out.rejected, 1);
    // Operator-only resources: 403 for any tenant key.
    for err in [
        beta.plans().put("x", &json!({})).await.unwrap_err(),
        beta.keyring().status().await.unwrap_err(),
        beta.operator_keys().list().await.unwrap_err(),
        beta.operator_audit().verify().await.unwrap_err(),
    ] {
        assert_eq!(err.status(), Some(403), "{err}");
    }
    // A reader cannot write its own tenant's configuration.
    let err = reader
        .config("gamma")
        .patch(&json!({"branding": {"company_name": "x"}}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("insufficient_scope"))
    );
    // Anonymous: 401.
    let anonymous = Client::builder(&server.base).build().unwrap();
    assert_eq!(
        anonymous.plans().list().await.unwrap_err().status(),
        Some(401)
    );
}
