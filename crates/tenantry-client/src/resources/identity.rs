//! Trusted identity providers, and tenants' members.

use crate::page::{ListParams, stream};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use tenantry_api::identity::{
    MemberIn, MemberOut, MemberTenants, ProviderIn, ProviderList, ProviderOut,
};

impl Client {
    /// Identity providers (operator).
    pub fn identity_providers(&self) -> IdentityProviders {
        IdentityProviders {
            client: self.clone(),
        }
    }

    /// The members of `tenant`.
    pub fn members(&self, tenant: &str) -> Members {
        Members {
            client: self.clone(),
            tenant: tenant.to_owned(),
        }
    }

    /// `GET /v1/members/{subject}/tenants`: every membership of a user.
    pub async fn member_tenants(&self, subject: &str) -> Result<MemberTenants, Error> {
        self.call(Method::GET, &["v1", "members", subject, "tenants"])
            .send()
            .await
    }
}

#[derive(Debug, Clone)]
pub struct IdentityProviders {
    client: Client,
}

impl IdentityProviders {
    /// `GET /v1/identity-providers`
    pub async fn list(&self) -> Result<ProviderList, Error> {
        self.client
            .call(Method::GET, &["v1", "identity-providers"])
            .send()
            .await
    }

    /// `POST /v1/identity-providers`
    pub async fn create(&self, input: &ProviderIn) -> Result<ProviderOut, Error> {
        self.client
            .call(Method::POST, &["v1", "identity-providers"])
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/identity-providers/{provider_id}`
    pub async fn get(&self, id: &str) -> Result<ProviderOut, Error> {
        self.client
            .call(Method::GET, &["v1", "identity-providers", id])
            .send()
            .await
    }

    /// `PUT /v1/identity-providers/{provider_id}`
    pub async fn put(&self, id: &str, input: &ProviderIn) -> Result<ProviderOut, Error> {
        self.client
            .call(Method::PUT, &["v1", "identity-providers", id])
            .json(input)
            .send()
            .await
    }

    /// `DELETE /v1/identity-providers/{provider_id}`
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.client
            .call(Method::DELETE, &["v1", "identity-providers", id])
            .send_empty()
            .await
    }
}

#[derive(Debug, Clone)]
pub struct Members {
    client: Client,
    tenant: String,
}

impl Members {
    /// `GET /v1/tenants/{id}/members`
    pub fn list(&self, params: ListParams) -> ItemStream<MemberOut> {
        stream(
            &self.client,
            &["v1", "tenants", &self.tenant, "members"],
            Vec::new(),
            params,
        )
    }

    /// `GET /v1/tenants/{id}/members/{subject}`
    pub async fn get(&self, subject: &str) -> Result<MemberOut, Error> {
        self.client
            .call(
                Method::GET,
                &["v1", "tenants", &self.tenant, "members", subject],
            )
            .send()
            .await
    }

    /// `PUT /v1/tenants/{id}/members/{subject}`: adds or replaces.
    pub async fn put(&self, subject: &str, input: &MemberIn) -> Result<MemberOut, Error> {
        self.client
            .call(
                Method::PUT,
                &["v1", "tenants", &self.tenant, "members", subject],
            )
            .json(input)
            .send()
            .await
    }

    /// `DELETE /v1/tenants/{id}/members/{subject}`
    pub async fn delete(&self, subject: &str) -> Result<(), Error> {
        self.client
            .call(
                Method::DELETE,
                &["v1", "tenants", &self.tenant, "members", subject],
            )
            .send_empty()
            .await
    }
}
