//! The typed client (`tenantry-client`) against the real server, on both
//! backends: every resource group, pagination streams over several pages,
//! idempotent creates, problem codes across tenants, redacted secrets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::client_kit;
use crate::common;

use client_kit::{root, tenant_in, tenant_key};
use common::{Backend, ROOT_KEY, TestDb, TestServer};
use futures_util::TryStreamExt;
use serde_json::json;
use tenantry_client::api::audit::{AuditQuery, CheckpointQuery, ExportQuery};
use tenantry_client::api::credentials::CredentialIn;
use tenantry_client::api::keys::{KeyIn, KeyPatchIn, RotateIn, VerifyIn};
use tenantry_client::api::operator_keys::OperatorKeyIn;
use tenantry_client::api::provisioning::ListParams as WorkflowParams;
use tenantry_client::api::resolve::ResolveIn;
use tenantry_client::api::tenants::{ListTenantsParams, TenantPatchIn};
use tenantry_client::api::webhooks::MessageParams;
use tenantry_client::api::widgets::WidgetIn;
use tenantry_client::api::{TenantStatus, VerifyCode};
use tenantry_client::{Client, ListParams};

on_both_backends!(
    tenants_lifecycle_and_pagination,
    idempotent_create_returns_the_same_tenant,
    keys_and_cross_tenant_errors,
    every_resource_group_answers,
    secrets_are_redacted_in_debug,
);

