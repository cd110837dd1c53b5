//! Sealed credentials, settings, and the keys that seal them.

use crate::page::{ListParams, stream};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use serde_json::Value;
use tenantry_api::credentials::{
    AccessLogOut, CredentialIn, CredentialList, CredentialOut, CredentialPatchIn,
    RevealedCredential,
};
use tenantry_api::keyring::{KeyringStatus, TenantKeyRotated};
use tenantry_api::settings::SettingsOut;

impl Client {
    /// The third-party credentials of `tenant`.
    pub fn credentials(&self, tenant: &str) -> Credentials {
        Credentials {
            client: self.clone(),
            tenant: tenant.to_owned(),
            idempotency_key: None,
        }
    }

    /// The settings of `tenant`, by category.
    pub fn settings(&self, tenant: &str) -> Settings {
        Settings {
            client: self.clone(),
            tenant: tenant.to_owned(),
        }
    }

    /// The key-encryption keyring (operator).
    pub fn keyring(&self) -> Keyring {
        Keyring {
            client: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    client: Client,
    tenant: String,
    idempotency_key: Option<String>,
}

impl Credentials {
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    fn path<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut p = vec!["v1", "tenants", self.tenant.as_str(), "credentials"];
        p.extend_from_slice(rest);
        p
    }

    /// `POST /v1/tenants/{id}/credentials`
    pub async fn create(&self, input: &CredentialIn) -> Result<CredentialOut, Error> {
        self.client
            .call(Method::POST, &self.path(&[]))
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/credentials` (masked)
    pub async fn list(&self) -> Result<CredentialList, Error> {
        self.client.call(Method::GET, &self.path(&[])).send().await
    }

    /// `GET /v1/tenants/{id}/credentials/{cred_id}` (masked)
    pub async fn get(&self, id: &str) -> Result<CredentialOut, Error> {
        self.client
            .call(Method::GET, &self.path(&[id]))
            .send()
            .await
    }

    /// `PATCH /v1/tenants/{id}/credentials/{cred_id}`
    pub async fn update(
        &self,
        id: &str,
        patch: &CredentialPatchIn,
    ) -> Result<CredentialOut, Error> {
        self.client
            .call(Method::PATCH, &self.path(&[id]))
            .json(patch)
            .send()
            .await
    }

    /// `DELETE /v1/tenants/{id}/credentials/{cred_id}`
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.client
            .call(Method::DELETE, &self.path(&[id]))
            .send_empty()
            .await
    }

    /// `POST /v1/tenants/{id}/credentials/{cred_id}/reveal`: the plaintext
    /// (audited); its `Debug` is redacted.
    pub async fn reveal(&self, id: &str) -> Result<RevealedCredential, Error> {
        self.client
            .call(Method::POST, &self.path(&[id, "reveal"]))
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/credentials/{cred_id}/access-log`
    pub fn access_log(&self, id: &str, params: ListParams) -> ItemStream<AccessLogOut> {
        stream(
            &self.client,
            &self.path(&[id, "access-log"]),
            Vec::new(),
            params,
        )
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    client: Client,
    tenant: String,
}

impl Settings {
    /// `PUT /v1/tenants/{id}/settings/{category}`: sensitive fields are sealed.
    pub async fn put(&self, category: &str, settings: &Value) -> Result<SettingsOut, Error> {
        self.client
            .call(
                Method::PUT,
                &["v1", "tenants", &self.tenant, "settings", category],
            )
            .json(settings)
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/settings/{category}` (masked)
    pub async fn get(&self, category: &str) -> Result<SettingsOut, Error> {
        self.client
            .call(
                Method::GET,
                &["v1", "tenants", &self.tenant, "settings", category],
            )
            .send()
            .await
    }

    /// `POST /v1/tenants/{id}/settings/{category}/reveal`
    pub async fn reveal(&self, category: &str) -> Result<SettingsOut, Error> {
        self.client
            .call(
                Method::POST,
                &[
                    "v1",
                    "tenants",
                    &self.tenant,
                    "settings",
                    category,
                    "reveal",
                ],
            )
            .send()
            .await
    }
}

#[derive(Debug, Clone)]
pub struct Keyring {
    client: Client,
}

impl Keyring {
    /// `GET /v1/operator/keyring`
    pub async fn status(&self) -> Result<KeyringStatus, Error> {
        self.client
            .call(Method::GET, &["v1", "operator", "keyring"])
            .send()
            .await
    }

    /// `POST /v1/operator/keyring/rotate`: re-wraps every data key under the
    /// active KEK, in the background.
    pub async fn rotate(&self) -> Result<KeyringStatus, Error> {
        self.client
            .call(Method::POST, &["v1", "operator", "keyring", "rotate"])
            .send()
            .await
    }

    /// `POST /v1/operator/tenants/{id}/data-key/rotate`
    pub async fn rotate_tenant_data_key(&self, tenant: &str) -> Result<TenantKeyRotated, Error> {
        self.client
            .call(
                Method::POST,
                &["v1", "operator", "tenants", tenant, "data-key", "rotate"],
            )
            .send()
            .await
    }
}
