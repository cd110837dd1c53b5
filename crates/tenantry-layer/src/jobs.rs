//! Background jobs that carry their tenant: a job enqueued under tenant A
//! runs under A; a job enqueued with no tenant runs with none, never with
//! whatever tenant the worker's task happened to have.

use crate::context::{TenantContext, with_tenant};
use crate::problem::Refusal;
use crate::service::TenantryLayer;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// A job payload with the id of the tenant it was enqueued under. Only the
/// id is serialized: when the job runs, the tenant's context is resolved
/// afresh, so a job of a tenant suspended meanwhile is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantJob<T> {
    pub tenant_id: Option<String>,
    pub job: T,
}

impl<T> TenantJob<T> {
    /// A job for the current tenant (or none).
    pub fn new(job: T) -> TenantJob<T> {
        TenantJob {
            tenant_id: TenantContext::current().map(|c| c.id.clone()),
            job,
        }
    }

    /// Runs the job under its tenant (resolved through `layer`), or under
    /// no tenant at all. Refused if its tenant no longer resolves.
    pub async fn run<F, Fut>(self, layer: &TenantryLayer, run: F) -> Result<Fut::Output, Refusal>
    where
        F: FnOnce(T) -> Fut,
        Fut: Future,
    {
        let tenant = match &self.tenant_id {
            Some(id) => Some(layer.context_of(id).await?),
            None => None,
        };
        Ok(with_tenant(tenant, run(self.job)).await)
    }
}