async fn tenants_lifecycle_and_pagination(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let client = root(&server);

    for i in 0..7 {
        let t = client
            .tenants()
            .create(&tenant_in(&format!("page-{i}")))
            .await
            .unwrap();
        assert_eq!(t.status, TenantStatus::Active);
    }
    // Pages of 2: four requests, every tenant once, in id order.
    let all: Vec<_> = client
        .tenants()
        .list(ListTenantsParams {
            limit: Some(2),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "page-0", "page-1", "page-2", "page-3", "page-4", "page-5", "page-6"
        ]
    );
    // Filters travel with every page.
    client.tenants().suspend("page-3").await.unwrap();
    let suspended: Vec<_> = client
        .tenants()
        .list(ListTenantsParams {
            status: Some("suspended".into()),
            limit: Some(1),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(suspended.len(), 1);
    assert_eq!(suspended[0].id, "page-3");

    let updated = client
        .tenants()
        .update(
            "page-1",
            &TenantPatchIn {
                name: Some("Renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Renamed");
    assert_eq!(
        client.tenants().get("page-1").await.unwrap().name,
        "Renamed"
    );
    let back = client.tenants().reactivate("page-3").await.unwrap();
    assert_eq!(back.status, TenantStatus::Active);
    let deleted = client.tenants().delete("page-2").await.unwrap();
    assert_eq!(deleted.status, TenantStatus::Deleted);
    client.tenants().purge("page-4").await.unwrap();
    let gone = client.tenants().get("page-4").await.unwrap_err();
    assert_eq!(gone.code(), Some("tenant_not_found"));
    assert_eq!(gone.status(), Some(404));

    // The event feed of page-3 over pages of 1: created, suspended, reactivated.
    let events: Vec<_> = client
        .tenants()
        .events("page-3", ListParams::limit(1))
        .try_collect()
        .await
        .unwrap();
    assert!(events.len() >= 3, "{events:?}");

    // Invalid input is a typed error naming the field.
    let err = client.tenants().create(&tenant_in("X")).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!((api.status, api.code.as_str()), (422, "validation_failed"));
    assert_eq!(api.field.as_deref(), Some("id"));
    // A cursor no list gave out is refused, and the stream says so.
    let bad: Result<Vec<_>, _> = client
        .tenants()
        .list(ListTenantsParams {
            cursor: Some("nonsense".into()),
            ..Default::default()
        })
        .try_collect()
        .await;
    assert_eq!(
        bad.unwrap_err().api().unwrap().field.as_deref(),
        Some("cursor")
    );
}

async fn idempotent_create_returns_the_same_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let client = root(&server);

    let first = client
        .tenants()
        .idempotency_key("create-acme-1")
        .create(&tenant_in("acme"))
        .await
        .unwrap();
    // The same key again (a retry after a lost answer): the first response,
    // not a 409 for an id already taken.
    let again = client
        .tenants()
        .idempotency_key("create-acme-1")
        .create(&tenant_in("acme"))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(first.created_at, again.created_at);
    // Without the key, it is a second create: a conflict.
    let conflict = client
        .tenants()
        .create(&tenant_in("acme"))
        .await
        .unwrap_err();
    assert_eq!(conflict.status(), Some(409));
    // The same key with another body is refused, not replayed.
    let reused = client
        .tenants()
        .idempotency_key("create-acme-1")
        .create(&tenant_in("other"))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Some("idempotency_key_reused"));

    // Keys too: one key made however often the call is repeated.
    let made = client
        .keys("acme")
        .idempotency_key("k-1")
        .create(&KeyIn {
            name: "svc".into(),
            scopes: vec!["tenant:read".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let again = client
        .keys("acme")
        .idempotency_key("k-1")
        .create(&KeyIn {
            name: "svc".into(),
            scopes: vec!["tenant:read".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(made.details.id, again.details.id);
    let keys: Vec<_> = client
        .keys("acme")
        .list(ListParams::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
}

async fn keys_and_cross_tenant_errors(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let client = root(&server);
    client.tenants().create(&tenant_in("alpha")).await.unwrap();
    client.tenants().create(&tenant_in("beta")).await.unwrap();

    let admin = tenant_key(
        &client,
        "alpha",
        &["tenant:read", "keys:read", "keys:write"],
    )
    .await;
    let alpha = client.with_key(&admin).unwrap();
    for i in 0..5 {
        alpha
            .keys("alpha")
            .create(&KeyIn {
                name: format!("k{i}"),
                scopes: vec!["tenant:read".into()],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let listed: Vec<_> = alpha
        .keys("alpha")
        .list(ListParams::limit(2))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 6);
    let by_name = |n: &str| listed.iter().find(|k| k.name == n).unwrap().clone();
    let one = &by_name("k1");
    let two = by_name("k2");
    assert_eq!(
        alpha.keys("alpha").get(&one.id).await.unwrap().name,
        one.name
    );
    let patched = alpha
        .keys("alpha")
        .update(
            &one.id,
            &KeyPatchIn {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!patched.enabled);
    let rotated = alpha
        .keys("alpha")
        .rotate(&two.id, &RotateIn::default())
        .await
        .unwrap();
    assert_eq!(
        rotated.details.rotated_from.as_deref(),
        Some(two.id.as_str())
    );
    let verified = client
        .verify_key(&VerifyIn {
            key: rotated.key.clone(),
            scopes: None,
        })
        .await
        .unwrap();
    assert!(verified.valid);
    assert_eq!(verified.code, VerifyCode::Valid);
    let revoked = alpha
        .keys("alpha")
        .revoke(&rotated.details.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let after = client
        .verify_key(&VerifyIn {
            key: rotated.key.clone(),
            scopes: None,
        })
        .await
        .unwrap();
    assert_eq!(after.code, VerifyCode::Revoked);

    // Tenant alpha's key reaching for beta: 404 with its code, never 403,
    // on reads, lists (the stream's first item) and writes alike.
    let err = alpha.tenants().get("beta").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("tenant_not_found"))
    );
    let listed: Result<Vec<_>, _> = alpha
        .keys("beta")
        .list(ListParams::default())
        .try_collect()
        .await;
    assert_eq!(listed.unwrap_err().code(), Some("tenant_not_found"));
    let made = alpha
        .keys("beta")
        .create(&KeyIn {
            name: "x".into(),
            scopes: vec!["tenant:read".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(made.code(), Some("tenant_not_found"));
    // And a key of alpha by id under beta's path is not found either.
    let err = client.keys("beta").get(&one.id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    // An anonymous client is 401 with its code.
    let anon = Client::builder(&server.base).build().unwrap();
    let err = anon.tenants().get("alpha").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.code().unwrap_or_default().is_empty());
}

async fn every_resource_group_answers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let client = root(&server);
    client.tenants().create(&tenant_in("acme")).await.unwrap();

    assert_eq!(client.healthz().await.unwrap().status, "ok");
    client.readyz().await.unwrap();
    // Operator keys.
    let op = client
        .operator_keys()
        .create(&OperatorKeyIn {
            name: "ops".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        client
            .operator_keys()
            .list()
            .await
            .unwrap()
            .data
            .iter()
            .any(|k| k.id == op.details.id)
    );
    client.operator_keys().revoke(&op.details.id).await.unwrap();
    // Credentials: sealed, masked on read, revealed explicitly.
    let cred = client
        .credentials("acme")
        .create(&CredentialIn {
            kind: "generic".into(),
            name: "Other".into(),
            data: json!({"endpoint": "https://x.example", "API-Key": "generic-api-key-0000"}),
        })
        .await
        .unwrap();
    assert_eq!(
        client.credentials("acme").list().await.unwrap().data.len(),
        1
    );
    let shown = client.credentials("acme").get(&cred.id).await.unwrap();
    assert!(!shown.data.to_string().contains("generic-api-key-0000"));
    let revealed = client.credentials("acme").reveal(&cred.id).await.unwrap();
    assert_eq!(revealed.data["API-Key"], "generic-api-key-0000");
    let log: Vec<_> = client
        .credentials("acme")
        .access_log(&cred.id, ListParams::default())
        .try_collect()
        .await
        .unwrap();
    assert!(!log.is_empty());
    // Settings.
    client
        .settings("acme")
        .put(
            "smtp",
            &json!({"host": "smtp.example", "password": "hunter2"}),
        )
        .await
        .unwrap();
    let settings = client.settings("acme").get("smtp").await.unwrap();
    assert!(
        !settings.data.to_string().contains("hunter2"),
        "{settings:?}"
    );
    // Keyring, plans, config, meters, usage, quotas.
    client.keyring().status().await.unwrap();
    assert!(!client.plans().list().await.unwrap().data.is_empty());
    client.config("acme").get().await.unwrap();
    let versions: Vec<_> = client
        .config("acme")
        .versions(ListParams::default())
        .try_collect()
        .await
        .unwrap();
    let _ = versions;
    assert!(!client.usage().meters().await.unwrap().data.is_empty());
    client.usage().stats("acme").await.unwrap();
    // Audit: the tenant's chain has the entries above and verifies.
    let entries: Vec<_> = client
        .audit("acme")
        .list(AuditQuery {
            limit: Some(2),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert!(entries.len() > 2, "{}", entries.len());
    assert!(client.audit("acme").verify().await.unwrap().ok);
    let _: Vec<_> = client
        .audit("acme")
        .checkpoints(CheckpointQuery::default())
        .try_collect()
        .await
        .unwrap();
    let export = client
        .audit("acme")
        .export(&ExportQuery::default())
        .await
        .unwrap();
    for entry in &entries {
        assert!(export.contains(&entry.id), "{} not exported", entry.id);
    }
    client.operator_audit().verify().await.unwrap();
    // Webhooks, provisioning, identity, widgets, inbound, resolution, tokens.
    assert!(!client.event_types().await.unwrap().data.is_empty());
    let endpoints: Vec<_> = client
        .webhooks("acme")
        .list(ListParams::default())
        .try_collect()
        .await
        .unwrap();
    assert!(endpoints.is_empty());
    let err = client
        .webhooks("acme")
        .messages("wh_missing", MessageParams::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let _: Vec<_> = client
        .provisioning()
        .list(WorkflowParams::default())
        .try_collect()
        .await
        .unwrap();
    client.identity_providers().list().await.unwrap();
    let _: Vec<_> = client
        .members("acme")
        .list(ListParams::default())
        .try_collect()
        .await
        .unwrap();
    let widget = client
        .widgets("acme")
        .create(&WidgetIn {
            name: "chat".into(),
            allowed_origins: vec!["https://shop.example".into()],
        })
        .await
        .unwrap();
    assert_eq!(
        client.widgets("acme").list().await.unwrap().data[0].id,
        widget.id
    );
    let _: Vec<_> = client
        .inbound("acme")
        .conversations(ListParams::default())
        .try_collect()
        .await
        .unwrap();
    let key = tenant_key(&client, "acme", &["tenant:read"]).await;
    let resolved = client
        .resolve(&ResolveIn {
            api_key: Some(key.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resolved.tenant.id, "acme");
    let as_tenant = client.with_key(&key).unwrap();
    assert_eq!(
        as_tenant.resolve_request(&[]).await.unwrap().tenant.id,
        "acme"
    );
    client.token_jwks().await.unwrap();
}

async fn secrets_are_redacted_in_debug(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    let client = root(&server);
    client.tenants().create(&tenant_in("acme")).await.unwrap();

    let made = client
        .keys("acme")
        .create(&KeyIn {
            name: "svc".into(),
            scopes: vec!["tenant:read".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!format!("{made:?}").contains(&made.key));
    assert!(format!("{made:?}").contains(&made.details.id));
    let cred = client
        .credentials("acme")
        .create(&CredentialIn {
            kind: "generic".into(),
            name: "Other".into(),
            data: json!({"API-Key": "generic-api-key-0000"}),
        })
        .await
        .unwrap();
    let revealed = client.credentials("acme").reveal(&cred.id).await.unwrap();
    assert!(!format!("{revealed:?}").contains("generic-api-key-0000"));
    let input = VerifyIn {
        key: made.key.clone(),
        scopes: None,
    };
    assert!(!format!("{input:?}").contains(&made.key));
    // The client itself never shows its key.
    let tenant_client = client.with_key(&made.key).unwrap();
    assert!(!format!("{tenant_client:?}").contains(&made.key));
    assert!(!format!("{client:?}").contains(ROOT_KEY));
}
