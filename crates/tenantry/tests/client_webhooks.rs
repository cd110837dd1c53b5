//! Outbound webhooks through `tenantry-client`, on both backends: a
//! tenant's and the operator's endpoints (create, list, get, patch, delete),
//! real signed deliveries to a local receiver, the delivery log and its
//! attempts, secret rotation, single and range replays, and other tenants'
//! endpoints answering 404.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::client_kit;
use crate::common;
use crate::webhook_receiver;

use client_kit::{root, tenant_client, tenant_in};
use common::{Backend, ROOT_KEY, TestDb, TestServer};
use futures_util::TryStreamExt;
use std::time::Duration;
use tenantry_client::api::tenants::TenantPatchIn;
use tenantry_client::api::webhooks::{
    EndpointInput, EndpointPatch, MessageOut, MessageParams, ReplayIn, RotateSecretIn,
};
use tenantry_client::{Client, ListParams};
use webhook_receiver::{Receiver, signed_with};

on_both_backends!(
    tenant_endpoints_deliver_and_replay,
    operator_endpoints_receive_every_tenant,
    other_tenants_endpoints_are_not_found,
);

async fn server(db: &TestDb) -> TestServer {
    TestServer::start_with(
        db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_OUTBOUND_ALLOWLIST", "127.0.0.1/32"),
            ("TENANTRY_WEBHOOK_POLL_INTERVAL", "50ms"),
        ],
    )
    .await
}

fn endpoint_for(r: &Receiver, kind: &str) -> EndpointInput {
    EndpointInput {
        url: r.url.clone(),
        event_types: vec![kind.to_owned()],
        ..Default::default()
    }
}

