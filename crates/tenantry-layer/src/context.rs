//! The resolved tenant of a request, and how it travels: request
//! extensions, a tokio task-local, spawned tasks.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// What Tenantry says of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantInfo {
    pub id: String,
    /// `active` (others are refused before the app sees them).
    pub status: String,
    pub plan: String,
    pub region: Option<String>,
    /// Effective feature flags (plan overridden by the tenant's configuration).
    pub features: BTreeMap<String, serde_json::Value>,
    /// Effective limits.
    pub limits: BTreeMap<String, serde_json::Value>,
    /// Which strategy matched (`api_key`, `subdomain`, …).
    pub matched_by: String,
}

/// A cheap handle (one `Arc`) on a [`TenantInfo`].
#[derive(Debug, Clone, PartialEq)]
pub struct TenantContext(Arc<TenantInfo>);

impl std::ops::Deref for TenantContext {
    type Target = TenantInfo;
    fn deref(&self) -> &TenantInfo {
        &self.0
    }
}

tokio::task_local! {
    static CURRENT: Option<TenantContext>;
}

impl TenantContext {
    pub fn new(info: TenantInfo) -> TenantContext {
        TenantContext(Arc::new(info))
    }

    /// The tenant of the task being run (set by the layer for each request,
    /// by [`with_tenant`], [`spawn_in_tenant`] or [`crate::TenantJob`]), or
    /// none.
    pub fn current() -> Option<TenantContext> {
        CURRENT.try_with(Clone::clone).ok().flatten()
    }

    /// Whether a feature flag is on (`true`; anything else is off).
    pub fn feature(&self, name: &str) -> bool {
        self.features
            .get(name)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// A numeric limit, if the tenant has one.
    pub fn limit(&self, name: &str) -> Option<i64> {
        self.limits.get(name).and_then(serde_json::Value::as_i64)
    }
}

/// Runs `future` with `tenant` as its task-local tenant (`None`: explicitly
/// no tenant, whatever an enclosing scope set).
pub async fn with_tenant<F: Future>(tenant: Option<TenantContext>, future: F) -> F::Output {
    CURRENT.scope(tenant, future).await
}

/// [`with_tenant`] as a nameable future (the layer's own future holds it).
pub(crate) fn in_tenant_scope<F: Future>(
    tenant: Option<TenantContext>,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<Option<TenantContext>, F> {
    CURRENT.scope(tenant, future)
}

/// `tokio::spawn`, carrying the current tenant (or its absence) into the
/// new task.
pub fn spawn_in_tenant<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tenant = TenantContext::current();
    tokio::spawn(CURRENT.scope(tenant, future))
}

/// A key for the app's own caches, prefixed with the tenant
/// (`t:<tenant>:<key>`; tenant ids hold no `:`), so one tenant's entry is
/// never served to another.
pub fn cache_key(tenant: &TenantContext, key: &str) -> String {
    format!("t:{}:{key}", tenant.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn ctx(id: &str) -> TenantContext {
        TenantContext::new(TenantInfo {
            id: id.to_owned(),
            status: "active".into(),
            plan: "starter".into(),
            region: None,
            features: BTreeMap::from([("sso".to_owned(), serde_json::json!(true))]),
            limits: BTreeMap::from([("seats".to_owned(), serde_json::json!(5))]),
            matched_by: "api_key".into(),
        })
    }

    #[tokio::test]
    async fn the_task_local_is_scoped_and_carried_into_spawned_tasks() {
        assert!(TenantContext::current().is_none());
        let seen = with_tenant(Some(ctx("acme")), async {
            let inner = spawn_in_tenant(async { TenantContext::current().map(|c| c.id.clone()) });
            // A nested "no tenant" scope really has none.
            let none = with_tenant(None, async { TenantContext::current() }).await;
            (inner.await.ok().flatten(), none)
        })
        .await;
        assert_eq!(seen.0.as_deref(), Some("acme"));
        assert!(seen.1.is_none());
        assert!(TenantContext::current().is_none());
        // Spawned with no tenant: none, even inside a tenant's scope later.
        let h = spawn_in_tenant(async { TenantContext::current() });
        assert!(h.await.ok().flatten().is_none());
    }

    #[test]
    fn cache_keys_are_tenant_prefixed() {
        let a = ctx("acme");
        assert_eq!(cache_key(&a, "lead:1"), "t:acme:lead:1");
        assert_ne!(cache_key(&a, "x"), cache_key(&ctx("beta"), "x"));
        assert!(a.feature("sso") && !a.feature("nope"));
        assert_eq!(a.limit("seats"), Some(5));
    }
}
