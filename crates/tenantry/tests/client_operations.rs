//! Onboarding and tenant traffic through `tenantry-client`, on both
//! backends: provisioning workflows (start, get, list, retry, cancel)
//! against the Meta and Genesys doubles, custom domains verified through a
//! local DNS server, identity providers whose key set a local JWKS server
//! publishes and the members their users are, and inbound provider
//! webhooks (WhatsApp, Twilio, SendGrid, generic) with the conversations
//! they store. Other tenants' things answer 404.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::client_kit;
use crate::common;
use crate::idp;
use crate::provider_doubles;
use crate::provider_signing;
use crate::test_dns;

use client_kit::{root, tenant_client, tenant_in};
use common::{Backend, ROOT_KEY, TestDb, TestServer};
use futures_util::TryStreamExt;
use idp::{ISSUER, Issuer, claims, jwks, keys, token};
use provider_doubles::{Double, request};
use provider_signing::{sendgrid_keys, sha256_signature, twilio_signature};
use serde_json::json;
use std::time::Duration;
use tenantry_client::api::callbacks::MessageIn;
use tenantry_client::api::credentials::{CredentialIn, CredentialPatchIn};
use tenantry_client::api::domains::{DomainIn, VerifyIn};
use tenantry_client::api::identity::{MemberIn, ProviderIn};
use tenantry_client::api::inbound::Handshake;
use tenantry_client::api::provisioning::{
    ListParams as WorkflowParams, OnFailure, ProvisioningIn, StepName, StepStatus, WorkflowOut,
    WorkflowStatus,
};
use tenantry_client::api::resolve::{MatchedBy, ResolveIn};
use tenantry_client::{Client, ListParams};
use test_dns::TestDns;

on_both_backends!(
    provisioning_start_get_list_and_replay,
    provisioning_retry_and_cancel,
    domains_add_verify_resolve_remove,
    identity_providers_and_members,
    inbound_webhooks_and_conversations,
);

fn provisioning_in(tenant: &str) -> ProvisioningIn {
    serde_json::from_value(request(tenant)).unwrap()
}

