//! API keys: a tenant's keys, operator keys, and verification.

use crate::page::{ListParams, stream};
use crate::{Client, Error, ItemStream};
use reqwest::Method;
use tenantry_api::keys::{KeyIn, KeyOut, KeyPatchIn, NewKeyOut, RotateIn, VerifyIn, VerifyOut};
use tenantry_api::operator_keys::{
    NewOperatorKeyOut, OperatorKeyIn, OperatorKeyList, OperatorKeyOut,
};

impl Client {
    /// The API keys of `tenant`.
    pub fn keys(&self, tenant: &str) -> Keys {
        Keys {
            client: self.clone(),
            tenant: tenant.to_owned(),
            idempotency_key: None,
        }
    }

    /// Operator keys (root only).
    pub fn operator_keys(&self) -> OperatorKeys {
        OperatorKeys {
            client: self.clone(),
            idempotency_key: None,
        }
    }

    /// `POST /v1/keys/verify`: always answers, with `valid` and a `code`.
    pub async fn verify_key(&self, input: &VerifyIn) -> Result<VerifyOut, Error> {
        self.call(Method::POST, &["v1", "keys", "verify"])
            .json(input)
            .send()
            .await
    }
}

#[derive(Debug, Clone)]
pub struct Keys {
    client: Client,
    tenant: String,
    idempotency_key: Option<String>,
}

impl Keys {
    /// The `Idempotency-Key` of the next creating call (else one is generated).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// `POST /v1/tenants/{id}/api-keys`: the key is in the answer, once.
    pub async fn create(&self, input: &KeyIn) -> Result<NewKeyOut, Error> {
        self.client
            .call(Method::POST, &["v1", "tenants", &self.tenant, "api-keys"])
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/tenants/{id}/api-keys`
    pub fn list(&self, params: ListParams) -> ItemStream<KeyOut> {
        stream(
            &self.client,
            &["v1", "tenants", &self.tenant, "api-keys"],
            Vec::new(),
            params,
        )
    }

    /// `GET /v1/tenants/{id}/api-keys/{key_id}`
    pub async fn get(&self, key_id: &str) -> Result<KeyOut, Error> {
        self.client
            .call(
                Method::GET,
                &["v1", "tenants", &self.tenant, "api-keys", key_id],
            )
            .send()
            .await
    }

    /// `PATCH /v1/tenants/{id}/api-keys/{key_id}`
    pub async fn update(&self, key_id: &str, patch: &KeyPatchIn) -> Result<KeyOut, Error> {
        self.client
            .call(
                Method::PATCH,
                &["v1", "tenants", &self.tenant, "api-keys", key_id],
            )
            .json(patch)
            .send()
            .await
    }

    /// `POST /v1/tenants/{id}/api-keys/{key_id}/revoke`
    pub async fn revoke(&self, key_id: &str) -> Result<KeyOut, Error> {
        self.client
            .call(
                Method::POST,
                &["v1", "tenants", &self.tenant, "api-keys", key_id, "revoke"],
            )
            .send()
            .await
    }

    /// `POST /v1/tenants/{id}/api-keys/{key_id}/rotate`: a new key copying
    /// this one; the old keeps working for the overlap.
    pub async fn rotate(&self, key_id: &str, input: &RotateIn) -> Result<NewKeyOut, Error> {
        self.client
            .call(
                Method::POST,
                &["v1", "tenants", &self.tenant, "api-keys", key_id, "rotate"],
            )
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }
}

#[derive(Debug, Clone)]
pub struct OperatorKeys {
    client: Client,
    idempotency_key: Option<String>,
}

impl OperatorKeys {
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// `POST /v1/operator-keys`
    pub async fn create(&self, input: &OperatorKeyIn) -> Result<NewOperatorKeyOut, Error> {
        self.client
            .call(Method::POST, &["v1", "operator-keys"])
            .creating(self.idempotency_key.clone())
            .json(input)
            .send()
            .await
    }

    /// `GET /v1/operator-keys`
    pub async fn list(&self) -> Result<OperatorKeyList, Error> {
        self.client
            .call(Method::GET, &["v1", "operator-keys"])
            .send()
            .await
    }

    /// `POST /v1/operator-keys/{key_id}/revoke`
    pub async fn revoke(&self, key_id: &str) -> Result<OperatorKeyOut, Error> {
        self.client
            .call(Method::POST, &["v1", "operator-keys", key_id, "revoke"])
            .send()
            .await
    }
}
