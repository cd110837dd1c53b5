//! A tenant's custom domains.

use crate::{Client, Error};
use reqwest::Method;
use tenantry_api::domains::{DomainIn, DomainList, DomainOut, VerifyIn};

impl Client {
    pub fn domains(&self, tenant: &str) -> Domains {
        Domains {
            client: self.clone(),
            tenant: tenant.to_owned(),
            idempotency_key: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Domains {
    client: Client,
    tenant: String,
    idempotency_key: Option<String>,
}

impl Domains {
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// `POST /v1/tenants/{id}/domains`: the answer names the TXT record to publish.
    pub async fn add(&self, input: &DomainIn) -> Result<DomainOut, Error> {
        self.client
            .call(Method::POST, &["v1", "tenants", &self.tenant, "domains"])
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/domains`
    pub async fn list(&self) -> Result<DomainList, Error> {
        self.client
            .call(Method::GET, &["v1", "tenants", &self.tenant, "domains"])
            .send()
            .await
    }

    /// `DELETE /v1/tenants/{id}/domains/{domain}`
    pub async fn remove(&self, domain: &str) -> Result<(), Error> {
        self.client
            .call(
                Method::DELETE,
                &["v1", "tenants", &self.tenant, "domains", domain],
            )
            .send_empty()
            .await
    }

    /// `POST /v1/tenants/{id}/domains/{domain}/verify`: checks the TXT record.
    pub async fn verify(&self, domain: &str, input: &VerifyIn) -> Result<DomainOut, Error> {
        self.client
            .call(
                Method::POST,
                &["v1", "tenants", &self.tenant, "domains", domain, "verify"],
            )
            .json(input)
            .send()
            .await
    }
}