/// Polls the workflow until `done` (bounded).
async fn wait_for(
    client: &Client,
    id: &str,
    what: &str,
    mut done: impl FnMut(&WorkflowOut) -> bool,
) -> WorkflowOut {
    for _ in 0..300 {
        let wf = client.provisioning().get(id).await.unwrap();
        if done(&wf) {
            return wf;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("workflow {id} never got {what}");
}

async fn wait_status(client: &Client, id: &str, status: WorkflowStatus) -> WorkflowOut {
    wait_for(client, id, status.as_str(), |w| w.status == status).await
}

fn step_status(wf: &WorkflowOut, name: StepName) -> StepStatus {
    wf.steps.iter().find(|s| s.name == name).unwrap().status
}

async fn provisioning_start_get_list_and_replay(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double.server(&db, &[]).await;
    let root = root(&server);

    // A dry run checks and stores nothing.
    let dry = root
        .provisioning()
        .create(&ProvisioningIn {
            dry_run: Some(true),
            ..provisioning_in("dry")
        })
        .await
        .unwrap();
    assert!(dry.dry_run && dry.id.is_none());
    assert_eq!(
        root.tenants().get("dry").await.unwrap_err().status(),
        Some(404)
    );

    // One body (each `request` gets its own WhatsApp number), sent twice.
    let onboard = provisioning_in("acme");
    let started = root
        .provisioning()
        .idempotency_key("onboard-acme")
        .create(&onboard)
        .await
        .unwrap();
    let id = started.id.clone().unwrap();
    assert_eq!(started.tenant_id, "acme");
    // The same key again: the same workflow, not a second one.
    let again = root
        .provisioning()
        .idempotency_key("onboard-acme")
        .create(&onboard)
        .await
        .unwrap();
    assert_eq!(again.id.as_deref(), Some(id.as_str()));

    // Each generated secret is shown once, by the first read after the step
    // that made it: gather them while waiting.
    let mut shown = started.api_keys.clone().unwrap_or_default();
    let done = wait_for(&root, &id, "succeeded", |w| {
        shown.extend(w.api_keys.clone().unwrap_or_default());
        w.status == WorkflowStatus::Succeeded
    })
    .await;
    shown.extend(
        root.provisioning()
            .get(&id)
            .await
            .unwrap()
            .api_keys
            .unwrap_or_default(),
    );
    assert!(done.steps.iter().all(|s| s.status == StepStatus::Succeeded));
    // One call each for the dry run's checks, one each for the workflow
    // (its replay called nobody).
    assert_eq!(double.with(|s| (s.meta_calls, s.token_calls)), (2, 2));
    // The generated key works.
    let key = shown
        .iter()
        .find(|k| k.key.starts_with("tnt_sk_"))
        .map(|k| k.key.clone());
    let bridge = root.with_key(key.expect("a generated key")).unwrap();
    assert_eq!(bridge.tenants().get("acme").await.unwrap().id, "acme");

    let listed: Vec<_> = root
        .provisioning()
        .list(WorkflowParams {
            status: Some("succeeded".into()),
            limit: Some(1),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id.as_deref(), Some(id.as_str()));
    let failed: Vec<_> = root
        .provisioning()
        .list(WorkflowParams {
            status: Some("failed".into()),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert!(failed.is_empty());
    // Tenants never see workflows.
    let err = bridge.provisioning().get(&id).await.unwrap_err();
    assert!(matches!(err.status(), Some(403 | 404)), "{err}");
}

async fn provisioning_retry_and_cancel(backend: Backend) {
    let db = TestDb::new(backend).await;
    let double = Double::start().await;
    let server = double
        .server(&db, &[("TENANTRY_PROVISIONING_PROVIDER_TIMEOUT", "1s")])
        .await;
    server.expect_warning("provisioning step failed");
    let root = root(&server);

    // Genesys refuses the client secret: the workflow fails and holds.
    const ROTATED: &str = "the-rotated-client-secret-778899";
    double.with(|s| s.accepted_secret = ROTATED.into());
    let wf = root
        .provisioning()
        .create(&ProvisioningIn {
            on_failure: Some(OnFailure::Hold),
            ..provisioning_in("acme")
        })
        .await
        .unwrap();
    let id = wf.id.unwrap();
    let wf = wait_status(&root, &id, WorkflowStatus::Failed).await;
    assert_eq!(
        step_status(&wf, StepName::VerifyGenesys),
        StepStatus::Failed
    );
    // Fix the stored secret, then retry: it resumes from the failed step.
    let creds = root.credentials("acme").list().await.unwrap();
    let genesys = creds
        .data
        .iter()
        .find(|c| c.kind.as_str() == "genesys")
        .unwrap();
    root.credentials("acme")
        .update(
            &genesys.id,
            &CredentialPatchIn {
                data: Some(json!({"client_secret": ROTATED})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let meta_calls = double.with(|s| s.meta_calls);
    let retried = root.provisioning().retry(&id).await.unwrap();
    assert_eq!(retried.id.as_deref(), Some(id.as_str()));
    wait_status(&root, &id, WorkflowStatus::Succeeded).await;
    assert_eq!(double.with(|s| s.meta_calls), meta_calls);
    let err = root.provisioning().retry(&id).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("workflow_conflict"))
    );

    // Genesys answers nothing: cancel while it waits, and compensate.
    double.with(|s| s.hold_genesys = true);
    let wf = root
        .provisioning()
        .create(&provisioning_in("globex"))
        .await
        .unwrap();
    let id = wf.id.unwrap();
    wait_for(&root, &id, "verify_genesys running", |w| {
        step_status(w, StepName::VerifyGenesys) == StepStatus::Running
    })
    .await;
    let cancelling = root.provisioning().cancel(&id).await.unwrap();
    assert_eq!(cancelling.status, WorkflowStatus::Compensating);
    let wf = wait_status(&root, &id, WorkflowStatus::Cancelled).await;
    assert_eq!(
        step_status(&wf, StepName::CreateTenant),
        StepStatus::Compensated
    );
    assert!(
        root.credentials("globex")
            .list()
            .await
            .unwrap()
            .data
            .is_empty()
    );
    double.with(|s| s.hold_genesys = false);
    assert_eq!(
        root.provisioning()
            .get("wf_missing")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
}

async fn domains_add_verify_resolve_remove(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dns = TestDns::start().await;
    let resolver = dns.addr.to_string();
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_BASE_DOMAIN", "example.test"),
            ("TENANTRY_DNS_RESOLVER", &resolver),
        ],
    )
    .await;
    let root = root(&server);
    let acme = tenant_client(&root, "acme", &["tenant:admin"]).await;
    let beta = tenant_client(&root, "beta", &["tenant:admin"]).await;
    let domains = acme.domains("acme");

    let added = domains
        .add(&DomainIn {
            domain: "Support.Acme.com".into(),
        })
        .await
        .unwrap();
    assert_eq!(added.domain, "support.acme.com");
    assert_eq!(added.status.as_str(), "pending");
    assert_eq!(
        added.dns_record.name,
        "_tenantry-challenge.support.acme.com"
    );
    assert_eq!(added.dns_record.value, added.verification_token);
    assert_eq!(domains.list().await.unwrap().data.len(), 1);
    // No record yet: a typed 422.
    let err = domains
        .verify("support.acme.com", &VerifyIn::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("domain_verification_failed"))
    );
    let anonymous = Client::builder(&server.base).build().unwrap();
    let by_host = ResolveIn {
        host: Some("support.acme.com".into()),
        ..Default::default()
    };
    assert_eq!(
        root.resolve(&by_host).await.unwrap_err().status(),
        Some(404)
    );

    dns.set_txt(
        "_tenantry-challenge.support.acme.com",
        &[&added.verification_token],
    );
    let verified = domains
        .verify("support.acme.com", &VerifyIn::default())
        .await
        .unwrap();
    assert_eq!(verified.status.as_str(), "verified");
    assert!(verified.verified_at.is_some());
    let resolved = root.resolve(&by_host).await.unwrap();
    assert_eq!(resolved.tenant.id, "acme");
    assert_eq!(resolved.matched_by, MatchedBy::CustomDomain);
    let gateway = anonymous
        .resolve_request(&[("host", "support.acme.com")])
        .await
        .unwrap();
    assert_eq!(gateway.tenant.id, "acme");

    // Another tenant: 404 on acme's path, and acme's domain is not beta's.
    let err = beta.domains("acme").list().await.unwrap_err();
    assert_eq!(err.code(), Some("tenant_not_found"));
    assert_eq!(
        beta.domains("beta")
            .remove("support.acme.com")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let err = beta
        .domains("beta")
        .add(&DomainIn {
            domain: "support.acme.com".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    // Operators may skip the DNS check; tenants may not.
    beta.domains("beta")
        .add(&DomainIn {
            domain: "beta.io".into(),
        })
        .await
        .unwrap();
    let err = beta
        .domains("beta")
        .verify("beta.io", &VerifyIn { force: true })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    let forced = root
        .domains("beta")
        .verify("beta.io", &VerifyIn { force: true })
        .await
        .unwrap();
    assert_eq!(forced.status.as_str(), "verified");

    domains.remove("support.acme.com").await.unwrap();
    assert!(domains.list().await.unwrap().data.is_empty());
    assert_eq!(
        root.resolve(&by_host).await.unwrap_err().status(),
        Some(404)
    );
}

async fn identity_providers_and_members(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_OUTBOUND_ALLOWLIST", "127.0.0.1/32"),
        ],
    )
    .await;
    let root = root(&server);
    for t in ["acme", "beta"] {
        root.tenants().create(&tenant_in(t)).await.unwrap();
    }
    let key = keys(&[("EdDSA", "c-1")]).remove(0);
    let issuer = Issuer::start(jwks(&[&key])).await;
    let providers = root.identity_providers();
    let provider = ProviderIn {
        issuer: ISSUER.into(),
        jwks_url: Some(issuer.url.clone()),
        audiences: vec!["app".into()],
        algorithms: vec!["EdDSA".into()],
        ..Default::default()
    };
    let made = providers.create(&provider).await.unwrap();
    assert!(made.id.starts_with("idp_"));
    assert_eq!(made.config.subject_claim, "sub");
    let err = providers.create(&provider).await.unwrap_err();
    assert_eq!(err.code(), Some("issuer_taken"));
    let replaced = providers
        .put(
            &made.id,
            &ProviderIn {
                audiences: vec!["app".into(), "console".into()],
                ..provider.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.config.audiences, ["app", "console"]);
    assert_eq!(
        providers
            .get(&made.id)
            .await
            .unwrap()
            .config
            .audiences
            .len(),
        2
    );
    assert_eq!(providers.list().await.unwrap().data.len(), 1);

    // Members: alice administers acme; bob is a member of both tenants.
    let sub = |name: &str| format!("{}:{name}", made.id);
    let admin = MemberIn {
        roles: vec!["admin".into()],
        metadata: None,
    };
    let member = MemberIn {
        roles: vec!["member".into()],
        metadata: Some(json!({"team": "ops"})),
    };
    let alice = root
        .members("acme")
        .put(&sub("alice"), &admin)
        .await
        .unwrap();
    assert_eq!(
        (alice.tenant_id.as_str(), alice.roles.as_slice()),
        ("acme", &["admin".to_owned()][..])
    );
    root.members("acme")
        .put(&sub("bob"), &member)
        .await
        .unwrap();
    root.members("beta")
        .put(&sub("bob"), &member)
        .await
        .unwrap();
    let bob = root.members("acme").get(&sub("bob")).await.unwrap();
    assert_eq!(bob.metadata["team"], "ops");
    let listed: Vec<_> = root
        .members("acme")
        .list(ListParams::limit(1))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let mut of_bob: Vec<_> = root
        .member_tenants(&sub("bob"))
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|m| m.tenant_id)
        .collect();
    of_bob.sort();
    assert_eq!(of_bob, ["acme", "beta"]);

    // Alice's token, verified with the key set the JWKS server publishes.
    let as_alice = root
        .with_key(token(&key, claims("alice", json!({}))))
        .unwrap();
    let resolved = as_alice.resolve_request(&[]).await.unwrap();
    assert_eq!(resolved.tenant.id, "acme");
    assert_eq!(resolved.matched_by, MatchedBy::Membership);
    assert!(issuer.hits() >= 1);
    let dave = as_alice
        .members("acme")
        .put(&sub("dave"), &member)
        .await
        .unwrap();
    assert_eq!(dave.subject, sub("dave"));
    // Not beta's admin: 404 there, whatever the call.
    let err = as_alice.members("beta").get(&sub("bob")).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let err = as_alice
        .members("beta")
        .list(ListParams::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("tenant_not_found"));
    assert_eq!(
        as_alice
            .identity_providers()
            .list()
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );

    as_alice.members("acme").delete(&sub("dave")).await.unwrap();
    assert_eq!(
        root.members("acme")
            .get(&sub("dave"))
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    providers.delete(&made.id).await.unwrap();
    assert_eq!(
        providers.get(&made.id).await.unwrap_err().status(),
        Some(404)
    );
    assert!(providers.list().await.unwrap().data.is_empty());
}

const APP_SECRET: &str = "client-meta-app-secret-7766";

fn whatsapp_text(phone: &str, wamid: &str, text: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "5001", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone},
        "contacts": [{"profile": {"name": "José"}, "wa_id": "16315551181"}],
        "messages": [{"from": "16315551181", "id": wamid, "timestamp": "1767225600", "type": "text", "text": {"body": text}}],
    }}]}]})
    .to_string()
    .into_bytes()
}