async fn rename(client: &Client, tenant: &str, name: &str) {
    client
        .tenants()
        .update(
            tenant,
            &TenantPatchIn {
                name: Some(name.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

/// The endpoint's delivery log once `n` messages are in it, none pending.
async fn delivered(client: &Client, tenant: &str, endpoint: &str, n: usize) -> Vec<MessageOut> {
    let mut last = Vec::new();
    for _ in 0..200 {
        last = client
            .webhooks(tenant)
            .messages(endpoint, MessageParams::default())
            .try_collect()
            .await
            .unwrap();
        if last.len() >= n && last.iter().all(|m| m.status == "delivered") {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not {n} delivered messages: {last:?}");
}

async fn tenant_endpoints_deliver_and_replay(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let root = root(&server);
    let types = root.event_types().await.unwrap();
    assert!(types.data.iter().any(|t| t.name == "tenant.updated"));
    // A tenant admin manages its own endpoints.
    let admin = tenant_client(&root, "acme", &["tenant:admin"]).await;
    let hooks = admin.webhooks("acme");
    let r = Receiver::start(vec![]).await;

    let made = hooks
        .create(&EndpointInput {
            asymmetric_signing: Some(true),
            description: Some("crm".into()),
            ..endpoint_for(&r, "tenant.updated")
        })
        .await
        .unwrap();
    assert!(made.secret.starts_with("whsec_"));
    let id = made.endpoint.id.clone();
    assert_eq!(made.endpoint.tenant_id.as_deref(), Some("acme"));
    assert!(
        made.endpoint
            .public_key
            .as_deref()
            .unwrap()
            .starts_with("whpk_")
    );
    let listed: Vec<_> = hooks
        .list(ListParams::limit(1))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(hooks.get(&id).await.unwrap().description, "crm");
    let patched = hooks
        .update(
            &id,
            &EndpointPatch {
                description: Some("crm, renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.description, "crm, renamed");
    assert_eq!(hooks.get(&id).await.unwrap().description, "crm, renamed");
    let jwks = hooks.jwks(&id).await.unwrap();
    assert_eq!(jwks.keys[0]["crv"], "Ed25519");

    // An event: delivered, signed with the endpoint's secret, logged.
    rename(&root, "acme", "Acme 2").await;
    let hits = r.wait_for(1).await;
    assert!(signed_with(&made.secret, &hits[0]));
    let log = delivered(&admin, "acme", &id, 1).await;
    assert_eq!(log.len(), 1);
    let first = &log[0];
    assert_eq!(first.kind, "tenant.updated");
    assert_eq!(first.event_id, hits[0].id);
    assert_eq!(first.event_tenant_id.as_deref(), Some("acme"));
    let detail = hooks.message(&id, &first.id).await.unwrap();
    assert_eq!(detail.message.id, first.id);
    assert_eq!(detail.attempt_log.len(), 1);
    assert_eq!(detail.attempt_log[0].status_code, Some(200));
    // Filters reach the server.
    let failed: Vec<_> = hooks
        .messages(
            &id,
            MessageParams {
                status: Some("failed".into()),
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .unwrap();
    assert!(failed.is_empty());
    let other_type: Vec<_> = hooks
        .messages(
            &id,
            MessageParams {
                event_type: Some("tenant.created".into()),
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .unwrap();
    assert!(other_type.is_empty());

    // Rotation: the next delivery is signed with the new secret and, for
    // the overlap, the old one.
    let rotated = hooks
        .rotate_secret(
            &id,
            &RotateSecretIn {
                overlap_seconds: Some(3600),
            },
        )
        .await
        .unwrap();
    assert_ne!(rotated.secret, made.secret);
    assert!(rotated.endpoint.previous_secret_expires_at.is_some());
    rename(&root, "acme", "Acme 3").await;
    let hits = r.wait_for(2).await;
    assert!(signed_with(&rotated.secret, &hits[1]) && signed_with(&made.secret, &hits[1]));
    let log = delivered(&admin, "acme", &id, 2).await;

    // Replay one message: delivered again, under the same webhook-id.
    let replayed = hooks.replay(&id, &first.id).await.unwrap();
    assert_eq!(replayed.replayed, 1);
    let hits = r.wait_for(3).await;
    assert_eq!(hits[2].id, first.event_id);
    // Replay a time range: both messages (once the replayed one is
    // marked delivered again: a pending message is not replayed).
    delivered(&admin, "acme", &id, 2).await;
    let since =
        log.iter().filter_map(|m| m.created_at).min().unwrap() - chrono::Duration::seconds(1);
    let ranged = hooks
        .replay_range(&id, &ReplayIn { since, until: None })
        .await
        .unwrap();
    assert_eq!(ranged.replayed, 2);
    let hits = r.wait_for(5).await;
    let mut again: Vec<&str> = hits[3..].iter().map(|h| h.id.as_str()).collect();
    again.sort_unstable();
    let mut ids: Vec<&str> = log.iter().map(|m| m.event_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(again, ids);

    hooks.delete(&id).await.unwrap();
    let gone = hooks.get(&id).await.unwrap_err();
    assert_eq!(gone.status(), Some(404));
    assert!(
        hooks
            .list(ListParams::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
}

async fn operator_endpoints_receive_every_tenant(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let root = root(&server);
    for t in ["acme", "globex"] {
        root.tenants().create(&tenant_in(t)).await.unwrap();
    }
    let hooks = root.operator_webhooks();
    let r = Receiver::start(vec![]).await;
    let made = hooks
        .create(&endpoint_for(&r, "tenant.updated"))
        .await
        .unwrap();
    let id = made.endpoint.id.clone();
    assert_eq!(made.endpoint.tenant_id, None);
    assert_eq!(
        hooks
            .list(ListParams::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        1
    );
    let paused = hooks
        .update(
            &id,
            &EndpointPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!paused.enabled);
    hooks
        .update(
            &id,
            &EndpointPatch {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    rename(&root, "acme", "Acme 2").await;
    rename(&root, "globex", "Globex 2").await;
    let hits = r.wait_for(2).await;
    assert!(hits.iter().all(|h| signed_with(&made.secret, h)));
    let mut log: Vec<MessageOut> = Vec::new();
    for _ in 0..200 {
        log = hooks
            .messages(&id, MessageParams::default())
            .try_collect()
            .await
            .unwrap();
        if log.len() == 2 && log.iter().all(|m| m.status == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut tenants: Vec<_> = log
        .iter()
        .filter_map(|m| m.event_tenant_id.clone())
        .collect();
    tenants.sort();
    assert_eq!(tenants, ["acme", "globex"]);
    assert_eq!(
        hooks
            .message(&id, &log[0].id)
            .await
            .unwrap()
            .attempt_log
            .len(),
        1
    );
    assert_eq!(hooks.replay(&id, &log[0].id).await.unwrap().replayed, 1);
    r.wait_for(3).await;
    let rotated = hooks
        .rotate_secret(&id, &RotateSecretIn::default())
        .await
        .unwrap();
    assert_ne!(rotated.secret, made.secret);
    hooks.delete(&id).await.unwrap();
    assert_eq!(hooks.get(&id).await.unwrap_err().status(), Some(404));
}

async fn other_tenants_endpoints_are_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();
    let r = Receiver::start(vec![]).await;
    let acme = root
        .webhooks("acme")
        .create(&endpoint_for(&r, "tenant.updated"))
        .await
        .unwrap()
        .endpoint
        .id;
    let beta = tenant_client(&root, "beta", &["tenant:admin"]).await;

    // Beta's key on acme's path, and acme's endpoint under beta's path.
    for hooks in [beta.webhooks("acme"), beta.webhooks("beta")] {
        let err = hooks.get(&acme).await.unwrap_err();
        assert_eq!(err.status(), Some(404), "{err}");
        let err = hooks
            .update(
                &acme,
                &EndpointPatch {
                    enabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert_eq!(hooks.delete(&acme).await.unwrap_err().status(), Some(404));
        let err = hooks
            .rotate_secret(&acme, &RotateSecretIn::default())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
        let err = hooks
            .messages(&acme, MessageParams::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
    }
    assert_eq!(
        beta.webhooks("acme")
            .list(ListParams::default())
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err()
            .code(),
        Some("tenant_not_found")
    );
    // A tenant key cannot reach the operator's endpoints.
    let err = beta
        .operator_webhooks()
        .create(&endpoint_for(&r, "tenant.updated"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    // Acme's endpoint is untouched.
    assert!(root.webhooks("acme").get(&acme).await.unwrap().enabled);
}
