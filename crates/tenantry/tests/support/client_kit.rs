//! Helpers of the tests that drive the server through `tenantry-client`
//! (tests/client*.rs, tests/keys.rs): a root client, a tenant, a tenant key.
#![allow(dead_code)]

use crate::common::{ROOT_KEY, TestServer};
use std::time::Duration;
use tenantry_client::api::keys::KeyIn;
use tenantry_client::api::tenants::TenantIn;
use tenantry_client::{Client, RetryPolicy};

pub fn tenant_in(id: &str) -> TenantIn {
    TenantIn {
        id: id.to_owned(),
        name: format!("Tenant {id}"),
        ..Default::default()
    }
}

/// A root client of `server`.
pub fn root(server: &TestServer) -> Client {
    Client::new(&server.base, ROOT_KEY).unwrap()
}

/// A retry policy with short waits (the server's `Retry-After` still rules
/// when it sends one, cut to `max_retry_after`).
pub fn quick_retries(max_retries: u32, max_retry_after: Duration) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after,
    }
}

pub fn key_in(name: &str, scopes: &[&str]) -> KeyIn {
    KeyIn {
        name: name.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

/// A new key of `tenant` with `scopes`: its secret.
pub async fn tenant_key(client: &Client, tenant: &str, scopes: &[&str]) -> String {
    client
        .keys(tenant)
        .create(&key_in("svc", scopes))
        .await
        .unwrap()
        .key
}

/// Creates `tenant` and returns a client acting as a key of it with `scopes`.
pub async fn tenant_client(root: &Client, tenant: &str, scopes: &[&str]) -> Client {
    root.tenants().create(&tenant_in(tenant)).await.unwrap();
    let key = tenant_key(root, tenant, scopes).await;
    root.with_key(key).unwrap()
}