async fn inbound_webhooks_and_conversations(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start(&db).await;
    server.expect_warning("did not verify with the addressed tenant");
    let root = root(&server);
    root.tenants().create(&tenant_in("acme")).await.unwrap();
    let globex = tenant_client(&root, "globex", &["tenant:admin"]).await;
    let credential = |kind: &str, data: serde_json::Value| CredentialIn {
        kind: kind.into(),
        name: format!("{kind} callbacks"),
        data,
    };
    let creds = root.credentials("acme");
    creds
        .create(&credential(
            "whatsapp",
            json!({"business_account_id": "5001", "phone_number_id": "6001", "access_token": "EAAclient-token",
                   "app_secret": APP_SECRET, "verify_token": "acme-verify"}),
        ))
        .await
        .unwrap();
    let providers = Client::builder(&server.base)
        .build()
        .unwrap()
        .provider_webhooks();

    // Meta's handshake: the challenge back for the right token only.
    let handshake = |token: &str| Handshake {
        mode: Some("subscribe".into()),
        verify_token: Some(token.into()),
        challenge: Some("1158201444".into()),
    };
    assert_eq!(
        providers
            .whatsapp_handshake("acme", &handshake("acme-verify"))
            .await
            .unwrap(),
        "1158201444"
    );
    let err = providers
        .whatsapp_handshake("acme", &handshake("wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");

    // Signed deliveries: stored once, on the tenant URL and the one URL.
    let first = whatsapp_text("6001", "wamid.A1", "Olá");
    let ack = providers
        .whatsapp("acme", first.clone(), &sha256_signature(APP_SECRET, &first))
        .await
        .unwrap();
    assert!(ack.stored);
    let again = providers
        .whatsapp("acme", first.clone(), &sha256_signature(APP_SECRET, &first))
        .await
        .unwrap();
    assert!(!again.stored);
    let forged = providers
        .whatsapp(
            "acme",
            first.clone(),
            &sha256_signature("not-the-secret", &first),
        )
        .await
        .unwrap_err();
    assert_eq!(forged.status(), Some(401));
    let second = whatsapp_text("6001", "wamid.A2", "café");
    assert!(
        providers
            .whatsapp_any(second.clone(), &sha256_signature(APP_SECRET, &second))
            .await
            .unwrap()
            .stored
    );
    let conversations: Vec<_> = root
        .inbound("acme")
        .conversations(ListParams::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(conversations.len(), 1);
    assert_eq!(
        conversations[0].contact.wa_id.as_deref(),
        Some("16315551181")
    );
    let messages: Vec<_> = root
        .inbound("acme")
        .messages(&conversations[0].id, ListParams::limit(1))
        .try_collect()
        .await
        .unwrap();
    let mut ids: Vec<_> = messages
        .iter()
        .map(|m| m.provider_message_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["wamid.A1", "wamid.A2"]);
    // Another tenant reads none of it.
    let err = globex
        .inbound("acme")
        .conversations(ListParams::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("tenant_not_found"));
    let err = globex
        .inbound("globex")
        .messages(&conversations[0].id, ListParams::default())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));

    // Status callbacks find their tenant through the registered message.
    let register = |provider: &str, id: &str, channel: &str| MessageIn {
        channel: channel.into(),
        provider: provider.into(),
        provider_message_id: id.into(),
        recipient: Some("+15550001".into()),
        ..Default::default()
    };
    let inbound = root.inbound("acme");
    let registered = inbound
        .register_message(&register("generic", "gen-1", "sms"))
        .await
        .unwrap();
    assert_eq!(registered.provider_message_id, "gen-1");
    inbound
        .register_message(&register("twilio", "SMclient01", "sms"))
        .await
        .unwrap();
    inbound
        .register_message(&register("sendgrid", "14c5d75ce93", "email"))
        .await
        .unwrap();
    creds
        .create(&credential(
            "generic",
            json!({"provider": "generic", "secret": "acme-generic-secret"}),
        ))
        .await
        .unwrap();
    creds
        .create(&credential(
            "generic",
            json!({"provider": "twilio", "auth_token": "acme-twilio-token"}),
        ))
        .await
        .unwrap();

    let read =
        br#"{"provider_message_id":"gen-1","status":"read","timestamp":"2026-01-01T00:00:00Z"}"#
            .to_vec();
    let signature = sha256_signature("acme-generic-secret", &read);
    let ack = providers
        .generic(read.clone(), &[("x-tenantry-signature", &signature)])
        .await
        .unwrap();
    assert_eq!((ack.applied, ack.unknown), (1, 0));
    let err = providers
        .generic(read, &[("x-tenantry-signature", "sha256=00")])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));

    let params = [
        ("MessageSid", "SMclient01"),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC1"),
    ];
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let signature = twilio_signature(
        "acme-twilio-token",
        &server.url("/v1/webhooks/twilio"),
        &params,
    );
    let ack = providers
        .twilio(form.into_bytes(), &signature)
        .await
        .unwrap();
    assert_eq!(ack.applied, 1);

    let ts = "1767225600";
    let events = br#"[{"email":"a@example.com","timestamp":1767225800,"event":"bounce","reason":"550","sg_message_id":"14c5d75ce93.filter0001.1"}]"#.to_vec();
    let (public_key, sigs) = sendgrid_keys(&[[ts.as_bytes(), &events].concat()]);
    creds
        .create(&credential(
            "generic",
            json!({"provider": "sendgrid", "public_key": public_key}),
        ))
        .await
        .unwrap();
    let ack = providers
        .sendgrid(
            events,
            &[
                ("x-twilio-email-event-webhook-timestamp", ts),
                ("x-twilio-email-event-webhook-signature", &sigs[0]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(ack.applied, 1);

    let stats = root.usage().stats("acme").await.unwrap();
    assert_eq!(stats.messages["sms"], json!({"read": 1, "delivered": 1}));
    assert_eq!(stats.messages["email"], json!({"failed": 1}));
}
