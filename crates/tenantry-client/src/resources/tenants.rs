//! `/v1/tenants`: the registry, lifecycle and each tenant's event feed.

use crate::page::{ListParams, stream};
use crate::resources::{failed, split_params};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use tenantry_api::events::EventOut;
use tenantry_api::tenants::{ListTenantsParams, TenantIn, TenantOut, TenantPatchIn};

impl Client {
    pub fn tenants(&self) -> Tenants {
        Tenants {
            client: self.clone(),
            idempotency_key: None,
        }
    }
}

/// The tenant registry (operator calls, except `get` and `events`).
#[derive(Debug, Clone)]
pub struct Tenants {
    client: Client,
    idempotency_key: Option<String>,
}

impl Tenants {
    /// The `Idempotency-Key` of the next creating call (else one is generated).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// `POST /v1/tenants`
    pub async fn create(&self, input: &TenantIn) -> Result<TenantOut, Error> {
        self.client
            .call(Method::POST, &["v1", "tenants"])
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/tenants`: every tenant matching the filters, in id order.
    pub fn list(&self, params: ListTenantsParams) -> ItemStream<TenantOut> {
        match split_params(&params) {
            Ok((query, list)) => stream(&self.client, &["v1", "tenants"], query, list),
            Err(e) => failed(e),
        }
    }

    /// `GET /v1/tenants/{id}`
    pub async fn get(&self, id: &str) -> Result<TenantOut, Error> {
        self.client
            .call(Method::GET, &["v1", "tenants", id])
            .send()
            .await
    }

    /// `PATCH /v1/tenants/{id}`
    pub async fn update(&self, id: &str, patch: &TenantPatchIn) -> Result<TenantOut, Error> {
        self.client
            .call(Method::PATCH, &["v1", "tenants", id])
            .json(patch)
            .send()
            .await
    }

    /// `POST /v1/tenants/{id}/suspend`
    pub async fn suspend(&self, id: &str) -> Result<TenantOut, Error> {
        self.client
            .call(Method::POST, &["v1", "tenants", id, "suspend"])
            .send()
            .await
    }

    /// `POST /v1/tenants/{id}/reactivate`
    pub async fn reactivate(&self, id: &str) -> Result<TenantOut, Error> {
        self.client
            .call(Method::POST, &["v1", "tenants", id, "reactivate"])
            .send()
            .await
    }

    /// `DELETE /v1/tenants/{id}`: a soft delete (data kept for the grace period).
    pub async fn delete(&self, id: &str) -> Result<TenantOut, Error> {
        self.client
            .call(Method::DELETE, &["v1", "tenants", id])
            .send()
            .await
    }

    /// `DELETE /v1/tenants/{id}?purge=true`: every row of the tenant, now.
    pub async fn purge(&self, id: &str) -> Result<(), Error> {
        self.client
            .call(Method::DELETE, &["v1", "tenants", id])
            .query("purge", Some(true))
            .send_empty()
            .await
    }

    /// `GET /v1/tenants/{id}/events`: the tenant's lifecycle events.
    pub fn events(&self, id: &str, params: ListParams) -> ItemStream<EventOut> {
        stream(
            &self.client,
            &["v1", "tenants", id, "events"],
            Vec::new(),
            params,
        )
    }
}
